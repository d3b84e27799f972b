//! What generated code reads of a table to look it up without calling into Rust: for the
//! common key shapes, flat arrays behind a `repr(C)` view (`JitView`) with stable offsets.
//!
//! - `KIND_DIRECT`: exact keys of at most 16 bits in all: `direct[key]` is the handle.
//! - `KIND_HASH`: exact keys of at most 64 bits in all, packed: an open-addressing table
//!   (`JitHash`) from the packed key to handle + 1.
//! - `KIND_RANGE`: one exact key of at most 64 bits and one range key of at most 16 bits: a
//!   `JitHash` from the exact value to the address of that value's resolved ranges: an array
//!   of 2^width handles, or, with bit 0 set, its segments (`table::index::range::Slots`).
//!
//! On a hit, the entry's row is at `hot + (handle << row_shift)`: the action id, then its
//! arguments packed as [`arg_slots`] lays them out (a row of `port_dnat`'s `dnat` is 8 bytes),
//! so that a million rows take 8 MB rather than 48 and a hit reads one line; the entry's
//! counters are at `counters + handle * 16` (packets, then bytes).

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
    /// KIND_HASH / KIND_RANGE: the hash table's buckets (`keys`; 16 bytes each, the key then
    /// the value, which `vals` points at), its mask and shift.
    pub keys: u64,
    pub vals: u64,
    pub mask: u64,
    pub shift: u64,
    /// The rows, log2 of their size in bytes, the default row, the counters.
    pub hot: u64,
    pub row_shift: u64,
    pub default_row: u64,
    pub counters: u64,
    /// Packed-key widths for KIND_HASH with two keys: key0 << width1 | key1.
    pub width1: u64,
}

/// Where one argument lies in a row: `bytes` (1, 2, 4, 8 or 16) at `offset`, little-endian.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgSlot {
    pub offset: u32,
    pub bytes: u32,
}

/// The bytes an argument of `width` bits takes in a row.
pub fn arg_bytes(width: u32) -> u32 {
    match width {
        0..=8 => 1,
        9..=16 => 2,
        17..=32 => 4,
        33..=64 => 8,
        _ => 16,
    }
}

/// The bytes of the action id that starts every row: 2 for a program of at most 65,536
/// actions (ids up to 65,535), else 4.
pub fn action_bytes(actions: usize) -> u32 {
    if actions <= 1 << 16 {
        2
    } else {
        4
    }
}

/// Lays out an action's arguments after the action id: the largest first, each at the lowest
/// offset aligned to its size (8 at most) that is still free, so that small arguments fill
/// the gaps. Returns each argument's slot in parameter order, and the bytes used. Generated
/// code and the table both lay rows out with this, so they agree by construction.
pub fn arg_slots(action_bytes: u32, widths: &[u32]) -> (Vec<ArgSlot>, u32) {
    let mut used: Vec<bool> = vec![true; action_bytes as usize];
    let mut slots = vec![
        ArgSlot {
            offset: 0,
            bytes: 0
        };
        widths.len()
    ];
    let mut order: Vec<usize> = (0..widths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(arg_bytes(widths[i])));
    for i in order {
        let bytes = arg_bytes(widths[i]);
        let align = bytes.min(8) as usize;
        let mut at = 0;
        loop {
            let end = at + bytes as usize;
            if used.len() < end {
                used.resize(end, false);
            }
            if used[at..end].iter().all(|u| !u) {
                used[at..end].fill(true);
                break;
            }
            at += align;
        }
        slots[i] = ArgSlot {
            offset: at as u32,
            bytes,
        };
    }
    (slots, used.len() as u32)
}

/// The row size for actions whose rows take `longest` bytes: a power of two, at least 8, so
/// that rows never straddle a cache line.
pub fn row_shift(longest: u32) -> u32 {
    longest.max(8).next_power_of_two().trailing_zeros()
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
/// probe stops at the first empty slot. A key and its value share a 16-byte bucket, so that
/// a probe reads one line.
#[derive(Clone, Debug)]
pub struct JitHash {
    buckets: Vec<Bucket>,
    len: usize,
    bits: u32,
}

/// Aligned to its size, so that no bucket straddles a cache line.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    key: u64,
    val: u64,
}

impl Default for JitHash {
    fn default() -> Self {
        JitHash::with_bits(4)
    }
}

impl JitHash {
    fn with_bits(bits: u32) -> JitHash {
        JitHash {
            buckets: vec![Bucket::default(); 1 << bits],
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
            let b = self.buckets[i];
            if b.val == 0 {
                return None;
            }
            if b.key == key {
                return Some(b.val);
            }
            i = (i + 1) & self.mask();
        }
    }

    /// Inserts or replaces; `val` must not be 0.
    pub fn insert(&mut self, key: u64, val: u64) {
        debug_assert!(val != 0);
        if (self.len + 1) * 2 > self.buckets.len() {
            let mut bigger = JitHash::with_bits(self.bits + 1);
            for b in &self.buckets {
                if b.val != 0 {
                    bigger.insert(b.key, b.val);
                }
            }
            *self = bigger;
        }
        let mut i = self.home(key);
        loop {
            let b = &mut self.buckets[i];
            if b.val == 0 {
                *b = Bucket { key, val };
                self.len += 1;
                return;
            }
            if b.key == key {
                b.val = val;
                return;
            }
            i = (i + 1) & self.mask();
        }
    }

    pub fn remove(&mut self, key: u64) {
        let mask = self.mask();
        let mut i = self.home(key);
        loop {
            if self.buckets[i].val == 0 {
                return;
            }
            if self.buckets[i].key == key {
                break;
            }
            i = (i + 1) & mask;
        }
        self.buckets[i].val = 0;
        self.len -= 1;
        // Shift back the entries of the run that follows, so probes stay unbroken.
        let mut hole = i;
        let mut j = (i + 1) & mask;
        while self.buckets[j].val != 0 {
            let home = self.home(self.buckets[j].key);
            // j may move to the hole if its home is not cyclically in (hole, j].
            let dist_home = j.wrapping_sub(home) & mask;
            let dist_hole = j.wrapping_sub(hole) & mask;
            if dist_home >= dist_hole {
                self.buckets[hole] = self.buckets[j];
                self.buckets[j].val = 0;
                hole = j;
            }
            j = (j + 1) & mask;
        }
    }

    /// Fills the hash part of a view: bucket `i` is at `keys + 16 * i`, its value 8 bytes on.
    pub fn fill(&self, v: &mut JitView) {
        v.keys = self.buckets.as_ptr() as u64;
        v.vals = v.keys + 8;
        v.mask = self.mask() as u64;
        v.shift = u64::from(64 - self.bits);
    }

    /// The bytes the buckets take.
    pub fn bytes(&self) -> usize {
        self.buckets.len() * std::mem::size_of::<Bucket>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_pack_arguments_largest_first_into_the_gaps() {
        // port_dnat's to_vm(vm_ip: 32, out: 16) after a 2-byte action id: 8 bytes.
        let (slots, len) = arg_slots(2, &[32, 16]);
        assert_eq!(
            slots,
            [
                ArgSlot {
                    offset: 4,
                    bytes: 4
                },
                ArgSlot {
                    offset: 2,
                    bytes: 2
                }
            ]
        );
        assert_eq!((len, row_shift(len)), (8, 3));
        // A MAC (48 bits in 8 bytes), a port (9 bits in 2), a flag, an IPv6 address.
        let (slots, len) = arg_slots(2, &[48, 9, 1, 128]);
        let offsets: Vec<(u32, u32)> = slots.iter().map(|s| (s.offset, s.bytes)).collect();
        assert_eq!(offsets, [(24, 8), (2, 2), (4, 1), (8, 16)]);
        assert_eq!((len, row_shift(len)), (32, 5));
        // No arguments: the id alone, in an 8-byte row.
        assert_eq!(arg_slots(4, &[]), (vec![], 4));
        assert_eq!(row_shift(4), 3);
        // Slots never overlap each other or the id, and are aligned.
        let widths = [7, 64, 3, 33, 16, 128, 1, 17];
        let (slots, len) = arg_slots(2, &widths);
        let mut bytes = vec![0u8; len as usize];
        bytes[..2].fill(1);
        for s in &slots {
            assert_eq!(s.offset % s.bytes.min(8), 0, "{s:?}");
            for b in &mut bytes[s.offset as usize..(s.offset + s.bytes) as usize] {
                assert_eq!(*b, 0, "{slots:?}");
                *b = 1;
            }
        }
    }

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
