//! The lookup structures, chosen per key shape (see the table in the parent module's docs):
//! a direct array, a hash map, an lpm trie or hash maps per prefix length, a range array,
//! a tuple-space classifier. Each indexes entries by handle; `Table` owns the entries.

mod cond;
mod lpm;
mod range;
mod tuples;

pub(super) use lpm::{LpmIndex, LpmTrie};
pub(super) use range::RangeIndex;
pub use range::SEGMENTS_MAX;
pub(crate) use tuples::TupleIndex;
pub use tuples::BUCKET_LIMIT;

use super::{
    entry_at, entry_value, pack, width_of, widths, Entry, KeyField, MatchKind, MatchValue,
    TableSchema, EMPTY,
};
use rustc_hash::FxHashMap;

/// The lookup data structure a table uses; see the module docs for costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Direct,
    ExactHash,
    Lpm,
    Range,
    Classifier,
}

#[derive(Debug, Clone)]
pub(crate) enum Index {
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
    Classifier(TupleIndex),
}

impl Index {
    pub(crate) fn for_schema(schema: &TableSchema) -> Index {
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
                    return Index::RangeArray(RangeIndex::new(pos, widths(keys)));
                }
            }
        }
        Index::Classifier(TupleIndex::new(keys))
    }

    /// What the structure holds beyond its entries (tuples, groups, nodes) and roughly how
    /// many bytes it takes (hash maps counted at their capacity).
    pub(crate) fn describe(&self) -> (String, usize) {
        fn map<K, V>(m: &FxHashMap<K, V>) -> usize {
            m.capacity() * (std::mem::size_of::<(K, V)>() + 1)
        }
        match self {
            Index::Direct { slots, .. } => (format!("{} slots", slots.len()), slots.len() * 4),
            Index::Packed { map: m, .. } => (String::new(), map(m)),
            Index::Wide { map: m } => (String::new(), map(m) + m.len() * 16 * 2),
            Index::Lpm(l) => (
                format!("{} prefix length{}", l.levels.len(), plural(l.levels.len())),
                l.levels
                    .iter()
                    .map(|v| map(&v.packed) + map(&v.hashed))
                    .sum(),
            ),
            Index::Trie(t) => (
                format!("{} trie node{}", t.nodes.len(), plural(t.nodes.len())),
                t.nodes.len() * (256 * 9) + t.nodes.iter().map(|n| n.own.len() * 8).sum::<usize>(),
            ),
            Index::RangeArray(ra) => (
                format!(
                    "{} group{}, {} as arrays",
                    ra.groups.len(),
                    plural(ra.groups.len()),
                    ra.arrays
                ),
                map(&ra.groups)
                    + ra.groups
                        .values()
                        .map(|g| g.slots.bytes() + g.members.capacity() * 4)
                        .sum::<usize>(),
            ),
            Index::Classifier(c) => (
                format!("{} tuple{}", c.tuples(), plural(c.tuples())),
                c.bytes(),
            ),
        }
    }

    pub(crate) fn layout(&self) -> Layout {
        match self {
            Index::Direct { .. } => Layout::Direct,
            Index::Packed { .. } | Index::Wide { .. } => Layout::ExactHash,
            Index::Lpm(_) | Index::Trie(_) => Layout::Lpm,
            Index::RangeArray(_) => Layout::Range,
            Index::Classifier(_) => Layout::Classifier,
        }
    }

    /// Indexes the entry stored at `slots[h]`.
    pub(crate) fn insert(&mut self, h: u32, slots: &[Option<Entry>], fields: &[KeyField]) {
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
            Index::Classifier(c) => c.insert(h, entry, fields),
        }
    }

    /// Unindexes the entry still stored at `slots[h]`.
    pub(crate) fn remove(&mut self, h: u32, slots: &[Option<Entry>]) {
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
            Index::Classifier(c) => c.remove(h, entry),
        }
    }

    pub(crate) fn lookup(
        &self,
        key: &[u128],
        slots: &[Option<Entry>],
        fields: &[KeyField],
    ) -> Option<u32> {
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
            Index::Classifier(c) => c.lookup(key),
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
