//! Errors of table operations.

use super::{EntryHandle, MatchKind};
use thiserror::Error;

/// What is wrong with a table operation. Messages name the key field,
/// action or parameter; the caller adds the table name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TableError {
    #[error("expected {expected} key values, got {got}")]
    KeyCount { expected: usize, got: usize },
    #[error("key {field} ({expected}) was given a value of kind {got}")]
    KindMismatch {
        field: String,
        expected: MatchKind,
        got: MatchKind,
    },
    #[error("key {field}: value {value:#x} does not fit in {width} bits")]
    KeyTooWide {
        field: String,
        value: u128,
        width: u32,
    },
    #[error("key {field}: prefix length {prefix_len} is longer than the field's {width} bits")]
    PrefixTooLong {
        field: String,
        prefix_len: u32,
        width: u32,
    },
    #[error("key {field}: range start {lo:#x} is above its end {hi:#x}")]
    RangeInverted { field: String, lo: u128, hi: u128 },
    #[error("entries need a priority (the table has a ternary, range or optional key)")]
    PriorityRequired,
    #[error("entries take no priority (the table has no ternary, range or optional key)")]
    PriorityForbidden,
    #[error("action #{action} does not exist")]
    UnknownAction { action: u32 },
    #[error("action {action} is not one of the table's actions")]
    ActionNotAllowed { action: String },
    #[error("action {action} takes {expected} arguments, got {got}")]
    ArgCount {
        action: String,
        expected: usize,
        got: usize,
    },
    #[error("action {action}: argument {param} = {value:#x} does not fit in {width} bits")]
    ArgTooWide {
        action: String,
        param: String,
        value: u128,
        width: u32,
    },
    #[error("an entry with the same key already exists (handle {existing})")]
    DuplicateKey { existing: EntryHandle },
    #[error("{}", full(*size))]
    Full { size: u32 },
    #[error("no entry with handle {handle}")]
    UnknownHandle { handle: EntryHandle },
    #[error("the default action is const and cannot be changed")]
    ConstDefault,
    #[error("action {action}: parameter {param} is declared nonzero; 0 is not allowed")]
    ZeroArg { action: String, param: String },
    #[error("there is no table #{index}")]
    NoSuchTable { index: usize },
    #[error("there is no secret #{index}")]
    NoSuchSecret { index: usize },
    #[error("secret {name} is {bits} bits")]
    SecretWidth { name: String, bits: u32 },
    #[error("the table's entries are const (declared with `const entries`) and cannot be changed")]
    ConstEntries,
}

/// What a full table says: how to raise its `size`, unless it is at the most a table holds.
fn full(size: u32) -> String {
    const MAX: u64 = 1 << 24;
    if u64::from(size) >= MAX {
        format!("the table is full ({size} entries, the most a table holds)")
    } else {
        format!(
            "the table is full ({size} entries, its `size`): declare a larger one in the \
             program's table, for example `size {};` (1,024 when absent, at most 16,777,216)",
            (u64::from(size) * 2).clamp(1024, MAX)
        )
    }
}
