//! `sluice compile --emit ir` of every program under programs/, snapshotted, so that changes to
//! lowering show in review.

use crate::support::*;

#[test]
fn ir_of_every_program() {
    insta::glob!("../../programs", "*.sluice", |path| {
        let rel = path.strip_prefix(root()).unwrap();
        let out = run(&["compile", rel.to_str().unwrap(), "--emit", "ir"]);
        assert_eq!(out.status, 0, "{}", out.stderr);
        insta::assert_snapshot!(out.stdout);
    });
}

#[test]
fn clif_of_a_small_program() {
    let out = run(&["compile", "tests/programs/tiny.sluice", "--emit", "clif"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    insta::assert_snapshot!(out.stdout);
}

#[test]
fn asm_is_printed_where_cranelift_can() {
    let out = run(&["compile", "tests/programs/tiny.sluice", "--emit", "asm"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    // Machine code for this host: a function with a return.
    assert!(out.stdout.contains("ret"), "{}", out.stdout);
}
