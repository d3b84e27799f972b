//! The probe of issue #12, as tests: what a careless user or an attacker can do to each
//! surface (closed pipes, full disks, hostile paths, secrets in the wrong place, huge or
//! endless inputs), and what Sluice must do instead of crashing, hanging, leaking or
//! destroying.

use crate::support::*;
use std::io::Read;
use std::process::Stdio;

/// Runs sluice with its standard output read for `keep` bytes, then closed (`| head -c`).
fn with_stdout_closed_after(args: &[&str], keep: usize) -> (i32, String) {
    let mut child = sluice()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; keep];
    out.read_exact(&mut buf).unwrap();
    drop(out);
    let o = child.wait_with_output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Runs sluice with standard output (or standard error) going to /dev/full.
fn with_full_disk(args: &[&str], on_stderr: bool) -> Output {
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let mut c = sluice();
    c.args(args);
    if on_stderr {
        c.stderr(full()).stdout(Stdio::piped());
    } else {
        c.stdout(full()).stderr(Stdio::piped());
    }
    let o = c.output().unwrap();
    Output {
        status: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    // Outputs far bigger than a pipe's buffer, so that the writer meets the closed pipe.
    for args in [
        &["compile", "programs/gateway.sluice", "--emit", "clif"][..],
        &["compile", "programs/gateway.sluice", "--emit", "ir"][..],
        &["compile", "programs/gateway.sluice", "--emit", "ast"][..],
        &[
            "run",
            // The gateway's trace is about 120 KB; port_dnat's (4 KB) fit in the pipe's
            // buffer, so its run could finish before the pipe closed and exit 0.
            "programs/gateway.sluice",
            "--entries",
            "programs/gateway.entries",
            "--in",
            "programs/gateway.pcap",
            "--out-dir",
            "target/test-out/pipe-trace",
            "--trace",
        ][..],
    ] {
        let (status, stderr) = with_stdout_closed_after(args, 10);
        // `run` fails (quietly) when its summary cannot be written; the others succeed.
        let want = if args[0] == "run" { 1 } else { 0 };
        assert_eq!(status, want, "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_full_disk_is_an_error_not_a_panic() {
    let dir = temp_dir("robust-full");
    let out_dir = dir.join("out");
    for args in [
        &["compile", "programs/tiny.sluice", "--emit", "clif"][..],
        &["compile", "tests/programs/tiny.sluice", "--emit", "ir"][..],
        &["explain", "E0102"][..],
        &[
            "token",
            "--secret",
            "0x000102030405060708090a0b0c0d0e0f",
            "--expiry",
            "1",
            "--vm",
            "10.0.0.1",
        ][..],
        &[
            "run",
            "programs/port_dnat.sluice",
            "--entries",
            "programs/port_dnat.entries",
            "--in",
            "programs/port_dnat.pcap",
            "--out-dir",
            out_dir.to_str().unwrap(),
        ][..],
        &[
            "bench",
            "tests/programs/tiny.sluice",
            "--in",
            "programs/port_dnat.pcap",
            "--rounds",
            "1",
            "--round-ms",
            "1",
        ][..],
    ] {
        let o = with_full_disk(args, false);
        if args[1] == "programs/tiny.sluice" {
            // No such file: the error is about that, and still no panic.
            assert_eq!(o.status, 2, "{args:?}");
            continue;
        }
        assert_eq!(o.status, 2, "{args:?}: {}", o.stderr);
        assert!(
            o.stderr.contains("error:") && o.stderr.contains("No space left on device"),
            "{args:?}: {}",
            o.stderr
        );
        assert!(!o.stderr.contains("panicked"), "{args:?}: {}", o.stderr);
    }
}

#[test]
fn diagnostics_to_a_closed_or_full_stderr_do_not_panic() {
    let dir = temp_dir("robust-stderr");
    let bad = dir.join("bad.sluice");
    std::fs::write(&bad, "header h { x: bit<8>; }\nparser {").unwrap();
    let o = with_full_disk(&["check", bad.to_str().unwrap()], true);
    assert_eq!(o.status, 1);
    let mut child = sluice()
        .args(["check", bad.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    assert_eq!(child.wait().unwrap().code(), Some(1));
}

#[test]
fn run_fails_when_its_summary_cannot_be_written() {
    let dir = temp_dir("robust-summary");
    let out_dir = dir.join("out");
    let mut child = sluice()
        .args([
            "run",
            "programs/port_dnat.sluice",
            "--entries",
            "programs/port_dnat.entries",
            "--in",
            "programs/port_dnat.pcap",
            "--out-dir",
            out_dir.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
}

/// A key whose every form (with and without `0x`, either case, either byte order, either
/// half) is looked for in every output.
const KEY: &str = "0x8f3a61c2d9e4b70512aa6e3f9c0d47b1";

fn key_forms() -> Vec<String> {
    let hex = &KEY[2..];
    let bytes: Vec<&str> = (0..16).map(|i| &hex[2 * i..2 * i + 2]).collect();
    let reversed: String = bytes.iter().rev().copied().collect();
    let mut forms = Vec::new();
    for h in [hex.to_string(), reversed] {
        forms.push(h.clone());
        forms.push(h[..16].to_string());
        forms.push(h[16..].to_string());
    }
    let mut all = Vec::new();
    for f in forms {
        all.push(f.to_ascii_lowercase());
        all.push(f.to_ascii_uppercase());
    }
    all
}

#[track_caller]
fn assert_no_key(what: &str, text: &str) {
    for f in key_forms() {
        assert!(!text.contains(&f), "{what} shows the key ({f}):\n{text}");
    }
}

#[test]
fn no_output_of_any_path_repeats_a_secret() {
    let dir = temp_dir("robust-secrets");
    let wrong_lines = [
        format!("secret_set {KEY} tunnel_key"),
        format!("SECRET_SET tunnel_key {KEY}"),
        format!("Secret_Set {KEY}"),
        format!("secret_set tunnel_key {KEY} extra"),
        format!("secret_set tunnel_key {}", &KEY[..20]),
    ];
    // Entries files, through `run`.
    for (i, line) in wrong_lines.iter().enumerate() {
        let entries = dir.join(format!("bad{i}.entries"));
        std::fs::write(&entries, format!("# a bad secret line\n{line}\n")).unwrap();
        let o = run(&[
            "run",
            "programs/vnet_auth.sluice",
            "--entries",
            entries.to_str().unwrap(),
            "--in",
            "programs/vnet_auth.pcap",
            "--out-dir",
            dir.join("out").to_str().unwrap(),
        ]);
        assert_eq!(o.status, 2, "{line}: {}", o.stderr);
        assert!(o.stderr.contains(":2: "), "names the line: {}", o.stderr);
        assert_no_key("run's errors", &o.stderr);
        assert_no_key("run's output", &o.stdout);
    }

    // A live switch, and ctl in each of its modes.
    let input = dir.join("empty.pcap");
    crate::serve::udp_capture(&input, 0);
    let sw =
        crate::serve::Switch::start_program(&dir, "programs/vnet_auth.sluice", "", &input, &[]);
    for line in &wrong_lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        let o = sw.ctl(&words);
        assert_eq!(o.status, 1, "{line}: {}", o.stderr);
        assert_no_key("ctl's error", &o.stderr);
        assert_no_key("ctl's output", &o.stdout);
    }
    let script = dir.join("script.txt");
    std::fs::write(&script, format!("show_tables\n{}\n", wrong_lines[0])).unwrap();
    let o = sw.ctl(&["-f", script.to_str().unwrap()]);
    assert_eq!(o.status, 1);
    assert!(o.stderr.contains("script.txt:2: error:"), "{}", o.stderr);
    assert_no_key("ctl -f", &(o.stdout.clone() + &o.stderr));

    // The key from a file, never on the command line.
    let keyfile = dir.join("key");
    std::fs::write(&keyfile, format!("{KEY}\n")).unwrap();
    let o = sw.ctl(&[
        "secret_set",
        "tunnel_key",
        "--secret-file",
        keyfile.to_str().unwrap(),
    ]);
    assert_eq!(o.status, 0, "{}", o.stderr);
    assert_eq!(o.stdout, "Secret tunnel_key set\n");
    // Left out, with no terminal to ask at: refused with the way to give it.
    let o = sw.ctl(&["secret_set", "tunnel_key"]);
    assert_eq!(o.status, 1);
    assert!(o.stderr.contains("--secret-file"), "{}", o.stderr);

    // The interactive shell: what it shows while the lines are typed, and its history.
    let history = dir.join("history");
    let mut t = Terminal::spawn(
        &["ctl", "--control", sw.sock.to_str().unwrap()],
        &[("SLUICE_HISTORY", &history)],
    );
    t.expect("sluice> ");
    for line in &wrong_lines[..3] {
        t.type_line(line);
        t.expect("error:");
        t.expect("sluice> ");
    }
    t.type_line("secret_set tunnel_key");
    t.expect("key (not echoed): ");
    t.type_line(KEY);
    t.expect("Secret tunnel_key set");
    t.expect("sluice> ");
    t.type_line("show_actions");
    t.expect("sluice> ");
    t.type_line("quit");
    let (status, shown) = t.finish();
    assert_eq!(status, 0, "{shown}");
    assert_no_key("the shell's terminal", &shown);
    let kept = std::fs::read_to_string(&history).unwrap_or_default();
    assert!(kept.contains("show_actions"), "{kept}");
    assert!(!kept.to_lowercase().contains("secret_set"), "{kept}");
    assert_no_key("the shell's history", &kept);

    let _ = std::process::Command::new("kill")
        .arg(sw.child.id().to_string())
        .status();
    let mut sw = sw;
    let out = sw.output();
    assert_no_key("serve's output", &String::from_utf8_lossy(&out.stdout));
    assert_no_key("serve's log", &String::from_utf8_lossy(&out.stderr));
}

/// A capture of UDP packets to 203.0.113.10, one per `(destination port, payload bytes)`,
/// with timestamps from `ts_sec`: port_dnat sends 8000-8099 to port 1, 8100-8199 to port 2.
fn udp_packets(path: &std::path::Path, packets: &[(u16, usize)], ts_sec: u64) {
    let mut out = sluice_runtime::pcap::PcapOut::create(path, 1, false).unwrap();
    for (i, &(dport, len)) in packets.iter().enumerate() {
        let payload = vec![0x5au8; len];
        let udp_len = 8 + len as u16;
        let mut p = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&(20 + udp_len).to_be_bytes());
        ip.extend_from_slice(&(i as u16).to_be_bytes());
        ip.extend_from_slice(&[0x40, 0, 64, 17, 0, 0, 198, 51, 100, 7, 203, 0, 113, 10]);
        let c = sluice_runtime::checksum::of_bytes(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend(ip);
        p.extend_from_slice(&5000u16.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&udp_len.to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend(payload);
        out.write(ts_sec, (i as u32 % 1000) * 1000, p.len() as u32, &p)
            .unwrap();
    }
    out.finish().unwrap();
}

fn serve_args<'a>(sock: &'a str, input: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "serve",
        "programs/port_dnat.sluice",
        "--entries",
        "programs/port_dnat.entries",
        "--control",
        sock,
        "--in",
        input,
        "--out-dir",
        out,
        "--exit-when-done",
    ]
}

#[test]
fn a_control_path_that_is_not_a_stale_socket_is_never_removed() {
    let dir = temp_dir("robust-control-path");
    let input = dir.join("in.pcap");
    udp_packets(&input, &[(8080, 10)], 1_700_000_000);
    let input_arg = format!("0={}", input.display());
    let out = dir.join("out");
    // A regular file with data, a directory, a link to a file: each refused, each left.
    let file = dir.join("file.sock");
    std::fs::write(&file, "precious data\n").unwrap();
    let subdir = dir.join("dir.sock");
    std::fs::create_dir(&subdir).unwrap();
    let victim = dir.join("victim");
    std::fs::write(&victim, "also precious\n").unwrap();
    let link = dir.join("link.sock");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    for path in [&file, &subdir, &link] {
        let o = run(&serve_args(
            path.to_str().unwrap(),
            &input_arg,
            out.to_str().unwrap(),
        ));
        assert_eq!(o.status, 2, "{}", o.stderr);
        assert!(
            o.stderr
                .contains(&format!("{}: exists and is not a socket", path.display())),
            "{}",
            o.stderr
        );
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious data\n");
    assert!(subdir.is_dir());
    assert_eq!(std::fs::read_to_string(&link).unwrap(), "also precious\n");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());

    // A stale socket (its switch died) is replaced, and removed again at the end.
    let stale = dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let o = run(&serve_args(
        stale.to_str().unwrap(),
        &input_arg,
        out.to_str().unwrap(),
    ));
    assert_eq!(o.status, 0, "{}", o.stderr);
    assert!(!stale.exists());
    assert!(!dir.join("stale.sock.lock").exists());
}

#[test]
fn two_switches_on_one_control_path_exclude_each_other() {
    let dir = temp_dir("robust-two-switches");
    let input = dir.join("in.pcap");
    udp_packets(&input, &[], 1_700_000_000);
    let first = crate::serve::Switch::start(&dir, &input, &[]);
    // The first switch's socket goes away (removed by hand, or by a second switch started
    // at the same moment): a second switch must still not come up on the same path.
    std::fs::remove_file(&first.sock).unwrap();
    let o = run(&serve_args(
        first.sock.to_str().unwrap(),
        &format!("0={}", input.display()),
        dir.join("out2").to_str().unwrap(),
    ));
    assert_eq!(o.status, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("another switch is already listening"),
        "{}",
        o.stderr
    );
    // Dropping it stops the first switch.
    drop(first);
}

#[test]
fn run_never_writes_through_a_link_nor_waits_on_a_fifo() {
    let dir = temp_dir("robust-out-links");
    let input = dir.join("in.pcap");
    udp_packets(&input, &[(8080, 10), (8150, 10), (53, 10)], 1_700_000_000);
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let args = |out: &std::path::Path| {
        run(&[
            "run",
            "programs/port_dnat.sluice",
            "--entries",
            "programs/port_dnat.entries",
            "--in",
            input.to_str().unwrap(),
            "--out-dir",
            out.to_str().unwrap(),
        ])
    };
    // A hard link named port-1.pcap: replaced by the new output, its other name untouched.
    std::fs::hard_link(&victim, out.join("port-1.pcap")).unwrap();
    let o = args(&out);
    assert_eq!(o.status, 0, "{}", o.stderr);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(read_pcap(&out.join("port-1.pcap")).len(), 1);
    // A symbolic link, and a FIFO: refused (exit 2, the path named), in no time, nothing
    // written through, no temporary file left behind.
    for (name, make) in [
        ("port-2.pcap", 0), // symlink
        ("port-3.pcap", 1), // fifo
    ] {
        let out = dir.join(format!("out-{name}"));
        std::fs::create_dir(&out).unwrap();
        let target = out.join(name);
        if make == 0 {
            std::os::unix::fs::symlink(&victim, &target).unwrap();
        } else {
            let c = std::ffi::CString::new(target.to_str().unwrap()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        }
        let t0 = std::time::Instant::now();
        let o = args(&out);
        assert!(t0.elapsed() < std::time::Duration::from_secs(10));
        assert_eq!(o.status, 2, "{name}: {}", o.stderr);
        assert!(
            o.stderr.contains(&format!(
                "{}: exists and is not a regular file",
                target.display()
            )),
            "{}",
            o.stderr
        );
        let left: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, [name.to_string()], "only the file that was there");
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    // --out-dir naming a regular file.
    let o = args(&victim);
    assert_eq!(o.status, 2);
    assert!(o.stderr.contains("not a directory"), "{}", o.stderr);
}

/// A pcapng capture of one interface (Ethernet, microseconds) whose records have these
/// timestamps in seconds: pcapng holds 64 bits of them, classic pcap 32.
fn pcapng_with_times(path: &std::path::Path, seconds: &[u64], frame: &[u8]) {
    let mut f = Vec::new();
    let block = |f: &mut Vec<u8>, kind: u32, body: &[u8]| {
        let len = 12 + body.len().next_multiple_of(4) as u32;
        f.extend_from_slice(&kind.to_le_bytes());
        f.extend_from_slice(&len.to_le_bytes());
        f.extend_from_slice(body);
        f.resize(f.len() + (body.len().next_multiple_of(4) - body.len()), 0);
        f.extend_from_slice(&len.to_le_bytes());
    };
    let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut f, 0x0a0d_0d0a, &shb);
    let mut idb = 1u16.to_le_bytes().to_vec();
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&0u32.to_le_bytes());
    block(&mut f, 1, &idb);
    for &s in seconds {
        let us = s * 1_000_000;
        let mut epb = 0u32.to_le_bytes().to_vec();
        epb.extend_from_slice(&((us >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(us as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(frame);
        block(&mut f, 6, &epb);
    }
    std::fs::write(path, f).unwrap();
}

#[test]
fn a_record_whose_timestamp_classic_pcap_cannot_hold_is_skipped_and_counted() {
    let dir = temp_dir("robust-timestamps");
    let tmp = dir.join("one.pcap");
    udp_packets(&tmp, &[(8080, 10)], 1_700_000_000);
    let frame = read_pcap(&tmp).remove(0).3;
    let input = dir.join("in.pcapng");
    // The third record is past 2106.
    pcapng_with_times(
        &input,
        &[1_700_000_000, 1_700_000_001, 5_000_000_000, 1_700_000_002],
        &frame,
    );
    for command in ["run", "serve"] {
        let out = dir.join(format!("out-{command}"));
        let sock = dir.join("ctl.sock");
        let input_arg = format!("0={}", input.display());
        let o = if command == "run" {
            run(&[
                "run",
                "programs/port_dnat.sluice",
                "--entries",
                "programs/port_dnat.entries",
                "--in",
                input.to_str().unwrap(),
                "--out-dir",
                out.to_str().unwrap(),
            ])
        } else {
            run(&serve_args(
                sock.to_str().unwrap(),
                &input_arg,
                out.to_str().unwrap(),
            ))
        };
        assert_eq!(o.status, 0, "{command}: {}", o.stderr);
        assert!(
            o.stderr
                .contains("record 3: timestamp 5000000000.000000000 s cannot be written"),
            "{command}: {}",
            o.stderr
        );
        assert!(o.stdout.contains("packets in:    3"), "{}", o.stdout);
        assert!(o.stdout.contains("skipped:       1"), "{}", o.stdout);
        assert_eq!(read_pcap(&out.join("port-1.pcap")).len(), 3);
    }
}

#[test]
fn a_live_switch_survives_a_port_whose_output_fails() {
    let dir = temp_dir("robust-port-fails");
    let input = dir.join("in.pcap");
    // Big packets to port 1, small ones to port 2, interleaved.
    let mut packets = Vec::new();
    for _ in 0..40 {
        packets.push((8080, 1400));
        packets.push((8150, 10));
    }
    udp_packets(&input, &packets, 1_700_000_000);
    let out = dir.join("out");
    let sock = dir.join("ctl.sock");
    // No file may grow past 16 KiB: port 1's output fails after a dozen packets. (The
    // switch ignores SIGXFSZ, so the write fails with EFBIG instead of killing it.)
    let mut cmd = sluice();
    cmd.args(serve_args(
        sock.to_str().unwrap(),
        &format!("0={}", input.display()),
        out.to_str().unwrap(),
    ));
    // Spaced out and flushed often, so that port 1's file grows until it hits the limit.
    cmd.args(["--rate", "2000", "--flush-ms", "1"]);
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec only async-signal-safe calls: setrlimit and signal.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 16 * 1024,
                rlim_max: 16 * 1024,
            };
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    // One message for the port, not one per packet.
    assert_eq!(
        stderr.matches("port 1: cannot write output").count(),
        1,
        "{stderr}"
    );
    assert!(
        stdout.contains("not written: the output failed"),
        "{stdout}"
    );
    // Every packet is accounted for, port 2 got all of its own, and port 1's file holds
    // whole records up to where it failed.
    assert!(
        stdout.contains("in = forwarded + dropped: 80 = 80 + 0"),
        "{stdout}"
    );
    assert_eq!(read_pcap(&out.join("port-2.pcap")).len(), 40);
    let written = read_pcap(&out.join("port-1.pcap")).len();
    assert!((5..40).contains(&written), "{written}");
    assert!(!sock.exists(), "the socket is removed");
}

/// Sends `signal` to a child after `after`.
fn signal_after(child: &std::process::Child, signal: i32, after: std::time::Duration) {
    std::thread::sleep(after);
    // SAFETY: kill with a pid of our own child, which has not been waited for yet.
    unsafe { libc::kill(child.id() as i32, signal) };
}

/// The packets each output file holds, and the count the summary gives for that port.
fn outputs_match_summary(out: &std::path::Path, summary: &str) -> u64 {
    let mut total = 0;
    for port in [1, 2] {
        let path = out.join(format!("port-{port}.pcap"));
        let n = if path.exists() {
            read_pcap(&path).len() as u64
        } else {
            0
        };
        let line = summary
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("port {port} ")))
            .map(|l| l.split_whitespace().nth(2).unwrap().parse::<u64>().unwrap())
            .unwrap_or(0);
        assert_eq!(n, line, "port {port}: {summary}");
        total += n;
    }
    total
}

#[test]
fn an_interrupted_run_leaves_every_output_readable() {
    interrupted_run(1);
}

#[test]
fn an_interrupted_run_with_workers_leaves_every_output_readable() {
    interrupted_run(2);
}

fn interrupted_run(workers: u16) {
    let dir = temp_dir(&format!("robust-sigint-run-{workers}"));
    let input = dir.join("in.pcap");
    let packets: Vec<(u16, usize)> = (0..200_000)
        .map(|i| (if i % 2 == 0 { 8080 } else { 8150 }, 20))
        .collect();
    udp_packets(&input, &packets, 1_700_000_000);
    let out = dir.join("out");
    let child = sluice()
        .args([
            "run",
            "programs/port_dnat.sluice",
            "--entries",
            "programs/port_dnat.entries",
            "--in",
            input.to_str().unwrap(),
            "--out-dir",
            out.to_str().unwrap(),
            "--backend",
            "interp",
            "--workers",
            &workers.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // As soon as the replay has begun (its first output exists, under its temporary name).
    let t0 = std::time::Instant::now();
    while !std::fs::read_dir(&out)
        .map(|d| d.count() > 0)
        .unwrap_or(false)
    {
        assert!(t0.elapsed() < std::time::Duration::from_secs(30));
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    signal_after(&child, libc::SIGINT, std::time::Duration::from_millis(20));
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted after"), "{stderr}");
    let n = outputs_match_summary(&out, &stdout);
    assert!(n > 0 && n < 200_000, "{n}");
    // No temporary file is left behind.
    for e in std::fs::read_dir(&out).unwrap() {
        let name = e.unwrap().file_name();
        assert!(name.to_string_lossy().starts_with("port-"), "{name:?}");
    }
}

#[test]
fn a_switch_stopped_mid_replay_leaves_every_output_readable() {
    switch_stopped_mid_replay(1);
}

#[test]
fn a_switch_with_workers_stopped_mid_replay_leaves_every_output_readable() {
    switch_stopped_mid_replay(3);
}

fn switch_stopped_mid_replay(workers: u16) {
    let dir = temp_dir(&format!("robust-sigterm-serve-{workers}"));
    let input = dir.join("in.pcap");
    let packets: Vec<(u16, usize)> = (0..4000)
        .map(|i| (if i % 2 == 0 { 8080 } else { 8150 }, 200))
        .collect();
    udp_packets(&input, &packets, 1_700_000_000);
    let out = dir.join("out");
    let sock = dir.join("ctl.sock");
    let child = sluice()
        .args(serve_args(
            sock.to_str().unwrap(),
            &format!("0={}", input.display()),
            out.to_str().unwrap(),
        ))
        .args(["--rate", "4000", "--workers", &workers.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the switch is up (its socket exists), part way into its second of replay.
    let t0 = std::time::Instant::now();
    while !sock.exists() {
        assert!(t0.elapsed() < std::time::Duration::from_secs(30));
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    signal_after(&child, libc::SIGTERM, std::time::Duration::from_millis(300));
    let o = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let n = outputs_match_summary(&out, &stdout);
    assert!(n > 0 && n < 4000, "{n}");
    assert!(!sock.exists());
}

/// Runs sluice, which must end by itself within 30 s (the probe's inputs made it grow
/// without end).
fn run_bounded(args: &[&str]) -> Output {
    let child = sluice()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    // Its outputs are read while it runs, so that a long message cannot block it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let o = match rx.recv_timeout(std::time::Duration::from_secs(30)) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            // SAFETY: kill(2) on the child's own pid; it is not reaped, so the pid is its.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("`sluice {}` did not end", args.join(" "));
        }
    };
    Output {
        status: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn endless_and_binary_inputs_are_refused_at_once() {
    let dir = temp_dir("robust-zero");
    let out = dir.join("out");
    let out_s = out.to_str().unwrap();
    let big = dir.join("big.sluice");
    std::fs::write(&big, format!("// {}\n", "x".repeat(100_000))).unwrap();
    let nul = "/dev/zero:1:1: not a text file: a NUL byte";
    let cases: [(&[&str], &str); 5] = [
        (&["check", "/dev/zero"], nul),
        (
            &[
                "run",
                "programs/port_dnat.sluice",
                "--entries",
                "/dev/zero",
                "--in",
                "programs/port_dnat.pcap",
                "--out-dir",
                out_s,
            ],
            nul,
        ),
        (
            &[
                "run",
                "programs/port_dnat.sluice",
                "--in",
                "/dev/zero",
                "--out-dir",
                out_s,
            ],
            "cannot read capture /dev/zero: not a pcap or pcapng file (it starts with 00 00 00 00)",
        ),
        (
            &[
                "token",
                "--secret-file",
                "/dev/zero",
                "--expiry",
                "1",
                "--vm",
                "10.0.0.1",
            ],
            "the secret file /dev/zero is longer than 1024 bytes",
        ),
        (
            &["check", "--max-text-size", "64K", big.to_str().unwrap()],
            "is larger than 65536 bytes (raise the limit with --max-text-size)",
        ),
    ];
    for (args, want) in cases {
        let o = run_bounded(args);
        assert_eq!(o.status, 2, "{args:?}: {}", o.stderr);
        assert!(o.stderr.contains(want), "{args:?}: {}", o.stderr);
        assert!(!out.exists(), "{args:?} wrote outputs");
    }
    // The limit is the user's to raise.
    let o = run_bounded(&["check", "--max-text-size", "1M", big.to_str().unwrap()]);
    assert_eq!(o.status, 1, "{}", o.stderr);
    assert!(o.stderr.contains("error[E"), "not read: {}", o.stderr);
}

#[test]
fn text_inputs_skip_a_bom_and_name_the_line_of_a_byte_that_is_not_utf8() {
    let dir = temp_dir("robust-utf8");
    let src = std::fs::read(root().join("programs/port_dnat.sluice")).unwrap();
    let entries = std::fs::read(root().join("programs/port_dnat.entries")).unwrap();
    let bom = |b: &[u8]| [b"\xef\xbb\xbf".as_slice(), b].concat();
    let (prog, ents) = (dir.join("bom.sluice"), dir.join("bom.entries"));
    std::fs::write(&prog, bom(&src)).unwrap();
    std::fs::write(&ents, bom(&entries)).unwrap();
    let run_with = |prog: &std::path::Path, ents: &std::path::Path, out: &str| {
        run_bounded(&[
            "run",
            prog.to_str().unwrap(),
            "--entries",
            ents.to_str().unwrap(),
            "--in",
            "programs/port_dnat.pcap",
            "--out-dir",
            dir.join(out).to_str().unwrap(),
        ])
    };
    // With a byte-order mark, the same run as without.
    let plain = run_with(
        &root().join("programs/port_dnat.sluice"),
        &root().join("programs/port_dnat.entries"),
        "plain",
    );
    let marked = run_with(&prog, &ents, "marked");
    assert_eq!(marked.status, 0, "{}", marked.stderr);
    assert_eq!(marked.stdout, plain.stdout);

    // Latin-1 in a comment on line 3 of each.
    let latin1 = |b: &[u8]| {
        let mut lines: Vec<Vec<u8>> = b.split(|c| *c == b'\n').map(<[u8]>::to_vec).collect();
        lines.insert(2, b"# caf\xe9".to_vec());
        lines.join(&b'\n')
    };
    std::fs::write(&prog, latin1(&src)).unwrap();
    let o = run_bounded(&["check", prog.to_str().unwrap()]);
    assert_eq!(o.status, 2);
    assert!(
        o.stderr.contains(&format!(
            "{}:3:6: not a text file: byte 0xe9, which is not UTF-8",
            prog.display()
        )),
        "{}",
        o.stderr
    );
    std::fs::write(&ents, latin1(&entries)).unwrap();
    let o = run_with(&root().join("programs/port_dnat.sluice"), &ents, "latin1");
    assert_eq!(o.status, 2);
    assert!(
        o.stderr
            .contains(&format!("{}:3:6: not a text file", ents.display())),
        "{}",
        o.stderr
    );
    assert!(!dir.join("latin1").exists());
}

/// A raw connection to a switch's control socket.
struct Raw {
    w: std::os::unix::net::UnixStream,
    r: std::io::BufReader<std::os::unix::net::UnixStream>,
}

impl Raw {
    fn connect(sock: &std::path::Path) -> Raw {
        let w = std::os::unix::net::UnixStream::connect(sock).unwrap();
        w.set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        let r = std::io::BufReader::new(w.try_clone().unwrap());
        Raw { w, r }
    }

    /// Connects and exchanges hellos.
    fn hello(sock: &std::path::Path) -> Raw {
        let mut c = Raw::connect(sock);
        let hello = c.send(sluice_runtime::control::client_hello().trim_end());
        assert!(hello.contains("\"version\":1"), "{hello}");
        c
    }

    /// Sends one line; the line the switch answers, "" when it closed the connection.
    fn send(&mut self, line: &str) -> String {
        use std::io::{BufRead, Write};
        // The switch may close before reading all of a refused line.
        let _ = self.w.write_all(line.as_bytes());
        let _ = self.w.write_all(b"\n");
        let mut reply = String::new();
        let _ = self.r.read_line(&mut reply);
        reply
    }

    fn closed(&mut self) -> bool {
        use std::io::BufRead;
        let mut rest = String::new();
        matches!(self.r.read_line(&mut rest), Ok(0))
    }
}

fn idle_switch(name: &str) -> crate::serve::Switch {
    let dir = temp_dir(name);
    let empty = dir.join("empty.pcap");
    crate::serve::udp_capture(&empty, 0);
    crate::serve::Switch::start(&dir, &empty, &[])
}

fn stop(sw: crate::serve::Switch) {
    // SAFETY: kill(2) on the switch's own pid, which the test has not reaped.
    unsafe { libc::kill(sw.child.id() as i32, libc::SIGTERM) };
    sw.wait();
}

/// Every case docs/control-protocol.md describes, on a real switch, each with the reply the
/// document gives it; a refused request runs nothing.
#[test]
fn the_control_protocol_answers_every_case_of_its_document() {
    let sw = idle_switch("robust-protocol");
    // Hellos that are refused, each with one error reply, then the connection closes.
    let refused_hellos: [(String, &str); 6] = [
        ("GET / HTTP/1.0".into(), "malformed hello"),
        (
            r#"{"protocol":"http","version":1}"#.into(),
            "not a sluice-control client",
        ),
        (
            r#"{"protocol":"sluice-control","version":2}"#.into(),
            "unsupported protocol version 2 (this server speaks 1)",
        ),
        (
            r#"{"protocol":"sluice-control"}"#.into(),
            "hello without a version",
        ),
        (
            r#"{"protocol":"sluice-control","version":2,"version":1}"#.into(),
            "malformed hello: duplicate key \\\"version\\\"",
        ),
        (
            format!(
                r#"{{"protocol":"sluice-control","version":1,"pad":"{}"}}"#,
                "x".repeat(70_000)
            ),
            "hello too long (at most 65536 bytes); closing",
        ),
    ];
    for (hello, want) in refused_hellos {
        let mut c = Raw::connect(&sw.sock);
        let reply = c.send(&hello);
        assert!(
            reply.starts_with(r#"{"error":""#) || reply.contains(r#""ok":false"#),
            "{reply}"
        );
        assert!(reply.contains(want), "{want}: {reply}");
        assert!(reply.contains(r#""id":0"#), "{reply}");
        assert!(c.closed(), "{want}: the connection stays open");
    }

    let mut c = Raw::hello(&sw.sock);
    let count = |c: &mut Raw| c.send(r#"{"id":1,"command":"table_num_entries dnat"}"#);
    assert_eq!(count(&mut c), "{\"id\":1,\"ok\":true,\"output\":\"1\"}\n");
    let add = "table_add dnat to_vm 203.0.113.10 9000->9099 => 10.0.0.2 1 10";
    // Requests refused without running: the table keeps its one entry.
    let refused: [(String, &str); 9] = [
        (
            "garbage".into(),
            r#"{"error":"malformed request: expected value at line 1 column 1","id":0,"ok":false}"#,
        ),
        (r#"[1,2]"#.into(), r#""id":0,"ok":false"#),
        (
            format!(r#"{{"id":-1,"command":"{add}"}}"#),
            r#""id\" must be an integer from 0 to 18446744073709551615, not -1""#,
        ),
        (format!(r#"{{"id":1.5,"command":"{add}"}}"#), "not 1.5"),
        (format!(r#"{{"id":"7","command":"{add}"}}"#), r#"not \"7\""#),
        (
            format!(r#"{{"id":18446744073709551616,"command":"{add}"}}"#),
            "not 1.8446744073709552e+19",
        ),
        (
            format!(r#"{{"id":4,"command":"{add}","command":"table_num_entries dnat"}}"#),
            r#"duplicate key \"command\""#,
        ),
        (
            r#"{"id":5}"#.into(),
            r#"{"error":"a request needs a \"command\" string","id":5,"ok":false}"#,
        ),
        (
            r#"{"id":6,"command":5}"#.into(),
            r#"{"error":"a request needs a \"command\" string","id":6,"ok":false}"#,
        ),
    ];
    for (line, want) in refused {
        let reply = c.send(&line);
        assert!(reply.contains(want), "{line}: {reply}");
        assert!(reply.contains(r#""ok":false"#), "{line}: {reply}");
        assert_eq!(
            count(&mut c),
            "{\"id\":1,\"ok\":true,\"output\":\"1\"}\n",
            "{line} ran"
        );
    }
    // What is accepted: no id is id 0, the largest id is copied, blank and comment-only
    // commands succeed with no output, an unknown field is ignored.
    assert_eq!(
        c.send(r#"{"command":"table_num_entries dnat"}"#),
        "{\"id\":0,\"ok\":true,\"output\":\"1\"}\n"
    );
    assert_eq!(
        c.send(r#"{"id":18446744073709551615,"command":"   "}"#),
        "{\"id\":18446744073709551615,\"ok\":true,\"output\":\"\"}\n"
    );
    assert_eq!(
        c.send(r##"{"id":2,"command":"# a comment","trace":true}"##),
        "{\"id\":2,\"ok\":true,\"output\":\"\"}\n"
    );
    assert_eq!(
        c.send(r#"{"id":3,"command":"table_delete dnatt 0"}"#),
        "{\"error\":\"unknown table 'dnatt' (did you mean 'dnat'?)\",\"id\":3,\"ok\":false}\n"
    );
    // A request over 65,536 bytes: an error with id 0, and the connection closes.
    let reply = c.send(&format!(r#"{{"id":9,"command":"{}"}}"#, "x".repeat(70_000)));
    assert_eq!(
        reply,
        "{\"error\":\"request too long (at most 65536 bytes); closing\",\"id\":0,\"ok\":false}\n"
    );
    assert!(c.closed());
    stop(sw);
}

#[test]
fn control_connections_are_capped_with_a_clear_refusal() {
    let sw = idle_switch("robust-conns");
    let max = 64;
    let mut open: Vec<Raw> = (0..max).map(|_| Raw::hello(&sw.sock)).collect();
    let mut extra = Raw::connect(&sw.sock);
    let reply = extra.send(sluice_runtime::control::client_hello().trim_end());
    assert_eq!(
        reply,
        "{\"error\":\"too many control connections (at most 64); close one and try again\",\"id\":0,\"ok\":false}\n"
    );
    // ctl says so too, and exits 2.
    let out = sw.ctl(&["show_tables"]);
    assert_eq!(out.status, 2);
    assert!(
        out.stderr.contains("too many control connections"),
        "{}",
        out.stderr
    );
    // Once one closes, a new client gets in (the switch notices the close as it happens).
    drop(open.pop());
    let t0 = std::time::Instant::now();
    loop {
        let out = sw.ctl(&["table_num_entries", "dnat"]);
        if out.status == 0 {
            assert_eq!(out.stdout, "1\n");
            break;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(20),
            "{}",
            out.stderr
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The others are still served.
    assert!(open[0]
        .send(r#"{"id":1,"command":"show_tables"}"#)
        .contains(r#""ok":true"#));
    drop(open);
    stop(sw);
}

/// The switch's resident memory, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

#[test]
fn clients_that_never_read_a_large_dump_cannot_grow_the_switch() {
    let dir = temp_dir("robust-dump");
    let n = 60_000u32;
    let mut entries = String::new();
    for i in 0..n {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
        entries += &format!("table_add snat from_vm {ip} => 203.0.113.10 0\n");
    }
    let empty = dir.join("empty.pcap");
    crate::serve::udp_capture(&empty, 0);
    let sw = crate::serve::Switch::start_program(
        &dir,
        "programs/port_dnat.sluice",
        &entries,
        &empty,
        &[],
    );
    // One dump read in full: every entry, the header and the default.
    let mut reader = Raw::hello(&sw.sock);
    let dump = reader.send(r#"{"id":1,"command":"table_dump snat"}"#);
    let v: serde_json::Value = serde_json::from_str(&dump).unwrap();
    let text = v["output"].as_str().unwrap();
    assert_eq!(text.lines().count(), n as usize + 2);
    assert!(
        text.starts_with("table snat (60000 entries, size"),
        "{}",
        &text[..80]
    );
    let before = rss(sw.child.id());

    // Six clients ask for it and never read.
    let stuck: Vec<Raw> = (0..6)
        .map(|_| {
            let mut c = Raw::hello(&sw.sock);
            use std::io::Write;
            c.w.write_all(b"{\"id\":1,\"command\":\"table_dump snat\"}\n")
                .unwrap();
            c
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_secs(2));
    // Other commands are still answered, and the switch holds at most one dump's text.
    assert_eq!(
        reader.send(r#"{"id":2,"command":"table_num_entries snat"}"#),
        "{\"id\":2,\"ok\":true,\"output\":\"60000\"}\n"
    );
    let grown = rss(sw.child.id()).saturating_sub(before);
    assert!(
        grown < 2 * dump.len() as u64,
        "grew by {grown} bytes with 6 unread dumps of {} bytes",
        dump.len()
    );
    drop(stuck);
    stop(sw);
}

#[test]
fn errors_escape_control_characters_and_cut_long_tokens() {
    let dir = temp_dir("robust-echo");
    let entries = dir.join("evil.entries");
    let huge = "9".repeat(1 << 20);
    std::fs::write(
        &entries,
        format!(
            "table_add dnat\u{1b}[2J\u{1b}]0;pwned\u{7} to_vm 1 => 2\n\
             table_add snat from_vm {huge} => 203.0.113.10 0\n\
             frob\u{202e}nicate\n"
        ),
    )
    .unwrap();
    let o = run(&[
        "run",
        "programs/port_dnat.sluice",
        "--entries",
        entries.to_str().unwrap(),
        "--in",
        "programs/port_dnat.pcap",
        "--out-dir",
        dir.join("out").to_str().unwrap(),
    ]);
    assert_eq!(o.status, 2);
    assert!(
        !o.stderr.contains('\u{1b}') && !o.stderr.contains('\u{7}'),
        "{:?}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains(r"unknown table 'dnat\u{1b}[2J\u{1b}]0;pwned\u{7}'"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains(&format!(
            "value {}... is larger than 128 bits",
            "9".repeat(64)
        )),
        "{}",
        o.stderr
    );
    assert!(o.stderr.len() < 2000, "{} bytes of errors", o.stderr.len());
    assert!(
        o.stderr.contains(r"unknown command 'frob\u{202e}nicate'"),
        "{}",
        o.stderr
    );
}

/// A classic pcap (µs, Ethernet) with the given snaplen in its header and these records as
/// they are, whatever their length.
fn raw_pcap(path: &std::path::Path, snaplen: u32, records: &[Vec<u8>]) {
    let mut b = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&snaplen.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    for (i, r) in records.iter().enumerate() {
        for v in [i as u32 + 1, 0, r.len() as u32, r.len() as u32] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(r);
    }
    std::fs::write(path, b).unwrap();
}

#[test]
fn oversized_records_are_said_once_and_packets_cut_on_output_are_counted() {
    let dir = temp_dir("robust-snaplen");
    let prog = dir.join("all.sluice");
    std::fs::write(
        &prog,
        "header ethernet { dst: bit<48>; src: bit<48>; ether_type: bit<16>; }\n\
         parser { state start { extract(ethernet); transition accept; } }\n\
         control ingress { forward(1); }\n\
         deparser { emit(ethernet); }\n",
    )
    .unwrap();
    let frame = |len: usize| {
        let mut f = vec![0u8; len];
        f[12] = 0x88;
        f[13] = 0xb5;
        f
    };
    // Snaplen 1500 in the header; records 2 and 4 are longer; record 4 is also longer than
    // what a classic pcap output of Sluice holds (256 KiB).
    let input = dir.join("in.pcap");
    raw_pcap(
        &input,
        1500,
        &[frame(60), frame(9000), frame(60), frame(300_000)],
    );
    let out = dir.join("out");
    let o = run(&[
        "run",
        prog.to_str().unwrap(),
        "--in",
        input.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status, 0, "{}", o.stderr);
    assert_eq!(
        o.stderr,
        format!(
            "warning: {}: record 2 has 9000 bytes, more than the capture's snaplen of 1500 (2 records do); read as captured\n",
            input.display()
        )
    );
    assert!(
        o.stdout.contains("(1 cut to the 256 KiB snaplen)"),
        "{}",
        o.stdout
    );
    let written = read_pcap(&out.join("port-1.pcap"));
    let lens: Vec<(u32, usize)> = written.iter().map(|r| (r.2, r.3.len())).collect();
    assert_eq!(lens, [(60, 60), (9000, 9000), (60, 60), (300_000, 262_144)]);
}

#[test]
fn an_os_error_is_said_once_with_the_path() {
    let dir = temp_dir("robust-oserror");
    let d = dir.to_str().unwrap();
    let out = dir.join("out");
    let cases: [(&[&str], String); 3] = [
        (
            &["check", d],
            format!("error: cannot read program {d}: Is a directory (os error 21)\n"),
        ),
        (
            &[
                "run",
                "programs/port_dnat.sluice",
                "--in",
                d,
                "--out-dir",
                out.to_str().unwrap(),
            ],
            format!("error: cannot read capture {d}: Is a directory (os error 21)\n"),
        ),
        (
            &[
                "run",
                "programs/port_dnat.sluice",
                "--entries",
                d,
                "--in",
                "programs/port_dnat.pcap",
                "--out-dir",
                out.to_str().unwrap(),
            ],
            format!("error: cannot read entries file {d}: Is a directory (os error 21)\n"),
        ),
    ];
    for (args, want) in cases {
        let o = run(args);
        assert_eq!(o.status, 2);
        assert_eq!(o.stderr, want);
    }
}

#[test]
fn a_switch_whose_log_cannot_be_written_still_serves_and_cleans_up() {
    let dir = temp_dir("robust-serve-log");
    let input = dir.join("in.pcap");
    udp_packets(&input, &[(8000, 100), (8001, 100)], 1_700_000_000);
    let sock = dir.join("ctl.sock");
    let out = dir.join("out");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = sluice()
        .args(serve_args(
            sock.to_str().unwrap(),
            &format!("0={}", input.display()),
            out.to_str().unwrap(),
        ))
        .stderr(full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let summary = String::from_utf8_lossy(&o.stdout);
    assert!(
        summary.contains("in = forwarded + dropped: 2 = "),
        "{summary}"
    );
    assert!(!sock.exists(), "the socket is left behind");
    assert!(
        !dir.join("ctl.sock.lock").exists(),
        "the lock is left behind"
    );
    assert_eq!(read_pcap(&out.join("port-1.pcap")).len(), 2);
}
