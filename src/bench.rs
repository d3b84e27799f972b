//! `sluice bench`: packets per second of the JIT, the interpreter, the hand-written reference
//! and a plain copy, measured in one run, interleaved so that machine drift cancels.

use crate::native;
use crate::out::{err, outln};
use anyhow::anyhow;
use sluice_compiler::interp::Interp;
use sluice_compiler::jit::JitProgram;
use sluice_runtime::datapath::{DatapathError, Pipeline, Worker};
use sluice_runtime::packet::{PacketBuf, PacketMeta, Verdict};
use sluice_runtime::stats::Stats;
use sluice_runtime::switch::{Ring, Tables, BATCH};
use sluice_runtime::table::TableSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// The program.
    program: PathBuf,
    /// Table entries in simple_switch_CLI syntax.
    #[arg(long)]
    entries: Option<PathBuf>,
    /// The packets, loaded into memory before measuring.
    #[arg(long = "in", value_name = "IN.pcap")]
    input: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Rounds; each round runs every executor once, in turn.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Time each executor gets per round, in milliseconds.
    #[arg(long, default_value_t = 400)]
    round_ms: u64,
    /// Run each executor over exactly this many packets per round instead of for --round-ms
    /// (for instruction counts under callgrind, which do not depend on time).
    #[arg(long, value_name = "N")]
    packets: Option<u64>,
    /// Also measure the JIT reading live tables (as `sluice serve` does, in batches), idle and
    /// while another thread applies this many table updates per second.
    #[arg(long, value_name = "PER_SEC")]
    updates: Option<u32>,
    /// Packets per batch: each executor loads this many packets into as many buffers, then
    /// processes them (the JIT in one call), as a switch works through its receive ring.
    /// 32 is DPDK's usual burst; 1 reuses one buffer, the smallest cache footprint.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
    batch: u16,
    /// Measure only these executors (for profiling one of them).
    #[arg(long, value_delimiter = ',', value_enum)]
    only: Vec<Which>,
    /// Also measure the JIT on 1 to N threads, each running the packets whose flow hash picks
    /// it (hashes computed at load, as a NIC's receive-side scaling does; the steering is
    /// inside the timed loop).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: Option<u16>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    Jit,
    Interp,
    Native,
    Copy,
}

/// The packets, back to back in one allocation.
struct Packets {
    bytes: Vec<u8>,
    spans: Vec<(usize, usize, u32)>,
}

#[derive(Default, Clone, Copy)]
struct Tally {
    packets: u64,
    time: Duration,
}

impl Tally {
    fn mpps(&self) -> f64 {
        self.packets as f64 / self.time.as_secs_f64().max(1e-9) / 1e6
    }
    fn ns(&self) -> f64 {
        self.time.as_nanos() as f64 / (self.packets.max(1)) as f64
    }
}

/// How long each executor runs in a round: for a time, or over a number of packets.
#[derive(Clone, Copy)]
enum Budget {
    Time(Duration),
    Packets(u64),
}

/// Runs `f` over batches of packets from `start`, wrapping, until `budget` is spent;
/// returns how many it did and where it stopped.
fn timed(
    p: &Packets,
    batch: usize,
    start: usize,
    budget: Budget,
    mut f: impl FnMut(&[(usize, usize, u32)]),
) -> (Tally, usize) {
    let t0 = Instant::now();
    let mut i = start;
    let mut n = 0u64;
    loop {
        // Check the clock once per 1024 packets or so.
        let mut done = 0;
        let chunk = match budget {
            Budget::Time(_) => 1024,
            Budget::Packets(max) => usize::try_from(max - n).unwrap_or(usize::MAX),
        };
        while done < chunk {
            let k = batch.min(p.spans.len() - i).min(chunk - done);
            f(&p.spans[i..i + k]);
            done += k;
            i += k;
            if i == p.spans.len() {
                i = 0;
            }
        }
        n += done as u64;
        let el = t0.elapsed();
        let spent = match budget {
            Budget::Time(t) => el >= t,
            Budget::Packets(max) => n >= max,
        };
        if spent {
            return (
                Tally {
                    packets: n,
                    time: el,
                },
                i,
            );
        }
    }
}

pub fn bench(args: &BenchArgs, color: bool) -> anyhow::Result<ExitCode> {
    let source = crate::input::read_text(&args.program, "program")?;
    // Compile time: text to callable native code, as a user waits for it.
    let t0 = Instant::now();
    let compiled = sluice_compiler::compile(&source);
    let compiled = match compiled {
        Ok(c) => c,
        Err(e) => {
            let name = args.program.display().to_string();
            err!(
                "{}",
                sluice_lang::render(&e.diagnostics, &name, &source, color)
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let jit = JitProgram::compile(&compiled.ir, false)?;
    let compile_ms = t0.elapsed().as_secs_f64() * 1e3;
    let prog = compiled.ir;
    let mut tables = sluice_compiler::table_set(&prog)?;
    // Installing the entries, timed as a control plane waits for them, and what they take.
    let rss_before = rss_bytes();
    let t_install = Instant::now();
    if let Some(e) = &args.entries {
        crate::run::load_entries(&mut tables, e)?;
    }
    let install_ms = t_install.elapsed().as_secs_f64() * 1e3;
    let rss_growth = rss_bytes().saturating_sub(rss_before);
    let capture = crate::run::read_input(&args.input)?;
    if capture.records.is_empty() {
        anyhow::bail!("{} has no packets", args.input.display());
    }
    let mut packets = Packets {
        bytes: Vec::new(),
        spans: Vec::new(),
    };
    for r in &capture.records {
        packets
            .spans
            .push((packets.bytes.len(), r.data.len(), r.orig_len));
        packets.bytes.extend_from_slice(&r.data);
    }
    let max_len = capture.max_len();
    drop(capture);
    let name = args
        .program
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("");
    let native = native::for_program(name, &prog, &tables);
    let interp = Interp::new(&prog);
    let mut jit_w = jit.worker();
    let mut interp_w = interp.worker();
    let mut native_w = native.as_ref().map(|n| n.worker());
    let head = prog.headroom;
    let meta = PacketMeta::default();

    // Check first that the executors agree on every packet, so that the figures compare the
    // same work. Each executor works on a copy of the tables with key state of its own
    // (`detached`): sealing counts its nonces, opening remembers what it opened, and each
    // must see the capture as new.
    {
        let (ta, tb) = (tables.detached(), tables.detached());
        let mut a = PacketBuf::with_capacity(head, max_len);
        let mut b = PacketBuf::with_capacity(head, max_len);
        let mut c = PacketBuf::with_capacity(head, max_len);
        let mut sa = sluice_compiler::stats_for(&prog);
        let mut sb = sluice_compiler::stats_for(&prog);
        for (i, &(off, len, orig)) in packets.spans.iter().enumerate().take(100_000) {
            let data = &packets.bytes[off..off + len];
            a.load(head, data, orig);
            b.load(head, data, orig);
            let va = jit_w.process(&ta, &mut sa, &mut a, &meta)?;
            let vb = interp_w.process(&tb, &mut sb, &mut b, &meta)?;
            if va != vb || (matches!(va, Verdict::Forward(_)) && a.data() != b.data()) {
                anyhow::bail!(
                    "packet {}: the JIT and the interpreter disagree ({va:?}, {vb:?})",
                    i + 1
                );
            }
            if let Some(n) = &mut native_w {
                c.load(head, data, orig);
                let vc = n.process(&tb, &mut sb, &mut c, &meta)?;
                if vc != va || (matches!(va, Verdict::Forward(_)) && c.data() != a.data()) {
                    anyhow::bail!(
                        "packet {}: the native reference and the JIT disagree ({vc:?}, {va:?})",
                        i + 1
                    );
                }
            }
        }
    }

    let budget = match args.packets {
        Some(n) => Budget::Packets(n.max(1)),
        None => Budget::Time(Duration::from_millis(args.round_ms)),
    };
    let mut t_jit = Tally::default();
    let mut t_interp = Tally::default();
    let mut t_native = Tally::default();
    let mut t_copy = Tally::default();
    let mut pos = [0usize; 4];
    let mut sink = 0u64;
    // Every executor loads a batch into the same ring of buffers and then processes it, as a
    // switch does its receive ring.
    let batch = usize::from(args.batch);
    let mut ring = Ring::new(batch, head, max_len);
    let mut stats = sluice_compiler::stats_for(&prog);
    let want = |w: Which| args.only.is_empty() || args.only.contains(&w);
    let load = |ring: &mut Ring, spans: &[(usize, usize, u32)]| {
        ring.clear();
        for &(off, len, orig) in spans {
            ring.push(&packets.bytes[off..off + len], orig, meta, 0);
        }
    };
    // The executors agreed on these tables above: a refusal here is a bug.
    let mut refused: Option<DatapathError> = None;
    let (t_jit_tables, t_interp_tables, t_native_tables) =
        (tables.detached(), tables.detached(), tables.detached());
    for _ in 0..args.rounds {
        if want(Which::Jit) {
            let (t, p) = timed(&packets, batch, pos[0], budget, |spans| {
                load(&mut ring, spans);
                sink += run(
                    &mut jit_w,
                    &mut ring,
                    &t_jit_tables,
                    &mut stats,
                    &mut refused,
                );
            });
            add(&mut t_jit, t);
            pos[0] = p;
        }
        if want(Which::Interp) {
            let (t, p) = timed(&packets, batch, pos[1], budget, |spans| {
                load(&mut ring, spans);
                sink += run(
                    &mut interp_w,
                    &mut ring,
                    &t_interp_tables,
                    &mut stats,
                    &mut refused,
                );
            });
            add(&mut t_interp, t);
            pos[1] = p;
        }
        if let Some(n) = native_w.as_mut().filter(|_| want(Which::Native)) {
            let (t, p) = timed(&packets, batch, pos[2], budget, |spans| {
                load(&mut ring, spans);
                sink += run(n, &mut ring, &t_native_tables, &mut stats, &mut refused);
            });
            add(&mut t_native, t);
            pos[2] = p;
        }
        if want(Which::Copy) {
            let (t, p) = timed(&packets, batch, pos[3], budget, |spans| {
                load(&mut ring, spans);
                sink += ring
                    .packets()
                    .map(|p| u64::from(p.pkt.data().first().copied().unwrap_or(0)))
                    .sum::<u64>();
            });
            add(&mut t_copy, t);
            pos[3] = p;
        }
    }
    if let Some(e) = refused {
        return Err(e.into());
    }
    std::hint::black_box(sink);
    let live = match args.updates {
        Some(ups) => Some(live_bench(
            &packets,
            &jit,
            &tables,
            &prog,
            max_len,
            Duration::from_millis(args.round_ms),
            args.rounds,
            ups,
        )?),
        None => None,
    };
    let scaling = match args.workers {
        Some(n) => Some(scaling(
            &packets,
            &jit,
            &tables,
            &prog,
            usize::from(n),
            args.rounds,
            Duration::from_millis(args.round_ms),
            batch,
        )?),
        None => None,
    };
    let entries: usize = tables.tables().iter().map(|t| t.num_entries()).sum();
    let avg_len = packets.bytes.len() as f64 / packets.spans.len() as f64;
    if args.json {
        let obj = |t: &Tally| serde_json::json!({"mpps": t.mpps(), "ns_per_packet": t.ns()});
        let mut j = serde_json::json!({
            "compile_ms": compile_ms,
            "jit": obj(&t_jit),
            "interp": obj(&t_interp),
            "copy": obj(&t_copy),
            "packets": packets.spans.len(),
            "avg_packet_bytes": avg_len,
            "entries": entries,
            "install_ms": install_ms,
            "rss_growth_bytes": rss_growth,
            "tables": tables_json(&tables),
            "jit_over_interp": t_jit.mpps() / t_interp.mpps(),
            "jit_over_copy": t_jit.mpps() / t_copy.mpps(),
        });
        if let Some(sc) = &scaling {
            j["workers"] = serde_json::json!(sc
                .iter()
                .enumerate()
                .map(
                    |(i, m)| serde_json::json!({"workers": i + 1, "mpps": m, "over_one": m / sc[0]})
                )
                .collect::<Vec<_>>());
        }
        if let Some(l) = &live {
            j["live_idle"] = obj(&l.idle);
            j["live_updating"] = obj(&l.updating);
            j["updates_per_sec"] = serde_json::json!(l.achieved);
        }
        if native.is_some() {
            j["native"] = obj(&t_native);
            j["jit_over_native"] = serde_json::json!(t_jit.mpps() / t_native.mpps());
        } else {
            j["native"] = serde_json::Value::Null;
        }
        outln!("{j}")?;
    } else {
        use std::fmt::Write as _;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "{}: {} packets (average {avg_len:.0} bytes), {entries} entries, compile {compile_ms:.1} ms",
            args.program.display(),
            packets.spans.len()
        );
        let _ = writeln!(
            o,
            "entries installed in {install_ms:.0} ms; the process grew by {}",
            human(rss_growth as usize)
        );
        for t in tables.tables().iter().filter(|t| t.num_entries() > 0) {
            let f = t.footprint();
            let detail = if f.detail.is_empty() {
                String::new()
            } else {
                format!(", {}", f.detail)
            };
            let _ = writeln!(
                o,
                "table {}: {} entries, {:?}{detail}, {} ({} of it the lookup structure)",
                t.name(),
                t.num_entries(),
                f.layout,
                human(f.bytes),
                human(f.index_bytes)
            );
        }
        let _ = writeln!(o, "{:<8} {:>10} {:>10}", "", "Mpps", "ns/packet");
        let row = |o: &mut String, n: &str, t: &Tally| {
            let _ = writeln!(o, "{n:<8} {:>10.2} {:>10.1}", t.mpps(), t.ns());
        };
        row(&mut o, "jit", &t_jit);
        row(&mut o, "interp", &t_interp);
        if native.is_some() {
            row(&mut o, "native", &t_native);
        } else {
            let _ = writeln!(o, "native   (no hand-written reference for this program)");
        }
        row(&mut o, "copy", &t_copy);
        if native.is_some() {
            let _ = writeln!(o, "jit/native {:.2}", t_jit.mpps() / t_native.mpps());
        }
        if want(Which::Interp) {
            let _ = writeln!(o, "jit/interp {:.1}", t_jit.mpps() / t_interp.mpps());
        }
        if let Some(l) = &live {
            let _ = writeln!(
                o,
                "live tables: idle {:.2} Mpps, with {:.0} updates/s {:.2} Mpps ({:.2} of idle)",
                l.idle.mpps(),
                l.achieved,
                l.updating.mpps(),
                l.updating.mpps() / l.idle.mpps()
            );
        }
        let _ = writeln!(o, "jit/copy   {:.2}", t_jit.mpps() / t_copy.mpps());
        if let Some(sc) = &scaling {
            let _ = writeln!(o, "{:<8} {:>10} {:>10}", "workers", "Mpps", "vs 1");
            for (i, m) in sc.iter().enumerate() {
                let _ = writeln!(o, "{:<8} {:>10.2} {:>10.2}", i + 1, m, m / sc[0]);
            }
        }
        crate::out::stdout(o)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Bytes in the largest binary unit that keeps a number of at least 1.
fn human(bytes: usize) -> String {
    let mut v = bytes as f64;
    for unit in ["B", "KiB", "MiB"] {
        if v < 1024.0 {
            return if unit == "B" {
                format!("{bytes} B")
            } else {
                format!("{v:.1} {unit}")
            };
        }
        v /= 1024.0;
    }
    format!("{v:.1} GiB")
}

/// The process's resident memory (Linux; 0 elsewhere).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Each table with entries: its layout and footprint, for `--json`.
fn tables_json(tables: &TableSet) -> serde_json::Value {
    tables
        .tables()
        .iter()
        .filter(|t| t.num_entries() > 0)
        .map(|t| {
            let f = t.footprint();
            serde_json::json!({
                "name": t.name(),
                "entries": t.num_entries(),
                "layout": format!("{:?}", f.layout),
                "detail": f.detail,
                "bytes": f.bytes,
                "index_bytes": f.index_bytes,
            })
        })
        .collect()
}

/// Runs a loaded ring through a worker (monomorphized, so that the JIT's batch call is
/// inlined into the loop as in a switch); returns a sum of the verdicts so that the work
/// cannot be optimized away.
#[inline(always)]
fn run<W: Worker>(
    w: &mut W,
    ring: &mut Ring,
    tables: &sluice_runtime::table::TableSet,
    stats: &mut Stats,
    refused: &mut Option<DatapathError>,
) -> u64 {
    if let Err(e) = ring.run(w, tables, stats) {
        refused.get_or_insert(e);
    }
    ring.packets().map(|p| verdict_bits(p.verdict)).sum()
}

fn add(a: &mut Tally, b: Tally) {
    a.packets += b.packets;
    a.time += b.time;
}

fn verdict_bits(v: Verdict) -> u64 {
    match v {
        Verdict::Forward(p) => u64::from(p),
        Verdict::Drop(r) => 1000 + u64::from(r),
    }
}

/// The JIT's rate on 1 to `max` threads (the median of `rounds`, the thread counts measured
/// in turn within each round): each thread has its counter lane and runs, in batches, the
/// packets whose flow hash picks it. The hashes are computed when the packets are loaded, as
/// a NIC computes its receive-side-scaling hash on receive; the steering (reading a packet's
/// hash, taking it or passing it by) is inside the timed loop. Hashing every packet in every
/// thread instead costs each thread a read of every packet's headers (docs/performance.md).
#[allow(clippy::too_many_arguments)]
fn scaling(
    packets: &Packets,
    jit: &JitProgram,
    tables: &sluice_runtime::table::TableSet,
    prog: &sluice_compiler::ir::Program,
    max: usize,
    rounds: u32,
    budget: Duration,
    batch: usize,
) -> anyhow::Result<Vec<f64>> {
    use sluice_runtime::workers::flow_hash;
    let steer: Vec<u64> = packets
        .spans
        .iter()
        .map(|&(off, len, _)| flow_hash(&packets.bytes[off..off + len]))
        .collect();
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); max];
    for _ in 0..rounds.max(1) {
        for n in 1..=max {
            let mut t = tables.detached();
            t.set_lanes(n);
            let barrier = std::sync::Barrier::new(n);
            let counts: Vec<anyhow::Result<(u64, Duration)>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..n)
                    .map(|me| {
                        let (t, barrier, steer) = (&t, &barrier, &steer);
                        s.spawn(move || -> anyhow::Result<(u64, Duration)> {
                            let mut worker = jit.worker_in_lane(me);
                            let mut ring = Ring::new(batch, prog.headroom, 2048);
                            let mut stats = sluice_compiler::stats_for(prog);
                            let meta = PacketMeta::default();
                            let (mut done, mut runs) = (0u64, 0u32);
                            barrier.wait();
                            let t0 = Instant::now();
                            'outer: loop {
                                for (&(off, len, orig), &h) in packets.spans.iter().zip(steer) {
                                    if n > 1 && h % n as u64 != me as u64 {
                                        continue;
                                    }
                                    let data = &packets.bytes[off..off + len];
                                    ring.push(data, orig, meta, 0);
                                    if ring.is_full() {
                                        ring.run(&mut worker, t, &mut stats)?;
                                        done += ring.len() as u64;
                                        ring.clear();
                                        // The clock, every 16 batches.
                                        runs += 1;
                                        if runs.is_multiple_of(16) && t0.elapsed() >= budget {
                                            break 'outer;
                                        }
                                    }
                                }
                                if t0.elapsed() >= budget {
                                    break;
                                }
                            }
                            Ok((done, t0.elapsed()))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(anyhow!("a worker thread panicked")))
                    })
                    .collect()
            });
            let mut total = 0u64;
            let mut longest = Duration::ZERO;
            for c in counts {
                let (k, d) = c?;
                total += k;
                longest = longest.max(d);
            }
            figures[n - 1].push(total as f64 / longest.as_secs_f64().max(1e-9) / 1e6);
        }
    }
    Ok(figures
        .into_iter()
        .map(|mut v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        })
        .collect())
}

struct LiveFigures {
    idle: Tally,
    updating: Tally,
    achieved: f64,
}

/// The JIT over live tables, in batches as `sluice serve` runs it: once idle, once while a
/// second thread modifies an entry `ups` times a second.
#[allow(clippy::too_many_arguments)]
fn live_bench(
    packets: &Packets,
    jit: &JitProgram,
    tables: &sluice_runtime::table::TableSet,
    prog: &sluice_compiler::ir::Program,
    max_len: usize,
    budget: Duration,
    rounds: u32,
    ups: u32,
) -> anyhow::Result<LiveFigures> {
    use sluice_runtime::live::LiveTables;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    // The entry to modify: the first entry of the first table that has one.
    let target = tables
        .tables()
        .iter()
        .enumerate()
        .find_map(|(i, t)| t.entries().next().map(|e| (i, e.handle, e.call.clone())))
        .ok_or_else(|| anyhow!("--updates needs at least one table entry to modify"))?;
    let (live, mut reader) = LiveTables::new(tables.detached());
    let meta = PacketMeta::default();
    // As `sluice serve` runs: a batch loaded into a ring, run in one call.
    let mut ring = Ring::new(BATCH, prog.headroom, max_len);
    let mut worker = jit.worker();
    let mut stats = sluice_compiler::stats_for(prog);
    let mut pos = 0usize;
    let mut sink = 0u64;
    let mut refused = None;
    let mut run = |reader: &mut sluice_runtime::live::Reader| -> Tally {
        let t0 = Instant::now();
        let mut n = 0u64;
        while t0.elapsed() < budget {
            ring.clear();
            while !ring.is_full() {
                let (off, len, orig) = packets.spans[pos];
                ring.push(&packets.bytes[off..off + len], orig, meta, 0);
                pos += 1;
                if pos == packets.spans.len() {
                    pos = 0;
                }
            }
            let mut t = Tables::Live(reader);
            if let Err(e) = t.with(|t| ring.run(&mut worker, t, &mut stats)) {
                refused.get_or_insert(e);
            }
            sink += ring.packets().map(|p| verdict_bits(p.verdict)).sum::<u64>();
            n += ring.len() as u64;
        }
        Tally {
            packets: n,
            time: t0.elapsed(),
        }
    };
    let mut idle = Tally::default();
    let mut updating = Tally::default();
    let done = Arc::new(AtomicU64::new(0));
    for _ in 0..rounds {
        add(&mut idle, run(&mut reader));
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (live, stop, done, target) =
                (live.clone(), stop.clone(), done.clone(), target.clone());
            std::thread::spawn(move || {
                let period = Duration::from_secs_f64(1.0 / f64::from(ups.max(1)));
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let (t, h, call) = &target;
                    let _ = live.write(|s| s.modify(*t, *h, call.clone()));
                    done.fetch_add(1, Ordering::Relaxed);
                    next += period;
                    if let Some(d) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(d);
                    }
                }
            })
        };
        add(&mut updating, run(&mut reader));
        stop.store(true, Ordering::Relaxed);
        let _ = writer.join();
    }
    if let Some(e) = refused {
        return Err(e.into());
    }
    std::hint::black_box(sink);
    let achieved = done.load(Ordering::Relaxed) as f64 / updating.time.as_secs_f64().max(1e-9);
    Ok(LiveFigures {
        idle,
        updating,
        achieved,
    })
}
