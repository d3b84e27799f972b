//! What a program says about its tables: key fields, actions and their parameters, the
//! values an entry matches, entry handles.

use std::fmt;

use super::prefix_mask;
pub use sluice_defs::MatchKind;

/// One field of a table key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyField {
    pub name: String,
    pub width: u32,
    pub kind: MatchKind,
}

/// One parameter of an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSchema {
    pub name: String,
    pub width: u32,
    /// Declared `nonzero` in the program: an entry with 0 here is refused.
    pub nonzero: bool,
}

/// An action of the program, with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionSchema {
    pub name: String,
    pub params: Vec<ParamSchema>,
}

/// An action with its arguments; `action` indexes the program's action list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ActionCall {
    pub action: u32,
    pub args: Box<[u128]>,
}

/// The static description of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    pub name: String,
    pub keys: Vec<KeyField>,
    /// Which program actions an entry may use.
    pub actions: Vec<u32>,
    pub default_action: ActionCall,
    pub const_default: bool,
    pub size: u32,
}

/// The value an entry matches for one key field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchValue {
    Exact(u128),
    Lpm {
        value: u128,
        prefix_len: u32,
    },
    Ternary {
        value: u128,
        mask: u128,
    },
    Range {
        lo: u128,
        hi: u128,
    },
    /// `None` is the wildcard.
    Optional(Option<u128>),
}

impl MatchValue {
    /// The match kind this value is for.
    pub fn kind(&self) -> MatchKind {
        match self {
            MatchValue::Exact(_) => MatchKind::Exact,
            MatchValue::Lpm { .. } => MatchKind::Lpm,
            MatchValue::Ternary { .. } => MatchKind::Ternary,
            MatchValue::Range { .. } => MatchKind::Range,
            MatchValue::Optional(_) => MatchKind::Optional,
        }
    }

    /// Whether a packet value `k` of a `width`-bit field matches.
    pub(crate) fn matches(&self, k: u128, width: u32) -> bool {
        match *self {
            MatchValue::Exact(v) | MatchValue::Optional(Some(v)) => v == k,
            MatchValue::Lpm { value, prefix_len } => k & prefix_mask(prefix_len, width) == value,
            MatchValue::Ternary { value, mask } => k & mask == value,
            MatchValue::Range { lo, hi } => (lo..=hi).contains(&k),
            MatchValue::Optional(None) => true,
        }
    }
}

/// A stable name for a table entry, reused only after the entry is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryHandle(pub u32);

impl fmt::Display for EntryHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A read-only view of one entry, as given by [`Table::entries`].
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'a> {
    pub handle: EntryHandle,
    pub key: &'a [MatchValue],
    pub priority: Option<u32>,
    pub call: &'a ActionCall,
    pub packets: u64,
    pub bytes: u64,
}
