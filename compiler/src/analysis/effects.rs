//! What statements do, anywhere in the program: the fields they write, whether one
//! recirculates, which headers they make valid or invalid.

use crate::ir::visit::for_each_stmt;
use crate::ir::{FieldId, HeaderId, Program, Stmt};
use std::collections::BTreeSet;

/// Header fields that some statement (of an action or the control block) assigns.
pub fn written_fields(p: &Program) -> BTreeSet<(HeaderId, FieldId)> {
    let mut out = BTreeSet::new();
    for_each_stmt(p, |st| {
        if let Stmt::SetField(h, f, _) = st {
            out.insert((*h, *f));
        }
    });
    out
}

/// Whether any statement recirculates: the headroom then makes room for every pass's pushes,
/// and generated code loops over passes.
pub fn recirculates(p: &Program) -> bool {
    let mut any = false;
    for_each_stmt(p, |st| any |= matches!(st, Stmt::Recirculate));
    any
}

/// The tunnel headers that `seal` and `open` name: the deparser seals or opens what follows
/// one of them.
pub fn tunnel_headers(p: &Program) -> BTreeSet<HeaderId> {
    let mut out = BTreeSet::new();
    for_each_stmt(p, |st| {
        if let Stmt::Seal { header, .. } | Stmt::Open { header, .. } = st {
            out.insert(*header);
        }
    });
    out
}

/// The headers some statement makes valid (`set_valid`), and those whose validity some
/// statement changes either way.
pub fn validity_changes(p: &Program) -> (BTreeSet<HeaderId>, BTreeSet<HeaderId>) {
    let mut made_valid = BTreeSet::new();
    let mut changed = BTreeSet::new();
    for_each_stmt(p, |st| match st {
        Stmt::SetValid(h) => {
            made_valid.insert(*h);
            changed.insert(*h);
        }
        Stmt::SetInvalid(h) => {
            changed.insert(*h);
        }
        _ => {}
    });
    (made_valid, changed)
}

#[cfg(test)]
mod tests {
    use super::super::{header, program};
    use super::*;

    const SRC: &str = r#"
        header ethernet { dst: bit<48>; src: bit<48>; ether_type: bit<16>; }
        header tag { v: bit<16>; }
        parser { state start { extract(ethernet); transition accept; } }
        action mark(x: bit<16>) { set_valid(tag); tag.v = x; }
        table t { key { ethernet.ether_type: exact; } actions { mark; } }
        control ingress {
            if (ethernet.ether_type == 1) { t.apply(); } else { set_invalid(tag); }
            ethernet.src = 1;
            forward(1);
        }
        deparser { emit(ethernet, tag); }
    "#;

    #[test]
    fn writes_in_actions_and_branches_are_found() {
        let p = program(SRC);
        let (eth, tag) = (header(&p, "ethernet"), header(&p, "tag"));
        let w = written_fields(&p);
        assert_eq!(
            w.into_iter().collect::<Vec<_>>(),
            [(eth, FieldId(1)), (tag, FieldId(0))]
        );
        let (made_valid, changed) = validity_changes(&p);
        assert_eq!(made_valid.into_iter().collect::<Vec<_>>(), [tag]);
        assert_eq!(changed.into_iter().collect::<Vec<_>>(), [tag]);
        assert!(!recirculates(&p));
    }

    #[test]
    fn recirculation_inside_an_action_counts() {
        let p = program(
            r#"
            header ethernet { dst: bit<48>; src: bit<48>; ether_type: bit<16>; }
            parser { state start { extract(ethernet); transition accept; } }
            action again() { recirculate(); }
            table t { key { ethernet.ether_type: exact; } actions { again; } }
            control ingress { t.apply(); forward(1); }
            deparser { emit(ethernet); }
        "#,
        );
        assert!(recirculates(&p));
    }
}
