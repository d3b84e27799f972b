//! The fuzz targets, one function per surface that takes a stranger's bytes. Each asserts
//! what must hold for every input, not only that nothing panics.
//!
//! This file is compiled twice: by the cargo-fuzz binaries in fuzz/fuzz_targets/ (libFuzzer
//! drives them for as long as one likes) and by tests/it/fuzz.rs, which runs the seed corpus
//! in fuzz/corpus/ and a fixed number of seeded mutations of it on every `cargo test`.

use sluice_compiler::interp::Interp;
use sluice_compiler::jit::JitProgram;
use sluice_runtime::datapath::{Pipeline, Worker};
use sluice_runtime::packet::{PacketBuf, PacketMeta, Verdict};
use sluice_runtime::table::TableSet;
use std::sync::OnceLock;

/// The shipped programs with their entries, compiled once.
pub struct Shipped {
    pub name: &'static str,
    pub ir: sluice_compiler::ir::Program,
    pub tables: TableSet,
    pub jit: JitProgram,
}

const PROGRAMS: [(&str, &str, &str); 9] = [
    (
        "port_dnat",
        include_str!("../programs/port_dnat.sluice"),
        include_str!("../programs/port_dnat.entries"),
    ),
    (
        "port_blocks",
        include_str!("../programs/port_blocks.sluice"),
        include_str!("../programs/port_blocks.entries"),
    ),
    (
        "gateway",
        include_str!("../programs/gateway.sluice"),
        include_str!("../programs/gateway.entries"),
    ),
    (
        "host",
        include_str!("../programs/host.sluice"),
        include_str!("../programs/host.entries"),
    ),
    (
        "vnet",
        include_str!("../programs/vnet.sluice"),
        include_str!("../programs/vnet.entries"),
    ),
    (
        "vnet_auth",
        include_str!("../programs/vnet_auth.sluice"),
        include_str!("../programs/vnet_auth.entries"),
    ),
    (
        "host_secure",
        include_str!("../programs/host_secure.sluice"),
        include_str!("../programs/host_secure.entries"),
    ),
    (
        "gateway_secure",
        include_str!("../programs/gateway_secure.sluice"),
        include_str!("../programs/gateway_secure.entries"),
    ),
    (
        "acl",
        include_str!("../programs/acl.sluice"),
        include_str!("../programs/acl.entries"),
    ),
];

/// programs/, from the crate this file is compiled in (the workspace root, or fuzz/).
fn programs_dir() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    [here, here.parent().unwrap_or(here)]
        .iter()
        .map(|d| d.join("programs"))
        .find(|p| p.join("keys").is_dir())
        .unwrap_or_else(|| here.join("programs"))
}

pub fn shipped() -> &'static [Shipped] {
    static SHIPPED: OnceLock<Vec<Shipped>> = OnceLock::new();
    SHIPPED.get_or_init(|| {
        PROGRAMS
            .iter()
            .map(|(name, source, entries)| {
                let c = sluice_compiler::compile(source).expect("a shipped program compiles");
                let mut tables = sluice_compiler::table_set(&c.ir).expect("its tables");
                // Entries name key files relative to themselves: name them by their path.
                let path = programs_dir().join(format!("{name}.entries"));
                let path = path.to_string_lossy();
                sluice_runtime::command::load_entries(entries, &path, &mut tables)
                    .expect("its entries load");
                let jit = JitProgram::compile(&c.ir, false).expect("it JIT-compiles");
                Shipped {
                    name,
                    ir: c.ir,
                    tables,
                    jit,
                }
            })
            .collect()
    })
}

/// Every table's `table_dump`: what a failed command must leave as it was.
fn contents(set: &TableSet) -> Vec<String> {
    (0..set.tables().len())
        .map(|i| sluice_runtime::command::table_dump_text(set, i, None).unwrap_or_default())
        .collect()
}

/// The language front end: any text is either a program (which then lowers, prints and
/// JIT-compiles) or diagnostics whose spans lie inside the text and which render.
pub fn front_end(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ast) = sluice_lang::parse(source) {
        let _ = sluice_lang::ast::print::print(&ast);
    }
    match sluice_compiler::compile(source) {
        Ok(c) => {
            let _ = sluice_compiler::print::print(&c.ir);
            let jit = JitProgram::compile(&c.ir, false);
            assert!(
                jit.is_ok(),
                "a checked program fails in the JIT: {:?}",
                jit.err()
            );
        }
        Err(e) => {
            assert!(!e.diagnostics.is_empty(), "an error without a diagnostic");
            for d in &e.diagnostics {
                assert_ne!(d.code, "E0000", "internal compiler error: {}", d.message);
                for (span, _) in &d.labels {
                    assert!(
                        span.start <= span.end
                            && span.end <= source.len()
                            && source.is_char_boundary(span.start)
                            && source.is_char_boundary(span.end),
                        "{}: span {span:?} outside a {}-byte source or inside a character",
                        d.message,
                        source.len()
                    );
                }
            }
            let _ = sluice_lang::render(&e.diagnostics, "fuzz.sluice", source, false);
        }
    }
}

/// The entries parser, on port_dnat's tables (byte 0 picks another shipped program): a file
/// either loads or changes nothing.
pub fn entries(data: &[u8]) {
    let Some((&pick, text)) = data.split_first() else {
        return;
    };
    let programs = shipped();
    let p = &programs[usize::from(pick) % programs.len()];
    let text = String::from_utf8_lossy(text);
    let mut set = p.tables.clone();
    let before = contents(&set);
    match sluice_runtime::command::load_entries(&text, "fuzz.entries", &mut set) {
        Ok(_) => {}
        Err(errors) => {
            assert!(!errors.is_empty());
            assert_eq!(
                contents(&set),
                before,
                "a failed entries file changed the tables"
            );
        }
    }
    // Each line alone, as the control plane would take it: a refused command changes nothing.
    for line in text.lines().take(64) {
        let mut one = p.tables.clone();
        if let Ok(Some(cmd)) = sluice_runtime::command::parse_command(line, &one) {
            let before = contents(&one);
            if sluice_runtime::command::apply(&mut one, &cmd).is_err() {
                assert_eq!(
                    contents(&one),
                    before,
                    "a refused `{line}` changed the tables"
                );
            }
        }
    }
}

/// The control protocol's decoder: any line is a hello or not, a request or an error reply;
/// a request read back from its own encoding is the same request.
pub fn control(data: &[u8]) {
    use sluice_runtime::control::{self, Reply, Request};
    let line = String::from_utf8_lossy(data);
    let _ = control::check_client_hello(&line);
    match control::parse_request(&line) {
        Request::Command { id, command } => {
            let again = control::parse_request(control::request_line(id, &command).trim_end());
            assert_eq!(again, Request::Command { id, command });
        }
        Request::Malformed { error, .. } => assert!(!error.is_empty()),
    }
    let reply = Reply {
        id: data.len() as u64,
        ok: data.first().is_some_and(|b| b & 1 == 1),
        text: line.to_string(),
    };
    let encoded = reply.to_line();
    assert_eq!(encoded.matches('\n').count(), 1, "a reply is one line");
    assert_eq!(control::parse_reply(encoded.trim_end()).ok(), Some(reply));
    let mut r = std::io::BufReader::with_capacity(64, data);
    while let Ok(Some(_)) = control::read_line_limited(&mut r, 1024) {}
}

/// The pcap and pcapng reader: any bytes are a capture or an error; a capture that Sluice's
/// writer can hold (one link type, 32-bit seconds, records up to 256 KiB) reads back from it
/// the same, as `run` would write it.
pub fn capture(data: &[u8]) {
    let Ok(c) = sluice_runtime::pcap::parse_capture(data, std::path::Path::new("fuzz.pcap")) else {
        return;
    };
    assert!(c.records.iter().map(|r| r.data.len()).sum::<usize>() <= data.len());
    let linktype = c.records.first().map_or(1, |r| r.linktype);
    let writable = c.records.iter().all(|r| {
        r.linktype == linktype && r.ts_sec <= u64::from(u32::MAX) && r.data.len() <= 262_144
    });
    if !writable {
        return;
    }
    let path = std::env::temp_dir().join(format!("sluice-fuzz-{}.pcap", std::process::id()));
    let mut out = sluice_runtime::pcap::PcapOut::create(&path, linktype, c.nanos).unwrap();
    for r in &c.records {
        out.write(r.ts_sec, r.ts_nsec, r.orig_len, &r.data).unwrap();
    }
    out.finish().unwrap();
    let back = sluice_runtime::pcap::read_capture(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(back.records.len(), c.records.len());
    for (a, b) in c.records.iter().zip(&back.records) {
        let ns = if c.nanos {
            a.ts_nsec
        } else {
            a.ts_nsec / 1000 * 1000
        };
        assert_eq!(
            (a.ts_sec, ns, a.orig_len, &a.data),
            (b.ts_sec, b.ts_nsec, b.orig_len, &b.data)
        );
    }
}

/// The compiled pipeline: byte 0 picks a shipped program, bytes 1-2 the ingress port, the
/// rest is the packet. The JIT and the reference interpreter must agree on the verdict, the
/// bytes and every counter, and count the packet once.
pub fn pipeline(data: &[u8]) {
    let [pick, p0, p1, packet @ ..] = data else {
        return;
    };
    let programs = shipped();
    let p = &programs[usize::from(*pick) % programs.len()];
    let meta = PacketMeta {
        ingress_port: u16::from_le_bytes([*p0, *p1]) % 8,
        ts_sec: 1_700_000_000,
        ts_nsec: 0,
    };
    let interp = Interp::new(&p.ir);
    let mut results = Vec::new();
    let mut jit_worker = p.jit.worker();
    let mut interp_worker = interp.worker();
    for w in [&mut jit_worker as &mut dyn Worker, &mut interp_worker] {
        // Each backend with key counters and replay windows of its own.
        let tables = p.tables.detached();
        let mut stats = sluice_compiler::stats_for(&p.ir);
        let mut pkt = PacketBuf::with_capacity(p.ir.headroom, packet.len());
        pkt.load(p.ir.headroom, packet, packet.len() as u32);
        let verdict = w
            .process(&tables, &mut stats, &mut pkt, &meta)
            .expect("the tables are the program's own");
        assert!(stats.balanced(), "{}: a packet not counted once", p.name);
        let out = match verdict {
            Verdict::Forward(_) => Some((pkt.data().to_vec(), pkt.orig_len)),
            Verdict::Drop(_) => None,
        };
        results.push((verdict, out, stats, contents(&tables)));
    }
    assert!(
        results[0] == results[1],
        "{}: the JIT and the interpreter differ on {packet:02x?}",
        p.name
    );
}
