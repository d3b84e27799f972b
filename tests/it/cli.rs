//! The command line: exit codes and messages for bad programs, bad entries and bad captures.

use crate::support::*;

#[test]
fn check_reports_errors_and_fails() {
    let out = run(&[
        "check",
        "tests/ui/several_errors.sluice",
        "--color",
        "never",
    ]);
    assert_eq!(out.status, 1);
    assert!(
        out.stderr
            .contains("error[E0101]: header `ipv4` has no field `ttll`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("could not compile `tests/ui/several_errors.sluice` (6 errors)"),
        "{}",
        out.stderr
    );
    let ok = run(&["check", "programs/port_dnat.sluice"]);
    assert_eq!(ok.status, 0, "{}", ok.stderr);
    assert!(ok.stderr.is_empty());
}

#[test]
fn a_bad_entries_file_installs_nothing_and_names_every_line() {
    let dir = temp_dir("bad-entries");
    let entries = dir.join("bad.entries");
    std::fs::write(
        &entries,
        "table_add dnat to_vm 203.0.113.10 8000->8099 => 10.0.0.1 1 10\n\
         table_add dnatt to_vm 203.0.113.10 1->2 => 10.0.0.1 1 10\n\
         table_add snat from_vm 10.0.0.1 => 203.0.113.10 70000\n\
         # a comment\n\
         table_add snat from_vm 10.0.0.1 10.0.0.2 => 203.0.113.10 1\n",
    )
    .unwrap();
    let out = run(&[
        "run",
        "programs/port_dnat.sluice",
        "--entries",
        entries.to_str().unwrap(),
        "--in",
        "programs/port_dnat.pcap",
        "--out-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status, 2);
    let e = &out.stderr;
    assert!(e.contains("bad.entries:2:") && e.contains("dnatt"), "{e}");
    assert!(e.contains("bad.entries:3:") && e.contains("70000"), "{e}");
    assert!(e.contains("bad.entries:5:"), "{e}");
    assert!(!e.contains("bad.entries:1:"), "{e}");
    assert!(e.contains("no entries were installed"), "{e}");
    assert!(
        !dir.join("port-1.pcap").exists(),
        "nothing runs when entries are bad"
    );
}

#[test]
fn a_truncated_capture_is_an_error_naming_the_file() {
    let dir = temp_dir("bad-capture");
    let bytes = std::fs::read(root().join("programs/port_dnat.pcap")).unwrap();
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 7]).unwrap();
    let out = run(&[
        "run",
        "programs/port_dnat.sluice",
        "--in",
        cut.to_str().unwrap(),
        "--out-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("cut.pcap"), "{}", out.stderr);
}

#[test]
fn const_entries_cannot_be_changed() {
    let dir = temp_dir("const-entries");
    let prog = dir.join("c.sluice");
    std::fs::write(
        &prog,
        "header ethernet { dst: bit<48>; src: bit<48>; ether_type: bit<16>; }\n\
         parser { state start { extract(ethernet); transition accept; } }\n\
         action out(p: port) { forward(p); }\n\
         table by_type {\n\
             key { ethernet.ether_type: exact; }\n\
             actions { out; }\n\
             default drop();\n\
             const entries { 0x0800 => out(1); }\n\
         }\n\
         control ingress { by_type.apply(); }\n\
         deparser { emit(ethernet); }\n",
    )
    .unwrap();
    for line in [
        "table_add by_type out 0x86dd => 2",
        "table_delete by_type 0",
        "table_clear by_type",
    ] {
        let entries = dir.join("e.entries");
        std::fs::write(&entries, format!("{line}\n")).unwrap();
        let out = run(&[
            "run",
            prog.to_str().unwrap(),
            "--entries",
            entries.to_str().unwrap(),
            "--in",
            "programs/port_dnat.pcap",
            "--out-dir",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(out.status, 2, "{line}: {}", out.stdout);
        assert!(
            out.stderr.contains("e.entries:1:") && out.stderr.contains("const"),
            "{line}: {}",
            out.stderr
        );
    }
}

#[test]
fn token_matches_the_siphash_reference_vector() {
    // The reference implementation's 8-byte test vector: key 00..0f, message 00..07, which is
    // expiry 66051 (00 01 02 03) then the address 4.5.6.7.
    let out = run(&[
        "token",
        "--secret",
        "0x000102030405060708090a0b0c0d0e0f",
        "--expiry",
        "66051",
        "--vm",
        "4.5.6.7",
    ]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "0x93f5f5799a932462\n");
    let dir = temp_dir("token");
    let f = dir.join("secret");
    std::fs::write(&f, "0x000102030405060708090a0b0c0d0e0f\n").unwrap();
    let out = run(&[
        "token",
        "--secret-file",
        f.to_str().unwrap(),
        "--expiry",
        "66051",
        "--vm",
        "4.5.6.7",
    ]);
    assert_eq!(out.stdout, "0x93f5f5799a932462\n");
    // A bad secret is refused without being repeated.
    let out = run(&[
        "token",
        "--secret",
        "0xdeadbeefcafe",
        "--expiry",
        "1",
        "--vm",
        "1.2.3.4",
    ]);
    assert_eq!(out.status, 2);
    assert!(!out.stderr.contains("deadbeef"), "{}", out.stderr);
}

#[test]
fn emit_ast_prints_the_tree_with_spans_and_explicit_grouping() {
    let out = run(&["compile", "--emit", "ast", "programs/port_dnat.sluice"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let src = std::fs::read_to_string(root().join("programs/port_dnat.sluice")).unwrap();
    // The first header's span covers its declaration in the source.
    let first = out.stdout.lines().next().unwrap();
    let span = first.strip_prefix("header ethernet @").expect(first);
    let (start, end) = span.split_once("..").unwrap();
    let text = &src[start.parse::<usize>().unwrap()..end.parse::<usize>().unwrap()];
    assert!(
        text.starts_with("header ethernet {") && text.ends_with('}'),
        "{text}"
    );
    // `(ipv4.ihl - 5) * 32` grouped as written.
    assert!(
        out.stdout
            .contains("extract ipv4 varbit options (* (- ipv4.ihl 5) 32)"),
        "{}",
        out.stdout
    );
}
