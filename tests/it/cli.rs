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

#[test]
fn run_says_which_outputs_are_from_an_earlier_run() {
    let dir = temp_dir("earlier-outputs");
    let out = dir.join("out");
    let args = |entries: &str| {
        run(&[
            "run",
            "programs/port_dnat.sluice",
            "--entries",
            entries,
            "--in",
            "programs/port_dnat.pcap",
            "--out-dir",
            out.to_str().unwrap(),
        ])
    };
    let first = args("programs/port_dnat.entries");
    assert_eq!(first.status, 0, "{}", first.stderr);
    assert!(first.stderr.is_empty(), "{}", first.stderr);
    let before = std::fs::read(out.join("port-1.pcap")).unwrap();
    // No entries: nothing is forwarded, and the four files of the first run remain.
    let empty = dir.join("empty.entries");
    std::fs::write(&empty, "").unwrap();
    let second = args(empty.to_str().unwrap());
    assert_eq!(second.status, 0, "{}", second.stderr);
    for port in 0..=3 {
        assert!(
            second.stderr.contains(&format!(
                "warning: {} is from an earlier run: no packet left port {port} this time",
                out.join(format!("port-{port}.pcap")).display()
            )),
            "{}",
            second.stderr
        );
    }
    assert_eq!(std::fs::read(out.join("port-1.pcap")).unwrap(), before);
}

/// `--in -` reads the capture from standard input, as tcpdump does, and memory stays bounded
/// whatever its size: 120 MB through a pipe, in a process that never holds more than a few
/// megabytes of it.
#[test]
fn a_capture_from_standard_input_is_replayed_in_bounded_memory() {
    use std::io::Write;
    let dir = temp_dir("stdin-capture");
    let empty = dir.join("empty.entries");
    std::fs::write(&empty, "").unwrap();
    // Reaped by wait4 below, which also gives its peak memory.
    #[allow(clippy::zombie_processes)]
    let mut child = sluice()
        .args([
            "run",
            "programs/port_dnat.sluice",
            "--entries",
            empty.to_str().unwrap(),
            "--in",
            "-",
            "--out-dir",
            dir.join("out").to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let n: u32 = 1_000_000;
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut stdin);
        w.write_all(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]).unwrap();
        w.write_all(&[0; 8]).unwrap();
        w.write_all(&65535u32.to_le_bytes()).unwrap();
        w.write_all(&1u32.to_le_bytes()).unwrap();
        let mut frame = vec![0u8; 106];
        frame[12] = 0x08;
        frame[14] = 0x45;
        for i in 0..n {
            frame[18..22].copy_from_slice(&i.to_be_bytes());
            for v in [1_700_000_000 + i / 1000, 0, 106, 106] {
                w.write_all(&v.to_le_bytes()).unwrap();
            }
            w.write_all(&frame).unwrap();
        }
        w.flush().unwrap();
    });
    let pid = child.id() as i32;
    writer.join().unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be written over.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child, with pointers to live locals; the child is not waited
    // for by anything else.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    let mut summary = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut summary).unwrap();
    assert!(
        summary.contains(&format!("packets in:    {n}")),
        "{summary}"
    );
    // ru_maxrss is in KiB on Linux.
    let peak = usage.ru_maxrss as u64 * 1024;
    assert!(
        peak < 64 << 20,
        "peak RSS {peak} bytes for a 122 MB capture"
    );
}
