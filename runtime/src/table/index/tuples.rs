//! Classifier tables (ternary, range or optional keys, or several lpm keys): tuple space
//! search with merged tuples, after Open vSwitch's classifier and TupleMerge (Daly, Liu and
//! Torng, 2019).
//!
//! A *tuple* is a mask per key field. Every entry lives in one tuple whose masks are no more
//! specific than the entry's own (an lpm prefix's mask, a ternary mask, an exact field's full
//! mask, a range's longest common prefix of `lo` and `hi`), in the bucket of its value under
//! those masks. A packet's key, masked the same way, can only match entries of that one
//! bucket of each tuple, and each candidate's full conditions are checked there (the range
//! itself, and the bits the tuple's masks leave out). Tuples are probed in the order of the
//! best priority they hold, and the search stops at the first tuple that cannot beat the
//! best match found, so a packet that matches a high-priority rule probes few tuples; one
//! that matches nothing probes all of them.
//!
//! Merging keeps the tuples few: a new tuple's masks are the entry's, shortened to a multiple
//! of 8 bits (a /28 and a /26 share a /24 tuple), and an entry joins the most specific
//! existing tuple it fits while that tuple's bucket for it holds fewer than
//! [`BUCKET_LIMIT`] entries; past that, it gets a tuple of its own unshortened masks.
//! Port ranges are not expanded into prefixes: an entry is stored once and its range checked
//! in the bucket, so memory is one entry per rule whatever its ranges.
//!
//! Every change updates the structure in place (one bucket, and the tuples' order), so a
//! table_add costs a hash insert and a sort of the tuples, not a rebuild.

use super::super::{fits, ones, prefix_mask, width_of, Entry, KeyField, MatchKind, MatchValue};
use super::cond::{rank_of, Cond};
use rustc_hash::{FxHashMap, FxHasher};
use std::collections::BTreeSet;
use std::hash::Hasher;

/// How many entries a bucket takes before an entry that would join it gets a tuple of its own.
pub const BUCKET_LIMIT: usize = 8;

#[derive(Debug, Clone)]
pub(crate) struct TupleIndex {
    widths: Box<[u32]>,
    by_priority: bool,
    /// Whether the masked fields fit in 128 bits: a bucket's key is then the fields packed,
    /// otherwise a 128-bit hash of them (the candidates' conditions are checked anyway).
    packed: bool,
    /// Whether every field fits in 64 bits (conditions take a word per value), and which
    /// fields are ranges.
    narrow: bool,
    ranges: Box<[bool]>,
    /// By tuple id; `None` for a freed id.
    tuples: Vec<Option<Tuple>>,
    free: Vec<u32>,
    /// Tuple ids, by their best entry (the order lookups probe them in).
    order: Vec<u32>,
    by_masks: FxHashMap<Box<[u128]>, u32>,
    /// Where each handle lives: its tuple and bucket.
    placed: FxHashMap<u32, (u32, u128)>,
}

#[derive(Debug, Clone)]
struct Tuple {
    masks: Box<[u128]>,
    buckets: FxHashMap<u128, Bucket>,
    /// Every entry's (rank, seq, handle): the first is the best the tuple holds.
    ranks: BTreeSet<(u32, u64, u32)>,
    /// The first of `ranks`, kept beside it: lookups compare it for every tuple they probe.
    best: (u32, u64),
}

/// The entries of one masked value, best first, with their conditions packed row by row:
/// per field, two words (value and mask, or lo and hi for a range field), each one `u64`
/// when every field is at most 64 bits wide (an ACL's five fields in 80 bytes), else two.
#[derive(Debug, Clone, Default)]
struct Bucket {
    rules: Vec<(u32, u64, u32)>,
    conds: Vec<u64>,
}

impl TupleIndex {
    pub(crate) fn new(fields: &[KeyField]) -> TupleIndex {
        let widths: Box<[u32]> = fields.iter().map(width_of).collect();
        TupleIndex {
            packed: widths.iter().sum::<u32>() <= 128,
            narrow: widths.iter().all(|&w| w <= 64),
            ranges: fields.iter().map(|f| f.kind == MatchKind::Range).collect(),
            widths,
            by_priority: fields.iter().any(|k| k.kind.needs_priority()),
            tuples: Vec::new(),
            free: Vec::new(),
            order: Vec::new(),
            by_masks: FxHashMap::default(),
            placed: FxHashMap::default(),
        }
    }

    /// How many tuples the table has (a miss probes each).
    pub(crate) fn tuples(&self) -> usize {
        self.order.len()
    }

    /// The bytes the structure takes, roughly: buckets, conditions and bookkeeping.
    pub(crate) fn bytes(&self) -> usize {
        let per_entry = std::mem::size_of::<(u32, u64, u32)>() * 2 + self.stride() * 8 + 48;
        let buckets: usize = self
            .tuples
            .iter()
            .flatten()
            .map(|t| t.buckets.capacity() * (16 + std::mem::size_of::<Bucket>() + 1))
            .sum();
        self.placed.len() * per_entry + buckets
    }

    /// The masks an entry's conditions pin down: what a tuple holding it may hash on.
    fn entry_masks(&self, entry: &Entry) -> Box<[u128]> {
        entry
            .key
            .iter()
            .zip(self.widths.iter())
            .map(|(mv, &w)| match *mv {
                MatchValue::Exact(_) | MatchValue::Optional(Some(_)) => ones(w),
                MatchValue::Optional(None) => 0,
                MatchValue::Lpm { prefix_len, .. } => prefix_mask(prefix_len, w),
                MatchValue::Ternary { mask, .. } => mask & ones(w),
                MatchValue::Range { lo, hi } => {
                    let differ = lo ^ hi;
                    let common = if differ == 0 {
                        w
                    } else {
                        w.saturating_sub(128 - differ.leading_zeros())
                    };
                    prefix_mask(common, w)
                }
            })
            .collect()
    }

    /// A new tuple's masks for an entry: each field's leading ones (a ternary mask's prefix),
    /// shortened to a multiple of 8 bits on fields wider than 8.
    fn merged_masks(&self, masks: &[u128]) -> Box<[u128]> {
        masks
            .iter()
            .zip(self.widths.iter())
            .map(|(&m, &w)| {
                let lead = (m << (128 - w.max(1))).leading_ones().min(w);
                let len = if w <= 8 { lead } else { lead - lead % 8 };
                prefix_mask(len, w)
            })
            .collect()
    }

    /// The bucket key of `values` under `masks`.
    #[inline]
    fn bucket_key(&self, masks: &[u128], values: impl Iterator<Item = u128>) -> u128 {
        if self.packed {
            let mut acc = 0u128;
            for ((v, &m), &w) in values.zip(masks).zip(self.widths.iter()) {
                acc = if w >= 128 { 0 } else { acc << w } | (v & m);
            }
            acc
        } else {
            let (mut a, mut b) = (FxHasher::default(), FxHasher::default());
            for (v, &m) in values.zip(masks) {
                let v = v & m;
                a.write_u128(v);
                b.write_u128(v.rotate_left(64) ^ 0x9e37_79b9_7f4a_7c15);
            }
            (u128::from(a.finish()) << 64) | u128::from(b.finish())
        }
    }

    /// Words of conditions per entry.
    fn stride(&self) -> usize {
        self.widths.len() * if self.narrow { 2 } else { 4 }
    }

    /// Whether a key meets one entry's conditions.
    #[inline]
    fn row_matches(&self, row: &[u64], key: &[u128]) -> bool {
        if self.narrow {
            row.chunks_exact(2)
                .zip(key)
                .zip(self.ranges.iter())
                .all(|((c, &k), &range)| {
                    let k = k as u64;
                    if range {
                        c[0] <= k && k <= c[1]
                    } else {
                        k & c[1] == c[0]
                    }
                })
        } else {
            row.chunks_exact(4)
                .zip(key)
                .zip(self.ranges.iter())
                .all(|((c, &k), &range)| {
                    let a = u128::from(c[0]) | u128::from(c[1]) << 64;
                    let b = u128::from(c[2]) | u128::from(c[3]) << 64;
                    if range {
                        a <= k && k <= b
                    } else {
                        k & b == a
                    }
                })
        }
    }

    fn tuple(&self, id: u32) -> Option<&Tuple> {
        self.tuples.get(id as usize).and_then(Option::as_ref)
    }

    pub(crate) fn insert(&mut self, h: u32, entry: &Entry, fields: &[KeyField]) {
        let own = self.entry_masks(entry);
        let (rank, seq) = rank_of(entry, self.by_priority);
        let values = || entry.key.iter().map(super::super::entry_value);
        // The most specific tuple the entry fits whose bucket has room.
        let mut best: Option<(u32, u32, u128)> = None;
        for &id in &self.order {
            let Some(t) = self.tuple(id) else { continue };
            if t.masks
                .iter()
                .zip(own.iter())
                .any(|(&tm, &em)| tm & !em != 0)
            {
                continue;
            }
            let key = self.bucket_key(&t.masks, values());
            let room = t
                .buckets
                .get(&key)
                .is_none_or(|b| b.rules.len() < BUCKET_LIMIT);
            let bits: u32 = t.masks.iter().map(|m| m.count_ones()).sum();
            if room && best.is_none_or(|(b, _, _)| bits > b) {
                best = Some((bits, id, key));
            }
        }
        let (id, key) = match best {
            Some((_, id, key)) => (id, key),
            None => {
                let merged = self.merged_masks(&own);
                // A full bucket of the merged tuple: a tuple of the entry's own masks; a full
                // bucket of that too (many entries that differ only in their ranges or in
                // bits no mask covers): it joins that bucket anyway.
                let masks = if self.by_masks.contains_key(&merged) {
                    own
                } else {
                    merged
                };
                let id = self.tuple_for(masks);
                let key = match self.tuple(id) {
                    Some(t) => self.bucket_key(&t.masks, values()),
                    None => return,
                };
                (id, key)
            }
        };
        let mut row: Vec<u64> = Vec::with_capacity(self.stride());
        for (mv, f) in entry.key.iter().zip(fields) {
            let (a, b) = match Cond::new(mv, width_of(f)) {
                Cond::Masked { value, mask } => (value, mask),
                Cond::Range { lo, hi } => (lo, hi),
            };
            if self.narrow {
                row.extend([a as u64, b as u64]);
            } else {
                row.extend([a as u64, (a >> 64) as u64, b as u64, (b >> 64) as u64]);
            }
        }
        let stride = self.stride();
        let Some(t) = self.tuples.get_mut(id as usize).and_then(Option::as_mut) else {
            return;
        };
        let b = t.buckets.entry(key).or_default();
        let at = b.rules.partition_point(|&(r, s, _)| (r, s) < (rank, seq));
        b.rules.insert(at, (rank, seq, h));
        b.conds.splice(at * stride..at * stride, row);
        t.ranks.insert((rank, seq, h));
        t.best = t.best.min((rank, seq));
        self.placed.insert(h, (id, key));
        self.sort();
    }

    /// The tuple of `masks`, made if there is none.
    fn tuple_for(&mut self, masks: Box<[u128]>) -> u32 {
        if let Some(&id) = self.by_masks.get(&masks) {
            return id;
        }
        let t = Tuple {
            masks: masks.clone(),
            buckets: FxHashMap::default(),
            ranks: BTreeSet::new(),
            best: (u32::MAX, u64::MAX),
        };
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(slot) = self.tuples.get_mut(id as usize) {
                    *slot = Some(t);
                }
                id
            }
            None => {
                self.tuples.push(Some(t));
                (self.tuples.len() - 1) as u32
            }
        };
        self.by_masks.insert(masks, id);
        self.order.push(id);
        id
    }

    pub(crate) fn remove(&mut self, h: u32, entry: &Entry) {
        let Some((id, key)) = self.placed.remove(&h) else {
            return;
        };
        let (rank, seq) = rank_of(entry, self.by_priority);
        let stride = self.stride();
        let Some(t) = self.tuples.get_mut(id as usize).and_then(Option::as_mut) else {
            return;
        };
        t.ranks.remove(&(rank, seq, h));
        t.best = t
            .ranks
            .first()
            .map_or((u32::MAX, u64::MAX), |&(r, s, _)| (r, s));
        if let Some(b) = t.buckets.get_mut(&key) {
            if let Some(at) = b.rules.iter().position(|r| r.2 == h) {
                b.rules.remove(at);
                b.conds.drain(at * stride..(at + 1) * stride);
            }
            if b.rules.is_empty() {
                t.buckets.remove(&key);
            }
        }
        if t.ranks.is_empty() {
            let masks = t.masks.clone();
            self.by_masks.remove(&masks);
            if let Some(slot) = self.tuples.get_mut(id as usize) {
                *slot = None;
            }
            self.free.push(id);
            self.order.retain(|&o| o != id);
        }
        self.sort();
    }

    /// Puts the tuples in the order of their best entries.
    fn sort(&mut self) {
        let tuples = &self.tuples;
        let best = |id: &u32| {
            tuples
                .get(*id as usize)
                .and_then(Option::as_ref)
                .map(|t| t.best)
                .unwrap_or((u32::MAX, u64::MAX))
        };
        self.order.sort_by_key(best);
    }

    pub(crate) fn lookup(&self, key: &[u128]) -> Option<u32> {
        // Masks would ignore the excess bits of a too-wide value; reject it instead, as the
        // other layouts do.
        if key.len() != self.widths.len()
            || key
                .iter()
                .zip(self.widths.iter())
                .any(|(&k, &w)| !fits(k, w))
        {
            return None;
        }
        let stride = self.stride();
        let mut found: Option<(u32, u64, u32)> = None;
        for &id in &self.order {
            let Some(t) = self.tuple(id) else { continue };
            // The tuples after this one hold nothing better than what was found.
            if let Some(f) = found {
                if t.best >= (f.0, f.1) {
                    break;
                }
            }
            let bk = self.bucket_key(&t.masks, key.iter().copied());
            let Some(b) = t.buckets.get(&bk) else {
                continue;
            };
            // Best first: the first candidate that matches is the bucket's answer.
            let hit = b
                .rules
                .iter()
                .zip(b.conds.chunks_exact(stride))
                .find(|(_, row)| self.row_matches(row, key));
            if let Some((&r, _)) = hit {
                if found.is_none_or(|f| (r.0, r.1) < (f.0, f.1)) {
                    found = Some(r);
                }
            }
        }
        found.map(|r| r.2)
    }
}
