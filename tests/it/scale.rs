//! Tables at scale through both backends: range groups in both of their forms (segments and
//! arrays) and the classifier, each checked against the interpreter packet by packet and
//! against a brute-force reading of the entries that this file makes itself.

use crate::differential::{differential, gen_packet, Case, Pair, Rng};
use sluice_compiler::interp::Interp;
use sluice_compiler::jit::JitProgram;
use sluice_runtime::datapath::{Pipeline, Worker};
use sluice_runtime::packet::{PacketBuf, PacketMeta, Verdict};
use sluice_runtime::table::Layout;

fn case(program: &str, entries: String) -> Case {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(program);
    let source = std::fs::read_to_string(&path).unwrap();
    let compiled = sluice_compiler::compile(&source).unwrap();
    let mut tables = sluice_compiler::table_set(&compiled.ir).unwrap();
    sluice_runtime::command::load_entries(&entries, "generated", &mut tables).unwrap();
    Case {
        name: program.into(),
        source,
        entries,
        prog: compiled.ir,
        tables,
    }
}

fn csum(data: &[u8]) -> u16 {
    let mut s: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An Ethernet, IPv4 and TCP (6) or UDP (17) packet.
fn packet(src: u32, dst: u32, proto: u8, sport: u16, dport: u16) -> Vec<u8> {
    let mut p = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
    let l4len = if proto == 6 { 20 } else { 8 };
    let mut ip = vec![
        0x45,
        0,
        0,
        (20 + l4len) as u8,
        0,
        1,
        0x40,
        0,
        64,
        proto,
        0,
        0,
    ];
    ip.extend(src.to_be_bytes());
    ip.extend(dst.to_be_bytes());
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend(ip);
    p.extend(sport.to_be_bytes());
    p.extend(dport.to_be_bytes());
    if proto == 6 {
        p.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        p.extend([0, 8, 0, 0]);
    }
    p
}

fn meta() -> PacketMeta {
    PacketMeta {
        ingress_port: 0,
        ts_sec: 1_700_000_000,
        ts_nsec: 0,
    }
}

fn ip(v: u32) -> String {
    std::net::Ipv4Addr::from(v).to_string()
}

/// Runs one packet through a pipeline; the verdict and the bytes.
fn run<P: Pipeline>(p: &P, case: &Case, pkt: &[u8]) -> (Verdict, Vec<u8>) {
    let mut w = p.worker();
    let mut stats = sluice_compiler::stats_for(&case.prog);
    let mut buf = PacketBuf::with_capacity(case.prog.headroom, pkt.len());
    buf.load(case.prog.headroom, pkt, pkt.len() as u32);
    let v = w
        .process(&case.tables, &mut stats, &mut buf, &meta())
        .unwrap();
    (v, buf.data().to_vec())
}

#[test]
fn range_groups_as_segments_and_as_arrays_agree_with_the_ranges() {
    // One address with 600 one-port ranges (more than a group keeps as segments: it takes an
    // array), one with 20 ranges of 100 ports under a catch-all of lower priority (segments).
    let a = 0xcb00_0001u32;
    let b = 0xcb00_0002u32;
    let mut entries = String::new();
    let mut rules: Vec<(u32, u16, u16, u32, u32)> = Vec::new(); // addr, lo, hi, prio, vm
    for i in 0..600u32 {
        let port = 2000 + 3 * i as u16;
        rules.push((a, port, port, 10, 0x0a00_0000 + i + 1));
    }
    for i in 0..20u32 {
        let lo = 1000 + 150 * i as u16;
        rules.push((b, lo, lo + 99, 10, 0x0a01_0000 + i + 1));
    }
    rules.push((b, 0, 65535, 20, 0x0a02_0000));
    for &(addr, lo, hi, prio, vm) in &rules {
        entries += &format!(
            "table_add dnat to_vm {} {lo}->{hi} => {} 1 {prio}\n",
            ip(addr),
            ip(vm)
        );
    }
    let case = case("programs/port_dnat.sluice", entries);
    let t = &case.tables.tables()[case.tables.by_name("dnat").unwrap()];
    assert_eq!(t.layout(), Layout::Range);
    assert_eq!(t.footprint().detail, "2 groups, 1 as arrays");

    let interp = Interp::new(&case.prog);
    let jit = JitProgram::compile(&case.prog, false).unwrap();
    let mut r = Rng::new(7);
    let mut packets = Vec::new();
    for _ in 0..6000 {
        let dst = [a, b, 0xcb00_0003][r.below(3) as usize];
        let dport = (1900 + r.below(2000)) as u16;
        let proto = if r.below(2) == 0 { 6 } else { 17 };
        packets.push((packet(0xc633_6401, dst, proto, 40000, dport), dst, dport));
    }
    // The brute-force answer: the best-priority range containing the port, older first.
    for (pkt, dst, dport) in &packets {
        let want = rules
            .iter()
            .filter(|r| r.0 == *dst && r.1 <= *dport && *dport <= r.2)
            .min_by_key(|r| r.3)
            .map(|r| r.4);
        for (name, (v, out)) in [
            ("interp", run(&interp, &case, pkt)),
            ("JIT", run(&jit, &case, pkt)),
        ] {
            match want {
                Some(vm) => {
                    assert_eq!(v, Verdict::Forward(1), "{name}: {} port {dport}", ip(*dst));
                    assert_eq!(
                        out[30..34],
                        vm.to_be_bytes(),
                        "{name}: {} port {dport}",
                        ip(*dst)
                    );
                }
                None => assert!(
                    matches!(v, Verdict::Drop(_)),
                    "{name}: {} port {dport}",
                    ip(*dst)
                ),
            }
        }
    }
    let pair = Pair {
        reference: &interp,
        checked: &jit,
        names: ("interp", "JIT"),
    };
    differential(
        &case,
        &pair,
        packets.into_iter().map(|(p, _, _)| (p, meta())),
    );
}

/// An ACL rule as this test reads it: prefixes, ranges, protocol (None: any), priority.
struct Rule {
    src: (u32, u32),
    dst: (u32, u32),
    sport: (u16, u16),
    dport: (u16, u16),
    proto: Option<u8>,
    prio: u32,
    permit: Option<u16>,
}

fn mask(len: u32) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len)
    }
}

impl Rule {
    fn matches(&self, s: u32, d: u32, sp: u16, dp: u16, proto: u8) -> bool {
        s & mask(self.src.1) == self.src.0
            && d & mask(self.dst.1) == self.dst.0
            && (self.sport.0..=self.sport.1).contains(&sp)
            && (self.dport.0..=self.dport.1).contains(&dp)
            && self.proto.is_none_or(|p| p == proto)
    }

    fn line(&self) -> String {
        let (p, pm) = self.proto.map_or((0, 0), |p| (p, 255));
        let m = format!(
            "{}/{} {}&&&{} {}->{} {}->{} {p}&&&{pm}",
            ip(self.src.0),
            self.src.1,
            ip(self.dst.0),
            ip(mask(self.dst.1)),
            self.sport.0,
            self.sport.1,
            self.dport.0,
            self.dport.1
        );
        match self.permit {
            Some(out) => format!("table_add acl permit {m} => {out} {}\n", self.prio),
            None => format!("table_add acl deny {m} => {}\n", self.prio),
        }
    }
}

/// Source, destination, ports and protocol of a generated packet.
type Headers = (u32, u32, u16, u16, u8);

#[test]
fn the_classifier_agrees_with_a_scan_of_the_rules_through_both_backends() {
    let mut r = Rng::new(11);
    let nets: Vec<u32> = (0..40).map(|_| (r.next() as u32) & 0xffff_0000).collect();
    let lens = [32, 32, 24, 24, 28, 16, 20, 12];
    let pfx = |r: &mut Rng| {
        let len = lens[r.below(lens.len() as u64) as usize];
        let v =
            (nets[r.below(nets.len() as u64) as usize] | (r.next() as u32 & 0xffff)) & mask(len);
        (v, len)
    };
    let mut rules = Vec::new();
    for prio in 1..=3000u32 {
        let dport = match r.below(4) {
            0 => (0, 65535),
            1 => (1024, 65535),
            2 => {
                let p = [22, 53, 80, 443][r.below(4) as usize];
                (p, p)
            }
            _ => {
                let lo = r.below(60000) as u16;
                (lo, lo + r.below(3000) as u16)
            }
        };
        let sport = if r.below(10) == 0 {
            (1024, 65535)
        } else {
            (0, 65535)
        };
        rules.push(Rule {
            src: pfx(&mut r),
            dst: pfx(&mut r),
            sport,
            dport,
            proto: [Some(6), Some(17), None][r.below(3) as usize],
            prio,
            permit: (r.below(10) < 7).then_some(1 + (prio % 4) as u16),
        });
    }
    let entries: String = rules.iter().map(Rule::line).collect();
    let mut case = case("programs/acl.sluice", entries);
    let acl = case.tables.by_name("acl").unwrap();
    assert_eq!(case.tables.tables()[acl].layout(), Layout::Classifier);

    // Half the packets built inside a random rule, half random headers.
    let mut packets = Vec::new();
    for i in 0..8000 {
        let (s, d, sp, dp, proto) = if i % 2 == 0 {
            let x = &rules[r.below(rules.len() as u64) as usize];
            let s = x.src.0 | (r.next() as u32 & !mask(x.src.1));
            let d = x.dst.0 | (r.next() as u32 & !mask(x.dst.1));
            let sp = x.sport.0 + (r.below(u64::from(x.sport.1 - x.sport.0) + 1) as u16);
            let dp = x.dport.0 + (r.below(u64::from(x.dport.1 - x.dport.0) + 1) as u16);
            (s, d, sp, dp, x.proto.unwrap_or(6))
        } else {
            let proto = if r.below(2) == 0 { 6 } else { 17 };
            (
                r.next() as u32,
                r.next() as u32,
                r.next() as u16,
                r.next() as u16,
                proto,
            )
        };
        packets.push((packet(s, d, proto, sp, dp), (s, d, sp, dp, proto)));
    }
    let check = |case: &Case, rules: &[Rule], packets: &[(Vec<u8>, Headers)]| {
        let interp = Interp::new(&case.prog);
        let jit = JitProgram::compile(&case.prog, false).unwrap();
        let mut hits = 0;
        for (pkt, (s, d, sp, dp, proto)) in packets {
            let want = rules
                .iter()
                .filter(|x| x.matches(*s, *d, *sp, *dp, *proto))
                .min_by_key(|x| x.prio);
            hits += usize::from(want.is_some());
            for (name, (v, _)) in [
                ("interp", run(&interp, case, pkt)),
                ("JIT", run(&jit, case, pkt)),
            ] {
                match want.and_then(|x| x.permit) {
                    Some(out) => assert_eq!(
                        v,
                        Verdict::Forward(out),
                        "{name}: {s:x} {d:x} {sp} {dp} {proto}"
                    ),
                    None => assert!(
                        matches!(v, Verdict::Drop(_)),
                        "{name}: {s:x} {d:x} {sp} {dp} {proto}"
                    ),
                }
            }
        }
        // The traffic exercised both hits and misses.
        assert!(
            hits > packets.len() / 3 && hits < packets.len(),
            "{hits} hits"
        );
        let pair = Pair {
            reference: &interp,
            checked: &jit,
            names: ("interp", "JIT"),
        };
        differential(
            case,
            &pair,
            packets.iter().map(|(p, _)| (p.clone(), meta())),
        );
    };
    check(&case, &rules, &packets);

    // Delete every third rule and add some of higher priority: the answers follow.
    let handles: Vec<_> = case.tables.tables()[acl]
        .entries()
        .map(|e| e.handle)
        .collect();
    let mut kept = Vec::new();
    for (i, (x, h)) in rules.into_iter().zip(handles).enumerate() {
        if i % 3 == 0 {
            sluice_runtime::command::load_entries(
                &format!("table_delete acl {}\n", h.0),
                "deletes",
                &mut case.tables,
            )
            .unwrap();
        } else {
            kept.push(x);
        }
    }
    for prio in 0..1u32 {
        let x = Rule {
            src: (0, 0),
            dst: (0, 0),
            sport: (0, 65535),
            dport: (443, 443),
            proto: Some(6),
            prio,
            permit: Some(9),
        };
        sluice_runtime::command::load_entries(&x.line(), "adds", &mut case.tables).unwrap();
        kept.push(x);
    }
    check(&case, &kept, &packets);
}

/// Batches of 32 through the JIT against the interpreter one packet at a time: the addresses
/// are `base..base + addresses`; a third of the packets are of every other kind (cut,
/// malformed, not IPv4), whose prefetch answers are whatever the parser left.
fn batched_like_the_interpreter(case: &Case, base: u32, addresses: u64) {
    let jit = JitProgram::compile(&case.prog, false).unwrap();
    let dnat = case.tables.by_name("dnat").unwrap();
    assert_eq!(jit.prefetch_table().map(|t| t.index()), Some(dnat));
    assert!(case.tables.tables()[dnat].num_entries() >= sluice_compiler::jit::PREFETCH_ENTRIES);
    let interp = Interp::new(&case.prog);
    let mut r = Rng::new(5);
    let mut packets = Vec::new();
    for i in 0..4000 {
        packets.push(if i % 3 == 2 {
            gen_packet(&mut r)
        } else {
            let dst = base + r.below(addresses + 10) as u32;
            let proto = if r.below(2) == 0 { 6 } else { 17 };
            packet(0xc633_6401, dst, proto, 40000, r.below(65536) as u16)
        });
    }
    let head = case.prog.headroom;
    let mut w = jit.worker();
    let mut stats = sluice_compiler::stats_for(&case.prog);
    let tables = case.tables.detached();
    let mut forwarded = 0;
    for chunk in packets.chunks(32) {
        let mut bufs: Vec<PacketBuf> = chunk
            .iter()
            .map(|p| {
                let mut b = PacketBuf::with_capacity(head, p.len().max(1));
                b.load(head, p, p.len() as u32);
                b
            })
            .collect();
        let metas = vec![meta(); chunk.len()];
        let mut out = vec![Verdict::Drop(0); chunk.len()];
        w.process_batch(&tables, &mut stats, &mut bufs, &metas, &mut out)
            .unwrap();
        for ((p, b), v) in chunk.iter().zip(&bufs).zip(&out) {
            let (want, bytes) = run(&interp, case, p);
            assert_eq!(*v, want, "packet {}", crate::differential::hex(p));
            if let Verdict::Forward(_) = v {
                assert_eq!(b.data(), &bytes[..]);
                forwarded += 1;
            }
        }
    }
    assert!(forwarded > 1000, "{forwarded} forwarded");
    assert!(stats.balanced());
}

#[test]
fn the_prefetch_pass_changes_nothing() {
    // 70 addresses x 1,000 ranges (arrays), past PREFETCH_ENTRIES: every batch of the JIT
    // runs the slot's prefetch function first.
    let mut entries = String::new();
    for a in 0..70u32 {
        for r in 0..1000u32 {
            let lo = 1024 + 64 * r;
            entries += &format!(
                "table_add dnat to_vm {} {lo}->{} => {} {} 10\n",
                ip(0xcb00_0100 + a),
                lo + 63,
                ip(0x0a00_0000 + a * 1000 + r + 1),
                1 + r % 4
            );
        }
    }
    batched_like_the_interpreter(&case("programs/port_dnat.sluice", entries), 0xcb00_0100, 70);
    // 40,000 addresses x 2 ranges (segments), whose hash of addresses passes
    // PREFETCH_HASH_BYTES: the bucket's prefetch function runs first too.
    let mut entries = String::new();
    for a in 0..40_000u32 {
        for (lo, hi) in [(1024, 30000), (30001, 65535)] {
            entries += &format!(
                "table_add dnat to_vm {} {lo}->{hi} => {} 1 10\n",
                ip(0x6440_0000 + a),
                ip(0x0a00_0000 + 2 * a + u32::from(lo > 1024)),
            );
        }
    }
    let case = case("programs/port_dnat.sluice", entries);
    let dnat = &case.tables.tables()[case.tables.by_name("dnat").unwrap()];
    assert!((dnat.view().mask + 1) * 16 >= sluice_compiler::jit::PREFETCH_HASH_BYTES);
    batched_like_the_interpreter(&case, 0x6440_0000, 40_000);
}
