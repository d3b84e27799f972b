//! Exact keys and one narrow range key: per distinct exact value (a *group*), the range key's
//! values resolved ahead of time to the winning handle, in one of two forms chosen by the
//! group's contents:
//!
//! - *segments*: the boundaries where the winner changes, sorted, searched by bisection. Its
//!   size follows the group's ranges (8 bytes a segment, at most two segments a range plus
//!   one), so a gateway of 100,000 addresses with 32 port ranges each takes about 50 MB.
//! - an *array* of 2^width handles (256 KiB for a 16-bit range): one load, whatever the
//!   number of ranges. A group takes one when its segments would pass [`SEGMENTS_MAX`] (a
//!   bisection of more steps than a miss costs) and the table's arrays stay within
//!   [`RANGE_ARRAY_BYTES`]; it goes back to segments once it has at most a quarter of that
//!   many ranges (so that a change to a large group needs no sweep over all its ranges).
//!
//! The generated code reads both (`jitview::KIND_RANGE`): the group's pointer has its low bit
//! set for segments.

use super::super::{
    entry_at, entry_value, fits, pack, Entry, MatchValue, EMPTY, RANGE_ARRAY_BYTES,
};
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The most segments a group keeps before it takes an array (if the table's budget allows):
/// 512 segments are 4 KiB, nine bisection steps.
pub const SEGMENTS_MAX: usize = 512;

#[derive(Debug, Clone)]
pub(crate) struct RangeIndex {
    /// Position of the range field in the key.
    pub(crate) pos: usize,
    pub(crate) widths: Box<[u32]>,
    pub(crate) groups: FxHashMap<u128, RangeGroup>,
    /// How many groups hold an array, and how many may.
    pub(crate) arrays: usize,
    pub(crate) array_budget: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct RangeGroup {
    pub(crate) members: Vec<u32>,
    pub(crate) slots: Slots,
}

/// A group's resolved range values.
#[derive(Debug, Clone)]
pub(crate) enum Slots {
    /// The winning handle of every value, or [`EMPTY`].
    Array(Box<[u32]>),
    /// Word 0 is the number of segments n >= 1; words 1..=n are `start << 32 | handle`, sorted
    /// by start, the first starting at 0: a value's winner is that of the last segment that
    /// starts at or below it.
    Segments(Box<[u64]>),
}

impl Slots {
    #[inline]
    pub(crate) fn get(&self, v: u128) -> Option<u32> {
        let h = match self {
            Slots::Array(a) => *a.get(usize::try_from(v).ok()?)?,
            Slots::Segments(s) => {
                let segs = s.get(1..)?;
                let at = segs.partition_point(|&w| u128::from(w >> 32) <= v);
                *segs.get(at.checked_sub(1)?)? as u32
            }
        };
        (h != EMPTY).then_some(h)
    }

    /// What generated code finds the group by: the array's or the segments' address, the
    /// latter with bit 0 set (both are at least 4-byte aligned).
    pub(crate) fn tagged(&self) -> u64 {
        match self {
            Slots::Array(a) => a.as_ptr() as u64,
            Slots::Segments(s) => s.as_ptr() as u64 | 1,
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        match self {
            Slots::Array(a) => a.len() * 4,
            Slots::Segments(s) => s.len() * 8,
        }
    }
}

impl RangeIndex {
    pub(crate) fn new(pos: usize, widths: Box<[u32]>) -> RangeIndex {
        RangeIndex {
            pos,
            widths,
            groups: FxHashMap::default(),
            arrays: 0,
            array_budget: 0,
        }
        .budgeted()
    }

    pub(crate) fn range_width(&self) -> u32 {
        self.widths.get(self.pos).copied().unwrap_or(0)
    }

    /// Sets how many arrays the table may hold: [`RANGE_ARRAY_BYTES`] of them.
    fn budgeted(mut self) -> RangeIndex {
        self.array_budget = (RANGE_ARRAY_BYTES >> (self.range_width() + 2)).max(1);
        self
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

    /// Adds (`insert`) or removes entry `h` and re-resolves its group: the part of an array
    /// that the entry's range covers (the rest cannot change), or all of its segments.
    pub(crate) fn update(&mut self, h: u32, entry: &Entry, slots: &[Option<Entry>], insert: bool) {
        let Some(gk) = self.group_key(entry.key.iter().map(entry_value)) else {
            return;
        };
        let Some(&MatchValue::Range { lo, hi }) = entry.key.get(self.pos) else {
            return;
        };
        let (pos, width) = (self.pos, self.range_width());
        let room = self.arrays < self.array_budget;
        let group = self.groups.entry(gk).or_insert_with(|| RangeGroup {
            members: Vec::new(),
            slots: Slots::Segments(vec![1, u64::from(EMPTY)].into_boxed_slice()),
        });
        if insert {
            group.members.push(h);
        } else {
            group.members.retain(|&m| m != h);
            if group.members.is_empty() {
                if matches!(group.slots, Slots::Array(_)) {
                    self.arrays -= 1;
                }
                self.groups.remove(&gk);
                return;
            }
        }
        let max = if width >= 128 {
            u128::MAX
        } else {
            (1u128 << width) - 1
        };
        if let Slots::Array(a) = &mut group.slots {
            // An array stays while its group is large (m ranges make at most 2m + 1 segments,
            // so this needs no sweep over all of them per change).
            if group.members.len() > SEGMENTS_MAX / 4 {
                Self::resolve(a, &group.members, pos, slots, lo, hi);
                return;
            }
        }
        let was_array = matches!(group.slots, Slots::Array(_));
        let segments = Self::segments(group, pos, slots, max);
        let n = segments.len() - 1;
        if n <= SEGMENTS_MAX || (!was_array && !room) {
            group.slots = Slots::Segments(segments);
            if was_array {
                self.arrays -= 1;
            }
        } else if let Slots::Array(a) = &mut group.slots {
            Self::resolve(a, &group.members, pos, slots, lo, hi);
        } else {
            let mut a = vec![EMPTY; 1usize << width].into_boxed_slice();
            Self::resolve(&mut a, &group.members, pos, slots, 0, max);
            group.slots = Slots::Array(a);
            self.arrays += 1;
        }
    }

    /// The members' ranges, each with its priority, age and handle, in order of start.
    fn ranges(
        members: &[u32],
        pos: usize,
        slots: &[Option<Entry>],
        lo: u128,
        hi: u128,
    ) -> Vec<(u128, u128, u32, u64, u32)> {
        let mut ranges: Vec<_> = members
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
        ranges
    }

    /// A group's segments: a sweep over the points where a range starts or ends, with a heap
    /// of the ranges covering the current point (the best on top); adjacent segments with
    /// the same winner are merged.
    fn segments(group: &RangeGroup, pos: usize, slots: &[Option<Entry>], max: u128) -> Box<[u64]> {
        let ranges = Self::ranges(&group.members, pos, slots, 0, max);
        let mut points: Vec<u128> = ranges
            .iter()
            .flat_map(|r| [r.0, r.1.saturating_add(1)])
            .filter(|&p| p <= max)
            .collect();
        points.push(0);
        points.sort_unstable();
        points.dedup();
        let mut out = vec![0u64];
        let mut starts = ranges.into_iter().peekable();
        let mut active: BinaryHeap<Reverse<(u32, u64, u128, u32)>> = BinaryHeap::new();
        for p in points {
            while let Some((_, h, prio, seq, m)) = starts.next_if(|r| r.0 <= p) {
                active.push(Reverse((prio, seq, h, m)));
            }
            while active.peek().is_some_and(|Reverse(top)| top.2 < p) {
                active.pop();
            }
            let winner = active.peek().map_or(EMPTY, |Reverse(top)| top.3);
            if out.len() > 1 && out.last().map(|&w| w as u32) == Some(winner) {
                continue;
            }
            out.push(((p as u64) << 32) | u64::from(winner));
        }
        out[0] = (out.len() - 1) as u64;
        out.into_boxed_slice()
    }

    /// Refills values `lo..=hi` of an array with a sweep over the range starts: a heap of
    /// the ranges covering the current value yields the best one, so this costs
    /// O(hi - lo + members * log members).
    fn resolve(
        array: &mut [u32],
        members: &[u32],
        pos: usize,
        slots: &[Option<Entry>],
        lo: u128,
        hi: u128,
    ) {
        let (Ok(first), Ok(last)) = (usize::try_from(lo), usize::try_from(hi)) else {
            return;
        };
        let Some(window) = array.get_mut(first..=last) else {
            return;
        };
        let mut starts = Self::ranges(members, pos, slots, lo, hi)
            .into_iter()
            .peekable();
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
        let k = *key.get(self.pos)?;
        if !fits(k, self.range_width()) {
            return None;
        }
        self.groups.get(&gk)?.slots.get(k)
    }
}
