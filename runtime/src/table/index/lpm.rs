//! Longest-prefix match: a multibit trie for one lpm key of up to 32 bits, one hash map per
//! prefix length for the other lpm tables.

use super::super::{
    entry_at, entry_value, fits, pack, prefix_mask, width_of, Entry, KeyField, MatchValue, EMPTY,
};
use rustc_hash::{FxHashMap, FxHasher};
use std::hash::Hasher;

/// A multibit trie with 8-bit strides for a single lpm key of at most 32 bits: a lookup reads
/// at most four nodes, one per byte of the key, keeping the best match seen so far. Each node
/// holds, for each of its 256 slots, the longest of its own prefixes (those ending within its
/// byte) that covers the slot, and the child for the next byte. Keys are left-aligned to 32
/// bits.
#[derive(Debug, Clone)]
pub(crate) struct LpmTrie {
    pub(crate) width: u32,
    pub(crate) nodes: Vec<TrieNode>,
}

#[derive(Debug, Clone)]
pub(crate) struct TrieNode {
    pub(crate) best: Box<[u32; 256]>,
    /// Length within the node (0 to 8) of the prefix in `best`.
    pub(crate) best_len: Box<[u8; 256]>,
    /// Child node index; 0 is none (the root is never a child).
    pub(crate) child: Box<[u32; 256]>,
    /// The prefixes ending in this node: (byte, length within the node, handle).
    pub(crate) own: Vec<(u8, u8, u32)>,
}

impl TrieNode {
    pub(crate) fn new() -> TrieNode {
        TrieNode {
            best: Box::new([EMPTY; 256]),
            best_len: Box::new([0; 256]),
            child: Box::new([0; 256]),
            own: Vec::new(),
        }
    }

    /// The slots a prefix of `len` bits (0 to 8) starting with `byte` covers.
    pub(crate) fn span(byte: u8, len: u8) -> std::ops::Range<usize> {
        let keep = if len == 0 { 0 } else { 0xffu8 << (8 - len) };
        let start = usize::from(byte & keep);
        start..start + (1usize << (8 - len))
    }

    pub(crate) fn recompute(&mut self, range: std::ops::Range<usize>) {
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
    pub(crate) fn new(width: u32) -> LpmTrie {
        LpmTrie {
            width,
            nodes: vec![TrieNode::new()],
        }
    }

    pub(crate) fn align(&self, v: u128) -> u32 {
        ((v as u64) << (32 - self.width.min(32))) as u32
    }

    /// The node where a prefix of `len` bits ends, made if `create`; with the length within it.
    pub(crate) fn node_for(&mut self, bits: u32, len: u32, create: bool) -> Option<(usize, u8)> {
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

    pub(crate) fn insert(&mut self, value: u128, len: u32, h: u32) {
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

    pub(crate) fn remove(&mut self, value: u128, len: u32, h: u32) {
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

    pub(crate) fn lookup(&self, key: u128) -> Option<u32> {
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
pub(crate) struct LpmIndex {
    /// Position of the lpm field in the key.
    pub(crate) pos: usize,
    pub(crate) widths: Box<[u32]>,
    /// Total key width <= 128: keys are packed into a `u128`; otherwise
    /// they are hashed and candidates are checked against the entries.
    pub(crate) packed: bool,
    /// Sorted by prefix length, longest first; never holds an empty map.
    pub(crate) levels: Vec<LpmLevel>,
}

/// The entries with one prefix length. Only one of the two maps is used,
/// as chosen by [`LpmIndex::packed`].
#[derive(Debug, Clone)]
pub(crate) struct LpmLevel {
    pub(crate) len: u32,
    pub(crate) mask: u128,
    pub(crate) packed: FxHashMap<u128, u32>,
    pub(crate) hashed: FxHashMap<u64, Vec<u32>>,
}

impl LpmLevel {
    pub(crate) fn is_empty(&self) -> bool {
        self.packed.is_empty() && self.hashed.is_empty()
    }
}

impl LpmIndex {
    pub(crate) fn lpm_len(&self, entry: &Entry) -> u32 {
        match entry.key.get(self.pos) {
            Some(MatchValue::Lpm { prefix_len, .. }) => *prefix_len,
            _ => 0,
        }
    }

    pub(crate) fn lpm_width(&self) -> u32 {
        self.widths.get(self.pos).copied().unwrap_or(0)
    }

    /// The key values with the lpm field masked to `mask`.
    pub(crate) fn masked<'a>(
        &self,
        key: &'a [u128],
        mask: u128,
    ) -> impl Iterator<Item = u128> + 'a {
        let pos = self.pos;
        key.iter()
            .enumerate()
            .map(move |(i, &v)| if i == pos { v & mask } else { v })
    }

    pub(crate) fn hash(values: impl Iterator<Item = u128>) -> u64 {
        let mut hasher = FxHasher::default();
        for v in values {
            hasher.write_u128(v);
        }
        hasher.finish()
    }

    pub(crate) fn insert(&mut self, h: u32, entry: &Entry) {
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

    pub(crate) fn remove(&mut self, h: u32, entry: &Entry) {
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

    pub(crate) fn lookup(
        &self,
        key: &[u128],
        slots: &[Option<Entry>],
        fields: &[KeyField],
    ) -> Option<u32> {
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
