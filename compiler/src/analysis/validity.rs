//! Header validity known at compile time: what the parser extracts on every path, and what a
//! condition on `h.valid` says about validity in each branch.

use crate::ir::visit::any_expr;
use crate::ir::{BinOp, Expr, ExprKind, Program, Target};

/// What a condition says about validity once evaluated: (headers valid when it is true,
/// when it is false). A fact learned on the left of `&&` or `||` does not survive a table
/// applied on the right (its action may invalidate the header).
pub fn condition_facts(e: &Expr) -> (u64, u64) {
    match &e.kind {
        ExprKind::Valid(h) => (h.bit(), 0),
        ExprKind::Not(a) => {
            let (p, n) = condition_facts(a);
            (n, p)
        }
        ExprKind::Binary(BinOp::And, a, b) => {
            let (pa, na) = condition_facts(a);
            let (pb, nb) = condition_facts(b);
            let pa = if applies_table(b) { 0 } else { pa };
            (pa | pb, na & nb)
        }
        ExprKind::Binary(BinOp::Or, a, b) => {
            let (pa, na) = condition_facts(a);
            let (pb, nb) = condition_facts(b);
            let na = if applies_table(b) { 0 } else { na };
            (pa & pb, na | nb)
        }
        _ => (0, 0),
    }
}

/// Whether evaluating an expression may apply a table.
pub fn applies_table(e: &Expr) -> bool {
    any_expr(e, &|x| matches!(x.kind, ExprKind::Apply(..)))
}

/// Headers extracted on every parser path into each state (`into[s]`), and into accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MustExtracted {
    pub into: Vec<u64>,
    pub accept: u64,
}

/// A forward "must" dataflow over the parser graph: a header is extracted on entry to a state
/// if every path from the start extracted it.
pub fn must_extracted(p: &Program) -> MustExtracted {
    let n = p.states.len();
    let mut ins = vec![u64::MAX; n];
    if n > 0 {
        ins[0] = 0;
    }
    let mut accept = u64::MAX;
    // Sets only shrink, so this terminates; programs have a handful of states.
    loop {
        let mut acc = u64::MAX;
        let mut new_ins = vec![u64::MAX; n];
        for (i, st) in p.states.iter().enumerate() {
            let out = ins[i] | st.extracted();
            for t in st.targets() {
                match t {
                    Target::State(j) => new_ins[j.index()] &= out,
                    Target::Accept => acc &= out,
                    Target::Reject => {}
                }
            }
        }
        if n > 0 {
            new_ins[0] = 0;
        }
        let changed = new_ins != ins || acc != accept;
        ins = new_ins;
        accept = acc;
        if !changed {
            break;
        }
    }
    MustExtracted {
        into: ins,
        accept: if accept == u64::MAX { 0 } else { accept },
    }
}

#[cfg(test)]
mod tests {
    use super::super::{header, program};
    use super::*;
    use crate::ir::{Stmt, TableId};

    const SRC: &str = r#"
        header ethernet { dst: bit<48>; src: bit<48>; ether_type: bit<16>; }
        header ipv4 { a: bit<32>; }
        header udp { p: bit<16>; }
        parser {
            state start {
                extract(ethernet);
                select (ethernet.ether_type) { 0x800 => ip; default => accept; }
            }
            state ip {
                extract(ipv4);
                select (ipv4.a) { 17 => l4; default => accept; }
            }
            state l4 { extract(udp); transition accept; }
        }
        table t { key { ethernet.ether_type: exact; } actions { NoAction; } }
        control ingress {
            if (ipv4.valid && udp.valid) { forward(1); }
            if (!ipv4.valid || t.apply().hit) { forward(2); }
            if (ipv4.valid && t.apply().hit) { forward(3); }
        }
        deparser { emit(ethernet, ipv4, udp); }
    "#;

    #[test]
    fn every_path_extracts_ethernet_only_some_the_rest() {
        let p = program(SRC);
        let (eth, ip) = (header(&p, "ethernet"), header(&p, "ipv4"));
        let m = must_extracted(&p);
        assert_eq!(m.into, [0, eth.bit(), eth.bit() | ip.bit()]);
        assert_eq!(m.accept, eth.bit());
    }

    #[test]
    fn conditions_say_what_holds_in_each_branch() {
        let p = program(SRC);
        let (ip, udp) = (header(&p, "ipv4"), header(&p, "udp"));
        let conds: Vec<&Expr> = p
            .control
            .iter()
            .filter_map(|s| match s {
                Stmt::If(c, ..) => Some(c),
                _ => None,
            })
            .collect();
        // a && b: both valid when true; nothing known when false.
        assert_eq!(condition_facts(conds[0]), (ip.bit() | udp.bit(), 0));
        // !a || apply: when false, a is valid (the apply on the right ran and may have
        // invalidated it: nothing survives). When true, nothing.
        assert_eq!(condition_facts(conds[1]), (0, 0));
        // a && apply: the apply may invalidate a.
        assert_eq!(condition_facts(conds[2]), (0, 0));
        assert!(applies_table(conds[2]));
        assert!(!applies_table(conds[0]));
        let apply = Expr {
            kind: ExprKind::Apply(TableId(0), true),
            width: 0,
        };
        let not_valid = Expr {
            kind: ExprKind::Not(Box::new(Expr {
                kind: ExprKind::Valid(ip),
                width: 0,
            })),
            width: 0,
        };
        // !a || b without a table: when false, a is valid.
        let or = Expr {
            kind: ExprKind::Binary(
                BinOp::Or,
                Box::new(not_valid.clone()),
                Box::new(Expr {
                    kind: ExprKind::Valid(udp),
                    width: 0,
                }),
            ),
            width: 0,
        };
        assert_eq!(condition_facts(&or), (0, ip.bit()));
        assert!(applies_table(&apply));
    }
}
