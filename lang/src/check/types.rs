//! The checked program: every name resolved to an index, every expression typed. Lowering
//! reads it and cannot fail.

use crate::ast::BinOp;

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

pub use sluice_defs::secret::SecretSpec;
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
    /// `seal(secret, header, peer)`: at the deparser, everything after `header` is encrypted
    /// under the secret's key for `peer`, the tag appended; `no_key` is the drop reason when
    /// there is no such key.
    Seal {
        secret: usize,
        header: HeaderId,
        peer: TExpr,
        no_key: usize,
    },
    /// `open(secret, header)`: at the deparser, everything after `header` is opened with the
    /// key the header's key id names; the packet is dropped for `bad_tag` or `replay`.
    Open {
        secret: usize,
        header: HeaderId,
        bad_tag: usize,
        replay: usize,
    },
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
    pub secrets: Vec<SecretSpec>,
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
pub(crate) const HEADER_MAX_BITS: u32 = 8 * 512;
