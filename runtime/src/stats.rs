//! Counters of a running switch: every packet in is either forwarded or dropped with a reason.

use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub packets_in: u64,
    /// Per ingress port.
    pub in_by_port: BTreeMap<u16, u64>,
    /// Per egress port.
    pub forwarded: BTreeMap<u16, u64>,
    /// Per drop reason id (the program's reason table).
    pub dropped: Vec<u64>,
    pub table_hits: Vec<u64>,
    pub table_misses: Vec<u64>,
    pub action_runs: Vec<u64>,
}

impl Stats {
    pub fn new(reasons: usize, tables: usize, actions: usize) -> Stats {
        Stats {
            dropped: vec![0; reasons],
            table_hits: vec![0; tables],
            table_misses: vec![0; tables],
            action_runs: vec![0; actions],
            ..Stats::default()
        }
    }

    pub fn forwarded_total(&self) -> u64 {
        self.forwarded.values().sum()
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// in = forwarded + dropped: the invariant every summary states.
    pub fn balanced(&self) -> bool {
        self.packets_in == self.forwarded_total() + self.dropped_total()
    }

    /// Adds another switch's counters (same program) into these.
    pub fn merge(&mut self, other: &Stats) {
        self.packets_in += other.packets_in;
        for (p, n) in &other.in_by_port {
            *self.in_by_port.entry(*p).or_default() += n;
        }
        for (p, n) in &other.forwarded {
            *self.forwarded.entry(*p).or_default() += n;
        }
        for (dst, src) in [
            (&mut self.dropped, &other.dropped),
            (&mut self.table_hits, &other.table_hits),
            (&mut self.table_misses, &other.table_misses),
            (&mut self.action_runs, &other.action_runs),
        ] {
            if dst.len() < src.len() {
                dst.resize(src.len(), 0);
            }
            for (d, s) in dst.iter_mut().zip(src) {
                *d += s;
            }
        }
    }
}
