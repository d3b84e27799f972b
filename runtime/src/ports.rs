//! The live switch on Linux interfaces (`sluice serve --port N=IFACE`): each worker thread
//! has a packet socket on every interface (one fanout group per port spreads arriving
//! packets over the workers by flow hash, so that a flow stays on one worker and in order),
//! fills its ring from them, runs it as one batch against the live tables, and sends what
//! the program forwarded through the egress port's transmit ring, one `send` per port and
//! batch. Captures replayed into ports (`--in N=FILE`) mix in on the first worker.
//!
//! Where a forwarded packet goes: its port's interface; else, with `--out-dir`, its port's
//! file; else nowhere: dropped and counted as "no such port".

use crate::afpacket::{vlan_room, wait_readable, Fanout, PacketSocket, PortError, PortOptions};
use crate::afxdp::{XdpProgram, XdpSocket};
use crate::datapath::Pipeline;
use crate::live;
use crate::packet::{PacketMeta, Verdict};
use crate::stats::{Stats, SwitchDrop};
use crate::switch::{
    Fill, PortOutputs, Replay, Ring, SwitchError, Tables, BATCH, FIRST_BUFFER_LEN,
};
use std::os::fd::{OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A port on an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkSpec {
    pub port: u16,
    pub iface: String,
}

/// A port's socket in one worker: AF_PACKET rings, or AF_XDP sockets (one per receive
/// queue; sending through the first).
pub enum Link {
    Packet(PacketSocket),
    Xdp {
        name: String,
        max_frame: usize,
        sockets: Vec<XdpSocket>,
        /// Dropped by the kernel so far (cumulative), to count overruns as they grow.
        dropped: u64,
        /// Declared after the sockets: the program is detached once they are closed.
        program: XdpProgram,
        _promiscuous: OwnedFd,
    },
}

impl Link {
    pub fn name(&self) -> &str {
        match self {
            Link::Packet(s) => s.name(),
            Link::Xdp { name, .. } => name,
        }
    }

    /// What takes the port's packets, as the switch says when it starts.
    pub fn kind(&self) -> &'static str {
        match self {
            Link::Packet(_) => "AF_PACKET",
            Link::Xdp { program, .. } if program.native => "AF_XDP, driver mode",
            Link::Xdp { .. } => "AF_XDP, generic mode",
        }
    }

    fn fds(&self) -> Vec<RawFd> {
        match self {
            Link::Packet(s) => vec![s.fd()],
            Link::Xdp { sockets, .. } => sockets.iter().map(XdpSocket::fd).collect(),
        }
    }

    fn receive(&mut self, mut take: impl FnMut(&[u8], u32, u32, u32) -> bool) -> usize {
        match self {
            Link::Packet(s) => s.receive(take),
            Link::Xdp { sockets, .. } => sockets.iter_mut().map(|s| s.receive(&mut take)).sum(),
        }
    }

    fn queue(&mut self, data: &[u8]) -> std::io::Result<bool> {
        match self {
            Link::Packet(s) => s.queue(data),
            Link::Xdp {
                sockets, max_frame, ..
            } => {
                if data.len() > *max_frame + vlan_room(data) {
                    return Ok(false);
                }
                sockets[0].queue(data)
            }
        }
    }

    /// Whether packets queued are still waiting to be sent.
    fn pending(&self) -> bool {
        match self {
            Link::Packet(s) => s.pending(),
            Link::Xdp { sockets, .. } => sockets[0].pending(),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Link::Packet(s) => s.flush(),
            Link::Xdp { sockets, .. } => sockets[0].flush(),
        }
    }

    /// Packets the kernel dropped for want of room since last asked.
    fn overruns(&mut self) -> u64 {
        match self {
            Link::Packet(s) => s.counts().overruns,
            Link::Xdp {
                sockets, dropped, ..
            } => {
                let now: u64 = sockets.iter().map(XdpSocket::dropped).sum();
                let new = now.saturating_sub(*dropped);
                *dropped = now;
                new
            }
        }
    }
}

/// One worker's sockets, one per port on an interface.
pub type WorkerLinks = Vec<(u16, Link)>;

/// Opens every port's sockets, one per worker, before any packet flows: a missing
/// interface, one that is down, or no permission is an error here. With several workers,
/// each port's sockets join a fanout group of their own. With `xdp`, each port tries AF_XDP
/// first (one worker only) and falls back to AF_PACKET, saying why through `notice`.
pub fn open_links(
    specs: &[LinkSpec],
    workers: usize,
    xdp: bool,
    notice: &dyn Fn(String),
) -> Result<Vec<WorkerLinks>, PortError> {
    let mut out: Vec<WorkerLinks> = (0..workers).map(|_| Vec::new()).collect();
    let xdp = if xdp && workers > 1 {
        notice(format!(
            "--af-xdp: AF_XDP ports run on one worker here (the switch binds one socket per \
             receive queue); with --workers {workers} every port uses AF_PACKET"
        ));
        false
    } else {
        xdp
    };
    for spec in specs {
        if xdp {
            match open_xdp(&spec.iface)? {
                Ok(link) => {
                    out[0].push((spec.port, link));
                    continue;
                }
                Err(e) => notice(format!("{e}; port {} uses AF_PACKET", spec.port)),
            }
        }
        // With several workers, the port's sockets share a fanout group whose id the kernel
        // picks for the first (unique in the network namespace).
        let mut fanout = (workers > 1).then_some(Fanout::New);
        for links in &mut out {
            let sock = PacketSocket::open(&spec.iface, PortOptions { fanout })?;
            if let Some(Fanout::New) = fanout {
                fanout = sock.fanout_id().map(Fanout::Join);
            }
            links.push((spec.port, Link::Packet(sock)));
        }
    }
    // What arrived while the sockets were joining their groups may have reached two of them:
    // the switch starts from empty rings.
    for links in &mut out {
        for (_, link) in links.iter_mut() {
            if let Link::Packet(s) = link {
                s.discard_pending();
            }
        }
    }
    Ok(out)
}

/// An AF_XDP port: the interface checked as for AF_PACKET (an error), then the program and a
/// socket per receive queue (where that fails, the reason to fall back).
fn open_xdp(name: &str) -> Result<Result<Link, crate::afxdp::XdpError>, PortError> {
    let (ifindex, mtu) = crate::afpacket::check_interface(name)?;
    let promiscuous = crate::afpacket::promiscuous(name, ifindex)?;
    let queues = crate::afxdp::rx_queues(name);
    let program = match XdpProgram::attach(name, ifindex as u32, queues) {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    let mut sockets = Vec::new();
    for q in 0..queues {
        match XdpSocket::open(name, ifindex as u32, q, &program) {
            Ok(s) => sockets.push(s),
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(Link::Xdp {
        name: name.to_string(),
        max_frame: mtu + 14,
        sockets,
        dropped: 0,
        program,
        _promiscuous: promiscuous,
    }))
}

/// Files the live switch writes: forwarded packets whose port has no interface, and what
/// each port on an interface receives and sends (`--capture`). Shared by the workers.
pub struct LiveFiles {
    pub outputs: Option<Mutex<PortOutputs>>,
    pub capture_in: Option<Mutex<PortOutputs>>,
    pub capture_out: Option<Mutex<PortOutputs>>,
}

/// How the live loop runs.
pub struct LiveRun<'a, P: Pipeline> {
    pub pipeline: &'a P,
    /// Per worker: its sockets and its reader of the live tables.
    pub links: Vec<WorkerLinks>,
    pub readers: Vec<live::Reader>,
    /// Captures replayed as the ingress of ports, on the first worker.
    pub replay: Option<Replay>,
    pub files: &'a LiveFiles,
    pub headroom: usize,
    pub new_stats: &'a (dyn Fn() -> Stats + Sync),
    /// Each worker's counters, published after each batch (for `stats`).
    pub published: &'a [Mutex<Stats>],
    pub stop: &'a AtomicBool,
    /// Stop once the replayed captures are done (only with some).
    pub exit_when_done: bool,
    /// How often files are flushed and the rings' overrun counters read.
    pub flush_every: Duration,
    /// What the user should hear of (an output given up, an interface that failed).
    pub notice: &'a (dyn Fn(String) + Sync),
}

/// Runs the live switch until `stop` is set (or the replays are done, with
/// `exit_when_done`); returns every worker's counters summed.
pub fn run_live<P: Pipeline>(run: LiveRun<'_, P>) -> Result<Stats, SwitchError> {
    let LiveRun {
        pipeline,
        links,
        readers,
        replay,
        files,
        headroom,
        new_stats,
        published,
        stop,
        exit_when_done,
        flush_every,
        notice,
    } = run;
    let start = Instant::now();
    let mut replay = replay;
    let workers = links.len();
    let results: Vec<Result<Stats, SwitchError>> = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for (me, (links, reader)) in links.into_iter().zip(readers).enumerate() {
            let replay = if me == 0 { replay.take() } else { None };
            let handle = std::thread::Builder::new()
                .name(format!("worker-{me}"))
                .spawn_scoped(scope, move || {
                    if workers > 1 {
                        pin_to_cpu(me);
                    }
                    let mut w = LiveWorker {
                        ring: Ring::new(BATCH, headroom, FIRST_BUFFER_LEN),
                        stats: new_stats(),
                        links,
                        replay,
                        seq: 0,
                        failed: Vec::new(),
                    };
                    let worker = pipeline.worker_in_lane(me);
                    let r = w.run(
                        worker,
                        reader,
                        files,
                        published.get(me),
                        stop,
                        exit_when_done,
                        flush_every,
                        &|| start.elapsed(),
                        notice,
                    );
                    // One worker that stops stops the others.
                    stop.store(true, Ordering::Relaxed);
                    r
                });
            match handle {
                Ok(h) => handles.push(h),
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    return vec![Err(SwitchError::Spawn(e))];
                }
            }
        }
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(SwitchError::WorkerPanicked)))
            .collect()
    });
    let mut total = new_stats();
    for r in results {
        total.add(&r?);
    }
    Ok(total)
}

struct LiveWorker {
    ring: Ring,
    stats: Stats,
    links: WorkerLinks,
    replay: Option<Replay>,
    seq: u64,
    /// Ports whose interface failed, said once each.
    failed: Vec<u16>,
}

impl LiveWorker {
    fn link_index(&self, port: u16) -> Option<usize> {
        self.links.iter().position(|(p, _)| *p == port)
    }

    #[allow(clippy::too_many_arguments)]
    fn run<W: crate::datapath::Worker>(
        &mut self,
        mut worker: W,
        mut reader: live::Reader,
        files: &LiveFiles,
        published: Option<&Mutex<Stats>>,
        stop: &AtomicBool,
        exit_when_done: bool,
        flush_every: Duration,
        clock: &dyn Fn() -> Duration,
        notice: &(dyn Fn(String) + Sync),
    ) -> Result<Stats, SwitchError> {
        let fds: Vec<RawFd> = self.links.iter().flat_map(|(_, s)| s.fds()).collect();
        let mut replay_done = self.replay.is_none();
        let mut last_flush = Instant::now();
        let mut first_link = 0;
        while !stop.load(Ordering::Relaxed) {
            if last_flush.elapsed() >= flush_every {
                last_flush = Instant::now();
                self.housekeeping(files, notice)?;
                publish(published, &self.stats);
            }
            // What the kernel did not take at the last send (a full send buffer) goes now.
            for (_, link) in &mut self.links {
                if link.pending() {
                    let _ = link.flush();
                }
            }
            // Take from each interface in turn, starting one further each batch, so that a
            // busy port cannot keep the others waiting.
            let n = self.links.len();
            for k in 0..n {
                if self.ring.is_full() {
                    break;
                }
                let (port, sock) = &mut self.links[(first_link + k) % n];
                let port = *port;
                let (ring, seq) = (&mut self.ring, &mut self.seq);
                sock.receive(|data, wire, sec, nsec| {
                    let meta = PacketMeta {
                        ingress_port: port,
                        ts_sec: u64::from(sec),
                        ts_nsec: nsec,
                    };
                    let ok = ring.push(data, wire, meta, *seq);
                    *seq += u64::from(ok);
                    ok
                });
            }
            first_link = (first_link + 1) % n.max(1);
            let mut wait = Duration::from_millis(20);
            if let Some(replay) = self.replay.as_mut().filter(|_| !replay_done) {
                let now = clock();
                match replay
                    .fill(&mut self.ring, now)
                    .map_err(SwitchError::Read)?
                {
                    Fill::Done => replay_done = true,
                    Fill::Wait(d) => wait = wait.min(d.saturating_sub(now)),
                    Fill::Loaded => {}
                }
                self.stats.skipped += std::mem::take(&mut replay.skipped);
                for n in replay.take_notices() {
                    notice(n);
                }
            }
            if self.ring.is_empty() {
                if exit_when_done && replay_done && self.replay.is_some() {
                    break;
                }
                let ms = wait.as_millis().clamp(1, 20) as i32;
                if fds.is_empty() {
                    std::thread::sleep(Duration::from_millis(ms as u64));
                } else {
                    wait_readable(&fds, ms);
                }
                continue;
            }
            self.run_batch(&mut worker, &mut reader, files, notice)?;
            publish(published, &self.stats);
        }
        self.housekeeping(files, notice)?;
        for (_, s) in &mut self.links {
            let _ = s.flush();
        }
        publish(published, &self.stats);
        Ok(std::mem::take(&mut self.stats))
    }

    /// Reads the rings' overrun counters and flushes the files, so that they can be read
    /// while the switch runs.
    fn housekeeping(
        &mut self,
        files: &LiveFiles,
        notice: &(dyn Fn(String) + Sync),
    ) -> Result<(), SwitchError> {
        for i in 0..self.links.len() {
            let port = self.links[i].0;
            let overruns = self.links[i].1.overruns();
            self.stats.link(port).overruns += overruns;
        }
        let mut scratch = Stats::default();
        for (f, stats) in [
            (&files.outputs, &mut self.stats),
            (&files.capture_in, &mut scratch),
            (&files.capture_out, &mut Stats::default()),
        ] {
            if let Some(f) = f {
                let mut f = lock(f);
                f.flush_if_due(stats)?;
                for n in f.take_notices() {
                    notice(n);
                }
            }
        }
        Ok(())
    }

    fn run_batch<W: crate::datapath::Worker>(
        &mut self,
        worker: &mut W,
        reader: &mut live::Reader,
        files: &LiveFiles,
        notice: &(dyn Fn(String) + Sync),
    ) -> Result<(), SwitchError> {
        // What arrived on an interface, as it arrived: counted, and captured before the
        // program changes it in place.
        let mut cap_in = files.capture_in.as_ref().map(lock);
        let mut scratch = Stats::default();
        for i in 0..self.ring.len() {
            let Some(p) = self.ring.packet(i) else { break };
            let port = p.meta.ingress_port;
            if self.link_index(port).is_none() {
                continue;
            }
            let l = self.stats.link(port);
            l.received += 1;
            l.received_bytes += p.in_len as u64;
            if let Some(c) = cap_in.as_mut() {
                c.write(port, p.meta, p.pkt, &mut scratch)?;
            }
        }
        drop(cap_in);
        Tables::Live(reader).with(|t| self.ring.run(worker, t, &mut self.stats))?;
        // Locks in one order (files, then the capture of what is sent), whatever the order
        // of the packets, so that workers never wait on each other in a cycle.
        let needs_files = self.ring.packets().any(
            |p| matches!(p.verdict, Verdict::Forward(port) if self.link_index(port).is_none()),
        );
        let mut outputs = files.outputs.as_ref().filter(|_| needs_files).map(lock);
        let mut cap_out = files.capture_out.as_ref().map(lock);
        let ring = &self.ring;
        let stats = &mut self.stats;
        // Ports whose ring stayed full this batch, and what was queued to send (port, ingress
        // port, bytes, whether it arrived on an interface), to recount if the send fails.
        let mut stuck: Vec<u16> = Vec::new();
        let mut queued: Vec<(u16, u16, u64, bool)> = Vec::new();
        for p in ring.packets() {
            let in_link = self.links.iter().any(|(l, _)| *l == p.meta.ingress_port);
            match p.verdict {
                Verdict::Drop(r) => {
                    if in_link {
                        let l = stats.link(p.meta.ingress_port);
                        let r = usize::from(r);
                        if l.dropped.len() <= r {
                            l.dropped.resize(r + 1, 0);
                        }
                        l.dropped[r] += 1;
                    }
                }
                Verdict::Forward(port) => {
                    let lost = if stuck.contains(&port) {
                        // Its ring stayed full once this batch: no more waiting on it.
                        Some(SwitchDrop::SendFailed)
                    } else if let Some((_, sock)) = self.links.iter_mut().find(|(l, _)| *l == port)
                    {
                        match sock.queue(p.pkt.data()) {
                            Ok(true) => {
                                let l = stats.link(port);
                                l.sent += 1;
                                l.sent_bytes += p.pkt.len() as u64;
                                queued.push((
                                    port,
                                    p.meta.ingress_port,
                                    p.pkt.len() as u64,
                                    in_link,
                                ));
                                if let Some(c) = cap_out.as_mut() {
                                    c.write(port, p.meta, p.pkt, &mut scratch)?;
                                }
                                None
                            }
                            Ok(false) => Some(SwitchDrop::TooLong),
                            Err(e) => {
                                stuck.push(port);
                                if !self.failed.contains(&port) {
                                    self.failed.push(port);
                                    notice(format!(
                                        "port {port} ({}): cannot send: {e}; packets it cannot \
                                         take are counted as \"send failed\"",
                                        sock.name()
                                    ));
                                }
                                Some(SwitchDrop::SendFailed)
                            }
                        }
                    } else if let Some(out) = outputs.as_mut() {
                        out.write(port, p.meta, p.pkt, stats)?;
                        None
                    } else {
                        Some(SwitchDrop::NoSuchPort)
                    };
                    if let Some(why) = lost {
                        stats.unforward(port, why);
                        if in_link {
                            stats.link(p.meta.ingress_port).switch_dropped[why as usize] += 1;
                        }
                    }
                }
            }
        }
        drop(cap_out);
        if let Some(o) = outputs.as_mut() {
            for n in o.take_notices() {
                notice(n);
            }
        }
        drop(outputs);
        for (port, sock) in &mut self.links {
            if let Err(e) = sock.flush() {
                if !self.failed.contains(port) {
                    self.failed.push(*port);
                    notice(format!(
                        "port {port} ({}): cannot send: {e}; what it could not take is counted \
                         as \"send failed\"",
                        sock.name()
                    ));
                }
                // The interface refused the batch: what was queued for it was not sent.
                for (p, ingress, bytes, in_link) in queued.iter().filter(|q| q.0 == *port) {
                    let l = self.stats.link(*p);
                    l.sent = l.sent.saturating_sub(1);
                    l.sent_bytes = l.sent_bytes.saturating_sub(*bytes);
                    self.stats.unforward(*p, SwitchDrop::SendFailed);
                    if *in_link {
                        self.stats.link(*ingress).switch_dropped
                            [SwitchDrop::SendFailed as usize] += 1;
                    }
                }
            }
        }
        self.ring.clear();
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Publishes a worker's counters for `stats`, without ever waiting for the control plane.
fn publish(to: Option<&Mutex<Stats>>, stats: &Stats) {
    if let Some(Ok(mut p)) = to.map(Mutex::try_lock) {
        p.clone_from(stats);
    }
}

/// Keeps worker `me` on one CPU (`me` modulo the CPUs this process may use). A thread that
/// moved between CPUs would reorder its own flows: a veth hands what is sent to the CPU
/// that sent it, and packets queued on the old CPU could leave after those sent from the
/// new one. Best effort: where it cannot be set, the worker runs unpinned.
fn pin_to_cpu(me: usize) {
    // SAFETY: cpu_set_t is plain old data; the calls read and write the set given, for the
    // calling thread (pid 0).
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut allowed) != 0 {
            return;
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|c| libc::CPU_ISSET(*c, &allowed))
            .collect();
        if cpus.is_empty() {
            return;
        }
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpus[me % cpus.len()], &mut one);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one);
    }
}
