//! Hash functions that programs call: flow hashes for load balancing and SipHash-2-4 for
//! authentication tokens.

pub use sluice_defs::HashAlgo;

pub fn compute(algo: HashAlgo, bytes: &[u8]) -> u64 {
    match algo {
        HashAlgo::Crc32 => u64::from(crc32(bytes)),
        HashAlgo::Crc16 => u64::from(crc16(bytes)),
        HashAlgo::Identity => bytes.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b)),
    }
}

/// Reduces a hash to 0..max-1; a max of 0 gives 0 (entries that would need it are refused
/// when installed).
#[inline]
pub fn reduce(h: u64, max: u128) -> u128 {
    match u64::try_from(max) {
        Ok(0) => 0,
        // The common case (a group size): a 64-bit division, not a 128-bit one.
        Ok(m) => u128::from(h % m),
        Err(_) => u128::from(h) % max,
    }
}

/// CRC-32 by crc32fast (slicing-by-16 or carry-less multiplication): several times faster
/// than a loop over bits, and the same function (checked against one in the tests).
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc = 0u16;
    for &b in bytes {
        crc ^= u16::from(b);
        for _ in 0..8 {
            let m = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xa001 & m);
        }
    }
    crc
}

/// SipHash-2-4 with a 16-byte key; the 8 output bytes read as a little-endian integer.
pub fn siphash24(key: &[u8; 16], msg: &[u8]) -> u64 {
    let k0 = u64::from_le_bytes([
        key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
    ]);
    let k1 = u64::from_le_bytes([
        key[8], key[9], key[10], key[11], key[12], key[13], key[14], key[15],
    ]);
    let mut v = [
        k0 ^ 0x736f6d6570736575,
        k1 ^ 0x646f72616e646f6d,
        k0 ^ 0x6c7967656e657261,
        k1 ^ 0x7465646279746573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut chunks = msg.chunks_exact(8);
    for c in &mut chunks {
        let m = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
    }
    let rest = chunks.remainder();
    let mut last = (msg.len() as u64 & 0xff) << 56;
    for (i, b) in rest.iter().enumerate() {
        last |= u64::from(*b) << (8 * i);
    }
    v[3] ^= last;
    round(&mut v);
    round(&mut v);
    v[0] ^= last;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CRC-32 bit by bit, as its definition goes: the tests' oracle for `crc32`.
    fn crc32_bitwise(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                let m = (crc & 1).wrapping_neg();
                crc = (crc >> 1) ^ (0xedb8_8320 & m);
            }
        }
        !crc
    }

    #[test]
    fn crc32_is_the_bitwise_definition() {
        let mut x = 0x9e37_79b9u32;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            assert_eq!(crc32(&bytes), crc32_bitwise(&bytes), "{bytes:02x?}");
        }
    }

    #[test]
    fn reduce_is_the_remainder() {
        for (h, max) in [
            (0u64, 1u128),
            (12345, 7),
            (u64::MAX, 3),
            (u64::MAX, u128::from(u64::MAX)),
            (5, u128::from(u64::MAX) + 1),
            (u64::MAX, u128::MAX),
        ] {
            assert_eq!(reduce(h, max), u128::from(h) % max, "{h} % {max}");
        }
        assert_eq!(reduce(99, 0), 0);
    }

    #[test]
    fn crc_check_values() {
        // The standard check input "123456789".
        assert_eq!(crc32(b"123456789"), 0xcbf43926);
        assert_eq!(crc16(b"123456789"), 0xbb3d);
    }

    #[test]
    fn siphash_reference_vectors() {
        let key: [u8; 16] = core::array::from_fn(|i| i as u8);
        // From the SipHash paper's reference implementation (vectors.h): empty input, and the
        // 8-byte input 00..07.
        assert_eq!(siphash24(&key, &[]), 0x726fdb47dd0e0e31);
        let msg: Vec<u8> = (0..8).collect();
        assert_eq!(siphash24(&key, &msg), 0x93f5f5799a932462);
        let msg15: Vec<u8> = (0..15).collect();
        assert_eq!(siphash24(&key, &msg15), 0xa129ca6149be45e5);
    }
}
