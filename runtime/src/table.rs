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
//! | [`Layout::RangeArray`] | exact fields plus one range field of <= 16 bits | one hash probe on the exact fields, then one array load (2^width `u32` slots, i.e. 256 KiB for 16 bits, per distinct exact key, pre-resolved by priority; at most [`RANGE_ARRAY_BYTES`] of arrays, so 4,096 distinct exact keys for a 16-bit range) |
//! | [`Layout::Scan`] | anything else with ternary, range or optional fields (or several lpm fields) | linear scan over `n * k` packed conditions in priority order, first match wins |
//!
//! Entries of priority tables (those with a ternary, range or optional key)
//! follow BMv2: the *smaller* priority value wins, ties go to the older entry.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::fmt;
use std::hash::Hasher;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::jitview::{JitHash, JitView};
use rustc_hash::{FxHashMap, FxHasher};
use thiserror::Error;

use crate::value::{fits, ones};

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
    fn matches(&self, k: u128, width: u32) -> bool {
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
    #[error("the table is full ({size} entries)")]
    Full { size: u32 },
    #[error(
        "the table's range key gives each distinct value of its exact keys an array of \
         {array_bytes} bytes, and all {limit} the table may have (1 GiB) are in use"
    )]
    RangeArrays { limit: usize, array_bytes: usize },
    #[error("no entry with handle {handle}")]
    UnknownHandle { handle: EntryHandle },
    #[error("the default action is const and cannot be changed")]
    ConstDefault,
    #[error("action {action}: parameter {param} is declared nonzero; 0 is not allowed")]
    ZeroArg { action: String, param: String },
    #[error("the table's entries are const (declared with `const entries`) and cannot be changed")]
    ConstEntries,
}

/// The lookup data structure a table uses; see the module docs for costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Direct,
    ExactHash,
    Lpm,
    RangeArray,
    Scan,
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

#[derive(Debug, Clone)]
struct Entry {
    key: Box<[MatchValue]>,
    priority: Option<u32>,
    call: ActionCall,
    /// Insertion order, to break priority ties in favour of older entries.
    seq: u64,
}

/// An entry's packet and byte counters, apart from the entry so that the datapath touches
/// only them and the entry's row of [`Table::hot`]. `repr(C)`: generated code adds to them.
#[repr(C)]
#[derive(Debug, Default)]
struct Counter {
    packets: AtomicU64,
    bytes: AtomicU64,
}

impl Clone for Counter {
    fn clone(&self) -> Self {
        Counter {
            packets: AtomicU64::new(self.packets.load(Ordering::Relaxed)),
            bytes: AtomicU64::new(self.bytes.load(Ordering::Relaxed)),
        }
    }
}

/// Marks an empty slot in the array layouts; no real handle reaches it
/// because handles stay below the table size, a `u32`.
const EMPTY: u32 = u32::MAX;

/// The most memory the arrays of one [`Layout::RangeArray`] table may take
/// (4,096 arrays of 256 KiB for a 16-bit range key; twice that under `serve`,
/// whose live tables keep two copies).
pub const RANGE_ARRAY_BYTES: usize = 1 << 30;

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
    /// The datapath's view of each entry, by handle: `stride` values, the action id then its
    /// arguments, back to back, so that a hit costs one row read and no pointer chase.
    hot: Vec<u128>,
    stride: usize,
    /// The default action as a row.
    hot_default: Vec<u128>,
    counters: Vec<Counter>,
    /// Set once a table with `const entries` has them: no entry may be added, changed or
    /// removed after that.
    sealed: bool,
    /// What generated code reads to look this table up inline (see `jitview`); refreshed after
    /// every change.
    pub view: JitView,
    /// The inline lookup's hash table, for `KIND_HASH` and `KIND_RANGE`.
    jit_hash: JitHash,
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
            hot: self.hot.clone(),
            stride: self.stride,
            hot_default: self.hot_default.clone(),
            counters: self.counters.clone(),
            sealed: self.sealed,
            view: self.view,
            jit_hash: JitHash::default(),
        };
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

impl Table {
    /// Creates an empty table and picks its lookup layout.
    ///
    /// Field widths above 128 bits are treated as 128 (values are `u128`).
    pub fn new(schema: Arc<TableSchema>) -> Self {
        let index = Index::for_schema(&schema);
        let mut t = Table {
            default: schema.default_action.clone(),
            schema,
            slots: Vec::new(),
            free: BTreeSet::new(),
            len: 0,
            next_seq: 0,
            keys: FxHashMap::default(),
            index,
            hot: Vec::new(),
            stride: 1,
            hot_default: Vec::new(),
            counters: Vec::new(),
            sealed: false,
            view: JitView::default(),
            jit_hash: JitHash::default(),
        };
        t.view.kind = crate::jitview::kind_for(&t.schema.keys);
        t.set_hot_default();
        t.refresh_view();
        t
    }

    /// Points the view at the current arrays (which a change may have moved).
    fn refresh_view(&mut self) {
        let v = &mut self.view;
        v.hot = self.hot.as_ptr() as u64;
        v.stride = self.stride as u64;
        v.default_row = self.hot_default.as_ptr() as u64;
        v.counters = self.counters.as_ptr() as u64;
        if let Index::Direct { slots, .. } = &self.index {
            v.direct = slots.as_ptr() as u64;
        }
        if let Index::RangeArray(ra) = &self.index {
            v.range_pos = ra.pos as u64;
        }
        if let [_, k1] = &self.schema.keys[..] {
            v.width1 = u64::from(k1.width);
        }
        self.jit_hash.fill(v);
    }

    /// Keeps the inline lookup's hash table in step with an entry added or removed.
    fn update_jit_hash(&mut self, key: &[MatchValue], handle: Option<u32>) {
        let exact = |m: &MatchValue| match *m {
            MatchValue::Exact(v) => u64::try_from(v).ok(),
            _ => None,
        };
        match self.view.kind {
            crate::jitview::KIND_HASH => {
                let packed = match key {
                    [a] => exact(a),
                    [a, b] => exact(a).zip(exact(b)).map(|(a, b)| {
                        let w1 = self.schema.keys[1].width;
                        (a << w1) | b
                    }),
                    _ => None,
                };
                if let Some(k) = packed {
                    match handle {
                        Some(h) => self.jit_hash.insert(k, u64::from(h) + 1),
                        None => self.jit_hash.remove(k),
                    }
                }
            }
            crate::jitview::KIND_RANGE => {
                let Index::RangeArray(ra) = &self.index else {
                    return;
                };
                let Some(e) = key.get(1 - ra.pos).and_then(exact) else {
                    return;
                };
                // The group's array exists while the group has members.
                match ra.groups.get(&u128::from(e)) {
                    Some(g) => self.jit_hash.insert(e, g.slots.as_ptr() as u64),
                    None => self.jit_hash.remove(e),
                }
            }
            _ => {}
        }
    }

    fn row(call: &ActionCall, stride: usize) -> impl Iterator<Item = u128> + '_ {
        std::iter::once(u128::from(call.action))
            .chain(call.args.iter().copied())
            .chain(std::iter::repeat(0))
            .take(stride)
    }

    fn set_hot_default(&mut self) {
        self.hot_default = std::iter::once(u128::from(self.default.action))
            .chain(self.default.args.iter().copied())
            .collect();
    }

    /// Writes an entry's row, widening every row first if its arguments need it.
    fn set_hot(&mut self, h: u32, call: &ActionCall) {
        let need = call.args.len() + 1;
        if need > self.stride {
            let old = std::mem::take(&mut self.hot);
            let n = old.len() / self.stride;
            let mut grown = vec![0u128; n * need];
            for (i, row) in old.chunks(self.stride).enumerate() {
                grown[i * need..i * need + row.len()].copy_from_slice(row);
            }
            self.hot = grown;
            self.stride = need;
        }
        let at = h as usize * self.stride;
        if self.hot.len() < at + self.stride {
            self.hot.resize(at + self.stride, 0);
        }
        let stride = self.stride;
        for (dst, v) in self.hot[at..at + stride]
            .iter_mut()
            .zip(Self::row(call, stride))
        {
            *dst = v;
        }
        if self.counters.len() <= h as usize {
            self.counters.resize_with(h as usize + 1, Counter::default);
        }
    }

    pub fn schema(&self) -> &Arc<TableSchema> {
        &self.schema
    }

    pub fn name(&self) -> &str {
        &self.schema.name
    }

    /// Whether entries need a priority (a ternary, range or optional key).
    pub fn needs_priority(&self) -> bool {
        self.schema.keys.iter().any(|k| k.kind.needs_priority())
    }

    pub fn layout(&self) -> Layout {
        self.index.layout()
    }

    /// Adds an entry and returns its handle.
    ///
    /// The key is normalized the way BMv2 does it: bits of an lpm value
    /// below the prefix length and bits of a ternary value outside the mask
    /// are cleared rather than rejected. `actions` is the program's action
    /// list, used to check the action's arguments.
    pub fn add(
        &mut self,
        key: Vec<MatchValue>,
        call: ActionCall,
        priority: Option<u32>,
        actions: &[ActionSchema],
    ) -> Result<EntryHandle, TableError> {
        self.check_mutable()?;
        let key = self.normalize_key(key)?;
        match (self.needs_priority(), priority) {
            (true, None) => return Err(TableError::PriorityRequired),
            (false, Some(_)) => return Err(TableError::PriorityForbidden),
            _ => {}
        }
        self.check_call(&call, actions)?;
        let dup_key = (key, priority);
        if let Some(&existing) = self.keys.get(&dup_key) {
            return Err(TableError::DuplicateKey {
                existing: EntryHandle(existing),
            });
        }
        if self.len >= self.schema.size as usize {
            return Err(TableError::Full {
                size: self.schema.size,
            });
        }
        if let Index::RangeArray(ra) = &self.index {
            ra.check_room(&dup_key.0)?;
        }
        let handle = match self.free.pop_first() {
            Some(h) => h,
            // len < size <= u32::MAX, and without free handles slots.len() == len.
            None => u32::try_from(self.slots.len()).map_err(|_| TableError::Full {
                size: self.schema.size,
            })?,
        };
        let entry = Entry {
            key: dup_key.0.clone(),
            priority,
            call,
            seq: self.next_seq,
        };
        self.set_hot(handle, &entry.call);
        if let Some(c) = self.counters.get(handle as usize) {
            c.packets.store(0, Ordering::Relaxed);
            c.bytes.store(0, Ordering::Relaxed);
        }
        self.next_seq += 1;
        self.keys.insert(dup_key, handle);
        let slot = handle as usize;
        if slot == self.slots.len() {
            self.slots.push(Some(entry));
        } else if let Some(s) = self.slots.get_mut(slot) {
            *s = Some(entry);
        }
        self.len += 1;
        self.index.insert(handle, &self.slots, &self.schema.keys);
        if let Some(key) = self.get(handle).map(|e| e.key.clone()) {
            self.update_jit_hash(&key, Some(handle));
        }
        self.refresh_view();
        Ok(EntryHandle(handle))
    }

    /// Replaces the action of an existing entry; its counters are kept.
    pub fn modify(
        &mut self,
        h: EntryHandle,
        call: ActionCall,
        actions: &[ActionSchema],
    ) -> Result<(), TableError> {
        self.check_mutable()?;
        self.check_call(&call, actions)?;
        let entry = self.entry_mut(h)?;
        // The layouts store handles, not actions, so no index update is needed.
        entry.call = call.clone();
        self.set_hot(h.0, &call);
        self.refresh_view();
        Ok(())
    }

    /// Refuses changes to the entries of a table whose entries are const.
    pub fn check_mutable(&self) -> Result<(), TableError> {
        if self.sealed {
            Err(TableError::ConstEntries)
        } else {
            Ok(())
        }
    }

    /// Makes the current entries final (for `const entries`).
    pub fn seal(&mut self) {
        self.sealed = true;
    }

    /// Deletes an entry; its handle becomes free for reuse.
    pub fn delete(&mut self, h: EntryHandle) -> Result<(), TableError> {
        self.check_mutable()?;
        self.entry_mut(h)?;
        self.index.remove(h.0, &self.slots);
        if let Some(entry) = self.slots.get_mut(h.0 as usize).and_then(Option::take) {
            self.update_jit_hash(&entry.key, None);
            self.keys.remove(&(entry.key, entry.priority));
        }
        self.refresh_view();
        self.free.insert(h.0);
        self.len -= 1;
        Ok(())
    }

    /// Sets the action used when no entry matches.
    pub fn set_default(
        &mut self,
        call: ActionCall,
        actions: &[ActionSchema],
    ) -> Result<(), TableError> {
        if self.schema.const_default {
            return Err(TableError::ConstDefault);
        }
        self.check_call(&call, actions)?;
        self.default = call;
        self.set_hot_default();
        self.refresh_view();
        Ok(())
    }

    /// Restores the schema's default action.
    pub fn reset_default(&mut self) {
        self.default = self.schema.default_action.clone();
        self.set_hot_default();
        self.refresh_view();
    }

    /// Removes every entry (the default action is kept).
    pub fn clear(&mut self) {
        self.slots.clear();
        self.free.clear();
        self.keys.clear();
        self.len = 0;
        self.index = Index::for_schema(&self.schema);
        self.hot.clear();
        self.counters.clear();
        self.jit_hash = JitHash::default();
        self.refresh_view();
    }

    pub fn num_entries(&self) -> usize {
        self.len
    }

    /// All entries in handle order.
    pub fn entries(&self) -> impl Iterator<Item = EntryRef<'_>> {
        self.slots.iter().enumerate().filter_map(|(h, slot)| {
            let handle = EntryHandle(u32::try_from(h).ok()?);
            slot.as_ref().map(|e| self.entry_ref(handle, e))
        })
    }

    /// One entry, if the handle is in use.
    pub fn entry(&self, h: EntryHandle) -> Option<EntryRef<'_>> {
        self.get(h.0).map(|e| self.entry_ref(h, e))
    }

    pub fn default_action(&self) -> &ActionCall {
        &self.default
    }

    /// Finds the winning entry for a packet; `key[i]` is the packet's value
    /// for key field `i`. Returns `None` on a miss (use
    /// [`Table::default_action`]), when `key` has the wrong length, or when
    /// a value is wider than its field. Never allocates.
    pub fn lookup(&self, key: &[u128]) -> Option<(EntryHandle, &ActionCall)> {
        let handle = self.index.lookup(key, &self.slots, &self.schema.keys)?;
        self.get(handle).map(|e| (EntryHandle(handle), &e.call))
    }

    /// [`Table::lookup`] and [`Table::count`] in one step, for the datapath.
    #[inline]
    pub fn lookup_counted(&self, key: &[u128], bytes: u64) -> Option<(EntryHandle, &ActionCall)> {
        let handle = self.index.lookup(key, &self.slots, &self.schema.keys)?;
        let e = self.get(handle)?;
        self.count(EntryHandle(handle), bytes);
        Some((EntryHandle(handle), &e.call))
    }

    /// The datapath's lookup for a table of one or two key fields, with the values passed
    /// directly: the common shapes (exact keys packed in a hash map or a direct array, an
    /// exact key and a range) are looked up without building a key slice. Same result as
    /// [`Table::lookup_row`].
    #[inline]
    pub fn lookup_row2(&self, k0: u128, k1: u128, bytes: u64) -> (bool, &[u128]) {
        let n = self.schema.keys.len();
        let h = match &self.index {
            Index::Packed { widths, map } if n <= 2 => {
                let packed = if n == 1 {
                    fits(k0, widths[0]).then_some(k0)
                } else if fits(k0, widths[0]) && fits(k1, widths[1]) && widths[0] + widths[1] <= 128
                {
                    Some((k0 << widths[1]) | k1)
                } else {
                    None
                };
                packed.and_then(|k| map.get(&k).copied())
            }
            Index::RangeArray(ra) if n == 2 => {
                let (e, r) = if ra.pos == 1 { (k0, k1) } else { (k1, k0) };
                let ew = ra.widths[1 - ra.pos];
                if fits(e, ew) {
                    ra.groups
                        .get(&e)
                        .and_then(|g| g.slots.get(usize::try_from(r).ok()?))
                        .copied()
                        .filter(|&h| h != EMPTY)
                } else {
                    None
                }
            }
            _ => {
                let key = [k0, k1];
                return self.lookup_row(&key[..n.min(2)], bytes);
            }
        };
        if let Some(h) = h {
            let at = h as usize * self.stride;
            if let Some(row) = self.hot.get(at..at + self.stride) {
                self.count(EntryHandle(h), bytes);
                return (true, row);
            }
        }
        (false, &self.hot_default)
    }

    /// The datapath's lookup: counts a hit and returns the row of the chosen action (its id,
    /// then its arguments, padded with zeros to the table's widest action), and whether it hit.
    #[inline]
    pub fn lookup_row(&self, key: &[u128], bytes: u64) -> (bool, &[u128]) {
        if let Some(h) = self.index.lookup(key, &self.slots, &self.schema.keys) {
            let at = h as usize * self.stride;
            if let Some(row) = self.hot.get(at..at + self.stride) {
                self.count(EntryHandle(h), bytes);
                return (true, row);
            }
        }
        (false, &self.hot_default)
    }

    /// Counts one packet of `bytes` bytes against an entry. Unknown handles
    /// are ignored.
    ///
    /// Only one datapath thread writes the counters, so a relaxed load and
    /// store suffice and avoid a read-modify-write atomic per packet.
    pub fn count(&self, h: EntryHandle, bytes: u64) {
        if let Some(c) = self.counters.get(h.0 as usize) {
            let packets = c.packets.load(Ordering::Relaxed);
            c.packets.store(packets.wrapping_add(1), Ordering::Relaxed);
            let total = c.bytes.load(Ordering::Relaxed);
            c.bytes.store(total.wrapping_add(bytes), Ordering::Relaxed);
        }
    }

    /// Adds another copy's counters into these (the copies of a live table count separately).
    pub fn add_counters(&self, other: &Table) {
        for (mine, theirs) in self.counters.iter().zip(&other.counters) {
            let p = mine.packets.load(Ordering::Relaxed) + theirs.packets.load(Ordering::Relaxed);
            mine.packets.store(p, Ordering::Relaxed);
            let b = mine.bytes.load(Ordering::Relaxed) + theirs.bytes.load(Ordering::Relaxed);
            mine.bytes.store(b, Ordering::Relaxed);
        }
    }

    /// Zeroes the packet and byte counters of every entry.
    pub fn reset_counters(&self) {
        for c in &self.counters {
            c.packets.store(0, Ordering::Relaxed);
            c.bytes.store(0, Ordering::Relaxed);
        }
    }

    fn entry_ref<'a>(&'a self, handle: EntryHandle, e: &'a Entry) -> EntryRef<'a> {
        let c = self.counters.get(handle.0 as usize);
        EntryRef {
            handle,
            key: &e.key,
            priority: e.priority,
            call: &e.call,
            packets: c.map_or(0, |c| c.packets.load(Ordering::Relaxed)),
            bytes: c.map_or(0, |c| c.bytes.load(Ordering::Relaxed)),
        }
    }

    fn get(&self, h: u32) -> Option<&Entry> {
        self.slots.get(h as usize).and_then(Option::as_ref)
    }

    fn entry_mut(&mut self, h: EntryHandle) -> Result<&mut Entry, TableError> {
        self.slots
            .get_mut(h.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(TableError::UnknownHandle { handle: h })
    }

    fn normalize_key(&self, key: Vec<MatchValue>) -> Result<Box<[MatchValue]>, TableError> {
        if key.len() != self.schema.keys.len() {
            return Err(TableError::KeyCount {
                expected: self.schema.keys.len(),
                got: key.len(),
            });
        }
        key.into_iter()
            .zip(&self.schema.keys)
            .map(|(value, field)| normalize(value, field))
            .collect()
    }

    fn check_call(&self, call: &ActionCall, actions: &[ActionSchema]) -> Result<(), TableError> {
        let schema = actions
            .get(call.action as usize)
            .ok_or(TableError::UnknownAction {
                action: call.action,
            })?;
        if !self.schema.actions.contains(&call.action) {
            return Err(TableError::ActionNotAllowed {
                action: schema.name.clone(),
            });
        }
        if call.args.len() != schema.params.len() {
            return Err(TableError::ArgCount {
                action: schema.name.clone(),
                expected: schema.params.len(),
                got: call.args.len(),
            });
        }
        for (&value, param) in call.args.iter().zip(&schema.params) {
            if param.nonzero && value == 0 {
                return Err(TableError::ZeroArg {
                    action: schema.name.clone(),
                    param: param.name.clone(),
                });
            }
            if !fits(value, param.width) {
                return Err(TableError::ArgTooWide {
                    action: schema.name.clone(),
                    param: param.name.clone(),
                    value,
                    width: param.width,
                });
            }
        }
        Ok(())
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

fn normalize(value: MatchValue, field: &KeyField) -> Result<MatchValue, TableError> {
    if value.kind() != field.kind {
        return Err(TableError::KindMismatch {
            field: field.name.clone(),
            expected: field.kind,
            got: value.kind(),
        });
    }
    let width = width_of(field);
    let check = |v: u128| {
        if fits(v, width) {
            Ok(v)
        } else {
            Err(TableError::KeyTooWide {
                field: field.name.clone(),
                value: v,
                width,
            })
        }
    };
    Ok(match value {
        MatchValue::Exact(v) => MatchValue::Exact(check(v)?),
        MatchValue::Lpm { value, prefix_len } => {
            check(value)?;
            if prefix_len > width {
                return Err(TableError::PrefixTooLong {
                    field: field.name.clone(),
                    prefix_len,
                    width,
                });
            }
            MatchValue::Lpm {
                value: value & prefix_mask(prefix_len, width),
                prefix_len,
            }
        }
        MatchValue::Ternary { value, mask } => MatchValue::Ternary {
            value: check(value)? & check(mask)?,
            mask,
        },
        MatchValue::Range { lo, hi } => {
            if check(lo)? > check(hi)? {
                return Err(TableError::RangeInverted {
                    field: field.name.clone(),
                    lo,
                    hi,
                });
            }
            MatchValue::Range { lo, hi }
        }
        MatchValue::Optional(v) => MatchValue::Optional(v.map(check).transpose()?),
    })
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

#[derive(Debug, Clone)]
enum Index {
    /// Slot `packed key` holds the handle, or [`EMPTY`].
    Direct {
        widths: Box<[u32]>,
        slots: Box<[u32]>,
    },
    Packed {
        widths: Box<[u32]>,
        map: FxHashMap<u128, u32>,
    },
    Wide {
        map: FxHashMap<Box<[u128]>, u32>,
    },
    Lpm(LpmIndex),
    /// A single lpm key of at most 32 bits: a multibit trie.
    Trie(LpmTrie),
    RangeArray(RangeIndex),
    Scan(ScanIndex),
}

impl Index {
    fn for_schema(schema: &TableSchema) -> Index {
        let keys = &schema.keys;
        let total = keys.iter().map(width_of).fold(0, u32::saturating_add);
        let count = |kind| keys.iter().filter(|k| k.kind == kind).count();
        let exact = count(MatchKind::Exact);
        let lpm = count(MatchKind::Lpm);
        let range = count(MatchKind::Range);
        if exact == keys.len() {
            return if total <= 16 {
                Index::Direct {
                    widths: widths(keys),
                    slots: vec![EMPTY; 1 << total].into_boxed_slice(),
                }
            } else if total <= 128 {
                Index::Packed {
                    widths: widths(keys),
                    map: FxHashMap::default(),
                }
            } else {
                Index::Wide {
                    map: FxHashMap::default(),
                }
            };
        }
        if let [k] = &keys[..] {
            if k.kind == MatchKind::Lpm && k.width <= 32 {
                return Index::Trie(LpmTrie::new(k.width));
            }
        }
        if lpm == 1 && exact + 1 == keys.len() {
            if let Some(pos) = keys.iter().position(|k| k.kind == MatchKind::Lpm) {
                return Index::Lpm(LpmIndex {
                    pos,
                    widths: widths(keys),
                    packed: total <= 128,
                    levels: Vec::new(),
                });
            }
        }
        if range == 1 && exact + 1 == keys.len() {
            if let Some(pos) = keys.iter().position(|k| k.kind == MatchKind::Range) {
                let range_width = keys.get(pos).map_or(u32::MAX, width_of);
                if range_width <= 16 && total - range_width <= 128 {
                    return Index::RangeArray(RangeIndex {
                        pos,
                        widths: widths(keys),
                        groups: FxHashMap::default(),
                    });
                }
            }
        }
        let stride = NonZeroUsize::new(keys.len()).unwrap_or(NonZeroUsize::MIN);
        Index::Scan(ScanIndex {
            stride,
            widths: widths(keys),
            by_priority: keys.iter().any(|k| k.kind.needs_priority()),
            order: Vec::new(),
            conds: Vec::new(),
        })
    }

    fn layout(&self) -> Layout {
        match self {
            Index::Direct { .. } => Layout::Direct,
            Index::Packed { .. } | Index::Wide { .. } => Layout::ExactHash,
            Index::Lpm(_) | Index::Trie(_) => Layout::Lpm,
            Index::RangeArray(_) => Layout::RangeArray,
            Index::Scan(_) => Layout::Scan,
        }
    }

    /// Indexes the entry stored at `slots[h]`.
    fn insert(&mut self, h: u32, slots: &[Option<Entry>], fields: &[KeyField]) {
        let Some(entry) = entry_at(slots, h) else {
            return;
        };
        let values = || entry.key.iter().map(entry_value);
        match self {
            Index::Direct { widths, slots } => {
                if let Some(slot) = pack(values().zip(widths.iter().copied()))
                    .and_then(|i| slots.get_mut(usize::try_from(i).ok()?))
                {
                    *slot = h;
                }
            }
            Index::Packed { widths, map } => {
                if let Some(k) = pack(values().zip(widths.iter().copied())) {
                    map.insert(k, h);
                }
            }
            Index::Wide { map } => {
                map.insert(values().collect(), h);
            }
            Index::Lpm(lpm) => lpm.insert(h, entry),
            Index::Trie(t) => {
                if let Some(&MatchValue::Lpm { value, prefix_len }) = entry.key.first() {
                    t.insert(value, prefix_len, h);
                }
            }
            Index::RangeArray(ra) => ra.update(h, entry, slots, true),
            Index::Scan(scan) => scan.insert(h, entry, fields),
        }
    }

    /// Unindexes the entry still stored at `slots[h]`.
    fn remove(&mut self, h: u32, slots: &[Option<Entry>]) {
        let Some(entry) = entry_at(slots, h) else {
            return;
        };
        let values = || entry.key.iter().map(entry_value);
        match self {
            Index::Direct { widths, slots } => {
                if let Some(slot) = pack(values().zip(widths.iter().copied()))
                    .and_then(|i| slots.get_mut(usize::try_from(i).ok()?))
                {
                    *slot = EMPTY;
                }
            }
            Index::Packed { widths, map } => {
                if let Some(k) = pack(values().zip(widths.iter().copied())) {
                    map.remove(&k);
                }
            }
            Index::Wide { map } => {
                let key: Box<[u128]> = values().collect();
                map.remove(&key);
            }
            Index::Lpm(lpm) => lpm.remove(h, entry),
            Index::Trie(t) => {
                if let Some(&MatchValue::Lpm { value, prefix_len }) = entry.key.first() {
                    t.remove(value, prefix_len, h);
                }
            }
            Index::RangeArray(ra) => ra.update(h, entry, slots, false),
            Index::Scan(scan) => scan.remove(entry),
        }
    }

    fn lookup(&self, key: &[u128], slots: &[Option<Entry>], fields: &[KeyField]) -> Option<u32> {
        match self {
            Index::Direct { widths, slots } => {
                if key.len() != widths.len() {
                    return None;
                }
                let i = pack(key.iter().copied().zip(widths.iter().copied()))?;
                let h = *slots.get(usize::try_from(i).ok()?)?;
                (h != EMPTY).then_some(h)
            }
            Index::Packed { widths, map } => {
                if key.len() != widths.len() {
                    return None;
                }
                map.get(&pack(key.iter().copied().zip(widths.iter().copied()))?)
                    .copied()
            }
            Index::Wide { map } => map.get(key).copied(),
            Index::Lpm(lpm) => lpm.lookup(key, slots, fields),
            Index::Trie(t) => match key {
                [k] => t.lookup(*k),
                _ => None,
            },
            Index::RangeArray(ra) => ra.lookup(key),
            Index::Scan(scan) => scan.lookup(key),
        }
    }
}

/// A multibit trie with 8-bit strides for a single lpm key of at most 32 bits: a lookup reads
/// at most four nodes, one per byte of the key, keeping the best match seen so far. Each node
/// holds, for each of its 256 slots, the longest of its own prefixes (those ending within its
/// byte) that covers the slot, and the child for the next byte. Keys are left-aligned to 32
/// bits.
#[derive(Debug, Clone)]
struct LpmTrie {
    width: u32,
    nodes: Vec<TrieNode>,
}

#[derive(Debug, Clone)]
struct TrieNode {
    best: Box<[u32; 256]>,
    /// Length within the node (0 to 8) of the prefix in `best`.
    best_len: Box<[u8; 256]>,
    /// Child node index; 0 is none (the root is never a child).
    child: Box<[u32; 256]>,
    /// The prefixes ending in this node: (byte, length within the node, handle).
    own: Vec<(u8, u8, u32)>,
}

impl TrieNode {
    fn new() -> TrieNode {
        TrieNode {
            best: Box::new([EMPTY; 256]),
            best_len: Box::new([0; 256]),
            child: Box::new([0; 256]),
            own: Vec::new(),
        }
    }

    /// The slots a prefix of `len` bits (0 to 8) starting with `byte` covers.
    fn span(byte: u8, len: u8) -> std::ops::Range<usize> {
        let keep = if len == 0 { 0 } else { 0xffu8 << (8 - len) };
        let start = usize::from(byte & keep);
        start..start + (1usize << (8 - len))
    }

    fn recompute(&mut self, range: std::ops::Range<usize>) {
        for slot in range {
            let mut best = (EMPTY, 0u8);
            for &(b, l, h) in &self.own {
                if Self::span(b, l).contains(&slot) && (best.0 == EMPTY || l > best.1) {
                    best = (h, l);
                }
            }
            self.best[slot] = best.0;
            self.best_len[slot] = best.1;
        }
    }
}

impl LpmTrie {
    fn new(width: u32) -> LpmTrie {
        LpmTrie {
            width,
            nodes: vec![TrieNode::new()],
        }
    }

    fn align(&self, v: u128) -> u32 {
        ((v as u64) << (32 - self.width.min(32))) as u32
    }

    /// The node where a prefix of `len` bits ends, made if `create`; with the length within it.
    fn node_for(&mut self, bits: u32, len: u32, create: bool) -> Option<(usize, u8)> {
        let level = if len == 0 { 0 } else { (len - 1) / 8 };
        let mut n = 0usize;
        for l in 0..level {
            let byte = (bits >> (24 - 8 * l)) as u8 as usize;
            let c = self.nodes[n].child[byte] as usize;
            n = if c != 0 {
                c
            } else if create {
                self.nodes.push(TrieNode::new());
                let id = self.nodes.len() - 1;
                self.nodes[n].child[byte] = id as u32;
                id
            } else {
                return None;
            };
        }
        Some((n, (len - 8 * level) as u8))
    }

    fn insert(&mut self, value: u128, len: u32, h: u32) {
        let bits = self.align(value);
        let Some((n, inlen)) = self.node_for(bits, len, true) else {
            return;
        };
        let level = if len == 0 { 0 } else { (len - 1) / 8 };
        let byte = (bits >> (24 - 8 * level)) as u8;
        let node = &mut self.nodes[n];
        node.own.push((byte, inlen, h));
        for slot in TrieNode::span(byte, inlen) {
            if node.best[slot] == EMPTY || node.best_len[slot] <= inlen {
                node.best[slot] = h;
                node.best_len[slot] = inlen;
            }
        }
    }

    fn remove(&mut self, value: u128, len: u32, h: u32) {
        let bits = self.align(value);
        let Some((n, inlen)) = self.node_for(bits, len, false) else {
            return;
        };
        let level = if len == 0 { 0 } else { (len - 1) / 8 };
        let byte = (bits >> (24 - 8 * level)) as u8;
        let node = &mut self.nodes[n];
        node.own
            .retain(|&(b, l, x)| !(b == byte && l == inlen && x == h));
        node.recompute(TrieNode::span(byte, inlen));
    }

    fn lookup(&self, key: u128) -> Option<u32> {
        if !fits(key, self.width) {
            return None;
        }
        let bits = self.align(key);
        let mut n = 0usize;
        let mut found = EMPTY;
        for level in 0..4 {
            let byte = (bits >> (24 - 8 * level)) as u8 as usize;
            let node = &self.nodes[n];
            if node.best[byte] != EMPTY {
                found = node.best[byte];
            }
            let c = node.child[byte] as usize;
            if c == 0 || 8 * (level + 1) >= self.width {
                break;
            }
            n = c;
        }
        (found != EMPTY).then_some(found)
    }
}

/// One exact-match map per prefix length in use, searched longest first.
#[derive(Debug, Clone)]
struct LpmIndex {
    /// Position of the lpm field in the key.
    pos: usize,
    widths: Box<[u32]>,
    /// Total key width <= 128: keys are packed into a `u128`; otherwise
    /// they are hashed and candidates are checked against the entries.
    packed: bool,
    /// Sorted by prefix length, longest first; never holds an empty map.
    levels: Vec<LpmLevel>,
}

/// The entries with one prefix length. Only one of the two maps is used,
/// as chosen by [`LpmIndex::packed`].
#[derive(Debug, Clone)]
struct LpmLevel {
    len: u32,
    mask: u128,
    packed: FxHashMap<u128, u32>,
    hashed: FxHashMap<u64, Vec<u32>>,
}

impl LpmLevel {
    fn is_empty(&self) -> bool {
        self.packed.is_empty() && self.hashed.is_empty()
    }
}

impl LpmIndex {
    fn lpm_len(&self, entry: &Entry) -> u32 {
        match entry.key.get(self.pos) {
            Some(MatchValue::Lpm { prefix_len, .. }) => *prefix_len,
            _ => 0,
        }
    }

    fn lpm_width(&self) -> u32 {
        self.widths.get(self.pos).copied().unwrap_or(0)
    }

    /// The key values with the lpm field masked to `mask`.
    fn masked<'a>(&self, key: &'a [u128], mask: u128) -> impl Iterator<Item = u128> + 'a {
        let pos = self.pos;
        key.iter()
            .enumerate()
            .map(move |(i, &v)| if i == pos { v & mask } else { v })
    }

    fn hash(values: impl Iterator<Item = u128>) -> u64 {
        let mut hasher = FxHasher::default();
        for v in values {
            hasher.write_u128(v);
        }
        hasher.finish()
    }

    fn insert(&mut self, h: u32, entry: &Entry) {
        let len = self.lpm_len(entry);
        let at = self.levels.partition_point(|l| l.len > len);
        if self.levels.get(at).is_none_or(|l| l.len != len) {
            let mask = prefix_mask(len, self.lpm_width());
            let level = LpmLevel {
                len,
                mask,
                packed: FxHashMap::default(),
                hashed: FxHashMap::default(),
            };
            self.levels.insert(at, level);
        }
        let values = entry.key.iter().map(entry_value);
        let packed = self
            .packed
            .then(|| pack(values.clone().zip(self.widths.iter().copied())));
        let Some(level) = self.levels.get_mut(at) else {
            return;
        };
        match packed {
            Some(Some(k)) => {
                level.packed.insert(k, h);
            }
            Some(None) => {}
            None => level.hashed.entry(Self::hash(values)).or_default().push(h),
        }
    }

    fn remove(&mut self, h: u32, entry: &Entry) {
        let len = self.lpm_len(entry);
        let Some(at) = self.levels.iter().position(|l| l.len == len) else {
            return;
        };
        let values = entry.key.iter().map(entry_value);
        let packed = self
            .packed
            .then(|| pack(values.clone().zip(self.widths.iter().copied())));
        let Some(level) = self.levels.get_mut(at) else {
            return;
        };
        match packed {
            Some(Some(k)) => {
                level.packed.remove(&k);
            }
            Some(None) => {}
            None => {
                let hash = Self::hash(values);
                if let Some(bucket) = level.hashed.get_mut(&hash) {
                    bucket.retain(|&c| c != h);
                    if bucket.is_empty() {
                        level.hashed.remove(&hash);
                    }
                }
            }
        }
        if level.is_empty() {
            self.levels.remove(at);
        }
    }

    fn lookup(&self, key: &[u128], slots: &[Option<Entry>], fields: &[KeyField]) -> Option<u32> {
        if key.len() != self.widths.len()
            || !key
                .get(self.pos)
                .is_some_and(|&k| fits(k, self.lpm_width()))
        {
            return None;
        }
        for level in &self.levels {
            let values = self.masked(key, level.mask);
            if self.packed {
                if let Some(&h) =
                    pack(values.zip(self.widths.iter().copied())).and_then(|k| level.packed.get(&k))
                {
                    return Some(h);
                }
            } else if let Some(bucket) = level.hashed.get(&Self::hash(values)) {
                // Different keys can share a hash: confirm against the entry.
                let hit = bucket.iter().copied().find(|&h| {
                    entry_at(slots, h).is_some_and(|e| {
                        e.key
                            .iter()
                            .zip(fields)
                            .zip(key)
                            .all(|((mv, f), &k)| mv.matches(k, width_of(f)))
                    })
                });
                if hit.is_some() {
                    return hit;
                }
            }
        }
        None
    }
}

/// Exact fields plus one narrow range field: per distinct exact key, an
/// array with one slot per range value holding the winning handle.
#[derive(Debug, Clone)]
struct RangeIndex {
    /// Position of the range field in the key.
    pos: usize,
    widths: Box<[u32]>,
    groups: FxHashMap<u128, RangeGroup>,
}

#[derive(Debug, Clone)]
struct RangeGroup {
    members: Vec<u32>,
    slots: Box<[u32]>,
}

impl RangeIndex {
    fn range_width(&self) -> u32 {
        self.widths.get(self.pos).copied().unwrap_or(0)
    }

    /// Packs the exact fields of a key (all but the range field).
    fn group_key(&self, values: impl Iterator<Item = u128>) -> Option<u128> {
        let pos = self.pos;
        pack(
            values
                .zip(self.widths.iter().copied())
                .enumerate()
                .filter(|&(i, _)| i != pos)
                .map(|(_, vw)| vw),
        )
    }

    /// Refuses a key that would open a new group once the groups' arrays take
    /// [`RANGE_ARRAY_BYTES`]: without a bound, a control client could exhaust
    /// memory long before the table's `size`, with one entry per exact value.
    fn check_room(&self, key: &[MatchValue]) -> Result<(), TableError> {
        let bytes = 4usize << self.range_width();
        let limit = (RANGE_ARRAY_BYTES / bytes).max(1);
        match self.group_key(key.iter().map(entry_value)) {
            Some(gk) if self.groups.len() >= limit && !self.groups.contains_key(&gk) => {
                Err(TableError::RangeArrays {
                    limit,
                    array_bytes: bytes,
                })
            }
            _ => Ok(()),
        }
    }

    /// Adds (`insert`) or removes entry `h` and re-resolves the part of
    /// its group's array that the entry's range covers (the rest cannot
    /// change).
    fn update(&mut self, h: u32, entry: &Entry, slots: &[Option<Entry>], insert: bool) {
        let Some(gk) = self.group_key(entry.key.iter().map(entry_value)) else {
            return;
        };
        let Some(&MatchValue::Range { lo, hi }) = entry.key.get(self.pos) else {
            return;
        };
        let size = 1usize << self.range_width();
        let group = self.groups.entry(gk).or_insert_with(|| RangeGroup {
            members: Vec::new(),
            slots: vec![EMPTY; size].into_boxed_slice(),
        });
        if insert {
            group.members.push(h);
        } else {
            group.members.retain(|&m| m != h);
            if group.members.is_empty() {
                self.groups.remove(&gk);
                return;
            }
        }
        Self::resolve(group, self.pos, slots, lo, hi);
    }

    /// Refills slots `lo..=hi` of a group with a sweep over the range
    /// starts: a heap of the ranges covering the current value yields the
    /// best one, so this costs O(hi - lo + members * log members).
    fn resolve(group: &mut RangeGroup, pos: usize, slots: &[Option<Entry>], lo: u128, hi: u128) {
        let (Ok(first), Ok(last)) = (usize::try_from(lo), usize::try_from(hi)) else {
            return;
        };
        let Some(window) = group.slots.get_mut(first..=last) else {
            return;
        };
        let mut ranges: Vec<(u128, u128, u32, u64, u32)> = group
            .members
            .iter()
            .filter_map(|&m| {
                let e = entry_at(slots, m)?;
                match e.key.get(pos) {
                    Some(&MatchValue::Range { lo: l, hi: h }) if l <= hi && h >= lo => {
                        Some((l, h, e.priority.unwrap_or(0), e.seq, m))
                    }
                    _ => None,
                }
            })
            .collect();
        ranges.sort_unstable_by_key(|r| r.0);
        let mut starts = ranges.into_iter().peekable();
        // Min-heap on (priority, seq): the best covering entry is on top.
        let mut active: BinaryHeap<Reverse<(u32, u64, u128, u32)>> = BinaryHeap::new();
        for (v, slot) in (lo..).zip(window.iter_mut()) {
            while let Some((_, h, prio, seq, m)) = starts.next_if(|r| r.0 <= v) {
                active.push(Reverse((prio, seq, h, m)));
            }
            // Ranges that ended below v are dropped once they reach the top.
            while active.peek().is_some_and(|Reverse(top)| top.2 < v) {
                active.pop();
            }
            *slot = active.peek().map_or(EMPTY, |Reverse(top)| top.3);
        }
    }

    #[inline]
    fn lookup(&self, key: &[u128]) -> Option<u32> {
        if key.len() != self.widths.len() {
            return None;
        }
        // The common shape (one exact field and the range) needs no packing.
        let gk = match (key, &*self.widths) {
            ([e, _], [w, _]) if self.pos == 1 => fits(*e, *w).then_some(*e)?,
            ([_, e], [_, w]) if self.pos == 0 => fits(*e, *w).then_some(*e)?,
            _ => self.group_key(key.iter().copied())?,
        };
        let group = self.groups.get(&gk)?;
        let k = *key.get(self.pos)?;
        let h = *group.slots.get(usize::try_from(k).ok()?)?;
        (h != EMPTY).then_some(h)
    }
}

/// One compiled key condition of the scan layout.
#[derive(Debug, Clone, Copy)]
enum Cond {
    Masked { value: u128, mask: u128 },
    Range { lo: u128, hi: u128 },
}

impl Cond {
    fn new(mv: &MatchValue, width: u32) -> Cond {
        let full = ones(width);
        match *mv {
            MatchValue::Exact(v) | MatchValue::Optional(Some(v)) => Cond::Masked {
                value: v,
                mask: full,
            },
            MatchValue::Lpm { value, prefix_len } => Cond::Masked {
                value,
                mask: prefix_mask(prefix_len, width),
            },
            MatchValue::Ternary { value, mask } => Cond::Masked { value, mask },
            MatchValue::Optional(None) => Cond::Masked { value: 0, mask: 0 },
            MatchValue::Range { lo, hi } => Cond::Range { lo, hi },
        }
    }

    fn matches(self, k: u128) -> bool {
        match self {
            Cond::Masked { value, mask } => k & mask == value,
            Cond::Range { lo, hi } => lo <= k && k <= hi,
        }
    }
}

/// Entries in match order, their conditions packed row by row.
#[derive(Debug, Clone)]
struct ScanIndex {
    stride: NonZeroUsize,
    widths: Box<[u32]>,
    /// Rank by priority (smaller first); otherwise, for tables with several
    /// lpm fields, by the sum of prefix lengths (longer first).
    by_priority: bool,
    /// `(rank, seq, handle)`, sorted.
    order: Vec<(u32, u64, u32)>,
    /// `order.len() * stride` conditions.
    conds: Vec<Cond>,
}

impl ScanIndex {
    fn rank(&self, entry: &Entry) -> (u32, u64) {
        let rank = if self.by_priority {
            entry.priority.unwrap_or(0)
        } else {
            let total = entry
                .key
                .iter()
                .map(|mv| match mv {
                    MatchValue::Lpm { prefix_len, .. } => *prefix_len,
                    _ => 0,
                })
                .fold(0, u32::saturating_add);
            u32::MAX - total
        };
        (rank, entry.seq)
    }

    fn insert(&mut self, h: u32, entry: &Entry, fields: &[KeyField]) {
        let (rank, seq) = self.rank(entry);
        let at = self
            .order
            .partition_point(|&(r, s, _)| (r, s) < (rank, seq));
        self.order.insert(at, (rank, seq, h));
        let row = entry
            .key
            .iter()
            .zip(fields)
            .map(|(mv, f)| Cond::new(mv, width_of(f)));
        let start = at * self.stride.get();
        self.conds.splice(start..start, row);
    }

    fn remove(&mut self, entry: &Entry) {
        let (rank, seq) = self.rank(entry);
        if let Ok(at) = self
            .order
            .binary_search_by(|&(r, s, _)| (r, s).cmp(&(rank, seq)))
        {
            self.order.remove(at);
            let start = at * self.stride.get();
            self.conds.drain(start..start + self.stride.get());
        }
    }

    fn lookup(&self, key: &[u128]) -> Option<u32> {
        // Masks would ignore the excess bits of a too-wide value; reject it
        // instead, as the other layouts do.
        if key.len() != self.widths.len()
            || key.iter().zip(&self.widths).any(|(&k, &w)| !fits(k, w))
        {
            return None;
        }
        self.order
            .iter()
            .zip(self.conds.chunks_exact(self.stride.get()))
            .find(|(_, row)| row.iter().zip(key).all(|(c, &k)| c.matches(k)))
            .map(|(&(_, _, h), _)| h)
    }
}

/// All tables of a program, with the program's actions and secrets.
#[derive(Clone)]
pub struct TableSet {
    pub actions: Arc<[ActionSchema]>,
    pub tables: Vec<Table>,
    /// Names of the secrets the program declares.
    pub secrets: Vec<String>,
    /// Values set by the control plane, parallel to `secrets`.
    pub secret_values: Vec<Option<[u8; 16]>>,
}

impl fmt::Debug for TableSet {
    // Hand-written so that secret values never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set: Vec<bool> = self.secret_values.iter().map(Option::is_some).collect();
        f.debug_struct("TableSet")
            .field("actions", &self.actions)
            .field("tables", &self.tables)
            .field("secrets", &self.secrets)
            .field("secret_is_set", &set)
            .finish()
    }
}

impl TableSet {
    /// A set without secrets.
    pub fn new(actions: Arc<[ActionSchema]>, tables: Vec<Table>) -> Self {
        TableSet {
            actions,
            tables,
            secrets: Vec::new(),
            secret_values: Vec::new(),
        }
    }

    /// Index of the table called `name`.
    pub fn by_name(&self, name: &str) -> Option<usize> {
        self.tables.iter().position(|t| t.name() == name)
    }

    /// Index of the action called `name`, as used in [`ActionCall::action`].
    pub fn action_by_name(&self, name: &str) -> Option<u32> {
        let i = self.actions.iter().position(|a| a.name == name)?;
        u32::try_from(i).ok()
    }

    /// Index of the secret called `name`.
    pub fn secret_by_name(&self, name: &str) -> Option<usize> {
        self.secrets.iter().position(|s| s == name)
    }
}

#[cfg(test)]
mod tests;
