//! Real captures from other projects (tests/captures/, provenance in its README) through
//! port_dnat: both backends agree byte for byte, every packet is accounted for, and a packet
//! whose checksums were right arrives with right checksums.

use crate::support::*;

const CAPTURES: &[&str] = &[
    "eth-http-le-usec.pcap",
    "eth-dns-le-usec.pcap",
    "eth-http-lo-be-nsec.pcap",
    "eth-http-snaplen96.pcap",
    "eth-ipv4-options.pcap",
    "eth-ipv4-fragments-nfs.pcap",
    "eth-gre-ipv4.pcap",
    "eth-ipip-4in4.pcap",
    "eth-pptp-gre-be-usec.pcap",
    "eth-lan-arp-ipv6-igmp.pcap",
    "eth-vlan-qinq-icmp.pcap",
    "eth-qinq-8021ad-1if.pcapng",
    "pcapng-2if-nsec-usec.pcapng",
    "pcapng-11if-eth-null-rawip.pcapng",
    "sll-tcp-handshake-le-nsec.pcap",
    "rawip-linktype101.pcap",
];

/// Entries that make the real traffic hit: every destination address gets its ports.
fn entries_for(records: &[(u64, u32, u32, Vec<u8>)]) -> String {
    let mut dsts = std::collections::BTreeSet::new();
    for (_, _, _, d) in records {
        if let Ok(p) = etherparse::SlicedPacket::from_ethernet(d) {
            if let Some(etherparse::NetSlice::Ipv4(ip)) = p.net {
                dsts.insert(ip.header().destination());
            }
        }
    }
    let mut s = String::new();
    for (i, d) in dsts.iter().enumerate().take(200) {
        let ip = format!("{}.{}.{}.{}", d[0], d[1], d[2], d[3]);
        s += &format!(
            "table_add dnat to_vm {ip} 0->1023 => 10.9.0.{} 1 1\n",
            i % 250 + 1
        );
        s += &format!(
            "table_add dnat to_vm {ip} 1024->65535 => 10.9.1.{} 2 1\n",
            i % 250 + 1
        );
    }
    s
}

#[test]
fn real_captures_through_port_dnat() {
    for name in CAPTURES {
        let input = root().join("tests/captures").join(name);
        let records = read_pcap(&input);
        let dir = temp_dir(&format!("captures-{name}"));
        let entries = dir.join("e.entries");
        std::fs::write(&entries, entries_for(&records)).unwrap();
        let mut outputs = Vec::new();
        for backend in ["interp", "jit"] {
            let out_dir = dir.join(backend);
            let out = run(&[
                "run",
                "programs/port_dnat.sluice",
                "--entries",
                entries.to_str().unwrap(),
                "--in",
                input.to_str().unwrap(),
                "--out-dir",
                out_dir.to_str().unwrap(),
                "--backend",
                backend,
            ]);
            assert_eq!(out.status, 0, "{name} {backend}: {}", out.stderr);
            let n = records.len();
            assert!(
                out.stdout
                    .contains(&format!("in = forwarded + dropped: {n} = "))
                    && !out.stdout.contains("MISMATCH"),
                "{name}: {}",
                out.stdout
            );
            let mut files = Vec::new();
            for p in 0..=3 {
                let f = out_dir.join(format!("port-{p}.pcap"));
                files.push(std::fs::read(&f).unwrap_or_default());
            }
            outputs.push((out.stdout, files));
        }
        assert_eq!(outputs[0], outputs[1], "{name}: the backends disagree");
        // Checksums that were right on the way in are right on the way out.
        let valid_in: std::collections::HashSet<(u64, u32)> = records
            .iter()
            .filter(|r| r.2 as usize == r.3.len() && check_checksums(&r.3).is_ok())
            .map(|r| (r.0, r.1))
            .collect();
        for p in 0..=3 {
            let f = dir.join("jit").join(format!("port-{p}.pcap"));
            if !f.exists() {
                continue;
            }
            for (sec, nsec, orig, data) in read_pcap(&f) {
                if orig as usize == data.len() && valid_in.contains(&(sec, nsec)) {
                    check_checksums(&data).unwrap_or_else(|e| panic!("{name} port {p}: {e}"));
                }
            }
        }
    }
}
