//! Definitions that the language (`sluice-lang`) and the runtime (`sluice-runtime`) share, so
//! that each is written once: match kinds, hash algorithms and their numbers, the built-in
//! actions, bit masks, the secret literal, "did you mean" suggestions and comments in command
//! lines.
//!
//! Architecture invariant: this crate depends on nothing, and nothing here knows of the
//! grammar, the IR, tables or generated code. It holds what two crates would otherwise each
//! define and keep in step.

pub mod bits;
pub mod builtin;
pub mod names;
pub mod secret;

use std::fmt;

/// How a table key field is matched (P4's match kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MatchKind {
    Exact,
    Lpm,
    Ternary,
    Range,
    Optional,
}

impl MatchKind {
    pub const ALL: [MatchKind; 5] = [
        MatchKind::Exact,
        MatchKind::Lpm,
        MatchKind::Ternary,
        MatchKind::Range,
        MatchKind::Optional,
    ];

    /// The P4 spelling of the kind (`exact`, `lpm`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::Lpm => "lpm",
            MatchKind::Ternary => "ternary",
            MatchKind::Range => "range",
            MatchKind::Optional => "optional",
        }
    }

    /// The kind spelled `name`, as a program writes it.
    pub fn from_name(name: &str) -> Option<MatchKind> {
        MatchKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether a key of this kind makes entries need a priority (BMv2's rule).
    pub fn needs_priority(self) -> bool {
        matches!(
            self,
            MatchKind::Ternary | MatchKind::Range | MatchKind::Optional
        )
    }
}

impl fmt::Display for MatchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A flow hash a program can compute (`hash_crc32(...)`, ...). The number of each is what
/// generated code passes to the runtime's hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum HashAlgo {
    /// CRC-32 (IEEE 802.3, as zlib and Ethernet compute it).
    Crc32 = 0,
    /// CRC-16/ARC.
    Crc16 = 1,
    /// The bytes themselves, as a big-endian number (its low 64 bits).
    Identity = 2,
}

impl HashAlgo {
    pub const ALL: [HashAlgo; 3] = [HashAlgo::Crc32, HashAlgo::Crc16, HashAlgo::Identity];

    /// The number generated code passes for this algorithm.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// The algorithm numbered `id`; `None` for a number no algorithm has.
    pub fn from_id(id: u32) -> Option<HashAlgo> {
        HashAlgo::ALL.into_iter().find(|a| a.id() == id)
    }

    /// The name a program calls it by, after `hash_`.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Crc32 => "crc32",
            HashAlgo::Crc16 => "crc16",
            HashAlgo::Identity => "identity",
        }
    }

    pub fn from_name(name: &str) -> Option<HashAlgo> {
        HashAlgo::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// The text of a command line before its `#` comment (entries files, `sluice ctl`, the
/// control socket).
pub fn strip_comment(line: &str) -> &str {
    line.split_once('#').map_or(line, |(code, _)| code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        for k in MatchKind::ALL {
            assert_eq!(MatchKind::from_name(k.as_str()), Some(k));
        }
        for (i, a) in HashAlgo::ALL.into_iter().enumerate() {
            assert_eq!(a.id(), i as u32);
            assert_eq!(HashAlgo::from_id(a.id()), Some(a));
            assert_eq!(HashAlgo::from_name(a.name()), Some(a));
        }
        assert_eq!(HashAlgo::from_id(3), None);
        assert_eq!(MatchKind::from_name("fuzzy"), None);
    }

    #[test]
    fn comments_are_cut() {
        assert_eq!(
            strip_comment("table_add t a 1 => 2 # note"),
            "table_add t a 1 => 2 "
        );
        assert_eq!(strip_comment("# only"), "");
        assert_eq!(strip_comment("no comment"), "no comment");
    }
}
