//! The datapath's lookups: allocation-free, by key slice or, for one or two key fields, by
//! value.

use super::index::Index;
use super::{fits, ActionCall, EntryHandle, Table};

impl Table {
    /// Finds the winning entry for a packet; `key[i]` is the packet's value
    /// for key field `i`. Returns `None` on a miss (use
    /// [`Table::default_action`]), when `key` has the wrong length, or when
    /// a value is wider than its field. Never allocates.
    pub fn lookup(&self, key: &[u128]) -> Option<(EntryHandle, &ActionCall)> {
        let handle = self.index.lookup(key, &self.slots, &self.schema.keys)?;
        self.get(handle).map(|e| (EntryHandle(handle), &e.call))
    }

    /// [`Table::lookup`] and [`Table::count`] in one step, for the datapath.
    #[inline]
    pub fn lookup_counted(
        &self,
        lane: usize,
        key: &[u128],
        bytes: u64,
    ) -> Option<(EntryHandle, &ActionCall)> {
        let handle = self.index.lookup(key, &self.slots, &self.schema.keys)?;
        let e = self.get(handle)?;
        self.count(lane, EntryHandle(handle), bytes);
        Some((EntryHandle(handle), &e.call))
    }

    /// The datapath's lookup for a table of one or two key fields, with the values passed
    /// directly: the common shapes (exact keys packed in a hash map or a direct array, an
    /// exact key and a range) are looked up without building a key slice. Same result as
    /// [`Table::lookup_row`].
    #[inline]
    pub fn lookup_row2(&self, lane: usize, k0: u128, k1: u128, bytes: u64) -> (bool, &[u64]) {
        let n = self.schema.keys.len();
        let h = match &self.index {
            Index::Packed { widths, map } if n <= 2 => {
                let packed = if n == 1 {
                    fits(k0, widths[0]).then_some(k0)
                } else if fits(k0, widths[0]) && fits(k1, widths[1]) && widths[0] + widths[1] <= 128
                {
                    Some((k0 << widths[1]) | k1)
                } else {
                    None
                };
                packed.and_then(|k| map.get(&k).copied())
            }
            Index::RangeArray(ra) if n == 2 => {
                let (e, r) = if ra.pos == 1 { (k0, k1) } else { (k1, k0) };
                let ew = ra.widths[1 - ra.pos];
                if fits(e, ew) && fits(r, ra.range_width()) {
                    ra.groups.get(&e).and_then(|g| g.slots.get(r))
                } else {
                    None
                }
            }
            _ => {
                let key = [k0, k1];
                return self.lookup_row(lane, &key[..n.min(2)], bytes);
            }
        };
        if let Some(h) = h {
            if let Some(row) = self.row_of(h) {
                self.count(lane, EntryHandle(h), bytes);
                return (true, row);
            }
        }
        (false, &self.hot_default)
    }

    /// The datapath's lookup: counts a hit and returns the row of the chosen action (its id,
    /// then its arguments, laid out by `jitview::arg_slots`), and whether it hit.
    #[inline]
    pub fn lookup_row(&self, lane: usize, key: &[u128], bytes: u64) -> (bool, &[u64]) {
        if let Some(h) = self.index.lookup(key, &self.slots, &self.schema.keys) {
            if let Some(row) = self.row_of(h) {
                self.count(lane, EntryHandle(h), bytes);
                return (true, row);
            }
        }
        (false, &self.hot_default)
    }
}
