//! Widths and masks of field values, which are `u128`s of up to 128 bits.

/// A mask of the low `width` bits (all ones for 128 and wider).
#[inline]
pub fn low_mask(width: u32) -> u128 {
    if width >= 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    }
}

/// True when `v` can be stored in a field of `width` bits.
#[inline]
pub fn fits(v: u128, width: u32) -> bool {
    width >= 128 || v >> width == 0
}

/// How many bits `v` needs (at least 1).
pub fn bits_needed(v: u128) -> u32 {
    (128 - v.leading_zeros()).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_fits() {
        assert_eq!(low_mask(0), 0);
        assert_eq!(low_mask(1), 1);
        assert_eq!(low_mask(16), 0xffff);
        assert_eq!(low_mask(128), u128::MAX);
        assert_eq!(low_mask(200), u128::MAX);
        assert!(fits(0xffff, 16));
        assert!(!fits(0x1_0000, 16));
        assert!(fits(u128::MAX, 128));
        assert!(fits(0, 0));
        assert!(!fits(1, 0));
        assert_eq!(bits_needed(0), 1);
        assert_eq!(bits_needed(255), 8);
        assert_eq!(bits_needed(256), 9);
        assert_eq!(bits_needed(u128::MAX), 128);
    }
}
