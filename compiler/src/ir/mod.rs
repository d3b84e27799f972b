//! The pipeline IR: what a checked program becomes, with every header laid out in bits and
//! every name an index. Both executors read it: the interpreter (`interp`) and the Cranelift
//! backend (`jit`).
//!
//! Control flow stays structured (if/else, switch over a table's action): both executors
//! translate structure directly, and Cranelift builds its own CFG from it.
//!
//! The IR owns its types: nothing here is the front end's (lowering converts), so that the
//! language can change its syntax tree without touching the backends. What the language and
//! the runtime both define (match kinds, hash algorithms) comes from `sluice_defs`.

pub mod visit;

use std::fmt;
use std::ops::{Index, IndexMut};

pub use sluice_defs::{HashAlgo, MatchKind};

/// Defines an index type, and indexing of the vector it indexes, so that a `TableId` cannot
/// index the headers.
macro_rules! id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal $(, $elem:ty)*) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub usize);

        impl $name {
            #[inline]
            pub fn index(self) -> usize {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }

        $(
            impl Index<$name> for Vec<$elem> {
                type Output = $elem;
                #[inline]
                fn index(&self, i: $name) -> &$elem {
                    &self[i.0]
                }
            }

            impl IndexMut<$name> for Vec<$elem> {
                #[inline]
                fn index_mut(&mut self, i: $name) -> &mut $elem {
                    &mut self[i.0]
                }
            }
        )*
    };
}

id!(
    /// A header instance: `Program::headers[h]`.
    HeaderId, "h", Header
);
id!(
    /// A field of a header: `Header::fields[f]`.
    FieldId, "f", Field
);
id!(
    /// A table: `Program::tables[t]`.
    TableId, "t", Table
);
id!(
    /// An action: `Program::actions[a]`; the built-ins first (`sluice_defs::builtin`).
    ActionId, "a", Action
);
id!(
    /// A parser state: `Program::states[s]`; state 0 is `start`.
    StateId, "s", State
);
id!(
    /// A user metadata field: `Program::metadata[m]`.
    MetaId, "m", Meta
);
id!(
    /// A drop reason: `Program::drop_reasons[r]`; the switch's own first (see [`reason`]).
    ReasonId, "r"
);
id!(
    /// A declared secret: `Program::secrets[s]`.
    SecretId, "secret"
);

impl HeaderId {
    /// Bit `h` of a header mask (validity, extraction): programs have at most 63 headers.
    #[inline]
    pub fn bit(self) -> u64 {
        if self.0 < 64 {
            1u64 << self.0
        } else {
            0
        }
    }
}

impl ReasonId {
    /// The reason as a verdict carries it (verify checks that every reason fits).
    #[inline]
    pub fn code(self) -> u16 {
        self.0 as u16
    }
}

impl ActionId {
    /// The built-in `drop` action.
    pub const DROP: ActionId = ActionId(sluice_defs::builtin::DROP as usize);
    /// The built-in `NoAction`.
    pub const NO_ACTION: ActionId = ActionId(sluice_defs::builtin::NO_ACTION as usize);
}

impl Index<ReasonId> for Vec<String> {
    type Output = String;
    #[inline]
    fn index(&self, i: ReasonId) -> &String {
        &self[i.0]
    }
}

impl Index<SecretId> for Vec<SecretSpec> {
    type Output = SecretSpec;
    #[inline]
    fn index(&self, i: SecretId) -> &SecretSpec {
        &self[i.0]
    }
}

pub use sluice_defs::secret::SecretSpec;

#[derive(Clone, Debug)]
pub struct Program {
    pub headers: Vec<Header>,
    pub metadata: Vec<Meta>,
    /// The declared secrets (names and widths), by [`SecretId`].
    pub secrets: Vec<SecretSpec>,
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
    use super::ReasonId;
    pub const PARSER_TRUNCATED: ReasonId = ReasonId(0);
    pub const PARSER_REJECT: ReasonId = ReasonId(1);
    pub const PARSER_BAD_LENGTH: ReasonId = ReasonId(2);
    pub const PARSER_LOOP_LIMIT: ReasonId = ReasonId(3);
    pub const NO_FORWARD: ReasonId = ReasonId(4);
    pub const RECIRCULATION_LIMIT: ReasonId = ReasonId(5);
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
            ParserOp::Extract { header, .. } => m | header.bit(),
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
    /// At the deparser: everything after `header` in the packet is sealed with the key of
    /// 256-bit `secret` for `peer` (a 32-bit value), the tag appended; dropped for `no_key`
    /// when there is none (see `sluice_runtime::crypto`).
    Seal {
        secret: SecretId,
        header: HeaderId,
        peer: Expr,
        no_key: ReasonId,
    },
    /// At the deparser: everything after `header` is opened with the key of `secret` that
    /// the header's key id (its value when this runs) names; dropped for `bad_tag` or
    /// `replay`.
    Open {
        secret: SecretId,
        header: HeaderId,
        bad_tag: ReasonId,
        replay: ReasonId,
    },
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
        secret: SecretId,
        fields: Vec<Expr>,
    },
}

/// A binary operator. `&&` and `||` short-circuit; comparisons give a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    BitOr,
    BitXor,
    BitAnd,
    Shl,
    Shr,
    Add,
    Sub,
    Mul,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::BitOr => "|",
            BinOp::BitXor => "^",
            BinOp::BitAnd => "&",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
        }
    }

    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
        )
    }

    pub fn is_logical(self) -> bool {
        matches!(self, BinOp::Or | BinOp::And)
    }
}

/// Standard metadata a program reads (`std.NAME`): set by the switch per packet, and by
/// `forward` and `drop`.
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
    /// The name after `std.`, as the `--emit ir` dump prints it.
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
}

/// A checksum the deparser keeps right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumKind {
    /// The IPv4 header checksum over the header holding the field.
    Ipv4Header,
    /// TCP or UDP over the IPv4 pseudo-header; UDP keeps a zero checksum zero.
    Tcp,
    Udp,
}
