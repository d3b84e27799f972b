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

/// Everything a program declares about its tables: its actions (by id), its tables (by id)
/// and its secrets. A table set is built for one schema, and a datapath
/// compiled for a program takes only table sets of that program's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramSchema {
    pub actions: Vec<ActionSchema>,
    pub tables: Vec<TableSchema>,
    pub secrets: Vec<SecretSpec>,
}

pub use sluice_defs::secret::SecretSpec;

/// A short, stable name for a [`ProgramSchema`]: SipHash-2-4 of its canonical encoding.
/// Two programs whose tables, actions and secrets are declared alike have the same one,
/// whatever else differs; other control planes (a store shared by many switches) use it to
/// tell which program entries were written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub u64);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl ProgramSchema {
    /// The schema as bytes, in a form that does not depend on Rust's layout of these types:
    /// every string as its length and bytes, every number in network order.
    pub fn encode(&self) -> Vec<u8> {
        fn str(out: &mut Vec<u8>, s: &str) {
            out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        fn n(out: &mut Vec<u8>, v: u64) {
            out.extend_from_slice(&v.to_be_bytes());
        }
        let mut out = b"sluice-schema-1".to_vec();
        n(&mut out, self.actions.len() as u64);
        for a in &self.actions {
            str(&mut out, &a.name);
            n(&mut out, a.params.len() as u64);
            for p in &a.params {
                str(&mut out, &p.name);
                n(&mut out, u64::from(p.width));
                out.push(u8::from(p.nonzero));
            }
        }
        n(&mut out, self.tables.len() as u64);
        for t in &self.tables {
            str(&mut out, &t.name);
            n(&mut out, t.keys.len() as u64);
            for k in &t.keys {
                str(&mut out, &k.name);
                n(&mut out, u64::from(k.width));
                str(&mut out, k.kind.as_str());
            }
            n(&mut out, t.actions.len() as u64);
            for a in &t.actions {
                n(&mut out, u64::from(*a));
            }
            n(&mut out, u64::from(t.default_action.action));
            n(&mut out, t.default_action.args.len() as u64);
            for v in t.default_action.args.iter() {
                out.extend_from_slice(&v.to_be_bytes());
            }
            out.push(u8::from(t.const_default));
            n(&mut out, u64::from(t.size));
        }
        n(&mut out, self.secrets.len() as u64);
        for s in &self.secrets {
            str(&mut out, &s.name);
            n(&mut out, u64::from(s.bits));
        }
        out
    }

    pub fn fingerprint(&self) -> Fingerprint {
        const KEY: [u8; 16] = *b"sluice-schema-fp";
        Fingerprint(crate::hash::siphash24(&KEY, &self.encode()))
    }
}
