//! Nesting limits: every construct that nests (unary and binary operators, casts,
//! parentheses, blocks, else-if chains) is accepted at its limit, all the way through every
//! stage on a 2 MiB stack (as cargo test's threads and the switch's workers have), and
//! refused one past it with a diagnostic, never a stack overflow.

use sluice_runtime::datapath::{Pipeline, Worker};
use sluice_runtime::packet::{PacketBuf, PacketMeta};

const HEAD: &str = "header ethernet { dst: bit<48>; src: bit<48>; ether_type: bit<16>; }\n\
    parser { state start { extract(ethernet); transition accept; } }\n";
const TAIL: &str = "deparser { emit(ethernet); }\n";

fn program(control: &str) -> String {
    format!("{HEAD}control ingress {{\n{control}\n}}\n{TAIL}")
}

/// Compiles and runs a packet through both backends, on a thread with a 2 MiB stack.
fn compiles_and_runs(src: String) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let c =
                sluice_compiler::compile(&src).unwrap_or_else(|e| panic!("{:?}", e.diagnostics));
            let tables = sluice_compiler::table_set(&c.ir).unwrap();
            let text = sluice_compiler::print::print(&c.ir);
            assert!(!text.is_empty());
            let jit = sluice_compiler::jit::JitProgram::compile(&c.ir, false).unwrap();
            let interp = sluice_compiler::interp::Interp::new(&c.ir);
            let mut verdicts = Vec::new();
            for w in [
                &mut jit.worker() as &mut dyn Worker,
                &mut interp.worker() as &mut dyn Worker,
            ] {
                let mut stats = sluice_compiler::stats_for(&c.ir);
                let mut pkt = PacketBuf::with_capacity(c.ir.headroom, 64);
                let mut bytes = vec![0u8; 60];
                bytes[13] = 1;
                pkt.load(c.ir.headroom, &bytes, 60);
                verdicts.push(
                    w.process(&tables, &mut stats, &mut pkt, &PacketMeta::default())
                        .unwrap(),
                );
            }
            assert_eq!(verdicts[0], verdicts[1]);
        })
        .unwrap()
        .join()
        .expect("no stack overflow at the limit");
}

/// The diagnostics of a program past a limit (checked on a 2 MiB stack too).
fn refused(src: String) -> String {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || match sluice_compiler::compile(&src) {
            Ok(_) => panic!("accepted past the limit"),
            Err(e) => {
                assert!(
                    e.diagnostics
                        .iter()
                        .all(|d| d.code == "E0001" || d.code == "E0110"),
                    "{:?}",
                    e.diagnostics
                );
                sluice_lang::render(&e.diagnostics, "p.sluice", &src, false)
            }
        })
        .unwrap()
        .join()
        .unwrap()
}

/// A condition of depth `2 + levels`: `levels` operators of one kind, and a comparison
/// (itself and its operands two levels).
fn condition(kind: &str, levels: usize) -> String {
    match kind {
        "not" => format!("{}(ethernet.ether_type == 1)", "!".repeat(levels)),
        "bnot" => format!("({}ethernet.ether_type) == 1", "~".repeat(levels)),
        "cast" => format!("({}ethernet.ether_type) == 1", "(bit<16>)".repeat(levels)),
        "plus" => format!("(ethernet.ether_type{}) == 1", " + 0".repeat(levels)),
        _ => unreachable!(),
    }
}

#[test]
fn operators_nest_to_the_limit_and_no_further() {
    let limit = sluice_lang::parse::MAX_EXPR_DEPTH;
    for kind in ["not", "bnot", "cast", "plus"] {
        // The comparison and its two operands are two levels.
        let at = program(&format!(
            "if ({}) {{ forward(1); }}",
            condition(kind, limit - 2)
        ));
        compiles_and_runs(at);
        let past = program(&format!(
            "if ({}) {{ forward(1); }}",
            condition(kind, limit - 1)
        ));
        let msg = refused(past);
        assert!(
            msg.contains("expression nested too deeply"),
            "{kind}: {msg}"
        );
    }
}

#[test]
fn brackets_and_blocks_nest_to_the_limit_and_no_further() {
    // `control ingress {` is one level and `if (` another: 126 more parentheses.
    let parens = |n: usize| {
        program(&format!(
            "if ({}ethernet.ether_type == 1{}) {{ forward(1); }}",
            "(".repeat(n),
            ")".repeat(n)
        ))
    };
    compiles_and_runs(parens(126));
    assert!(refused(parens(127)).contains("brackets nested too deeply"));
    // Blocks inside `control ingress {`, around `forward(1)`: 126 more.
    let blocks = |n: usize| program(&format!("{}forward(1);{}", "{".repeat(n), "}".repeat(n)));
    compiles_and_runs(blocks(126));
    assert!(refused(blocks(127)).contains("brackets nested too deeply"));
    // Brackets in comments and strings are not nesting.
    compiles_and_runs(program(&format!(
        "// {o}\n/* {o} */ if (ethernet.ether_type == 1) {{ drop(\"{s}\"); }} if (ethernet.ether_type == 2) {{ drop(\"{s}\"); }} forward(1);",
        o = "(".repeat(60) + &"{".repeat(4) + &"(".repeat(100),
        s = "(".repeat(64)
    )));
}

#[test]
fn else_if_chains_grow_to_the_limit_and_no_further() {
    let limit = sluice_lang::parse::MAX_ELSE_IF;
    let chain = |n: usize| {
        let mut s = "if (ethernet.ether_type == 0) { forward(0); }".to_string();
        for i in 1..n {
            s += &format!(" else if (ethernet.ether_type == {i}) {{ forward(1); }}");
        }
        program(&(s + " else { drop(); }"))
    };
    compiles_and_runs(chain(limit));
    assert!(refused(chain(limit + 1)).contains("`else if` chain too long"));
}

#[test]
fn a_small_file_of_thousands_of_operators_is_a_diagnostic() {
    // The probe's case: 4,095 chained `!` in a 4 KB program.
    let src = program(&format!(
        "if ({}(ethernet.ether_type == 1)) {{ forward(1); }}",
        "!".repeat(4095)
    ));
    assert!(refused(src).contains("expression nested too deeply"));
}

#[test]
fn drop_reasons_are_counted_to_the_limit_and_no_further() {
    let limit = sluice_lang::check::MAX_DROP_REASONS;
    let reasons = |n: usize| {
        program(
            &(0..n)
                .map(|i| format!("if (ethernet.ether_type == {i}) {{ drop(\"r{i}\"); }}\n"))
                .collect::<String>(),
        )
    };
    compiles_and_runs(reasons(limit));
    let msg = refused(reasons(limit + 1));
    assert!(msg.contains("too many drop reasons"), "{msg}");
    assert!(msg.contains(&format!("drop(\"r{limit}\")")), "{msg}");
    // Said once however far past.
    assert_eq!(refused(reasons(limit + 50)).matches("too many").count(), 1);
}
