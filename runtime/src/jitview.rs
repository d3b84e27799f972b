//! What generated code reads of a table to look it up without calling into Rust: for the
//! common key shapes, flat arrays behind a `repr(C)` view (`JitView`) with stable offsets.
//!
//! - `KIND_DIRECT`: exact keys of at most 16 bits in all: `direct[key]` is the handle.
//! - `KIND_HASH`: exact keys of at most 64 bits in all, packed: an open-addressing table
//!   (`JitHash`) from the packed key to handle + 1.
//! - `KIND_RANGE`: one exact key of at most 64 bits and one range key of at most 16 bits: a
//!   `JitHash` from the exact value to the address of that value's array of 2^width handles.
//!
//! On a hit, the entry's row (action id, arguments) is at `hot + handle * stride * 16`, and its
//! counters at `counters + handle * 16` (packets, then bytes).

use crate::table::{KeyField, MatchKind};

pub const KIND_GENERIC: u64 = 0;
pub const KIND_DIRECT: u64 = 1;
pub const KIND_HASH: u64 = 2;
pub const KIND_RANGE: u64 = 3;

/// Multiplier of the hash generated code computes: `(key * HASH_MUL) >> shift`.
pub const HASH_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

/// The view generated code reads. Every field is a u64 so that offsets are plain multiples of 8.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct JitView {
    pub kind: u64,
    /// KIND_DIRECT: the handle array.
    pub direct: u64,
    /// KIND_HASH / KIND_RANGE: the hash table's keys and values, its mask and shift.
    pub keys: u64,
    pub vals: u64,
    pub mask: u64,
    pub shift: u64,
    /// The rows, their stride in u128s, the default row, the counters.
    pub hot: u64,
    pub stride: u64,
    pub default_row: u64,
    pub counters: u64,
    /// Packed-key widths for KIND_HASH with two keys: key0 << width1 | key1.
    pub width1: u64,
}

/// Which shape a table's key has, as generated code sees it.
pub fn kind_for(keys: &[KeyField]) -> u64 {
    let total: u32 = keys.iter().map(|k| k.width).sum();
    let all_exact = keys.iter().all(|k| k.kind == MatchKind::Exact);
    if all_exact && !keys.is_empty() && keys.len() <= 2 {
        if total <= 16 {
            return KIND_DIRECT;
        }
        if total <= 64 {
            return KIND_HASH;
        }
    }
    if let [a, b] = keys {
        let (e, r) = if b.kind == MatchKind::Range {
            (a, b)
        } else {
            (b, a)
        };
        if e.kind == MatchKind::Exact
            && r.kind == MatchKind::Range
            && e.width <= 64
            && r.width <= 16
        {
            return KIND_RANGE;
        }
    }
    KIND_GENERIC
}

/// Open addressing with linear probing from `u64` keys to non-zero `u64` values; a zero value
/// marks an empty slot. Deletion shifts later entries back, so there are no tombstones and a
/// probe stops at the first empty slot.
#[derive(Clone, Debug)]
pub struct JitHash {
    keys: Vec<u64>,
    vals: Vec<u64>,
    len: usize,
    bits: u32,
}

impl Default for JitHash {
    fn default() -> Self {
        JitHash::with_bits(4)
    }
}

impl JitHash {
    fn with_bits(bits: u32) -> JitHash {
        JitHash {
            keys: vec![0; 1 << bits],
            vals: vec![0; 1 << bits],
            len: 0,
            bits,
        }
    }

    fn mask(&self) -> usize {
        (1usize << self.bits) - 1
    }

    fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(HASH_MUL) >> (64 - self.bits)) as usize
    }

    pub fn get(&self, key: u64) -> Option<u64> {
        let mut i = self.home(key);
        loop {
            let v = self.vals[i];
            if v == 0 {
                return None;
            }
            if self.keys[i] == key {
                return Some(v);
            }
            i = (i + 1) & self.mask();
        }
    }

    /// Inserts or replaces; `val` must not be 0.
    pub fn insert(&mut self, key: u64, val: u64) {
        debug_assert!(val != 0);
        if (self.len + 1) * 2 > self.keys.len() {
            let mut bigger = JitHash::with_bits(self.bits + 1);
            for (k, v) in self.keys.iter().zip(&self.vals) {
                if *v != 0 {
                    bigger.insert(*k, *v);
                }
            }
            *self = bigger;
        }
        let mut i = self.home(key);
        loop {
            if self.vals[i] == 0 {
                self.keys[i] = key;
                self.vals[i] = val;
                self.len += 1;
                return;
            }
            if self.keys[i] == key {
                self.vals[i] = val;
                return;
            }
            i = (i + 1) & self.mask();
        }
    }

    pub fn remove(&mut self, key: u64) {
        let mask = self.mask();
        let mut i = self.home(key);
        loop {
            if self.vals[i] == 0 {
                return;
            }
            if self.keys[i] == key {
                break;
            }
            i = (i + 1) & mask;
        }
        self.vals[i] = 0;
        self.len -= 1;
        // Shift back the entries of the run that follows, so probes stay unbroken.
        let mut hole = i;
        let mut j = (i + 1) & mask;
        while self.vals[j] != 0 {
            let home = self.home(self.keys[j]);
            // j may move to the hole if its home is not cyclically in (hole, j].
            let dist_home = j.wrapping_sub(home) & mask;
            let dist_hole = j.wrapping_sub(hole) & mask;
            if dist_home >= dist_hole {
                self.keys[hole] = self.keys[j];
                self.vals[hole] = self.vals[j];
                self.vals[j] = 0;
                hole = j;
            }
            j = (j + 1) & mask;
        }
    }

    /// Fills the hash part of a view.
    pub fn fill(&self, v: &mut JitView) {
        v.keys = self.keys.as_ptr() as u64;
        v.vals = self.vals.as_ptr() as u64;
        v.mask = self.mask() as u64;
        v.shift = u64::from(64 - self.bits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jit_hash_matches_a_map_through_inserts_and_removes() {
        let mut h = JitHash::default();
        let mut reference = std::collections::HashMap::new();
        let mut seed = 0x1234_5678_9abc_def0u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Few distinct keys, so that removes and re-inserts collide often.
            let key = seed % 3000;
            if seed & 3 == 0 {
                h.remove(key);
                reference.remove(&key);
            } else {
                h.insert(key, seed | 1);
                reference.insert(key, seed | 1);
            }
        }
        for k in 0..3000 {
            assert_eq!(h.get(k), reference.get(&k).copied(), "key {k}");
        }
    }
}
