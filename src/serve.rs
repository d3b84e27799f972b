//! `sluice serve`: a long-running switch. Captures are replayed as the ingress of ports,
//! what leaves port N goes to DIR/port-N.pcap, and a control socket takes simple_switch_CLI
//! commands while packets flow (docs/control-protocol.md).

use crate::out::errln;
use anyhow::{anyhow, bail, Context};
use sluice_compiler::ir::{Program, ReasonId};
use sluice_compiler::jit::JitProgram;
use sluice_runtime::command;
use sluice_runtime::control::{self, Reply, Request};
use sluice_runtime::datapath::Pipeline;
use sluice_runtime::live::LiveTables;
use sluice_runtime::ports::{LinkSpec, LiveFiles, LiveRun};
use sluice_runtime::stats::{Stats, SwitchDrop};
use sluice_runtime::switch::{
    OnFailure, Pacing, PortOutputs, Publish, Replay, Ring, Switch, Tables, BATCH, FIRST_BUFFER_LEN,
};
use std::io::Write;
use std::ops::ControlFlow;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// The program.
    program: PathBuf,
    /// The control socket to create (mode 0600).
    #[arg(long, default_value = "sluice.sock")]
    control: PathBuf,
    /// Table entries to install before packets flow.
    #[arg(long)]
    entries: Option<PathBuf>,
    /// Replay a capture as the ingress of port N (repeatable).
    #[arg(long = "in", value_name = "N=IN.pcap")]
    inputs: Vec<String>,
    /// Port N is the Linux interface IFACE (repeatable): packets arriving there go into the
    /// switch, packets forwarded to N leave through it. Needs root or CAP_NET_RAW.
    #[arg(long = "port", value_name = "N=IFACE")]
    ports: Vec<String>,
    /// Where to write port-N.pcap for each egress port without an interface (without it,
    /// packets forwarded to such a port are dropped as "no such port").
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Also write what each port on an interface receives and sends, as
    /// DIR/port-N-in.pcap and DIR/port-N-out.pcap (readable while the switch runs).
    #[arg(long, value_name = "DIR")]
    capture: Option<PathBuf>,
    /// Follow a fleet's etcd store (docs/fleet.md): its endpoints, comma-separated. The
    /// tables are loaded from the store before packets flow, then kept as it changes.
    #[arg(long, value_name = "ENDPOINTS", requires_all = ["prefix", "group", "switch_id"], conflicts_with = "entries")]
    etcd: Option<String>,
    /// The fleet's prefix in the store, for example /sluice/prod.
    #[arg(long, value_name = "PATH", requires = "etcd")]
    prefix: Option<String>,
    /// The group this switch belongs to: it holds the group's entries (and its own).
    #[arg(long, value_name = "NAME", requires = "etcd")]
    group: Option<String>,
    /// This switch's name in the fleet.
    #[arg(long, value_name = "ID", requires = "etcd")]
    switch_id: Option<String>,
    /// Append `revision R first-packet last-packet` for each batch the switch runs, R being
    /// the store's revision its tables held (with --etcd; for audits and tests).
    #[arg(long, value_name = "FILE", requires = "etcd")]
    revision_log: Option<PathBuf>,
    /// Take the ports' packets with AF_XDP (an XDP program and a socket per receive queue)
    /// where the kernel and driver allow it, falling back to AF_PACKET, with the reason, where
    /// they do not.
    #[arg(long)]
    af_xdp: bool,
    /// Replay each input at this many packets per second.
    #[arg(long, value_name = "PPS", conflicts_with = "realtime")]
    rate: Option<f64>,
    /// Replay each input at the capture's own timing.
    #[arg(long)]
    realtime: bool,
    /// Exit once every input has been replayed (otherwise run until SIGINT or SIGTERM).
    #[arg(long)]
    exit_when_done: bool,
    /// Write what each output has gathered at least this often, in milliseconds, so that
    /// the files can be read while the switch runs (whole records only).
    #[arg(long, value_name = "MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    flush_ms: u64,
    /// No progress bar for the replay (it is drawn only on a terminal anyway).
    #[arg(long, short)]
    quiet: bool,
    /// Forwarding threads sharing the live tables: packets are spread over them by a flow
    /// hash, and the outputs are written in replay order, byte for byte those of one.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: u16,
}

/// What the control thread knows of the switch beyond its tables.
#[derive(Default)]
pub struct SwitchInfo {
    pub links: Vec<LinkSpec>,
    pub fleet: Option<Arc<crate::fleet::FleetStatus>>,
}

/// `--port N=IFACE`.
fn parse_port(s: &str) -> anyhow::Result<LinkSpec> {
    let echo = sluice_defs::names::echo;
    let (n, iface) = s.split_once('=').ok_or_else(|| {
        anyhow!(
            "--port {}: expected N=IFACE, for example --port 0=eth1",
            echo(s)
        )
    })?;
    let port: u16 = n.parse().map_err(|_| {
        anyhow!(
            "--port {}: '{}' is not a port number (0 to 65535)",
            echo(s),
            echo(n)
        )
    })?;
    if iface.is_empty() {
        bail!("--port {}: no interface name after '='", echo(s));
    }
    Ok(LinkSpec {
        port,
        iface: iface.to_string(),
    })
}

fn parse_input(s: &str) -> anyhow::Result<(u16, PathBuf)> {
    let (n, path) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("--in {s}: expected N=FILE, for example --in 0=in.pcap"))?;
    let port: u16 = n.parse().map_err(|_| {
        anyhow!(
            "--in {}: '{}' is not a port number (0 to 65535)",
            sluice_defs::names::echo(s),
            sluice_defs::names::echo(n)
        )
    })?;
    Ok((port, PathBuf::from(path)))
}

/// The control socket and the lock that makes it this switch's alone. Dropping it removes
/// the socket and the lock file, on every way out of `serve`.
struct ControlSocket {
    path: PathBuf,
    lock_path: PathBuf,
    /// Held (flock) as long as the switch runs.
    _lock: std::fs::File,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(&self.lock_path);
    }
}

/// Creates the control socket at `path`, mode 0600 from the start.
///
/// One switch per path: a lock file beside the socket (`PATH.lock`, locked with flock while
/// the switch runs) makes two switches started at once exclude each other. Only a stale
/// socket (one nothing answers on) is replaced; a live one, or anything that is not a socket
/// (a regular file, a directory, a link), is refused and left as it is.
fn bind_control(path: &Path) -> anyhow::Result<(UnixListener, ControlSocket)> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let shown = path.display();
    let mut lock_name = path.as_os_str().to_owned();
    lock_name.push(".lock");
    let lock_path = PathBuf::from(lock_name);
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&lock_path)
        .with_context(|| format!("{shown}: cannot open its lock file {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        bail!("{shown}: another switch is already listening on this control socket");
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                bail!("{shown}: a switch is already listening on this control socket");
            }
            std::fs::remove_file(path)
                .with_context(|| format!("{shown}: cannot remove the stale socket"))?;
        }
        Ok(_) => bail!(
            "{shown}: exists and is not a socket; refusing to replace it (choose another \
             --control path, or remove it)"
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(anyhow!("{shown}: {e}")),
    }
    // The socket is created with the umask's permissions: make them 0600 for the bind, so
    // that no other user can connect in the moment before a chmod.
    // SAFETY: umask only changes the process's file mode mask; no other thread exists yet
    // that creates files (the control thread starts after the bind).
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above; restores the mask the process had.
    unsafe { libc::umask(old) };
    let listener = bound.map_err(|e| anyhow!("{shown}: cannot create the control socket: {e}"))?;
    Ok((
        listener,
        ControlSocket {
            path: path.to_owned(),
            lock_path,
            _lock: lock,
        },
    ))
}

pub fn serve(args: &ServeArgs, color: bool) -> anyhow::Result<ExitCode> {
    if args.ports.is_empty() && args.inputs.is_empty() {
        bail!(
            "nothing to serve: give ports on interfaces (--port N=IFACE) or captures to replay \
             (--in N=FILE)"
        );
    }
    if args.ports.is_empty() && args.out_dir.is_none() {
        bail!(
            "--out-dir DIR is needed to write what leaves the ports (or give ports on \
             interfaces with --port N=IFACE)"
        );
    }
    let Some(compiled) = crate::load_program(&args.program, color)? else {
        return Ok(ExitCode::FAILURE);
    };
    let prog = compiled.ir;
    let jit = JitProgram::compile(&prog, false)?;
    let mut tables = sluice_compiler::table_set(&prog)?;
    if let Some(e) = &args.entries {
        crate::run::load_entries(&mut tables, e)?;
    }
    if args.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        bail!("--rate must be a positive number of packets per second");
    }
    let mut inputs = Vec::new();
    let mut paths = Vec::new();
    for s in &args.inputs {
        let (port, path) = parse_input(s)?;
        inputs.push((port, crate::run::open_input(&path)?));
        paths.push(path);
    }
    let pacing = match (args.rate, args.realtime) {
        (Some(pps), _) => Pacing::Rate(pps),
        (None, true) => Pacing::Realtime,
        (None, false) => Pacing::Flood,
    };
    let mut links: Vec<LinkSpec> = Vec::new();
    for s in &args.ports {
        let l = parse_port(s)?;
        if let Some(other) = links.iter().find(|o| o.port == l.port) {
            bail!(
                "--port {}: port {} is already interface {}",
                sluice_defs::names::echo(s),
                l.port,
                sluice_defs::names::echo(&other.iface)
            );
        }
        links.push(l);
    }
    // Interfaces are opened before anything else is made, so that a missing one, one that
    // is down, or no permission is an error before any packet flows.
    let sockets = if links.is_empty() {
        Vec::new()
    } else {
        sluice_runtime::ports::open_links(&links, usize::from(args.workers), args.af_xdp, &|n| {
            errln!("sluice: {n}")
        })?
    };
    let mut replay = Replay::new(inputs, pacing).map_err(|e| anyhow!("cannot read capture {e}"))?;
    if let Some(d) = &args.out_dir {
        crate::make_out_dir(d)?;
    }
    if let Some(d) = &args.capture {
        crate::make_out_dir(d)?;
    }

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("cannot install signal handlers")?;
    }
    let workers = usize::from(args.workers);
    tables.set_lanes(workers);
    let (live, readers) = LiveTables::with_readers(tables, workers);
    // Each worker's counters for `stats`, and the switch's own (outputs, skipped records).
    let published: Arc<Vec<Mutex<Stats>>> = Arc::new(
        (0..=workers)
            .map(|_| Mutex::new(sluice_compiler::stats_for(&prog)))
            .collect(),
    );
    let fleet = match &args.etcd {
        Some(endpoints) => {
            let status = Arc::new(crate::fleet::FleetStatus::default());
            let (Some(prefix), Some(group), Some(id)) =
                (&args.prefix, &args.group, &args.switch_id)
            else {
                bail!("--etcd needs --prefix, --group and --switch-id");
            };
            crate::fleet::check_name("--group", group)?;
            crate::fleet::check_name("--switch-id", id)?;
            crate::fleet::start(
                crate::fleet::Follow {
                    endpoints: endpoints.split(',').map(str::to_string).collect(),
                    layout: crate::fleet::Layout::new(prefix)?,
                    group: group.clone(),
                    switch_id: id.clone(),
                    live: live.clone(),
                    status: status.clone(),
                    applied_log: args.revision_log.clone(),
                },
                live.read(|s| s.fingerprint().to_string()),
                Duration::from_secs(30),
            )?;
            Some(status)
        }
        None => None,
    };
    let (listener, socket) = bind_control(&args.control)?;
    {
        let live = live.clone();
        let published = published.clone();
        let prog = prog.clone();
        let name = args.program.display().to_string();
        let links = links.clone();
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                accept_loop(
                    listener,
                    live,
                    published,
                    prog,
                    name,
                    SwitchInfo { links, fleet },
                )
            })
            .context("cannot start the control thread")?;
    }
    errln!(
        "sluice: serving {} (control socket {})",
        args.program.display(),
        args.control.display()
    );

    if !links.is_empty() {
        let r = serve_live(
            args, &prog, &jit, sockets, replay, readers, &published, &stop,
        );
        drop(socket);
        let (stats, notices) = r?;
        for n in notices {
            errln!("sluice: {n}");
        }
        return crate::run::print_summary(&crate::run::summary(&prog, &stats));
    }
    let out_dir = args
        .out_dir
        .as_deref()
        .context("--out-dir is needed without --port")?;
    // Outputs in place from the start, so that they can be read while the switch runs; one
    // that fails is given up, and the switch goes on with the others.
    let mut outputs = PortOutputs::new(
        out_dir,
        replay.linktype(),
        replay.nanos(),
        Publish::AtOnce,
        OnFailure::GiveUpPort,
    );
    outputs.flush_every = Some(Duration::from_millis(args.flush_ms));
    let mut progress = crate::progress::Progress::new(
        crate::progress::Progress::total_of(
            &paths.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
        ),
        args.quiet,
    );
    let mut revision_log = match &args.revision_log {
        Some(p) => Some(std::io::LineWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open {}", p.display()))?,
        )),
        None => None,
    };
    if revision_log.is_some() && workers > 1 {
        bail!("--revision-log runs with one worker");
    }
    let start = Instant::now();
    let finished = if workers == 1 {
        // One thread: a ring of buffers loaded with the packets that are due, run in batches
        // against the live tables' current copy.
        let mut readers = readers;
        let mut reader = readers.pop().context("no reader for the datapath")?;
        let mut sw = Switch {
            worker: jit.worker(),
            ring: Ring::new(BATCH, prog.headroom, FIRST_BUFFER_LEN),
            stats: sluice_compiler::stats_for(&prog),
            outputs,
        };
        let result = sw.replay(
            &mut replay,
            &mut Tables::Live(&mut reader),
            || start.elapsed(),
            &stop,
            args.exit_when_done,
            |batch| {
                if let Some(log) = revision_log.as_mut() {
                    let first = batch.ring.packets().map(|p| p.seq).min();
                    let last = batch.ring.packets().map(|p| p.seq).max();
                    if let (Some(a), Some(b)) = (first, last) {
                        let _ = writeln!(log, "revision {} {a} {b}", batch.revision);
                    }
                }
                progress.update(batch.stats.packets_in, batch.read_bytes);
                for n in &batch.notices {
                    progress.suspend(|| errln!("sluice: {n}"));
                }
                // Publish the counters for `stats`, without ever waiting for the control
                // plane.
                if let Ok(mut p) = published[0].try_lock() {
                    p.clone_from(batch.stats);
                }
                ControlFlow::Continue(())
            },
        );
        reader.end();
        result.map(|()| sw.finish())
    } else {
        use sluice_runtime::workers::{replay_parallel, Parallel, WorkerTables};
        let new_stats = || sluice_compiler::stats_for(&prog);
        let mut stats = new_stats();
        let result = replay_parallel(
            Parallel {
                pipeline: &jit,
                workers,
                tables: WorkerTables::Live(readers),
                new_stats: &new_stats,
                published: &published[..workers],
            },
            &mut replay,
            &mut outputs,
            &mut stats,
            prog.headroom,
            || start.elapsed(),
            &stop,
            args.exit_when_done,
            |own, packets, notices, read| {
                progress.update(packets, read);
                for n in &notices {
                    progress.suspend(|| errln!("sluice: {n}"));
                }
                if let Ok(mut p) = published[workers].try_lock() {
                    p.clone_from(own);
                }
                ControlFlow::Continue(())
            },
        );
        result.map(|()| {
            let notices = outputs.finish(&mut stats)?;
            Ok((stats, notices))
        })
    };
    progress.finish();
    drop(socket);
    let (stats, notices) = finished??;
    let paths: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    crate::run::say_warnings(&replay, &paths);
    for n in notices {
        errln!("sluice: {n}");
    }
    crate::run::print_summary(&crate::run::summary(&prog, &stats))
}

/// The live switch: ports on interfaces (opened here, before any packet flows), captures
/// replayed into ports, files for ports without an interface. Runs until SIGINT or SIGTERM
/// (or, with `--exit-when-done`, until the replays are done).
#[allow(clippy::too_many_arguments)]
fn serve_live(
    args: &ServeArgs,
    prog: &Program,
    jit: &JitProgram,
    sockets: Vec<sluice_runtime::ports::WorkerLinks>,
    replay: Replay,
    readers: Vec<sluice_runtime::live::Reader>,
    published: &[Mutex<Stats>],
    stop: &AtomicBool,
) -> anyhow::Result<(Stats, Vec<String>)> {
    let workers = readers.len();
    let with_replay = !args.inputs.is_empty();
    // Live packets carry the kernel's nanosecond timestamps.
    let (linktype, nanos) = if with_replay {
        (replay.linktype(), true)
    } else {
        (1, true)
    };
    let flush_every = Duration::from_millis(args.flush_ms);
    let files_in = |dir: &Path, suffix: &'static str| {
        let mut o = PortOutputs::new(dir, linktype, nanos, Publish::AtOnce, OnFailure::GiveUpPort)
            .with_suffix(suffix);
        o.flush_every = Some(flush_every);
        Mutex::new(o)
    };
    let files = LiveFiles {
        outputs: args.out_dir.as_deref().map(|d| files_in(d, "")),
        capture_in: args.capture.as_deref().map(|d| files_in(d, "-in")),
        capture_out: args.capture.as_deref().map(|d| files_in(d, "-out")),
    };
    let names: Vec<String> = sockets
        .first()
        .map(|first| {
            first
                .iter()
                .map(|(port, link)| format!("{port}={} ({})", link.name(), link.kind()))
                .collect()
        })
        .unwrap_or_default();
    errln!(
        "sluice: ports {} up ({} worker{})",
        names.join(", "),
        workers,
        if workers == 1 { "" } else { "s" }
    );
    let new_stats = || sluice_compiler::stats_for(prog);
    let notice = |n: String| errln!("sluice: {n}");
    let result = sluice_runtime::ports::run_live(LiveRun {
        pipeline: jit,
        links: sockets,
        readers,
        replay: with_replay.then_some(replay),
        files: &files,
        headroom: prog.headroom,
        new_stats: &new_stats,
        published: &published[..workers],
        stop,
        exit_when_done: args.exit_when_done,
        flush_every,
        notice: &notice,
    });
    let mut stats = result?;
    let mut notices = Vec::new();
    if let Some(o) = files.outputs {
        notices.extend(
            o.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .finish(&mut stats)?,
        );
    }
    for c in [files.capture_in, files.capture_out].into_iter().flatten() {
        let mut scratch = Stats::default();
        notices.extend(
            c.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .finish(&mut scratch)?,
        );
    }
    Ok((stats, notices))
}

/// How many control connections are served at once: each is a thread and two descriptors, so
/// that idle connections by the thousand could otherwise lock every client out.
pub const MAX_CLIENTS: usize = 64;
/// How long a reply may wait for its client to read it before the connection is closed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

fn accept_loop(
    listener: UnixListener,
    live: LiveTables,
    stats: Arc<Vec<Mutex<Stats>>>,
    prog: Program,
    name: String,
    info: SwitchInfo,
) {
    let info = Arc::new(info);
    let clients = Arc::new(AtomicUsize::new(0));
    // One `table_dump` reply is built at a time, so that clients that do not read cannot
    // make the switch hold many copies of a large table's text.
    let dump_slot = Arc::new(Mutex::new(()));
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        if clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
            clients.fetch_sub(1, Ordering::SeqCst);
            let _ = conn.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = conn.write_all(
                Reply {
                    id: 0,
                    ok: false,
                    text: format!(
                        "too many control connections (at most {MAX_CLIENTS}); close one and try again"
                    ),
                }
                .to_line()
                .as_bytes(),
            );
            continue;
        }
        let (live, stats, prog, name) = (live.clone(), stats.clone(), prog.clone(), name.clone());
        let info = info.clone();
        let (clients, slot) = (clients.clone(), dump_slot.clone());
        let client = clients.clone();
        let started = std::thread::Builder::new()
            .name("control-client".into())
            .spawn(move || {
                // A client that misbehaves only ends its own connection.
                let _ = serve_client(conn, &live, &stats, &prog, &name, &slot, &info);
                client.fetch_sub(1, Ordering::SeqCst);
            });
        if started.is_err() {
            clients.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn error_line(id: u64, text: String) -> String {
    Reply {
        id,
        ok: false,
        text,
    }
    .to_line()
}

fn serve_client(
    conn: UnixStream,
    live: &LiveTables,
    stats: &[Mutex<Stats>],
    prog: &Program,
    name: &str,
    dump_slot: &Mutex<()>,
    info: &SwitchInfo,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(3600)))?;
    conn.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut w = conn.try_clone()?;
    let mut r = std::io::BufReader::new(conn);
    let hello = match control::read_line_limited(&mut r, control::MAX_LINE) {
        Ok(Some(l)) => l,
        Ok(None) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            let e = control::ControlError::HelloTooLong;
            return w.write_all(error_line(0, e.to_string()).as_bytes());
        }
        Err(e) => return Err(e),
    };
    if let Err(e) = control::check_client_hello(&hello) {
        return w.write_all(error_line(0, e.to_string()).as_bytes());
    }
    let tables: Vec<String> = prog.tables.iter().map(|t| t.name.clone()).collect();
    let actions: Vec<String> = prog.actions.iter().map(|a| a.name.clone()).collect();
    let mut commands: Vec<&str> = command::COMMANDS.to_vec();
    commands.extend(command::SWITCH_COMMANDS);
    w.write_all(control::server_hello(name, &tables, &actions, &commands).as_bytes())?;
    loop {
        let line = match control::read_line_limited(&mut r, control::MAX_LINE) {
            Ok(Some(l)) => l,
            Ok(None) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                let msg = format!(
                    "request too long (at most {} bytes); closing",
                    control::MAX_LINE
                );
                return w.write_all(error_line(0, msg).as_bytes());
            }
            Err(e) => return Err(e),
        };
        let reply = match control::parse_request(&line) {
            Request::Malformed { id, error } => Reply {
                id,
                ok: false,
                text: error,
            },
            Request::Command { id, command } if is_dump(&command) => {
                let dump = {
                    let _slot = dump_slot.lock().unwrap_or_else(|e| e.into_inner());
                    match dump_table(&command, live) {
                        // Sent while the slot is held: the text is freed before the next dump.
                        Ok(text) => {
                            send_output(&w, id, &text)?;
                            continue;
                        }
                        Err(text) => text,
                    }
                };
                Reply {
                    id,
                    ok: false,
                    text: dump,
                }
            }
            Request::Command { id, command } => match handle(&command, live, stats, prog, info) {
                Ok(text) => Reply { id, ok: true, text },
                Err(text) => Reply {
                    id,
                    ok: false,
                    text,
                },
            },
        };
        w.write_all(reply.to_line().as_bytes())?;
    }
}

fn is_dump(line: &str) -> bool {
    command::strip_comment(line).split_whitespace().next() == Some("table_dump")
}

/// `table_dump`: the text of one table, its counters summed over the two copies, built under
/// the lock from that table alone (not a copy of every table).
fn dump_table(line: &str, live: &LiveTables) -> Result<String, String> {
    live.read_both(|a, b| {
        let cmd = command::parse_command(line, a).map_err(|e| e.to_string())?;
        match cmd {
            Some(command::Command::TableDump { table }) => {
                command::table_dump_text(a, table, Some(b)).map_err(|e| e.to_string())
            }
            _ => Err("table_dump: usage: table_dump TABLE".to_string()),
        }
    })
}

/// A success reply whose output may be large, written in pieces as the client reads them
/// (the socket's buffer is the back-pressure), byte for byte what [`Reply::to_line`] would
/// make. The whole reply must be read within WRITE_TIMEOUT, so that a client reading a byte
/// at a time cannot hold the dump slot.
fn send_output(w: &UnixStream, id: u64, text: &str) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(
        1 << 16,
        Deadline {
            stream: w,
            until: Instant::now() + WRITE_TIMEOUT,
        },
    );
    write!(out, "{{\"id\":{id},\"ok\":true,\"output\":\"")?;
    let mut rest = text;
    while !rest.is_empty() {
        let mut cut = rest.len().min(1 << 15);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let piece = serde_json::to_string(&rest[..cut]).map_err(std::io::Error::other)?;
        // Without the quotes serde_json put around the piece.
        out.write_all(&piece.as_bytes()[1..piece.len() - 1])?;
        rest = &rest[cut..];
    }
    out.write_all(b"\"}\n")?;
    out.flush()?;
    drop(out);
    w.set_write_timeout(Some(WRITE_TIMEOUT))
}

/// Writes to a socket until a point in time, then fails with TimedOut.
struct Deadline<'a> {
    stream: &'a UnixStream,
    until: Instant,
}

impl Write for Deadline<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.stream.set_write_timeout(Some(left))?;
        let mut s = self.stream;
        s.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs one command against the live tables.
pub fn handle(
    line: &str,
    live: &LiveTables,
    stats: &[Mutex<Stats>],
    prog: &Program,
    info: &SwitchInfo,
) -> Result<String, String> {
    let links = &info.links[..];
    let words: Vec<&str> = command::strip_comment(line).split_whitespace().collect();
    let table_of = |live: &LiveTables, name: &str| {
        live.read(|s| s.by_name(name))
            .ok_or_else(|| format!("unknown table '{}'", sluice_defs::names::echo(name)))
    };
    match words.as_slice() {
        [] => Ok(String::new()),
        ["stats"] => {
            // Every worker's counters, and the switch's own.
            let mut s = sluice_compiler::stats_for(prog);
            let mut per_worker = Vec::new();
            for part in stats {
                let part = part.lock().unwrap_or_else(|e| e.into_inner());
                per_worker.push(part.packets_in);
                s.add(&part);
            }
            let mut text = format_stats(prog, &s, links);
            // The last part is the switch's own (outputs), not a worker's.
            if per_worker.len() > 2 {
                per_worker.pop();
                let each: Vec<String> = per_worker.iter().map(u64::to_string).collect();
                text.push_str(&format!(
                    "\nworkers: {} (packets in: {})",
                    per_worker.len(),
                    each.join(", ")
                ));
            }
            if let Some(f) = &info.fleet {
                use std::sync::atomic::Ordering::Relaxed;
                text.push_str(&format!(
                    "\netcd revision: {} ({}, {} values skipped, {} reloads)",
                    f.revision.load(Relaxed),
                    if f.connected.load(Relaxed) {
                        "following"
                    } else {
                        "store unreachable: forwarding with these tables"
                    },
                    f.skipped.load(Relaxed),
                    f.reloads.load(Relaxed)
                ));
            }
            Ok(text)
        }
        ["stats", ..] => Err("stats: takes no arguments; usage: stats".into()),
        ["show_ports"] => Ok(show_ports(links)),
        ["show_ports", ..] => Err("show_ports: takes no arguments; usage: show_ports".into()),
        ["counter_read", t, h] => {
            let ti = table_of(live, t)?;
            let h: u32 = h.parse().map_err(|_| {
                format!(
                    "counter_read: '{}' is not an entry handle",
                    sluice_defs::names::echo(h)
                )
            })?;
            live.read_both(|a, b| {
                let ea = a.tables()[ti].entry(sluice_runtime::table::EntryHandle(h));
                let eb = b.tables()[ti].entry(sluice_runtime::table::EntryHandle(h));
                match (ea, eb) {
                    (Some(x), Some(y)) => Ok(format!(
                        "{t}[{h}]= ({} packets, {} bytes)",
                        x.packets + y.packets,
                        x.bytes + y.bytes
                    )),
                    _ => Err(format!("table {t}: no entry with handle {h}")),
                }
            })
        }
        ["counter_read", ..] => Err("counter_read: usage: counter_read TABLE HANDLE".into()),
        ["counter_reset", t] => {
            let ti = table_of(live, t)?;
            live.read_both(|a, b| {
                a.tables()[ti].reset_counters();
                b.tables()[ti].reset_counters();
            });
            Ok(format!("counters of table {t} reset"))
        }
        ["counter_reset", ..] => Err("counter_reset: usage: counter_reset TABLE".into()),
        ["table_dump", ..] => dump_table(line, live),
        [verb, ..]
            if info.fleet.is_some()
                && matches!(
                    *verb,
                    "table_add"
                        | "table_modify"
                        | "table_delete"
                        | "table_set_default"
                        | "table_reset_default"
                        | "table_clear"
                ) =>
        {
            // The follower keeps the tables as the store says; a change here would be
            // undone at the next reload, and would move the handles it relies on.
            Err(format!(
                "{verb}: this switch follows a fleet's etcd store; change its tables with \
                 sluice ctl --etcd (docs/fleet.md)"
            ))
        }
        _ => {
            let cmd = live
                .read(|s| command::parse_command(line, s))
                .map_err(|e| match e {
                    command::CommandError::UnknownCommand { name } => {
                        let mut all: Vec<&str> = command::COMMANDS.to_vec();
                        all.extend(command::SWITCH_COMMANDS);
                        format!(
                            "unknown command '{name}'; valid commands: {}",
                            all.join(", ")
                        )
                    }
                    e => e.to_string(),
                })?;
            let Some(cmd) = cmd else {
                return Ok(String::new());
            };
            live.write(|s| command::apply(s, &cmd))
                .map(|o| o.text)
                .map_err(|e| e.to_string())
        }
    }
}

/// The `stats` command's output: per port in and out, drops per reason, per table hits and
/// misses.
pub fn format_stats(prog: &Program, s: &Stats, links: &[LinkSpec]) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(o, "packets in: {}", s.packets_in);
    if s.skipped > 0 {
        let _ = writeln!(o, "  skipped (timestamp not representable) {}", s.skipped);
    }
    for (p, n) in s.in_ports() {
        let _ = writeln!(o, "  port {p:<6} in {n}");
    }
    let _ = writeln!(o, "forwarded: {}", s.forwarded_total());
    for (p, n) in s.forwarded_ports() {
        let _ = writeln!(
            o,
            "  port {p:<6} out {n}{}",
            crate::run::output_trouble(s, p)
        );
    }
    let _ = writeln!(o, "dropped: {}", s.dropped_total());
    for (r, n) in s.dropped.iter().enumerate().filter(|(_, n)| **n > 0) {
        let _ = writeln!(o, "  {:<28} {n}", prog.drop_reasons[ReasonId(r)]);
    }
    for why in SwitchDrop::ALL {
        let n = s.switch_dropped[why as usize];
        if n > 0 {
            let _ = writeln!(o, "  {:<28} {n}", why.name());
        }
    }
    for (i, t) in prog.tables.iter().enumerate() {
        let _ = writeln!(
            o,
            "table {:<16} hits {:<8} misses {}",
            t.name, s.table_hits[i], s.table_misses[i]
        );
    }
    // Ports on interfaces: what their rings saw, and what arrived there and was dropped.
    let none = Default::default();
    for l in links {
        let c = s.links.get(usize::from(l.port)).unwrap_or(&none);
        let _ = writeln!(
            o,
            "port {:<6} {:<16} received {} ({} bytes) sent {} ({} bytes) overruns {} dropped {}",
            l.port,
            l.iface,
            c.received,
            c.received_bytes,
            c.sent,
            c.sent_bytes,
            c.overruns,
            c.dropped_total()
        );
        for (r, n) in c.dropped.iter().enumerate().filter(|(_, n)| **n > 0) {
            let _ = writeln!(o, "  {:<28} {n}", prog.drop_reasons[ReasonId(r)]);
        }
        for why in SwitchDrop::ALL {
            let n = c.switch_dropped[why as usize];
            if n > 0 {
                let _ = writeln!(o, "  {:<28} {n}", why.name());
            }
        }
    }
    o.trim_end().to_string()
}

/// `show_ports`, as BMv2's simple_switch_CLI prints it: each port on an interface, the
/// interface's state and its Ethernet address.
pub fn show_ports(links: &[LinkSpec]) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<6} | {:<16} | {:<6} | extra info",
        "port #", "iface name", "status"
    );
    let _ = writeln!(o, "{}", "=".repeat(56));
    for l in links {
        let state = std::fs::read_to_string(format!("/sys/class/net/{}/operstate", l.iface))
            .map(|s| s.trim().to_ascii_uppercase())
            .unwrap_or_else(|_| "GONE".into());
        let mac = sluice_runtime::afpacket::hardware_address(&l.iface).unwrap_or_default();
        let _ = writeln!(o, "{:<6} | {:<16} | {:<6} | {mac}", l.port, l.iface, state);
    }
    o.trim_end().to_string()
}
