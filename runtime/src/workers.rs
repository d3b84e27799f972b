//! Several datapath threads running one compiled program over a replay (`--workers N`).
//!
//! The calling thread reads the captures and spreads the packets over the workers by a flow
//! hash, so that the packets of a flow stay on one worker and in their order; each worker runs
//! its rings of packets against the tables (with a counter lane and, for live tables, a
//! reader slot of its own) and hands them back; the calling thread then writes the packets in
//! replay order, so that every output is byte for byte what one worker would write.
//!
//! Rules: a ring belongs to one worker for its life (each worker has a few); the calling
//! thread never blocks on a worker while it holds a partly filled ring (it sends those first),
//! so that the packet it waits for is always on its way.

use crate::datapath::{DatapathError, Pipeline, Worker};
use crate::live::Reader;
use crate::packet::Verdict;
use crate::stats::Stats;
use crate::switch::{Due, PortOutputs, Replay, Ring, SwitchError, BATCH, FIRST_BUFFER_LEN};
use crate::table::TableSet;
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

/// Rings each worker has: enough for one to be filled, one to be run and one to be written.
const RINGS_PER_WORKER: usize = 4;

/// A hash of the packet's flow: for Ethernet (with up to two VLAN tags) and IPv4, the
/// addresses and the protocol, and the ports of a TCP or UDP packet that is not a later
/// fragment; for anything else, its first 64 bytes. Packets of one flow hash alike.
pub fn flow_hash(data: &[u8]) -> u64 {
    fn mix(h: u64, x: u64) -> u64 {
        (h ^ x).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29)
    }
    let be16 = |at: usize| {
        data.get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let mut at = 12;
    let mut et = be16(at);
    for _ in 0..2 {
        if matches!(et, Some(0x8100 | 0x88a8)) {
            at += 4;
            et = be16(at);
        }
    }
    let ip = at + 2;
    if et == Some(0x0800) && data.len() >= ip + 20 && data[ip] >> 4 == 4 {
        let ihl = usize::from(data[ip] & 0x0f) * 4;
        let proto = data[ip + 9];
        let addrs = &data[ip + 12..ip + 20];
        let mut h = mix(
            u64::from(proto),
            u64::from_be_bytes(addrs.try_into().unwrap_or([0; 8])),
        );
        let first_fragment = be16(ip + 6).is_some_and(|f| f & 0x1fff == 0);
        if matches!(proto, 6 | 17) && first_fragment {
            if let (Some(sp), Some(dp)) = (be16(ip + ihl), be16(ip + ihl + 2)) {
                h = mix(h, u64::from(sp) << 16 | u64::from(dp));
            }
        }
        return h;
    }
    data.iter()
        .take(64)
        .fold(0x51_7cc1_b727_220a, |h, &b| mix(h, u64::from(b)))
}

/// The tables the workers run against.
pub enum WorkerTables<'a> {
    /// One table set, with a counter lane per worker.
    Fixed(&'a TableSet),
    /// Live tables: a reader slot per worker (the set's copies have a lane per worker).
    Live(Vec<Reader>),
}

/// What a parallel replay needs besides the replay and the outputs.
pub struct Parallel<'a, P: Pipeline> {
    pub pipeline: &'a P,
    pub workers: usize,
    pub tables: WorkerTables<'a>,
    /// Fresh counters for one thread.
    pub new_stats: &'a (dyn Fn() -> Stats + Sync),
    /// Each worker's counters, published after each of its batches (for `stats` on a live
    /// switch); may be empty.
    pub published: &'a [Mutex<Stats>],
}

/// A worker's thread: runs the rings it is sent, hands them back.
fn work<W: Worker>(
    mut worker: W,
    mut tables: WorkerTablesOne<'_>,
    rx: mpsc::Receiver<Ring>,
    tx: mpsc::Sender<(usize, Ring)>,
    me: usize,
    mut stats: Stats,
    published: Option<&Mutex<Stats>>,
) -> Result<Stats, DatapathError> {
    while let Ok(mut ring) = rx.recv() {
        match &mut tables {
            WorkerTablesOne::Fixed(t) => ring.run(&mut worker, t, &mut stats)?,
            WorkerTablesOne::Live(r) => {
                let t = r.begin();
                let result = ring.run(&mut worker, t, &mut stats);
                r.end();
                result?;
            }
        }
        if let Some(p) = published {
            if let Ok(mut p) = p.try_lock() {
                p.clone_from(&stats);
            }
        }
        if tx.send((me, ring)).is_err() {
            break;
        }
    }
    Ok(stats)
}

enum WorkerTablesOne<'a> {
    Fixed(&'a TableSet),
    Live(Reader),
}

/// The calling thread's side: rings being filled, rings handed back and waiting to be
/// written, the next packet to write.
struct Merge {
    filling: Vec<Option<Ring>>,
    free: Vec<Vec<Ring>>,
    back: Vec<VecDeque<(Ring, usize)>>,
    /// The replay number of the next packet to write, and of the next to dispatch.
    next_out: u64,
    next_in: u64,
}

impl Merge {
    /// Writes, in replay order, every packet that is back from its worker; returns the
    /// rings it emptied to their workers' pools. Stops at the first packet still away.
    fn write_ready(
        &mut self,
        outputs: &mut PortOutputs,
        stats: &mut Stats,
    ) -> Result<u64, SwitchError> {
        let mut written = 0;
        'packets: while self.next_out < self.next_in {
            for w in 0..self.back.len() {
                let Some((ring, pos)) = self.back[w].front_mut() else {
                    continue;
                };
                let Some(p) = ring.packets().nth(*pos) else {
                    continue;
                };
                if p.seq != self.next_out {
                    continue;
                }
                if let Verdict::Forward(port) = p.verdict {
                    outputs.write(port, p.meta, p.pkt, stats)?;
                }
                *pos += 1;
                self.next_out += 1;
                written += 1;
                if *pos == ring.len() {
                    if let Some((mut ring, _)) = self.back[w].pop_front() {
                        ring.clear();
                        self.free[w].push(ring);
                    }
                }
                continue 'packets;
            }
            break;
        }
        Ok(written)
    }
}

/// Replays `src` through `par.workers` threads (see the module comment) until it is done
/// (with `exit_when_done`), `stop` is set, or `after` says stop. `stats` ends with the sum of
/// every thread's counters. `after` is called as packets are written, with this thread's
/// counters (the outputs' troubles, skipped records), how many packets are written so far,
/// what the user should hear of, and the bytes of the captures read.
#[allow(clippy::too_many_arguments)]
pub fn replay_parallel<P: Pipeline>(
    par: Parallel<'_, P>,
    src: &mut Replay,
    outputs: &mut PortOutputs,
    stats: &mut Stats,
    headroom: usize,
    clock: impl Fn() -> Duration,
    stop: &AtomicBool,
    exit_when_done: bool,
    mut after: impl FnMut(&Stats, u64, Vec<String>, u64) -> ControlFlow<()>,
) -> Result<(), SwitchError> {
    let n = par.workers.max(1);
    let (back_tx, back_rx) = mpsc::channel::<(usize, Ring)>();
    let mut to_worker = Vec::new();
    let mut from_main = Vec::new();
    for _ in 0..n {
        let (tx, rx) = mpsc::sync_channel::<Ring>(RINGS_PER_WORKER);
        to_worker.push(tx);
        from_main.push(rx);
    }
    let tables: Vec<WorkerTablesOne<'_>> = match par.tables {
        WorkerTables::Fixed(t) => (0..n).map(|_| WorkerTablesOne::Fixed(t)).collect(),
        WorkerTables::Live(readers) => readers.into_iter().map(WorkerTablesOne::Live).collect(),
    };
    let mut merge = Merge {
        filling: (0..n).map(|_| None).collect(),
        free: (0..n)
            .map(|_| {
                (0..RINGS_PER_WORKER)
                    .map(|_| Ring::new(BATCH, headroom, FIRST_BUFFER_LEN))
                    .collect()
            })
            .collect(),
        back: (0..n).map(|_| VecDeque::new()).collect(),
        next_out: 0,
        next_in: 0,
    };
    let pipeline = par.pipeline;
    let new_stats = par.new_stats;
    let published = par.published;
    std::thread::scope(|scope| {
        let handles: Vec<_> = tables
            .into_iter()
            .zip(from_main)
            .enumerate()
            .map(|(me, (t, rx))| {
                let tx = back_tx.clone();
                let publish = published.get(me);
                std::thread::Builder::new()
                    .name(format!("worker-{me}"))
                    .spawn_scoped(scope, move || {
                        work(
                            pipeline.worker_in_lane(me),
                            t,
                            rx,
                            tx,
                            me,
                            new_stats(),
                            publish,
                        )
                    })
            })
            .collect();
        drop(back_tx);
        let result = dispatch(
            &mut merge,
            src,
            outputs,
            stats,
            &to_worker,
            &back_rx,
            &clock,
            stop,
            exit_when_done,
            &mut after,
        );
        // The workers end when their channels close.
        drop(to_worker);
        let mut result = result;
        for h in handles {
            match h {
                Ok(h) => match h.join() {
                    Ok(Ok(s)) => stats.add(&s),
                    Ok(Err(e)) => {
                        if result.is_ok() {
                            result = Err(SwitchError::Datapath(e));
                        }
                    }
                    Err(_) => {
                        if result.is_ok() {
                            result = Err(SwitchError::WorkerPanicked);
                        }
                    }
                },
                Err(e) => {
                    if result.is_ok() {
                        result = Err(SwitchError::Spawn(e));
                    }
                }
            }
        }
        result
    })
}

/// The calling thread's loop: read, spread, write back in order.
#[allow(clippy::too_many_arguments)]
fn dispatch(
    merge: &mut Merge,
    src: &mut Replay,
    outputs: &mut PortOutputs,
    stats: &mut Stats,
    to_worker: &[mpsc::SyncSender<Ring>],
    back: &mpsc::Receiver<(usize, Ring)>,
    clock: &impl Fn() -> Duration,
    stop: &AtomicBool,
    exit_when_done: bool,
    after: &mut impl FnMut(&Stats, u64, Vec<String>, u64) -> ControlFlow<()>,
) -> Result<(), SwitchError> {
    let n = to_worker.len() as u64;
    // Sends every partly filled ring, so that what is waited for is on its way.
    let send_all = |merge: &mut Merge| -> Result<(), SwitchError> {
        for (w, slot) in merge.filling.iter_mut().enumerate() {
            if let Some(ring) = slot.take() {
                to_worker[w]
                    .send(ring)
                    .map_err(|_| SwitchError::WorkerPanicked)?;
            }
        }
        Ok(())
    };
    // Takes back what the workers finished (waiting for one if `wait`), writes what is in
    // order.
    let collect = |merge: &mut Merge,
                   outputs: &mut PortOutputs,
                   stats: &mut Stats,
                   wait: bool|
     -> Result<u64, SwitchError> {
        if wait {
            let (w, ring) = back.recv().map_err(|_| SwitchError::WorkerPanicked)?;
            merge.back[w].push_back((ring, 0));
        }
        while let Ok((w, ring)) = back.try_recv() {
            merge.back[w].push_back((ring, 0));
        }
        merge.write_ready(outputs, stats)
    };
    let mut stopped = false;
    while !stop.load(Ordering::Relaxed) && !stopped {
        outputs.flush_if_due(stats)?;
        let now = clock();
        let mut wait = None;
        let mut done = false;
        // Spread what is due, a few batches' worth at a time.
        for _ in 0..BATCH * to_worker.len() {
            match src.next_due(now).map_err(SwitchError::Read)? {
                Due::Packet {
                    data,
                    orig_len,
                    meta,
                    seq,
                } => {
                    let w = (flow_hash(data) % n) as usize;
                    if merge.filling[w].is_none() {
                        while merge.free[w].is_empty() {
                            send_all(merge)?;
                            collect(merge, outputs, stats, true)?;
                        }
                        merge.filling[w] = merge.free[w].pop();
                    }
                    let Some(ring) = merge.filling[w].as_mut() else {
                        continue;
                    };
                    // The one copy: from the reader's buffer into the ring.
                    ring.push(data, orig_len, meta, seq);
                    src.advance();
                    merge.next_in = seq + 1;
                    if ring.is_full() {
                        if let Some(ring) = merge.filling[w].take() {
                            to_worker[w]
                                .send(ring)
                                .map_err(|_| SwitchError::WorkerPanicked)?;
                        }
                    }
                }
                Due::Wait(d) => {
                    wait = Some(d.saturating_sub(now));
                    break;
                }
                Due::Done => {
                    done = true;
                    break;
                }
            }
        }
        if wait.is_some() || done {
            send_all(merge)?;
        }
        let mut written = collect(merge, outputs, stats, false)?;
        if (wait.is_some() || done) && merge.next_out < merge.next_in && written == 0 {
            // Everything is sent: wait for a worker rather than spin.
            written += collect(merge, outputs, stats, true)?;
        }
        stats.skipped += std::mem::take(&mut src.skipped);
        let mut notices = src.take_notices();
        notices.extend(outputs.take_notices());
        if (written > 0 || !notices.is_empty())
            && after(stats, merge.next_out, notices, src.position()).is_break()
        {
            stopped = true;
        }
        let all_written = merge.next_out == merge.next_in;
        if done && all_written {
            if exit_when_done {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        } else if let (Some(d), true) = (wait, all_written) {
            std::thread::sleep(d.min(Duration::from_millis(1)));
        }
    }
    // Stopped: what was dispatched is still written, so that the outputs hold every packet
    // run.
    send_all(merge)?;
    while merge.next_out < merge.next_in {
        collect(merge, outputs, stats, true)?;
    }
    stats.skipped += std::mem::take(&mut src.skipped);
    Ok(())
}
