//! Name resolution and type checking: the last stage that can find a user's error.
//!
//! The output, [`Checked`], refers to everything by index and carries every width, so that
//! lowering it to the pipeline IR cannot fail on user input.

use crate::ast::{self, *};
use crate::diag::Diagnostic;
use std::collections::{HashMap, HashSet};

pub type HeaderId = usize;
pub type ActionId = usize;
pub type TableId = usize;
pub type StateId = usize;

#[derive(Clone, Debug)]
pub struct FieldInfo {
    pub name: String,
    pub width: u32,
    /// Offset from the header's first bit; a varbit field comes last.
    pub bit_offset: u32,
    /// For the trailing varbit field, its maximum width.
    pub varbit: bool,
}

#[derive(Clone, Debug)]
pub struct HeaderTypeInfo {
    pub name: String,
    pub fields: Vec<FieldInfo>,
    /// Width of the fixed part, a multiple of 8.
    pub fixed_bits: u32,
}

impl HeaderTypeInfo {
    pub fn varbit(&self) -> Option<(usize, &FieldInfo)> {
        self.fields.iter().enumerate().find(|(_, f)| f.varbit)
    }
}

#[derive(Clone, Debug)]
pub struct HeaderInfo {
    pub name: String,
    pub ty: usize,
}

#[derive(Clone, Debug)]
pub struct MetaInfo {
    pub name: String,
    pub width: u32,
}

/// Standard metadata, readable as `std.NAME`; written by the switch and by `forward`/`drop`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StdField {
    IngressPort,
    EgressPort,
    PacketLength,
    Dropped,
    IngressTsSec,
    IngressTsNsec,
    Pass,
}

impl StdField {
    pub const ALL: [StdField; 7] = [
        StdField::IngressPort,
        StdField::EgressPort,
        StdField::PacketLength,
        StdField::Dropped,
        StdField::IngressTsSec,
        StdField::IngressTsNsec,
        StdField::Pass,
    ];
    pub fn name(self) -> &'static str {
        match self {
            StdField::IngressPort => "ingress_port",
            StdField::EgressPort => "egress_port",
            StdField::PacketLength => "packet_length",
            StdField::Dropped => "dropped",
            StdField::IngressTsSec => "ingress_ts_sec",
            StdField::IngressTsNsec => "ingress_ts_nsec",
            StdField::Pass => "pass",
        }
    }
    pub fn width(self) -> u32 {
        match self {
            StdField::IngressPort | StdField::EgressPort => 16,
            StdField::PacketLength | StdField::IngressTsNsec => 32,
            StdField::Dropped => 1,
            StdField::IngressTsSec => 64,
            StdField::Pass => 8,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumKind {
    /// The IPv4 header checksum over the header holding the field.
    Ipv4Header,
    /// TCP or UDP over the IPv4 pseudo-header; UDP keeps a zero checksum zero.
    Tcp,
    Udp,
}

#[derive(Clone, Debug)]
pub struct ChecksumInfo {
    pub kind: ChecksumKind,
    pub header: HeaderId,
    pub field: usize,
    /// The IPv4 header that supplies the pseudo-header (TCP and UDP).
    pub pseudo: Option<HeaderId>,
}

#[derive(Clone, Debug)]
pub enum LValue {
    Field(HeaderId, usize),
    Meta(usize),
}

pub use sluice_defs::{HashAlgo, MatchKind};

/// A typed expression. `width` 0 means boolean.
#[derive(Clone, Debug)]
pub struct TExpr {
    pub kind: TExprKind,
    pub width: u32,
}

#[derive(Clone, Debug)]
pub enum TExprKind {
    Const(u128),
    Field(HeaderId, usize),
    Meta(usize),
    Std(StdField),
    Param(usize),
    Valid(HeaderId),
    /// Operands have the result's width (arithmetic) or equal widths (comparison).
    Binary(BinOp, Box<TExpr>, Box<TExpr>),
    Not(Box<TExpr>),
    BitNot(Box<TExpr>),
    /// Zero-extends or truncates to `width`.
    Resize(Box<TExpr>),
    /// `t.apply().hit` (true) or `.miss` (false).
    Apply(TableId, bool),
    Hash {
        algo: HashAlgo,
        fields: Vec<TExpr>,
        max: Box<TExpr>,
    },
    SipHash {
        secret: usize,
        fields: Vec<TExpr>,
    },
}

#[derive(Clone, Debug)]
pub enum TStmt {
    Assign(LValue, TExpr),
    Apply(TableId),
    If(TExpr, Vec<TStmt>, Vec<TStmt>),
    /// Cases by action; the last element is the default body.
    Switch(TableId, Vec<(ActionId, Vec<TStmt>)>, Vec<TStmt>),
    SetValid(HeaderId),
    SetInvalid(HeaderId),
    Forward(TExpr),
    Drop(usize),
    Call(ActionId, Vec<TExpr>),
    Recirculate,
}

#[derive(Clone, Debug)]
pub enum TParserStmt {
    Extract {
        header: HeaderId,
        /// Length of the varbit field in bits, at 32 bits.
        varbit_len: Option<TExpr>,
    },
    Assign(LValue, TExpr),
}

#[derive(Clone, Debug)]
pub enum SelectKey {
    Value(u128),
    Mask(u128, u128),
    Range(u128, u128),
    Any,
}

#[derive(Clone, Debug)]
pub enum TTransition {
    Accept,
    Reject,
    Goto(StateId),
    Select {
        exprs: Vec<TExpr>,
        cases: Vec<(Vec<SelectKey>, Target)>,
        default: Target,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Accept,
    Reject,
    State(StateId),
}

#[derive(Clone, Debug)]
pub struct StateInfo {
    pub name: String,
    pub limit: Option<u64>,
    pub stmts: Vec<TParserStmt>,
    pub transition: TTransition,
}

/// A built-in action usable in tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuiltinAction {
    Drop,
    NoAction,
}

#[derive(Clone, Debug)]
pub struct ActionInfo {
    pub name: String,
    pub params: Vec<(String, u32)>,
    /// Parameters declared `nonzero`, by position.
    pub nonzero: Vec<bool>,
    pub body: Vec<TStmt>,
    pub builtin: Option<BuiltinAction>,
}

#[derive(Clone, Debug)]
pub struct KeyInfo {
    pub name: String,
    pub expr: TExpr,
    pub kind: MatchKind,
}

#[derive(Clone, Debug)]
pub struct EntryInfo {
    pub keys: Vec<SelectKey>,
    /// Prefix lengths for lpm keys (index-aligned with keys; None elsewhere).
    pub prefix: Vec<Option<u32>>,
    pub action: ActionId,
    pub args: Vec<u128>,
    pub priority: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct TableInfo {
    pub name: String,
    pub keys: Vec<KeyInfo>,
    pub actions: Vec<ActionId>,
    pub default: (ActionId, Vec<u128>),
    pub const_default: bool,
    pub size: u32,
    pub entries: Vec<EntryInfo>,
    pub const_entries: bool,
}

/// A checked program: every name resolved to an index, every expression typed.
#[derive(Clone, Debug)]
pub struct Checked {
    pub header_types: Vec<HeaderTypeInfo>,
    pub headers: Vec<HeaderInfo>,
    pub metadata: Vec<MetaInfo>,
    pub secrets: Vec<String>,
    pub checksums: Vec<ChecksumInfo>,
    /// The first state is `start`.
    pub states: Vec<StateInfo>,
    pub actions: Vec<ActionInfo>,
    pub tables: Vec<TableInfo>,
    pub control: Vec<TStmt>,
    pub deparser: Vec<HeaderId>,
    /// Interned reasons of `drop("...")`; index 0 is the plain `drop()`.
    pub drop_reasons: Vec<String>,
}

pub const DEFAULT_TABLE_SIZE: u32 = 1024;
/// The most visits a `limit` may allow.
pub const MAX_STATE_LIMIT: u64 = 1024;
/// The most header instances a program may declare (the JIT keeps validity in a 64-bit mask).
pub const MAX_HEADERS: usize = 63;
pub const MAX_TABLE_SIZE: u64 = 16 * 1024 * 1024;
const HEADER_MAX_BITS: u32 = 8 * 512;

/// Checks a parsed program. Returns the checked program and its warnings, or every error found
/// (with the warnings).
pub fn check(program: &Program) -> Result<(Checked, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut cx = Cx::default();
    cx.run(program);
    if cx.diags.iter().any(|d| d.is_error()) {
        Err(cx.diags)
    } else {
        Ok((cx.out, cx.diags))
    }
}

#[derive(Default)]
struct Cx {
    out: Checked,
    diags: Vec<Diagnostic>,
    header_type_names: HashMap<String, (usize, Span)>,
    header_names: HashMap<String, (usize, Span)>,
    meta_names: HashMap<String, usize>,
    action_names: HashMap<String, (usize, Span)>,
    table_names: HashMap<String, (usize, Span)>,
    state_names: HashMap<String, (usize, Span)>,
    secret_names: HashMap<String, usize>,
    /// Fields the checksums own: assignments to them would be overwritten.
    checksum_fields: HashMap<(usize, usize), Span>,
}

impl Default for Checked {
    fn default() -> Self {
        Checked {
            header_types: Vec::new(),
            headers: Vec::new(),
            metadata: Vec::new(),
            secrets: Vec::new(),
            checksums: Vec::new(),
            states: Vec::new(),
            actions: Vec::new(),
            tables: Vec::new(),
            control: Vec::new(),
            deparser: Vec::new(),
            drop_reasons: vec!["drop".to_string()],
        }
    }
}

/// Where a statement or expression appears: this decides what it may refer to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Parser,
    Action,
    Control,
}

struct Scope<'a> {
    ctx: Ctx,
    params: &'a [(String, u32)],
}

use sluice_defs::bits::{bits_needed, fits, low_mask as mask};
use sluice_defs::builtin;
use sluice_defs::names::closest as suggest;

impl Cx {
    fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn unknown(&mut self, what: &str, name: &Ident, candidates: Vec<String>) {
        let mut d = Diagnostic::error("E0101", format!("unknown {what} `{}`", name.name))
            .with_label(name.span, format!("no {what} of this name"));
        if let Some(s) = suggest(&name.name, candidates.iter().map(|s| s.as_str())) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        self.err(d);
    }

    fn define(&mut self, map: Which, what: &str, name: &Ident, id: usize) -> bool {
        let table = match map {
            Which::HeaderType => &mut self.header_type_names,
            Which::Header => &mut self.header_names,
            Which::Action => &mut self.action_names,
            Which::Table => &mut self.table_names,
            Which::State => &mut self.state_names,
        };
        if let Some((_, prev)) = table.get(&name.name) {
            let prev = *prev;
            self.err(
                Diagnostic::error("E0100", format!("{what} `{}` is defined twice", name.name))
                    .with_label(name.span, "redefined here")
                    .with_label(prev, "first defined here"),
            );
            false
        } else {
            table.insert(name.name.clone(), (id, name.span));
            true
        }
    }

    fn run(&mut self, program: &Program) {
        // Built-in actions come first, with the ids of `sluice_defs::builtin`, so that entries
        // files can name them.
        self.out.actions.push(ActionInfo {
            name: builtin::NAMES[builtin::DROP as usize].into(),
            params: vec![],
            body: vec![TStmt::Drop(0)],
            nonzero: vec![],
            builtin: Some(BuiltinAction::Drop),
        });
        self.out.actions.push(ActionInfo {
            name: builtin::NAMES[builtin::NO_ACTION as usize].into(),
            params: vec![],
            body: vec![],
            nonzero: vec![],
            builtin: Some(BuiltinAction::NoAction),
        });
        for (i, a) in builtin::NAMES.iter().enumerate() {
            self.action_names
                .insert(a.to_string(), (i, Span::default()));
        }

        // Pass 1: declarations that others refer to.
        for item in &program.items {
            match item {
                Item::HeaderType(h) => self.header_type(h),
                Item::Metadata(m) => self.metadata(m),
                Item::Secret(s) => {
                    if self.secret_names.contains_key(&s.name) {
                        self.err(
                            Diagnostic::error(
                                "E0100",
                                format!("secret `{}` is declared twice", s.name),
                            )
                            .with_label(s.span, "redeclared here"),
                        );
                    } else {
                        self.secret_names
                            .insert(s.name.clone(), self.out.secrets.len());
                        self.out.secrets.push(s.name.clone());
                    }
                }
                _ => {}
            }
        }
        for item in &program.items {
            if let Item::HeaderInst(h) = item {
                self.header_inst(h);
            }
        }
        // Actions and tables are declared before bodies are checked, so order does not matter.
        let mut action_decls = Vec::new();
        for item in &program.items {
            if let Item::Action(a) = item {
                let id = self.out.actions.len();
                if self.define(Which::Action, "action", &a.name, id) {
                    let params = a
                        .params
                        .iter()
                        .map(|p| (p.name.name.clone(), self.data_width(&p.ty)))
                        .collect();
                    self.out.actions.push(ActionInfo {
                        name: a.name.name.clone(),
                        params,
                        body: vec![],
                        nonzero: a.params.iter().map(|p| p.nonzero).collect(),
                        builtin: None,
                    });
                    action_decls.push((id, a));
                }
            }
        }
        let mut table_decls = Vec::new();
        for item in &program.items {
            if let Item::Table(t) = item {
                let id = table_decls.len();
                if self.define(Which::Table, "table", &t.name, id) {
                    table_decls.push(t);
                }
            }
        }
        // Placeholders, so that ids are stable while tables are checked.
        for t in &table_decls {
            self.out.tables.push(TableInfo {
                name: t.name.name.clone(),
                keys: vec![],
                actions: vec![],
                default: (0, vec![]),
                const_default: false,
                size: DEFAULT_TABLE_SIZE,
                entries: vec![],
                const_entries: false,
            });
        }
        for item in &program.items {
            if let Item::Checksum(c) = item {
                self.checksum(c);
            }
        }

        // Parser.
        let parsers: Vec<&ParserDecl> = program
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Parser(p) => Some(p),
                _ => None,
            })
            .collect();
        match parsers.as_slice() {
            [] => self.err(
                Diagnostic::error("E0112", "the program has no parser")
                    .with_label(
                        Span::new(0, 0),
                        "expected a `parser { state start { ... } }`",
                    )
                    .with_help("a program must say how packets are parsed"),
            ),
            [p, rest @ ..] => {
                for r in rest {
                    self.err(
                        Diagnostic::error("E0100", "a program has one parser")
                            .with_label(r.span, "second parser")
                            .with_label(p.span, "first parser"),
                    );
                }
                self.parser(p);
            }
        }

        // Action bodies.
        for (id, a) in action_decls {
            let params = self.out.actions[id].params.clone();
            let scope = Scope {
                ctx: Ctx::Action,
                params: &params,
            };
            let body = self.block(&a.body, &scope);
            self.out.actions[id].body = body;
        }
        let extracted = self.extracted_headers();
        for (id, t) in table_decls.iter().enumerate() {
            self.table(id, t, &extracted);
        }

        // Control and deparser.
        let controls: Vec<&ControlDecl> = program
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Control(c) => Some(c),
                _ => None,
            })
            .collect();
        match controls.as_slice() {
            [] => self.err(
                Diagnostic::error("E0112", "the program has no control block")
                    .with_label(Span::new(0, 0), "expected `control ingress { ... }`"),
            ),
            [c, rest @ ..] => {
                for r in rest {
                    self.err(
                        Diagnostic::error("E0100", "a program has one control block")
                            .with_label(r.name.span, "second control block")
                            .with_label(c.name.span, "first control block"),
                    );
                }
                let scope = Scope {
                    ctx: Ctx::Control,
                    params: &[],
                };
                self.out.control = self.block(&c.body, &scope);
            }
        }
        let deparsers: Vec<&DeparserDecl> = program
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Deparser(d) => Some(d),
                _ => None,
            })
            .collect();
        match deparsers.as_slice() {
            [] => self.err(
                Diagnostic::error("E0112", "the program has no deparser")
                    .with_label(Span::new(0, 0), "expected `deparser { emit(...); }`")
                    .with_help("the deparser lists the headers to emit, in order"),
            ),
            [d, rest @ ..] => {
                for r in rest {
                    self.err(
                        Diagnostic::error("E0100", "a program has one deparser")
                            .with_label(r.span, "second deparser")
                            .with_label(d.span, "first deparser"),
                    );
                }
                let mut seen = HashSet::new();
                for e in &d.emits {
                    if let Some(h) = self.header(e) {
                        if !seen.insert(h) {
                            self.err(
                                Diagnostic::error(
                                    "E0100",
                                    format!("header `{}` is emitted twice", e.name),
                                )
                                .with_label(e.span, "emitted again here"),
                            );
                        }
                        self.out.deparser.push(h);
                    }
                }
            }
        }
    }

    fn data_width(&mut self, t: &Type) -> u32 {
        match t.kind {
            TypeKind::Port => 16,
            TypeKind::Bit(w) => {
                if !(1..=128).contains(&w) {
                    self.err(
                        Diagnostic::error("E0109", format!("invalid width {w}"))
                            .with_label(t.span, "a field is 1 to 128 bits wide"),
                    );
                    return 1;
                }
                w
            }
            TypeKind::Varbit(_) => {
                self.err(
                    Diagnostic::error("E0109", "`varbit` is only allowed as a header's last field")
                        .with_label(t.span, "not allowed here"),
                );
                1
            }
        }
    }

    fn header_type(&mut self, h: &ast::HeaderType) {
        let id = self.out.header_types.len();
        if !self.define(Which::HeaderType, "header type", &h.name, id) {
            return;
        }
        let mut fields: Vec<FieldInfo> = Vec::new();
        let mut names: HashMap<&str, Span> = HashMap::new();
        let mut offset = 0u32;
        let n = h.fields.len();
        for (i, f) in h.fields.iter().enumerate() {
            if let Some(prev) = names.insert(&f.name.name, f.name.span) {
                self.err(
                    Diagnostic::error(
                        "E0100",
                        format!("field `{}` is declared twice", f.name.name),
                    )
                    .with_label(f.name.span, "redeclared here")
                    .with_label(prev, "first declared here"),
                );
                continue;
            }
            if f.name.name == "valid" {
                self.err(
                    Diagnostic::error("E0100", "a field cannot be named `valid`")
                        .with_label(f.name.span, "`valid` is the header's validity"),
                );
                continue;
            }
            let (width, varbit) = match f.ty.kind {
                TypeKind::Varbit(w) => {
                    if i + 1 != n {
                        self.err(
                            Diagnostic::error("E0109", "a `varbit` field must be the header's last field")
                                .with_label(f.ty.span, "not the last field")
                                .with_help("the variable part of a header comes after its fixed fields, as IPv4 options do"),
                        );
                    }
                    if w == 0 || w % 8 != 0 || w > 4000 {
                        self.err(
                            Diagnostic::error("E0109", format!("invalid varbit width {w}"))
                                .with_label(
                                    f.ty.span,
                                    "a varbit maximum is a multiple of 8, at most 4000",
                                ),
                        );
                    }
                    (w, true)
                }
                _ => (self.data_width(&f.ty), false),
            };
            fields.push(FieldInfo {
                name: f.name.name.clone(),
                width,
                bit_offset: offset,
                varbit,
            });
            if !varbit {
                offset += width;
            }
        }
        if !offset.is_multiple_of(8) {
            self.err(
                Diagnostic::error(
                    "E0109",
                    format!(
                        "header `{}` is {offset} bits long, not a whole number of bytes",
                        h.name.name
                    ),
                )
                .with_label(h.name.span, "fields must add up to a multiple of 8 bits")
                .with_help(format!("add {} bits of padding", 8 - offset % 8)),
            );
        }
        if offset > HEADER_MAX_BITS {
            self.err(
                Diagnostic::error("E0109", format!("header `{}` is too long", h.name.name))
                    .with_label(h.name.span, "a header's fixed part is at most 512 bytes"),
            );
        }
        self.out.header_types.push(HeaderTypeInfo {
            name: h.name.name.clone(),
            fields,
            fixed_bits: offset,
        });
        // `header x { }` also declares the instance `x`.
        self.add_instance(&h.name, id);
    }

    /// Declares header instance `name` of type `ty`, within [`MAX_HEADERS`].
    fn add_instance(&mut self, name: &Ident, ty: usize) {
        let hid = self.out.headers.len();
        if hid >= MAX_HEADERS {
            self.err(
                Diagnostic::error(
                    "E0112",
                    format!("too many header instances (at most {MAX_HEADERS})"),
                )
                .with_label(name.span, "one too many"),
            );
            return;
        }
        if self.define(Which::Header, "header", name, hid) {
            self.out.headers.push(HeaderInfo {
                name: name.name.clone(),
                ty,
            });
        }
    }

    fn header_inst(&mut self, h: &HeaderInst) {
        let Some(&(ty, _)) = self.header_type_names.get(&h.ty.name) else {
            let c = self.header_type_names.keys().cloned().collect();
            self.unknown("header type", &h.ty, c);
            return;
        };
        self.add_instance(&h.name, ty);
    }

    fn metadata(&mut self, m: &Metadata) {
        for f in &m.fields {
            if self.meta_names.contains_key(&f.name.name) {
                self.err(
                    Diagnostic::error(
                        "E0100",
                        format!("metadata field `{}` is declared twice", f.name.name),
                    )
                    .with_label(f.name.span, "redeclared here"),
                );
                continue;
            }
            let width = self.data_width(&f.ty);
            self.meta_names
                .insert(f.name.name.clone(), self.out.metadata.len());
            self.out.metadata.push(MetaInfo {
                name: f.name.name.clone(),
                width,
            });
        }
    }

    fn header(&mut self, name: &Ident) -> Option<HeaderId> {
        match self.header_names.get(&name.name) {
            Some(&(id, _)) => Some(id),
            None => {
                let c = self.header_names.keys().cloned().collect();
                self.unknown("header", name, c);
                None
            }
        }
    }

    fn field_of(&mut self, h: HeaderId, name: &Ident) -> Option<usize> {
        let ty = &self.out.header_types[self.out.headers[h].ty];
        match ty.fields.iter().position(|f| f.name == name.name) {
            Some(i) => Some(i),
            None => {
                let hn = &self.out.headers[h].name;
                let mut d = Diagnostic::error(
                    "E0101",
                    format!("header `{hn}` has no field `{}`", name.name),
                )
                .with_label(name.span, "unknown field");
                if let Some(s) = suggest(&name.name, ty.fields.iter().map(|f| f.name.as_str())) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                self.err(d);
                None
            }
        }
    }

    fn checksum(&mut self, c: &ChecksumDecl) {
        let kind = match c.kind.name.as_str() {
            "ipv4_header" => ChecksumKind::Ipv4Header,
            "tcp_ipv4" => ChecksumKind::Tcp,
            "udp_ipv4" => ChecksumKind::Udp,
            _ => {
                let mut d =
                    Diagnostic::error("E0112", format!("unknown checksum `{}`", c.kind.name))
                        .with_label(c.kind.span, "not a built-in checksum")
                        .with_note("the built-in checksums are ipv4_header, tcp_ipv4 and udp_ipv4");
                if let Some(s) = suggest(
                    &c.kind.name,
                    ["ipv4_header", "tcp_ipv4", "udp_ipv4"],
                ) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                self.err(d);
                return;
            }
        };
        let (h, f) = match c.field.parts.as_slice() {
            [h, f] => {
                let Some(h) = self.header(h) else { return };
                let Some(fi) = self.field_of(h, f) else {
                    return;
                };
                (h, fi)
            }
            _ => {
                self.err(
                    Diagnostic::error("E0112", "a checksum names its field as `header.field`")
                        .with_label(c.field.span, "expected `header.field`"),
                );
                return;
            }
        };
        let field = &self.out.header_types[self.out.headers[h].ty].fields[f];
        if field.width != 16 || !field.bit_offset.is_multiple_of(16) || field.varbit {
            self.err(
                Diagnostic::error(
                    "E0112",
                    format!(
                        "checksum field `{}` must be a 16-bit, 16-bit-aligned field",
                        c.field
                    ),
                )
                .with_label(
                    c.field.span,
                    format!(
                        "this field is {} bits at bit {}",
                        field.width, field.bit_offset
                    ),
                ),
            );
            return;
        }
        let pseudo = match (kind, &c.pseudo) {
            (ChecksumKind::Ipv4Header, None) => None,
            (ChecksumKind::Ipv4Header, Some(p)) => {
                self.err(
                    Diagnostic::error("E0108", "`ipv4_header` takes one argument")
                        .with_label(p.span, "unexpected argument")
                        .with_help("the IPv4 header checksum covers the header that holds it"),
                );
                return;
            }
            (_, None) => {
                self.err(
                    Diagnostic::error(
                        "E0108",
                        format!(
                            "`{}` needs the IPv4 header of its pseudo-header",
                            c.kind.name
                        ),
                    )
                    .with_label(c.span, "missing second argument")
                    .with_help(format!(
                        "write `checksum {}({}, ipv4);`",
                        c.kind.name, c.field
                    )),
                );
                return;
            }
            (_, Some(p)) => {
                let Some(ph) = self.header(p) else { return };
                if !self.has_ipv4_layout(ph) {
                    self.err(
                        Diagnostic::error("E0112", format!("header `{}` does not have the IPv4 layout", p.name))
                            .with_label(p.span, "the pseudo-header comes from an IPv4 header")
                            .with_note("expected version:4, ihl:4, ..., total_len at bit 16, protocol at bit 72, source at bit 96 and destination at bit 128"),
                    );
                    return;
                }
                Some(ph)
            }
        };
        if kind == ChecksumKind::Ipv4Header && !self.has_ipv4_layout(h) {
            self.err(
                Diagnostic::error(
                    "E0112",
                    format!(
                        "header `{}` does not have the IPv4 layout",
                        self.out.headers[h].name
                    ),
                )
                .with_label(c.field.span, "`ipv4_header` needs an IPv4 header"),
            );
            return;
        }
        if let Some(prev) = self.checksum_fields.insert((h, f), c.span) {
            self.err(
                Diagnostic::error("E0100", "two checksums on one field")
                    .with_label(c.span, "second checksum")
                    .with_label(prev, "first checksum"),
            );
            return;
        }
        self.out.checksums.push(ChecksumInfo {
            kind,
            header: h,
            field: f,
            pseudo,
        });
    }

    /// The fixed IPv4 layout by bit position, whatever the fields are called.
    fn has_ipv4_layout(&self, h: HeaderId) -> bool {
        let ty = &self.out.header_types[self.out.headers[h].ty];
        let at = |off: u32, w: u32| {
            ty.fields
                .iter()
                .any(|f| f.bit_offset == off && f.width == w && !f.varbit)
        };
        ty.fixed_bits == 160
            && at(4, 4)
            && at(16, 16)
            && at(72, 8)
            && at(80, 16)
            && at(96, 32)
            && at(128, 32)
    }

    fn parser(&mut self, p: &ParserDecl) {
        // Declare states; `start` becomes state 0.
        let mut order: Vec<&StateDecl> = Vec::new();
        if let Some(s) = p.states.iter().find(|s| s.name.name == "start") {
            order.push(s);
        } else {
            self.err(
                Diagnostic::error("E0112", "the parser has no `start` state")
                    .with_label(p.span, "parsing begins at the state named `start`")
                    .with_help("rename the first state to `start`"),
            );
            return;
        }
        order.extend(p.states.iter().filter(|s| s.name.name != "start"));
        let mut kept = Vec::new();
        for s in order {
            if s.name.name == "accept" || s.name.name == "reject" {
                self.err(
                    Diagnostic::error("E0100", format!("`{}` is a built-in state", s.name.name))
                        .with_label(s.name.span, "cannot be redefined"),
                );
                continue;
            }
            let id = kept.len();
            if self.define(Which::State, "parser state", &s.name, id) {
                kept.push(s);
            }
        }
        let scope = Scope {
            ctx: Ctx::Parser,
            params: &[],
        };
        for s in &kept {
            let mut stmts = Vec::new();
            for st in &s.stmts {
                match st {
                    ParserStmt::Extract {
                        header,
                        varbit,
                        span,
                    } => {
                        let Some(h) = self.header(header) else {
                            continue;
                        };
                        let ty = &self.out.header_types[self.out.headers[h].ty];
                        let vb = ty.varbit().map(|(_, f)| f.name.clone());
                        let varbit_len = match (vb, varbit) {
                            (None, None) => None,
                            (Some(name), None) => {
                                self.err(
                                    Diagnostic::error("E0108", format!("`{}` has a variable-length field; extract needs its length", header.name))
                                        .with_label(*span, "missing the length of the varbit field")
                                        .with_help(format!("write `extract({}, {name}: LENGTH_IN_BITS);`", header.name)),
                                );
                                None
                            }
                            (None, Some((f, _))) => {
                                self.err(
                                    Diagnostic::error(
                                        "E0108",
                                        format!("`{}` has no variable-length field", header.name),
                                    )
                                    .with_label(f.span, "unexpected length"),
                                );
                                None
                            }
                            (Some(name), Some((f, e))) => {
                                if f.name != name {
                                    self.err(
                                        Diagnostic::error(
                                            "E0101",
                                            format!(
                                                "`{}` is not the varbit field of `{}`",
                                                f.name, header.name
                                            ),
                                        )
                                        .with_label(
                                            f.span,
                                            format!("the varbit field is `{name}`"),
                                        ),
                                    );
                                }
                                self.expr(e, Some(32), &scope)
                            }
                        };
                        stmts.push(TParserStmt::Extract {
                            header: h,
                            varbit_len,
                        });
                    }
                    ParserStmt::Assign(a) => {
                        if let Some((lv, v)) = self.assign(a, &scope) {
                            stmts.push(TParserStmt::Assign(lv, v));
                        }
                    }
                }
            }
            let transition = self.transition(&s.transition, &scope);
            self.out.states.push(StateInfo {
                name: s.name.name.clone(),
                limit: s.limit.map(|(n, _)| n),
                stmts,
                transition,
            });
        }
        if self.diags.iter().any(|d| d.is_error()) || self.out.states.len() != kept.len() {
            return;
        }
        self.parser_graph(&kept);
    }

    fn target(&mut self, name: &Ident) -> Option<Target> {
        match name.name.as_str() {
            "accept" => Some(Target::Accept),
            "reject" => Some(Target::Reject),
            n => match self.state_names.get(n) {
                Some(&(id, _)) => Some(Target::State(id)),
                None => {
                    let mut c: Vec<String> = self.state_names.keys().cloned().collect();
                    c.push("accept".into());
                    c.push("reject".into());
                    self.unknown("parser state", name, c);
                    None
                }
            },
        }
    }

    fn transition(&mut self, t: &Transition, scope: &Scope) -> TTransition {
        match t {
            Transition::Goto(name) => match self.target(name) {
                Some(Target::Accept) | None => TTransition::Accept,
                Some(Target::Reject) => TTransition::Reject,
                Some(Target::State(s)) => TTransition::Goto(s),
            },
            Transition::Select { exprs, cases, .. } => {
                let texprs: Vec<TExpr> = exprs
                    .iter()
                    .map(|e| {
                        let w = self.natural_width(e, scope).unwrap_or(32);
                        if w == 0 {
                            self.err(
                                Diagnostic::error("E0110", "select matches values, not conditions")
                                    .with_label(e.span, "this is a condition")
                                    .with_help("select on a field, or test the condition in the control block"),
                            );
                            return None;
                        }
                        self.expr(e, Some(w), scope)
                    })
                    .collect::<Option<Vec<_>>>()
                    .unwrap_or_default();
                let mut out_cases = Vec::new();
                let mut default = None;
                for c in cases {
                    let target = self.target(&c.target).unwrap_or(Target::Reject);
                    match &c.keys {
                        KeysetList::Default(_) => {
                            if default.is_none() {
                                default = Some(target);
                            }
                        }
                        KeysetList::List(keys, sp) => {
                            if keys.len() != exprs.len() {
                                self.err(
                                    Diagnostic::error(
                                        "E0104",
                                        format!(
                                            "select case has {} values, the select has {}",
                                            keys.len(),
                                            exprs.len()
                                        ),
                                    )
                                    .with_label(*sp, format!("expected {} values", exprs.len())),
                                );
                                continue;
                            }
                            let mut ks = Vec::new();
                            for (k, e) in keys.iter().zip(&texprs) {
                                ks.push(self.select_key(k, e.width, false).0);
                            }
                            out_cases.push((ks, target));
                        }
                    }
                }
                TTransition::Select {
                    exprs: texprs,
                    cases: out_cases,
                    default: default.unwrap_or(Target::Reject),
                }
            }
        }
    }

    /// A keyset value checked against the width of what it matches. Returns the key and, for a
    /// prefix, its length.
    fn select_key(
        &mut self,
        k: &Keyset,
        width: u32,
        allow_prefix: bool,
    ) -> (SelectKey, Option<u32>) {
        let lit = |this: &mut Cx, l: &Lit| -> u128 {
            if !fits(l.value, width) {
                this.err(
                    Diagnostic::error("E0104", format!("value does not fit in {width} bits"))
                        .with_label(
                            l.span,
                            format!(
                                "this needs {} bits; the field has {width}",
                                bits_needed(l.value)
                            ),
                        )
                        .with_help("a select case's values have the width of the field they match"),
                );
            } else if let Some(nw) = l.natural_width {
                if nw > width {
                    this.err(
                        Diagnostic::error(
                            "E0104",
                            format!("a {nw}-bit value cannot match a {width}-bit field"),
                        )
                        .with_label(l.span, format!("{nw} bits"))
                        .with_help("a select case's values have the width of the field they match"),
                    );
                }
            }
            l.value & mask(width)
        };
        match k {
            Keyset::Default(_) => (SelectKey::Any, None),
            Keyset::Value(l) => (SelectKey::Value(lit(self, l)), None),
            Keyset::Mask(a, b) => {
                let (a, b) = (lit(self, a), lit(self, b));
                (SelectKey::Mask(a & b, b), None)
            }
            Keyset::Range(a, b) => {
                let (lo, hi) = (lit(self, a), lit(self, b));
                if lo > hi {
                    self.err(
                        Diagnostic::error("E0104", "empty range")
                            .with_label(k.span(), format!("{lo} is greater than {hi}")),
                    );
                }
                (SelectKey::Range(lo, hi), None)
            }
            Keyset::Prefix(l, len, sp) => {
                let v = lit(self, l);
                if !allow_prefix {
                    self.err(
                        Diagnostic::error("E0104", "a prefix is only allowed for an lpm key")
                            .with_label(*sp, "use `value &&& mask` here"),
                    );
                }
                if *len > width as u64 {
                    self.err(
                        Diagnostic::error(
                            "E0104",
                            format!("prefix length {len} is longer than the field ({width} bits)"),
                        )
                        .with_label(*sp, "too long"),
                    );
                    return (SelectKey::Any, Some(0));
                }
                let len = *len as u32;
                let m = mask(width) & !mask(width - len);
                (SelectKey::Mask(v & m, m), Some(len))
            }
        }
    }

    /// Reachability and loop bounds over the parser graph.
    fn parser_graph(&mut self, decls: &[&StateDecl]) {
        let n = self.out.states.len();
        let succ: Vec<Vec<usize>> = self
            .out
            .states
            .iter()
            .map(|s| match &s.transition {
                TTransition::Goto(t) => vec![*t],
                TTransition::Select { cases, default, .. } => cases
                    .iter()
                    .map(|(_, t)| *t)
                    .chain(std::iter::once(*default))
                    .filter_map(|t| match t {
                        Target::State(s) => Some(s),
                        _ => None,
                    })
                    .collect(),
                _ => vec![],
            })
            .collect();
        let mut seen = vec![false; n];
        let mut stack = vec![0];
        while let Some(s) = stack.pop() {
            if std::mem::replace(&mut seen[s], true) {
                continue;
            }
            stack.extend(succ[s].iter().copied());
        }
        for (i, d) in decls.iter().enumerate() {
            if !seen[i] {
                self.diags.push(
                    Diagnostic::warning(
                        "W0106",
                        format!("parser state `{}` is unreachable", d.name.name),
                    )
                    .with_label(d.name.span, "no transition leads here")
                    .with_help("remove it, or add a transition to it"),
                );
            }
        }
        // Every cycle must pass through a state with a limit: remove limited states and look for
        // a cycle among the rest.
        let limited: Vec<bool> = self.out.states.iter().map(|s| s.limit.is_some()).collect();
        let mut color = vec![0u8; n];
        for start in 0..n {
            if limited[start] || color[start] != 0 {
                continue;
            }
            if let Some(cycle) = find_cycle(start, &succ, &limited, &mut color) {
                let s = cycle[0];
                let names: Vec<&str> = cycle.iter().map(|&i| decls[i].name.name.as_str()).collect();
                let mut d = Diagnostic::error("E0107", "unbounded parser loop")
                    .with_label(
                        decls[s].name.span,
                        format!(
                            "the loop {} -> {} has no bound",
                            names.join(" -> "),
                            names[0]
                        ),
                    )
                    .with_help(format!(
                        "bound the number of visits: `state {} limit 4 {{ ... }}`",
                        decls[s].name.name
                    ));
                for &o in &cycle[1..] {
                    d = d.with_label(decls[o].name.span, "part of the loop");
                }
                self.err(d);
                return;
            }
        }
        for d in decls {
            if let Some((n, sp)) = d.limit {
                if !(1..=MAX_STATE_LIMIT).contains(&n) {
                    self.err(
                        Diagnostic::error(
                            "E0107",
                            format!("a state limit is 1 to {MAX_STATE_LIMIT}"),
                        )
                        .with_label(sp, format!("{n} is out of range"))
                        .with_help("a limit bounds how often one packet visits the state"),
                    );
                }
            }
        }
    }

    /// Headers that some reachable parser path extracts.
    fn extracted_headers(&self) -> HashSet<HeaderId> {
        self.out
            .states
            .iter()
            .flat_map(|s| s.stmts.iter())
            .filter_map(|st| match st {
                TParserStmt::Extract { header, .. } => Some(*header),
                _ => None,
            })
            .collect()
    }

    fn table(&mut self, id: TableId, t: &TableDecl, extracted: &HashSet<HeaderId>) {
        let scope = Scope {
            ctx: Ctx::Control,
            params: &[],
        };
        let mut keys = Vec::new();
        for k in &t.keys {
            let kind = match MatchKind::from_name(&k.kind.name) {
                Some(k) => k,
                None => {
                    let c = MatchKind::ALL.map(|k| k.as_str().to_string()).to_vec();
                    self.unknown("match kind", &k.kind, c);
                    continue;
                }
            };
            let Some(expr) = self.path_expr(&k.field, &scope) else {
                continue;
            };
            match &expr.kind {
                TExprKind::Field(h, _) => {
                    if !extracted.contains(h) {
                        let hn = self.out.headers[*h].name.clone();
                        self.err(
                            Diagnostic::error("E0105", format!("table `{}` is keyed on `{}`, which no parser path extracts", t.name.name, k.field))
                                .with_label(k.field.span, format!("`{hn}` is never extracted"))
                                .with_help(format!("extract `{hn}` in a parser state, or key on a field that is parsed")),
                        );
                    }
                }
                TExprKind::Meta(_) | TExprKind::Std(_) => {}
                _ => {
                    self.err(
                        Diagnostic::error("E0110", "a table key is a header or metadata field")
                            .with_label(k.field.span, "not a field"),
                    );
                    continue;
                }
            }
            keys.push(KeyInfo {
                name: k.field.to_string(),
                expr,
                kind,
            });
        }
        if keys.iter().filter(|k| k.kind == MatchKind::Lpm).count() > 1 {
            self.err(
                Diagnostic::error(
                    "E0111",
                    format!("table `{}` has more than one lpm key", t.name.name),
                )
                .with_label(t.key_span.unwrap_or(t.name.span), "at most one lpm key")
                .with_help("use ternary for the others"),
            );
        }
        let mut actions = Vec::new();
        for a in &t.actions {
            match self.action_names.get(&a.name) {
                Some(&(aid, _)) => {
                    if actions.contains(&aid) {
                        self.err(
                            Diagnostic::error(
                                "E0100",
                                format!("action `{}` is listed twice", a.name),
                            )
                            .with_label(a.span, "listed again"),
                        );
                    } else {
                        actions.push(aid);
                    }
                }
                None => {
                    let c = self.action_names.keys().cloned().collect();
                    self.unknown("action", a, c);
                }
            }
        }
        let (default, const_default) = match &t.default {
            None => ((self.action_names["NoAction"].0, vec![]), false),
            Some(d) => {
                let call = self.const_call(&d.call, &actions, &t.name.name, true);
                (call.unwrap_or((1, vec![])), d.is_const)
            }
        };
        let size = match t.size {
            None => DEFAULT_TABLE_SIZE,
            Some((n, sp)) => {
                if n == 0 || n > MAX_TABLE_SIZE {
                    self.err(
                        Diagnostic::error("E0112", format!("table size {n} is out of range"))
                            .with_label(sp, format!("a table holds 1 to {MAX_TABLE_SIZE} entries")),
                    );
                }
                n.clamp(1, MAX_TABLE_SIZE) as u32
            }
        };
        let needs_priority = keys.iter().any(|k| {
            matches!(
                k.kind,
                MatchKind::Ternary | MatchKind::Range | MatchKind::Optional
            )
        });
        let mut entries = Vec::new();
        let mut const_entries = false;
        if let Some(es) = &t.entries {
            const_entries = es.is_const;
            for e in &es.entries {
                let list = match &e.keys {
                    KeysetList::Default(sp) => {
                        self.err(
                            Diagnostic::error("E0108", "an entry cannot be `default`")
                                .with_label(*sp, "use the table's `default` property"),
                        );
                        continue;
                    }
                    KeysetList::List(l, _) => l,
                };
                if list.len() != keys.len() {
                    self.err(
                        Diagnostic::error(
                            "E0108",
                            format!(
                                "entry has {} key values, table `{}` has {} keys",
                                list.len(),
                                t.name.name,
                                keys.len()
                            ),
                        )
                        .with_label(e.keys.span(), format!("expected {}", keys.len())),
                    );
                    continue;
                }
                let mut ks = Vec::new();
                let mut prefix = Vec::new();
                for (k, key) in list.iter().zip(&keys) {
                    let (sk, p) = self.select_key(k, key.expr.width, key.kind == MatchKind::Lpm);
                    let ok = matches!(
                        (key.kind, &sk, &p),
                        (MatchKind::Exact, SelectKey::Value(_), None)
                            | (MatchKind::Lpm, SelectKey::Value(_) | SelectKey::Mask(..), _)
                            | (
                                MatchKind::Ternary,
                                SelectKey::Value(_) | SelectKey::Mask(..) | SelectKey::Any,
                                None
                            )
                            | (
                                MatchKind::Range,
                                SelectKey::Value(_) | SelectKey::Range(..) | SelectKey::Any,
                                None
                            )
                            | (
                                MatchKind::Optional,
                                SelectKey::Value(_) | SelectKey::Any,
                                None
                            )
                    );
                    if !ok {
                        self.err(
                            Diagnostic::error(
                                "E0108",
                                format!(
                                    "this value cannot match a key of kind {}",
                                    key.kind.as_str()
                                ),
                            )
                            .with_label(
                                k.span(),
                                format!("`{}` is matched by {}", key.name, key.kind.as_str()),
                            ),
                        );
                    }
                    let p = match (key.kind, &sk) {
                        (MatchKind::Lpm, SelectKey::Value(_)) => Some(key.expr.width),
                        (MatchKind::Lpm, _) => p,
                        _ => None,
                    };
                    prefix.push(p);
                    ks.push(sk);
                }
                let Some((action, args)) = self.const_call(&e.call, &actions, &t.name.name, false)
                else {
                    continue;
                };
                let priority = match (needs_priority, e.priority) {
                    (true, Some((p, _))) => Some(p.min(u32::MAX as u64) as u32),
                    (true, None) => Some(entries.len() as u32),
                    (false, Some((_, sp))) => {
                        self.err(
                            Diagnostic::error(
                                "E0108",
                                "priority on a table without ternary, range or optional keys",
                            )
                            .with_label(
                                sp,
                                "only tables with ternary, range or optional keys take a priority",
                            ),
                        );
                        None
                    }
                    (false, None) => None,
                };
                entries.push(EntryInfo {
                    keys: ks,
                    prefix,
                    action,
                    args,
                    priority,
                });
            }
        }
        self.out.tables[id] = TableInfo {
            name: t.name.name.clone(),
            keys,
            actions,
            default: default.clone(),
            const_default,
            size,
            entries,
            const_entries,
        };
    }

    /// An action call with constant arguments: a table's default or an entry.
    fn const_call(
        &mut self,
        call: &Call,
        allowed: &[ActionId],
        table: &str,
        is_default: bool,
    ) -> Option<(ActionId, Vec<u128>)> {
        let Some(&(aid, _)) = self.action_names.get(&call.name.name) else {
            let c = self.action_names.keys().cloned().collect();
            self.unknown("action", &call.name, c);
            return None;
        };
        // Any listed action, or a built-in (drop, NoAction), as in every table at run time.
        let _ = is_default;
        if !(allowed.contains(&aid) || self.out.actions[aid].builtin.is_some()) {
            self.err(
                Diagnostic::error(
                    "E0101",
                    format!(
                        "action `{}` is not in table `{table}`'s actions",
                        call.name.name
                    ),
                )
                .with_label(call.name.span, "not listed")
                .with_help(format!(
                    "add `{};` to the table's `actions`",
                    call.name.name
                )),
            );
            return None;
        }
        let params = self.out.actions[aid].params.clone();
        if params.len() != call.args.len() {
            let sig: Vec<String> = params
                .iter()
                .map(|(n, w)| format!("{n}: bit<{w}>"))
                .collect();
            self.err(
                Diagnostic::error(
                    "E0108",
                    format!(
                        "action `{}` takes {} arguments, {} given",
                        call.name.name,
                        params.len(),
                        call.args.len()
                    ),
                )
                .with_label(call.span, format!("expected {}", params.len()))
                .with_note(format!(
                    "action {}({})",
                    call.name.name,
                    sig.join(", ")
                )),
            );
            return None;
        }
        let mut args = Vec::new();
        for ((pname, w), a) in params.iter().zip(&call.args) {
            match a {
                Arg::Expr(Expr {
                    kind: ExprKind::Lit(l),
                    ..
                }) => {
                    if !fits(l.value, *w) {
                        self.err(
                            Diagnostic::error(
                                "E0103",
                                format!("value does not fit parameter `{pname}` (bit<{w}>)"),
                            )
                            .with_label(l.span, format!("needs {} bits", bits_needed(l.value))),
                        );
                    }
                    let i = args.len();
                    if l.value == 0
                        && self.out.actions[aid]
                            .nonzero
                            .get(i)
                            .copied()
                            .unwrap_or(false)
                    {
                        self.err(
                            Diagnostic::error(
                                "E0103",
                                format!("parameter `{pname}` is declared nonzero"),
                            )
                            .with_label(l.span, "0 is not allowed here"),
                        );
                    }
                    args.push(l.value & mask(*w));
                }
                other => {
                    self.err(
                        Diagnostic::error("E0110", "a table's action arguments are constants")
                            .with_label(other.span(), "expected a number, address or MAC"),
                    );
                    args.push(0);
                }
            }
        }
        Some((aid, args))
    }

    fn block(&mut self, b: &Block, scope: &Scope) -> Vec<TStmt> {
        let mut out = Vec::new();
        for s in &b.stmts {
            self.stmt(s, scope, &mut out);
        }
        out
    }

    fn stmt(&mut self, s: &Stmt, scope: &Scope, out: &mut Vec<TStmt>) {
        match s {
            Stmt::Assign(a) => {
                if let Some((lv, v)) = self.assign(a, scope) {
                    out.push(TStmt::Assign(lv, v));
                }
            }
            Stmt::Block(b) => out.extend(self.block(b, scope)),
            Stmt::Apply(t, sp) => {
                if scope.ctx != Ctx::Control {
                    self.err(
                        Diagnostic::error("E0110", "tables are applied in the control block")
                            .with_label(*sp, "not allowed in an action"),
                    );
                    return;
                }
                if let Some(id) = self.table_id(t) {
                    out.push(TStmt::Apply(id));
                }
            }
            Stmt::If {
                cond, then, els, ..
            } => {
                let c = self.bool_expr(cond, scope);
                let t = self.block(then, scope);
                let e = els
                    .as_ref()
                    .map(|b| self.block(b, scope))
                    .unwrap_or_default();
                if let Some(c) = c {
                    out.push(TStmt::If(c, t, e));
                }
            }
            Stmt::Switch { table, cases, span } => {
                if scope.ctx != Ctx::Control {
                    self.err(
                        Diagnostic::error("E0110", "tables are applied in the control block")
                            .with_label(*span, "not allowed in an action"),
                    );
                    return;
                }
                let Some(tid) = self.table_id(table) else {
                    return;
                };
                let mut arms = Vec::new();
                let mut default = Vec::new();
                let mut seen = HashSet::new();
                for c in cases {
                    let body = self.block(&c.body, scope);
                    match &c.action {
                        None => default = body,
                        Some(a) => match self.action_names.get(&a.name) {
                            Some(&(aid, _)) => {
                                let t = &self.out.tables[tid];
                                let listed = t.actions.contains(&aid) || t.default.0 == aid;
                                if !listed {
                                    self.err(
                                        Diagnostic::error(
                                            "E0101",
                                            format!(
                                                "table `{}` cannot run action `{}`",
                                                table.name, a.name
                                            ),
                                        )
                                        .with_label(a.span, "not one of the table's actions"),
                                    );
                                } else if !seen.insert(aid) {
                                    self.err(
                                        Diagnostic::error(
                                            "E0100",
                                            format!("action `{}` has two cases", a.name),
                                        )
                                        .with_label(a.span, "second case"),
                                    );
                                } else {
                                    arms.push((aid, body));
                                }
                            }
                            None => {
                                let c = self.action_names.keys().cloned().collect();
                                self.unknown("action", a, c);
                            }
                        },
                    }
                }
                out.push(TStmt::Switch(tid, arms, default));
            }
            Stmt::Call(c) => self.call_stmt(c, scope, out),
        }
    }

    fn table_id(&mut self, t: &Ident) -> Option<TableId> {
        match self.table_names.get(&t.name) {
            Some(&(id, _)) => Some(id),
            None => {
                let c = self.table_names.keys().cloned().collect();
                self.unknown("table", t, c);
                None
            }
        }
    }

    fn call_stmt(&mut self, c: &Call, scope: &Scope, out: &mut Vec<TStmt>) {
        let name = c.name.name.as_str();
        let arity = |this: &mut Cx, n: usize| -> bool {
            if c.args.len() != n {
                this.err(
                    Diagnostic::error(
                        "E0108",
                        format!(
                            "`{name}` takes {n} argument{}, {} given",
                            if n == 1 { "" } else { "s" },
                            c.args.len()
                        ),
                    )
                    .with_label(c.span, format!("expected {n}")),
                );
                false
            } else {
                true
            }
        };
        if scope.ctx == Ctx::Parser {
            self.err(
                Diagnostic::error("E0110", format!("`{name}` cannot be called in the parser"))
                    .with_label(c.span, "the parser extracts headers and assigns metadata")
                    .with_help("use `transition reject;` to drop a packet while parsing"),
            );
            return;
        }
        match name {
            "forward" => {
                if !arity(self, 1) {
                    return;
                }
                if let Some(e) = self.arg_expr(&c.args[0], Some(16), scope) {
                    out.push(TStmt::Forward(e));
                }
            }
            "drop" => {
                let reason = match c.args.as_slice() {
                    [] => 0,
                    [Arg::Str(s, sp)] => {
                        if s.is_empty() || s.len() > 64 {
                            self.err(
                                Diagnostic::error("E0110", "a drop reason is 1 to 64 characters")
                                    .with_label(*sp, "empty or too long"),
                            );
                        }
                        match self.out.drop_reasons.iter().position(|r| r == s) {
                            Some(i) => i,
                            None => {
                                self.out.drop_reasons.push(s.clone());
                                self.out.drop_reasons.len() - 1
                            }
                        }
                    }
                    _ => {
                        self.err(
                            Diagnostic::error("E0108", "`drop` takes an optional reason string")
                                .with_label(c.span, "expected `drop()` or `drop(\"reason\")`"),
                        );
                        return;
                    }
                };
                out.push(TStmt::Drop(reason));
            }
            "set_valid" | "set_invalid" => {
                if !arity(self, 1) {
                    return;
                }
                let h = match &c.args[0] {
                    Arg::Expr(Expr {
                        kind: ExprKind::Path(p),
                        ..
                    }) if p.parts.len() == 1 => self.header(&p.parts[0]),
                    other => {
                        self.err(
                            Diagnostic::error("E0110", format!("`{name}` takes a header"))
                                .with_label(other.span(), "expected a header name"),
                        );
                        None
                    }
                };
                if let Some(h) = h {
                    out.push(if name == "set_valid" {
                        TStmt::SetValid(h)
                    } else {
                        TStmt::SetInvalid(h)
                    });
                }
            }
            "recirculate" => {
                if arity(self, 0) {
                    out.push(TStmt::Recirculate);
                }
            }
            _ => {
                let Some(&(aid, _)) = self.action_names.get(name) else {
                    let mut cands: Vec<String> = self.action_names.keys().cloned().collect();
                    cands.extend(
                        ["forward", "drop", "set_valid", "set_invalid", "recirculate"]
                            .map(String::from),
                    );
                    self.unknown("action or function", &c.name, cands);
                    return;
                };
                if scope.ctx != Ctx::Control {
                    self.err(
                        Diagnostic::error("E0110", "an action cannot call another action")
                            .with_label(
                                c.span,
                                "actions are called from the control block or run by tables",
                            ),
                    );
                    return;
                }
                let params = self.out.actions[aid].params.clone();
                if params.len() != c.args.len() {
                    self.err(
                        Diagnostic::error(
                            "E0108",
                            format!(
                                "action `{name}` takes {} arguments, {} given",
                                params.len(),
                                c.args.len()
                            ),
                        )
                        .with_label(c.span, format!("expected {}", params.len())),
                    );
                    return;
                }
                let mut args = Vec::new();
                for ((_, w), a) in params.iter().zip(&c.args) {
                    if let Some(e) = self.arg_expr(a, Some(*w), scope) {
                        args.push(e);
                    }
                }
                if args.len() == params.len() {
                    out.push(TStmt::Call(aid, args));
                }
            }
        }
    }

    fn arg_expr(&mut self, a: &Arg, want: Option<u32>, scope: &Scope) -> Option<TExpr> {
        match a {
            Arg::Expr(e) => self.expr(e, want, scope),
            Arg::Str(_, sp) => {
                self.err(
                    Diagnostic::error("E0110", "a string is only allowed as a drop reason")
                        .with_label(*sp, "expected a number or a field"),
                );
                None
            }
        }
    }

    fn assign(&mut self, a: &Assign, scope: &Scope) -> Option<(LValue, TExpr)> {
        let target = self.path_expr(&a.target, scope)?;
        let lv = match target.kind {
            TExprKind::Field(h, f) => {
                if scope.ctx == Ctx::Parser {
                    self.err(
                        Diagnostic::error(
                            "E0110",
                            "the parser assigns metadata, not header fields",
                        )
                        .with_label(a.target.span, "a header field")
                        .with_help("change headers in an action or the control block"),
                    );
                    return None;
                }
                if let Some(prev) = self.checksum_fields.get(&(h, f)) {
                    let prev = *prev;
                    self.err(
                        Diagnostic::error("E0110", format!("`{}` is kept by a checksum", a.target))
                            .with_label(a.target.span, "assigned here")
                            .with_label(prev, "the switch computes this field")
                            .with_help(
                                "the checksum is updated on every emitted packet; do not assign it",
                            ),
                    );
                    return None;
                }
                LValue::Field(h, f)
            }
            TExprKind::Meta(m) => LValue::Meta(m),
            TExprKind::Std(f) => {
                let help = match f {
                    StdField::EgressPort => "use `forward(PORT);`",
                    StdField::Dropped => "use `drop();`",
                    _ => "the switch sets it",
                };
                self.err(
                    Diagnostic::error("E0110", format!("`std.{}` is read-only", f.name()))
                        .with_label(a.target.span, "cannot be assigned")
                        .with_help(help),
                );
                return None;
            }
            TExprKind::Param(_) => {
                self.err(
                    Diagnostic::error("E0110", "an action parameter is read-only")
                        .with_label(a.target.span, "cannot be assigned"),
                );
                return None;
            }
            _ => {
                self.err(
                    Diagnostic::error("E0110", "only header and metadata fields can be assigned")
                        .with_label(a.target.span, "not a field"),
                );
                return None;
            }
        };
        let v = self.expr(&a.value, Some(target.width), scope)?;
        Some((lv, v))
    }

    /// Resolves a path to a field, metadata, parameter or validity, with its natural width.
    fn path_expr(&mut self, p: &Path, scope: &Scope) -> Option<TExpr> {
        let parts = &p.parts;
        match parts.as_slice() {
            [one] => {
                if let Some(i) = scope.params.iter().position(|(n, _)| *n == one.name) {
                    return Some(TExpr {
                        kind: TExprKind::Param(i),
                        width: scope.params[i].1,
                    });
                }
                let mut d = Diagnostic::error("E0101", format!("unknown name `{}`", one.name))
                    .with_label(one.span, "not a parameter or field");
                if self.header_names.contains_key(&one.name) {
                    d = d.with_help(format!(
                        "`{}` is a header: name one of its fields, or `{}.valid`",
                        one.name, one.name
                    ));
                } else if let Some(s) =
                    suggest(&one.name, scope.params.iter().map(|(n, _)| n.as_str()))
                {
                    d = d.with_help(format!("did you mean `{s}`?"));
                } else if self.meta_names.contains_key(&one.name) {
                    d = d.with_help(format!("metadata is written `meta.{}`", one.name));
                }
                self.err(d);
                None
            }
            [a, b] if a.name == "meta" => match self.meta_names.get(&b.name) {
                Some(&i) => Some(TExpr {
                    kind: TExprKind::Meta(i),
                    width: self.out.metadata[i].width,
                }),
                None => {
                    let c = self.meta_names.keys().cloned().collect();
                    self.unknown("metadata field", b, c);
                    None
                }
            },
            [a, b] if a.name == "std" => match StdField::ALL.iter().find(|f| f.name() == b.name) {
                Some(&f) => Some(TExpr {
                    kind: TExprKind::Std(f),
                    width: f.width(),
                }),
                None => {
                    let c = StdField::ALL.iter().map(|f| f.name().to_string()).collect();
                    self.unknown("standard metadata field", b, c);
                    None
                }
            },
            [h, f] => {
                let h = self.header(h)?;
                if f.name == "valid" {
                    return Some(TExpr {
                        kind: TExprKind::Valid(h),
                        width: 0,
                    });
                }
                let fi = self.field_of(h, f)?;
                let info = &self.out.header_types[self.out.headers[h].ty].fields[fi];
                if info.varbit {
                    self.err(
                        Diagnostic::error(
                            "E0110",
                            format!("the variable-length field `{p}` cannot be read or written"),
                        )
                        .with_label(p.span, "varbit")
                        .with_note("a varbit field is extracted and emitted as it is"),
                    );
                    return None;
                }
                Some(TExpr {
                    kind: TExprKind::Field(h, fi),
                    width: info.width,
                })
            }
            _ => {
                self.err(
                    Diagnostic::error("E0101", format!("`{p}` is not a field")).with_label(
                        p.span,
                        "expected `header.field`, `meta.field` or `std.field`",
                    ),
                );
                None
            }
        }
    }

    /// The width an expression has without context; None for a literal that adapts.
    fn natural_width(&mut self, e: &Expr, scope: &Scope) -> Option<u32> {
        match &e.kind {
            ExprKind::Lit(l) => l.natural_width.filter(|w| *w == 32 || *w == 48),
            ExprKind::Bool(_) | ExprKind::Not(_) | ExprKind::Apply(..) => Some(0),
            ExprKind::Path(p) => {
                // Resolve quietly: errors are reported when the expression is checked.
                let n = self.diags.len();
                let r = self.path_expr(p, scope).map(|t| t.width);
                self.diags.truncate(n);
                r
            }
            ExprKind::Binary(op, a, b) => {
                if op.is_comparison() || op.is_logical() {
                    Some(0)
                } else if matches!(op, BinOp::Shl | BinOp::Shr) {
                    self.natural_width(a, scope)
                } else {
                    match (self.natural_width(a, scope), self.natural_width(b, scope)) {
                        (Some(x), Some(y)) => Some(x.max(y)),
                        (x, y) => x.or(y),
                    }
                }
            }
            ExprKind::BitNot(a) => self.natural_width(a, scope),
            ExprKind::Cast(t, _) => Some(match t.kind {
                TypeKind::Bit(w) => w.clamp(1, 128),
                _ => 16,
            }),
            ExprKind::Hash { max, .. } => self.natural_width(max, scope).or(Some(32)),
            ExprKind::SipHash { .. } => Some(64),
        }
    }

    fn bool_expr(&mut self, e: &Expr, scope: &Scope) -> Option<TExpr> {
        let t = self.expr(e, None, scope)?;
        if t.width != 0 {
            self.err(
                Diagnostic::error("E0110", "expected a condition")
                    .with_label(e.span, format!("this is a bit<{}> value", t.width))
                    .with_help("compare it: `x != 0`"),
            );
            return None;
        }
        Some(t)
    }

    fn num_operand(&mut self, e: &Expr, want: u32, scope: &Scope) -> Option<TExpr> {
        let t = self.expr(e, Some(want), scope)?;
        if t.width == 0 {
            self.err(
                Diagnostic::error("E0110", "expected a number, found a condition")
                    .with_label(e.span, "this is a condition"),
            );
            return None;
        }
        Some(t)
    }

    /// Checks an expression. With `want`, a numeric result has exactly that width: narrower
    /// values are zero-extended, wider ones are an error (narrowing needs a cast).
    fn expr(&mut self, e: &Expr, want: Option<u32>, scope: &Scope) -> Option<TExpr> {
        let want = want.filter(|w| *w > 0);
        let t = match &e.kind {
            ExprKind::Lit(l) => {
                let w = match want {
                    Some(w) => w,
                    None => l.natural_width.unwrap_or_else(|| bits_needed(l.value)),
                };
                if !fits(l.value, w) {
                    self.err(
                        Diagnostic::error("E0103", format!("value does not fit in {w} bits"))
                            .with_label(
                                e.span,
                                format!("this needs {} bits", bits_needed(l.value)),
                            ),
                    );
                    return None;
                }
                return Some(TExpr {
                    kind: TExprKind::Const(l.value),
                    width: w,
                });
            }
            ExprKind::Bool(b) => TExpr {
                kind: TExprKind::Const(u128::from(*b)),
                width: 0,
            },
            ExprKind::Path(p) => self.path_expr(p, scope)?,
            ExprKind::Apply(t, res) => {
                if scope.ctx != Ctx::Control {
                    self.err(
                        Diagnostic::error("E0110", "tables are applied in the control block")
                            .with_label(e.span, "not allowed here"),
                    );
                    return None;
                }
                let id = self.table_id(t)?;
                TExpr {
                    kind: TExprKind::Apply(id, *res == TableResult::Hit),
                    width: 0,
                }
            }
            ExprKind::Not(a) => {
                let a = self.bool_expr(a, scope)?;
                TExpr {
                    kind: TExprKind::Not(Box::new(a)),
                    width: 0,
                }
            }
            ExprKind::BitNot(a) => {
                let w = want.or_else(|| self.natural_width(a, scope)).unwrap_or(32);
                let a = self.num_operand(a, w, scope)?;
                TExpr {
                    width: a.width,
                    kind: TExprKind::BitNot(Box::new(a)),
                }
            }
            ExprKind::Cast(ty, a) => {
                let w = match ty.kind {
                    TypeKind::Bit(w) if (1..=128).contains(&w) => w,
                    TypeKind::Port => 16,
                    _ => {
                        self.err(
                            Diagnostic::error("E0109", "invalid cast")
                                .with_label(ty.span, "cast to `bit<N>` with N from 1 to 128"),
                        );
                        return None;
                    }
                };
                let inner_w = self.natural_width(a, scope).filter(|w| *w > 0).unwrap_or(w);
                let a = self.num_operand(a, inner_w, scope)?;
                TExpr {
                    kind: TExprKind::Resize(Box::new(a)),
                    width: w,
                }
            }
            ExprKind::Binary(op, a, b) if op.is_logical() => {
                let a = self.bool_expr(a, scope);
                let b = self.bool_expr(b, scope);
                TExpr {
                    kind: TExprKind::Binary(*op, Box::new(a?), Box::new(b?)),
                    width: 0,
                }
            }
            ExprKind::Binary(op, a, b) if op.is_comparison() => {
                let (na, nb) = (self.natural_width(a, scope), self.natural_width(b, scope));
                if na == Some(0) || nb == Some(0) {
                    if !matches!(op, BinOp::Eq | BinOp::Ne) || na != nb {
                        self.err(
                            Diagnostic::error(
                                "E0110",
                                format!("cannot compare a condition with `{}`", op.symbol()),
                            )
                            .with_label(e.span, "conditions combine with `&&`, `||` and `!`"),
                        );
                        return None;
                    }
                    let a = self.bool_expr(a, scope);
                    let b = self.bool_expr(b, scope);
                    return Some(TExpr {
                        kind: TExprKind::Binary(*op, Box::new(a?), Box::new(b?)),
                        width: 0,
                    });
                }
                let w = match (na, nb) {
                    (Some(x), Some(y)) => x.max(y),
                    (Some(x), None) | (None, Some(x)) => x,
                    (None, None) => {
                        let l = |e: &Expr| match &e.kind {
                            ExprKind::Lit(l) => bits_needed(l.value),
                            _ => 32,
                        };
                        l(a).max(l(b))
                    }
                };
                let a = self.num_operand(a, w, scope);
                let b = self.num_operand(b, w, scope);
                TExpr {
                    kind: TExprKind::Binary(*op, Box::new(a?), Box::new(b?)),
                    width: 0,
                }
            }
            ExprKind::Binary(op @ (BinOp::Shl | BinOp::Shr), a, b) => {
                let w = want.or_else(|| self.natural_width(a, scope)).unwrap_or(32);
                let a = self.num_operand(a, w, scope);
                let nb = self.natural_width(b, scope).filter(|w| *w > 0).unwrap_or(8);
                let b = self.num_operand(b, nb, scope);
                TExpr {
                    kind: TExprKind::Binary(*op, Box::new(a?), Box::new(b?)),
                    width: w,
                }
            }
            ExprKind::Binary(op, a, b) => {
                let w = match want {
                    Some(w) => w,
                    None => match (self.natural_width(a, scope), self.natural_width(b, scope)) {
                        (Some(x), Some(y)) => x.max(y),
                        (Some(x), None) | (None, Some(x)) => x,
                        (None, None) => 32,
                    },
                };
                let a = self.num_operand(a, w, scope);
                let b = self.num_operand(b, w, scope);
                TExpr {
                    kind: TExprKind::Binary(*op, Box::new(a?), Box::new(b?)),
                    width: w,
                }
            }
            ExprKind::Hash { algo, fields, max } => {
                let Some(algo_k) = HashAlgo::from_name(&algo.name) else {
                    let c = HashAlgo::ALL.map(|a| a.name().to_string()).to_vec();
                    self.unknown("hash algorithm", algo, c);
                    return None;
                };
                let fs = self.field_list(fields, scope)?;
                let mw = self
                    .natural_width(max, scope)
                    .filter(|w| *w > 0)
                    .or(want)
                    .unwrap_or(32);
                let m = self.num_operand(max, mw, scope)?;
                TExpr {
                    width: m.width,
                    kind: TExprKind::Hash {
                        algo: algo_k,
                        fields: fs,
                        max: Box::new(m),
                    },
                }
            }
            ExprKind::SipHash { secret, fields } => {
                let Some(&s) = self.secret_names.get(&secret.name) else {
                    let c = self.secret_names.keys().cloned().collect();
                    self.unknown("secret", secret, c);
                    return None;
                };
                let fs = self.field_list(fields, scope)?;
                TExpr {
                    kind: TExprKind::SipHash {
                        secret: s,
                        fields: fs,
                    },
                    width: 64,
                }
            }
        };
        // Apply the expected width to a value whose width is fixed.
        match want {
            Some(w) if t.width == 0 => {
                self.err(
                    Diagnostic::error(
                        "E0110",
                        format!("expected a bit<{w}> value, found a condition"),
                    )
                    .with_label(e.span, "this is a condition")
                    .with_help("a condition is not a number; use `if` to choose a value"),
                );
                None
            }
            Some(w) if t.width != 0 && t.width != w => {
                if t.width > w {
                    self.err(
                        Diagnostic::error(
                            "E0102",
                            format!("width mismatch: expected bit<{w}>, found bit<{}>", t.width),
                        )
                        .with_label(e.span, format!("this is bit<{}>", t.width))
                        .with_help(format!(
                            "narrowing drops bits; say so with a cast: `(bit<{w}>) ...`"
                        )),
                    );
                    None
                } else {
                    Some(TExpr {
                        kind: TExprKind::Resize(Box::new(t)),
                        width: w,
                    })
                }
            }
            _ => Some(t),
        }
    }

    fn field_list(&mut self, fields: &[Expr], scope: &Scope) -> Option<Vec<TExpr>> {
        let mut out = Vec::new();
        for f in fields {
            let w = self.natural_width(f, scope).filter(|w| *w > 0);
            let Some(w) = w else {
                self.err(
                    Diagnostic::error("E0110", "a hashed value needs a width")
                        .with_label(f.span, "write a field, or cast: `(bit<16>) 5`"),
                );
                return None;
            };
            out.push(self.num_operand(f, w, scope)?);
        }
        Some(out)
    }
}

#[derive(Clone, Copy)]
enum Which {
    HeaderType,
    Header,
    Action,
    Table,
    State,
}

/// Depth-first search for a cycle that avoids limited states; returns the states on it.
fn find_cycle(
    start: usize,
    succ: &[Vec<usize>],
    limited: &[bool],
    color: &mut [u8],
) -> Option<Vec<usize>> {
    // color: 0 new, 1 on the stack, 2 done.
    let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
    color[start] = 1;
    while let Some(&mut (node, ref mut i)) = stack.last_mut() {
        if *i < succ[node].len() {
            let next = succ[node][*i];
            *i += 1;
            if limited[next] {
                continue;
            }
            match color[next] {
                0 => {
                    color[next] = 1;
                    stack.push((next, 0));
                }
                1 => {
                    let pos = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                    return Some(stack[pos..].iter().map(|(n, _)| *n).collect());
                }
                _ => {}
            }
        } else {
            color[node] = 2;
            stack.pop();
        }
    }
    None
}
