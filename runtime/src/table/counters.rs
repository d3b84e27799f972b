//! Per-entry packet and byte counters. The datapath updates them with a relaxed load and
//! store (no read-modify-write): one thread counts into one copy of a table.

use super::{EntryHandle, Table};
use std::sync::atomic::{AtomicU64, Ordering};

/// An entry's packet and byte counters, apart from the entry so that the datapath touches
/// only them and the entry's row of [`Table::hot`]. `repr(C)`: generated code adds to them.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct Counter {
    pub(crate) packets: AtomicU64,
    pub(crate) bytes: AtomicU64,
}

impl Clone for Counter {
    fn clone(&self) -> Self {
        Counter {
            packets: AtomicU64::new(self.packets.load(Ordering::Relaxed)),
            bytes: AtomicU64::new(self.bytes.load(Ordering::Relaxed)),
        }
    }
}

impl Table {
    /// Counts one packet of `bytes` bytes against an entry, in counter lane `lane` (each
    /// datapath thread counts in a lane of its own). Unknown handles and lanes are ignored.
    ///
    /// Only one thread writes a lane, so a relaxed load and store suffice and avoid a
    /// read-modify-write atomic per packet.
    pub fn count(&self, lane: usize, h: EntryHandle, bytes: u64) {
        if let Some(c) = self.lane(lane).and_then(|l| l.get(h.0 as usize)) {
            let packets = c.packets.load(Ordering::Relaxed);
            c.packets.store(packets.wrapping_add(1), Ordering::Relaxed);
            let total = c.bytes.load(Ordering::Relaxed);
            c.bytes.store(total.wrapping_add(bytes), Ordering::Relaxed);
        }
    }

    fn lane(&self, lane: usize) -> Option<&Vec<Counter>> {
        match lane {
            0 => Some(&self.counters),
            n => self.lanes.get(n - 1),
        }
    }

    /// How many counter lanes the table has (datapath threads that may count in it).
    pub fn lanes(&self) -> usize {
        1 + self.lanes.len()
    }

    /// Gives the table `n` counter lanes (at least 1), each as long as the first.
    pub fn set_lanes(&mut self, n: usize) {
        let len = self.counters.len();
        self.lanes
            .resize_with(n.max(1) - 1, || vec![Counter::default(); len]);
    }

    /// Where lane `lane`'s counters start (generated code adds `handle * 16`); null for a
    /// lane the table does not have.
    pub fn counter_base(&self, lane: usize) -> u64 {
        self.lane(lane).map_or(0, |l| l.as_ptr() as u64)
    }

    /// An entry's counters summed over the lanes: packets, bytes.
    pub(crate) fn counted(&self, h: u32) -> (u64, u64) {
        let mut sum = (0u64, 0u64);
        for l in std::iter::once(&self.counters).chain(&self.lanes) {
            if let Some(c) = l.get(h as usize) {
                sum.0 = sum.0.wrapping_add(c.packets.load(Ordering::Relaxed));
                sum.1 = sum.1.wrapping_add(c.bytes.load(Ordering::Relaxed));
            }
        }
        sum
    }

    /// Keeps every lane as long as there are handles.
    pub(crate) fn resize_counters(&mut self, len: usize) {
        for l in std::iter::once(&mut self.counters).chain(&mut self.lanes) {
            if l.len() < len {
                l.resize_with(len, Counter::default);
            }
        }
    }

    /// Zeroes one entry's counters (a new entry in a reused handle).
    pub(crate) fn zero_counters(&self, h: u32) {
        for l in std::iter::once(&self.counters).chain(&self.lanes) {
            if let Some(c) = l.get(h as usize) {
                c.packets.store(0, Ordering::Relaxed);
                c.bytes.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Adds another copy's counters (all its lanes) into this one's first lane (the copies
    /// of a live table count separately).
    pub fn add_counters(&self, other: &Table) {
        for (h, mine) in self.counters.iter().enumerate() {
            let (p, b) = other.counted(h as u32);
            let mp = mine.packets.load(Ordering::Relaxed);
            mine.packets.store(mp.wrapping_add(p), Ordering::Relaxed);
            let mb = mine.bytes.load(Ordering::Relaxed);
            mine.bytes.store(mb.wrapping_add(b), Ordering::Relaxed);
        }
    }

    /// Zeroes the packet and byte counters of every entry, in every lane.
    pub fn reset_counters(&self) {
        for l in std::iter::once(&self.counters).chain(&self.lanes) {
            for c in l {
                c.packets.store(0, Ordering::Relaxed);
                c.bytes.store(0, Ordering::Relaxed);
            }
        }
    }
}
