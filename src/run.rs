//! `sluice run`: a program over a capture, with a summary that accounts for every packet.

use crate::out::errln;
use anyhow::{anyhow, Context};
use sluice_compiler::interp::Interp;
use sluice_compiler::ir::{Program, ReasonId};
use sluice_compiler::jit::JitProgram;
use sluice_runtime::datapath::{Pipeline, Worker};
use sluice_runtime::pcap::{read_capture, CaptureReader};
use sluice_runtime::stats::Stats;
use sluice_runtime::switch::{
    OnFailure, Pacing, PortOutputs, Publish, Replay, Ring, Source, Switch, Tables, BATCH,
    FIRST_BUFFER_LEN,
};
use sluice_runtime::table::TableSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

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
    /// No progress bar (it is drawn only on a terminal anyway); the summary is printed.
    #[arg(long, short)]
    quiet: bool,
    /// Forwarding threads: packets are spread over them by a flow hash, and the outputs are
    /// byte for byte those of one (with --trace, one).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: u16,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Native code from Cranelift.
    Jit,
    /// The reference interpreter.
    Interp,
}

/// Opens a capture to replay as a stream (`-`: standard input); its header is read and
/// checked here.
pub fn open_input(path: &std::path::Path) -> anyhow::Result<Source> {
    let r = CaptureReader::open(path).map_err(|e| anyhow!("cannot read capture {e}"))?;
    Ok(Source::Stream(Box::new(r)))
}

/// Says, once per input, what its reader found to warn about (records longer than the
/// capture's snaplen).
pub fn say_warnings(replay: &Replay, paths: &[&std::path::Path]) {
    for (n, w) in replay.warnings() {
        let name = paths
            .get(n)
            .map_or_else(String::new, |p| p.display().to_string());
        errln!("warning: {name}: {w}");
    }
}

/// Says which `port-N.pcap` files in the output directory this run did not write: they are
/// an earlier run's, and reading them with this run's would mislead.
fn say_earlier_outputs(dir: &std::path::Path, stats: &Stats) {
    let written: std::collections::BTreeSet<u16> =
        stats.forwarded_ports().map(|(p, _)| p).collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut earlier: Vec<(u16, PathBuf)> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name();
            let port: u16 = name
                .to_str()?
                .strip_prefix("port-")?
                .strip_suffix(".pcap")?
                .parse()
                .ok()?;
            (!written.contains(&port)).then(|| (port, e.path()))
        })
        .collect();
    earlier.sort();
    for (port, path) in earlier {
        errln!(
            "warning: {} is from an earlier run: no packet left port {port} this time",
            path.display()
        );
    }
}

/// Reads a whole capture into memory (`bench`), saying once if some records are longer
/// than its snaplen.
pub fn read_input(path: &std::path::Path) -> anyhow::Result<sluice_runtime::pcap::Capture> {
    let capture = read_capture(path).map_err(|e| anyhow!("cannot read capture {e}"))?;
    if let Some(over) = &capture.over_snaplen {
        errln!("warning: {}: {over}", path.display());
    }
    Ok(capture)
}

/// Reads an entries file into a program's tables; every bad line is reported, none installed.
pub fn load_entries(set: &mut TableSet, path: &std::path::Path) -> anyhow::Result<()> {
    let text = crate::input::read_text(path, "entries file")?;
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
    let mut tables = sluice_compiler::table_set(&prog)?;
    if let Some(e) = &args.entries {
        load_entries(&mut tables, e)?;
    }
    let input = open_input(&args.input)?;
    crate::make_out_dir(&args.out_dir)?;
    // SIGINT or SIGTERM ends the replay between two batches: the outputs are then put in
    // place with every packet run so far.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("cannot install signal handlers")?;
    }
    let mut replay = Replay::new(vec![(args.ingress_port, input)], Pacing::Flood)
        .map_err(|e| anyhow!("cannot read capture {e}"))?;
    // Outputs made under temporary names and put in place at the end; a failure fails the
    // run and replaces nothing.
    let (linktype, nanos) = (replay.linktype(), replay.nanos());
    let new_outputs = || {
        PortOutputs::new(
            &args.out_dir,
            linktype,
            nanos,
            Publish::AtEnd,
            OnFailure::Stop,
        )
    };
    let switch = |worker| Switch {
        worker,
        ring: Ring::new(BATCH, prog.headroom, FIRST_BUFFER_LEN),
        stats: sluice_compiler::stats_for(&prog),
        outputs: new_outputs(),
    };
    let interp = Interp::new(&prog);
    let jit;
    if args.workers > 1 && !args.trace {
        let n = usize::from(args.workers);
        tables.set_lanes(n);
        let progress = crate::progress::Progress::new(
            crate::progress::Progress::total_of(&[&args.input]),
            args.quiet,
        );
        let outputs = new_outputs();
        let ended = match args.backend {
            Backend::Jit => {
                jit = JitProgram::compile(&prog, false)?;
                replay_workers(
                    &jit,
                    n,
                    &prog,
                    &tables,
                    &mut replay,
                    outputs,
                    &stop,
                    progress,
                )?
            }
            Backend::Interp => replay_workers(
                &interp,
                n,
                &prog,
                &tables,
                &mut replay,
                outputs,
                &stop,
                progress,
            )?,
        };
        return finish_run(args, &prog, &replay, ended);
    }
    let worker: Box<dyn Worker> = if args.trace {
        // The trace follows the reference interpreter, whatever --backend says.
        Box::new(interp.tracing_worker())
    } else {
        match args.backend {
            Backend::Jit => {
                jit = JitProgram::compile(&prog, false)?;
                Box::new(jit.worker())
            }
            Backend::Interp => Box::new(interp.worker()),
        }
    };
    // No bar over a trace that goes to the same terminal.
    let progress = crate::progress::Progress::new(
        crate::progress::Progress::total_of(&[&args.input]),
        args.quiet || args.trace,
    );
    let ended = replay_all(
        switch(worker),
        &mut replay,
        &tables,
        &stop,
        args.trace,
        progress,
    )?;
    finish_run(args, &prog, &replay, ended)
}

/// Warnings, the summary and the exit status of a run that ended.
fn finish_run(
    args: &RunArgs,
    prog: &Program,
    replay: &Replay,
    ended: Ended,
) -> anyhow::Result<ExitCode> {
    say_warnings(replay, &[&args.input]);
    if let Ended::Done(stats) | Ended::Interrupted(stats) = &ended {
        say_earlier_outputs(&args.out_dir, stats);
    }
    match ended {
        Ended::Done(stats) => print_summary(&summary(prog, &stats)),
        Ended::Interrupted(stats) => {
            errln!(
                "sluice: interrupted after {} packets; the outputs in {} hold every packet run \
                 so far",
                stats.packets_in,
                args.out_dir.display()
            );
            print_summary(&summary(prog, &stats))?;
            Ok(ExitCode::from(130))
        }
        // The reader of the trace went away (`| head`): stop quietly, but the run's output
        // did not all reach it.
        Ended::OutputClosed => Ok(ExitCode::FAILURE),
    }
}

/// Prints the summary a command ends with. A summary that cannot be written fails the
/// command: quietly (exit 1) when the reader went away, with an error when the disk is full.
pub fn print_summary(text: &str) -> anyhow::Result<ExitCode> {
    match crate::out::stdout(text) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(crate::out::OutputError::Closed) => Ok(ExitCode::FAILURE),
        Err(e) => Err(e.into()),
    }
}

/// How a replay ended.
enum Ended {
    Done(Stats),
    /// By SIGINT or SIGTERM.
    Interrupted(Stats),
    /// The trace could not be written: standard output was closed.
    OutputClosed,
}

/// Replays a whole capture through `n` worker threads (`--workers`), writing the outputs in
/// replay order; puts them in place, or, if the run fails, removes them.
#[allow(clippy::too_many_arguments)]
fn replay_workers<P: Pipeline>(
    pipeline: &P,
    n: usize,
    prog: &Program,
    tables: &TableSet,
    replay: &mut Replay,
    mut outputs: PortOutputs,
    stop: &AtomicBool,
    mut progress: crate::progress::Progress,
) -> anyhow::Result<Ended> {
    use sluice_runtime::workers::{replay_parallel, Parallel, WorkerTables};
    let new_stats = || sluice_compiler::stats_for(prog);
    let mut stats = new_stats();
    let result = replay_parallel(
        Parallel {
            pipeline,
            workers: n,
            tables: WorkerTables::Fixed(tables),
            new_stats: &new_stats,
            published: &[],
        },
        replay,
        &mut outputs,
        &mut stats,
        prog.headroom,
        || Duration::ZERO,
        stop,
        true,
        |_, packets, notices, read| {
            progress.update(packets, read);
            for n in &notices {
                progress.suspend(|| errln!("warning: {n}"));
            }
            ControlFlow::Continue(())
        },
    );
    progress.finish();
    if let Err(e) = result {
        outputs.abandon();
        return Err(e.into());
    }
    outputs.finish(&mut stats)?;
    Ok(if stop.load(std::sync::atomic::Ordering::Relaxed) {
        Ended::Interrupted(stats)
    } else {
        Ended::Done(stats)
    })
}

/// Replays a whole capture through a switch, printing the trace if the worker makes one;
/// puts the outputs in place, or, if the run fails, removes them.
fn replay_all<W: Worker>(
    mut sw: Switch<W>,
    replay: &mut Replay,
    tables: &TableSet,
    stop: &AtomicBool,
    trace: bool,
    mut progress: crate::progress::Progress,
) -> anyhow::Result<Ended> {
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let mut text = String::new();
    let mut closed = false;
    let result = sw.replay(
        replay,
        &mut Tables::Fixed(tables),
        || Duration::ZERO,
        stop,
        true,
        |batch| {
            progress.update(batch.stats.packets_in, batch.read_bytes);
            for n in &batch.notices {
                progress.suspend(|| errln!("warning: {n}"));
            }
            if !trace {
                return ControlFlow::Continue(());
            }
            text.clear();
            for p in batch.ring.packets() {
                let _ = writeln!(
                    text,
                    "packet {} ({} bytes, ingress port {})",
                    p.seq + 1,
                    p.in_len,
                    p.meta.ingress_port
                );
                text.push_str(batch.worker.trace(p.index).unwrap_or_default());
            }
            if stdout.write_all(text.as_bytes()).is_err() {
                closed = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        },
    );
    progress.finish();
    if let Err(e) = result {
        sw.outputs.abandon();
        return Err(e.into());
    }
    if closed || stdout.flush().is_err() {
        sw.outputs.abandon();
        return Ok(Ended::OutputClosed);
    }
    drop(stdout);
    let interrupted = stop.load(std::sync::atomic::Ordering::Relaxed);
    let (stats, _) = sw.finish()?;
    Ok(if interrupted {
        Ended::Interrupted(stats)
    } else {
        Ended::Done(stats)
    })
}

/// What went wrong with a port's output, for its line in the summary and in `stats`.
pub fn output_trouble(s: &Stats, port: u16) -> String {
    let get = |v: &[u64]| v.get(usize::from(port)).copied().unwrap_or(0);
    let mut out = String::new();
    if get(&s.unwritten) > 0 {
        out += &format!("  ({} not written: the output failed)", get(&s.unwritten));
    }
    if get(&s.cut) > 0 {
        out += &format!("  ({} cut to the 256 KiB snaplen)", get(&s.cut));
    }
    out
}

/// The end-of-run summary: every packet in is accounted for.
pub fn summary(prog: &Program, s: &Stats) -> String {
    let mut o = String::new();
    let fw = s.forwarded_total();
    let dr = s.dropped_total();
    let _ = writeln!(o, "packets in:    {}", s.packets_in);
    if s.skipped > 0 {
        let _ = writeln!(
            o,
            "skipped:       {} (records whose timestamp classic pcap cannot hold; not run)",
            s.skipped
        );
    }
    let _ = writeln!(o, "forwarded:     {fw}");
    for (p, n) in s.forwarded_ports() {
        let _ = writeln!(o, "  port {p:<8} {n}{}", output_trouble(s, p));
    }
    let _ = writeln!(o, "dropped:       {dr}");
    for (r, n) in s.dropped.iter().enumerate() {
        if *n > 0 {
            let _ = writeln!(o, "  {:<28} {n}", prog.drop_reasons[ReasonId(r)]);
        }
    }
    for why in sluice_runtime::stats::SwitchDrop::ALL {
        let n = s.switch_dropped[why as usize];
        if n > 0 {
            let _ = writeln!(o, "  {:<28} {n}", why.name());
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
