//! Tables shared between the datapath threads and the control plane, updated atomically with a
//! left-right scheme: two copies of the table set, one read by the datapath and one written.
//!
//! A control-plane operation is applied to the copy the datapath is not reading, the copies
//! are swapped, and once the datapath has moved to the new copy the operation is applied to
//! the old one too. The datapath checks which copy to read once per batch of packets, with
//! plain atomic loads and stores: no lock and no read-modify-write on its path. Each datapath
//! thread has a reader slot of its own; a writer waits for every one to leave a copy. Every packet
//! of a batch sees one copy, so it sees the tables from before an update or from after it,
//! never a mixture.

use crate::table::TableSet;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Set in the reader's state while it reads a copy.
const IN_BATCH: u64 = 1 << 63;

struct Shared {
    copies: [UnsafeCell<TableSet>; 2],
    /// Incremented at each publish; the datapath reads copy `epoch & 1`.
    epoch: AtomicU64,
    /// Each reader's state: `IN_BATCH | epoch` while it reads copy `epoch & 1`, or the last
    /// epoch it saw when it is between batches.
    readers: Box<[Slot]>,
    /// Serializes writers; holds nothing itself.
    writer: Mutex<()>,
}

// SAFETY: the copies are only touched under the protocol described in the module docs: the
// reader only reads copy `e & 1` while its state says `IN_BATCH | e`; a writer only mutates the
// copy that no reader state refers to, while holding `writer`. What both sides touch at once
// are the entry counters: aligned 64-bit words that the datapath (Rust or generated code)
// updates with single loads and stores and the control plane reads with relaxed atomic loads,
// which the hardware keeps whole; a reset racing with a count may lose one of them.
unsafe impl Sync for Shared {}
// SAFETY: as above; moving the copies between threads is safe because TableSet is Send.
unsafe impl Send for Shared {}

/// A reader's state on a cache line of its own, so that readers do not slow each other.
#[repr(align(64))]
struct Slot(AtomicU64);

/// The control plane's handle.
#[derive(Clone)]
pub struct LiveTables {
    shared: Arc<Shared>,
}

/// A datapath thread's handle: one per thread, not Clone.
pub struct Reader {
    shared: Arc<Shared>,
    slot: usize,
}

impl LiveTables {
    /// Shares a table set; returns the control handle and the one datapath reader.
    pub fn new(set: TableSet) -> (LiveTables, Reader) {
        let (live, mut readers) = LiveTables::with_readers(set, 1);
        let reader = readers.pop().expect("one reader was made");
        (live, reader)
    }

    /// Shares a table set between `n` datapath threads (at least one), each with its reader.
    pub fn with_readers(set: TableSet, n: usize) -> (LiveTables, Vec<Reader>) {
        let shared = Arc::new(Shared {
            copies: [UnsafeCell::new(set.clone()), UnsafeCell::new(set)],
            epoch: AtomicU64::new(0),
            readers: (0..n.max(1)).map(|_| Slot(AtomicU64::new(0))).collect(),
            writer: Mutex::new(()),
        });
        let readers = (0..n.max(1))
            .map(|slot| Reader {
                shared: shared.clone(),
                slot,
            })
            .collect();
        (LiveTables { shared }, readers)
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The lock guards no data of its own, and `write` keeps the copies equal whatever an
        // operation returns, so a poisoned lock is still usable.
        self.shared.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until no datapath thread reads copy `c`.
    fn wait_off(&self, c: u64) {
        // A batch takes microseconds: spin briefly before sleeping, so that an update does not
        // cost the writer a scheduler round trip (and the datapath a wakeup on its core).
        let start = std::time::Instant::now();
        loop {
            let busy = self.shared.readers.iter().any(|s| {
                let r = s.0.load(Ordering::SeqCst);
                r & IN_BATCH != 0 && (r & 1) == c
            });
            if !busy {
                return;
            }
            if start.elapsed() < Duration::from_micros(200) {
                std::hint::spin_loop();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }

    /// Reads the tables as the control plane sees them (both copies are equal between
    /// writes). The counters are those of this copy only; see [`LiveTables::read_both`].
    pub fn read<R>(&self, f: impl FnOnce(&TableSet) -> R) -> R {
        let _g = self.lock();
        let e = self.shared.epoch.load(Ordering::SeqCst);
        // SAFETY: writers are excluded by the lock; the datapath only reads, and concurrent
        // reads are fine (counters are atomics).
        f(unsafe { &*self.shared.copies[(e & 1) as usize].get() })
    }

    /// Reads both copies (for counters, which each copy keeps for the packets that read it).
    pub fn read_both<R>(&self, f: impl FnOnce(&TableSet, &TableSet) -> R) -> R {
        let _g = self.lock();
        // SAFETY: as in `read`.
        let (a, b) = unsafe { (&*self.shared.copies[0].get(), &*self.shared.copies[1].get()) };
        f(a, b)
    }

    /// Applies an operation atomically: the datapath sees every table as before or as after.
    /// `op` runs twice, once on each copy, and must do the same thing both times; if it fails
    /// on the first copy it is not published and does not run again.
    pub fn write<R, E>(&self, mut op: impl FnMut(&mut TableSet) -> Result<R, E>) -> Result<R, E> {
        let _g = self.lock();
        let e = self.shared.epoch.load(Ordering::SeqCst);
        let spare = (e + 1) & 1;
        // The datapath may still be finishing a batch on the copy it used before epoch e.
        self.wait_off(spare);
        // SAFETY: the datapath is not reading `spare` (just checked), and cannot start to: it
        // reads copy `epoch & 1` = `e & 1` until we publish. Writers are excluded by the lock.
        let result = match op(unsafe { &mut *self.shared.copies[spare as usize].get() }) {
            Ok(r) => r,
            Err(err) => {
                // The operation may have changed the spare copy before failing: make it equal
                // to the datapath's copy again, so that a failed command changes nothing.
                // SAFETY: as above for `spare`; the datapath's copy is only read.
                unsafe {
                    let good = (*self.shared.copies[(e & 1) as usize].get()).clone();
                    *self.shared.copies[spare as usize].get() = good;
                }
                return Err(err);
            }
        };
        self.shared.epoch.store(e + 1, Ordering::SeqCst);
        self.wait_off(e & 1);
        // SAFETY: the datapath has left copy `e & 1` and will read `spare` from now on.
        let again = op(unsafe { &mut *self.shared.copies[(e & 1) as usize].get() });
        if again.is_err() {
            // Cannot happen for a deterministic operation; if it does, copy the published
            // table set over the other, so that the two never drift apart.
            // SAFETY: the datapath reads `spare` (published above), never `e & 1` now.
            unsafe {
                let good = (*self.shared.copies[spare as usize].get()).clone();
                *self.shared.copies[(e & 1) as usize].get() = good;
            }
        }
        Ok(result)
    }
}

impl Reader {
    /// Starts a batch: returns the copy to use until [`Reader::end`].
    pub fn begin(&mut self) -> &TableSet {
        loop {
            let e = self.shared.epoch.load(Ordering::SeqCst);
            self.shared.readers[self.slot]
                .0
                .store(IN_BATCH | e, Ordering::SeqCst);
            // A writer may have published between the load and the store; it then waits for
            // this state or sees it, so re-check the epoch.
            if self.shared.epoch.load(Ordering::SeqCst) == e {
                // SAFETY: our state says we read copy `e & 1`; writers do not touch it until we
                // clear IN_BATCH or move on (see `LiveTables::write`).
                return unsafe { &*self.shared.copies[(e & 1) as usize].get() };
            }
        }
    }

    /// Ends a batch; the copy must not be used after this.
    pub fn end(&mut self) {
        let e = self.shared.epoch.load(Ordering::SeqCst);
        self.shared.readers[self.slot].0.store(e, Ordering::SeqCst);
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{
        ActionCall, ActionSchema, KeyField, MatchKind, MatchValue, ParamSchema, ProgramSchema,
        TableSchema,
    };

    fn set() -> TableSet {
        let actions = vec![ActionSchema {
            name: "set".into(),
            params: vec![
                ParamSchema {
                    name: "a".into(),
                    width: 64,
                    nonzero: false,
                },
                ParamSchema {
                    name: "b".into(),
                    width: 64,
                    nonzero: false,
                },
            ],
        }];
        let t = TableSchema {
            name: "t".into(),
            keys: vec![KeyField {
                name: "k".into(),
                width: 8,
                kind: MatchKind::Exact,
            }],
            actions: vec![0],
            default_action: ActionCall {
                action: 0,
                args: vec![0, 0].into(),
            },
            const_default: false,
            size: 16,
        };
        let mut s = TableSet::new(ProgramSchema {
            actions,
            tables: vec![t],
            secrets: vec![],
        });
        let call = ActionCall {
            action: 0,
            args: vec![0, 0].into(),
        };
        s.add(0, vec![MatchValue::Exact(1)], call, None).unwrap();
        s
    }

    #[test]
    fn readers_never_see_a_torn_update() {
        let (live, mut reader) = LiveTables::new(set());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        // The writer starts once the reader has read, so that reads overlap the updates
        // even when the reader's thread is scheduled late.
        let reading = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reading2 = reading.clone();
        let writer = std::thread::spawn(move || {
            while !reading2.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
            for i in 1..=2000u128 {
                live.write(|s| {
                    s.modify(
                        0,
                        crate::table::EntryHandle(0),
                        ActionCall {
                            action: 0,
                            args: vec![i, i].into(),
                        },
                    )
                })
                .unwrap();
            }
            stop2.store(true, Ordering::SeqCst);
        });
        let mut batches = 0u64;
        let mut last = 0u128;
        loop {
            let done = stop.load(Ordering::SeqCst);
            let t = reader.begin();
            for _ in 0..16 {
                let (hit, row) = t.tables()[0].lookup_row(0, &[1], 1);
                assert!(hit);
                let args = t.tables()[0].decode_row(row).args;
                // Both arguments come from the same update, and updates only move forward.
                assert_eq!(args[0], args[1]);
                assert!(args[0] >= last);
                last = args[0];
            }
            reader.end();
            batches += 1;
            reading.store(true, Ordering::SeqCst);
            if done {
                break;
            }
        }
        writer.join().unwrap();
        let t = reader.begin();
        let t0 = &t.tables()[0];
        assert_eq!(t0.decode_row(t0.lookup_row(0, &[1], 1).1).args[0], 2000);
        reader.end();
        assert!(batches > 1);
    }

    #[test]
    fn a_failed_operation_changes_nothing() {
        let (live, mut reader) = LiveTables::new(set());
        let r: Result<(), &str> = live.write(|s| {
            s.clear(0).unwrap();
            Err("refused")
        });
        // The spare copy was cleared before the error and is restored.
        assert!(r.is_err());
        let t = reader.begin();
        assert!(t.tables()[0].lookup_row(0, &[1], 1).0);
        reader.end();
        // After a successful write the datapath reads the other copy: still equal.
        live.write(|_| Ok::<(), ()>(())).unwrap();
        let t = reader.begin();
        assert!(t.tables()[0].lookup_row(0, &[1], 1).0);
        reader.end();
        live.read_both(|a, b| assert_eq!(a.tables()[0].num_entries(), b.tables()[0].num_entries()));
    }
}
