//! Which header layouts can reach the deparser: whether the valid headers being the
//! extracted ones means nothing moved, which deparser entries can never move, and the
//! (valid, extracted) pairs a packet can arrive with after the control block pushed or
//! popped headers.

use super::effects::validity_changes;
use super::validity::condition_facts;
use crate::ir::*;
use std::collections::{BTreeMap, BTreeSet};

/// Most (valid, extracted) combinations a backend specializes the deparser for; a program
/// that can reach more keeps the general deparser alone.
pub const MAX_DEPARSE_MASKS: usize = 64;

/// Every parser path extracts headers in deparser order, each once, all of them emitted, and
/// the parser has no loops: then equal valid and extracted sets mean an unchanged layout.
pub fn fast_deparse_ok(p: &Program) -> bool {
    if p.headers.len() > 64 {
        return false;
    }
    let pos: BTreeMap<HeaderId, usize> = p
        .deparser
        .iter()
        .enumerate()
        .map(|(i, h)| (*h, i))
        .collect();
    // Depth-first over paths, with a budget so that pathological graphs just take the slow path.
    let mut budget = 10_000usize;
    fn go(
        p: &Program,
        s: StateId,
        last: Option<usize>,
        on_path: &mut Vec<bool>,
        pos: &BTreeMap<HeaderId, usize>,
        budget: &mut usize,
    ) -> bool {
        if *budget == 0 || on_path[s.index()] {
            return false;
        }
        *budget -= 1;
        on_path[s.index()] = true;
        let mut last = last;
        let mut ok = true;
        for op in &p.states[s].ops {
            if let ParserOp::Extract { header, .. } = op {
                match pos.get(header) {
                    Some(&i) if last.is_none_or(|l| i > l) => last = Some(i),
                    _ => ok = false,
                }
            }
        }
        if ok {
            for t in p.states[s].targets() {
                if let Target::State(n) = t {
                    if !go(p, n, last, on_path, pos, budget) {
                        ok = false;
                        break;
                    }
                }
            }
        }
        on_path[s.index()] = false;
        ok
    }
    let mut on_path = vec![false; p.states.len()];
    !p.states.is_empty() && go(p, StateId(0), None, &mut on_path, &pos, &mut budget)
}

/// Deparser entries that never move: with `fast_deparse`, a header that nothing makes valid
/// (so it is valid only if this pass extracted it) and after which, in deparser order, no
/// header's validity ever changes, is either invalid or still where the parser found it.
pub fn never_moves(p: &Program, fast_deparse: bool) -> Vec<bool> {
    let mut out = vec![false; p.deparser.len()];
    if !fast_deparse {
        return out;
    }
    let (made_valid, changed) = validity_changes(p);
    for i in (0..p.deparser.len()).rev() {
        let after_fixed = p.deparser[i + 1..].iter().all(|g| !changed.contains(g));
        out[i] = after_fixed && !made_valid.contains(&p.deparser[i]);
    }
    out
}

/// The (valid, extracted) header masks with which a packet can reach the deparser, where
/// they differ (a header pushed or popped): what the control block does to validity, run
/// over every parser path's extracted set, with conditions on `h.valid` taken into account.
/// An over-approximation (other conditions go both ways, a drop may be overridden); `None`
/// where the sets grow past `MAX_DEPARSE_MASKS` or the program has more than 32 headers.
pub fn deparse_masks(p: &Program) -> Option<Vec<(u64, u64)>> {
    if p.headers.len() > 32 || p.states.is_empty() {
        return None;
    }
    // Every parser path to accept, by what it extracted (a loop's paths are bounded by the
    // work allowed: past it, no specialization).
    let mut starts = BTreeSet::new();
    let mut stack = vec![(StateId(0), 0u64)];
    let mut work = 0;
    while let Some((st, m)) = stack.pop() {
        work += 1;
        if work > 4096 || starts.len() > MAX_DEPARSE_MASKS {
            return None;
        }
        let m = m | p.states[st].extracted();
        for t in p.states[st].targets() {
            match t {
                Target::Accept => {
                    starts.insert((m, m));
                }
                Target::Reject => {}
                Target::State(n) => stack.push((n, m)),
            }
        }
    }
    let out = masks_after(p, &p.control, starts)?;
    Some(out.into_iter().filter(|(v, e)| v != e).collect())
}

type Masks = BTreeSet<(u64, u64)>;

/// The masks after a statement list, from the masks before it.
fn masks_after(p: &Program, stmts: &[Stmt], mut s: Masks) -> Option<Masks> {
    let map = |s: &Masks, f: &dyn Fn(u64) -> u64| s.iter().map(|&(v, e)| (f(v), e)).collect();
    for st in stmts {
        s = match st {
            Stmt::SetValid(h) => map(&s, &|v| v | h.bit()),
            Stmt::SetInvalid(h) => map(&s, &|v| v & !h.bit()),
            Stmt::If(c, a, b) => {
                let s = masks_of_expr(p, c, s)?;
                let (t, f) = condition_facts(c);
                let keep =
                    |m: u64| -> Masks { s.iter().filter(|x| x.0 & m == m).copied().collect() };
                let mut out = masks_after(p, a, keep(t))?;
                out.extend(masks_after(p, b, keep(f))?);
                out
            }
            Stmt::Apply(t) => masks_of_apply(p, *t, &s, |_| &[])?,
            Stmt::Switch(t, arms, default) => masks_of_apply(p, *t, &s, |a| {
                arms.iter()
                    .find(|(x, _)| *x == a)
                    .map_or(default.as_slice(), |(_, b)| b.as_slice())
            })?,
            Stmt::Call(a, args) => {
                let mut s = s;
                for e in args {
                    s = masks_of_expr(p, e, s)?;
                }
                masks_after(p, &p.actions[*a].body, s)?
            }
            Stmt::SetField(_, _, e)
            | Stmt::SetMeta(_, e)
            | Stmt::Forward(e)
            | Stmt::Seal { peer: e, .. } => masks_of_expr(p, e, s)?,
            Stmt::Drop(_) | Stmt::Recirculate | Stmt::Open { .. } => s,
        };
        if s.len() > MAX_DEPARSE_MASKS {
            return None;
        }
    }
    Some(s)
}

/// A table applied: any of its actions (and the built-ins) may run, then `then(action)`.
fn masks_of_apply<'p>(
    p: &'p Program,
    t: TableId,
    s: &Masks,
    then: impl Fn(ActionId) -> &'p [Stmt],
) -> Option<Masks> {
    let table = &p.tables[t];
    let mut ids: Vec<ActionId> = table.actions.clone();
    ids.push(table.default.0);
    ids.extend([ActionId::DROP, ActionId::NO_ACTION]);
    ids.sort_unstable();
    ids.dedup();
    let mut out = Masks::new();
    for a in ids {
        let after = masks_after(p, &p.actions[a].body, s.clone())?;
        out.extend(masks_after(p, then(a), after)?);
    }
    Some(out)
}

/// Tables that an expression applies change the masks as their actions do, in the order the
/// expression evaluates its operands.
fn masks_of_expr(p: &Program, e: &Expr, s: Masks) -> Option<Masks> {
    if let ExprKind::Apply(t, _) = &e.kind {
        return masks_of_apply(p, *t, &s, |_| &[]);
    }
    let mut s = s;
    for o in e.operands() {
        s = masks_of_expr(p, o, s)?;
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::super::{header, program};
    use super::*;

    #[test]
    fn a_push_and_a_pop_are_the_layouts_that_reach_the_deparser() {
        let p = program(
            r#"
            header ethernet { dst: bit<48>; src: bit<48>; ether_type: bit<16>; }
            header outer { x: bit<32>; }
            header inner { y: bit<16>; }
            parser {
                state start {
                    extract(ethernet);
                    select (ethernet.ether_type) { 1 => o; default => i; }
                }
                state o { extract(outer); transition i; }
                state i { extract(inner); transition accept; }
            }
            control ingress {
                if (outer.valid) { set_invalid(outer); } else { set_valid(outer); }
                forward(1);
            }
            deparser { emit(ethernet, outer, inner); }
        "#,
        );
        assert!(fast_deparse_ok(&p));
        let (e, o, i) = (
            header(&p, "ethernet"),
            header(&p, "outer"),
            header(&p, "inner"),
        );
        let masks = deparse_masks(&p).unwrap();
        assert_eq!(
            masks.into_iter().collect::<BTreeSet<_>>(),
            [
                (e.bit() | i.bit(), e.bit() | o.bit() | i.bit()),
                (e.bit() | o.bit() | i.bit(), e.bit() | i.bit()),
            ]
            .into_iter()
            .collect()
        );
        // `inner` comes last and nothing pushes it: it never moves. `outer` does, and so
        // does `ethernet`, in front of it.
        assert_eq!(never_moves(&p, true), [false, false, true]);
        assert_eq!(never_moves(&p, false), [false, false, false]);
    }

    #[test]
    fn headers_out_of_deparser_order_or_loops_need_the_general_deparser() {
        let swapped = program(
            r#"
            header a { x: bit<8>; }
            header b { y: bit<8>; }
            parser { state start { extract(b); extract(a); transition accept; } }
            control ingress { forward(1); }
            deparser { emit(a, b); }
        "#,
        );
        assert!(!fast_deparse_ok(&swapped));
        let looping = program(
            r#"
            header a { x: bit<8>; }
            parser {
                state start { extract(a); transition again; }
                state again limit 2 { select (a.x) { 1 => again; default => accept; } }
            }
            control ingress { forward(1); }
            deparser { emit(a); }
        "#,
        );
        assert!(!fast_deparse_ok(&looping));
    }
}
