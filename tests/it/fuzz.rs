//! The fuzz targets of fuzz/targets.rs, run for a bounded time on every `cargo test`: first
//! the seed corpus in fuzz/corpus/, then seeded mutations of it (a small deterministic
//! mutator, so that a failure names the seed and the iteration that reproduce it).
//! `SLUICE_FUZZ_ROUNDS=N` runs N times as many mutations. cargo-fuzz runs the same targets
//! for as long as one likes (docs/robustness.md).

#[path = "../../fuzz/targets.rs"]
#[allow(dead_code)]
mod targets;

use crate::differential::Rng;
use crate::support::root;

/// The seed corpus of a target, by file name.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = root().join("fuzz/corpus").join(target);
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
        })
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// Byte strings that matter to the parsers: brackets, operators, separators, magic numbers,
/// extreme numbers.
const TOKENS: &[&[u8]] = &[
    b"(",
    b")",
    b"{",
    b"}",
    b"!",
    b"~",
    b"(bit<8>)",
    b" + ",
    b" && ",
    b"/*",
    b"*/",
    b"//",
    b"\"",
    b"\n",
    b"\r\n",
    b"\0",
    b"\xef\xbb\xbf",
    b"\xff",
    b" => ",
    b"->",
    b"&&&",
    b"/",
    b"*",
    b"0x",
    b"0xffffffffffffffffffffffffffffffffff",
    b"18446744073709551616",
    b"-1",
    b"4294967295",
    b"\"id\":",
    b"\"command\":",
    b",",
    b"\xd4\xc3\xb2\xa1",
    b"\x0a\x0d\x0d\x0a",
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x00",
    b"\x00\x04\x00\x00",
];

fn mutate(r: &mut Rng, input: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..=r.below(3) {
        let len = input.len() as u64;
        let at = r.below(len + 1) as usize;
        match r.below(8) {
            0 if !input.is_empty() => {
                let i = r.below(len) as usize;
                input[i] ^= 1 << r.below(8);
            }
            1 if !input.is_empty() => {
                let i = r.below(len) as usize;
                input[i] = r.next() as u8;
            }
            2 => {
                let n = r.below(8) as usize;
                let bytes = r.bytes(n);
                input.splice(at..at, bytes);
            }
            3 if !input.is_empty() => {
                let end = (at + 1 + r.below(16) as usize).min(input.len());
                input.drain(at.min(end)..end);
            }
            4 if !input.is_empty() => {
                // Repeat a piece: nesting, long lines, many records.
                let end = (at + 1 + r.below(32) as usize).min(input.len());
                let piece = input[at.min(end)..end].to_vec();
                for _ in 0..=r.below(40) {
                    input.splice(at..at, piece.iter().copied());
                }
            }
            5 if !other.is_empty() => {
                let start = r.below(other.len() as u64) as usize;
                let end = (start + 1 + r.below(64) as usize).min(other.len());
                input.splice(at..at, other[start..end].iter().copied());
            }
            6 if input.len() >= 4 => {
                // A length or count field: an extreme 16- or 32-bit value.
                let i = r.below(len - 3) as usize;
                let v: u32 = [0, 1, 0xffff, 0x7fff_ffff, u32::MAX][r.below(5) as usize];
                input[i..i + 4].copy_from_slice(&v.to_le_bytes());
            }
            _ => {
                let t = TOKENS[r.below(TOKENS.len() as u64) as usize];
                input.splice(at..at, t.iter().copied());
            }
        }
    }
    input.truncate(1 << 16);
}

fn rounds() -> u64 {
    std::env::var("SLUICE_FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Runs a target on every seed, then `iterations` mutants (on the test's thread, whose 2 MiB
/// stack is the one the nesting limits are made for); a failure is saved as a reproducer.
fn fuzz(target: &str, f: fn(&[u8]), iterations: u64) {
    let seeds = seeds(target);
    for (name, data) in &seeds {
        run_one(target, f, name, data);
    }
    let mut r = Rng::new(0x5eed ^ target.len() as u64);
    for i in 0..iterations * rounds() {
        let (name, seed) = &seeds[r.below(seeds.len() as u64) as usize];
        let other = &seeds[r.below(seeds.len() as u64) as usize].1;
        let mut input = seed.clone();
        mutate(&mut r, &mut input, other);
        run_one(target, f, &format!("{name}, mutant {i}"), &input);
    }
}

fn run_one(target: &str, f: fn(&[u8]), what: &str, data: &[u8]) {
    let result = std::panic::catch_unwind(|| f(data));
    if result.is_err() {
        let path = std::env::temp_dir().join(format!("sluice-crash-{target}"));
        let _ = std::fs::write(&path, data);
        panic!(
            "fuzz target {target} failed on {what} (saved to {}; reproduce with \
             `cargo fuzz run {target} {}` in fuzz/)",
            path.display(),
            path.display()
        );
    }
}

#[test]
fn fuzz_front_end() {
    fuzz("front_end", targets::front_end, 600);
}

#[test]
fn fuzz_entries() {
    fuzz("entries", targets::entries, 600);
}

#[test]
fn fuzz_control() {
    fuzz("control", targets::control, 3000);
}

#[test]
fn fuzz_capture() {
    fuzz("capture", targets::capture, 800);
}

#[test]
fn fuzz_pipeline() {
    fuzz("pipeline", targets::pipeline, 2000);
}
