//! Literal values of the control plane: parsing `8080`, `0x1f90`, `0b1010`,
//! `10.0.0.1`, `2001:db8::1` and `aa:bb:cc:dd:ee:ff` into field-sized integers.

use std::net::{Ipv4Addr, Ipv6Addr};

use thiserror::Error;

/// Why a literal could not be turned into a field value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValueError {
    #[error("empty value")]
    Empty,
    #[error("invalid value '{text}': {expected}")]
    Invalid {
        text: String,
        expected: &'static str,
    },
    #[error("value {text} is larger than 128 bits")]
    TooLarge { text: String },
    #[error("value {text} does not fit in {width} bits")]
    TooWide { text: String, width: u32 },
    #[error("field width {width} is outside 1..=128 bits")]
    BadWidth { width: u32 },
}

const NUMBER_FORMS: &str = "expected a decimal, 0x hex or 0b binary number, \
                            an IPv4 or IPv6 address, or a MAC address";

/// Parses a control-plane literal and checks that it fits in `width` bits.
///
/// Accepted forms: decimal (`8080`), hex (`0x1f90`, any case), binary
/// (`0b1010`), dotted IPv4 (`10.0.0.1`, 32 bits), IPv6 (`2001:db8::1`,
/// 128 bits) and MAC (`aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff`, 48 bits).
pub fn parse_value(text: &str, width: u32) -> Result<u128, ValueError> {
    if !(1..=128).contains(&width) {
        return Err(ValueError::BadWidth { width });
    }
    let value = parse_unsized(text)?;
    if fits(value, width) {
        Ok(value)
    } else {
        Err(ValueError::TooWide {
            text: sluice_defs::names::echo(text),
            width,
        })
    }
}

/// Formats `v` as zero-padded hex with as many nibbles as `width` needs.
pub fn format_value(v: u128, width: u32) -> String {
    let nibbles = width.clamp(1, 128).div_ceil(4) as usize;
    format!("0x{v:0nibbles$x}")
}

pub(crate) use sluice_defs::bits::{fits, low_mask as ones};

fn parse_unsized(text: &str) -> Result<u128, ValueError> {
    if text.is_empty() {
        return Err(ValueError::Empty);
    }
    let invalid = |expected| ValueError::Invalid {
        text: sluice_defs::names::echo(text),
        expected,
    };
    if text.starts_with('-') {
        return Err(invalid("negative values are not allowed"));
    }
    if let Some(digits) = strip_prefix_ci(text, "0x") {
        return parse_radix(text, digits, 16, "expected hex digits after 0x");
    }
    if let Some(digits) = strip_prefix_ci(text, "0b") {
        return parse_radix(text, digits, 2, "expected binary digits after 0b");
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return parse_radix(text, text, 10, NUMBER_FORMS);
    }
    if text.contains('.') {
        return text
            .parse::<Ipv4Addr>()
            .map(|a| u128::from(a.to_bits()))
            .map_err(|_| {
                invalid("malformed IPv4 address (expected four decimal octets like 10.0.0.1)")
            });
    }
    if let Some(mac) = parse_mac(text) {
        return Ok(mac);
    }
    if text.contains(':') {
        return text
            .parse::<Ipv6Addr>()
            .map(Ipv6Addr::to_bits)
            .map_err(|_| invalid("malformed MAC (aa:bb:cc:dd:ee:ff) or IPv6 address"));
    }
    if text.contains('-') {
        return Err(invalid(
            "malformed MAC address (expected aa-bb-cc-dd-ee-ff)",
        ));
    }
    Err(invalid(NUMBER_FORMS))
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| text.get(prefix.len()..))
        .flatten()
}

fn parse_radix(
    text: &str,
    digits: &str,
    radix: u32,
    expected: &'static str,
) -> Result<u128, ValueError> {
    // from_str_radix would also accept a leading '+', so check digits first.
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(ValueError::Invalid {
            text: sluice_defs::names::echo(text),
            expected,
        });
    }
    u128::from_str_radix(digits, radix).map_err(|_| ValueError::TooLarge {
        text: sluice_defs::names::echo(text),
    })
}

/// Six groups of one or two hex digits, all separated by ':' or all by '-'.
fn parse_mac(text: &str) -> Option<u128> {
    let sep = if text.contains(':') { ':' } else { '-' };
    let mut value = 0u128;
    let mut groups = 0;
    for group in text.split(sep) {
        if group.is_empty() || group.len() > 2 || !group.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        value = (value << 8) | u128::from(u8::from_str_radix(group, 16).ok()?);
        groups += 1;
    }
    (groups == 6).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_form() {
        assert_eq!(parse_value("8080", 16), Ok(8080));
        assert_eq!(parse_value("0x1f90", 16), Ok(0x1f90));
        assert_eq!(parse_value("0X1F90", 16), Ok(0x1f90));
        assert_eq!(parse_value("0b1010", 4), Ok(10));
        assert_eq!(parse_value("10.0.0.1", 32), Ok(0x0a00_0001));
        assert_eq!(parse_value("aa:bb:cc:dd:ee:ff", 48), Ok(0xaabb_ccdd_eeff));
        assert_eq!(parse_value("AA-BB-CC-DD-EE-0F", 48), Ok(0xaabb_ccdd_ee0f));
        assert_eq!(parse_value("2001:db8::1", 128), Ok(0x2001_0db8 << 96 | 1));
        assert_eq!(parse_value("0", 1), Ok(0));
        assert_eq!(
            parse_value("340282366920938463463374607431768211455", 128),
            Ok(u128::MAX)
        );
    }

    #[test]
    fn rejects_too_wide() {
        let err = parse_value("70000", 16).unwrap_err();
        assert_eq!(err.to_string(), "value 70000 does not fit in 16 bits");
        let err = parse_value("10.0.0.1", 16).unwrap_err();
        assert_eq!(err.to_string(), "value 10.0.0.1 does not fit in 16 bits");
        assert!(parse_value("0x100", 8).is_err());
        assert_eq!(parse_value("0xff", 8), Ok(255));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_value("", 8), Err(ValueError::Empty));
        for bad in [
            "abc",
            "0x",
            "0xg1",
            "0b102",
            "0x+5",
            "+5",
            "-5",
            "1.2.3",
            "1.2.3.256",
            "aa:bb:cc",
            "aa-bb-cc-dd-ee",
            "aa:bb-cc:dd:ee:ff",
            "12abc",
            "010.0.0.1",
        ] {
            let err = parse_value(bad, 128).unwrap_err();
            assert!(
                matches!(err, ValueError::Invalid { ref text, .. } if text == bad),
                "{bad}: {err}"
            );
        }
        let err = parse_value("340282366920938463463374607431768211456", 128).unwrap_err();
        assert!(matches!(err, ValueError::TooLarge { .. }), "{err}");
        let err = parse_value(&format!("0x1{}", "0".repeat(32)), 128).unwrap_err();
        assert!(err.to_string().contains("larger than 128 bits"), "{err}");
        assert_eq!(parse_value("1", 0), Err(ValueError::BadWidth { width: 0 }));
        assert_eq!(
            parse_value("1", 129),
            Err(ValueError::BadWidth { width: 129 })
        );
    }

    #[test]
    fn formats_hex_padded_to_width() {
        assert_eq!(format_value(0x0a00_0001, 32), "0x0a000001");
        assert_eq!(format_value(5, 9), "0x005");
        assert_eq!(format_value(1, 1), "0x1");
        assert_eq!(
            format_value(u128::MAX, 128),
            format!("0x{}", "f".repeat(32))
        );
    }
}
