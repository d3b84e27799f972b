//! The datapath interface: a compiled program runs only the tables built for it, and one
//! compiled program runs on several threads at once, each with its own worker.

use sluice_compiler::interp::Interp;
use sluice_compiler::jit::JitProgram;
use sluice_runtime::datapath::{DatapathError, Pipeline, Worker};
use sluice_runtime::packet::{PacketBuf, PacketMeta, Verdict};

/// The same program with its one table keyed on a field of `width` bits: equal numbers of
/// tables, actions and keys, different key widths.
fn program(width: u32) -> sluice_compiler::ir::Program {
    let src = format!(
        r#"
        header ethernet {{ dst: bit<48>; src: bit<48>; ether_type: bit<16>; }}
        header tag {{ a: bit<{width}>; }}
        parser {{ state start {{ extract(ethernet); extract(tag); transition accept; }} }}
        action to(out: port) {{ forward(out); }}
        table t {{ key {{ tag.a: exact; }} actions {{ to; }} default drop(); }}
        control ingress {{ t.apply(); }}
        deparser {{ emit(ethernet, tag); }}
    "#
    );
    sluice_compiler::compile(&src).unwrap().ir
}

fn packet(headroom: usize) -> PacketBuf {
    let mut bytes = vec![0u8; 14];
    bytes[12..14].copy_from_slice(&0x1234u16.to_be_bytes());
    // tag.a is 7 read as 16 bits.
    bytes.extend_from_slice(&[0, 7, 0, 0, 0, 0, 0, 0]);
    let mut p = PacketBuf::with_capacity(headroom, bytes.len());
    p.load(headroom, &bytes, bytes.len() as u32);
    p
}

#[test]
fn tables_of_another_program_are_refused_and_nothing_runs() {
    let narrow = program(16);
    let wide = program(32);
    assert_eq!(narrow.tables.len(), wide.tables.len());
    assert_eq!(narrow.actions.len(), wide.actions.len());
    let foreign = sluice_compiler::table_set(&wide).unwrap();
    let own = sluice_compiler::table_set(&narrow).unwrap();
    assert_ne!(foreign.fingerprint(), own.fingerprint());

    let jit = JitProgram::compile(&narrow, false).unwrap();
    let interp = Interp::new(&narrow);
    let check = |w: &mut dyn Worker| {
        let mut stats = sluice_compiler::stats_for(&narrow);
        let mut p = packet(narrow.headroom);
        let before = p.data().to_vec();
        let e = w
            .process(&foreign, &mut stats, &mut p, &PacketMeta::default())
            .unwrap_err();
        assert_eq!(
            e,
            DatapathError::ForeignTables {
                expected: own.fingerprint(),
                found: foreign.fingerprint(),
            }
        );
        let msg = e.to_string();
        assert!(msg.contains("built for another program"), "{msg}");
        assert!(msg.contains(&own.fingerprint().to_string()), "{msg}");
        // Nothing ran: no packet counted, the packet as it was.
        assert_eq!(stats.packets_in, 0);
        assert_eq!(p.data(), &before[..]);
        // Its own tables are fine.
        let v = w
            .process(&own, &mut stats, &mut p, &PacketMeta::default())
            .unwrap();
        assert_eq!(v, Verdict::Drop(narrow.tables[0].drop_on_miss.code()));
        assert_eq!(stats.packets_in, 1);
        // Counters made for the other program are refused too.
        let mut other = sluice_compiler::stats_for(&program_with_two_tables());
        let e = w
            .process(&own, &mut other, &mut p, &PacketMeta::default())
            .unwrap_err();
        assert_eq!(e, DatapathError::ForeignStats);
    };
    check(&mut jit.worker());
    check(&mut interp.worker());
}

fn program_with_two_tables() -> sluice_compiler::ir::Program {
    let src = r#"
        header ethernet { dst: bit<48>; src: bit<48>; ether_type: bit<16>; }
        parser { state start { extract(ethernet); transition accept; } }
        table a { key { ethernet.dst: exact; } actions { NoAction; } }
        table b { key { ethernet.src: exact; } actions { NoAction; } }
        control ingress { a.apply(); b.apply(); forward(1); }
        deparser { emit(ethernet); }
    "#;
    sluice_compiler::compile(src).unwrap().ir
}

#[test]
fn the_same_program_compiled_twice_shares_its_tables() {
    // Another compilation of the same text makes an equal schema, not the same allocation:
    // accepted, and every later batch on these tables costs a pointer comparison.
    let p = program(16);
    let q = program(16);
    let tables = sluice_compiler::table_set(&q).unwrap();
    let jit = JitProgram::compile(&p, false).unwrap();
    let mut w = jit.worker();
    let mut stats = sluice_compiler::stats_for(&p);
    for _ in 0..3 {
        let mut pkt = packet(p.headroom);
        w.process(&tables, &mut stats, &mut pkt, &PacketMeta::default())
            .unwrap();
    }
    assert_eq!(stats.packets_in, 3);
}

#[test]
fn one_compiled_program_runs_on_several_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<JitProgram>();

    let p = program(16);
    let jit = JitProgram::compile(&p, false).unwrap();
    let mut tables = sluice_compiler::table_set(&p).unwrap();
    sluice_runtime::command::load_entries("table_add t to 7 => 3", "e", &mut tables).unwrap();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    // Each thread its own worker, counters and copy of the tables.
                    let tables = tables.clone();
                    let mut w = jit.worker();
                    let mut stats = sluice_compiler::stats_for(&p);
                    for _ in 0..10_000 {
                        let mut pkt = packet(p.headroom);
                        let v = w
                            .process(&tables, &mut stats, &mut pkt, &PacketMeta::default())
                            .unwrap();
                        assert_eq!(v, Verdict::Forward(3));
                    }
                    let hits = tables.tables()[0].entries().next().unwrap().packets;
                    (stats.packets_in, hits)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results, vec![(10_000, 10_000); 4]);
}
