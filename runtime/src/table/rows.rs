//! The rows the datapath reads (action id, then arguments, by handle) and the view that
//! generated code reads (`crate::jitview`), kept current by every change.
//!
//! Rule: every method that changes the entries, the default or the index ends with
//! `refresh_view`, since a change may have moved the arrays the view points at.

use super::index::Index;
use super::{ActionCall, ActionSchema, MatchValue, Table, TableSchema};
use crate::jitview::ArgSlot;
use rustc_hash::FxHashMap;

impl Table {
    /// Points the view at the current arrays (which a change may have moved).
    pub(crate) fn refresh_view(&mut self) {
        let v = &mut self.view;
        v.hot = self.hot.as_ptr().wrapping_add(self.hot_at) as u64;
        v.row_shift = u64::from(self.rows.shift);
        v.default_row = self.hot_default.as_ptr() as u64;
        v.counters = self.counters.as_ptr() as u64;
        if let Index::Direct { slots, .. } = &self.index {
            v.direct = slots.as_ptr() as u64;
        }
        if let [_, k1] = &self.schema.keys[..] {
            v.width1 = u64::from(k1.width);
        }
        self.jit_hash.fill(v);
    }

    /// Keeps the inline lookup's hash table in step with an entry added or removed.
    pub(crate) fn update_jit_hash(&mut self, key: &[MatchValue], handle: Option<u32>) {
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
                    Some(g) => self.jit_hash.insert(e, g.slots.tagged()),
                    None => self.jit_hash.remove(e),
                }
            }
            _ => {}
        }
    }

    /// Words (u64) per row.
    fn row_words(&self) -> usize {
        1 << (self.rows.shift - 3)
    }

    /// The row of handle `h`, if the rows reach it.
    pub(crate) fn row_of(&self, h: u32) -> Option<&[u64]> {
        let words = self.row_words();
        let at = self.hot_at + h as usize * words;
        self.hot.get(at..at + words)
    }

    pub(crate) fn set_hot_default(&mut self) {
        self.hot_default = self.rows.encode(&self.default);
    }

    /// Writes an entry's row.
    pub(crate) fn set_hot(&mut self, h: u32, call: &ActionCall) {
        self.grow_rows(h as usize + 1);
        let row = self.rows.encode(call);
        let at = self.hot_at + h as usize * row.len();
        if let Some(dst) = self.hot.get_mut(at..at + row.len()) {
            dst.copy_from_slice(&row);
        }
        self.resize_counters(h as usize + 1);
    }

    /// Makes room for `rows` rows, keeping row 0 on a 64-byte boundary.
    fn grow_rows(&mut self, rows: usize) {
        let words = self.row_words();
        let have = self.hot.len().saturating_sub(self.hot_at);
        if have >= rows * words {
            return;
        }
        let want = (rows * words).max(have * 2).max(8 * words);
        let (hot, at) = aligned(&self.hot[self.hot_at..], want);
        self.hot = hot;
        self.hot_at = at;
    }

    /// Takes `other`'s rows, on a line boundary of this table's own vector.
    pub(crate) fn copy_rows_from(&mut self, other: &Table) {
        let rows = &other.hot[other.hot_at..];
        let (hot, at) = aligned(rows, rows.len());
        self.hot = hot;
        self.hot_at = at;
    }

    /// Drops every row.
    pub(crate) fn clear_rows(&mut self) {
        self.hot = Vec::new();
        self.hot_at = 0;
    }
}

/// A vector of at least `len` words holding `rows` first, from a 64-byte boundary; and where
/// that boundary is.
fn aligned(rows: &[u64], len: usize) -> (Vec<u64>, usize) {
    let mut v = vec![0u64; len.max(rows.len()) + 8];
    // In u64s, at most 7 for an 8-byte aligned vector; 0 if it cannot be done.
    let at = v.as_ptr().align_offset(64).min(8) % 8;
    v[at..at + rows.len()].copy_from_slice(rows);
    (v, at)
}

/// How a table's actions lay out their rows.
#[derive(Debug, Clone)]
pub(crate) struct RowLayout {
    action_bytes: u32,
    /// log2 of the row's size in bytes.
    pub(crate) shift: u32,
    /// By action id: where its arguments lie. Actions the table cannot run have none.
    by_action: FxHashMap<u32, Box<[ArgSlot]>>,
}

impl RowLayout {
    /// The layout of a table's rows: for each action an entry or its default may name.
    pub(crate) fn new(schema: &TableSchema, actions: &[ActionSchema]) -> RowLayout {
        let action_bytes = crate::jitview::action_bytes(actions.len());
        let mut by_action = FxHashMap::default();
        let mut longest = action_bytes;
        for &a in schema
            .actions
            .iter()
            .chain(std::iter::once(&schema.default_action.action))
        {
            let Some(action) = actions.get(a as usize) else {
                continue;
            };
            let widths: Vec<u32> = action.params.iter().map(|p| p.width).collect();
            let (slots, len) = crate::jitview::arg_slots(action_bytes, &widths);
            longest = longest.max(len);
            by_action.insert(a, slots.into_boxed_slice());
        }
        RowLayout {
            action_bytes,
            shift: crate::jitview::row_shift(longest),
            by_action,
        }
    }

    /// A call as a row: its action id, then each argument in its slot.
    pub(crate) fn encode(&self, call: &ActionCall) -> Vec<u64> {
        let mut bytes = vec![0u8; 1 << self.shift];
        put(&mut bytes, 0, self.action_bytes, u128::from(call.action));
        if let Some(slots) = self.by_action.get(&call.action) {
            for (slot, &v) in slots.iter().zip(call.args.iter()) {
                put(&mut bytes, slot.offset, slot.bytes, v);
            }
        }
        bytes
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or_default()))
            .collect()
    }
}

impl RowLayout {
    /// A row read back as a call (tests, and anything that checks what the datapath sees).
    pub(crate) fn decode(&self, row: &[u64]) -> ActionCall {
        let bytes: Vec<u8> = row.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let action = get(&bytes, 0, self.action_bytes) as u32;
        let args = self
            .by_action
            .get(&action)
            .map(|slots| {
                slots
                    .iter()
                    .map(|s| get(&bytes, s.offset, s.bytes))
                    .collect()
            })
            .unwrap_or_default();
        ActionCall { action, args }
    }
}

impl Table {
    /// The action id a row returned by `lookup_row` starts with.
    #[inline]
    pub fn row_action(&self, row: &[u64]) -> u32 {
        let w = row.first().copied().unwrap_or(0).to_ne_bytes();
        get(&w, 0, self.rows.action_bytes) as u32
    }

    /// What a row returned by `lookup_row` says: the action and its arguments.
    pub fn decode_row(&self, row: &[u64]) -> ActionCall {
        self.rows.decode(row)
    }
}

/// The value `put` stored.
fn get(bytes: &[u8], at: u32, n: u32) -> u128 {
    let at = at as usize;
    let Some(b) = bytes.get(at..at + n as usize) else {
        return 0;
    };
    match n {
        1 => u128::from(b[0]),
        2 => u128::from(u16::from_ne_bytes([b[0], b[1]])),
        4 => u128::from(u32::from_ne_bytes(b.try_into().unwrap_or_default())),
        8 => u128::from(u64::from_ne_bytes(b.try_into().unwrap_or_default())),
        _ => u128::from_ne_bytes(b.try_into().unwrap_or_default()),
    }
}

/// Stores the low `n` bytes' worth of `v` at `at`, as a native load of that size reads it.
fn put(bytes: &mut [u8], at: u32, n: u32, v: u128) {
    let at = at as usize;
    let src: Vec<u8> = match n {
        1 => (v as u8).to_ne_bytes().to_vec(),
        2 => (v as u16).to_ne_bytes().to_vec(),
        4 => (v as u32).to_ne_bytes().to_vec(),
        8 => (v as u64).to_ne_bytes().to_vec(),
        _ => v.to_ne_bytes().to_vec(),
    };
    if let Some(dst) = bytes.get_mut(at..at + src.len()) {
        dst.copy_from_slice(&src);
    }
}
