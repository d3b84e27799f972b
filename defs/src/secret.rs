//! The literal of a secret key: `0x` and 32 hex digits, the 16 key bytes in order.
//!
//! Nothing here repeats the text it was given: a malformed key is still a key.

use std::fmt;

/// The key bytes, as the control plane sets them and SipHash takes them.
pub type SecretBytes = [u8; 16];

/// A secret literal that is not `0x` and 32 hex digits. Its message never repeats the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadSecret;

impl fmt::Display for BadSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the value must be 0x followed by exactly 32 hex digits")
    }
}

impl std::error::Error for BadSecret {}

/// Parses `0x` (or `0X`) and exactly 32 hex digits, surrounding whitespace ignored.
pub fn parse_secret(text: &str) -> Result<SecretBytes, BadSecret> {
    let t = text.trim();
    let digits = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .ok_or(BadSecret)?;
    if digits.len() != 32 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(BadSecret);
    }
    let mut key = [0u8; 16];
    for (byte, pair) in key.iter_mut().zip(digits.as_bytes().chunks_exact(2)) {
        *byte = (hex_digit(pair[0]) << 4) | hex_digit(pair[1]);
    }
    Ok(key)
}

fn hex_digit(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_in_byte_order() {
        let k = parse_secret("0x000102030405060708090a0B0c0d0e0f").unwrap();
        assert_eq!(k, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
        assert_eq!(parse_secret(" 0X000102030405060708090a0b0c0d0e0f\n"), Ok(k));
    }

    #[test]
    fn malformed_keys_are_refused_without_echo() {
        for bad in [
            "",
            "0x",
            "000102030405060708090a0b0c0d0e0f",
            "0x000102030405060708090a0b0c0d0e0",
            "0x000102030405060708090a0b0c0d0e0f00",
            "0x000102030405060708090a0b0c0d0e0g",
            "0x+00102030405060708090a0b0c0d0e0f",
        ] {
            let e = parse_secret(bad).unwrap_err();
            assert!(!e.to_string().contains("0001"), "{bad}");
        }
    }
}
