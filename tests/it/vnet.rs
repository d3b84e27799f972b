//! The virtual-network programs (programs/gateway.sluice, host.sluice, vnet.sluice,
//! vnet_auth.sluice): authenticated tunnels, load balancing, statelessness, migration.

use crate::support::*;
use std::path::{Path, PathBuf};

fn csum(b: &[u8]) -> u16 {
    sluice_runtime::checksum::of_bytes(b)
}

/// An Ethernet + IPv4 + UDP packet with right checksums.
fn udp_packet(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, ttl: u8) -> Vec<u8> {
    let data = b"payload!";
    let ulen = 8 + data.len() as u16;
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&ulen.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    let mut ps = src.to_vec();
    ps.extend_from_slice(&dst);
    ps.extend_from_slice(&[0, 17]);
    ps.extend_from_slice(&ulen.to_be_bytes());
    ps.extend_from_slice(&u);
    let c = csum(&ps);
    u[6..8].copy_from_slice(&c.to_be_bytes());
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&(20 + ulen).to_be_bytes());
    h.extend_from_slice(&[0, 1, 0x40, 0, ttl, 17, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    let mut p = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
    p.extend(h);
    p.extend(u);
    p
}

/// Wraps a packet's IPv4 datagram in an outer IPv4 header (protocol `proto`, TTL 64, DF, a
/// right checksum) and then `shim` (a tunnel header), keeping its Ethernet header.
fn tunnel(inner: &[u8], src: [u8; 4], dst: [u8; 4], proto: u8, shim: &[u8]) -> Vec<u8> {
    let dgram = &inner[14..];
    let total = 20 + (shim.len() + dgram.len()) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    let mut p = inner[..14].to_vec();
    p.extend(h);
    p.extend_from_slice(shim);
    p.extend_from_slice(dgram);
    p
}

/// Wraps a packet's IPv4 datagram in an outer IPv4 header with the auth header (protocol 253).
fn auth_tunnel(
    inner: &[u8],
    outer_src: [u8; 4],
    outer_dst: [u8; 4],
    token: u64,
    expiry: u32,
) -> Vec<u8> {
    let mut shim = token.to_be_bytes().to_vec();
    shim.extend_from_slice(&expiry.to_be_bytes());
    shim.extend_from_slice(&[4, 0, 0, 0]);
    tunnel(inner, outer_src, outer_dst, 253, &shim)
}

fn token(secret: &[u8; 16], expiry: u32, vm: [u8; 4]) -> u64 {
    let mut m = expiry.to_be_bytes().to_vec();
    m.extend_from_slice(&vm);
    sluice_runtime::hash::siphash24(secret, &m)
}

fn write_pcap(path: &Path, packets: &[(u32, Vec<u8>)]) {
    let mut out = sluice_runtime::pcap::PcapOut::create(path, 1, false).unwrap();
    for (ts, p) in packets {
        out.write(u64::from(*ts), 0, p.len() as u32, p).unwrap();
    }
    out.finish().unwrap();
}

/// Runs a program on both backends; returns the summary and the output directory (JIT).
fn run_both(program: &str, entries: &Path, input: &Path, dir: &Path) -> (String, PathBuf) {
    let mut outs = Vec::new();
    for backend in ["interp", "jit"] {
        let od = dir.join(backend);
        let r = run(&[
            "run",
            program,
            "--entries",
            entries.to_str().unwrap(),
            "--in",
            input.to_str().unwrap(),
            "--out-dir",
            od.to_str().unwrap(),
            "--backend",
            backend,
        ]);
        assert_eq!(r.status, 0, "{}", r.stderr);
        let files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&od)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        outs.push((r.stdout, files));
    }
    let mut a = outs[0].1.clone();
    let mut b = outs[1].1.clone();
    a.sort();
    b.sort();
    assert_eq!(outs[0].0, outs[1].0, "summaries differ");
    assert_eq!(a, b, "outputs differ between the backends");
    (outs.remove(1).0, dir.join("jit"))
}

const SECRET: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
const EXPIRY: u32 = 1_800_000_000;

#[test]
fn authenticated_tunnels_accept_only_valid_tokens() {
    let dir = temp_dir("vnet-auth");
    let (host_b, host_a) = ([192, 0, 2, 12], [192, 0, 2, 11]);
    let vm1 = [10, 0, 0, 1];
    let inner = udp_packet([10, 0, 0, 2], vm1, 1234, 80, 64);
    let good = token(&SECRET, EXPIRY, vm1);
    let mut other_secret = SECRET;
    other_secret[0] ^= 1;
    // (timestamp, packet, expected verdict: Some(port) or the drop reason)
    let mut cases: Vec<(u32, Vec<u8>, &str)> = vec![
        (
            EXPIRY - 100,
            auth_tunnel(&inner, host_b, host_a, good, EXPIRY),
            "port 3",
        ),
        (
            EXPIRY,
            auth_tunnel(&inner, host_b, host_a, good, EXPIRY),
            "port 3",
        ),
        (
            EXPIRY + 1,
            auth_tunnel(&inner, host_b, host_a, good, EXPIRY),
            "auth: expired",
        ),
        (
            EXPIRY - 100,
            auth_tunnel(
                &inner,
                host_b,
                host_a,
                token(&SECRET, EXPIRY, [10, 0, 0, 9]),
                EXPIRY,
            ),
            "auth: bad token",
        ),
        (
            EXPIRY - 100,
            auth_tunnel(
                &inner,
                host_b,
                host_a,
                token(&other_secret, EXPIRY, vm1),
                EXPIRY,
            ),
            "auth: bad token",
        ),
    ];
    // A VM that does not run here (10.0.0.2 is tunnelled on): accepted token, then dropped.
    let to_vm2 = udp_packet([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 64);
    cases.push((
        EXPIRY - 100,
        auth_tunnel(
            &to_vm2,
            host_b,
            host_a,
            token(&SECRET, EXPIRY, [10, 0, 0, 2]),
            EXPIRY,
        ),
        "auth: not hosted here",
    ));
    // A malformed auth header (next protocol not IPv4).
    let mut bad = auth_tunnel(&inner, host_b, host_a, good, EXPIRY);
    bad[14 + 20 + 12] = 6;
    cases.push((EXPIRY - 100, bad, "auth: malformed header"));
    // Any one bit of the token or of the expiry flipped.
    for bit in 0..96 {
        let mut p = auth_tunnel(&inner, host_b, host_a, good, EXPIRY);
        let (byte, shift) = (14 + 20 + bit / 8, bit % 8);
        p[byte] ^= 1 << shift;
        let want = if bit >= 64 {
            // A later expiry with the old token is a bad token; an earlier one may also be
            // expired, which is checked first.
            let e = u32::from_be_bytes([p[42], p[43], p[44], p[45]]);
            if EXPIRY - 100 > e {
                "auth: expired"
            } else {
                "auth: bad token"
            }
        } else {
            "auth: bad token"
        };
        cases.push((EXPIRY - 100, p, want));
    }
    let input = dir.join("in.pcap");
    write_pcap(
        &input,
        &cases
            .iter()
            .map(|(t, p, _)| (*t, p.clone()))
            .collect::<Vec<_>>(),
    );
    let (summary, out) = run_both(
        "programs/vnet_auth.sluice",
        &root().join("programs/vnet_auth.entries"),
        &input,
        &dir,
    );
    let accepted = cases.iter().filter(|c| c.2 == "port 3").count();
    let delivered = read_pcap(&out.join("port-3.pcap"));
    assert_eq!(delivered.len(), accepted, "{summary}");
    for (_, _, _, d) in &delivered {
        // Decapsulated: the inner packet, unchanged, with the tunnel's Ethernet header.
        assert_eq!(&d[14..], &inner[14..]);
        check_checksums(d).unwrap();
    }
    for reason in [
        "auth: expired",
        "auth: bad token",
        "auth: not hosted here",
        "auth: malformed header",
    ] {
        let n = cases.iter().filter(|c| c.2 == reason).count();
        let line = format!("  {reason:<28} {n}\n");
        assert!(summary.contains(&line), "expected {line:?} in\n{summary}");
    }
}

/// A gateway entries file with one group of `n` VMs behind port 80.
fn lb_entries(dir: &Path, n: u16) -> PathBuf {
    let mut s = String::from("table_add dnat to_group 203.0.113.10 80->80 => 1 ");
    s += &format!("{n} 10\n");
    for m in 0..n {
        s += &format!("table_add lb_members to_vm 1 {m} => 10.0.1.{}\n", m + 1);
        s += &format!(
            "table_add vm_location deliver 10.0.1.{} => {}\n",
            m + 1,
            m + 1
        );
    }
    let p = dir.join("lb.entries");
    std::fs::write(&p, s).unwrap();
    p
}

#[test]
fn load_balancing_is_stable_per_flow_and_fair() {
    let dir = temp_dir("gateway-lb");
    let n = 5u16;
    let entries = lb_entries(&dir, n);
    // 10,000 flows, each sent twice.
    let mut packets = Vec::new();
    for f in 0..10_000u32 {
        let src = [198, 51, (f >> 8) as u8, f as u8];
        let p = udp_packet(src, [203, 0, 113, 10], 1024 + (f % 50_000) as u16, 80, 64);
        packets.push((f, p.clone()));
        packets.push((f, p));
    }
    let input = dir.join("in.pcap");
    write_pcap(&input, &packets);
    let (summary, out) = run_both("programs/gateway.sluice", &entries, &input, &dir);
    assert!(
        summary.contains("in = forwarded + dropped: 20000 = 20000 + 0"),
        "{summary}"
    );
    let mut per_vm = vec![0usize; n as usize];
    let mut flow_port = std::collections::HashMap::new();
    for port in 1..=n {
        for (_, _, _, d) in read_pcap(&out.join(format!("port-{port}.pcap"))) {
            assert_eq!(&d[30..34], &[10, 0, 1, port as u8], "the member's address");
            let flow = (
                d[26],
                d[27],
                d[28],
                d[29],
                u16::from_be_bytes([d[34], d[35]]),
            );
            // Both packets of a flow go to the same VM.
            assert_eq!(
                *flow_port.entry(flow).or_insert(port),
                port,
                "flow {flow:?} moved"
            );
            per_vm[port as usize - 1] += 1;
        }
    }
    let fair = 20_000 / n as usize;
    for (i, c) in per_vm.iter().enumerate() {
        assert!(
            *c >= fair / 2,
            "VM {} got {c} of 20000 packets: {per_vm:?}",
            i + 1
        );
    }
}

#[test]
fn a_group_of_size_zero_is_refused() {
    let dir = temp_dir("gateway-zero");
    let e = dir.join("zero.entries");
    std::fs::write(
        &e,
        "table_add dnat to_group 203.0.113.10 80->80 => 1 0 10\n",
    )
    .unwrap();
    let r = run(&[
        "run",
        "programs/gateway.sluice",
        "--entries",
        e.to_str().unwrap(),
        "--in",
        "programs/port_dnat.pcap",
        "--out-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(r.status, 2);
    assert!(
        r.stderr.contains("zero.entries:1:") && r.stderr.contains("nonzero"),
        "{}",
        r.stderr
    );
}

#[test]
fn two_gateways_with_the_same_entries_are_one() {
    let dir = temp_dir("gateway-split");
    let entries = root().join("programs/gateway.entries");
    let mut packets = Vec::new();
    for f in 0..400u32 {
        let port = [8000, 8150, 80, 9999][(f % 4) as usize];
        packets.push((
            f,
            udp_packet(
                [198, 51, 100, (f % 200) as u8],
                [203, 0, 113, 10],
                2000 + f as u16,
                port,
                64,
            ),
        ));
        // Replies from the VMs, through their hosts' tunnels.
        let reply = udp_packet(
            [10, 0, 0, 1],
            [198, 51, 100, (f % 200) as u8],
            8000 + (f % 100) as u16,
            2000,
            64,
        );
        let mut t = reply[..14].to_vec();
        let dgram = &reply[14..];
        let mut h = vec![0x45, 0];
        h.extend_from_slice(&(20 + dgram.len() as u16).to_be_bytes());
        h.extend_from_slice(&[0, 0, 0x40, 0, 64, 4, 0, 0, 192, 0, 2, 11, 192, 0, 2, 1]);
        let c = csum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        t.extend(h);
        t.extend_from_slice(dgram);
        packets.push((f, t));
    }
    let whole = dir.join("whole.pcap");
    let odd = dir.join("odd.pcap");
    let even = dir.join("even.pcap");
    write_pcap(&whole, &packets);
    write_pcap(
        &odd,
        &packets.iter().step_by(2).cloned().collect::<Vec<_>>(),
    );
    write_pcap(
        &even,
        &packets
            .iter()
            .skip(1)
            .step_by(2)
            .cloned()
            .collect::<Vec<_>>(),
    );
    let (_, w) = run_both("programs/gateway.sluice", &entries, &whole, &dir.join("w"));
    let (_, a) = run_both("programs/gateway.sluice", &entries, &odd, &dir.join("a"));
    let (_, b) = run_both("programs/gateway.sluice", &entries, &even, &dir.join("b"));
    let mut n = 0;
    for port in 0..=2 {
        let f = format!("port-{port}.pcap");
        let read = |p: PathBuf| {
            if p.exists() {
                read_pcap(&p)
            } else {
                Vec::new()
            }
        };
        let mut whole = read(w.join(&f));
        let mut split = read(a.join(&f));
        split.extend(read(b.join(&f)));
        whole.sort();
        split.sort();
        n += whole.len();
        assert_eq!(whole, split, "{f}");
    }
    assert!(n > 500, "only {n} packets left the gateway");
}

#[test]
fn host_translates_ports_both_ways() {
    let dir = temp_dir("host");
    // From the gateway: IP-in-IP to this host (192.0.2.11), for VM 10.0.0.1, port 8005.
    let inbound = udp_packet([198, 51, 100, 7], [10, 0, 0, 1], 40000, 8005, 64);
    let t = tunnel(&inbound, [192, 0, 2, 1], [192, 0, 2, 11], 4, &[]);
    // The VM's reply from port 85.
    let reply = udp_packet([10, 0, 0, 1], [198, 51, 100, 7], 85, 40000, 64);
    let input = dir.join("in.pcap");
    write_pcap(&input, &[(1, t), (2, reply)]);
    let (summary, out) = run_both(
        "programs/host.sluice",
        &root().join("programs/host.entries"),
        &input,
        &dir,
    );
    assert!(
        summary.contains("in = forwarded + dropped: 2 = 2 + 0"),
        "{summary}"
    );
    let local = read_pcap(&out.join("port-3.pcap"));
    assert_eq!(local.len(), 1);
    let d = &local[0].3;
    assert_eq!(
        u16::from_be_bytes([d[36], d[37]]),
        85,
        "8005 + 57616 = 85 (mod 2^16)"
    );
    assert_eq!(&d[30..34], &[10, 0, 0, 1]);
    check_checksums(d).unwrap();
    let up = read_pcap(&out.join("port-1.pcap"));
    assert_eq!(up.len(), 1);
    let d = &up[0].3;
    // IP-in-IP from the host to the gateway, the VM's source port translated back.
    assert_eq!(
        (d[23], &d[26..30], &d[30..34]),
        (4, &[192, 0, 2, 11][..], &[192, 0, 2, 1][..])
    );
    assert_eq!(u16::from_be_bytes([d[54], d[55]]), 8005);
    let mut inner = d[..14].to_vec();
    inner.extend_from_slice(&d[34..]);
    check_checksums(&inner).unwrap();
    let outer = etherparse::Ipv4HeaderSlice::from_slice(&d[14..]).unwrap();
    assert_eq!(
        outer.to_header().calc_header_checksum(),
        outer.header_checksum()
    );
}

#[test]
fn port_blocks_keys_a_table_on_a_computed_value() {
    let dir = temp_dir("port-blocks");
    let ports = [
        (7999u16, None),
        (8000, Some(1u16)),
        (8063, Some(1)),
        (8064, Some(2)),
        (8127, Some(2)),
        (8128, None),
        (53, Some(3)),
    ];
    let packets: Vec<(u32, Vec<u8>)> = ports
        .iter()
        .enumerate()
        .map(|(i, (p, _))| {
            (
                i as u32,
                udp_packet([198, 51, 100, 7], [203, 0, 113, 10], 4000, *p, 64),
            )
        })
        .collect();
    let input = dir.join("in.pcap");
    write_pcap(&input, &packets);
    let (summary, out) = run_both(
        "programs/port_blocks.sluice",
        &root().join("programs/port_blocks.entries"),
        &input,
        &dir,
    );
    for vm in 1..=3u16 {
        let want: Vec<u16> = ports
            .iter()
            .filter(|(_, v)| *v == Some(vm))
            .map(|(p, _)| *p)
            .collect();
        let got: Vec<u16> = read_pcap(&out.join(format!("port-{vm}.pcap")))
            .iter()
            .map(|(_, _, _, d)| {
                assert_eq!(&d[30..34], &[10, 0, 0, vm as u8]);
                check_checksums(d).unwrap();
                u16::from_be_bytes([d[36], d[37]])
            })
            .collect();
        assert_eq!(got, want, "VM {vm}");
    }
    assert!(
        summary.contains("snat miss                    2"),
        "{summary}"
    );
}

#[test]
fn secrets_never_show() {
    // The secret of vnet_auth.entries, in the forms it could leak in.
    let forms = [
        "000102030405060708090a0b0c0d0e0f",
        "0x000102030405060708090a0b0c0d0e0f",
    ];
    let dir = temp_dir("secrets");
    let trace = run(&[
        "run",
        "programs/vnet_auth.sluice",
        "--entries",
        "programs/vnet_auth.entries",
        "--in",
        "programs/vnet_auth.pcap",
        "--out-dir",
        dir.to_str().unwrap(),
        "--trace",
    ]);
    assert_eq!(trace.status, 0, "{}", trace.stderr);
    for emit in ["ir", "clif", "asm"] {
        let out = run(&["compile", "programs/vnet_auth.sluice", "--emit", emit]);
        assert_eq!(out.status, 0);
        for f in forms {
            assert!(!out.stdout.contains(f), "--emit {emit} shows the secret");
        }
    }
    for f in forms {
        assert!(
            !trace.stdout.contains(f) && !trace.stderr.contains(f),
            "the trace shows the secret"
        );
    }
}

#[test]
fn tunnel_packets_for_a_vm_pass_through_unchanged() {
    // A tunnel packet addressed to a VM (not to one of this host's tunnel addresses) is not
    // decapsulated: it is delivered as it came, its GRE or auth header still after the IPv4
    // header it arrived behind.
    let dir = temp_dir("transit");
    let inner = udp_packet([10, 0, 0, 9], [10, 0, 0, 7], 1234, 80, 64);
    // GRE (protocol 47) without checksum, key or sequence, carrying IPv4.
    let gre = tunnel(&inner, [192, 0, 2, 20], [10, 0, 0, 1], 47, &[0, 0, 8, 0]);
    let auth = auth_tunnel(&inner, [192, 0, 2, 20], [10, 0, 0, 1], 0x1122, 7);
    for (program, packet) in [("vnet", &gre), ("vnet_auth", &auth), ("vnet_auth", &gre)] {
        let sub = dir.join(format!("{program}-{}", packet[23]));
        std::fs::create_dir_all(&sub).unwrap();
        let input = sub.join("in.pcap");
        write_pcap(&input, &[(1, packet.clone())]);
        let (summary, out) = run_both(
            &format!("programs/{program}.sluice"),
            &root().join(format!("programs/{program}.entries")),
            &input,
            &sub,
        );
        assert!(
            summary.contains("in = forwarded + dropped: 1 = 1 + 0"),
            "{program}: {summary}"
        );
        let got = read_pcap(&out.join("port-3.pcap"));
        assert_eq!(got.len(), 1, "{program}");
        assert_eq!(got[0].3, *packet, "{program}: protocol {}", packet[23]);
    }
}

#[test]
fn tunnel_programs_get_a_deparser_per_layout() {
    // With the parsed headers listed in the order the parser extracts them, the JIT knows
    // the layouts a packet can leave with (a push, a pop) and generates a deparser for each;
    // listing a parsed header out of order (as these programs once did with GRE) loses that.
    // A program that never pushes or pops needs none.
    for (name, at_least) in [
        ("gateway", 10),
        ("vnet", 10),
        ("vnet_auth", 20),
        ("host", 6),
        ("port_dnat", 0),
    ] {
        let case = crate::differential::load_case(&root().join(format!("programs/{name}.sluice")));
        let jit = sluice_compiler::jit::JitProgram::compile(&case.prog, false).unwrap();
        if at_least == 0 {
            assert_eq!(jit.layout_deparsers, 0, "{name}");
        } else {
            assert!(
                jit.layout_deparsers >= at_least,
                "{name}: {} layouts with a deparser of their own",
                jit.layout_deparsers
            );
        }
    }
}
