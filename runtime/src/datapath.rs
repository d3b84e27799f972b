//! The datapath interface: what runs a batch of packets against a program's tables and
//! counts them. The reference interpreter, the JIT and the hand-written references in
//! `sluice bench` implement it; the switch loop (`crate::switch`), `run`, `serve` and `bench`
//! use it, and the differential test compares two implementations of it.
//!
//! A [`Pipeline`] is the program ready to run (compiled code, or the IR an interpreter
//! walks); it is shared, by reference, between every thread that runs it. A [`Worker`] is
//! the state one thread runs it with (the context generated code gets, scratch and staging
//! areas); each thread makes its own from the pipeline.

use crate::packet::{PacketBuf, PacketMeta, Verdict};
use crate::stats::Stats;
use crate::table::{Fingerprint, ProgramSchema, TableSet};
use std::sync::Arc;
use thiserror::Error;

/// A program ready to run packets, shareable between threads.
pub trait Pipeline: Sync {
    /// The per-thread state that runs it.
    type Worker<'p>: Worker
    where
        Self: 'p;

    /// A new worker, for one thread, counting in lane 0 of the tables' entry counters.
    fn worker(&self) -> Self::Worker<'_> {
        self.worker_in_lane(0)
    }

    /// A new worker that counts in lane `lane` of the tables' entry counters: each of the
    /// threads that share one table set (`--workers`) has a lane of its own, so that the
    /// counters stay exact without a read-modify-write per packet. Tables with fewer lanes
    /// (`TableSet::set_lanes`) are refused.
    fn worker_in_lane(&self, lane: usize) -> Self::Worker<'_>;
}

/// Runs packets for one thread. Every implementation has the interpreter's contract: the
/// same output bytes, verdicts and counters.
pub trait Worker {
    /// Runs a batch of packets: `out[i]` is the verdict of `pkts[i]`, which arrived with
    /// `metas[i]`; each packet is counted in `stats` (in, forwarded or dropped with its
    /// reason, tables, actions) and in the entry counters of `tables`. The three slices have
    /// the same length. Tables or counters that were not made for this worker's program are
    /// refused, and nothing runs.
    fn process_batch(
        &mut self,
        tables: &TableSet,
        stats: &mut Stats,
        pkts: &mut [PacketBuf],
        metas: &[PacketMeta],
        out: &mut [Verdict],
    ) -> Result<(), DatapathError>;

    /// Runs one packet: `process_batch` with a batch of one.
    fn process(
        &mut self,
        tables: &TableSet,
        stats: &mut Stats,
        pkt: &mut PacketBuf,
        meta: &PacketMeta,
    ) -> Result<Verdict, DatapathError> {
        let mut v = [Verdict::Drop(0)];
        self.process_batch(
            tables,
            stats,
            std::slice::from_mut(pkt),
            std::slice::from_ref(meta),
            &mut v,
        )?;
        Ok(v[0])
    }

    /// What happened to packet `i` of the last batch, step by step, for a worker that traces
    /// (the interpreter's `--trace`); `None` for the others.
    fn trace(&self, i: usize) -> Option<&str> {
        let _ = i;
        None
    }
}

impl<W: Worker + ?Sized> Worker for Box<W> {
    fn process_batch(
        &mut self,
        tables: &TableSet,
        stats: &mut Stats,
        pkts: &mut [PacketBuf],
        metas: &[PacketMeta],
        out: &mut [Verdict],
    ) -> Result<(), DatapathError> {
        (**self).process_batch(tables, stats, pkts, metas, out)
    }

    fn trace(&self, i: usize) -> Option<&str> {
        (**self).trace(i)
    }
}

/// Why a worker refused a batch.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DatapathError {
    #[error(
        "the tables were built for another program (table schema {found}; this program's is \
         {expected}): build them from this program"
    )]
    ForeignTables {
        expected: Fingerprint,
        found: Fingerprint,
    },
    #[error("the counters were made for another program: make them with Stats::for_schema")]
    ForeignStats,
    #[error("the tables count for {lanes} threads; this worker counts in lane {lane}: give them more lanes (TableSet::set_lanes)")]
    NoLane { lane: usize, lanes: usize },
}

/// The check every worker makes before a batch: the tables are the program's, the counters
/// sized for it. Remembers the last schema it accepted, so that a table set seen before (one
/// of the live copies, say) costs one pointer comparison.
#[derive(Clone, Debug)]
pub struct Binding {
    schema: Arc<ProgramSchema>,
    fingerprint: Fingerprint,
    /// The schema of the last table set accepted (another allocation equal to `schema`).
    seen: Option<Arc<ProgramSchema>>,
    reasons: usize,
}

impl Binding {
    /// Binds to a program's schema; `reasons` is how many drop reasons it counts.
    pub fn new(schema: Arc<ProgramSchema>, reasons: usize) -> Binding {
        Binding {
            fingerprint: schema.fingerprint(),
            schema,
            seen: None,
            reasons,
        }
    }

    pub fn schema(&self) -> &Arc<ProgramSchema> {
        &self.schema
    }

    /// Checks a batch's tables and counters.
    #[inline]
    pub fn check(&mut self, tables: &TableSet, stats: &Stats) -> Result<(), DatapathError> {
        let s = tables.schema();
        let known = Arc::ptr_eq(s, &self.schema)
            || self.seen.as_ref().is_some_and(|seen| Arc::ptr_eq(s, seen));
        if !known {
            self.check_schema(tables)?;
        }
        let (t, a) = (self.schema.tables.len(), self.schema.actions.len());
        if stats.table_hits.len() != t
            || stats.table_misses.len() != t
            || stats.action_runs.len() != a
            || stats.dropped.len() < self.reasons
        {
            return Err(DatapathError::ForeignStats);
        }
        Ok(())
    }

    #[cold]
    fn check_schema(&mut self, tables: &TableSet) -> Result<(), DatapathError> {
        if **tables.schema() != *self.schema {
            return Err(DatapathError::ForeignTables {
                expected: self.fingerprint,
                found: tables.fingerprint(),
            });
        }
        self.seen = Some(tables.schema().clone());
        Ok(())
    }
}
