//! The literal of a secret key: `0x` and 32 hex digits, the 16 key bytes in order (64 digits
//! for the 32 bytes of a 256-bit key).
//!
//! Nothing here repeats the text it was given: a malformed key is still a key.

use std::fmt;

/// The key bytes, as the control plane sets them and SipHash takes them.
pub type SecretBytes = [u8; 16];

/// The largest tunnel header `seal` and `open` take (key id, counter and AAD), in bytes.
pub const MAX_TUNNEL_HEADER_BYTES: usize = 64;

/// A declared secret: its name and its width, 128 bits (a SipHash key) or 256 (a keyring of
/// ChaCha20-Poly1305 keys for `seal` and `open`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SecretSpec {
    pub name: String,
    pub bits: u32,
}

impl SecretSpec {
    /// The widths a secret may have.
    pub const WIDTHS: [u32; 2] = [128, 256];

    /// How many hex digits its value has in `secret_set`.
    pub fn digits(&self) -> usize {
        self.bits as usize / 4
    }
}

/// A secret literal that is not `0x` and the right number of hex digits. Its message never
/// repeats the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadSecret {
    /// How many hex digits were expected.
    pub digits: usize,
}

impl fmt::Display for BadSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the value must be 0x followed by exactly {} hex digits",
            self.digits
        )
    }
}

impl std::error::Error for BadSecret {}

/// Parses `0x` (or `0X`) and exactly 32 hex digits, surrounding whitespace ignored.
pub fn parse_secret(text: &str) -> Result<SecretBytes, BadSecret> {
    parse_key(text)
}

/// Parses `0x` (or `0X`) and exactly `2 * N` hex digits, the `N` bytes in order, surrounding
/// whitespace ignored.
pub fn parse_key<const N: usize>(text: &str) -> Result<[u8; N], BadSecret> {
    let bad = BadSecret { digits: 2 * N };
    let t = text.trim();
    let digits = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .ok_or(bad)?;
    if digits.len() != 2 * N || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad);
    }
    let mut key = [0u8; N];
    for (byte, pair) in key.iter_mut().zip(digits.as_bytes().chunks_exact(2)) {
        *byte = (hex_digit(pair[0]) << 4) | hex_digit(pair[1]);
    }
    Ok(key)
}

/// `0x` and the bytes in hex, as [`parse_key`] reads them.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + 2 * bytes.len());
    s.push_str("0x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
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

    #[test]
    fn wide_keys_round_trip() {
        let k: [u8; 32] = std::array::from_fn(|i| i as u8);
        let text = to_hex(&k);
        assert_eq!(text.len(), 66);
        assert_eq!(parse_key::<32>(&text), Ok(k));
        assert_eq!(parse_key::<16>(&text), Err(BadSecret { digits: 32 }));
        assert_eq!(
            parse_key::<32>("0x00").unwrap_err().to_string(),
            "the value must be 0x followed by exactly 64 hex digits"
        );
    }
}
