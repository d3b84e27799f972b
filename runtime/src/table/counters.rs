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
    /// Counts one packet of `bytes` bytes against an entry. Unknown handles
    /// are ignored.
    ///
    /// Only one datapath thread writes the counters, so a relaxed load and
    /// store suffice and avoid a read-modify-write atomic per packet.
    pub fn count(&self, h: EntryHandle, bytes: u64) {
        if let Some(c) = self.counters.get(h.0 as usize) {
            let packets = c.packets.load(Ordering::Relaxed);
            c.packets.store(packets.wrapping_add(1), Ordering::Relaxed);
            let total = c.bytes.load(Ordering::Relaxed);
            c.bytes.store(total.wrapping_add(bytes), Ordering::Relaxed);
        }
    }

    /// Adds another copy's counters into these (the copies of a live table count separately).
    pub fn add_counters(&self, other: &Table) {
        for (mine, theirs) in self.counters.iter().zip(&other.counters) {
            let p = mine.packets.load(Ordering::Relaxed) + theirs.packets.load(Ordering::Relaxed);
            mine.packets.store(p, Ordering::Relaxed);
            let b = mine.bytes.load(Ordering::Relaxed) + theirs.bytes.load(Ordering::Relaxed);
            mine.bytes.store(b, Ordering::Relaxed);
        }
    }

    /// Zeroes the packet and byte counters of every entry.
    pub fn reset_counters(&self) {
        for c in &self.counters {
            c.packets.store(0, Ordering::Relaxed);
            c.bytes.store(0, Ordering::Relaxed);
        }
    }
}
