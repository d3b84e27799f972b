//! What the backends need to know about a program before they run or compile it, computed
//! once from the IR: which headers the parser extracts (on some path, on every path), which
//! fields the program writes, whether it recirculates, what a condition says about validity,
//! which header layouts can reach the deparser, and which low bits of a value are known to
//! be zero.
//!
//! Rules: everything here is a pure function of the [`Program`]; an answer may be
//! conservative (say "unknown" or "may") but never wrong, because backends drop checks on
//! the strength of it. Header masks are `u64`s with bit h for header h (programs have at most
//! 63 headers; see [`HeaderId::bit`]).

mod bits;
mod deparse;
mod effects;
mod validity;

pub use bits::known_zero_low_bits;
pub use deparse::{deparse_masks, fast_deparse_ok, never_moves, MAX_DEPARSE_MASKS};
pub use effects::{recirculates, tunnel_headers, validity_changes, written_fields};
pub use validity::{applies_table, condition_facts, must_extracted, MustExtracted};

use crate::ir::{FieldId, HeaderId, Program};
use std::collections::BTreeSet;

/// The facts about one program that a backend uses, computed together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    /// Bit h: some parser state extracts header h. Any other header is only ever made valid
    /// by an action (pushed).
    pub extractable: u64,
    /// Headers extracted on every parser path into each state, and into accept.
    pub must_extracted: MustExtracted,
    /// Header fields that some statement assigns.
    pub written: BTreeSet<(HeaderId, FieldId)>,
    /// Whether any statement recirculates.
    pub recirculates: bool,
    /// The headers `seal` and `open` name (none: the program seals and opens nothing).
    pub tunnel_headers: BTreeSet<HeaderId>,
    /// Whether "the valid headers are the extracted ones" implies an unchanged layout (see
    /// [`fast_deparse_ok`]).
    pub fast_deparse: bool,
    /// Per deparser entry: whether it can never move (see [`never_moves`]).
    pub in_place: Vec<bool>,
    /// The (valid, extracted) masks, different from each other, that a packet can reach the
    /// deparser with (see [`deparse_masks`]); empty without `fast_deparse`.
    pub deparse_masks: Vec<(u64, u64)>,
}

impl Facts {
    pub fn of(p: &Program) -> Facts {
        let fast_deparse = fast_deparse_ok(p);
        Facts {
            extractable: p.states.iter().fold(0, |m, s| m | s.extracted()),
            must_extracted: must_extracted(p),
            written: written_fields(p),
            recirculates: recirculates(p),
            tunnel_headers: tunnel_headers(p),
            fast_deparse,
            in_place: never_moves(p, fast_deparse),
            deparse_masks: if fast_deparse {
                deparse_masks(p).unwrap_or_default()
            } else {
                Vec::new()
            },
        }
    }

    /// Whether some parser state extracts header `h`.
    pub fn parsed(&self, h: HeaderId) -> bool {
        self.extractable & h.bit() != 0
    }
}

/// Compiles a program for the analyses' tests.
#[cfg(test)]
pub(crate) fn program(src: &str) -> Program {
    match crate::compile(src) {
        Ok(c) => c.ir,
        Err(e) => panic!("{:?}", e.diagnostics),
    }
}

/// A header's id by name, for the analyses' tests.
#[cfg(test)]
pub(crate) fn header(p: &Program, name: &str) -> HeaderId {
    HeaderId(p.headers.iter().position(|h| h.name == name).unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_of_a_tunnel_program() {
        let p = program(include_str!("../../../tests/programs/pushpop.sluice"));
        let f = Facts::of(&p);
        assert!(f.recirculates);
        assert!(f.fast_deparse);
        assert_eq!(f.in_place.len(), p.deparser.len());
        let (eth, extra) = (header(&p, "ethernet"), header(&p, "extra"));
        assert_eq!(f.extractable, eth.bit() | extra.bit());
        assert!(f.parsed(extra));
        // `extra` pushed on top of ethernet alone, or popped after both were parsed.
        assert!(f
            .deparse_masks
            .contains(&(eth.bit() | extra.bit(), eth.bit())));
        assert!(f
            .deparse_masks
            .contains(&(eth.bit(), eth.bit() | extra.bit())));
        let t = program(include_str!("../../../tests/programs/tiny.sluice"));
        let f = Facts::of(&t);
        assert!(!f.recirculates);
        assert!(f.deparse_masks.is_empty());
    }
}
