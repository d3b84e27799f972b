//! A fleet of switches following real etcd processes (Debian's etcd-server, installed by
//! .ci/run), on loopback addresses only: `serve --etcd`, `ctl --etcd`, and the faults of
//! docs/fleet.md.

use crate::serve::udp_capture;
use crate::support::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An etcd cluster of processes on loopback, killed (and its data removed) when dropped.
struct Etcd {
    members: Vec<Option<Child>>,
    clients: Vec<String>,
    dir: PathBuf,
}

impl Etcd {
    fn start(name: &str, n: usize) -> Etcd {
        let found = Command::new("etcd").arg("--version").output().is_ok();
        assert!(
            found,
            "the fleet tests need etcd (Debian's etcd-server; .ci/run installs it)"
        );
        let dir = temp_dir(&format!("etcd-{name}"));
        let peers: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let clients: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let cluster: Vec<String> = (0..n)
            .map(|i| format!("m{i}=http://127.0.0.1:{}", peers[i]))
            .collect();
        let members = (0..n)
            .map(|i| {
                let c = format!("http://127.0.0.1:{}", clients[i]);
                let p = format!("http://127.0.0.1:{}", peers[i]);
                Some(
                    Command::new("etcd")
                        .args(["--name", &format!("m{i}")])
                        .arg("--data-dir")
                        .arg(dir.join(format!("m{i}")))
                        .args(["--listen-client-urls", &c, "--advertise-client-urls", &c])
                        .args([
                            "--listen-peer-urls",
                            &p,
                            "--initial-advertise-peer-urls",
                            &p,
                        ])
                        .args(["--initial-cluster", &cluster.join(",")])
                        .args(["--initial-cluster-state", "new"])
                        // A migration updates every host in one transaction.
                        .args(["--max-txn-ops", "4096"])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap(),
                )
            })
            .collect();
        let e = Etcd {
            members,
            clients: clients.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
            dir,
        };
        let t0 = Instant::now();
        while !e.healthy() {
            assert!(t0.elapsed() < Duration::from_secs(30), "etcd did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        e
    }

    fn endpoints(&self) -> String {
        self.clients.join(",")
    }

    fn etcdctl(&self, args: &[&str]) -> String {
        let live: Vec<&str> = self
            .clients
            .iter()
            .zip(&self.members)
            .filter(|(_, m)| m.is_some())
            .map(|(c, _)| c.as_str())
            .collect();
        let o = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &live.join(",")])
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn healthy(&self) -> bool {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.endpoints(), "endpoint", "health"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP proxy in front of an etcd member, so that a test can cut a switch off from the
/// store and reconnect it.
struct Proxy {
    port: u16,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(to: &str) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let (o, cs, to) = (open.clone(), conns.clone(), to.to_string());
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { continue };
                if !o.load(Ordering::SeqCst) {
                    drop(c);
                    continue;
                }
                let Ok(u) = TcpStream::connect(&to) else {
                    continue;
                };
                let mut list = cs.lock().unwrap();
                list.push(c.try_clone().unwrap());
                list.push(u.try_clone().unwrap());
                for (mut a, mut b) in [(c.try_clone().unwrap(), u.try_clone().unwrap()), (u, c)] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut a, &mut b);
                        let _ = b.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, open, conns }
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// A switch following the store, killed when dropped.
struct Member {
    child: Child,
    sock: PathBuf,
    out: PathBuf,
    args: Vec<String>,
}

impl Member {
    fn start(
        dir: &Path,
        program: &str,
        etcd: &str,
        group: &str,
        id: &str,
        input: &Path,
        rate: u32,
    ) -> Member {
        Member::start_with(dir, program, etcd, group, id, input, rate, true)
    }

    #[allow(clippy::too_many_arguments)]
    fn start_with(
        dir: &Path,
        program: &str,
        etcd: &str,
        group: &str,
        id: &str,
        input: &Path,
        rate: u32,
        exit_when_done: bool,
    ) -> Member {
        let sock = dir.join(format!("{id}.sock"));
        let out = dir.join(format!("{id}-out"));
        let args: Vec<String> = [
            "serve",
            program,
            "--etcd",
            etcd,
            "--prefix",
            "/sluice/test",
            "--group",
            group,
            "--switch-id",
            id,
            "--in",
            &format!("0={}", input.display()),
            "--out-dir",
            out.to_str().unwrap(),
            "--control",
            sock.to_str().unwrap(),
            "--rate",
            &rate.to_string(),
            "--revision-log",
            dir.join(format!("{id}.revisions")).to_str().unwrap(),
            "--quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut args = args;
        if exit_when_done {
            args.push("--exit-when-done".into());
        }
        Member::spawn(sock, out, args)
    }

    fn spawn(sock: PathBuf, out: PathBuf, args: Vec<String>) -> Member {
        let child = sluice()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut m = Member {
            child,
            sock,
            out,
            args,
        };
        if !wait_for_control(&mut m.child, &m.sock, Duration::from_secs(30)) {
            let (_, err) = m.wait();
            panic!("the switch exited: {err}");
        }
        m
    }

    /// Kills it (SIGKILL, mid-replay) and starts it again with the same arguments.
    fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.sock);
        let fresh = Member::spawn(self.sock.clone(), self.out.clone(), self.args.clone());
        *self = fresh;
    }

    fn ctl(&self, args: &[&str]) -> String {
        ctl_ok(&self.sock, args)
    }

    /// The revision `stats` reports.
    fn revision(&self) -> u64 {
        let s = self.ctl(&["stats"]);
        s.lines()
            .find_map(|l| l.strip_prefix("etcd revision: "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no etcd revision in\n{s}"))
    }

    /// Every table's entries, without their counters.
    fn tables(&self, names: &[&str]) -> String {
        names
            .iter()
            .map(|t| {
                self.ctl(&["table_dump", t])
                    .lines()
                    .map(|l| l.split("  packets").next().unwrap_or(l).to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn wait(&mut self) -> (bool, String) {
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        let ok = self.child.wait().map(|s| s.success()).unwrap_or(false);
        (ok, err + &out)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sluice ctl --etcd` with a script: (exit status, stdout + stderr).
fn fleet_ctl(etcd: &str, program: &str, group: Option<&str>, script: &str) -> (i32, String) {
    let mut c = sluice();
    c.args([
        "ctl",
        "--etcd",
        etcd,
        "--prefix",
        "/sluice/test",
        "--program",
        program,
    ]);
    if let Some(g) = group {
        c.args(["--group", g]);
    }
    c.args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

/// The router's entries for one VM behind port `port`, the neighbour's address ending in
/// `port` too: a packet's egress port and destination MAC depend on two entries.
fn flip(port: u8) -> String {
    format!(
        "table_modify dnat to_vm 203.0.113.10 8000->8099 => 10.0.0.1 {port} 10\n\
         table_modify neighbour set_dmac 10.0.0.1 => 02:00:00:00:00:0{port}\n"
    )
}

const ROUTER: &str = "programs/router_dnat.sluice";
const ROUTER_START: &str = "table_add dnat to_vm 203.0.113.10 8000->8099 => 10.0.0.1 1 10\n\
     table_add neighbour set_dmac 10.0.0.1 => 02:00:00:00:00:01\n\
     table_add port_mac set_smac 1 => 02:00:00:00:01:01\n\
     table_add port_mac set_smac 2 => 02:00:00:00:01:02\n";

/// Every packet a switch wrote left on port P with destination MAC ...:0P: no packet saw
/// half of a flip. Returns how many packets each port had.
fn no_half_transactions(out: &Path) -> [usize; 2] {
    let mut n = [0; 2];
    for port in [1u8, 2] {
        let f = out.join(format!("port-{port}.pcap"));
        if !f.exists() {
            continue;
        }
        for (_, _, _, d) in read_pcap(&f) {
            assert_eq!(
                &d[..6],
                &[2, 0, 0, 0, 0, port],
                "a packet on port {port} with the other port's neighbour: half a transaction"
            );
            n[usize::from(port - 1)] += 1;
        }
    }
    n
}

#[test]
fn a_fleet_follows_one_store_and_refuses_what_does_not_fit() {
    let etcd = Etcd::start("follow", 1);
    let e = etcd.endpoints();
    let dir = temp_dir("fleet-follow");
    let input = dir.join("in.pcap");
    udp_capture(&input, 2000);
    let (code, out) = fleet_ctl(&e, ROUTER, Some("gw"), ROUTER_START);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("committed 4 changes at revision"), "{out}");
    let a = Member::start(&dir, ROUTER, &e, "gw", "a", &input, 100);
    let b = Member::start(&dir, ROUTER, &e, "gw", "b", &input, 100);
    // A switch's own entry beside the group's, in one transaction with a group change.
    let (code, out) = fleet_ctl(
        &e,
        ROUTER,
        Some("gw"),
        "table_add snat from_vm 10.0.0.1 => 203.0.113.10 0\n\
         [switch b]\n\
         table_add neighbour set_dmac 10.0.0.2 => 02:00:00:00:00:09\n",
    );
    assert_eq!(code, 0, "{out}");
    let t0 = Instant::now();
    while a.revision() != b.revision() || a.ctl(&["table_dump", "snat"]).contains("0 entries") {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the switches did not converge"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        a.tables(&["dnat", "snat", "port_mac"]),
        b.tables(&["dnat", "snat", "port_mac"])
    );
    assert!(b.ctl(&["table_dump", "neighbour"]).contains("0x0a000002"));
    assert!(!a.ctl(&["table_dump", "neighbour"]).contains("0x0a000002"));

    // Refused before anything is written: a bad entry, a duplicate, a secret, another
    // program, a switch that has not joined.
    let before = etcd.etcdctl(&["get", "--prefix", "/sluice/test", "--keys-only"]);
    for (script, program, want) in [
        ("table_add snat from_vm 10.0.0.5 => 203.0.113.10 0\ntable_add dnat to_vm 1.2.3.4 => 1 2 3\n", ROUTER, "-:2:"),
        ("table_add snat from_vm 10.0.0.1 => 203.0.113.10 0\n", ROUTER, "already has an entry"),
        ("secret_set k 0x000102030405060708090a0b0c0d0e0f\n", ROUTER, "secrets never go into the store"),
        ("table_add dnat to_vm 203.0.113.10 7000->7099 => 10.0.0.1 10\n", "programs/gateway.sluice", "runs another program"),
        ("[switch nobody]\ntable_add snat from_vm 10.0.0.5 => 203.0.113.10 0\n", ROUTER, "switch nobody has not joined"),
    ] {
        let (code, out) = fleet_ctl(&e, program, Some("gw"), script);
        assert_eq!(code, 1, "{script}: {out}");
        assert!(out.contains(want) && out.contains("nothing was written"), "{script}: {out}");
        assert!(!out.contains(&"0x000102030405060708090a0b0c0d0e0f"[2..]), "{out}");
    }
    assert_eq!(
        etcd.etcdctl(&["get", "--prefix", "/sluice/test", "--keys-only"]),
        before
    );

    // One key twice in a transaction (added, then modified): one operation, the last wins.
    let (code, out) = fleet_ctl(
        &e,
        ROUTER,
        Some("gw"),
        "table_add snat from_vm 10.0.0.7 => 203.0.113.10 0\n\
         table_modify snat from_vm 10.0.0.7 => 203.0.113.77 0\n",
    );
    assert_eq!(code, 0, "{out}");
    let t0 = Instant::now();
    while !a
        .ctl(&["table_dump", "snat"])
        .contains("public_ip=0xcb00714d")
    {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{}",
            a.ctl(&["table_dump", "snat"])
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A fleet switch's tables change through the store only.
    let o = run(&[
        "ctl",
        "--control",
        a.sock.to_str().unwrap(),
        "table_add snat from_vm 10.0.0.8 => 203.0.113.10 0",
    ]);
    assert_eq!(o.status, 1, "{}", o.stderr);
    assert!(
        o.stderr.contains("follows a fleet's etcd store"),
        "{}",
        o.stderr
    );
    // A value written around Sluice that a switch cannot apply: logged, counted, skipped.
    etcd.etcdctl(&[
        "put",
        "/sluice/test/group/gw/entry/snat/0x0a000063",
        "{\"action\":\"from_vm\",\"args\":[\"nonsense\"]}",
    ]);
    let t0 = Instant::now();
    while !a.ctl(&["stats"]).contains("1 values skipped") {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{}",
            a.ctl(&["stats"])
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A switch running another program refuses to follow the group.
    let o = run(&[
        "serve",
        "programs/gateway.sluice",
        "--etcd",
        &e,
        "--prefix",
        "/sluice/test",
        "--group",
        "gw",
        "--switch-id",
        "c",
        "--in",
        "0=programs/port_dnat.pcap",
        "--out-dir",
        dir.join("c-out").to_str().unwrap(),
        "--control",
        dir.join("c.sock").to_str().unwrap(),
    ]);
    assert_eq!(o.status, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("group gw runs another program"),
        "{}",
        o.stderr
    );
}

#[test]
fn no_packet_sees_half_of_a_transaction() {
    let etcd = Etcd::start("atomic", 1);
    let e = etcd.endpoints();
    let dir = temp_dir("fleet-atomic");
    let input = dir.join("in.pcap");
    udp_capture(&input, 30_000);
    let (code, out) = fleet_ctl(&e, ROUTER, Some("gw"), ROUTER_START);
    assert_eq!(code, 0, "{out}");
    let mut sw = Member::start(&dir, ROUTER, &e, "gw", "a", &input, 15_000);
    // Flip the VM's port and its neighbour's address together, again and again.
    let mut flips = 0;
    while sw.child.try_wait().unwrap().is_none() && flips < 200 {
        let (code, out) = fleet_ctl(&e, ROUTER, Some("gw"), &flip(2 - (flips % 2) as u8));
        assert_eq!(code, 0, "{out}");
        flips += 1;
    }
    let (ok, err) = sw.wait();
    assert!(ok, "{err}");
    let n = no_half_transactions(&sw.out);
    assert!(
        n[0] > 1000 && n[1] > 1000,
        "{n:?} packets on ports 1 and 2 after {flips} flips"
    );
    // The batches ran under revisions that only grew.
    let log = std::fs::read_to_string(dir.join("a.revisions")).unwrap();
    let revs: Vec<u64> = log
        .lines()
        .filter(|l| l.starts_with("revision "))
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(revs.windows(2).all(|w| w[0] <= w[1]));
    assert!(revs.iter().collect::<std::collections::BTreeSet<_>>().len() > 10);
}

/// The revision a `ctl --etcd` commit reports.
fn committed_at(out: &str) -> u64 {
    out.rsplit("at revision ")
        .next()
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no revision in {out}"))
}

#[test]
fn a_fleet_converges_through_faults() {
    // Three etcd members and four switches; switch d reaches the store through a proxy the
    // test can cut.
    let mut etcd = Etcd::start("faults", 3);
    let e = etcd.endpoints();
    let proxy = Proxy::start(&etcd.clients[0]);
    let dir = temp_dir("fleet-faults");
    let input = dir.join("in.pcap");
    udp_capture(&input, 20_000);
    let (code, out) = fleet_ctl(&e, ROUTER, Some("gw"), ROUTER_START);
    assert_eq!(code, 0, "{out}");
    let mut switches: Vec<Member> = ["a", "b", "c", "d"]
        .iter()
        .map(|id| {
            let ep = if *id == "d" {
                proxy.endpoint()
            } else {
                e.clone()
            };
            Member::start_with(&dir, ROUTER, &ep, "gw", id, &input, 2000, false)
        })
        .collect();
    let mut last = 0;
    let mut flips = 0u32;
    let mut flip_some = |n: u32, last: &mut u64| {
        for _ in 0..n {
            let (code, out) = fleet_ctl(&e, ROUTER, Some("gw"), &flip(2 - (flips % 2) as u8));
            assert_eq!(code, 0, "{out}");
            *last = committed_at(&out);
            flips += 1;
        }
    };
    flip_some(5, &mut last);
    // An etcd member dies: the other two keep a quorum.
    etcd.kill(2);
    flip_some(5, &mut last);
    // A switch is killed mid-replay and started again: it loads the store as it is.
    switches[2].restart();
    flip_some(5, &mut last);
    // Switch d is cut off; meanwhile the store changes and its history is compacted.
    proxy.cut();
    let t0 = Instant::now();
    while !switches[3].ctl(&["stats"]).contains("store unreachable") {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "d did not notice the cut"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let stale = switches[3].revision();
    flip_some(5, &mut last);
    etcd.etcdctl(&["compact", &last.to_string(), "--physical"]);
    // It kept forwarding with what it had.
    let packets_in = |m: &Member| -> u64 {
        let s = m.ctl(&["stats"]);
        s.lines()
            .find_map(|l| l.strip_prefix("packets in: "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no packets in\n{s}"))
    };
    let before = packets_in(&switches[3]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(packets_in(&switches[3]) > before);
    assert_eq!(switches[3].revision(), stale);
    proxy.restore();
    flip_some(3, &mut last);
    // Every switch ends with the same tables at the last transaction's revision.
    let tables = ["dnat", "snat", "neighbour", "port_mac"];
    let t0 = Instant::now();
    loop {
        let revs: Vec<u64> = switches.iter().map(Member::revision).collect();
        if revs.iter().all(|r| *r == last) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "revisions {revs:?}, last {last}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let want = switches[0].tables(&tables);
    for s in &switches[1..] {
        assert_eq!(s.tables(&tables), want);
    }
    // d came back by reloading the store (its history was compacted meanwhile).
    let stats = switches[3].ctl(&["stats"]);
    let reloads: u64 = stats
        .rsplit("values skipped, ")
        .next()
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no reloads in\n{stats}"));
    assert!(reloads >= 1, "{stats}");
    // No packet of any switch saw half of a flip.
    for s in &mut switches {
        let _ = s.child.kill();
        let _ = s.child.wait();
    }
    for s in &switches {
        no_half_transactions(&s.out);
    }
}

/// A capture of `n` UDP packets from 10.9.0.1 to the VMs `dsts[i]`, packet i carrying i in its
/// IPv4 identification, with correct checksums.
fn vm_capture(path: &Path, dsts: &[[u8; 4]]) {
    let mut out = sluice_runtime::pcap::PcapOut::create(path, 1, false).unwrap();
    for (i, dst) in dsts.iter().enumerate() {
        let payload = [0u8; 18];
        let udp_len = 8 + payload.len() as u16;
        let total = 20 + udp_len;
        let mut p = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&(i as u16).to_be_bytes());
        ip.extend_from_slice(&[0x40, 0, 64, 17, 0, 0, 10, 9, 0, 1]);
        ip.extend_from_slice(dst);
        let c = sluice_runtime::checksum::of_bytes(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend(ip);
        p.extend_from_slice(&5000u16.to_be_bytes());
        p.extend_from_slice(&80u16.to_be_bytes());
        p.extend_from_slice(&udp_len.to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(&payload);
        out.write(1_700_000_000, 0, p.len() as u32, &p).unwrap();
    }
    out.finish().unwrap();
}

/// Where VM `vm` runs, as host `host` sees it: `vm_location`'s command in a fleet.
fn location_line(verb: &str, vm: [u8; 4], at: usize, host: usize) -> String {
    let ip = |v: [u8; 4]| format!("{}.{}.{}.{}", v[0], v[1], v[2], v[3]);
    if at == host {
        format!("{verb} vm_location deliver {} => 3\n", ip(vm))
    } else {
        format!(
            "{verb} vm_location tunnel_ipip {} => 192.0.2.{} 192.0.2.{} 1\n",
            ip(vm),
            11 + host,
            11 + at
        )
    }
}

/// Moves (VM, new host) in one transaction on every host.
fn migrate_script(vm: [u8; 4], to: usize, hosts: usize) -> String {
    (0..hosts)
        .map(|h| {
            format!(
                "[switch h{h}]\n{}",
                location_line("table_modify", vm, to, h)
            )
        })
        .collect()
}

#[test]
fn migrations_at_fleet_scale_deliver_every_packet_once_where_its_revision_says() {
    const HOSTS: usize = 3;
    const VMS: usize = 300;
    const PACKETS: usize = 20_000;
    let etcd = Etcd::start("migrate", 1);
    let e = etcd.endpoints();
    let dir = temp_dir("fleet-migrate");
    let vm = |i: usize| [10, 1, (i / 256) as u8, (i % 256) as u8];
    let mut at: Vec<usize> = (0..VMS).map(|i| i % HOSTS).collect();
    // The hosts join first (a switch's part needs its switch), with empty tables.
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let mut switches = Vec::new();
    for h in 0..HOSTS {
        let dsts: Vec<[u8; 4]> = (0..PACKETS).map(|_| vm(next(VMS))).collect();
        let input = dir.join(format!("h{h}.pcap"));
        vm_capture(&input, &dsts);
        switches.push((
            Member::start_with(
                &dir,
                "programs/vnet.sluice",
                &e,
                "hosts",
                &format!("h{h}"),
                &input,
                1,
                false,
            ),
            dsts,
        ));
    }
    // Every host's tunnel address and where every VM runs, in one transaction.
    let mut setup = String::new();
    for h in 0..HOSTS {
        setup.push_str(&format!(
            "[switch h{h}]\ntable_add tunnel_term decap 192.0.2.{} =>\n",
            11 + h
        ));
        for (i, a) in at.iter().enumerate() {
            setup.push_str(&location_line("table_add", vm(i), *a, h));
        }
    }
    let (code, out) = fleet_ctl(&e, "programs/vnet.sluice", None, &setup);
    assert_eq!(code, 0, "{out}");
    let start_rev = committed_at(&out);
    let t0 = Instant::now();
    while switches.iter().any(|(m, _)| m.revision() < start_rev) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the hosts did not load"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Now the traffic: the same switches, restarted to replay at 4,000 packets a second from
    // the loaded state (a restart loads the store before any packet flows).
    let mut members: Vec<(Member, Vec<[u8; 4]>)> = Vec::new();
    for (h, (m, dsts)) in switches.into_iter().enumerate() {
        drop(m);
        let _ = std::fs::remove_file(dir.join(format!("h{h}.revisions")));
        let input = dir.join(format!("h{h}.pcap"));
        members.push((
            Member::start(
                &dir,
                "programs/vnet.sluice",
                &e,
                "hosts",
                &format!("h{h}"),
                &input,
                4000,
            ),
            dsts,
        ));
    }
    // Migrations while the packets flow: each one transaction on every host.
    let mut moves: Vec<(u64, usize, usize)> = Vec::new();
    while members
        .iter_mut()
        .any(|(m, _)| m.child.try_wait().unwrap().is_none())
    {
        let v = next(VMS);
        let to = (at[v] + 1 + next(HOSTS - 1)) % HOSTS;
        let (code, out) = fleet_ctl(
            &e,
            "programs/vnet.sluice",
            None,
            &migrate_script(vm(v), to, HOSTS),
        );
        assert_eq!(code, 0, "{out}");
        moves.push((committed_at(&out), v, to));
        at[v] = to;
    }
    assert!(moves.len() >= 10, "only {} migrations", moves.len());
    // Where VM v ran at revision r.
    let initial: Vec<usize> = (0..VMS).map(|i| i % HOSTS).collect();
    let location = |v: usize, r: u64| {
        moves
            .iter()
            .rfind(|(rev, m, _)| *m == v && *rev <= r)
            .map_or(initial[v], |(_, _, to)| *to)
    };
    let mut crossed = 0;
    for (h, (m, dsts)) in members.iter_mut().enumerate() {
        let (ok, err) = m.wait();
        assert!(ok, "{err}");
        // The revision each packet ran under.
        let mut rev_of = vec![None; PACKETS];
        let log = std::fs::read_to_string(dir.join(format!("h{h}.revisions"))).unwrap();
        for l in log.lines().filter(|l| l.starts_with("revision ")) {
            let w: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .map(|x| x.parse().unwrap())
                .collect();
            for s in w[1]..=w[2] {
                rev_of[s as usize] = Some(w[0]);
            }
        }
        let mut seen = vec![0u32; PACKETS];
        let ip = |v: [u8; 4]| v;
        for (port, tunnelled) in [(3u16, false), (1, true)] {
            let f = m.out.join(format!("port-{port}.pcap"));
            if !f.exists() {
                continue;
            }
            for (_, _, _, d) in read_pcap(&f) {
                let (outer_dst, inner) = if tunnelled {
                    (Some([d[30], d[31], d[32], d[33]]), &d[34..])
                } else {
                    (None, &d[14..])
                };
                let id = u16::from_be_bytes([inner[4], inner[5]]) as usize;
                let dst = [inner[16], inner[17], inner[18], inner[19]];
                assert_eq!(
                    dst,
                    ip(dsts[id]),
                    "host {h}: packet {id} is not the one sent"
                );
                seen[id] += 1;
                let r = rev_of[id].unwrap_or_else(|| panic!("host {h}: packet {id} not logged"));
                let v = usize::from(dst[2]) * 256 + usize::from(dst[3]);
                let want = location(v, r);
                match outer_dst {
                    None => assert_eq!(
                        want, h,
                        "host {h}: packet {id} delivered here at revision {r}"
                    ),
                    Some(o) => assert_eq!(
                        usize::from(o[3]) - 11,
                        want,
                        "host {h}: packet {id} tunnelled to the wrong host at revision {r}"
                    ),
                }
                if location(v, start_rev) != want {
                    crossed += 1;
                }
            }
        }
        // Every packet exactly once (no drops, no duplicates).
        assert!(
            seen.iter().all(|n| *n == 1),
            "host {h}: a packet lost or doubled"
        );
    }
    // Some packets went to a VM's new host.
    assert!(crossed > 0);
}

#[test]
fn a_group_entry_must_fit_every_switch_of_the_group() {
    let etcd = Etcd::start("fit", 1);
    let e = etcd.endpoints();
    let dir = temp_dir("fleet-fit");
    // router_dnat with room for two port addresses.
    let program = dir.join("small.sluice");
    let text = std::fs::read_to_string(root().join(ROUTER)).unwrap();
    assert!(text.contains("size 1024;"));
    std::fs::write(&program, text.replace("size 1024;", "size 2;")).unwrap();
    let program = program.to_str().unwrap().to_string();
    let input = dir.join("in.pcap");
    udp_capture(&input, 10);
    let s = Member::start_with(&dir, &program, &e, "small", "s", &input, 10, false);
    let (code, out) = fleet_ctl(
        &e,
        &program,
        None,
        "[switch s]\ntable_add port_mac set_smac 7 => 02:00:00:00:00:07\n",
    );
    assert_eq!(code, 0, "{out}");
    // Two group entries fit the group, but not switch s beside its own.
    let two = "table_add port_mac set_smac 1 => 02:00:00:00:00:01\n\
               table_add port_mac set_smac 2 => 02:00:00:00:00:02\n";
    let (code, out) = fleet_ctl(&e, &program, Some("small"), two);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("-:2: on switch s:") && out.contains("full"),
        "{out}"
    );
    // Once the switch's own entry is gone, they fit.
    let (code, out) = fleet_ctl(
        &e,
        &program,
        None,
        &format!("[switch s]\ntable_delete port_mac 7\n[group small]\n{two}"),
    );
    assert_eq!(code, 0, "{out}");
    let t0 = Instant::now();
    while !s.ctl(&["table_dump", "port_mac"]).contains("2 entries") {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{}",
            s.ctl(&["table_dump", "port_mac"])
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
