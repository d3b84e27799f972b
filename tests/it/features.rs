//! tests/programs/features.sluice on packets built here: each construct's effect checked on
//! the output bytes with an independent parser, on both backends, and the trace snapshotted.

use crate::support::*;

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, ttl: u8, df: bool, payload: &[u8]) -> Vec<u8> {
    let total = 20 + payload.len() as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34, if df { 0x40 } else { 0 }, 0, ttl, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = sluice_runtime::checksum::of_bytes(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let len = 8 + data.len() as u16;
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    let mut ps = src.to_vec();
    ps.extend_from_slice(&dst);
    ps.extend_from_slice(&[0, 17]);
    ps.extend_from_slice(&len.to_be_bytes());
    ps.extend_from_slice(&u);
    let c = sluice_runtime::checksum::of_bytes(&ps);
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

fn eth(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    p.extend_from_slice(&ether_type.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn capture(dir: &std::path::Path) -> std::path::PathBuf {
    let c = [198, 51, 100, 7];
    let packets = [
        // 1: select by mask -> kind 1; set_port wraps 1000 + 65535 to 999.
        eth(
            0x0800,
            &ipv4(
                c,
                [10, 0, 0, 5],
                17,
                64,
                true,
                &udp(c, [10, 0, 0, 5], 5000, 1000, b"abc"),
            ),
        ),
        // 2: select by range -> kind 2; encap pushes an outer IPv4 header.
        eth(
            0x0800,
            &ipv4(
                c,
                [10, 0, 1, 50],
                17,
                64,
                true,
                &udp(c, [10, 0, 1, 50], 5000, 53, b"q"),
            ),
        ),
        // 3: outside the range: UDP not parsed, still encapsulated (lpm 10.0.1.0/24), no DF.
        eth(
            0x0800,
            &ipv4(
                c,
                [10, 0, 1, 200],
                17,
                9,
                false,
                &udp(c, [10, 0, 1, 200], 1, 2, b""),
            ),
        ),
        // 4: IP-in-IP to an unknown address: the outer header is popped, port 3.
        eth(
            0x0800,
            &ipv4(
                [1, 2, 3, 4],
                [172, 16, 0, 1],
                4,
                64,
                false,
                &ipv4(
                    c,
                    [10, 9, 9, 9],
                    17,
                    33,
                    false,
                    &udp(c, [10, 9, 9, 9], 7, 8, b"in"),
                ),
            ),
        ),
        // 5: TTL 1.
        eth(
            0x0800,
            &ipv4(
                c,
                [10, 0, 0, 5],
                17,
                1,
                false,
                &udp(c, [10, 0, 0, 5], 1, 2, b""),
            ),
        ),
        // 6: ARP: the parser rejects it.
        eth(0x0806, &[0u8; 28]),
        // 7: cut inside the IPv4 header.
        eth(0x0800, &[0x45, 0, 0, 20]),
    ];
    let path = dir.join("in.pcap");
    let mut out = sluice_runtime::pcap::PcapOut::create(&path, 1, false).unwrap();
    for (i, p) in packets.iter().enumerate() {
        out.write(1_700_000_000, i as u32, p.len() as u32, p)
            .unwrap();
    }
    out.finish().unwrap();
    path
}

#[test]
fn every_construct_does_what_the_language_reference_says() {
    let dir = temp_dir("features");
    let input = capture(&dir);
    let mut summaries = Vec::new();
    let mut bytes = Vec::new();
    for backend in ["interp", "jit"] {
        let out_dir = dir.join(backend);
        let out = run(&[
            "run",
            "tests/programs/features.sluice",
            "--in",
            input.to_str().unwrap(),
            "--out-dir",
            out_dir.to_str().unwrap(),
            "--ingress-port",
            "3",
            "--backend",
            backend,
        ]);
        assert_eq!(out.status, 0, "{}", out.stderr);
        summaries.push(out.stdout);
        let files: Vec<Vec<u8>> = (1..=3)
            .map(|p| std::fs::read(out_dir.join(format!("port-{p}.pcap"))).unwrap())
            .collect();
        bytes.push(files);
    }
    assert_eq!(summaries[0], summaries[1]);
    assert_eq!(bytes[0], bytes[1], "the backends disagree");
    let s = &summaries[0];
    for line in [
        "ttl expired                  1",
        "parser: reject               1",
        "parser: truncated            1",
    ] {
        assert!(s.contains(line), "{s}");
    }
    let out = dir.join("jit");

    // Port 1: the set_port arm.
    let p1 = read_pcap(&out.join("port-1.pcap"));
    assert_eq!(p1.len(), 1);
    let d = &p1[0].3;
    check_checksums(d).unwrap();
    let ip = etherparse::Ipv4HeaderSlice::from_slice(&d[14..]).unwrap();
    assert_eq!(ip.ttl(), 63);
    assert_eq!(ip.identification(), d.len() as u16, "std.packet_length");
    assert_eq!(
        ip.dcp().value() << 2 | ip.ecn().value(),
        12,
        "std.ingress_port * 4"
    );
    assert_eq!(
        u16::from_be_bytes([d[36], d[37]]),
        999,
        "1000 + 65535 wraps at 16 bits"
    );

    // Port 2: pushed outer header with a checksum computed from scratch.
    let p2 = read_pcap(&out.join("port-2.pcap"));
    assert_eq!(p2.len(), 2);
    for (i, (_, _, orig, d)) in p2.iter().enumerate() {
        let outer = etherparse::Ipv4HeaderSlice::from_slice(&d[14..]).unwrap();
        let inner = etherparse::Ipv4HeaderSlice::from_slice(&d[34..]).unwrap();
        assert_eq!(
            outer.to_header().calc_header_checksum(),
            outer.header_checksum(),
            "outer checksum"
        );
        assert_eq!(
            inner.to_header().calc_header_checksum(),
            inner.header_checksum(),
            "inner checksum"
        );
        assert_eq!(outer.protocol().0, 4);
        assert_eq!(
            (outer.source(), outer.destination()),
            ([192, 0, 2, 1], [192, 0, 2, 2])
        );
        assert_eq!(outer.total_len(), inner.total_len() + 20);
        assert_eq!(
            outer.dont_fragment(),
            i == 0,
            "DF copied from the inner header"
        );
        assert_eq!(outer.ttl(), 64);
        assert_eq!(outer.identification(), 2, "std.egress_port");
        assert_eq!(inner.ttl(), if i == 0 { 63 } else { 8 });
        assert_eq!(*orig as usize, d.len());
    }
    // The inner packet, without the outer header, still has right checksums (UDP too).
    let d = &p2[0].3;
    let mut inner_only = d[..14].to_vec();
    inner_only.extend_from_slice(&d[34..]);
    check_checksums(&inner_only).unwrap();

    // Port 3: the outer header popped; the inner packet is carried unchanged.
    let p3 = read_pcap(&out.join("port-3.pcap"));
    assert_eq!(p3.len(), 1);
    let d = &p3[0].3;
    assert_eq!(d.len(), 14 + 20 + 8 + 2);
    let inner = etherparse::Ipv4HeaderSlice::from_slice(&d[14..]).unwrap();
    assert_eq!(inner.destination(), [10, 9, 9, 9]);
    assert_eq!(inner.ttl(), 33);
    check_checksums(d).unwrap();

    let trace = run(&[
        "run",
        "tests/programs/features.sluice",
        "--in",
        input.to_str().unwrap(),
        "--out-dir",
        dir.join("trace").to_str().unwrap(),
        "--ingress-port",
        "3",
        "--trace",
    ]);
    insta::assert_snapshot!(trace.stdout);
}

#[test]
fn operators_wrap_at_the_destination_width() {
    let dir = temp_dir("ops");
    let path = dir.join("in.pcap");
    // The packet's results header holds the operands: x = 200 (add8), y = 100 (sub8),
    // not4 = 5, odd12 = 0xfff, odd4 = 0.
    let mut results = [0u8; 16];
    results[0] = 200;
    results[1] = 100;
    results[9] = 0x50; // not4 = 5, narrow = 0
    results[13] = 0xff; // odd12 = 0xfff
    results[14] = 0xf0; // odd4 = 0
    let mut p2 = eth(0x88b5, &[]);
    p2.extend_from_slice(&results);
    let mut out = sluice_runtime::pcap::PcapOut::create(&path, 1, false).unwrap();
    out.write(1, 0, p2.len() as u32, &p2).unwrap();
    out.finish().unwrap();
    for backend in ["interp", "jit"] {
        let od = dir.join(backend);
        let r = run(&[
            "run",
            "tests/programs/ops.sluice",
            "--in",
            path.to_str().unwrap(),
            "--out-dir",
            od.to_str().unwrap(),
            "--backend",
            backend,
        ]);
        assert_eq!(r.status, 0, "{}", r.stderr);
        let got = &read_pcap(&od.join("port-1.pcap"))[0].3[14..];
        let expected: [u8; 16] = [
            44, 156, 88, 0x40, 0xec, 0xac, 200, 25, 0,    // add..shl_wide
            0xa8, // not4 = 0xa, narrow = 0x8
            0, 200, // widen
            1,   // cmp
            0x00, 0x0f, // odd12 = 0x000, odd4 = 0xf
            0,
        ];
        assert_eq!(got, &expected[..], "{backend}");
    }
}

#[test]
fn a_parser_loop_stops_at_its_limit() {
    // edge.sluice allows two VLAN tags (state parse_vlan limit 2): a third is dropped.
    let dir = temp_dir("loop-limit");
    let path = dir.join("in.pcap");
    let mut p = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    for _ in 0..3 {
        p.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
    }
    p.extend_from_slice(&[0x08, 0x00]);
    p.extend_from_slice(&ipv4([1, 2, 3, 4], [10, 0, 0, 1], 17, 64, false, &[0; 8]));
    let mut two = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    for _ in 0..2 {
        two.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
    }
    two.extend_from_slice(&[0x08, 0x00]);
    two.extend_from_slice(&ipv4([1, 2, 3, 4], [10, 0, 0, 1], 17, 64, false, &[0; 8]));
    let mut out = sluice_runtime::pcap::PcapOut::create(&path, 1, false).unwrap();
    out.write(1, 0, p.len() as u32, &p).unwrap();
    out.write(1, 1, two.len() as u32, &two).unwrap();
    out.finish().unwrap();
    for backend in ["interp", "jit"] {
        let r = run(&[
            "run",
            "tests/programs/edge.sluice",
            "--in",
            path.to_str().unwrap(),
            "--out-dir",
            dir.join(backend).to_str().unwrap(),
            "--backend",
            backend,
        ]);
        assert_eq!(r.status, 0, "{}", r.stderr);
        assert!(
            r.stdout.contains("parser: loop limit           1"),
            "{backend}: {}",
            r.stdout
        );
        assert!(
            !r.stdout.contains("parser: loop limit           2"),
            "{}",
            r.stdout
        );
    }
}
