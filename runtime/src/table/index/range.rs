//! Exact keys and one narrow range key: an array per distinct exact value, each slot holding
//! the winning handle.

use super::super::{
    entry_at, entry_value, fits, pack, Entry, MatchValue, TableError, EMPTY, RANGE_ARRAY_BYTES,
};
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Exact fields plus one narrow range field: per distinct exact key, an
/// array with one slot per range value holding the winning handle.
#[derive(Debug, Clone)]
pub(crate) struct RangeIndex {
    /// Position of the range field in the key.
    pub(crate) pos: usize,
    pub(crate) widths: Box<[u32]>,
    pub(crate) groups: FxHashMap<u128, RangeGroup>,
}

#[derive(Debug, Clone)]
pub(crate) struct RangeGroup {
    pub(crate) members: Vec<u32>,
    pub(crate) slots: Box<[u32]>,
}

impl RangeIndex {
    pub(crate) fn range_width(&self) -> u32 {
        self.widths.get(self.pos).copied().unwrap_or(0)
    }

    /// Packs the exact fields of a key (all but the range field).
    pub(crate) fn group_key(&self, values: impl Iterator<Item = u128>) -> Option<u128> {
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
    pub(crate) fn check_room(&self, key: &[MatchValue]) -> Result<(), TableError> {
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
    pub(crate) fn update(&mut self, h: u32, entry: &Entry, slots: &[Option<Entry>], insert: bool) {
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
    pub(crate) fn resolve(
        group: &mut RangeGroup,
        pos: usize,
        slots: &[Option<Entry>],
        lo: u128,
        hi: u128,
    ) {
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
    pub(crate) fn lookup(&self, key: &[u128]) -> Option<u32> {
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
