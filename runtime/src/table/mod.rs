//! Match-action tables: schemas, validated entries, per-entry counters and an
//! allocation-free lookup whose data layout is chosen from the key shape.
//!
//! # Lookup layouts and their cost
//!
//! The layout is picked once, in [`Table::new`], from the match kinds and
//! widths of the key fields (`n` = entries, `k` = key fields):
//!
//! | layout | key shape | lookup cost |
//! |---|---|---|
//! | [`Layout::Direct`] | all exact, total width <= 16 bits | one array load (2^width slots) |
//! | [`Layout::ExactHash`] | all exact, wider | one hash probe (fields packed into a `u128` when they fit in 128 bits, else the key slice itself is the hash key) |
//! | [`Layout::Lpm`] | a single lpm field of at most 32 bits | a multibit trie with 8-bit strides: at most four node reads (DIR-8-8-8-8) |
//! | [`Layout::Lpm`] | one lpm field plus exact fields, or wider | one hash probe per prefix length in use, longest first, stopping at the first hit |
//! | [`Layout::Range`] | exact fields plus one range field of <= 16 bits | one hash probe on the exact fields, then, for that value's ranges pre-resolved by priority, a bisection over at most [`SEGMENTS_MAX`] segments or, for a value with more, one load from an array of 2^width `u32` slots (256 KiB for 16 bits) while the table's arrays stay within [`RANGE_ARRAY_BYTES`] |
//! | [`Layout::Classifier`] | anything else with ternary, range or optional fields (or several lpm fields) | tuple space search: one hash probe per tuple of masks, in order of the best priority each holds, with an early exit; each candidate's conditions checked in its bucket (see `index/tuples.rs`) |
//!
//! Entries of priority tables (those with a ternary, range or optional key)
//! follow BMv2: the *smaller* priority value wins, ties go to the older entry.
//!
//! # Where things are
//!
//! `schema` (what a program declares: keys, actions, values), `error`, `entries` (changing a
//! table: every change validated before anything moves, so that a refused one changes
//! nothing), `rows` (the rows and the view the datapath reads, refreshed after every change),
//! `lookup` (the datapath's lookups), `counters`, `index/` (one lookup structure per key
//! shape), `set` (all tables of a program).

mod counters;
mod entries;
mod error;
mod index;
mod lookup;
mod rows;
mod schema;
mod set;

pub use error::TableError;
pub use index::{Layout, BUCKET_LIMIT, SEGMENTS_MAX};
pub use schema::{
    ActionCall, ActionSchema, EntryHandle, EntryRef, Fingerprint, KeyField, MatchKind, MatchValue,
    ParamSchema, ProgramSchema, SecretSpec, TableSchema,
};
pub use set::{SecretValue, TableSet};

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use crate::jitview::{JitHash, JitView};
use counters::Counter;
use index::Index;
use rows::RowLayout;
use rustc_hash::FxHashMap;

use crate::value::{fits, ones};

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    key: Box<[MatchValue]>,
    priority: Option<u32>,
    call: ActionCall,
    /// Insertion order, to break priority ties in favour of older entries.
    seq: u64,
}

/// Marks an empty slot in the array layouts; no real handle reaches it
/// because handles stay below the table size, a `u32`.
const EMPTY: u32 = u32::MAX;

/// The most memory the arrays of one [`Layout::Range`] table may take (4,096 arrays of
/// 256 KiB for a 16-bit range key; twice that under `serve`, whose live tables keep two
/// copies). Past it, values with many ranges keep their segments.
pub const RANGE_ARRAY_BYTES: usize = 1 << 30;

/// What [`Table::footprint`] reports.
#[derive(Debug, Clone)]
pub struct Footprint {
    pub layout: Layout,
    /// What the lookup structure holds: "212 tuples", "1000 range arrays"; may be empty.
    pub detail: String,
    /// Bytes of the lookup structure alone, and of the whole table.
    pub index_bytes: usize,
    pub bytes: usize,
}

/// A match-action table: its entries, default action and lookup index.
pub struct Table {
    schema: Arc<TableSchema>,
    /// Indexed by handle; `None` for deleted handles.
    slots: Vec<Option<Entry>>,
    free: BTreeSet<u32>,
    len: usize,
    next_seq: u64,
    default: ActionCall,
    /// Normalized key and priority of every entry, for duplicate detection
    /// independent of the lookup layout.
    keys: FxHashMap<(Box<[MatchValue]>, Option<u32>), u32>,
    index: Index,
    /// Where each action's arguments lie in a row (see `jitview::arg_slots`).
    rows: RowLayout,
    /// The datapath's view of each entry, by handle: a row of `1 << rows.shift` bytes, the
    /// action id then its arguments packed, so that a hit reads one line and no pointer.
    /// Row 0 starts at word `hot_at`, on a 64-byte boundary, so no row straddles a line.
    hot: Vec<u64>,
    hot_at: usize,
    /// The default action as a row.
    hot_default: Vec<u64>,
    /// Lane 0 of the per-entry counters, by handle; `lanes` are the others (one per
    /// datapath thread beyond the first, see `set_lanes`).
    counters: Vec<Counter>,
    lanes: Vec<Vec<Counter>>,
    /// Set once a table with `const entries` has them: no entry may be added, changed or
    /// removed after that.
    sealed: bool,
    /// What generated code reads to look this table up inline (see `jitview`); refreshed after
    /// every change.
    view: JitView,
    /// The inline lookup's hash table, for `KIND_HASH` and `KIND_RANGE`.
    jit_hash: JitHash,
}

impl Table {
    /// Where generated code finds a table's [`JitView`] inside its `Table`, which it reads in
    /// place (the table set's tables are an array of `Table`s).
    pub const VIEW_OFFSET: usize = std::mem::offset_of!(Table, view);

    /// The view generated code reads (for tests of the runtime's side of it).
    pub fn view(&self) -> &JitView {
        &self.view
    }
}

impl Clone for Table {
    // By hand: the view must point at the clone's own arrays, not the original's.
    fn clone(&self) -> Self {
        let mut t = Table {
            schema: self.schema.clone(),
            slots: self.slots.clone(),
            free: self.free.clone(),
            len: self.len,
            next_seq: self.next_seq,
            default: self.default.clone(),
            keys: self.keys.clone(),
            index: self.index.clone(),
            rows: self.rows.clone(),
            // Re-aligned below: a copy of the vector need not start on a line.
            hot: Vec::new(),
            hot_at: 0,
            hot_default: self.hot_default.clone(),
            counters: self.counters.clone(),
            lanes: self.lanes.clone(),
            sealed: self.sealed,
            view: self.view,
            jit_hash: JitHash::default(),
        };
        t.copy_rows_from(self);
        // The range groups' arrays were cloned too: rebuild the hash from the clone's.
        let keys: Vec<Box<[MatchValue]>> =
            t.slots.iter().flatten().map(|e| e.key.clone()).collect();
        let handles: Vec<u32> = (0..t.slots.len() as u32)
            .filter(|h| t.get(*h).is_some())
            .collect();
        for (k, h) in keys.iter().zip(handles) {
            t.update_jit_hash(k, Some(h));
        }
        t.refresh_view();
        t
    }
}

impl fmt::Debug for Table {
    // A summary: the lookup arrays can hold hundreds of thousands of slots.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("name", &self.schema.name)
            .field("layout", &self.layout())
            .field("entries", &self.len)
            .field("default", &self.default)
            .finish_non_exhaustive()
    }
}

/// The effective width of a field: values are `u128`.
fn width_of(field: &KeyField) -> u32 {
    field.width.min(128)
}

/// The mask of the top `len` bits of a `width`-bit field.
fn prefix_mask(len: u32, width: u32) -> u128 {
    ones(width) & !ones(width.saturating_sub(len))
}

/// Concatenates `(value, width)` pairs into one `u128`; `None` if a value
/// is wider than its field (so it cannot match any entry).
fn pack(fields: impl Iterator<Item = (u128, u32)>) -> Option<u128> {
    let mut acc = 0u128;
    for (v, w) in fields {
        if !fits(v, w) {
            return None;
        }
        acc = if w >= 128 { 0 } else { acc << w } | v;
    }
    Some(acc)
}

/// The value an exact or lpm entry field contributes to a hash key.
fn entry_value(mv: &MatchValue) -> u128 {
    match *mv {
        MatchValue::Exact(v) | MatchValue::Optional(Some(v)) => v,
        MatchValue::Lpm { value, .. } | MatchValue::Ternary { value, .. } => value,
        MatchValue::Range { lo, .. } => lo,
        MatchValue::Optional(None) => 0,
    }
}

fn widths(fields: &[KeyField]) -> Box<[u32]> {
    fields.iter().map(width_of).collect()
}

fn entry_at(slots: &[Option<Entry>], h: u32) -> Option<&Entry> {
    slots.get(h as usize).and_then(Option::as_ref)
}

#[cfg(test)]
mod tests;
