//! One entry's condition on one key field, as the classifier checks it, and the order
//! entries match in.

use super::super::{ones, prefix_mask, Entry, MatchValue};

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
}

/// Where an entry stands in match order, with `seq` breaking ties (older first): by priority
/// (smaller first) in priority tables; otherwise, for tables with several lpm fields, by the
/// sum of prefix lengths (longer first).
pub(crate) fn rank_of(entry: &Entry, by_priority: bool) -> (u32, u64) {
    let rank = if by_priority {
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
