//! `sluice run`: a program over a capture, with a summary that accounts for every packet.

use anyhow::{anyhow, Context};
use sluice_compiler::interp::Interp;
use sluice_compiler::ir::Program;
use sluice_compiler::jit::JitProgram;
use sluice_runtime::packet::{PacketBuf, PacketMeta, Verdict};
use sluice_runtime::pcap::{read_capture, PcapOut};
use sluice_runtime::stats::Stats;
use sluice_runtime::table::TableSet;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RunArgs {
    /// The program.
    program: PathBuf,
    /// Table entries in simple_switch_CLI syntax.
    #[arg(long)]
    entries: Option<PathBuf>,
    /// The capture to replay (pcap or pcapng).
    #[arg(long = "in", value_name = "IN.pcap")]
    input: PathBuf,
    /// Where to write port-N.pcap for each egress port.
    #[arg(long, value_name = "DIR")]
    out_dir: PathBuf,
    /// The ingress port of every packet.
    #[arg(long, default_value_t = 0)]
    ingress_port: u16,
    /// Print each packet's parser path, table lookups, actions and verdict (runs the
    /// reference interpreter, whatever --backend says).
    #[arg(long)]
    trace: bool,
    /// Which executor runs the program.
    #[arg(long, value_enum, default_value_t = Backend::Jit)]
    backend: Backend,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Native code from Cranelift.
    Jit,
    /// The reference interpreter.
    Interp,
}

/// Reads an entries file into a program's tables; every bad line is reported, none installed.
pub fn load_entries(set: &mut TableSet, path: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read entries file {}", path.display()))?;
    let name = path.display().to_string();
    match sluice_runtime::command::load_entries(&text, &name, set) {
        Ok(_) => Ok(()),
        Err(errors) => {
            // The first errors are the useful ones; a file of a million bad lines stays readable.
            let mut lines: Vec<String> = errors.iter().take(20).map(|e| e.to_string()).collect();
            if errors.len() > 20 {
                lines.push(format!("... and {} more", errors.len() - 20));
            }
            Err(anyhow!(
                "{}\nno entries were installed from {name} ({} error{})",
                lines.join("\n"),
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            ))
        }
    }
}

pub fn run(args: &RunArgs, color: bool) -> anyhow::Result<ExitCode> {
    let Some(compiled) = crate::load_program(&args.program, color)? else {
        return Ok(ExitCode::FAILURE);
    };
    let prog = compiled.ir;
    let mut tables = sluice_compiler::table_set(&prog).map_err(|e| anyhow!(e))?;
    if let Some(e) = &args.entries {
        load_entries(&mut tables, e)?;
    }
    let capture = read_capture(&args.input)
        .with_context(|| format!("cannot read capture {}", args.input.display()))?;
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("cannot create {}", args.out_dir.display()))?;
    let mut stats = Stats::new(
        prog.drop_reasons.len(),
        prog.tables.len(),
        prog.actions.len(),
    );
    let linktype = capture.records.first().map_or(1, |r| r.linktype);
    let mut outs: BTreeMap<u16, PcapOut> = BTreeMap::new();
    let mut interp = Interp::new(&prog);
    let mut jit = if args.backend == Backend::Jit && !args.trace {
        Some(JitProgram::compile(&prog, false).map_err(|e| anyhow!("{e}"))?)
    } else {
        None
    };
    let max_len = capture.max_len();
    let mut pkt = PacketBuf::with_capacity(prog.headroom, max_len);
    let mut trace = String::new();
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    for (i, rec) in capture.records.iter().enumerate() {
        pkt.load(prog.headroom, &rec.data, rec.orig_len);
        let meta = PacketMeta {
            ingress_port: args.ingress_port,
            ts_sec: rec.ts_sec,
            ts_nsec: rec.ts_nsec,
        };
        let t = if args.trace {
            trace.clear();
            let _ = writeln!(
                trace,
                "packet {} ({} bytes, ingress port {})",
                i + 1,
                rec.data.len(),
                args.ingress_port
            );
            Some(&mut trace)
        } else {
            None
        };
        let v = match jit.as_mut() {
            Some(j) => j.process(&tables, &mut stats, &mut pkt, &meta),
            None => interp.process(&tables, &mut stats, &mut pkt, &meta, t),
        };
        // The reader went away (`| head`): stop quietly, as Unix tools do.
        if args.trace && stdout.write_all(trace.as_bytes()).is_err() {
            return Ok(ExitCode::SUCCESS);
        }
        if let Verdict::Forward(port) = v {
            let out = match outs.entry(port) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    let path = args.out_dir.join(format!("port-{port}.pcap"));
                    let o = PcapOut::create(&path, linktype, capture.nanos)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    v.insert(o)
                }
            };
            out.write(rec.ts_sec, rec.ts_nsec, pkt.orig_len, pkt.data())
                .context("cannot write output")?;
        }
    }
    for (_, o) in outs {
        o.finish().context("cannot finish output")?;
    }
    let _ = stdout.write_all(summary(&prog, &stats).as_bytes());
    let _ = stdout.flush();
    Ok(ExitCode::SUCCESS)
}

/// The end-of-run summary: every packet in is accounted for.
pub fn summary(prog: &Program, s: &Stats) -> String {
    let mut o = String::new();
    let fw = s.forwarded_total();
    let dr = s.dropped_total();
    let _ = writeln!(o, "packets in:    {}", s.packets_in);
    let _ = writeln!(o, "forwarded:     {fw}");
    for (p, n) in s.forwarded_ports() {
        let _ = writeln!(o, "  port {p:<8} {n}");
    }
    let _ = writeln!(o, "dropped:       {dr}");
    for (r, n) in s.dropped.iter().enumerate() {
        if *n > 0 {
            let _ = writeln!(o, "  {:<28} {n}", prog.drop_reasons[r]);
        }
    }
    if !prog.tables.is_empty() {
        let _ = writeln!(o, "tables:");
        for (i, t) in prog.tables.iter().enumerate() {
            let _ = writeln!(
                o,
                "  {:<16} hits {:<8} misses {}",
                t.name, s.table_hits[i], s.table_misses[i]
            );
        }
    }
    let runs: Vec<(usize, u64)> = s
        .action_runs
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| (i, *n))
        .collect();
    if !runs.is_empty() {
        let _ = writeln!(o, "actions:");
        for (a, n) in runs {
            let _ = writeln!(o, "  {:<16} {n}", prog.actions[a].name);
        }
    }
    let _ = writeln!(
        o,
        "in = forwarded + dropped: {} = {fw} + {dr}{}",
        s.packets_in,
        if s.balanced() {
            ""
        } else {
            "  (MISMATCH: please report this)"
        }
    );
    o
}
