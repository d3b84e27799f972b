//! Differential test: the JIT against the reference interpreter on every program under
//! programs/ and tests/programs/, over generated packets (valid ones, each cut at every byte,
//! random bytes, wrong versions and IHLs, IPv4 options, fragments, tunnels, VLAN stacks). Output
//! bytes, verdicts and every counter must be equal. A failure prints a reproducer.

use sluice_compiler::interp::Interp;
use sluice_compiler::jit::JitProgram;
use sluice_runtime::datapath::{Pipeline, Worker};
use sluice_runtime::packet::{PacketBuf, PacketMeta};
use sluice_runtime::stats::Stats;
use sluice_runtime::table::TableSet;

/// A small deterministic PRNG (xorshift64*), so that failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545f4914f6cdd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn csum(data: &[u8]) -> u16 {
    sluice_runtime::checksum::of_bytes(data)
}

/// A plausible packet: Ethernet, maybe VLAN tags, IPv4 (maybe options, fragments, odd
/// versions and IHLs), then TCP, UDP, GRE, IP-in-IP, ICMP or junk.
pub fn gen_packet(r: &mut Rng) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&[0x02, 0, 0, 0, 0, r.below(4) as u8, 0x02, 0, 0, 0, 0, 1]);
    for _ in 0..r.below(4).saturating_sub(1) {
        p.extend_from_slice(&[0x81, 0x00]);
        p.extend_from_slice(&(r.below(200) as u16 | (r.below(8) as u16) << 13).to_be_bytes());
    }
    let et: u16 = match r.below(10) {
        0 => 0x86dd,
        1 => 0x0806,
        2 => r.next() as u16,
        _ => 0x0800,
    };
    p.extend_from_slice(&et.to_be_bytes());
    if et != 0x0800 {
        let n = r.below(60) as usize;
        p.extend(r.bytes(n));
        return p;
    }
    ipv4_packet(r, &mut p, 0);
    p
}

fn ipv4_packet(r: &mut Rng, p: &mut Vec<u8>, depth: u32) {
    let opt_words = if r.below(5) == 0 {
        r.below(11) as usize
    } else {
        0
    };
    let proto: u8 = match r.below(12) {
        0..=3 => 6,
        4..=6 => 17,
        7 if depth == 0 => 47,
        8 if depth == 0 => 4,
        9 => 1,
        _ => r.next() as u8,
    };
    let mut l4 = Vec::new();
    let sport = [1500u16, 53, 999, 40000, 1000, 2000, r.next() as u16][r.below(7) as usize];
    let dport = [8080u16, 8085, 53, 7777, 80, 8150, r.next() as u16][r.below(7) as usize];
    match proto {
        6 => {
            l4.extend_from_slice(&sport.to_be_bytes());
            l4.extend_from_slice(&dport.to_be_bytes());
            l4.extend(r.bytes(8));
            l4.push(0x50);
            l4.push(r.next() as u8);
            l4.extend(r.bytes(6));
        }
        17 => {
            l4.extend_from_slice(&sport.to_be_bytes());
            l4.extend_from_slice(&dport.to_be_bytes());
            l4.extend_from_slice(&[0, 0, 0, 0]);
            if dport == 7777 {
                l4.extend(r.bytes(26));
            }
        }
        47 => {
            let fv: u16 = if r.below(4) == 0 { r.next() as u16 } else { 0 };
            l4.extend_from_slice(&fv.to_be_bytes());
            l4.extend_from_slice(&[0x08, 0x00]);
            ipv4_packet(r, &mut l4, depth + 1);
        }
        4 => ipv4_packet(r, &mut l4, depth + 1),
        _ => {}
    }
    let n = r.below(40) as usize;
    l4.extend(r.bytes(n));
    if proto == 17 && l4.len() >= 8 {
        let len = l4.len() as u16;
        l4[4..6].copy_from_slice(&len.to_be_bytes());
    }
    let version = if r.below(30) == 0 {
        r.below(16) as u8
    } else {
        4
    };
    let ihl = if r.below(30) == 0 {
        r.below(16) as u8
    } else {
        5 + opt_words as u8
    };
    let frag: u16 = match r.below(10) {
        0 => 0x2000,
        1 => r.below(0x2000) as u16 | if r.below(2) == 0 { 0x2000 } else { 0 },
        2 => 0x4000,
        _ => 0,
    };
    let dst = match r.below(7) {
        0..=3 => [10, 0, 0, 1 + r.below(8) as u8],
        4 => [172, 16, 0, 1],
        5 => [203, 0, 113, 10],
        _ => [r.next() as u8, r.next() as u8, 0, 1],
    };
    let src = match r.below(5) {
        0 => [10, 1, r.next() as u8, 1],
        4 => [10, 0, 0, 1 + r.below(3) as u8],
        1 => [10, r.next() as u8, 0, 1],
        2 => [192, 168, 0, r.next() as u8],
        _ => [r.next() as u8, 2, 3, 4],
    };
    let ttl = [0u8, 1, 2, 64, 40, 255][r.below(6) as usize];
    let dscp = if r.below(3) == 0 { 40 } else { 0 };
    let total = (20 + opt_words * 4 + l4.len()) as u16;
    let mut h = vec![(version << 4) | (ihl & 15), dscp];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&(r.next() as u16).to_be_bytes());
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[ttl, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend(r.bytes(opt_words * 4));
    let c = csum(&h);
    // Sometimes a wrong header checksum, as offloading NICs leave them.
    let c = if r.below(8) == 0 { c ^ 0x1234 } else { c };
    h[10..12].copy_from_slice(&c.to_be_bytes());
    // TCP/UDP checksums: right, wrong or (UDP) zero.
    let off = match proto {
        6 if l4.len() >= 18 => Some(16),
        17 if l4.len() >= 8 => Some(6),
        _ => None,
    };
    if let Some(o) = off {
        let mut ps = Vec::new();
        ps.extend_from_slice(&src);
        ps.extend_from_slice(&dst);
        ps.extend_from_slice(&[0, proto]);
        ps.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        ps.extend_from_slice(&l4);
        let c = match r.below(6) {
            0 => 0,
            1 => r.next() as u16,
            _ => csum(&ps),
        };
        l4[o..o + 2].copy_from_slice(&c.to_be_bytes());
    }
    p.extend(h);
    p.extend(l4);
}

/// One program with its entries, ready for both backends.
pub struct Case {
    pub name: String,
    pub source: String,
    pub entries: String,
    pub prog: sluice_compiler::ir::Program,
    pub tables: TableSet,
}

pub fn load_case(program: &std::path::Path) -> Case {
    let source = std::fs::read_to_string(program).unwrap();
    let compiled = sluice_compiler::compile(&source)
        .unwrap_or_else(|e| panic!("{}: {:?}", program.display(), e.diagnostics));
    let mut tables = sluice_compiler::table_set(&compiled.ir).unwrap();
    let entries_path = program.with_extension("entries");
    let entries = std::fs::read_to_string(&entries_path).unwrap_or_default();
    sluice_runtime::command::load_entries(
        &entries,
        &entries_path.display().to_string(),
        &mut tables,
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    Case {
        name: program.display().to_string(),
        source,
        entries,
        prog: compiled.ir,
        tables,
    }
}

/// Two implementations of the datapath interface: the reference and the one checked
/// against it, with their names for messages.
pub struct Pair<'a, R, C> {
    pub reference: &'a R,
    pub checked: &'a C,
    pub names: (&'static str, &'static str),
}

/// Runs one packet through both workers; on a difference, returns a description.
#[allow(clippy::too_many_arguments)]
fn compare_one<A: Worker, B: Worker>(
    case: &Case,
    names: (&str, &str),
    ta: &TableSet,
    tb: &TableSet,
    a_w: &mut A,
    b_w: &mut B,
    sa: &mut Stats,
    sb: &mut Stats,
    pkt: &[u8],
    meta: &PacketMeta,
) -> Result<Out, String> {
    let head = case.prog.headroom;
    let mut a = PacketBuf::with_capacity(head, pkt.len());
    let mut b = PacketBuf::with_capacity(head, pkt.len());
    let orig = wire_length(pkt.len());
    a.load(head, pkt, orig);
    b.load(head, pkt, orig);
    let va = a_w
        .process(ta, sa, &mut a, meta)
        .map_err(|e| e.to_string())?;
    let vb = b_w
        .process(tb, sb, &mut b, meta)
        .map_err(|e| e.to_string())?;
    let (na, nb) = names;
    if va != vb {
        return Err(format!("verdict: {na} {va:?}, {nb} {vb:?}"));
    }
    if let sluice_runtime::packet::Verdict::Forward(_) = va {
        if a.data() != b.data() || a.orig_len != b.orig_len {
            return Err(format!(
                "output differs:\n  {na:<6} {} (orig_len {})\n  {nb:<6} {} (orig_len {})",
                hex(a.data()),
                a.orig_len,
                hex(b.data()),
                b.orig_len
            ));
        }
    }
    Ok((vb, b.data().to_vec(), b.orig_len))
}

/// The wire length a packet of `len` captured bytes is given: most look cut by a snaplen, and
/// some claim the largest length pcap can hold, where pushing and popping headers clamps it.
fn wire_length(len: usize) -> u32 {
    let len = len as u32;
    if len.is_multiple_of(7) {
        u32::MAX
    } else {
        len + (len % 3) * 100
    }
}

/// What the checked implementation made of one packet: verdict, bytes, wire length.
type Out = (sluice_runtime::packet::Verdict, Vec<u8>, u32);

/// The packets so far, again through the checked implementation's `process_batch` in
/// batches of 1 to 13, to check that a batch gives what `process` gives packet by packet.
struct Batcher<W> {
    worker: W,
    tables: TableSet,
    stats: Stats,
    pending: Vec<(Vec<u8>, PacketMeta, Out)>,
    size: usize,
}

impl<W: Worker> Batcher<W> {
    fn push(&mut self, case: &Case, pkt: &[u8], meta: &PacketMeta, want: Out) {
        self.pending.push((pkt.to_vec(), *meta, want));
        if self.pending.len() >= self.size {
            self.flush(case);
            self.size = self.size % 13 + 1;
        }
    }

    fn flush(&mut self, case: &Case) {
        let head = case.prog.headroom;
        let mut bufs: Vec<PacketBuf> = self
            .pending
            .iter()
            .map(|(p, _, _)| {
                let mut b = PacketBuf::with_capacity(head, p.len());
                // As compare_one loads it.
                b.load(head, p, wire_length(p.len()));
                b
            })
            .collect();
        let metas: Vec<PacketMeta> = self.pending.iter().map(|(_, m, _)| *m).collect();
        let mut out = vec![sluice_runtime::packet::Verdict::Drop(0); bufs.len()];
        self.worker
            .process_batch(&self.tables, &mut self.stats, &mut bufs, &metas, &mut out)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        for (((p, _, (v, bytes, orig)), b), got) in self.pending.iter().zip(&bufs).zip(&out) {
            assert_eq!(got, v, "{}: batch verdict for {}", case.name, hex(p));
            if let sluice_runtime::packet::Verdict::Forward(_) = v {
                assert_eq!(
                    (b.data(), b.orig_len),
                    (&bytes[..], *orig),
                    "{}: batch output for {}",
                    case.name,
                    hex(p)
                );
            }
        }
        self.pending.clear();
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Shrinks a failing packet: shorter, then with bytes zeroed, while it still fails.
fn shrink<R: Pipeline, C: Pipeline>(
    case: &Case,
    pair: &Pair<R, C>,
    pkt: &[u8],
    meta: &PacketMeta,
) -> Vec<u8> {
    let fails = |p: &[u8]| {
        let (mut a, mut b) = (pair.reference.worker(), pair.checked.worker());
        let mut sa = sluice_compiler::stats_for(&case.prog);
        let mut sb = sluice_compiler::stats_for(&case.prog);
        let (ta, tb) = (case.tables.detached(), case.tables.detached());
        compare_one(
            case, pair.names, &ta, &tb, &mut a, &mut b, &mut sa, &mut sb, p, meta,
        )
        .is_err()
    };
    let mut best = pkt.to_vec();
    while best.len() > 1 && fails(&best[..best.len() - 1]) {
        best.pop();
    }
    for i in 0..best.len() {
        if best[i] != 0 {
            let mut t = best.clone();
            t[i] = 0;
            if fails(&t) {
                best = t;
            }
        }
    }
    best
}

/// Runs `packets` through both implementations; panics with a reproducer on the first
/// difference.
pub fn differential<R: Pipeline, C: Pipeline>(
    case: &Case,
    pair: &Pair<R, C>,
    packets: impl Iterator<Item = (Vec<u8>, PacketMeta)>,
) -> u64 {
    let (mut a, mut b) = (pair.reference.worker(), pair.checked.worker());
    let mut sa = sluice_compiler::stats_for(&case.prog);
    let mut sb = sluice_compiler::stats_for(&case.prog);
    let mut n = 0u64;
    // Each implementation counts in its own copy of the tables, so that entry counters are
    // compared, and seals with its own key counters (`detached`), so that both seal alike.
    let (ta, tb) = (case.tables.detached(), case.tables.detached());
    let mut batcher = Batcher {
        worker: pair.checked.worker(),
        tables: case.tables.detached(),
        stats: sluice_compiler::stats_for(&case.prog),
        pending: Vec::new(),
        size: 1,
    };
    let (na, nb) = pair.names;
    for (pkt, meta) in packets {
        match compare_one(
            case, pair.names, &ta, &tb, &mut a, &mut b, &mut sa, &mut sb, &pkt, &meta,
        ) {
            Ok(out) => batcher.push(case, &pkt, &meta, out),
            Err(e) => {
                let small = shrink(case, pair, &pkt, &meta);
                panic!(
                    "{nb} and {na} disagree on {} (case {n}): {e}\n\
                     packet: {}\nminimal packet: {}\nmeta: {meta:?}\n--- program ---\n{}\n--- entries ---\n{}",
                    case.name,
                    hex(&pkt),
                    hex(&small),
                    case.source,
                    case.entries
                );
            }
        }
        n += 1;
    }
    batcher.flush(case);
    assert!(
        batcher.stats.same_counts(&sb),
        "{}: batch counters differ after {n} packets:\n{:?}\n{sb:?}",
        case.name,
        batcher.stats
    );
    assert!(
        sa.same_counts(&sb),
        "{}: counters differ after {n} packets:\n{sa:?}\n{sb:?}",
        case.name
    );
    assert!(sa.balanced(), "{}: in != forwarded + dropped", case.name);
    for ((x, y), z) in ta
        .tables()
        .iter()
        .zip(tb.tables())
        .zip(batcher.tables.tables())
    {
        let ec = |t: &sluice_runtime::table::Table| -> Vec<(u64, u64)> {
            t.entries().map(|e| (e.packets, e.bytes)).collect()
        };
        assert_eq!(
            ec(y),
            ec(z),
            "{}: batch entry counters of {}",
            case.name,
            y.name()
        );
        assert_eq!(
            ec(x),
            ec(y),
            "{}: entry counters of table {} differ",
            case.name,
            x.name()
        );
    }
    n
}

/// The interpreter and the JIT of a case's program.
fn interp_and_jit(case: &Case, f: impl FnOnce(&Pair<Interp, JitProgram>)) {
    let interp = Interp::new(&case.prog);
    let jit =
        JitProgram::compile(&case.prog, false).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    f(&Pair {
        reference: &interp,
        checked: &jit,
        names: ("interp", "JIT"),
    });
}

fn programs() -> Vec<std::path::PathBuf> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut v = Vec::new();
    for dir in ["programs", "tests/programs"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "sluice") {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

/// Packets of every kind for one program: `n` generated, plus, for a few of them, every
/// truncation, plus random bytes.
fn corpus(seed: u64, n: usize) -> impl Iterator<Item = (Vec<u8>, PacketMeta)> {
    let mut r = Rng::new(seed);
    let mut out: Vec<Vec<u8>> = Vec::new();
    (0..n).flat_map(move |i| {
        out.clear();
        let p = gen_packet(&mut r);
        if i % 64 == 0 {
            for cut in 0..p.len() {
                out.push(p[..cut].to_vec());
            }
        }
        if i % 16 == 0 {
            let len = r.below(120) as usize;
            out.push(r.bytes(len));
        }
        out.push(p);
        let meta = PacketMeta {
            ingress_port: r.below(4) as u16,
            ts_sec: 1_700_000_000 + r.below(1000),
            ts_nsec: r.below(1_000_000_000) as u32,
        };
        std::mem::take(&mut out).into_iter().map(move |p| (p, meta))
    })
}

#[test]
fn jit_matches_interpreter_on_generated_packets() {
    // About 1.1 million cases in all, spread over the programs.
    let per_program = std::env::var("SLUICE_DIFF_PACKETS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_100_000 / programs().len() * 2 / 3);
    let mut total = 0;
    for (i, p) in programs().iter().enumerate() {
        let case = load_case(p);
        interp_and_jit(&case, |pair| {
            total += differential(&case, pair, corpus(0x5eed_0000 + i as u64, per_program));
        });
    }
    eprintln!("differential: {total} cases");
    assert!(
        total >= 1_000_000 || std::env::var("SLUICE_DIFF_PACKETS").is_ok(),
        "only {total} cases"
    );
}

#[test]
fn jit_matches_interpreter_on_real_captures() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut caps = Vec::new();
    for e in std::fs::read_dir(root.join("tests/captures")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
            caps.push(sluice_runtime::pcap::read_capture(&p).unwrap());
        }
    }
    for p in programs() {
        let case = load_case(&p);
        let packets = caps.iter().flat_map(|c| c.records.iter()).map(|r| {
            (
                r.data.clone(),
                PacketMeta {
                    ingress_port: 0,
                    ts_sec: r.ts_sec,
                    ts_nsec: r.ts_nsec,
                },
            )
        });
        interp_and_jit(&case, |pair| {
            differential(&case, pair, packets);
        });
    }
}

/// Programs that check also lower, verify, build their tables and compile to native code:
/// the shipped programs mutated at random, every one that passes `check` goes all the way.
#[test]
fn every_program_that_checks_compiles() {
    let sources: Vec<String> = programs()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let mut r = Rng::new(99);
    let mut compiled = 0;
    for round in 0..600 {
        let mut chars: Vec<char> = sources[round % sources.len()].chars().collect();
        for _ in 0..1 + r.below(3) {
            if chars.is_empty() {
                break;
            }
            let i = r.below(chars.len() as u64) as usize;
            match r.below(3) {
                0 => {
                    chars.remove(i);
                }
                1 => chars.insert(i, chars[i]),
                _ => chars[i] = ['0', '1', '7', ' ', ';', 'x', '{', '}'][r.below(8) as usize],
            }
        }
        let src: String = chars.into_iter().collect();
        let Ok(c) = sluice_compiler::compile(&src) else {
            continue;
        };
        compiled += 1;
        let tables = sluice_compiler::table_set(&c.ir);
        let jit = JitProgram::compile(&c.ir, false);
        assert!(
            jit.is_ok(),
            "a checked program failed to compile: {:?}\n{src}",
            jit.err()
        );
        if let (Ok(t), Ok(j)) = (tables, jit) {
            // And runs a packet without trouble.
            let mut s = sluice_compiler::stats_for(&c.ir);
            let mut pkt = PacketBuf::with_capacity(c.ir.headroom, 64);
            pkt.load(c.ir.headroom, &[0u8; 60], 60);
            j.worker()
                .process(&t, &mut s, &mut pkt, &PacketMeta::default())
                .unwrap();
            assert!(s.balanced());
        }
    }
    assert!(compiled > 100, "only {compiled} mutants checked");
}
