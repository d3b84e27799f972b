//! Everything else: conditions packed row by row, in match order, scanned until the first
//! match.

use super::super::{fits, ones, prefix_mask, width_of, Entry, KeyField, MatchValue};
use std::num::NonZeroUsize;

/// One compiled key condition of the scan layout.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cond {
    Masked { value: u128, mask: u128 },
    Range { lo: u128, hi: u128 },
}

impl Cond {
    pub(crate) fn new(mv: &MatchValue, width: u32) -> Cond {
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

    pub(crate) fn matches(self, k: u128) -> bool {
        match self {
            Cond::Masked { value, mask } => k & mask == value,
            Cond::Range { lo, hi } => lo <= k && k <= hi,
        }
    }
}

/// Entries in match order, their conditions packed row by row.
#[derive(Debug, Clone)]
pub(crate) struct ScanIndex {
    pub(crate) stride: NonZeroUsize,
    pub(crate) widths: Box<[u32]>,
    /// Rank by priority (smaller first); otherwise, for tables with several
    /// lpm fields, by the sum of prefix lengths (longer first).
    pub(crate) by_priority: bool,
    /// `(rank, seq, handle)`, sorted.
    pub(crate) order: Vec<(u32, u64, u32)>,
    /// `order.len() * stride` conditions.
    pub(crate) conds: Vec<Cond>,
}

impl ScanIndex {
    pub(crate) fn rank(&self, entry: &Entry) -> (u32, u64) {
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

    pub(crate) fn insert(&mut self, h: u32, entry: &Entry, fields: &[KeyField]) {
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

    pub(crate) fn remove(&mut self, entry: &Entry) {
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

    pub(crate) fn lookup(&self, key: &[u128]) -> Option<u32> {
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
