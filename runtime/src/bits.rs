//! Big-endian bit fields in byte buffers: the reference reads and writes that the interpreter
//! uses and that the JIT's generated loads and stores are tested against.

/// Reads `width` bits (1..=128) starting `bit_off` bits into `bytes`, most significant bit first.
///
/// Returns None if the field does not lie within `bytes`.
pub fn get_bits(bytes: &[u8], bit_off: usize, width: u32) -> Option<u128> {
    let width = width as usize;
    if width == 0 || width > 128 || bit_off + width > bytes.len() * 8 {
        return None;
    }
    let first = bit_off / 8;
    let last = (bit_off + width - 1) / 8;
    // Accumulate whole bytes, dropping leading bits of the first byte; at most 17 bytes, so
    // the high part is kept separately while shifting.
    let lead = bit_off % 8;
    let mut v: u128 = 0;
    for (i, &b) in bytes[first..=last].iter().enumerate() {
        let b = if i == 0 { b & (0xffu8 >> lead) } else { b };
        v = (v << 8) | u128::from(b);
    }
    let trail = (last + 1) * 8 - (bit_off + width);
    // A 17-byte span can only happen when width > 120; handle it by re-reading.
    if last - first + 1 > 16 {
        let hi = get_bits(bytes, bit_off, (width - 64) as u32)?;
        let lo = get_bits(bytes, bit_off + width - 64, 64)?;
        return Some((hi << 64) | lo);
    }
    Some(v >> trail)
}

/// Writes the low `width` bits of `value` at `bit_off`, leaving the other bits as they were.
/// Returns false (and writes nothing) if the field does not lie within `bytes`.
pub fn set_bits(bytes: &mut [u8], bit_off: usize, width: u32, value: u128) -> bool {
    let w = width as usize;
    if w == 0 || w > 128 || bit_off + w > bytes.len() * 8 {
        return false;
    }
    let value = value & low_mask(width);
    // Bit by bit from the least significant end: simple and obviously right; the JIT has
    // its own fast path, tested against this.
    for i in 0..w {
        let bit = ((value >> i) & 1) as u8;
        let pos = bit_off + w - 1 - i;
        let shift = 7 - (pos % 8);
        let byte = &mut bytes[pos / 8];
        *byte = (*byte & !(1 << shift)) | (bit << shift);
    }
    true
}

pub use sluice_defs::bits::low_mask;

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: read bit by bit.
    fn slow_get(bytes: &[u8], off: usize, w: u32) -> u128 {
        let mut v = 0u128;
        for i in 0..w as usize {
            let p = off + i;
            v = (v << 1) | u128::from((bytes[p / 8] >> (7 - p % 8)) & 1);
        }
        v
    }

    #[test]
    fn ipv4_fields() {
        // version 4, IHL 5, flags DF (0b010), fragment offset 0x0123.
        let b = [0x45u8, 0x00, 0x00, 0x54, 0xab, 0xcd, 0x41, 0x23];
        assert_eq!(get_bits(&b, 0, 4), Some(4));
        assert_eq!(get_bits(&b, 4, 4), Some(5));
        assert_eq!(get_bits(&b, 16, 16), Some(0x54));
        assert_eq!(get_bits(&b, 48, 3), Some(0b010));
        assert_eq!(get_bits(&b, 51, 13), Some(0x0123));
        assert_eq!(get_bits(&b, 60, 8), None);
    }

    #[test]
    fn every_offset_and_width_round_trips() {
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for w in 1..=128u32 {
            for off in 0..16usize {
                let mut buf = [0u8; 40];
                for b in buf.iter_mut() {
                    *b = next() as u8;
                }
                let orig = buf;
                let v = (u128::from(next()) << 64 | u128::from(next())) & low_mask(w);
                assert!(set_bits(&mut buf, off, w, v));
                assert_eq!(get_bits(&buf, off, w), Some(v), "w={w} off={off}");
                assert_eq!(slow_get(&buf, off, w), v);
                // Bits outside the field are untouched.
                for p in (0..off).chain(off + w as usize..buf.len() * 8) {
                    assert_eq!(
                        slow_get(&buf, p, 1),
                        slow_get(&orig, p, 1),
                        "bit {p} w={w} off={off}"
                    );
                }
            }
        }
    }

    #[test]
    fn out_of_bounds_is_refused() {
        let mut b = [0u8; 4];
        assert_eq!(get_bits(&b, 25, 8), None);
        assert!(!set_bits(&mut b, 25, 8, 1));
        assert_eq!(b, [0; 4]);
        assert_eq!(get_bits(&b, 0, 0), None);
        assert_eq!(get_bits(&b, 0, 32), Some(0));
    }
}
