//! `sluice explain CODE`: the page of docs/errors/ for an error code, as `rustc --explain`
//! prints its own.

use crate::out::out;
use std::process::ExitCode;

/// Every error code with its page (a test checks that every code the compiler emits is here).
pub const PAGES: [(&str, &str); 17] = [
    ("E0000", include_str!("../docs/errors/E0000.md")),
    ("E0001", include_str!("../docs/errors/E0001.md")),
    ("E0002", include_str!("../docs/errors/E0002.md")),
    ("E0003", include_str!("../docs/errors/E0003.md")),
    ("E0004", include_str!("../docs/errors/E0004.md")),
    ("E0100", include_str!("../docs/errors/E0100.md")),
    ("E0101", include_str!("../docs/errors/E0101.md")),
    ("E0102", include_str!("../docs/errors/E0102.md")),
    ("E0103", include_str!("../docs/errors/E0103.md")),
    ("E0104", include_str!("../docs/errors/E0104.md")),
    ("E0105", include_str!("../docs/errors/E0105.md")),
    ("E0107", include_str!("../docs/errors/E0107.md")),
    ("E0108", include_str!("../docs/errors/E0108.md")),
    ("E0109", include_str!("../docs/errors/E0109.md")),
    ("E0110", include_str!("../docs/errors/E0110.md")),
    ("E0111", include_str!("../docs/errors/E0111.md")),
    ("E0112", include_str!("../docs/errors/E0112.md")),
];

pub fn explain(code: &str) -> anyhow::Result<ExitCode> {
    let want = code.trim().to_ascii_uppercase();
    // `E102` and `102` name E0102, as rustc accepts them.
    let want = match want.strip_prefix('E').unwrap_or(&want) {
        digits
            if !digits.is_empty()
                && digits.len() <= 4
                && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("E{digits:0>4}")
        }
        _ => want,
    };
    match PAGES.iter().find(|(c, _)| *c == want) {
        Some((_, page)) => {
            out!("{page}")?;
            Ok(ExitCode::SUCCESS)
        }
        None => anyhow::bail!(
            "no error code '{}'; the codes are {}",
            sluice_defs::names::echo(code),
            PAGES.map(|(c, _)| c).join(", ")
        ),
    }
}
