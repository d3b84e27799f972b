//! Internet checksums (RFC 1071) and their incremental update (RFC 1624), shared by the
//! interpreter and the JIT so that both compute the same bits.
//!
//! A field's contribution to a one's complement sum is its value placed at its position in the
//! 16-bit word grid, reduced modulo 0xffff; since 2^16 = 1 (mod 0xffff), that is the value
//! folded into 16 bits and rotated left by its distance from the end of its last word.

/// Folds a wide value into a 16-bit one's complement sum.
pub fn fold(mut v: u128) -> u16 {
    while v > 0xffff {
        v = (v & 0xffff) + (v >> 16);
    }
    v as u16
}

/// One's complement addition of two 16-bit values.
pub fn add(a: u16, b: u16) -> u16 {
    let s = u32::from(a) + u32::from(b);
    ((s & 0xffff) + (s >> 16)) as u16
}

/// The contribution of a field of `width` bits at `bit_off` bits from the start of the
/// checksummed region.
pub fn contribution(value: u128, bit_off: u32, width: u32) -> u16 {
    let end = bit_off + width;
    let rot = (16 - end % 16) % 16;
    fold(value).rotate_left(rot)
}

/// RFC 1624 eqn. 3 over a list of changed fields: HC' = ~(~HC + sum(~m + m')).
/// `changes` holds (old contribution, new contribution) of each field that changed.
pub fn update(old_checksum: u16, changes: impl IntoIterator<Item = (u16, u16)>) -> u16 {
    let mut acc = !old_checksum;
    for (m, m2) in changes {
        acc = add(acc, !m);
        acc = add(acc, m2);
    }
    !acc
}

/// A checksum computed from scratch over contributions (a header made valid by an action).
pub fn full(contributions: impl IntoIterator<Item = u16>) -> u16 {
    let mut acc = 0u16;
    for c in contributions {
        acc = add(acc, c);
    }
    !acc
}

/// The RFC 1071 checksum of a byte string (for tests and tools).
pub fn of_bytes(bytes: &[u8]) -> u16 {
    let mut acc = 0u16;
    for chunk in bytes.chunks(2) {
        let w = u16::from(chunk[0]) << 8 | u16::from(*chunk.get(1).unwrap_or(&0));
        acc = add(acc, w);
    }
    !acc
}

#[cfg(test)]
mod tests {
    use super::*;

    // An IPv4 header from RFC 1071's style example, checksum 0xb861.
    const HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    #[test]
    fn full_header_checksum() {
        let mut h = HDR;
        h[10] = 0;
        h[11] = 0;
        assert_eq!(of_bytes(&h), 0xb861);
        assert_eq!(of_bytes(&HDR), 0);
    }

    #[test]
    fn incremental_matches_recompute() {
        // Change the destination 192.168.0.199 -> 10.1.2.3 and the TTL 64 -> 63.
        let old_dst = 0xc0a800c7u128;
        let new_dst = 0x0a010203u128;
        let c = update(
            0xb861,
            [
                (
                    contribution(old_dst, 128, 32),
                    contribution(new_dst, 128, 32),
                ),
                (contribution(64, 64, 8), contribution(63, 64, 8)),
            ],
        );
        let mut h = HDR;
        h[8] = 63;
        h[16..20].copy_from_slice(&[10, 1, 2, 3]);
        h[10] = 0;
        h[11] = 0;
        assert_eq!(c, of_bytes(&h));
    }

    #[test]
    fn unaligned_fields_contribute_in_place() {
        // A 13-bit field at bit 51 (IPv4 fragment offset) and a 4-bit field at bit 4.
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        crate::bits::set_bits(&mut b, 51, 13, 0x1abc);
        crate::bits::set_bits(&mut b, 4, 4, 0xa);
        let by_fields = full([contribution(0x1abc, 51, 13), contribution(0xa, 4, 4)]);
        assert_eq!(by_fields, of_bytes(&b));
        crate::bits::set_bits(&mut a, 0, 64, 0);
        assert_eq!(full([]), of_bytes(&a));
    }
}
