//! Exact keys and one narrow range key: per distinct exact value (a *group*), the range key's
//! values resolved ahead of time to the winning handle, in one of two forms chosen by the
//! group's contents:
//!
//! - *segments*: the boundaries where the winner changes, sorted, searched by bisection. Its
//!   size follows the group's ranges (6 bytes a segment, a u16 start and a u32 handle, at
//!   most two segments a range plus one), so a gateway of 100,000 addresses with 32 port
//!   ranges each takes about 40 MB.
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
    /// The segments' starts apart from their handles, so that a bisection reads few lines
    /// (34 starts, a gateway address's 32 ranges, are 68 bytes): byte 0 holds the number of
    /// segments n >= 1 (a u32); from byte 8, the n starts (u16, sorted, the first 0); from
    /// byte [`Segments::handles_at`]`(n)`, the n handles (u32). A value's winner is the
    /// handle of the last segment that starts at or below it. (Range keys of this layout
    /// are at most 16 bits wide.)
    Segments(Box<[u64]>),
}

/// Where a segments block of `n` segments keeps its handles, in bytes.
pub const fn handles_at(n: usize) -> usize {
    (8 + 2 * n + 3) & !3
}

/// Segments, `(start, handle)` in order of start, the first at 0, as a block.
fn encode_segments(segs: &[(u16, u32)]) -> Box<[u64]> {
    let n = segs.len();
    let mut bytes = vec![0u8; (handles_at(n) + 4 * n).next_multiple_of(8)];
    bytes[..4].copy_from_slice(&(n as u32).to_ne_bytes());
    for (i, &(start, h)) in segs.iter().enumerate() {
        bytes[8 + 2 * i..10 + 2 * i].copy_from_slice(&start.to_ne_bytes());
        let at = handles_at(n) + 4 * i;
        bytes[at..at + 4].copy_from_slice(&h.to_ne_bytes());
    }
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or_default()))
        .collect()
}

/// A segments block read back: `(start, handle)` in order.
#[cfg(test)]
fn decode_segments(words: &[u64]) -> Vec<(u16, u32)> {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let word = |at: usize, len: usize| bytes.get(at..at + len);
    let n = word(0, 4).map_or(0, |b| u32::from_ne_bytes(b.try_into().unwrap_or_default()));
    let n = n as usize;
    (0..n)
        .filter_map(|i| {
            let s = u16::from_ne_bytes(word(8 + 2 * i, 2)?.try_into().ok()?);
            let h = u32::from_ne_bytes(word(handles_at(n) + 4 * i, 4)?.try_into().ok()?);
            Some((s, h))
        })
        .collect()
}

impl Slots {
    #[inline]
    pub(crate) fn get(&self, v: u128) -> Option<u32> {
        let h = match self {
            Slots::Array(a) => *a.get(usize::try_from(v).ok()?)?,
            Slots::Segments(s) => {
                // The bisection generated code does, over the block's bytes.
                let n = (*s.first()? & 0xffff_ffff) as usize;
                let bytes = |at: usize, len: usize| -> Option<u64> {
                    let word = s.get(at / 8)?.to_ne_bytes();
                    let mut b = [0u8; 8];
                    b[..len].copy_from_slice(word.get(at % 8..at % 8 + len)?);
                    Some(u64::from_ne_bytes(b))
                };
                let (mut base, mut len) = (0usize, n);
                while len > 1 {
                    let half = len / 2;
                    if u128::from(bytes(8 + 2 * (base + half), 2)?) <= v {
                        base += half;
                    }
                    len -= half;
                }
                bytes(handles_at(n) + 4 * base, 4)? as u32
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
            slots: Slots::Segments(encode_segments(&[(0, EMPTY)])),
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
        if segments.len() <= SEGMENTS_MAX || (!was_array && !room) {
            group.slots = Slots::Segments(encode_segments(&segments));
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
    fn segments(
        group: &RangeGroup,
        pos: usize,
        slots: &[Option<Entry>],
        max: u128,
    ) -> Vec<(u16, u32)> {
        let ranges = Self::ranges(&group.members, pos, slots, 0, max);
        let mut points: Vec<u128> = ranges
            .iter()
            .flat_map(|r| [r.0, r.1.saturating_add(1)])
            .filter(|&p| p <= max)
            .collect();
        points.push(0);
        points.sort_unstable();
        points.dedup();
        let mut out: Vec<(u16, u32)> = Vec::new();
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
            if out.last().map(|&(_, w)| w) == Some(winner) {
                continue;
            }
            out.push((p as u16, winner));
        }
        out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_blocks_round_trip_and_bisect_like_a_search() {
        for n in [1usize, 2, 3, 7, 34, 65, 512] {
            let segs: Vec<(u16, u32)> = (0..n)
                .map(|i| ((i * 100) as u16, if i % 5 == 4 { EMPTY } else { i as u32 }))
                .collect();
            let block = encode_segments(&segs);
            assert_eq!(decode_segments(&block), segs, "{n} segments");
            let slots = Slots::Segments(block);
            for v in 0..=(n as u128 * 100 + 50) {
                let i = segs.partition_point(|&(s, _)| u128::from(s) <= v) - 1;
                let want = (segs[i].1 != EMPTY).then_some(segs[i].1);
                assert_eq!(slots.get(v), want, "{n} segments, value {v}");
            }
        }
    }
}
