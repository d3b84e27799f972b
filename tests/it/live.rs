//! `sluice serve --port`: the switch on Linux interfaces, between network namespaces the tests
//! make (a client, the gateway, a server), joined by veth pairs. They need root (CI runs as
//! root); elsewhere they are skipped with a message saying why. Every namespace is deleted
//! when a test ends, also when it fails, and only addresses inside them are used.

use crate::support::*;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Whether the tests can make namespaces here; says why not when they cannot.
fn can_make_namespaces() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: live-port tests make network namespaces and need root");
        return false;
    }
    for tool in ["ip", "ethtool", "curl"] {
        let found = Command::new(tool)
            .arg(if tool == "curl" { "--version" } else { "-V" })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        // As root the tests run, and CI installs these: missing is a failure, not a skip.
        assert!(
            found,
            "the live-port tests need `{tool}` (.ci/run installs it)"
        );
    }
    true
}

/// Namespaces made for one test, deleted (with their veths) when it ends.
struct Net {
    names: Vec<String>,
}

impl Net {
    fn new(tag: &str, names: &[&str]) -> Net {
        let names: Vec<String> = names
            .iter()
            .map(|n| format!("sl-{tag}-{}-{n}", std::process::id()))
            .collect();
        let net = Net { names };
        for n in &net.names {
            // One a killed run of this test left.
            let _ = Command::new("ip")
                .args(["netns", "del", n])
                .stderr(Stdio::null())
                .status();
            sh(&["ip", "netns", "add", n]);
            sh(&["ip", "-n", n, "link", "set", "lo", "up"]);
        }
        net
    }

    fn ns(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// A veth pair between two namespaces, with fixed Ethernet addresses, IPv6 off (no
    /// router solicitations in the captures), checksum offload, TSO, GSO and GRO off (so
    /// that the switch sees whole checksums and frames no larger than the MTU), and up.
    fn veth(&self, a: (usize, &str, &str), b: (usize, &str, &str)) {
        sh(&[
            "ip",
            "link",
            "add",
            a.1,
            "netns",
            self.ns(a.0),
            "address",
            a.2,
            "type",
            "veth",
            "peer",
            "name",
            b.1,
            "netns",
            self.ns(b.0),
            "address",
            b.2,
        ]);
        for (i, name) in [(a.0, a.1), (b.0, b.1)] {
            let ns = self.ns(i);
            sh(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{name}.disable_ipv6=1"),
            ]);
            sh(&[
                "ip", "netns", "exec", ns, "ethtool", "-K", name, "rx", "off", "tx", "off", "tso",
                "off", "gso", "off", "gro", "off",
            ]);
            sh(&["ip", "-n", ns, "link", "set", name, "up"]);
        }
    }

    fn exec(&self, i: usize, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.ns(i)]).args(args);
        c
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for n in &self.names {
            // Whatever still runs in it first (a switch, a client), then the namespace.
            if let Ok(o) = Command::new("ip").args(["netns", "pids", n]).output() {
                for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

fn sh(args: &[&str]) {
    let o = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs `f` on a thread of its own inside namespace `ns`: sockets it makes live there.
fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: setns on this thread only, with a namespace file descriptor it holds.
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

/// The page every VM serves at /page.
fn page() -> Vec<u8> {
    (0..20_000u32)
        .map(|i| b"sluice live gateway\n"[(i % 20) as usize])
        .collect()
}

/// A stream of pseudo-random bytes (xorshift), so that a transfer is not compressible by
/// accident and any reordering or loss shows in its hash.
struct Bytes(u64);

impl Bytes {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            chunk.copy_from_slice(&self.0.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// A small HTTP/1.1 server in the server namespace, on every address and the ports given:
/// `/page` is [`page`], `/big?N` N pseudo-random bytes (their SHA-256 recorded), `/slow` a
/// kilobyte every 20 ms for 20 s. Each answer says which VM address it was sent to (`X-VM`).
struct Server {
    stop: Arc<AtomicBool>,
    hashes: Arc<Mutex<Vec<String>>>,
    /// Bytes of /slow sent so far.
    slow_sent: Arc<AtomicU64>,
}

impl Server {
    fn start(net: &Net, ns: usize, ports: &[u16]) -> Server {
        let ports = ports.to_vec();
        let s = Server {
            stop: Arc::new(AtomicBool::new(false)),
            hashes: Arc::new(Mutex::new(Vec::new())),
            slow_sent: Arc::new(AtomicU64::new(0)),
        };
        let (stop, hashes, slow) = (s.stop.clone(), s.hashes.clone(), s.slow_sent.clone());
        let ready = in_netns(net.ns(ns), move || {
            let ls: Vec<TcpListener> = ports
                .iter()
                .map(|p| {
                    let l = TcpListener::bind(("0.0.0.0", *p)).unwrap();
                    l.set_nonblocking(true).unwrap();
                    l
                })
                .collect();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let mut idle = true;
                    for l in &ls {
                        if let Ok((c, _)) = l.accept() {
                            idle = false;
                            let (hashes, slow) = (hashes.clone(), slow.clone());
                            std::thread::spawn(move || {
                                let _ = answer(c, &hashes, &slow);
                            });
                        }
                    }
                    if idle {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            });
        });
        ready.join().unwrap();
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn answer(mut c: TcpStream, hashes: &Mutex<Vec<String>>, slow: &AtomicU64) -> std::io::Result<()> {
    c.set_nonblocking(false)?;
    let mut req = Vec::new();
    let mut b = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = c.read(&mut b)?;
        if n == 0 {
            return Ok(());
        }
        req.extend_from_slice(&b[..n]);
    }
    let req = String::from_utf8_lossy(&req).into_owned();
    let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
    let vm = c.local_addr()?.ip();
    let head = |len: u64| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nX-VM: {vm}\r\nConnection: close\r\n\r\n"
        )
    };
    if path == "/page" {
        let p = page();
        c.write_all(head(p.len() as u64).as_bytes())?;
        c.write_all(&p)?;
    } else if let Some(n) = path.strip_prefix("/big?") {
        let n: u64 = n.parse().unwrap_or(0);
        c.write_all(head(n).as_bytes())?;
        let mut gen = Bytes(0x9e37_79b9_7f4a_7c15 ^ n);
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut left = n;
        while left > 0 {
            let k = left.min(buf.len() as u64) as usize;
            gen.fill(&mut buf[..k]);
            c.write_all(&buf[..k])?;
            h.update(&buf[..k]);
            left -= k as u64;
        }
        hashes.lock().unwrap().push(hex(&h.finalize()));
    } else if path == "/slow" {
        c.write_all(head(1000 * 1024).as_bytes())?;
        for _ in 0..1000 {
            c.write_all(&[b'x'; 1024])?;
            slow.fetch_add(1024, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(20));
        }
    } else {
        c.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    }
    c.flush()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A switch in the gateway namespace, killed when dropped.
struct LiveSwitch {
    child: Child,
    sock: PathBuf,
}

impl LiveSwitch {
    fn start(net: &Net, ns: usize, dir: &Path, args: &[&str]) -> LiveSwitch {
        let sock = dir.join("ctl.sock");
        let child = net
            .exec(ns, &[env!("CARGO_BIN_EXE_sluice"), "serve"])
            .args(args)
            .args(["--control", sock.to_str().unwrap()])
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut s = LiveSwitch { child, sock };
        if !wait_for_control(&mut s.child, &s.sock, Duration::from_secs(20)) {
            let (_, err) = s.finish();
            panic!("the switch exited: {err}");
        }
        s
    }

    fn ctl(&self, args: &[&str]) -> String {
        ctl_ok(&self.sock, args)
    }

    /// SIGTERM, then the exit status, the summary and what it said on stderr.
    fn stop(mut self) -> (bool, String, String) {
        sh(&["kill", "-TERM", &self.child.id().to_string()]);
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        let (ok, err) = self.finish();
        (ok, out, err)
    }

    fn finish(&mut self) -> (bool, String) {
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let ok = self.child.wait().map(|s| s.success()).unwrap_or(false);
        (ok, err)
    }
}

impl Drop for LiveSwitch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The live gateway of programs/router_dnat.entries on ports 0 (g0) and 1 (g1).
const ROUTER_PORTS: [&str; 7] = [
    "programs/router_dnat.sluice",
    "--entries",
    "programs/router_dnat.entries",
    "--port",
    "0=g0",
    "--port",
    "1=g1",
];

/// `ip -n NS ARGS`, the arguments split at spaces.
fn ip_in(ns: &str, args: &str) {
    let mut a = vec!["ip", "-n", ns];
    a.extend(args.split_whitespace());
    sh(&a);
}

/// The client: 198.51.100.2 on `iface` of namespace `ns`, the public range through the
/// gateway (a static neighbour at the gateway's port 0, 02:00:00:00:01:02).
fn client_host(net: &Net, ns: usize, iface: &str) {
    let ns = net.ns(ns);
    ip_in(ns, &format!("addr add 198.51.100.2/24 dev {iface}"));
    ip_in(ns, "route add 203.0.113.0/24 via 198.51.100.1");
    ip_in(
        ns,
        &format!("neigh add 198.51.100.1 lladdr 02:00:00:00:01:02 dev {iface} nud permanent"),
    );
}

/// The VMs: 10.0.0.1 and 10.0.0.2 on `iface` of namespace `ns`, the client's range through a
/// next hop at Ethernet address `next_hop`.
fn vm_host(net: &Net, ns: usize, iface: &str, next_hop: &str) {
    let ns = net.ns(ns);
    for a in ["10.0.0.1/24", "10.0.0.2/24"] {
        ip_in(ns, &format!("addr add {a} dev {iface}"));
    }
    ip_in(ns, "route add 198.51.100.0/24 via 10.0.0.254");
    ip_in(
        ns,
        &format!("neigh add 10.0.0.254 lladdr {next_hop} dev {iface} nud permanent"),
    );
}

/// The topology of programs/router_dnat.entries: client 198.51.100.2 on port 0, the VMs
/// 10.0.0.1 and 10.0.0.2 on port 1, each side given the gateway as a static neighbour.
fn gateway_topology(tag: &str) -> Net {
    let net = Net::new(tag, &["client", "gw", "server"]);
    net.veth(
        (0, "c0", "02:00:00:00:01:01"),
        (1, "g0", "02:00:00:00:01:02"),
    );
    net.veth(
        (2, "s0", "02:00:00:00:02:01"),
        (1, "g1", "02:00:00:00:02:02"),
    );
    client_host(&net, 0, "c0");
    vm_host(&net, 2, "s0", "02:00:00:00:02:02");
    net
}

/// curl in the client namespace: (exit code, headers, body file).
fn curl(net: &Net, url: &str, body: &Path, max_secs: u32) -> (i32, String) {
    let o = net
        .exec(
            0,
            &[
                "curl",
                "-sS",
                "--max-time",
                &max_secs.to_string(),
                "-D",
                "-",
                "-o",
            ],
        )
        .arg(body)
        .arg(url)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

fn vm_of(headers: &str) -> &str {
    headers
        .lines()
        .find_map(|l| l.strip_prefix("X-VM: "))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no X-VM header in {headers}"))
}

fn sha256_file(p: &Path) -> String {
    hex(&Sha256::digest(std::fs::read(p).unwrap()))
}

/// `promiscuity N` from `ip -d link`: how many holders keep the interface promiscuous.
fn promiscuity(net: &Net, ns: usize, iface: &str) -> u32 {
    let o = Command::new("ip")
        .args(["-n", net.ns(ns), "-d", "link", "show", iface])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let after = text
        .split("promiscuity ")
        .nth(1)
        .expect("promiscuity shown");
    after.split_whitespace().next().unwrap().parse().unwrap()
}

/// The numbers after `word` on the `port N` line of `stats`.
fn port_counter(stats: &str, port: u16, word: &str) -> u64 {
    let line = stats
        .lines()
        .find(|l| l.starts_with(&format!("port {port:<6} ")) && l.contains("received"))
        .unwrap_or_else(|| panic!("no line for port {port} in\n{stats}"));
    let after = line.split(&format!("{word} ")).nth(1).unwrap();
    after.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn a_real_connection_through_the_gateway() {
    if !can_make_namespaces() {
        return;
    }
    let net = gateway_topology("http");
    let server = Server::start(&net, 2, &[8080, 8150]);
    let dir = temp_dir("live-http");
    let cap = dir.join("cap");
    // The example entries, and a range whose port has no interface (and no --out-dir).
    let entries = dir.join("gw.entries");
    let mut text = std::fs::read_to_string(root().join("programs/router_dnat.entries")).unwrap();
    text.push_str("table_add dnat to_vm 203.0.113.10 9000->9000 => 10.0.0.1 5 10\n");
    text.push_str("table_add port_mac set_smac 5 => 02:00:00:00:05:02\n");
    std::fs::write(&entries, text).unwrap();
    assert_eq!(promiscuity(&net, 1, "g0"), 0);
    let sw = LiveSwitch::start(
        &net,
        1,
        &dir,
        &[
            "programs/router_dnat.sluice",
            "--entries",
            entries.to_str().unwrap(),
            "--port",
            "0=g0",
            "--port",
            "1=g1",
            "--capture",
            cap.to_str().unwrap(),
        ],
    );
    // Promiscuous while the switch runs.
    assert_eq!(promiscuity(&net, 1, "g0"), 1);
    assert_eq!(promiscuity(&net, 1, "g1"), 1);

    // The page, byte for byte, from the VM the port range names.
    let body = dir.join("page");
    let (rc, h) = curl(&net, "http://203.0.113.10:8080/page", &body, 20);
    assert_eq!(rc, 0, "{h}");
    assert_eq!(std::fs::read(&body).unwrap(), page());
    assert_eq!(vm_of(&h), "10.0.0.1");

    // The captures can be read while the switch runs: whole records, the page's packets in
    // them a flush interval (100 ms) later.
    std::thread::sleep(Duration::from_millis(300));
    let so_far = read_pcap(&cap.join("port-0-in.pcap"));
    assert!(so_far.len() >= 5, "{} records so far", so_far.len());
    assert!(so_far.iter().all(|(_, _, len, d)| *len as usize == d.len()));

    // 100 MB, the same SHA-256 at both ends.
    let big = dir.join("big");
    let (rc, h) = curl(&net, "http://203.0.113.10:8080/big?100000000", &big, 120);
    assert_eq!(rc, 0, "{h}");
    assert_eq!(std::fs::metadata(&big).unwrap().len(), 100_000_000);
    let sent = server.hashes.lock().unwrap().clone();
    assert_eq!(sent, [sha256_file(&big)]);
    std::fs::remove_file(&big).unwrap();

    // The second VM gets the connections of its own range.
    let (rc, h) = curl(&net, "http://203.0.113.10:8150/page", &body, 20);
    assert_eq!(rc, 0, "{h}");
    assert_eq!(vm_of(&h), "10.0.0.2");
    assert_eq!(std::fs::read(&body).unwrap(), page());

    // Every packet one side sent arrived on the other: none of what the switch sent was
    // read back as input (it would be received twice, and sent again).
    let stats = sw.ctl(&["stats"]);
    assert_eq!(
        port_counter(&stats, 0, "received"),
        port_counter(&stats, 1, "sent"),
        "{stats}"
    );
    assert_eq!(
        port_counter(&stats, 1, "received"),
        port_counter(&stats, 0, "sent"),
        "{stats}"
    );
    assert!(port_counter(&stats, 0, "received") > 1000, "{stats}");

    // A port with neither interface nor file: the SYNs are dropped and counted.
    let (rc, _) = curl(&net, "http://203.0.113.10:9000/page", &body, 2);
    assert_ne!(rc, 0);
    let stats = sw.ctl(&["stats"]);
    let no_port: u64 = stats
        .lines()
        .find_map(|l| l.trim().strip_prefix("no such port"))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no 'no such port' line in\n{stats}"));
    assert!(no_port >= 1, "{stats}");

    // A transfer running to the second VM while its range moves to the first: new
    // connections go to the first; the running one breaks (no per-flow state).
    let slow_body = dir.join("slow");
    let mut slow = net
        .exec(0, &["curl", "-sS", "--max-time", "30", "-o"])
        .arg(&slow_body)
        .arg("http://203.0.113.10:8150/slow")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while server.slow_sent.load(Ordering::Relaxed) < 20 * 1024 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the slow transfer did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let handle = sw
        .ctl(&["table_dump", "dnat"])
        .lines()
        .find(|l| l.contains("meta.l4_dst_port=0x1fa4->0x2007"))
        .and_then(|l| l.strip_prefix("handle "))
        .and_then(|l| l.split(':').next())
        .map(|h| h.parse::<u32>().unwrap())
        .expect("the 8100->8199 entry in table_dump");
    sw.ctl(&[
        "table_modify",
        "dnat",
        "to_vm",
        &handle.to_string(),
        "10.0.0.1",
        "1",
    ]);
    let (rc, h) = curl(&net, "http://203.0.113.10:8150/page", &body, 20);
    assert_eq!(rc, 0, "{h}");
    assert_eq!(vm_of(&h), "10.0.0.1");
    let status = slow.wait().unwrap();
    assert!(
        !status.success(),
        "the transfer to the old VM went on after its range moved"
    );
    assert!(std::fs::metadata(&slow_body).map_or(0, |m| m.len()) < 1000 * 1024);

    let (ok, summary, err) = sw.stop();
    assert!(ok, "{err}");
    assert!(summary.contains("in = forwarded + dropped"), "{summary}");
    assert!(!summary.contains("MISMATCH"), "{summary}");
    // Restored once the switch is gone.
    assert_eq!(promiscuity(&net, 1, "g0"), 0);
    assert_eq!(promiscuity(&net, 1, "g1"), 0);

    // The captures hold what each port received and sent, well formed.
    for f in ["port-0-in", "port-0-out", "port-1-in", "port-1-out"] {
        let recs = read_pcap(&cap.join(format!("{f}.pcap")));
        assert!(recs.len() > 100, "{f}: {} records", recs.len());
        for (_, _, _, d) in recs.iter().take(2000) {
            check_checksums(d).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
    }
    drop(server);
}

/// Runs tshark (a dissector independent of Sluice) over a capture with checksum checks on:
/// per packet, its protocol stack and every IPv4, TCP and UDP checksum status it found.
fn tshark(path: &Path) -> Vec<(String, String)> {
    let o = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(path)
        .args([
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-T",
            "fields",
            "-E",
            "separator=/t",
            "-e",
            "frame.protocols",
            "-e",
            "ip.checksum.status",
            "-e",
            "tcp.checksum.status",
            "-e",
            "_ws.expert.severity",
        ])
        .output()
        .expect("tshark runs (.ci/run installs it)");
    assert!(
        o.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let mut f = l.splitn(2, '\t');
            (
                f.next().unwrap_or("").to_string(),
                f.next().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn a_tunnel_through_real_interfaces() {
    if !can_make_namespaces() {
        return;
    }
    // client -- gateway (gateway.sluice) == tunnel link == host (host.sluice) -- VMs.
    // Neither switch rewrites Ethernet addresses, so the VMs' interface has the address the
    // client sends to, and the VMs' next hop is the client's.
    let net = Net::new("tun", &["client", "gw", "host", "vms"]);
    net.veth(
        (0, "c0", "02:00:00:00:01:01"),
        (1, "g0", "02:00:00:00:01:02"),
    );
    net.veth(
        (1, "g1", "02:00:00:00:03:01"),
        (2, "h0", "02:00:00:00:03:02"),
    );
    net.veth(
        (2, "h1", "02:00:00:00:04:01"),
        (3, "v0", "02:00:00:00:01:02"),
    );
    // Room for the outer header (20 bytes, 24 with GRE) on the tunnel link.
    for (ns, i) in [(1, "g1"), (2, "h0")] {
        sh(&["ip", "-n", net.ns(ns), "link", "set", i, "mtu", "1600"]);
    }
    client_host(&net, 0, "c0");
    vm_host(&net, 3, "v0", "02:00:00:00:01:01");
    // The host translates 8000-8099 into the first VM's 80-179, 8100-8199 into the second's.
    let server = Server::start(&net, 3, &[160, 130]);
    let dir = temp_dir("live-tunnel");
    let gw_entries = dir.join("gw.entries");
    std::fs::write(
        &gw_entries,
        "table_add tunnel_term decap 192.0.2.1 =>\n\
         table_add dnat to_vm 203.0.113.10 8000->8099 => 10.0.0.1 10\n\
         table_add dnat to_vm 203.0.113.10 8100->8199 => 10.0.0.2 10\n\
         table_add vm_location tunnel_ipip 10.0.0.1 => 192.0.2.1 192.0.2.11 1\n\
         table_add vm_location tunnel_gre 10.0.0.2 => 192.0.2.1 192.0.2.11 1\n\
         table_add snat from_vm 10.0.0.1 8000->8099 => 203.0.113.10 0 10\n\
         table_add snat from_vm 10.0.0.2 8100->8199 => 203.0.113.10 0 10\n",
    )
    .unwrap();
    let host_entries = dir.join("host.entries");
    std::fs::write(
        &host_entries,
        "table_add tunnel_term decap 192.0.2.11 =>\n\
         table_add port_in to_local 10.0.0.1 8000->8099 => 57616 1 10\n\
         table_add port_in to_local 10.0.0.2 8100->8199 => 57516 1 10\n\
         table_add port_out to_gateway 10.0.0.1 80->179 => 7920 192.0.2.11 192.0.2.1 0 10\n\
         table_add port_out to_gateway 10.0.0.2 80->179 => 8020 192.0.2.11 192.0.2.1 0 10\n",
    )
    .unwrap();
    let (gdir, hdir) = (dir.join("gw"), dir.join("host"));
    std::fs::create_dir_all(&gdir).unwrap();
    std::fs::create_dir_all(&hdir).unwrap();
    let cap = dir.join("cap");
    let gw = LiveSwitch::start(
        &net,
        1,
        &gdir,
        &[
            "programs/gateway.sluice",
            "--entries",
            gw_entries.to_str().unwrap(),
            "--port",
            "0=g0",
            "--port",
            "1=g1",
            "--capture",
            cap.to_str().unwrap(),
        ],
    );
    let host = LiveSwitch::start(
        &net,
        2,
        &hdir,
        &[
            "programs/host.sluice",
            "--entries",
            host_entries.to_str().unwrap(),
            "--port",
            "0=h0",
            "--port",
            "1=h1",
        ],
    );
    let body = dir.join("page");
    // The first VM through IP-in-IP, the second through GRE.
    for (port, vm) in [(8080, "10.0.0.1"), (8150, "10.0.0.2")] {
        let (rc, h) = curl(&net, &format!("http://203.0.113.10:{port}/page"), &body, 20);
        assert_eq!(rc, 0, "{h}");
        assert_eq!(vm_of(&h), vm);
        assert_eq!(std::fs::read(&body).unwrap(), page());
    }
    let big = dir.join("big");
    let (rc, h) = curl(&net, "http://203.0.113.10:8150/big?20000000", &big, 60);
    assert_eq!(rc, 0, "{h}");
    assert_eq!(server.hashes.lock().unwrap().clone(), [sha256_file(&big)]);
    let (ok, _, err) = host.stop();
    assert!(ok, "{err}");
    let (ok, summary, err) = gw.stop();
    assert!(ok, "{err}");
    assert!(!summary.contains("MISMATCH"), "{summary}");

    // What the gateway sent into the tunnel, and what came back, through tshark.
    for (f, min) in [("port-1-out", 100), ("port-1-in", 100)] {
        let path = cap.join(format!("{f}.pcap"));
        let packets = tshark(&path);
        assert!(
            packets.len() > min,
            "{f}: tshark read {} packets, our reader {}; the gateway said: {err}{summary}",
            packets.len(),
            read_pcap(&path).len()
        );
        let (mut ipip, mut gre) = (0, 0);
        for (protocols, rest) in &packets {
            // Outer and inner IPv4 both there, over IP-in-IP or GRE, nothing malformed.
            if protocols.starts_with("eth:ethertype:ip:ip:tcp") {
                ipip += 1;
            } else if protocols.starts_with("eth:ethertype:ip:gre:ip:tcp") {
                gre += 1;
            } else {
                panic!("{f}: not a tunnelled TCP packet: {protocols}");
            }
            let mut fields = rest.split('\t');
            let ip = fields.next().unwrap_or("");
            let tcp = fields.next().unwrap_or("");
            // 1 is "good" (tshark's checksum status); each IPv4 header has its own.
            assert_eq!(ip, "1,1", "{f}: IPv4 checksums {ip} in {protocols}");
            assert_eq!(tcp, "1", "{f}: TCP checksum {tcp} in {protocols}");
            let expert = fields.next().unwrap_or("");
            assert!(
                !expert.contains("error"),
                "{f}: tshark found an error: {protocols} {expert}"
            );
        }
        if f == "port-1-out" {
            assert!(ipip > 5 && gre > 100, "{f}: {ipip} IP-in-IP, {gre} GRE");
        } else {
            // Replies come back in IP-in-IP from the host.
            assert!(ipip > 100 && gre == 0, "{f}: {ipip} IP-in-IP, {gre} GRE");
        }
    }
    drop(server);
}

#[test]
fn workers_share_live_ports_by_flow() {
    if !can_make_namespaces() {
        return;
    }
    let net = gateway_topology("workers");
    let server = Server::start(&net, 2, &[8080, 8150]);
    let dir = temp_dir("live-workers");
    let sw = LiveSwitch::start(
        &net,
        1,
        &dir,
        &[&ROUTER_PORTS[..], &["--workers", "2"]].concat(),
    );
    // Sixteen connections at once, each of a different length (so a different stream).
    let mut args: Vec<String> = vec!["curl".into(), "-sS".into(), "--parallel".into()];
    args.extend(["--parallel-max".into(), "16".into()]);
    args.extend(["--max-time".into(), "120".into()]);
    let mut files = Vec::new();
    for i in 0..16u64 {
        let f = dir.join(format!("t{i}"));
        args.push("-o".into());
        args.push(f.display().to_string());
        args.push(format!("http://203.0.113.10:8080/big?{}", 5_000_000 + i));
        files.push(f);
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = net.exec(0, &a).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut got: Vec<String> = files.iter().map(|f| sha256_file(f)).collect();
    let mut sent = server.hashes.lock().unwrap().clone();
    got.sort();
    sent.sort();
    assert_eq!(got, sent);
    assert_eq!(sent.len(), 16);
    // Both workers had flows.
    let stats = sw.ctl(&["stats"]);
    let per_worker: Vec<u64> = stats
        .lines()
        .find_map(|l| l.strip_prefix("workers: 2 (packets in: "))
        .unwrap_or_else(|| panic!("no workers line in\n{stats}"))
        .trim_end_matches(')')
        .split(", ")
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(per_worker.iter().all(|n| *n > 1000), "{stats}");
    let (ok, summary, err) = sw.stop();
    assert!(ok, "{err}");
    assert!(!summary.contains("MISMATCH"), "{summary}");
    drop(server);
}

#[test]
fn interfaces_that_cannot_be_used_are_errors_before_any_packet_flows() {
    if !can_make_namespaces() {
        return;
    }
    let net = Net::new("errors", &["a"]);
    sh(&[
        "ip",
        "-n",
        net.ns(0),
        "link",
        "add",
        "down0",
        "type",
        "veth",
        "peer",
        "name",
        "down1",
    ]);
    let dir = temp_dir("live-errors");
    let sock = dir.join("ctl.sock");
    let serve = |iface: &str| {
        let o = net
            .exec(
                0,
                &[
                    env!("CARGO_BIN_EXE_sluice"),
                    "serve",
                    "programs/router_dnat.sluice",
                    "--port",
                    &format!("0={iface}"),
                    "--control",
                    sock.to_str().unwrap(),
                ],
            )
            .current_dir(root())
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = serve("nosuch0");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("interface nosuch0: no such interface"),
        "{err}"
    );
    let (code, err) = serve("down0");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("interface down0: the interface is down"),
        "{err}"
    );
    // Nothing was made: no control socket.
    assert!(!sock.exists());
    // Without CAP_NET_RAW (as an unprivileged user), where setpriv can drop to one.
    if Command::new("setpriv").arg("--version").output().is_ok() {
        sh(&["ip", "-n", net.ns(0), "link", "set", "down0", "up"]);
        let o = net
            .exec(
                0,
                &[
                    "setpriv",
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    env!("CARGO_BIN_EXE_sluice"),
                    "serve",
                    "programs/router_dnat.sluice",
                    "--port",
                    "0=down0",
                    "--control",
                    "/tmp/sluice-live-errors.sock",
                ],
            )
            .current_dir(root())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains("interface down0: no permission to open a packet socket"),
            "{err}"
        );
    }
}

/// Pins the calling thread to one CPU, so that what it sends is not reordered by the kernel
/// (a veth queues what is sent on the sending CPU).
fn pin_here(cpu: usize) {
    // SAFETY: cpu_set_t is plain old data; this thread's affinity only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

#[test]
fn with_workers_each_flow_stays_in_order() {
    if !can_make_namespaces() {
        return;
    }
    // Thirteen UDP flows (an odd number, so that a round-robin spread would split each),
    // numbered datagrams sent round robin from one pinned thread; the
    // receivers check that no flow's numbers ever go back (losses are allowed: UDP).
    const FLOWS: u16 = 13;
    const EACH: u32 = 20_000;
    let net = gateway_topology("order");
    let dir = temp_dir("live-order");
    let sw = LiveSwitch::start(
        &net,
        1,
        &dir,
        &[&ROUTER_PORTS[..], &["--workers", "2"]].concat(),
    );
    let receivers = in_netns(net.ns(2), move || {
        (0..FLOWS)
            .map(|f| {
                let s = std::net::UdpSocket::bind(("10.0.0.1", 8000 + f)).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(1500)))
                    .unwrap();
                std::thread::spawn(move || {
                    let (mut last, mut got, mut back) = (None::<u32>, 0u32, 0u32);
                    let mut b = [0u8; 64];
                    while let Ok(n) = s.recv(&mut b) {
                        let seq = u32::from_be_bytes(b[..4].try_into().unwrap());
                        assert_eq!(n, 32);
                        if last.is_some_and(|l| seq <= l) {
                            back += 1;
                        }
                        last = Some(seq);
                        got += 1;
                    }
                    (got, back)
                })
            })
            .collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    in_netns(net.ns(0), move || {
        pin_here(0);
        let socks: Vec<std::net::UdpSocket> = (0..FLOWS)
            .map(|f| {
                let s = std::net::UdpSocket::bind(("198.51.100.2", 0)).unwrap();
                s.connect(("203.0.113.10", 8000 + f)).unwrap();
                s
            })
            .collect();
        let mut b = [0u8; 32];
        for seq in 0..EACH {
            b[..4].copy_from_slice(&seq.to_be_bytes());
            for s in &socks {
                let _ = s.send(&b);
            }
            if seq % 16 == 15 {
                // About 200,000 datagrams a second: losses are allowed, but a test of order
                // needs many through, also while other tests load the machine.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    })
    .join()
    .unwrap();
    for (f, r) in receivers.into_iter().enumerate() {
        let (got, back) = r.join().unwrap();
        assert_eq!(
            back, 0,
            "flow {f}: {back} datagrams arrived after a later one"
        );
        assert!(got > EACH / 10, "flow {f}: only {got} datagrams arrived");
    }
    let stats = sw.ctl(&["stats"]);
    let per_worker: Vec<u64> = stats
        .lines()
        .find_map(|l| l.strip_prefix("workers: 2 (packets in: "))
        .unwrap_or_else(|| panic!("no workers line in\n{stats}"))
        .trim_end_matches(')')
        .split(", ")
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(per_worker.iter().all(|n| *n > 1000), "{stats}");
}

fn xdp_attached(net: &Net, ns: usize, iface: &str) -> bool {
    let o = Command::new("ip")
        .args(["-n", net.ns(ns), "link", "show", iface])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).contains("prog/xdp")
}

#[test]
fn af_xdp_ports_carry_a_real_connection_and_fall_back_with_a_reason() {
    if !can_make_namespaces() {
        return;
    }
    let net = gateway_topology("xdp");
    let server = Server::start(&net, 2, &[8080, 8150]);
    let dir = temp_dir("live-xdp");
    let args = [&ROUTER_PORTS[..], &["--af-xdp"]].concat();
    let sw = LiveSwitch::start(&net, 1, &dir, &args);
    assert!(xdp_attached(&net, 1, "g0") && xdp_attached(&net, 1, "g1"));
    let body = dir.join("page");
    let (rc, h) = curl(&net, "http://203.0.113.10:8150/page", &body, 20);
    assert_eq!(rc, 0, "{h}");
    assert_eq!(vm_of(&h), "10.0.0.2");
    assert_eq!(std::fs::read(&body).unwrap(), page());
    let big = dir.join("big");
    let (rc, h) = curl(&net, "http://203.0.113.10:8080/big?30000000", &big, 60);
    assert_eq!(rc, 0, "{h}");
    assert_eq!(server.hashes.lock().unwrap().clone(), [sha256_file(&big)]);
    let stats = sw.ctl(&["stats"]);
    assert_eq!(
        port_counter(&stats, 0, "received"),
        port_counter(&stats, 1, "sent"),
        "{stats}"
    );
    let (ok, summary, err) = sw.stop();
    assert!(ok, "{err}");
    assert!(!summary.contains("MISMATCH"), "{summary}");
    assert!(
        err.contains("0=g0 (AF_XDP, ") && err.contains("1=g1 (AF_XDP, "),
        "{err}"
    );
    // The program goes with the switch.
    assert!(!xdp_attached(&net, 1, "g0") && !xdp_attached(&net, 1, "g1"));

    // Where AF_XDP cannot serve (here: several workers), AF_PACKET, and the reason.
    let mut two = args.to_vec();
    two.extend(["--workers", "2"]);
    let sw = LiveSwitch::start(&net, 1, &dir, &two);
    let (rc, h) = curl(&net, "http://203.0.113.10:8080/page", &body, 20);
    assert_eq!(rc, 0, "{h}");
    let (ok, _, err) = sw.stop();
    assert!(ok, "{err}");
    assert!(err.contains("every port uses AF_PACKET"), "{err}");
    assert!(err.contains("0=g0 (AF_PACKET)"), "{err}");
    drop(server);
}

#[test]
fn bad_port_arguments_are_refused_with_what_is_wrong() {
    // Checked before any interface is touched: no root needed.
    for (args, want) in [
        (
            &["--port", "0"][..],
            "--port 0: expected N=IFACE, for example --port 0=eth1",
        ),
        (
            &["--port", "70000=eth0"][..],
            "'70000' is not a port number (0 to 65535)",
        ),
        (
            &["--port", "1="][..],
            "--port 1=: no interface name after '='",
        ),
        (
            &["--port", "0=eth0", "--port", "0=eth1"][..],
            "--port 0=eth1: port 0 is already interface eth0",
        ),
    ] {
        let mut a = vec!["serve", "programs/router_dnat.sluice"];
        a.extend_from_slice(args);
        a.extend(["--control", "/nonexistent/dir/ctl.sock"]);
        let o = run(&a);
        assert_eq!(o.status, 2, "{args:?}: {}", o.stderr);
        assert!(o.stderr.contains(want), "{args:?}: {}", o.stderr);
    }
    // Neither a port nor a capture: nothing to serve.
    let o = run(&["serve", "programs/router_dnat.sluice"]);
    assert_eq!(o.status, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("--in") && o.stderr.contains("--port"),
        "{}",
        o.stderr
    );
}
