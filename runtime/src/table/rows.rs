//! The rows the datapath reads (action id, then arguments, by handle) and the view that
//! generated code reads (`crate::jitview`), kept current by every change.
//!
//! Rule: every method that changes the entries, the default or the index ends with
//! `refresh_view`, since a change may have moved the arrays the view points at.

use super::index::Index;
use super::{ActionCall, MatchValue, Table};

impl Table {
    /// Points the view at the current arrays (which a change may have moved).
    pub(crate) fn refresh_view(&mut self) {
        let v = &mut self.view;
        v.hot = self.hot.as_ptr() as u64;
        v.stride = self.stride as u64;
        v.default_row = self.hot_default.as_ptr() as u64;
        v.counters = self.counters.as_ptr() as u64;
        if let Index::Direct { slots, .. } = &self.index {
            v.direct = slots.as_ptr() as u64;
        }
        if let [_, k1] = &self.schema.keys[..] {
            v.width1 = u64::from(k1.width);
        }
        self.jit_hash.fill(v);
    }

    /// Keeps the inline lookup's hash table in step with an entry added or removed.
    pub(crate) fn update_jit_hash(&mut self, key: &[MatchValue], handle: Option<u32>) {
        let exact = |m: &MatchValue| match *m {
            MatchValue::Exact(v) => u64::try_from(v).ok(),
            _ => None,
        };
        match self.view.kind {
            crate::jitview::KIND_HASH => {
                let packed = match key {
                    [a] => exact(a),
                    [a, b] => exact(a).zip(exact(b)).map(|(a, b)| {
                        let w1 = self.schema.keys[1].width;
                        (a << w1) | b
                    }),
                    _ => None,
                };
                if let Some(k) = packed {
                    match handle {
                        Some(h) => self.jit_hash.insert(k, u64::from(h) + 1),
                        None => self.jit_hash.remove(k),
                    }
                }
            }
            crate::jitview::KIND_RANGE => {
                let Index::RangeArray(ra) = &self.index else {
                    return;
                };
                let Some(e) = key.get(1 - ra.pos).and_then(exact) else {
                    return;
                };
                // The group's array exists while the group has members.
                match ra.groups.get(&u128::from(e)) {
                    Some(g) => self.jit_hash.insert(e, g.slots.as_ptr() as u64),
                    None => self.jit_hash.remove(e),
                }
            }
            _ => {}
        }
    }

    pub(crate) fn row(call: &ActionCall, stride: usize) -> impl Iterator<Item = u128> + '_ {
        std::iter::once(u128::from(call.action))
            .chain(call.args.iter().copied())
            .chain(std::iter::repeat(0))
            .take(stride)
    }

    pub(crate) fn set_hot_default(&mut self) {
        self.hot_default = std::iter::once(u128::from(self.default.action))
            .chain(self.default.args.iter().copied())
            .collect();
    }

    /// Writes an entry's row, widening every row first if its arguments need it.
    pub(crate) fn set_hot(&mut self, h: u32, call: &ActionCall) {
        let need = call.args.len() + 1;
        if need > self.stride {
            let old = std::mem::take(&mut self.hot);
            let n = old.len() / self.stride;
            let mut grown = vec![0u128; n * need];
            for (i, row) in old.chunks(self.stride).enumerate() {
                grown[i * need..i * need + row.len()].copy_from_slice(row);
            }
            self.hot = grown;
            self.stride = need;
        }
        let at = h as usize * self.stride;
        if self.hot.len() < at + self.stride {
            self.hot.resize(at + self.stride, 0);
        }
        let stride = self.stride;
        for (dst, v) in self.hot[at..at + stride]
            .iter_mut()
            .zip(Self::row(call, stride))
        {
            *dst = v;
        }
        self.resize_counters(h as usize + 1);
    }
}
