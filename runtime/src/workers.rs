//! Several datapath threads running one compiled program over a replay (`--workers N`).
//!
//! Three kinds of thread, as a NIC's receive queues, cores and transmit queue: a reader
//! thread reads the captures and spreads the packets over the workers by a flow hash, so
//! that the packets of a flow stay on one worker and in their order; each worker runs its
//! rings of packets against the tables (with a counter lane and, for live tables, a reader
//! slot of its own) and hands them to the calling thread, which writes the packets in replay
//! order, so that every output is byte for byte what one worker would write, and gives the
//! emptied rings back to the reader. Reading and writing (most of a replay's time is in
//! their system calls) thus run beside each other.
//!
//! Rules: a ring belongs to one worker for its life (each worker has a few); the reader never
//! blocks waiting for a ring while it holds a partly filled one (it sends those first), so
//! that the packet the writer waits for is always on its way.

use crate::datapath::{DatapathError, Pipeline, Worker};
use crate::live::Reader;
use crate::packet::Verdict;
use crate::stats::Stats;
use crate::switch::{Due, PortOutputs, Replay, Ring, SwitchError, BATCH, FIRST_BUFFER_LEN};
use crate::table::TableSet;
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

/// Rings each worker has: enough for one to be filled, one to be run and one to be written,
/// and some slack for the flows' uneven spread.
const RINGS_PER_WORKER: usize = 6;

/// Packets per ring. Each ring handed over costs a wake-up or two (futex calls, a context
/// switch when threads outnumber cores), so rings here are larger than a single-threaded
/// switch's batch. A worker runs a ring in one call, and holds its table copy that long.
const RING_PACKETS: usize = 4 * BATCH;

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

/// What comes back to the writer: a ring run by worker `.0`.
type Back = (usize, Ring);

/// The writer's side: rings back from the workers, in each worker's order, and the next
/// packet to write.
struct Merge {
    back: Vec<VecDeque<(Ring, usize)>>,
    /// The replay number of the next packet to write.
    next_out: u64,
}

impl Merge {
    /// Writes, in replay order, every packet that is back from its worker; returns emptied
    /// rings to the reader. Stops at the first packet still away.
    fn write_ready(
        &mut self,
        outputs: &mut PortOutputs,
        stats: &mut Stats,
        free: &mpsc::Sender<Back>,
    ) -> Result<u64, SwitchError> {
        let mut written = 0;
        'packets: loop {
            for w in 0..self.back.len() {
                let Some((ring, pos)) = self.back[w].front_mut() else {
                    continue;
                };
                let Some(p) = ring.packet(*pos) else {
                    continue;
                };
                if p.seq != self.next_out {
                    continue;
                }
                // A worker's rings come back in the order they were filled, and each holds
                // its packets in replay order: so the rest of this ring follows on.
                while let Some(p) = ring.packet(*pos) {
                    if p.seq != self.next_out {
                        break;
                    }
                    if let Verdict::Forward(port) = p.verdict {
                        outputs.write(port, p.meta, p.pkt, stats)?;
                    }
                    *pos += 1;
                    self.next_out += 1;
                    written += 1;
                }
                if *pos == ring.len() {
                    if let Some((mut ring, _)) = self.back[w].pop_front() {
                        ring.clear();
                        // The reader is gone only once it has stopped dispatching.
                        let _ = free.send((w, ring));
                    }
                }
                continue 'packets;
            }
            break;
        }
        Ok(written)
    }
}

/// What the reader tells the writer besides the rings.
#[derive(Default)]
struct ReaderState {
    /// Bytes of the captures read, and records skipped (see `Replay::skipped`).
    read_bytes: AtomicU64,
    skipped: AtomicU64,
    notices: Mutex<Vec<String>>,
}

/// Replays `src` through `par.workers` threads (see the module comment) until it is done
/// (with `exit_when_done`), `stop` is set, or `after` says stop. `stats` ends with the sum of
/// every thread's counters. `after` is called on the calling thread as packets are written,
/// with its counters (the outputs' troubles, skipped records), how many packets are written
/// so far, what the user should hear of, and the bytes of the captures read.
#[allow(clippy::too_many_arguments)]
pub fn replay_parallel<P: Pipeline>(
    par: Parallel<'_, P>,
    src: &mut Replay,
    outputs: &mut PortOutputs,
    stats: &mut Stats,
    headroom: usize,
    clock: impl Fn() -> Duration + Sync,
    stop: &AtomicBool,
    exit_when_done: bool,
    mut after: impl FnMut(&Stats, u64, Vec<String>, u64) -> ControlFlow<()>,
) -> Result<(), SwitchError> {
    let n = par.workers.max(1);
    let (back_tx, back_rx) = mpsc::channel::<Back>();
    let (free_tx, free_rx) = mpsc::channel::<Back>();
    let mut to_worker = Vec::new();
    let mut from_reader = Vec::new();
    for _ in 0..n {
        let (tx, rx) = mpsc::sync_channel::<Ring>(RINGS_PER_WORKER);
        to_worker.push(tx);
        from_reader.push(rx);
    }
    let tables: Vec<WorkerTablesOne<'_>> = match par.tables {
        WorkerTables::Fixed(t) => (0..n).map(|_| WorkerTablesOne::Fixed(t)).collect(),
        WorkerTables::Live(readers) => readers.into_iter().map(WorkerTablesOne::Live).collect(),
    };
    for w in 0..n {
        for _ in 0..RINGS_PER_WORKER {
            let _ = free_tx.send((w, Ring::new(RING_PACKETS, headroom, FIRST_BUFFER_LEN)));
        }
    }
    let pipeline = par.pipeline;
    let new_stats = par.new_stats;
    let published = par.published;
    // Set by the writer when `after` says stop or an output fails: the reader stops too.
    let halt = AtomicBool::new(false);
    let state = ReaderState::default();
    std::thread::scope(|scope| {
        let workers: Vec<_> = tables
            .into_iter()
            .zip(from_reader)
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
        let (clock, state_ref, halt_ref) = (&clock, &state, &halt);
        let reader = std::thread::Builder::new()
            .name("reader".into())
            .spawn_scoped(scope, move || {
                let mut r = Dispatcher {
                    src,
                    rings: Rings {
                        to_worker,
                        free: free_rx,
                        pools: (0..n).map(|_| Vec::new()).collect(),
                        filling: (0..n).map(|_| None).collect(),
                        // Every ring starts in the free channel, counted as away.
                        away: (0..n)
                            .map(|_| (0..RINGS_PER_WORKER).map(|_| 0).collect())
                            .collect(),
                    },
                    state: state_ref,
                };
                let result = r.run(
                    clock,
                    &|| stop.load(Ordering::Relaxed) || halt_ref.load(Ordering::Relaxed),
                    exit_when_done,
                );
                // What was filled goes to the workers, so that the outputs hold every
                // packet read; then the workers' channels close, and they end.
                let sent = r.rings.send_all();
                r.publish();
                result.and(sent)
            });
        let mut merge = Merge {
            back: (0..n).map(|_| VecDeque::new()).collect(),
            next_out: 0,
        };
        let mut result = write(
            &mut merge, &back_rx, &free_tx, outputs, stats, &state, &halt, &mut after,
        );
        if result.is_err() {
            halt.store(true, Ordering::Relaxed);
            // The reader may wait for a ring: let it see that none will come.
            drop(free_tx);
            // Workers blocked on nothing: the back channel is unbounded.
            drop(back_rx);
        }
        let mut keep = |r: Result<(), SwitchError>| {
            if result.is_ok() {
                result = r;
            }
        };
        // A worker's failure says more than the reader's failing to send to it.
        for h in workers {
            match h {
                Ok(h) => match h.join() {
                    Ok(Ok(s)) => stats.add(&s),
                    Ok(Err(e)) => keep(Err(SwitchError::Datapath(e))),
                    Err(_) => keep(Err(SwitchError::WorkerPanicked)),
                },
                Err(e) => keep(Err(SwitchError::Spawn(e))),
            }
        }
        match reader {
            Ok(h) => match h.join() {
                Ok(r) => keep(r),
                Err(_) => keep(Err(SwitchError::WorkerPanicked)),
            },
            Err(e) => keep(Err(SwitchError::Spawn(e))),
        }
        stats.skipped += state.skipped.swap(0, Ordering::Relaxed);
        result
    })
}

/// How long the writer waits for a ring before it looks at its outputs' flush deadline.
const WRITER_TICK: Duration = Duration::from_millis(10);

/// The calling thread's loop: takes back what the workers ran and writes it in replay order,
/// until every thread that could send more has ended. When `after` says stop, it sets `halt`
/// and goes on writing what was read.
#[allow(clippy::too_many_arguments)]
fn write(
    merge: &mut Merge,
    back: &mpsc::Receiver<Back>,
    free: &mpsc::Sender<Back>,
    outputs: &mut PortOutputs,
    stats: &mut Stats,
    state: &ReaderState,
    halt: &AtomicBool,
    after: &mut impl FnMut(&Stats, u64, Vec<String>, u64) -> ControlFlow<()>,
) -> Result<(), SwitchError> {
    let mut stopped = false;
    loop {
        let mut ended = false;
        match back.recv_timeout(WRITER_TICK) {
            Ok((w, ring)) => merge.back[w].push_back((ring, 0)),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => ended = true,
        }
        while let Ok((w, ring)) = back.try_recv() {
            merge.back[w].push_back((ring, 0));
        }
        let written = merge.write_ready(outputs, stats, free)?;
        outputs.flush_if_due(stats)?;
        // The records the reader skipped are this thread's to count.
        stats.skipped += state.skipped.swap(0, Ordering::Relaxed);
        let mut notices =
            std::mem::take(&mut *state.notices.lock().unwrap_or_else(|e| e.into_inner()));
        notices.extend(outputs.take_notices());
        if !stopped && (written > 0 || !notices.is_empty()) {
            let read = state.read_bytes.load(Ordering::Relaxed);
            if after(stats, merge.next_out, notices, read).is_break() {
                stopped = true;
                halt.store(true, Ordering::Relaxed);
            }
        }
        if ended {
            return Ok(());
        }
    }
}

/// The reader's thread: reads what is due, spreads it over the workers.
struct Dispatcher<'a, 'r> {
    src: &'r mut Replay,
    rings: Rings,
    state: &'a ReaderState,
}

/// The reader's rings.
struct Rings {
    to_worker: Vec<mpsc::SyncSender<Ring>>,
    free: mpsc::Receiver<Back>,
    /// Each worker's empty rings, the one being filled for it, and the replay number of the
    /// last packet of each of its rings that is away (in the order they were sent, which is
    /// the order they come back in).
    pools: Vec<Vec<Ring>>,
    filling: Vec<Option<Ring>>,
    away: Vec<VecDeque<u64>>,
}

impl Dispatcher<'_, '_> {
    fn run(
        &mut self,
        clock: &impl Fn() -> Duration,
        stopped: &impl Fn() -> bool,
        exit_when_done: bool,
    ) -> Result<(), SwitchError> {
        let n = self.rings.to_worker.len() as u64;
        while !stopped() {
            let now = clock();
            let mut idle = None;
            // Spread what is due, a few batches' worth between looks at the clock.
            for _ in 0..BATCH * self.rings.to_worker.len() {
                match self.src.next_due(now).map_err(SwitchError::Read)? {
                    Due::Packet {
                        data,
                        orig_len,
                        meta,
                        seq,
                    } => {
                        let w = (flow_hash(data) % n) as usize;
                        if self.rings.filling[w].is_none() {
                            match self.rings.take_free(w)? {
                                Some(ring) => self.rings.filling[w] = Some(ring),
                                // The writer has failed; it says why.
                                None => return Ok(()),
                            }
                        }
                        let Some(ring) = self.rings.filling[w].as_mut() else {
                            continue;
                        };
                        // The one copy: from the reader's buffer into the ring.
                        ring.push(data, orig_len, meta, seq);
                        self.src.advance();
                        if ring.is_full() {
                            self.rings.send(w)?;
                        }
                    }
                    Due::Wait(d) => {
                        idle = Some(d.saturating_sub(now).min(Duration::from_millis(1)));
                        break;
                    }
                    Due::Done => {
                        if exit_when_done {
                            return Ok(());
                        }
                        idle = Some(Duration::from_millis(5));
                        break;
                    }
                }
            }
            self.publish();
            if let Some(d) = idle {
                // Nothing more for a while: what is filled goes now.
                self.rings.send_all()?;
                std::thread::sleep(d);
            }
        }
        Ok(())
    }

    /// Tells the writer how far the reading is.
    fn publish(&mut self) {
        let st = self.state;
        st.read_bytes.store(self.src.position(), Ordering::Relaxed);
        st.skipped
            .fetch_add(std::mem::take(&mut self.src.skipped), Ordering::Relaxed);
        let notices = self.src.take_notices();
        if !notices.is_empty() {
            st.notices
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(notices);
        }
    }
}

impl Rings {
    /// Sends worker `w`'s ring, if it has one being filled.
    fn send(&mut self, w: usize) -> Result<(), SwitchError> {
        let Some(ring) = self.filling[w].take() else {
            return Ok(());
        };
        let last = ring.len().checked_sub(1).and_then(|i| ring.packet(i));
        self.away[w].push_back(last.map_or(0, |p| p.seq));
        self.to_worker[w]
            .send(ring)
            .map_err(|_| SwitchError::WorkerPanicked)
    }

    fn send_all(&mut self) -> Result<(), SwitchError> {
        (0..self.filling.len()).try_for_each(|w| self.send(w))
    }

    /// An empty ring for worker `w`, waiting for one if they are all away; None when the
    /// writer has hung up (an output failed).
    ///
    /// The writer gives a ring back once it has written its last packet, so before waiting,
    /// every partly filled ring that holds a packet written before that one is sent: the
    /// writer never waits for a packet held here while this thread waits for it. The others
    /// stay, so that rings go out full.
    fn take_free(&mut self, w: usize) -> Result<Option<Ring>, SwitchError> {
        loop {
            if let Some(ring) = self.pools[w].pop() {
                return Ok(Some(ring));
            }
            let due = self.away[w].front().copied().unwrap_or(u64::MAX);
            for v in 0..self.filling.len() {
                let first = self.filling[v]
                    .as_ref()
                    .and_then(|r| r.packet(0))
                    .map(|p| p.seq);
                if first.is_some_and(|f| f <= due) {
                    self.send(v)?;
                }
            }
            let Ok((v, ring)) = self.free.recv() else {
                return Ok(None);
            };
            self.away[v].pop_front();
            self.pools[v].push(ring);
        }
    }
}
