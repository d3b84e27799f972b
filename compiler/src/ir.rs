//! The pipeline IR: what a checked program becomes, with every header laid out in bits and
//! every name an index. Both executors read it: the interpreter (`interp`) and the Cranelift
//! backend (`jit`).
//!
//! Control flow stays structured (if/else, switch over a table's action): both executors
//! translate structure directly, and Cranelift builds its own CFG from it.

pub use sluice_lang::ast::BinOp;
pub use sluice_lang::check::{ChecksumKind, HashAlgo, MatchKind, StdField};

pub type HeaderId = usize;
pub type FieldId = usize;
pub type TableId = usize;
pub type ActionId = usize;
pub type StateId = usize;
pub type MetaId = usize;
pub type ReasonId = usize;

#[derive(Clone, Debug)]
pub struct Program {
    pub headers: Vec<Header>,
    pub metadata: Vec<Meta>,
    pub secrets: Vec<String>,
    pub states: Vec<State>,
    pub actions: Vec<Action>,
    pub tables: Vec<Table>,
    pub control: Vec<Stmt>,
    pub deparser: Vec<HeaderId>,
    pub checksums: Vec<Checksum>,
    /// Drop reasons by id; the first ones are the switch's own (see [`reason`]).
    pub drop_reasons: Vec<String>,
    /// Bytes reserved in front of each packet for pushed headers: the most that the
    /// deparser can emit beyond what was parsed.
    pub headroom: usize,
}

/// The switch's own drop reasons, in the order they open `Program::drop_reasons`.
pub mod reason {
    pub const PARSER_TRUNCATED: usize = 0;
    pub const PARSER_REJECT: usize = 1;
    pub const PARSER_BAD_LENGTH: usize = 2;
    pub const PARSER_LOOP_LIMIT: usize = 3;
    pub const NO_FORWARD: usize = 4;
    pub const RECIRCULATION_LIMIT: usize = 5;
    pub const BUILTIN: [&str; 6] = [
        "parser: truncated",
        "parser: reject",
        "parser: invalid header length",
        "parser: loop limit",
        "no forward",
        "recirculation limit",
    ];
}

/// How many times a packet may recirculate before it is dropped.
pub const MAX_RECIRCULATIONS: u8 = 4;

#[derive(Clone, Debug)]
pub struct Header {
    pub name: String,
    pub type_name: String,
    pub fields: Vec<Field>,
    /// Bytes of the fixed part.
    pub fixed_bytes: usize,
    /// The trailing variable-length field, with its maximum in bytes.
    pub varbit: Option<(FieldId, usize)>,
}

impl Header {
    pub fn max_bytes(&self) -> usize {
        self.fixed_bytes + self.varbit.map_or(0, |(_, m)| m)
    }
}

#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub bit_offset: u32,
    pub width: u32,
}

#[derive(Clone, Debug)]
pub struct Meta {
    pub name: String,
    pub width: u32,
}

#[derive(Clone, Debug)]
pub struct State {
    pub name: String,
    pub limit: Option<u32>,
    pub ops: Vec<ParserOp>,
    pub transition: Transition,
}

impl State {
    /// Where this state can go: every case's target and the default, or its one transition.
    pub fn targets(&self) -> Vec<Target> {
        match &self.transition {
            Transition::Accept => vec![Target::Accept],
            Transition::Reject => vec![Target::Reject],
            Transition::Goto(t) => vec![Target::State(*t)],
            Transition::Select { cases, default, .. } => cases
                .iter()
                .map(|c| c.target)
                .chain(std::iter::once(*default))
                .collect(),
        }
    }

    /// The headers this state extracts, as a mask (bit h; headers 64 and up are left out).
    pub fn extracted(&self) -> u64 {
        self.ops.iter().fold(0, |m, op| match op {
            ParserOp::Extract { header, .. } if *header < 64 => m | (1 << header),
            _ => m,
        })
    }
}

#[derive(Clone, Debug)]
pub enum ParserOp {
    /// Bounds check of the fixed part, then (if any) the varbit length in bits, checked
    /// against the maximum and the packet.
    Extract {
        header: HeaderId,
        varbit_bits: Option<Expr>,
    },
    SetMeta(MetaId, Expr),
}

#[derive(Clone, Debug)]
pub enum Transition {
    Accept,
    Reject,
    Goto(StateId),
    Select {
        keys: Vec<Expr>,
        cases: Vec<SelectCase>,
        default: Target,
    },
}

#[derive(Clone, Debug)]
pub struct SelectCase {
    pub matches: Vec<SelectMatch>,
    pub target: Target,
}

/// One value of a select case: `(key & mask) == value`, or `lo <= key <= hi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectMatch {
    Masked { value: u128, mask: u128 },
    Range { lo: u128, hi: u128 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Accept,
    Reject,
    State(StateId),
}

#[derive(Clone, Debug)]
pub struct Action {
    pub name: String,
    pub params: Vec<(String, u32)>,
    /// Parameters the control plane may not set to 0.
    pub nonzero: Vec<bool>,
    pub body: Vec<Stmt>,
}

#[derive(Clone, Debug)]
pub struct Table {
    pub name: String,
    pub keys: Vec<Key>,
    pub actions: Vec<ActionId>,
    pub default: (ActionId, Vec<u128>),
    pub const_default: bool,
    pub size: u32,
    pub entries: Vec<ConstEntry>,
    pub const_entries: bool,
    /// The reason counted when the built-in `drop` runs as this table's action.
    pub drop_on_miss: ReasonId,
    pub drop_on_hit: ReasonId,
}

#[derive(Clone, Debug)]
pub struct Key {
    pub name: String,
    pub expr: Expr,
    pub kind: MatchKind,
}

#[derive(Clone, Debug)]
pub struct ConstEntry {
    pub keys: Vec<EntryKey>,
    pub action: ActionId,
    pub args: Vec<u128>,
    pub priority: Option<u32>,
}

#[derive(Clone, Copy, Debug)]
pub enum EntryKey {
    Exact(u128),
    Lpm(u128, u32),
    Ternary(u128, u128),
    Range(u128, u128),
    Optional(Option<u128>),
}

#[derive(Clone, Debug)]
pub struct Checksum {
    pub kind: ChecksumKind,
    pub header: HeaderId,
    pub field: FieldId,
    pub pseudo: Option<HeaderId>,
}

impl Program {
    /// Every statement of the control block and of the actions, nested ones included.
    pub fn statements(&self) -> Vec<&Stmt> {
        fn walk<'a>(s: &'a [Stmt], out: &mut Vec<&'a Stmt>) {
            for st in s {
                out.push(st);
                match st {
                    Stmt::If(_, a, b) => {
                        walk(a, out);
                        walk(b, out);
                    }
                    Stmt::Switch(_, arms, d) => {
                        for (_, b) in arms {
                            walk(b, out);
                        }
                        walk(d, out);
                    }
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.control, &mut out);
        for a in &self.actions {
            walk(&a.body, &mut out);
        }
        out
    }
}

#[derive(Clone, Debug)]
pub enum Stmt {
    SetField(HeaderId, FieldId, Expr),
    SetMeta(MetaId, Expr),
    /// Applies a table and runs the action it chose; the result is kept for `switch`.
    Apply(TableId),
    If(Expr, Vec<Stmt>, Vec<Stmt>),
    /// Applies the table, then runs the arm of the action it ran (or the default arm).
    Switch(TableId, Vec<(ActionId, Vec<Stmt>)>, Vec<Stmt>),
    SetValid(HeaderId),
    SetInvalid(HeaderId),
    Forward(Expr),
    Drop(ReasonId),
    /// Runs an action with argument values.
    Call(ActionId, Vec<Expr>),
    Recirculate,
}

/// An expression; `width` 0 is a condition, otherwise a value of that many bits.
#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub width: u32,
}

#[derive(Clone, Debug)]
pub enum ExprKind {
    Const(u128),
    /// Reads 0 when the header is not valid.
    Field(HeaderId, FieldId),
    Meta(MetaId),
    Std(StdField),
    Param(usize),
    Valid(HeaderId),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    BitNot(Box<Expr>),
    /// Zero-extends or truncates the operand to `width`.
    Resize(Box<Expr>),
    /// Applies the table; true on a hit (or on a miss when `hit` is false).
    Apply(TableId, bool),
    Hash {
        algo: HashAlgo,
        fields: Vec<Expr>,
        max: Box<Expr>,
    },
    SipHash {
        secret: usize,
        fields: Vec<Expr>,
    },
}
