//! The switch loop that `run`, `serve` and `bench` share: packets are loaded into a ring of
//! buffers, the ring is run as one batch by a [`Worker`] against one copy of the tables
//! (picked once per batch, so that every packet of a batch sees the same tables), and what
//! each packet's verdict says is done with it: written to its port's capture file, or
//! counted as dropped.
//!
//! Rules: the per-packet path allocates nothing (the ring's buffers are reused, grown only
//! for a longer packet); a batch holds a table copy only while it runs, not while its output
//! is written, so that the control plane is never kept waiting on the file system.

use crate::datapath::{DatapathError, Worker};
use crate::live;
use crate::packet::{PacketBuf, PacketMeta, Verdict};
use crate::pcap::{Capture, CaptureReader, PcapError, PcapOut, Record, RecordRef};
use crate::stats::Stats;
use crate::table::TableSet;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Packets per batch in `run` and `serve`: the datapath picks its table copy once per batch.
pub const BATCH: usize = 64;

/// The room a ring's buffers start with; a longer packet grows its buffer (the captures are
/// read as they are replayed, so the longest is not known in advance).
pub const FIRST_BUFFER_LEN: usize = 2048;

/// A receive ring: packet buffers, what each packet arrived with and, once run, its verdict.
pub struct Ring {
    bufs: Vec<PacketBuf>,
    metas: Vec<PacketMeta>,
    verdicts: Vec<Verdict>,
    /// Per slot: the packet's number in its replay (0-based) and its length as it arrived.
    seqs: Vec<(u64, usize)>,
    len: usize,
    headroom: usize,
}

impl Ring {
    /// A ring of `capacity` buffers, each with `headroom` bytes in front for pushed headers
    /// and room for `max_len` bytes (a longer packet grows its buffer).
    pub fn new(capacity: usize, headroom: usize, max_len: usize) -> Ring {
        let capacity = capacity.max(1);
        Ring {
            bufs: (0..capacity)
                .map(|_| PacketBuf::with_capacity(headroom, max_len))
                .collect(),
            metas: vec![PacketMeta::default(); capacity],
            verdicts: vec![Verdict::Drop(0); capacity],
            seqs: vec![(0, 0); capacity],
            len: 0,
            headroom,
        }
    }

    pub fn capacity(&self) -> usize {
        self.bufs.len()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.len == self.bufs.len()
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Loads a packet into the next buffer: its bytes, its wire length and what it arrived
    /// with; `seq` is its number in the replay. False (and nothing loaded) when full.
    #[inline]
    pub fn push(&mut self, data: &[u8], orig_len: u32, meta: PacketMeta, seq: u64) -> bool {
        let i = self.len;
        let Some(buf) = self.bufs.get_mut(i) else {
            return false;
        };
        buf.load(self.headroom, data, orig_len);
        self.metas[i] = meta;
        self.seqs[i] = (seq, data.len());
        self.len += 1;
        true
    }

    /// Runs the loaded packets as one batch.
    #[inline]
    pub fn run<W: Worker + ?Sized>(
        &mut self,
        worker: &mut W,
        tables: &TableSet,
        stats: &mut Stats,
    ) -> Result<(), DatapathError> {
        let n = self.len;
        worker.process_batch(
            tables,
            stats,
            &mut self.bufs[..n],
            &self.metas[..n],
            &mut self.verdicts[..n],
        )
    }

    /// The loaded packets (after `run`, as the program left them) with their verdicts.
    pub fn packets(&self) -> impl Iterator<Item = RingPacket<'_>> {
        (0..self.len).filter_map(|i| self.packet(i))
    }

    /// The packet in slot `i`, if one is loaded there.
    pub fn packet(&self, i: usize) -> Option<RingPacket<'_>> {
        (i < self.len).then(|| RingPacket {
            index: i,
            seq: self.seqs[i].0,
            in_len: self.seqs[i].1,
            pkt: &self.bufs[i],
            meta: &self.metas[i],
            verdict: self.verdicts[i],
        })
    }
}

/// One packet of a ring.
pub struct RingPacket<'a> {
    /// Its slot in the ring (the index a worker's `trace` takes).
    pub index: usize,
    /// Its number in the replay, from 0.
    pub seq: u64,
    /// Its length as it arrived.
    pub in_len: usize,
    pub pkt: &'a PacketBuf,
    pub meta: &'a PacketMeta,
    pub verdict: Verdict,
}

/// The tables a batch reads: one set that does not change (`run`, `bench`), or the live
/// pair that the control plane updates (`serve`), whose copy is picked once per batch.
pub enum Tables<'a> {
    Fixed(&'a TableSet),
    Live(&'a mut live::Reader),
}

impl Tables<'_> {
    /// Runs `f` with the copy for one batch (released when `f` returns).
    #[inline]
    pub fn with<R>(&mut self, f: impl FnOnce(&TableSet) -> R) -> R {
        match self {
            Tables::Fixed(t) => f(t),
            Tables::Live(r) => {
                let out = f(r.begin());
                r.end();
                out
            }
        }
    }
}

/// How a port's output file comes into place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Publish {
    /// Under a temporary name until [`PortOutputs::finish`] renames it into place (`run`):
    /// an earlier run's file is replaced by a whole one, or not at all.
    AtEnd,
    /// Renamed into place as soon as it is created (`serve`), so that it can be read while
    /// the switch runs.
    AtOnce,
}

/// What happens when a port's output cannot be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// The loop stops with the error (`run`: the command fails).
    Stop,
    /// The port's output is given up, with one notice; packets forwarded there are counted
    /// as unwritten, and the other ports go on (`serve`: a live switch outlives its files).
    GiveUpPort,
}

enum Port {
    Open {
        out: PcapOut,
        /// Where it goes when done (with `Publish::AtEnd`; `None` once in place).
        publish_to: Option<PathBuf>,
    },
    Failed,
}

/// What leaves each port: `DIR/port-N.pcap`, created when the port's first packet leaves.
///
/// Rule: nothing already in the directory is ever written through or truncated. Each output
/// is created under a fresh name (`O_CREAT | O_EXCL`, so a link or a FIFO there is never
/// opened) and renamed over `port-N.pcap`, which replaces a regular file's directory entry
/// (another hard link to it keeps its contents) and refuses anything else.
pub struct PortOutputs {
    dir: PathBuf,
    linktype: u32,
    nanos: bool,
    publish: Publish,
    on_failure: OnFailure,
    ports: BTreeMap<u16, Port>,
    notices: Vec<String>,
    serial: u64,
    /// How often buffered records are written out (`None`: when a buffer fills, and at the
    /// end).
    pub flush_every: Option<Duration>,
    last_flush: Instant,
    /// After the port number in file names: `port-N{suffix}.pcap`.
    suffix: &'static str,
}

impl PortOutputs {
    /// Outputs in `dir` with the input's link type and timestamp precision.
    pub fn new(
        dir: &Path,
        linktype: u32,
        nanos: bool,
        publish: Publish,
        on_failure: OnFailure,
    ) -> PortOutputs {
        PortOutputs {
            dir: dir.to_owned(),
            linktype,
            nanos,
            publish,
            on_failure,
            ports: BTreeMap::new(),
            notices: Vec::new(),
            serial: 0,
            flush_every: None,
            last_flush: Instant::now(),
            suffix: "",
        }
    }

    /// Files named `port-N{suffix}.pcap` (`serve --capture` writes `port-N-in.pcap` and
    /// `port-N-out.pcap`).
    pub fn with_suffix(mut self, suffix: &'static str) -> PortOutputs {
        self.suffix = suffix;
        self
    }

    /// `DIR/port-N.pcap`.
    pub fn path(&self, port: u16) -> PathBuf {
        self.dir.join(format!("port-{port}{}.pcap", self.suffix))
    }

    /// What happened that the user should hear of (a port's output given up), since last
    /// asked.
    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    fn open(&mut self, port: u16) -> Result<Port, SwitchError> {
        let path = self.path(port);
        if let Ok(m) = std::fs::symlink_metadata(&path) {
            if !m.file_type().is_file() {
                return Err(SwitchError::NotAFile { path });
            }
        }
        let out = loop {
            self.serial += 1;
            let temp = self.dir.join(format!(
                ".port-{port}{}.pcap.{}-{}.tmp",
                self.suffix,
                std::process::id(),
                self.serial
            ));
            match PcapOut::create_new(&temp, self.linktype, self.nanos) {
                Ok(o) => break o,
                // A name already taken (by anything): take another.
                Err(PcapError::Io { error, .. })
                    if error.kind() == std::io::ErrorKind::AlreadyExists && self.serial < 1000 =>
                {
                    continue
                }
                Err(error) => return Err(SwitchError::Create { path, error }),
            }
        };
        match self.publish {
            Publish::AtEnd => Ok(Port::Open {
                out,
                publish_to: Some(path),
            }),
            Publish::AtOnce => {
                let mut out = out;
                if let Err(error) = std::fs::rename(out.path(), &path) {
                    let _ = std::fs::remove_file(out.path());
                    return Err(SwitchError::Publish { path, error });
                }
                out.renamed(&path);
                Ok(Port::Open {
                    out,
                    publish_to: None,
                })
            }
        }
    }

    /// Writes a packet that left `port`, with the timestamp it arrived with.
    pub fn write(
        &mut self,
        port: u16,
        meta: &PacketMeta,
        pkt: &PacketBuf,
        stats: &mut Stats,
    ) -> Result<(), SwitchError> {
        if !self.ports.contains_key(&port) {
            let p = match self.open(port) {
                Ok(p) => p,
                Err(e) => self.failed(port, e)?,
            };
            self.ports.insert(port, p);
        }
        let (result, lost) = match self.ports.get_mut(&port) {
            Some(Port::Open { out, .. }) => {
                let before = out.cut();
                // A write that fails may take the records gathered with it.
                let lost = out.buffered() + 1;
                let r = out.write(meta.ts_sec, meta.ts_nsec, pkt.orig_len, pkt.data());
                if out.cut() != before {
                    stats.count_cut(port);
                }
                (r, lost)
            }
            _ => {
                stats.count_unwritten(port);
                return Ok(());
            }
        };
        if let Err(error) = result {
            for _ in 0..lost {
                stats.count_unwritten(port);
            }
            let p = self.failed(port, SwitchError::Write { error })?;
            // Given up: what it holds stays readable, whole records up to the last written.
            if let Some(Port::Open { out, publish_to }) = self.ports.insert(port, p) {
                let temp = out.path().to_owned();
                let _ = out.finish();
                if let Some(to) = publish_to {
                    let _ = std::fs::rename(&temp, &to);
                }
            }
        }
        Ok(())
    }

    /// A port whose output failed: the error, or with `GiveUpPort`, a notice and a port
    /// that takes nothing more.
    fn failed(&mut self, port: u16, e: SwitchError) -> Result<Port, SwitchError> {
        match self.on_failure {
            OnFailure::Stop => Err(e),
            OnFailure::GiveUpPort => {
                self.notices.push(format!(
                    "port {port}: {e}; no more packets are written to it (they are counted as \
                     unwritten in `stats`)"
                ));
                Ok(Port::Failed)
            }
        }
    }

    /// Writes what is buffered to every output, so that a reader sees every packet so far.
    pub fn flush(&mut self, stats: &mut Stats) -> Result<(), SwitchError> {
        self.last_flush = Instant::now();
        let ports: Vec<u16> = self.ports.keys().copied().collect();
        for port in ports {
            if let Some(Port::Open { out, .. }) = self.ports.get_mut(&port) {
                let lost = out.buffered();
                if let Err(error) = out.flush() {
                    for _ in 0..lost {
                        stats.count_unwritten(port);
                    }
                    let p = self.failed(port, SwitchError::Write { error })?;
                    self.ports.insert(port, p);
                }
            }
        }
        Ok(())
    }

    /// Flushes when `flush_every` has passed since the last flush, so that what a running
    /// switch wrote can be read (every 100 ms by default in `serve`).
    pub fn flush_if_due(&mut self, stats: &mut Stats) -> Result<(), SwitchError> {
        match self.flush_every {
            Some(every) if self.last_flush.elapsed() >= every => self.flush(stats),
            _ => Ok(()),
        }
    }

    /// Flushes every output and puts it in place (with `Publish::AtEnd`). With `Stop`, the
    /// first error is returned after every other output was finished; with `GiveUpPort`, an
    /// output that fails now is counted and noticed like one that failed before.
    pub fn finish(mut self, stats: &mut Stats) -> Result<Vec<String>, SwitchError> {
        if self.on_failure == OnFailure::GiveUpPort {
            self.flush(stats)?;
        }
        let mut first = None;
        for (_, port) in std::mem::take(&mut self.ports) {
            let Port::Open { out, publish_to } = port else {
                continue;
            };
            let temp = out.path().to_owned();
            let r = out
                .finish()
                .map_err(|error| SwitchError::Finish { error })
                .and_then(|()| match publish_to {
                    Some(to) => std::fs::rename(&temp, &to)
                        .map_err(|error| SwitchError::Publish { path: to, error }),
                    None => Ok(()),
                });
            if let Err(e) = r {
                if publish_to_was_temp(&temp) {
                    let _ = std::fs::remove_file(&temp);
                }
                first.get_or_insert(e);
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(self.take_notices()),
        }
    }

    /// Removes the outputs not yet in place (with `Publish::AtEnd`: a run that failed
    /// replaces nothing).
    pub fn abandon(self) {
        for (_, port) in self.ports {
            if let Port::Open {
                out,
                publish_to: Some(_),
            } = port
            {
                let _ = std::fs::remove_file(out.path());
            }
        }
    }
}

/// Whether a path is one of the temporary names outputs are made under.
fn publish_to_was_temp(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(".port-") && n.ends_with(".tmp"))
}

/// Why the switch loop stopped.
#[derive(Debug, Error)]
pub enum SwitchError {
    #[error(transparent)]
    Datapath(#[from] DatapathError),
    #[error("cannot create {}: {error}", path.display())]
    Create { path: PathBuf, error: PcapError },
    #[error("cannot write output: {error}")]
    Write { error: PcapError },
    #[error("cannot finish output: {error}")]
    Finish { error: PcapError },
    #[error("cannot read capture {0}")]
    Read(PcapError),
    #[error("a worker thread stopped unexpectedly")]
    WorkerPanicked,
    #[error("cannot start a worker thread: {0}")]
    Spawn(std::io::Error),
    #[error("{}: exists and is not a regular file; not replacing it", path.display())]
    NotAFile { path: PathBuf },
    #[error("cannot put {} in place: {error}", path.display())]
    Publish {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// How fast a replay feeds its captures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pacing {
    /// As fast as the switch takes them.
    Flood,
    /// This many packets per second from each input.
    Rate(f64),
    /// At the capture's own timing.
    Realtime,
}

/// Where an input's records come from: a capture read as a stream, or records in memory.
pub enum Source {
    Stream(Box<CaptureReader>),
    Memory { records: Vec<Record>, next: usize },
}

impl Source {
    /// The records of a capture already in memory.
    pub fn memory(c: Capture) -> Source {
        Source::Memory {
            records: c.records,
            next: 0,
        }
    }

    fn peek(&mut self) -> Result<Option<RecordRef<'_>>, PcapError> {
        match self {
            Source::Stream(r) => r.peek(),
            Source::Memory { records, next } => Ok(records.get(*next).map(|r| RecordRef {
                ts_sec: r.ts_sec,
                ts_nsec: r.ts_nsec,
                linktype: r.linktype,
                orig_len: r.orig_len,
                data: &r.data,
            })),
        }
    }

    fn consume(&mut self) {
        match self {
            Source::Stream(r) => r.consume(),
            Source::Memory { next, .. } => *next += 1,
        }
    }

    fn nanos(&self) -> bool {
        match self {
            Source::Stream(r) => r.nanos(),
            Source::Memory { .. } => false,
        }
    }
}

struct Input {
    port: u16,
    source: Source,
    /// The packets taken so far.
    taken: u64,
    /// The first packet's time, in seconds (for `Pacing::Realtime`).
    first: Option<f64>,
}

/// Captures replayed as the ingress of ports, merged in time order across inputs, each read
/// as it is replayed.
pub struct Replay {
    inputs: Vec<Input>,
    pacing: Pacing,
    linktype: u32,
    nanos: bool,
    seq: u64,
    /// Records skipped since last taken (see [`Replay::fill`]).
    pub skipped: u64,
    skipped_total: u64,
    notices: Vec<String>,
    /// The input of the packet `next_due` returned.
    next: Option<usize>,
}

/// What a replay did when asked to fill a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// Loaded packets (the ring may be full or the next packet not yet due).
    Loaded,
    /// Nothing is due yet: the next packet is due at this time from the replay's start.
    Wait(Duration),
    /// Every input has been replayed.
    Done,
}

impl Replay {
    /// Replays each source as the ingress of its port. The first record of each is read
    /// here: the outputs take the first one's link type, and keep nanoseconds if an input
    /// has them (a nanosecond pcap; a pcapng interface finer than 1 µs described before its
    /// first packet).
    pub fn new(inputs: Vec<(u16, Source)>, pacing: Pacing) -> Result<Replay, PcapError> {
        let mut inputs: Vec<Input> = inputs
            .into_iter()
            .map(|(port, source)| Input {
                port,
                source,
                taken: 0,
                first: None,
            })
            .collect();
        let mut linktype = None;
        let mut nanos = false;
        for inp in &mut inputs {
            if let Some(r) = inp.source.peek()? {
                linktype.get_or_insert(r.linktype);
            }
            nanos |= inp.source.nanos();
        }
        Ok(Replay {
            inputs,
            pacing,
            linktype: linktype.unwrap_or(1),
            nanos,
            seq: 0,
            skipped: 0,
            skipped_total: 0,
            notices: Vec::new(),
            next: None,
        })
    }

    /// Replays captures already in memory (tests).
    pub fn from_captures(inputs: Vec<(u16, Capture)>, pacing: Pacing) -> Replay {
        let nanos = inputs.iter().any(|(_, c)| c.nanos);
        let sources = inputs
            .into_iter()
            .map(|(p, c)| (p, Source::memory(c)))
            .collect();
        let mut r = Replay::new(sources, pacing).unwrap_or_else(|_| unreachable!("in memory"));
        r.nanos |= nanos;
        r
    }

    /// What the user should hear of (records skipped) since last asked.
    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    /// The link type of the outputs: the first record's.
    pub fn linktype(&self) -> u32 {
        self.linktype
    }

    /// Whether the outputs keep nanoseconds.
    pub fn nanos(&self) -> bool {
        self.nanos
    }

    /// Bytes of the stream inputs read so far (for progress).
    pub fn position(&self) -> u64 {
        self.inputs
            .iter()
            .map(|i| match &i.source {
                Source::Stream(r) => r.position(),
                Source::Memory { .. } => 0,
            })
            .sum()
    }

    /// What each stream input's reader found to warn about, once the replay is over: records
    /// longer than their capture's snaplen. By input, in the order given.
    pub fn warnings(&self) -> Vec<(usize, String)> {
        self.inputs
            .iter()
            .enumerate()
            .filter_map(|(n, i)| match &i.source {
                Source::Stream(r) => r.over_snaplen.as_ref().map(|o| (n, o.to_string())),
                Source::Memory { .. } => None,
            })
            .collect()
    }

    /// When input `i`'s next packet is due, from the start of the replay.
    fn due(&mut self, i: usize) -> Result<Option<Duration>, PcapError> {
        let pacing = self.pacing;
        let inp = &mut self.inputs[i];
        let taken = inp.taken;
        let Some(r) = inp.source.peek()? else {
            return Ok(None);
        };
        let t = r.ts_sec as f64 + f64::from(r.ts_nsec) * 1e-9;
        let first = *inp.first.get_or_insert(t);
        Ok(Some(match pacing {
            Pacing::Flood => Duration::ZERO,
            Pacing::Rate(pps) => {
                Duration::try_from_secs_f64(taken as f64 / pps).unwrap_or(Duration::MAX)
            }
            Pacing::Realtime => {
                Duration::try_from_secs_f64((t - first).max(0.0)).unwrap_or(Duration::MAX)
            }
        }))
    }

    /// The next packet due at `now`, in time order across inputs, without taking it (call
    /// [`Replay::advance`] once it is loaded); records that cannot be replayed are skipped
    /// here. A capture that turns out malformed partway is an error.
    pub fn next_due(&mut self, now: Duration) -> Result<Due<'_>, PcapError> {
        let i = match self.pick(now)? {
            Ok(i) => i,
            Err(due) => return Ok(due),
        };
        self.next = Some(i);
        let seq = self.seq;
        let inp = &mut self.inputs[i];
        let port = inp.port;
        Ok(match inp.source.peek()? {
            Some(rec) => Due::Packet {
                data: rec.data,
                orig_len: rec.orig_len,
                meta: PacketMeta {
                    ingress_port: port,
                    ts_sec: rec.ts_sec,
                    ts_nsec: rec.ts_nsec,
                },
                seq,
            },
            // `pick` found a record there.
            None => Due::Done,
        })
    }

    /// The input whose next record is due first, if it is due at `now` (skipping records
    /// that cannot be replayed); otherwise what to do instead.
    fn pick(&mut self, now: Duration) -> Result<Result<usize, Due<'static>>, PcapError> {
        loop {
            let mut pick = None;
            for i in 0..self.inputs.len() {
                if let Some(d) = self.due(i)? {
                    if pick.is_none_or(|(pd, _)| d < pd) {
                        pick = Some((d, i));
                    }
                }
            }
            let i = match pick {
                None => return Ok(Err(Due::Done)),
                Some((d, _)) if d > now => return Ok(Err(Due::Wait(d))),
                Some((_, i)) => i,
            };
            let inp = &mut self.inputs[i];
            let (port, number) = (inp.port, inp.taken + 1);
            let Some(rec) = inp.source.peek()? else {
                continue;
            };
            if PcapOut::can_hold(rec.ts_sec, rec.ts_nsec) {
                return Ok(Ok(i));
            }
            // Its output could not hold it: dropped when read, not run. The first few are
            // listed, the rest only counted.
            let notice = format!(
                "input of port {port}: record {number}: timestamp {}.{:09} s cannot be \
                 written to classic pcap (32-bit seconds); skipped",
                rec.ts_sec, rec.ts_nsec
            );
            inp.source.consume();
            inp.taken += 1;
            self.skipped += 1;
            self.skipped_total += 1;
            match self.skipped_total {
                1..=10 => self.notices.push(notice),
                11 => self.notices.push(
                    "more records with such timestamps are skipped; the summary counts them".into(),
                ),
                _ => {}
            }
        }
    }

    /// Takes the packet [`Replay::next_due`] returned.
    pub fn advance(&mut self) {
        if let Some(i) = self.next.take() {
            let inp = &mut self.inputs[i];
            inp.source.consume();
            inp.taken += 1;
            self.seq += 1;
        }
    }

    /// Loads the packets due at `now` into the ring, in time order across inputs, until it
    /// is full.
    pub fn fill(&mut self, ring: &mut Ring, now: Duration) -> Result<Fill, PcapError> {
        let mut loaded = false;
        while !ring.is_full() {
            match self.next_due(now)? {
                Due::Packet {
                    data,
                    orig_len,
                    meta,
                    seq,
                } => {
                    ring.push(data, orig_len, meta, seq);
                    self.advance();
                    loaded = true;
                }
                Due::Wait(d) if !loaded => return Ok(Fill::Wait(d)),
                Due::Done if !loaded => return Ok(Fill::Done),
                _ => break,
            }
        }
        Ok(Fill::Loaded)
    }
}

/// What a replay has for `now` (see [`Replay::next_due`]).
pub enum Due<'a> {
    /// A packet: its bytes, its wire length, what it arrives with, its number in the replay.
    Packet {
        data: &'a [u8],
        orig_len: u32,
        meta: PacketMeta,
        seq: u64,
    },
    /// Nothing before this time from the replay's start.
    Wait(Duration),
    /// Every input has been replayed.
    Done,
}

/// The loop: a worker, its ring, its counters and the outputs.
pub struct Switch<W> {
    pub worker: W,
    pub ring: Ring,
    pub stats: Stats,
    pub outputs: PortOutputs,
}

/// One batch, as the loop hands it to its caller after running it and writing its outputs.
pub struct Batch<'a, W> {
    pub ring: &'a Ring,
    pub worker: &'a W,
    pub stats: &'a Stats,
    /// What the user should hear of since the last batch (a port's output given up, an input
    /// record skipped).
    pub notices: Vec<String>,
    /// Bytes of the captures read so far (for a progress bar).
    pub read_bytes: u64,
    /// The control plane's revision the batch's tables held (`TableSet::revision`).
    pub revision: u64,
}

impl<W: Worker> Switch<W> {
    /// Runs what the ring holds against the copy `tables` picks, writes each forwarded
    /// packet to its port, then hands the batch to `after` (a trace, published counters),
    /// which may stop the loop; clears the ring.
    pub fn run_batch(
        &mut self,
        tables: &mut Tables,
        notices: Vec<String>,
        read_bytes: u64,
        after: &mut impl FnMut(Batch<'_, W>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, SwitchError> {
        let Switch {
            worker,
            ring,
            stats,
            outputs,
        } = self;
        let revision = tables.with(|t| ring.run(worker, t, stats).map(|()| t.revision()))?;
        for p in ring.packets() {
            if let Verdict::Forward(port) = p.verdict {
                outputs.write(port, p.meta, p.pkt, stats)?;
            }
        }
        let mut notices = notices;
        notices.extend(outputs.take_notices());
        let flow = after(Batch {
            ring,
            worker,
            stats,
            notices,
            read_bytes,
            revision,
        });
        ring.clear();
        Ok(flow)
    }

    /// Replays `src` through the switch until it is done (with `exit_when_done`), `stop`
    /// is set, or `after` says stop. Waits for packets that are not due yet; `clock` gives
    /// the time since the replay started.
    pub fn replay(
        &mut self,
        src: &mut Replay,
        tables: &mut Tables,
        clock: impl Fn() -> Duration,
        stop: &std::sync::atomic::AtomicBool,
        exit_when_done: bool,
        mut after: impl FnMut(Batch<'_, W>) -> ControlFlow<()>,
    ) -> Result<(), SwitchError> {
        use std::sync::atomic::Ordering;
        while !stop.load(Ordering::Relaxed) {
            self.outputs.flush_if_due(&mut self.stats)?;
            let now = clock();
            let fill = src.fill(&mut self.ring, now).map_err(SwitchError::Read)?;
            self.stats.skipped += std::mem::take(&mut src.skipped);
            let notices = src.take_notices();
            match fill {
                Fill::Loaded => {
                    let read = src.position();
                    if self
                        .run_batch(tables, notices, read, &mut after)?
                        .is_break()
                    {
                        break;
                    }
                }
                Fill::Wait(d) => {
                    std::thread::sleep(d.saturating_sub(now).min(Duration::from_millis(1)))
                }
                Fill::Done if exit_when_done => break,
                Fill::Done => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        Ok(())
    }

    /// Flushes the outputs and puts them in place; the counters are what is left, with
    /// what the user should still hear of (an output given up at the end).
    pub fn finish(self) -> Result<(Stats, Vec<String>), SwitchError> {
        let mut stats = self.stats;
        let notices = self.outputs.finish(&mut stats)?;
        Ok((stats, notices))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(times: &[(u64, u32)], tag: u8) -> Capture {
        Capture {
            records: times
                .iter()
                .map(|&(s, ns)| Record {
                    ts_sec: s,
                    ts_nsec: ns,
                    linktype: 1,
                    orig_len: 60,
                    data: vec![tag; 20],
                })
                .collect(),
            nanos: false,
            over_snaplen: None,
        }
    }

    #[test]
    fn a_ring_holds_its_capacity_and_numbers_packets() {
        let mut ring = Ring::new(2, 32, 8);
        let meta = PacketMeta::default();
        assert!(ring.push(&[1; 10], 10, meta, 5));
        assert!(ring.push(&[2; 3], 3, meta, 6));
        assert!(ring.is_full());
        assert!(!ring.push(&[3; 3], 3, meta, 7));
        let seen: Vec<(u64, usize, u8)> = ring
            .packets()
            .map(|p| (p.seq, p.in_len, p.pkt.data()[0]))
            .collect();
        assert_eq!(seen, [(5, 10, 1), (6, 3, 2)]);
        // A packet longer than the buffers were made for grows its buffer.
        ring.clear();
        assert!(ring.push(&[9; 100], 100, meta, 8));
        assert_eq!(ring.packets().next().unwrap().pkt.len(), 100);
        assert_eq!(ring.packets().next().unwrap().pkt.headroom(), 32);
    }

    #[test]
    fn a_replay_merges_its_inputs_in_time_order() {
        // Realtime: each input's packets are due at their offset from its own first packet.
        let a = capture(&[(100, 0), (100, 300_000_000), (101, 0)], 1);
        let b = capture(&[(500, 100_000_000), (500, 200_000_000)], 2);
        let mut r = Replay::from_captures(vec![(0, a), (7, b)], Pacing::Realtime);
        let mut ring = Ring::new(8, 0, 64);
        assert_eq!(r.fill(&mut ring, Duration::ZERO).unwrap(), Fill::Loaded);
        // Both first packets are due at once; the rest wait.
        let got: Vec<(u16, u64)> = ring
            .packets()
            .map(|p| (p.meta.ingress_port, p.seq))
            .collect();
        assert_eq!(got, [(0, 0), (7, 1)]);
        ring.clear();
        assert_eq!(
            r.fill(&mut ring, Duration::from_millis(50)).unwrap(),
            Fill::Wait(Duration::from_millis(100))
        );
        assert_eq!(
            r.fill(&mut ring, Duration::from_millis(350)).unwrap(),
            Fill::Loaded
        );
        let got: Vec<u16> = ring.packets().map(|p| p.meta.ingress_port).collect();
        assert_eq!(got, [7, 0]);
        ring.clear();
        assert_eq!(
            r.fill(&mut ring, Duration::from_secs(2)).unwrap(),
            Fill::Loaded
        );
        assert_eq!(ring.len(), 1);
        ring.clear();
        assert_eq!(
            r.fill(&mut ring, Duration::from_secs(2)).unwrap(),
            Fill::Done
        );
    }

    #[test]
    fn a_flood_fills_the_ring_and_a_rate_spaces_packets() {
        let a = capture(&[(1, 0); 5], 1);
        let mut r = Replay::from_captures(vec![(3, a.clone())], Pacing::Flood);
        let mut ring = Ring::new(4, 0, 64);
        assert_eq!(r.fill(&mut ring, Duration::ZERO).unwrap(), Fill::Loaded);
        assert_eq!(ring.len(), 4);
        let mut r = Replay::from_captures(vec![(3, a)], Pacing::Rate(10.0));
        ring.clear();
        assert_eq!(
            r.fill(&mut ring, Duration::from_millis(150)).unwrap(),
            Fill::Loaded
        );
        assert_eq!(ring.len(), 2);
        assert_eq!(r.linktype(), 1);
    }
}
