//! Sealed host-gateway tunnels (programs/host_secure.sluice, programs/gateway_secure.sluice):
//! the sealed path against the plain one, tampering, replays, wrong keys, tokens and their
//! expiry, and keys absent from every output. The programs' golden outputs are in golden.rs;
//! the RFC test vectors are in runtime/src/crypto/tests.rs.

use crate::support::*;
use std::path::{Path, PathBuf};

const VM: [u8; 4] = [10, 0, 0, 1];
const CLIENT: [u8; 4] = [198, 51, 100, 7];
const PUBLIC: [u8; 4] = [203, 0, 113, 10];
const TS: u64 = 1_750_000_000;

/// A frame from `src:sport` to `dst:dport` (TCP or UDP), built by etherparse.
fn frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, tcp: bool, n: usize) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, dst, 64);
    let payload: Vec<u8> = (0..n).map(|i| (i * 7 + usize::from(sport)) as u8).collect();
    let mut out = Vec::new();
    if tcp {
        b.tcp(sport, dport, 7, 8192)
            .write(&mut out, &payload)
            .unwrap();
    } else {
        b.udp(sport, dport).write(&mut out, &payload).unwrap();
    }
    out
}

/// Writes frames as a capture, each at `TS + i` seconds unless `same_time`.
fn capture(path: &Path, frames: &[Vec<u8>], same_time: bool) {
    let mut out = sluice_runtime::pcap::PcapOut::create(path, 1, false).unwrap();
    for (i, f) in frames.iter().enumerate() {
        let ts = if same_time { TS } else { TS + i as u64 };
        out.write(ts, 0, f.len() as u32, f).unwrap();
    }
    out.finish().unwrap();
}

/// Runs a program (`programs/NAME.sluice`) over a capture; returns the output directory and
/// the summary.
fn run_program(program: &str, entries: &Path, input: &Path, out: &Path) -> String {
    let o = run(&[
        "run",
        &format!("programs/{program}.sluice"),
        "--entries",
        entries.to_str().unwrap(),
        "--in",
        input.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status, 0, "{program}: {}", o.stderr);
    o.stdout
}

fn records(path: &Path) -> Vec<Vec<u8>> {
    if !path.exists() {
        return Vec::new();
    }
    read_pcap(path).into_iter().map(|r| r.3).collect()
}

fn entries(name: &str) -> PathBuf {
    root().join(format!("programs/{name}.entries"))
}

/// The number after `label` in a summary line (`  replay   3`).
fn count(summary: &str, label: &str) -> u64 {
    summary
        .lines()
        .find(|l| {
            l.trim_start().starts_with(label) && l.trim_start()[label.len()..].starts_with(' ')
        })
        .and_then(|l| l.split_whitespace().last())
        .map_or(0, |n| n.parse().unwrap())
}

/// A VM's packets out through host then gateway, and a client's in through gateway then
/// host: the sealed path delivers the same bytes as the plain one (host.sluice,
/// gateway.sluice, same entries otherwise).
#[test]
fn the_sealed_path_delivers_what_the_plain_path_does() {
    let dir = temp_dir("secure-round-trip");
    let out_frames: Vec<Vec<u8>> = (0..20)
        .map(|i| {
            frame(
                VM,
                CLIENT,
                80 + i,
                40000 + i,
                i % 2 == 0,
                100 + 50 * usize::from(i),
            )
        })
        .collect();
    let in_frames: Vec<Vec<u8>> = (0..20)
        .map(|i| frame(CLIENT, PUBLIC, 40000 + i, 8000 + i, i % 2 == 1, 1400))
        .collect();
    let (vm_out, client_in) = (dir.join("vm-out.pcap"), dir.join("client-in.pcap"));
    capture(&vm_out, &out_frames, false);
    capture(&client_in, &in_frames, false);
    let through = |host: &str, gateway: &str, tag: &str| {
        // Out: host, then what it sends to the gateway (port 1), through the gateway.
        let h = dir.join(format!("{tag}-host-out"));
        run_program(host, &entries(host), &vm_out, &h);
        let g = dir.join(format!("{tag}-gw-out"));
        run_program(gateway, &entries(gateway), &h.join("port-1.pcap"), &g);
        // In: gateway, then what it sends to host A (port 1), through the host.
        let g2 = dir.join(format!("{tag}-gw-in"));
        run_program(gateway, &entries(gateway), &client_in, &g2);
        let h2 = dir.join(format!("{tag}-host-in"));
        run_program(host, &entries(host), &g2.join("port-1.pcap"), &h2);
        (
            records(&h.join("port-1.pcap")),
            records(&g.join("port-0.pcap")),
            records(&g2.join("port-1.pcap")),
            records(&h2.join("port-3.pcap")),
        )
    };
    let (plain_tunnel, plain_out, _, plain_in) = through("host", "gateway", "plain");
    let (sealed_tunnel, sealed_out, sealed_in_tunnel, sealed_in) =
        through("host_secure", "gateway_secure", "sealed");
    assert_eq!(plain_out.len(), 20);
    assert_eq!(plain_in.len(), 20);
    assert_eq!(sealed_out, plain_out, "to the client");
    assert_eq!(sealed_in, plain_in, "to the VM");
    // The tunnel packets: IPv4 protocol 254, 12 + 12 + 16 bytes more than the plain IP-in-IP
    // (key id and counter, token and expiry, tag) on the way out, 12 + 16 on the way in, and
    // nothing of the inner packet in clear.
    for (sealed, plain) in sealed_tunnel.iter().zip(&plain_tunnel) {
        assert_eq!(sealed[14 + 9], 254);
        assert_eq!(sealed.len(), plain.len() + 40);
        let inner = &plain[34..];
        assert!(!sealed
            .windows(24)
            .any(|w| inner.windows(24).any(|x| x == w)));
    }
    for p in &sealed_in_tunnel {
        assert_eq!(
            p.len() - 14,
            usize::from(u16::from_be_bytes([p[16], p[17]]))
        );
    }
}

/// One sealed packet from the host, and its flipped copies: every byte from the key id to the
/// end of the tag, each changed, is dropped; the original still gets through afterwards.
#[test]
fn any_changed_byte_of_a_sealed_packet_is_dropped() {
    let dir = temp_dir("secure-tamper");
    let vm = dir.join("vm.pcap");
    capture(&vm, &[frame(VM, CLIENT, 80, 40000, true, 64)], false);
    run_program("host_secure", &entries("host_secure"), &vm, &dir.join("h"));
    let sealed = records(&dir.join("h/port-1.pcap")).remove(0);
    let mut frames = Vec::new();
    for i in 14 + 20..sealed.len() {
        for bit in [0x01u8, 0x80] {
            let mut f = sealed.clone();
            f[i] ^= bit;
            frames.push(f);
        }
    }
    let n = frames.len() as u64;
    frames.push(sealed.clone());
    let input = dir.join("tampered.pcap");
    capture(&input, &frames, true);
    let summary = run_program(
        "gateway_secure",
        &entries("gateway_secure"),
        &input,
        &dir.join("g"),
    );
    assert_eq!(count(&summary, "forwarded:"), 1, "{summary}");
    assert_eq!(
        count(&summary, "bad tag") + count(&summary, "replay"),
        n,
        "{summary}"
    );
    // A changed counter may look old (a replay) before its tag is checked; a changed key id,
    // sealed byte or tag is a bad tag.
    assert!(count(&summary, "bad tag") >= n - 16, "{summary}");
}

/// 1,100 packets sealed by the host at one instant (consecutive counters), delivered with
/// two swapped, then the first again (older than the last 1,024 taken) and the last again.
#[test]
fn replays_and_packets_older_than_the_window_are_dropped_and_reordered_ones_taken() {
    let dir = temp_dir("secure-window");
    let vm = dir.join("vm.pcap");
    let frames: Vec<Vec<u8>> = (0..1100u16)
        .map(|i| frame(VM, CLIENT, 80, 1024 + i, false, 8))
        .collect();
    capture(&vm, &frames, true);
    run_program("host_secure", &entries("host_secure"), &vm, &dir.join("h"));
    let sealed = records(&dir.join("h/port-1.pcap"));
    assert_eq!(sealed.len(), 1100);
    let mut order: Vec<Vec<u8>> = sealed[1..].to_vec();
    order.swap(5, 6);
    order.push(sealed[0].clone());
    order.push(sealed[1099].clone());
    let input = dir.join("order.pcap");
    capture(&input, &order, true);
    let summary = run_program(
        "gateway_secure",
        &entries("gateway_secure"),
        &input,
        &dir.join("g"),
    );
    assert_eq!(count(&summary, "forwarded:"), 1099, "{summary}");
    assert_eq!(count(&summary, "replay"), 2, "{summary}");
}

/// Entries for a program with its `key_derive` line's key file given by absolute path and
/// the lines for which `keep` is false left out, plus `extra` lines.
fn entries_with(name: &str, dir: &Path, keep: impl Fn(&str) -> bool, extra: &str) -> PathBuf {
    let text = std::fs::read_to_string(entries(name)).unwrap();
    let keys = root().join("programs/keys");
    let mut out = String::new();
    for line in text.lines().filter(|l| keep(l)) {
        out += &line.replace("--private keys/", &format!("--private {}/", keys.display()));
        out.push('\n');
    }
    out += extra;
    let path = dir.join(format!("{name}.entries"));
    std::fs::write(&path, out).unwrap();
    path
}

fn ip(a: [u8; 4]) -> String {
    std::net::Ipv4Addr::from(a).to_string()
}

#[test]
fn a_key_derived_with_another_peer_opens_nothing() {
    let dir = temp_dir("secure-wrong-peer");
    let other = dir.join("other.key");
    let o = run(&["keygen", "--out", other.to_str().unwrap()]);
    assert_eq!(o.status, 0, "{}", o.stderr);
    let other_pub = o.stdout.trim().to_string();
    // The gateway derives its key with another host's public key.
    let gw_entries = entries_with(
        "gateway_secure",
        &dir,
        |l| !l.starts_with("key_derive"),
        &format!(
            "key_derive link_key --private {} --peer {other_pub} --peer-ip 192.0.2.11\n",
            root().join("programs/keys/gateway.key").display()
        ),
    );
    let vm = dir.join("vm.pcap");
    let frames: Vec<Vec<u8>> = (0..10)
        .map(|i| frame(VM, CLIENT, 80, 2000 + i, true, 10))
        .collect();
    capture(&vm, &frames, false);
    run_program("host_secure", &entries("host_secure"), &vm, &dir.join("h"));
    let summary = run_program(
        "gateway_secure",
        &gw_entries,
        &dir.join("h/port-1.pcap"),
        &dir.join("g"),
    );
    assert_eq!(count(&summary, "bad tag"), 10, "{summary}");
    assert_eq!(count(&summary, "forwarded:"), 0, "{summary}");
}

/// Tokens from `sluice token`, as the registry makes them: accepted until the end of the
/// expiry's second and not after; a token for another pair, or made with another key, is a
/// bad token; a pair without one never leaves the host.
#[test]
fn tokens_let_only_their_pair_through_until_they_expire() {
    let dir = temp_dir("secure-tokens");
    let pair_key = dir.join("pair.key");
    std::fs::write(&pair_key, "0x5ac2e7f0a1b2c3d4e5f60718293a4b5c\n").unwrap();
    let other_key = dir.join("other.key");
    std::fs::write(&other_key, "0x00000000000000000000000000000001\n").unwrap();
    let token = |key: &Path, expiry: u64, dst: [u8; 4]| {
        let o = run(&[
            "token",
            "--secret-file",
            key.to_str().unwrap(),
            "--expiry",
            &expiry.to_string(),
            "--src",
            &ip(VM),
            "--dst",
            &ip(dst),
        ]);
        assert_eq!(o.status, 0, "{}", o.stderr);
        o.stdout.trim().to_string()
    };
    // Five destinations, one packet each at TS + 10 seconds.
    let at = TS + 10;
    let dst = |i: u8| [198, 51, 100, 10 + i];
    let lines = [
        (dst(0), token(&pair_key, at, dst(0)), at), // expires this second: accepted
        (dst(1), token(&pair_key, at - 1, dst(1)), at - 1), // expired
        (dst(2), token(&pair_key, at, dst(0)), at), // another pair's token
        (dst(3), token(&other_key, at, dst(3)), at), // another registry key
    ];
    let mut extra = String::new();
    for (d, t, e) in &lines {
        extra += &format!(
            "table_add pair_token stamp {} {} => {t} {e}\n",
            ip(VM),
            ip(*d)
        );
    }
    let host_entries = entries_with(
        "host_secure",
        &dir,
        |l| !l.starts_with("table_add pair_token"),
        &extra,
    );
    let frames: Vec<Vec<u8>> = (0..5)
        .map(|i| frame(VM, dst(i), 80, 3000, false, 10))
        .collect();
    let vm = dir.join("vm.pcap");
    let mut out = sluice_runtime::pcap::PcapOut::create(&vm, 1, false).unwrap();
    for f in &frames {
        out.write(at, 500_000_000, f.len() as u32, f).unwrap();
    }
    out.finish().unwrap();
    let host = run_program("host_secure", &host_entries, &vm, &dir.join("h"));
    // The fifth pair has no token: the host drops it.
    assert_eq!(count(&host, "no token"), 1, "{host}");
    assert_eq!(count(&host, "forwarded:"), 4, "{host}");
    let gw = run_program(
        "gateway_secure",
        &entries("gateway_secure"),
        &dir.join("h/port-1.pcap"),
        &dir.join("g"),
    );
    assert_eq!(count(&gw, "forwarded:"), 1, "{gw}");
    assert_eq!(count(&gw, "expired"), 1, "{gw}");
    assert_eq!(count(&gw, "bad token"), 2, "{gw}");
    let left = records(&dir.join("g/port-0.pcap"));
    assert_eq!(left.len(), 1);
    assert_eq!(
        &left[0][26..34],
        &[PUBLIC, dst(0)].concat()[..],
        "leaves with the public address"
    );
}

/// Every form in which a key could be printed: its hex in either case and byte order, and
/// its 8-byte pieces.
fn forms(key: &[u8]) -> Vec<String> {
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let rev: String = key.iter().rev().map(|b| format!("{b:02x}")).collect();
    let mut out = Vec::new();
    for h in [hex, rev] {
        for piece in h.as_bytes().chunks(16) {
            let p = String::from_utf8(piece.to_vec()).unwrap();
            out.push(p.to_ascii_uppercase());
            out.push(p);
        }
    }
    out
}

fn read_hex(path: &Path) -> Vec<u8> {
    let t = std::fs::read_to_string(path).unwrap();
    let t = t.trim().trim_start_matches("0x");
    (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16).unwrap())
        .collect()
}

/// The link key of host A and the gateway, computed here: HKDF-SHA256 of their X25519
/// shared secret (docs/language.md).
fn link_key() -> Vec<u8> {
    let gw: [u8; 32] = read_hex(&root().join("programs/keys/gateway.key"))
        .try_into()
        .unwrap();
    let host: [u8; 32] = read_hex(&root().join("programs/keys/host-a.key"))
        .try_into()
        .unwrap();
    let gw = x25519_dalek::StaticSecret::from(gw);
    let host_pub = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(host));
    let gw_pub = x25519_dalek::PublicKey::from(&gw);
    let shared = gw.diffie_hellman(&host_pub);
    let (lo, hi) = if gw_pub.as_bytes() < host_pub.as_bytes() {
        (gw_pub.to_bytes(), host_pub.to_bytes())
    } else {
        (host_pub.to_bytes(), gw_pub.to_bytes())
    };
    let mut info = b"sluice link key v1".to_vec();
    info.extend_from_slice(&lo);
    info.extend_from_slice(&hi);
    let mut key = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(b"sluice link key"), shared.as_bytes())
        .expand(&info, &mut key)
        .unwrap();
    key.to_vec()
}

/// No output of any path (runs with --trace, every stage `compile` emits, the switch's replies
/// to key_derive, table_dump and stats, errors) shows a private key, the derived link key or
/// the registry's key.
#[test]
fn no_output_shows_a_private_key_or_a_derived_one() {
    let dir = temp_dir("secure-no-keys");
    let mut secrets = forms(&link_key());
    secrets.extend(forms(&read_hex(&root().join("programs/keys/gateway.key"))));
    secrets.extend(forms(&read_hex(&root().join("programs/keys/host-a.key"))));
    secrets.extend(forms(&[
        0x5a, 0xc2, 0xe7, 0xf0, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18, 0x29, 0x3a, 0x4b,
        0x5c,
    ]));
    let mut outputs: Vec<(String, String)> = Vec::new();
    for name in ["host_secure", "gateway_secure"] {
        for (i, extra) in [&["--trace"][..], &["--backend", "jit"][..]]
            .iter()
            .enumerate()
        {
            let mut args = vec![
                "run".to_string(),
                format!("programs/{name}.sluice"),
                "--entries".into(),
                format!("programs/{name}.entries"),
                "--in".into(),
                format!("programs/{name}.pcap"),
                "--out-dir".into(),
                dir.join(format!("{name}-{i}")).display().to_string(),
            ];
            args.extend(extra.iter().map(|s| s.to_string()));
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = run(&a);
            assert_eq!(o.status, 0, "{}", o.stderr);
            outputs.push((format!("run {name} {extra:?}"), o.stdout + &o.stderr));
        }
        for emit in ["ast", "ir", "clif", "asm"] {
            let o = run(&[
                "compile",
                "--emit",
                emit,
                &format!("programs/{name}.sluice"),
            ]);
            outputs.push((
                format!("compile {name} --emit {emit}"),
                o.stdout + &o.stderr,
            ));
        }
    }
    // A running gateway: its replies, and its errors for a key pasted where a file belongs.
    let empty = dir.join("empty.pcap");
    capture(&empty, &[], false);
    let sw = crate::serve::Switch::start_program(
        &dir,
        "programs/gateway_secure.sluice",
        &std::fs::read_to_string(entries_with("gateway_secure", &dir, |_| true, "")).unwrap(),
        &empty,
        &[],
    );
    let gw_key = std::fs::read_to_string(root().join("programs/keys/gateway.key")).unwrap();
    let host_pub = std::fs::read_to_string(root().join("programs/keys/host-a.pub")).unwrap();
    let key_file = root()
        .join("programs/keys/gateway.key")
        .display()
        .to_string();
    // The forms searched for include those the key is written in.
    let written = forms(&read_hex(Path::new(&key_file)));
    assert!(written[..8].iter().all(|f| gw_key
        .to_ascii_lowercase()
        .contains(&f.to_ascii_lowercase())));
    for args in [
        vec![
            "key_derive",
            "link_key",
            "--private",
            &key_file,
            "--peer",
            host_pub.trim(),
        ],
        vec![
            "key_derive",
            "link_key",
            "--private",
            gw_key.trim(),
            "--peer",
            host_pub.trim(),
        ],
        vec![
            "key_derive",
            "pair_key",
            "--private",
            &key_file,
            "--peer",
            host_pub.trim(),
        ],
        vec!["table_dump", "vm_location"],
        vec!["stats"],
    ] {
        let o = sw.ctl(&args);
        outputs.push((format!("ctl {}", args[0]), o.stdout + &o.stderr));
    }
    let replies = outputs.iter().filter(|(w, _)| w.starts_with("ctl")).count();
    assert_eq!(replies, 5);
    assert!(
        outputs
            .iter()
            .any(|(_, t)| t.contains("Key link_key derived for any peer")),
        "the derivation was not answered"
    );
    assert!(
        outputs
            .iter()
            .any(|(_, t)| t.contains("--private takes the name of a file")),
        "the pasted key was not refused"
    );
    // SAFETY: kill(2) on the switch's own pid, which the test has not reaped.
    unsafe { libc::kill(sw.child.id() as i32, libc::SIGTERM) };
    let summary = sw.wait();
    outputs.push(("serve".into(), summary));
    for (what, text) in &outputs {
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "{what} shows key material ({s})"
            );
        }
    }
}
