//! The text a user gives the binary (programs, entries files, ctl scripts, key files): read
//! with a bound on its size, refused at the first byte that is not text (a NUL, or not UTF-8)
//! with its line and column, and a leading UTF-8 byte-order mark skipped, as editors on Windows
//! write one.
//!
//! The checks run as the bytes arrive, so `/dev/zero` or a binary file is refused after its
//! first read, not after filling memory.

use std::io::{BufRead, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The default of `--max-text-size`: room for ten million table entries.
pub const DEFAULT_MAX_TEXT: u64 = 1 << 30;

static MAX_TEXT: AtomicU64 = AtomicU64::new(DEFAULT_MAX_TEXT);

/// Sets the size limit of text inputs (the global `--max-text-size`).
pub fn set_max_text(bytes: u64) {
    MAX_TEXT.store(bytes, Ordering::Relaxed);
}

fn max_text() -> u64 {
    MAX_TEXT.load(Ordering::Relaxed)
}

const BOM: &[u8] = b"\xef\xbb\xbf";

/// Parses `--max-text-size`: bytes, or a number with K, M or G (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" => 0,
        "K" | "KIB" => 10,
        "M" | "MIB" => 20,
        "G" | "GIB" => 30,
        _ => return Err(format!("unknown unit `{unit}` (use K, M or G)")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|n| *n > 0)
        .ok_or_else(|| "expected a size such as 65536, 64K, 256M or 1G".to_string())
}

/// Where the first byte that is not text is, if any, in `bytes` (whose first `checked` bytes
/// were found good already); `complete` says that no more bytes follow, so that a UTF-8
/// sequence cut at the end is an error rather than a wait for the rest.
fn first_bad(bytes: &[u8], checked: usize, complete: bool) -> Result<usize, usize> {
    let rest = &bytes[checked..];
    let utf8_end = match std::str::from_utf8(rest) {
        Ok(_) => rest.len(),
        Err(e) if e.error_len().is_none() && !complete => e.valid_up_to(),
        Err(e) => return Err(checked + nul_before(rest, e.valid_up_to())),
    };
    match rest[..utf8_end].iter().position(|b| *b == 0) {
        Some(i) => Err(checked + i),
        None => Ok(checked + utf8_end),
    }
}

/// A NUL before `end`, or `end`.
fn nul_before(bytes: &[u8], end: usize) -> usize {
    bytes[..end].iter().position(|b| *b == 0).unwrap_or(end)
}

/// The message for the byte at `at`, which is not text.
fn not_text(name: &str, bytes: &[u8], at: usize, first_line: usize) -> String {
    let line_start = bytes[..at]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let line = first_line + bytes[..at].iter().filter(|b| **b == b'\n').count();
    // The bytes before `at` on its line are valid UTF-8 (the first bad byte is at `at`).
    let column = String::from_utf8_lossy(&bytes[line_start..at])
        .chars()
        .count()
        + 1;
    let what = match bytes[at] {
        0 => "a NUL byte".to_string(),
        b => format!("byte 0x{b:02x}, which is not UTF-8"),
    };
    format!("{name}:{line}:{column}: not a text file: {what}")
}

/// Reads a whole text file (`what` names it in errors: "program", "entries file").
pub fn read_text(path: &Path, what: &str) -> anyhow::Result<String> {
    let name = path.display().to_string();
    let file =
        std::fs::File::open(path).map_err(|e| anyhow::anyhow!("cannot read {what} {name}: {e}"))?;
    read_text_from(file, &name, what, max_text())
}

/// Reads at most `limit` bytes of text from any reader (see [`read_text`]).
pub fn read_text_from(
    mut r: impl Read,
    name: &str,
    what: &str,
    limit: u64,
) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    let mut checked = 0;
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let n = match r.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => anyhow::bail!("cannot read {what} {name}: {e}"),
        };
        if bytes.len() as u64 + n as u64 > limit {
            anyhow::bail!(
                "{what} {name} is larger than {limit} bytes (raise the limit with --max-text-size)"
            );
        }
        bytes.extend_from_slice(&chunk[..n]);
        checked = first_bad(&bytes, checked, n == 0)
            .map_err(|at| anyhow::anyhow!(not_text(name, &bytes, at, 1)))?;
        if n == 0 {
            break;
        }
    }
    if bytes.starts_with(BOM) {
        bytes.drain(..BOM.len());
    }
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(not_text(
            name,
            e.as_bytes(),
            e.utf8_error().valid_up_to(),
            1
        ))
    })
}

/// The lines of a script (`ctl -f`), read one at a time so that a script's commands run as it
/// is read (standard input may be a pipe that never ends), each at most `max` bytes.
pub struct Lines<R> {
    reader: R,
    name: String,
    max: usize,
    /// The number of the line read last.
    pub number: usize,
}

impl<R: BufRead> Lines<R> {
    pub fn new(reader: R, name: &str, max: usize) -> Self {
        Lines {
            reader,
            name: name.to_string(),
            max,
            number: 0,
        }
    }

    /// The next line without its end (`\n` or `\r\n`), None at the end of the input, or the
    /// error that ends the script ("NAME:LINE: ...").
    pub fn next_line(&mut self) -> Result<Option<String>, String> {
        let mut line = Vec::new();
        loop {
            let avail = match self.reader.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(format!(
                        "{}:{}: cannot read: {e}",
                        self.name,
                        self.number + 1
                    ))
                }
            };
            if avail.is_empty() {
                if line.is_empty() {
                    return Ok(None);
                }
                break;
            }
            let (take, end) = match avail.iter().position(|b| *b == b'\n') {
                Some(i) => (i, true),
                None => (avail.len(), false),
            };
            line.extend_from_slice(&avail[..take]);
            self.reader.consume(take + usize::from(end));
            // A NUL says "not text" at once (`/dev/zero` has no line ends).
            if let Some(at) = line.iter().position(|b| *b == 0) {
                return Err(not_text(&self.name, &line, at, self.number + 1));
            }
            if line.len() > self.max {
                return Err(format!(
                    "{}:{}: line longer than {} bytes",
                    self.name,
                    self.number + 1,
                    self.max
                ));
            }
            if end {
                break;
            }
        }
        self.number += 1;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if self.number == 1 && line.starts_with(BOM) {
            line.drain(..BOM.len());
        }
        if let Err(at) = first_bad(&line, 0, true) {
            return Err(not_text(&self.name, &line, at, self.number));
        }
        String::from_utf8(line).map(Some).map_err(|e| {
            not_text(
                &self.name,
                e.as_bytes(),
                e.utf8_error().valid_up_to(),
                self.number,
            )
        })
    }
}

/// A key file's contents (or standard input's, for `-`): at most a few hundred bytes.
pub fn read_secret_file(path: &Path) -> Result<String, String> {
    const MAX: u64 = 1024;
    let name = if path.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        sluice_defs::names::echo(&path.display().to_string())
    };
    let mut text = Vec::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().take(MAX + 1).read_to_end(&mut text)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX + 1).read_to_end(&mut text))
    };
    read.map_err(|e| format!("cannot read the secret file {name}: {e}"))?;
    if text.len() as u64 > MAX {
        return Err(format!("the secret file {name} is longer than {MAX} bytes"));
    }
    // Never quote a key file's bytes: say only that it is not text.
    String::from_utf8(text).map_err(|_| format!("the secret file {name} is not text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<String, String> {
        read_text_from(bytes, "f.sluice", "program", 1 << 20).map_err(|e| e.to_string())
    }

    #[test]
    fn text_is_read_and_a_bom_skipped() {
        assert_eq!(read(b"a\nb\n").unwrap(), "a\nb\n");
        assert_eq!(read(b"\xef\xbb\xbfa\n").unwrap(), "a\n");
        assert_eq!(read("é\n".as_bytes()).unwrap(), "é\n");
    }

    #[test]
    fn the_first_byte_that_is_not_text_is_named_by_line_and_column() {
        assert_eq!(
            read(b"ok\nab\xffc\n").unwrap_err(),
            "f.sluice:2:3: not a text file: byte 0xff, which is not UTF-8"
        );
        assert_eq!(
            read("ok\né\0".as_bytes()).unwrap_err(),
            "f.sluice:2:2: not a text file: a NUL byte"
        );
        // A sequence cut by the end of the file.
        assert!(read(b"ok\n\xc3").unwrap_err().starts_with("f.sluice:2:1:"));
    }

    #[test]
    fn a_multibyte_character_split_across_reads_is_text() {
        // A reader that returns one byte at a time.
        struct Slow<'a>(&'a [u8]);
        impl Read for Slow<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let text = "αβγ\n";
        assert_eq!(
            read_text_from(Slow(text.as_bytes()), "f", "p", 64).unwrap(),
            text
        );
    }

    #[test]
    fn an_endless_input_stops_at_the_limit() {
        let err = read_text_from(std::io::repeat(b'a'), "/dev/a", "entries file", 1 << 20)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "entries file /dev/a is larger than 1048576 bytes (raise the limit with --max-text-size)"
        );
        // /dev/zero is refused at its first byte, long before the limit.
        let err = read_text_from(std::io::repeat(0), "/dev/zero", "program", u64::MAX).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/dev/zero:1:1: not a text file: a NUL byte"
        );
    }

    #[test]
    fn script_lines_are_bounded_and_checked() {
        let mut lines = Lines::new(&b"\xef\xbb\xbfone\r\ntwo\nbad\x80\n"[..], "s", 16);
        assert_eq!(lines.next_line().unwrap().as_deref(), Some("one"));
        assert_eq!(lines.next_line().unwrap().as_deref(), Some("two"));
        assert_eq!(
            lines.next_line().unwrap_err(),
            "s:3:4: not a text file: byte 0x80, which is not UTF-8"
        );
        let mut long = Lines::new(std::io::BufReader::new(std::io::repeat(b'a')), "-", 16);
        assert_eq!(
            long.next_line().unwrap_err(),
            "-:1: line longer than 16 bytes"
        );
        let mut last = Lines::new(&b"x"[..], "s", 16);
        assert_eq!(last.next_line().unwrap().as_deref(), Some("x"));
        assert_eq!(last.next_line().unwrap(), None);
    }

    #[test]
    fn sizes_have_units() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("256m"), Ok(256 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("0").is_err());
        assert!(parse_size("1T").is_err());
        assert!(parse_size("").is_err());
    }
}
