//! `sluice serve` with `sluice ctl`: entries installed and changed while packets flow.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A capture of `n` UDP packets 198.51.100.7:5000 -> 203.0.113.10:8080, numbered by their
/// IPv4 identification, with correct checksums.
pub fn udp_capture(path: &Path, n: u16) {
    let mut out = sluice_runtime::pcap::PcapOut::create(path, 1, false).unwrap();
    for i in 0..n {
        let payload = b"sluice!!";
        let udp_len = 8 + payload.len() as u16;
        let total = 20 + udp_len;
        let mut p = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&i.to_be_bytes());
        ip.extend_from_slice(&[0x40, 0, 64, 17, 0, 0, 198, 51, 100, 7, 203, 0, 113, 10]);
        let c = sluice_runtime::checksum::of_bytes(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut udp = Vec::new();
        udp.extend_from_slice(&5000u16.to_be_bytes());
        udp.extend_from_slice(&8080u16.to_be_bytes());
        udp.extend_from_slice(&udp_len.to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        let mut pseudo = ip[12..20].to_vec();
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&udp_len.to_be_bytes());
        pseudo.extend_from_slice(&udp);
        let c = sluice_runtime::checksum::of_bytes(&pseudo);
        udp[6..8].copy_from_slice(&c.to_be_bytes());
        p.extend(ip);
        p.extend(udp);
        out.write(1_700_000_000, u32::from(i) * 1000, p.len() as u32, &p)
            .unwrap();
    }
    out.finish().unwrap();
}

pub struct Switch {
    pub child: Child,
    pub sock: PathBuf,
    pub out: PathBuf,
}

impl Switch {
    pub fn start(dir: &Path, input: &Path, extra: &[&str]) -> Switch {
        Switch::start_program(
            dir,
            "programs/port_dnat.sluice",
            "table_add dnat to_vm 203.0.113.10 8000->8099 => 10.0.0.1 1 10\n",
            input,
            extra,
        )
    }

    pub fn start_program(
        dir: &Path,
        program: &str,
        initial: &str,
        input: &Path,
        extra: &[&str],
    ) -> Switch {
        let sock = dir.join("ctl.sock");
        let out = dir.join("out");
        let entries = dir.join("initial.entries");
        std::fs::write(&entries, initial).unwrap();
        let mut args: Vec<String> = vec![
            "serve".into(),
            program.into(),
            "--control".into(),
            sock.display().to_string(),
            "--entries".into(),
            entries.display().to_string(),
            "--in".into(),
            format!("0={}", input.display()),
            "--out-dir".into(),
            out.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = sluice()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        // Connectable, not just present: a stale socket file may be there before the switch.
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "the switch did not open its control socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Switch { child, sock, out }
    }

    pub fn ctl(&self, args: &[&str]) -> Output {
        let mut a = vec!["ctl", "--control", self.sock.to_str().unwrap()];
        a.extend_from_slice(args);
        run(&a)
    }

    /// Waits for the switch to exit; returns its summary.
    pub fn wait(mut self) -> String {
        let out = self.output();
        assert!(
            out.status.success(),
            "serve failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits for the switch to exit and reads everything it wrote.
    pub fn output(&mut self) -> std::process::Output {
        use std::io::Read;
        let mut stderr = self.child.stderr.take();
        let reader = std::thread::spawn(move || {
            let mut e = Vec::new();
            if let Some(s) = stderr.as_mut() {
                let _ = s.read_to_end(&mut e);
            }
            e
        });
        let mut stdout = Vec::new();
        if let Some(mut s) = self.child.stdout.take() {
            let _ = s.read_to_end(&mut stdout);
        }
        let status = self.child.wait().unwrap();
        std::process::Output {
            status,
            stdout,
            stderr: reader.join().unwrap_or_default(),
        }
    }
}

/// A test that fails (or forgets to stop its switch) leaves no switch running.
impl Drop for Switch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ids_and_dsts(path: &Path) -> Vec<(u16, [u8; 4])> {
    if !path.exists() {
        return vec![];
    }
    read_pcap(path)
        .into_iter()
        .map(|(_, _, _, d)| {
            check_checksums(&d).unwrap();
            (
                u16::from_be_bytes([d[18], d[19]]),
                [d[30], d[31], d[32], d[33]],
            )
        })
        .collect()
}

#[test]
fn control_commands_on_an_idle_switch_and_clean_exit_on_sigterm() {
    let dir = temp_dir("serve-idle");
    let empty = dir.join("empty.pcap");
    udp_capture(&empty, 0);
    let sw = Switch::start(&dir, &empty, &[]);
    // The socket is private to its owner.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sw.sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A second switch refuses the live socket.
    let second = run(&[
        "serve",
        "programs/port_dnat.sluice",
        "--control",
        sw.sock.to_str().unwrap(),
        "--in",
        &format!("0={}", empty.display()),
        "--out-dir",
        dir.join("out2").to_str().unwrap(),
    ]);
    assert_eq!(second.status, 2);
    assert!(
        second.stderr.contains("already listening"),
        "{}",
        second.stderr
    );

    let add = sw.ctl(&[
        "table_add",
        "dnat",
        "to_vm",
        "203.0.113.10",
        "8100->8199",
        "=>",
        "10.0.0.2",
        "2",
        "10",
    ]);
    assert_eq!(add.status, 0, "{}", add.stderr);
    assert!(
        add.stdout.contains("Entry has been added with handle 1"),
        "{}",
        add.stdout
    );
    let snat = sw.ctl(&[
        "table_add",
        "snat",
        "from_vm",
        "10.0.0.1",
        "=>",
        "203.0.113.10",
        "0",
    ]);
    assert_eq!(snat.status, 0, "{}", snat.stderr);
    // Bad commands are refused with a message and change nothing.
    for bad in [
        "table_add dnatt to_vm 1.2.3.4 1->2 => 10.0.0.1 1 1",
        "table_add dnat from_vm 1.2.3.4 1->2 => 10.0.0.1 1 1",
        "table_add dnat to_vm 1.2.3.4 => 10.0.0.1 1 1",
        "table_add dnat to_vm 203.0.113.10 8000->8099 => 10.0.0.1 70000 10",
        "table_add dnat to_vm 203.0.113.10 8000->8099 => 10.0.0.9 1 10",
        "table_delete dnat 99",
    ] {
        let bad: Vec<&str> = bad.split_whitespace().collect();
        let r = sw.ctl(&bad);
        assert_eq!(r.status, 1, "{bad:?} should fail: {}", r.stdout);
        assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
    }
    let n = sw.ctl(&["table_num_entries", "dnat"]);
    assert!(n.stdout.contains('2'), "{}", n.stdout);
    let dump = sw.ctl(&["table_dump", "dnat"]);
    insta::assert_snapshot!(dump.stdout);
    let stats = sw.ctl(&["stats"]);
    assert!(stats.stdout.contains("packets in: 0"), "{}", stats.stdout);
    // SIGTERM: outputs flushed, summary printed, socket removed.
    Command::new("kill")
        .arg("-TERM")
        .arg(sw.child.id().to_string())
        .status()
        .unwrap();
    let sock = sw.sock.clone();
    let summary = sw.wait();
    assert!(
        summary.contains("in = forwarded + dropped: 0 = 0 + 0"),
        "{summary}"
    );
    assert!(!sock.exists());
}

/// The `packets in` figure of `stats`.
fn packets_in(sw: &Switch) -> u64 {
    let stats = sw.ctl(&["stats"]);
    stats
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("packets in: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no packets in: {}", stats.stdout))
}

#[test]
fn a_modify_during_a_replay_takes_effect_at_a_packet_boundary() {
    let dir = temp_dir("serve-modify");
    let input = dir.join("in.pcap");
    let n = 600;
    udp_capture(&input, n);
    let sw = Switch::start(&dir, &input, &["--rate", "400", "--exit-when-done"]);
    // Modify once a part of the replay (1.5 s at this rate) has gone through.
    let t0 = Instant::now();
    while packets_in(&sw) < 150 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the replay did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let m = sw.ctl(&["table_modify", "dnat", "to_vm", "0", "10.0.0.2", "2"]);
    assert_eq!(m.status, 0, "{}", m.stderr);
    let out = sw.out.clone();
    let summary = sw.wait();
    assert!(
        summary.contains(&format!("in = forwarded + dropped: {n} = {n} + 0")),
        "{summary}"
    );
    let before = ids_and_dsts(&out.join("port-1.pcap"));
    let after = ids_and_dsts(&out.join("port-2.pcap"));
    assert!(
        !before.is_empty() && !after.is_empty(),
        "{} before, {} after",
        before.len(),
        after.len()
    );
    assert_eq!(
        before.len() + after.len(),
        n as usize,
        "no packet lost or duplicated"
    );
    // Every packet before the change went to the old VM, every one after to the new one.
    let k = before.len() as u16;
    assert!(before
        .iter()
        .enumerate()
        .all(|(i, (id, d))| *id == i as u16 && *d == [10, 0, 0, 1]));
    assert!(after
        .iter()
        .enumerate()
        .all(|(i, (id, d))| *id == k + i as u16 && *d == [10, 0, 0, 2]));
}

#[test]
fn thousands_of_flips_never_tear_an_action() {
    let dir = temp_dir("serve-flips");
    let input = dir.join("in.pcap");
    let n = 20_000;
    udp_capture(&input, n);
    let sw = Switch::start(&dir, &input, &["--rate", "10000", "--exit-when-done"]);
    let mut flips = String::new();
    for i in 0..3000 {
        let (ip, port) = if i % 2 == 0 {
            ("10.0.0.2", 2)
        } else {
            ("10.0.0.1", 1)
        };
        flips += &format!("table_modify dnat to_vm 0 {ip} {port}\n");
    }
    let f = dir.join("flips.txt");
    std::fs::write(&f, flips).unwrap();
    let r = sw.ctl(&["-f", f.to_str().unwrap()]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let out = sw.out.clone();
    let summary = sw.wait();
    assert!(
        summary.contains(&format!("in = forwarded + dropped: {n} = {n} + 0")),
        "{summary}"
    );
    let one = ids_and_dsts(&out.join("port-1.pcap"));
    let two = ids_and_dsts(&out.join("port-2.pcap"));
    assert_eq!(one.len() + two.len(), n as usize);
    // The address and the port come from the same update.
    assert!(one.iter().all(|(_, d)| *d == [10, 0, 0, 1]));
    assert!(two.iter().all(|(_, d)| *d == [10, 0, 0, 2]));
    assert!(!one.is_empty() && !two.is_empty());
}

#[test]
fn misbehaving_clients_cannot_hurt_the_switch_and_a_stale_socket_is_replaced() {
    use std::io::{BufRead, Write};
    use std::os::unix::net::UnixStream;
    let dir = temp_dir("serve-robust");
    // A stale socket file left by a switch that died: replaced.
    let stale = std::os::unix::net::UnixListener::bind(dir.join("ctl.sock")).unwrap();
    drop(stale);
    assert!(dir.join("ctl.sock").exists());
    let a = dir.join("a.pcap");
    let b = dir.join("b.pcap");
    udp_capture(&a, 30);
    udp_capture(&b, 30);
    // Two inputs, at the captures' own timing (1 ms apart).
    let sw = Switch::start(
        &dir,
        &a,
        &["--in", &format!("1={}", b.display()), "--realtime"],
    );
    // Garbage instead of a hello.
    let mut s = UnixStream::connect(&sw.sock).unwrap();
    s.write_all(b"GET / HTTP/1.0\n").unwrap();
    let mut line = String::new();
    std::io::BufReader::new(&s).read_line(&mut line).unwrap();
    assert!(
        line.contains("\"ok\":false") && line.contains("malformed hello"),
        "{line}"
    );
    // A good hello, then an over-long request: an error reply, then the connection closes.
    let mut s = UnixStream::connect(&sw.sock).unwrap();
    s.write_all(sluice_runtime::control::client_hello().as_bytes())
        .unwrap();
    let mut r = std::io::BufReader::new(s.try_clone().unwrap());
    let mut hello = String::new();
    r.read_line(&mut hello).unwrap();
    assert!(hello.contains("\"version\":1"), "{hello}");
    let _ = s.write_all(&vec![b'x'; 70_000]);
    let _ = s.write_all(b"\n");
    let mut reply = String::new();
    r.read_line(&mut reply).unwrap();
    assert!(reply.contains("too long"), "{reply}");
    // Disconnecting in the middle of a request.
    let mut s = UnixStream::connect(&sw.sock).unwrap();
    s.write_all(sluice_runtime::control::client_hello().as_bytes())
        .unwrap();
    s.write_all(b"{\"id\":1,\"comm").unwrap();
    drop(s);
    // The switch still answers, and still forwards.
    let ok = sw.ctl(&["table_num_entries", "dnat"]);
    assert_eq!(ok.status, 0, "{}", ok.stderr);
    // The replay is unpaced; poll rather than guess how long a loaded machine takes.
    let t0 = Instant::now();
    let stats = loop {
        let stats = sw.ctl(&["stats"]);
        if stats.stdout.contains("packets in: 60") || t0.elapsed() > Duration::from_secs(20) {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(stats.stdout.contains("packets in: 60"), "{}", stats.stdout);
    assert!(
        stats.stdout.contains("port 0      in 30") && stats.stdout.contains("port 1      in 30"),
        "{}",
        stats.stdout
    );
    Command::new("kill")
        .arg("-INT")
        .arg(sw.child.id().to_string())
        .status()
        .unwrap();
    let summary = sw.wait();
    assert!(
        summary.contains("in = forwarded + dropped: 60 = 60 + 0"),
        "{summary}"
    );
}

/// UDP packets to `vms` in turn, numbered by their IPv4 identification.
fn stream_to(path: &Path, vms: &[[u8; 4]], n: u16) {
    let mut out = sluice_runtime::pcap::PcapOut::create(path, 1, false).unwrap();
    for i in 0..n {
        let dst = vms[i as usize % vms.len()];
        let mut ip = vec![0x45, 0, 0, 28];
        ip.extend_from_slice(&i.to_be_bytes());
        ip.extend_from_slice(&[0x40, 0, 64, 17, 0, 0, 10, 0, 0, 100]);
        ip.extend_from_slice(&dst);
        let c = sluice_runtime::checksum::of_bytes(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut p = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
        p.extend(ip);
        p.extend_from_slice(&[0x13, 0x88, 0x00, 0x50, 0, 8, 0, 0]);
        out.write(1_700_000_000, u32::from(i), p.len() as u32, &p)
            .unwrap();
    }
    out.finish().unwrap();
}

#[test]
fn vms_migrate_between_hosts_without_loss_or_duplication() {
    let dir = temp_dir("serve-migration");
    let input = dir.join("in.pcap");
    let vms = [[10, 0, 0, 2], [10, 0, 0, 3], [10, 0, 0, 4]];
    let n = 3000u16;
    stream_to(&input, &vms, n);
    // Host B is reached on port 1, host C on port 2; each VM starts on B.
    let initial = "table_add vm_location tunnel_ipip 10.0.0.2 => 192.0.2.11 192.0.2.12 1\n\
                   table_add vm_location tunnel_ipip 10.0.0.3 => 192.0.2.11 192.0.2.12 1\n\
                   table_add vm_location tunnel_ipip 10.0.0.4 => 192.0.2.11 192.0.2.12 1\n";
    let sw = Switch::start_program(
        &dir,
        "programs/vnet.sluice",
        initial,
        &input,
        &["--rate", "2000", "--exit-when-done"],
    );
    // Move the VMs to host C (GRE) and back, a few times each, while the stream flows.
    let mut moves = [0usize; 3];
    for round in 0..4 {
        std::thread::sleep(Duration::from_millis(200));
        for (h, m) in moves.iter_mut().enumerate() {
            let (action, host, port) = if round % 2 == 0 {
                ("tunnel_gre", "192.0.2.13", "2")
            } else {
                ("tunnel_ipip", "192.0.2.12", "1")
            };
            let r = sw.ctl(&[
                "table_modify",
                "vm_location",
                action,
                &h.to_string(),
                "192.0.2.11",
                host,
                port,
            ]);
            assert_eq!(r.status, 0, "{}", r.stderr);
            *m += 1;
        }
    }
    let out = sw.out.clone();
    let summary = sw.wait();
    assert!(
        summary.contains(&format!("in = forwarded + dropped: {n} = {n} + 0")),
        "{summary}"
    );
    // Every packet left exactly once, on one host's tunnel.
    let mut seen: Vec<Option<u16>> = vec![None; n as usize];
    for (port, proto, outer_dst) in [(1u16, 4u8, [192, 0, 2, 12]), (2, 47, [192, 0, 2, 13])] {
        let f = out.join(format!("port-{port}.pcap"));
        if !f.exists() {
            continue;
        }
        for (_, _, _, d) in read_pcap(&f) {
            assert_eq!(d[23], proto);
            assert_eq!(&d[30..34], &outer_dst);
            let inner = if proto == 47 { 14 + 20 + 4 } else { 14 + 20 };
            let id = u16::from_be_bytes([d[inner + 4], d[inner + 5]]);
            assert!(
                seen[id as usize].replace(port).is_none(),
                "packet {id} left twice"
            );
        }
    }
    assert!(seen.iter().all(Option::is_some), "a packet was lost");
    // For each VM, in packet order, each stretch of packets goes to one host, with at most
    // one change per move.
    for (h, vm_moves) in moves.iter().enumerate() {
        let hosts: Vec<u16> = (h..n as usize).step_by(3).filter_map(|i| seen[i]).collect();
        let changes = hosts.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(
            changes <= *vm_moves,
            "VM {h}: {changes} changes for {vm_moves} moves"
        );
        assert!(changes >= 1, "VM {h} never moved: {hosts:?}");
    }
}

/// A replay that runs longer than a second shows a progress bar on a terminal: packets,
/// rate, elapsed and remaining time; `--quiet` hides it, not the summary; standard error that
/// is not a terminal never gets one.
#[test]
fn a_long_replay_shows_its_progress_on_a_terminal_only() {
    let dir = temp_dir("serve-progress");
    let input = dir.join("in.pcap");
    udp_capture(&input, 300);
    let args = |sock: &str, out: &str, quiet: bool| {
        let mut a = vec![
            "serve".to_string(),
            "programs/port_dnat.sluice".into(),
            "--entries".into(),
            "programs/port_dnat.entries".into(),
            "--control".into(),
            dir.join(sock).display().to_string(),
            "--in".into(),
            format!("0={}", input.display()),
            "--out-dir".into(),
            dir.join(out).display().to_string(),
            "--rate".into(),
            "150".into(),
            "--exit-when-done".into(),
        ];
        if quiet {
            a.push("--quiet".into());
        }
        a
    };
    let a = args("a.sock", "a", false);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut t = Terminal::spawn(&a, &[]);
    t.expect(" packets, ");
    t.expect("pps");
    t.expect("left");
    let (status, seen) = t.finish();
    assert_eq!(status, 0, "{seen}");
    assert!(seen.contains("in = forwarded + dropped: 300 ="), "{seen}");
    assert!(seen.contains("[") && seen.contains("%"), "{seen}");

    let q = args("q.sock", "q", true);
    let q: Vec<&str> = q.iter().map(String::as_str).collect();
    let (status, seen) = Terminal::spawn(&q, &[]).finish();
    assert_eq!(status, 0, "{seen}");
    assert!(seen.contains("in = forwarded + dropped: 300 ="), "{seen}");
    assert!(!seen.contains(" packets, "), "{seen}");

    // Standard error a pipe: no bar, whatever the duration.
    let p = args("p.sock", "p", false);
    let p: Vec<&str> = p.iter().map(String::as_str).collect();
    let o = run(&p);
    assert_eq!(o.status, 0, "{}", o.stderr);
    assert!(!o.stderr.contains(" packets, "), "{}", o.stderr);
}

/// The records of a pcap file (microsecond, little-endian, as the switch writes them), parsed
/// here rather than by the switch's reader: Err if the file ends inside a record.
fn strict_records(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if bytes.len() < 24 {
        return Err(format!("{} bytes: no whole file header", bytes.len()));
    }
    assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "magic");
    let mut at = 24;
    let mut records = Vec::new();
    while at < bytes.len() {
        let Some(h) = bytes.get(at..at + 16) else {
            return Err(format!("a record header cut at byte {at}"));
        };
        let incl = u32::from_le_bytes(h[8..12].try_into().unwrap()) as usize;
        let Some(data) = bytes.get(at + 16..at + 16 + incl) else {
            return Err(format!("a {incl}-byte record cut at byte {at}"));
        };
        records.push(data.to_vec());
        at += 16 + incl;
    }
    Ok(records)
}

#[test]
fn outputs_are_readable_while_the_switch_runs() {
    readable_while_running(1);
}

#[test]
fn outputs_are_readable_while_two_workers_run() {
    readable_while_running(2);
}

fn readable_while_running(workers: u32) {
    let dir = temp_dir(&format!("serve-readable-{workers}"));
    let input = dir.join("in.pcap");
    let n = 3000;
    udp_capture(&input, n);
    // 3 s of replay, looked at four times in its first two, flushed at the default interval
    // (100 ms).
    let workers = workers.to_string();
    let sw = Switch::start(
        &dir,
        &input,
        &["--rate", "1000", "--exit-when-done", "--workers", &workers],
    );
    let path = sw.out.join("port-1.pcap");
    let mut seen = Vec::new();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(200));
        let went_in = packets_in(&sw);
        // More than one flush interval later, everything forwarded by then is in the file.
        std::thread::sleep(Duration::from_millis(250));
        let bytes = std::fs::read(&path).unwrap_or_default();
        let records = strict_records(&bytes).unwrap_or_else(|e| panic!("mid-run: {e}"));
        assert!(
            records.len() as u64 >= went_in,
            "{} records in the file, {went_in} packets in 250 ms earlier",
            records.len()
        );
        for (i, r) in records.iter().enumerate() {
            assert_eq!(u16::from_be_bytes([r[18], r[19]]), i as u16, "in order");
            check_checksums(r).unwrap();
        }
        seen.push(records.len());
    }
    assert!(seen[0] > 0 && seen[0] < usize::from(n), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    let summary = sw.wait();
    assert!(
        summary.contains(&format!("in = forwarded + dropped: {n} = {n} + 0")),
        "{summary}"
    );
    let all = strict_records(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(all.len(), usize::from(n));
}
