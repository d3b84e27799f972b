//! `sluice compile --emit ir` and `--emit clif` of every program under programs/ and
//! tests/programs/, snapshotted, so that any change to lowering or to the generated code shows
//! in review (a restructuring must leave them as they are).

use crate::support::*;

/// Snapshots one stage of every program in a directory, named after the calling test.
macro_rules! emit_all {
    ($dir:literal, $stage:literal) => {
        insta::glob!($dir, "*.sluice", |path| {
            let rel = path.strip_prefix(root()).unwrap();
            let out = run(&["compile", rel.to_str().unwrap(), "--emit", $stage]);
            assert_eq!(out.status, 0, "{}", out.stderr);
            insta::assert_snapshot!(out.stdout);
        })
    };
}

#[test]
fn ir_of_every_program() {
    emit_all!("../../programs", "ir");
}

#[test]
fn ir_of_every_test_program() {
    emit_all!("../programs", "ir");
}

#[test]
fn clif_of_every_program() {
    emit_all!("../../programs", "clif");
}

#[test]
fn clif_of_every_test_program() {
    emit_all!("../programs", "clif");
}

#[test]
fn asm_is_printed_where_cranelift_can() {
    let out = run(&["compile", "tests/programs/tiny.sluice", "--emit", "asm"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    // Machine code for this host: a function with a return.
    assert!(out.stdout.contains("ret"), "{}", out.stdout);
}
