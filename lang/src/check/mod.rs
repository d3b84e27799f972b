//! Name resolution and type checking: the last stage that can find a user's error.
//!
//! The output, [`Checked`], refers to everything by index and carries every width, so that
//! lowering it to the pipeline IR cannot fail on user input.
//!
//! One `Cx` walks the program, split by concern: `decl` (header types, instances, metadata),
//! `checksum`, `parser` (states, transitions, the graph), `table` (keys, actions, const
//! entries), `stmt` and `expr`; `types` holds the checked tree they build.
//!
//! Rules: every problem is a `Diagnostic` with a code (docs/errors/) pushed with `err`, and
//! the walk goes on past it to report the others; nothing after `check` finds a user error,
//! so whatever it accepts must lower and compile.

use crate::ast::{self, *};
use crate::diag::Diagnostic;
use std::collections::{HashMap, HashSet};

mod checksum;
mod decl;
mod expr;
mod parser;
mod stmt;
mod table;
mod types;

pub use types::*;

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
    /// `drop("...")` reasons already interned, by text (a linear search made 70,000 of them
    /// take 15 s).
    reason_ids: HashMap<String, usize>,
    too_many_reasons: bool,
    /// The headers `seal` and `open` name, checked against the deparser at the end.
    tunnel_headers: Vec<(HeaderId, Span, &'static str)>,
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

/// How many distinct `drop("...")` reasons a program may have: each is a counter in every
/// statistics snapshot and a line in every summary.
pub const MAX_DROP_REASONS: usize = 1024;

use sluice_defs::bits::{bits_needed, fits, low_mask as mask};
use sluice_defs::builtin;
use sluice_defs::names::closest as suggest;

impl Cx {
    fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// A secret named where one of `bits` bits is needed (by `what`, for the message).
    fn secret(&mut self, name: &Ident, bits: u32, what: &str) -> Option<usize> {
        let Some(&s) = self.secret_names.get(&name.name) else {
            let c = self.secret_names.keys().cloned().collect();
            self.unknown("secret", name, c);
            return None;
        };
        let have = self.out.secrets[s].bits;
        if have != bits {
            self.err(
                Diagnostic::error(
                    "E0102",
                    format!(
                        "`{what}` takes a {bits}-bit secret; `{}` has {have} bits",
                        name.name
                    ),
                )
                .with_label(
                    name.span,
                    format!("declared `secret {}: bit<{have}>`", name.name),
                ),
            );
            return None;
        }
        Some(s)
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
                Item::Secret(sd) => {
                    let s = &sd.name;
                    let bits = match &sd.ty {
                        None => 128,
                        Some(Type {
                            kind: TypeKind::Bit(w),
                            ..
                        }) if SecretSpec::WIDTHS.contains(w) => *w,
                        Some(t) => {
                            self.err(
                                Diagnostic::error("E0102", "a secret is bit<128> or bit<256>")
                                    .with_label(t.span, "not a secret's width")
                                    .with_help("128 bits for `siphash`, 256 for `seal` and `open`"),
                            );
                            128
                        }
                    };
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
                        self.out.secrets.push(SecretSpec {
                            name: s.name.clone(),
                            bits,
                        });
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
        // `seal` and `open` work from their header's place in the packet the deparser makes.
        for (h, span, what) in std::mem::take(&mut self.tunnel_headers) {
            if !self.out.deparser.contains(&h) {
                let name = self.out.headers[h].name.clone();
                self.err(
                    Diagnostic::error(
                        "E0110",
                        format!("the header `{what}` names is not emitted by the deparser"),
                    )
                    .with_label(span, format!("`{name}` is not in `emit(...)`"))
                    .with_help(format!(
                        "everything after `{name}` in the packet the deparser makes is sealed or opened"
                    )),
                );
            }
        }
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
