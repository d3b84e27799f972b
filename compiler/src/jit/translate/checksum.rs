//! Checksums: RFC 1624 updates from the deltas of the fields that changed, a fresh sum for a
//! pushed IPv4 header, the IPv4 pseudo-header for TCP and UDP.
//!
//! Rules: one's complement sums are built as plain integer sums and folded once (see
//! `oc_fold`), which gives the same bits as `sluice_runtime::checksum`'s chain of additions.

use super::*;

impl Translator<'_, '_> {
    // One's complement arithmetic on i64 values.
    //
    // `checksum::update` adds 16-bit contributions one at a time with end-around carry. The
    // result of such a chain depends only on the plain sum of its addends (0 if it is 0,
    // otherwise the sum's residue mod 0xffff in 1..=0xffff), so the generated code adds the
    // exact contributions as plain integers and folds once at the end: the same bits.

    /// Folds a value of `width` bits into 16 bits, as `checksum::fold` does (both give v mod
    /// 0xffff, and zero only for zero), with only as many steps as the width needs.
    pub(super) fn oc_fold(&mut self, v: Value, width: u32) -> Value {
        if self.b.func.dfg.value_type(v) == types::I128 {
            let lo = self.b.ins().ireduce(types::I64, v);
            let hi = self.b.ins().ushr_imm_u(v, 64);
            let hi = self.b.ins().ireduce(types::I64, hi);
            let a = self.oc_fold(lo, 64);
            let b = self.oc_fold(hi, width.saturating_sub(64).max(1));
            let s = self.b.ins().iadd(a, b);
            return self.fold_sum(s, 1);
        }
        if width <= 16 {
            return v;
        }
        let chunks = width.div_ceil(16);
        let mut s = self.b.ins().band_imm_u(v, 0xffff);
        for i in 1..chunks {
            let c = self.b.ins().ushr_imm_u(v, i64::from(16 * i));
            let c = if i + 1 < chunks {
                self.b.ins().band_imm_u(c, 0xffff)
            } else {
                c
            };
            s = self.b.ins().iadd(s, c);
        }
        // Two chunks sum to at most 0x1fffe: one fold. Four: at most 0x3fffc: two.
        self.fold_sum(s, if chunks <= 2 { 1 } else { 2 })
    }

    /// `rounds` end-around folds of a plain sum.
    pub(super) fn fold_sum(&mut self, mut s: Value, rounds: u32) -> Value {
        for _ in 0..rounds {
            let lo = self.b.ins().band_imm_u(s, 0xffff);
            let hi = self.b.ins().ushr_imm_u(s, 16);
            s = self.b.ins().iadd(lo, hi);
        }
        s
    }

    pub(super) fn oc_not(&mut self, a: Value) -> Value {
        self.b.ins().bxor_imm_u(a, 0xffff)
    }

    /// `checksum::contribution`: the folded value rotated to its place in the word grid.
    pub(super) fn contribution(&mut self, v: Value, bit_off: u32, width: u32) -> Value {
        let f = self.oc_fold(v, width);
        let rot = (16 - (bit_off + width) % 16) % 16;
        if rot == 0 {
            return f;
        }
        let l = self.b.ins().ishl_imm_u(f, i64::from(rot));
        let r = self.b.ins().ushr_imm_u(f, i64::from(16 - rot));
        let x = self.b.ins().bor(l, r);
        self.b.ins().band_imm_u(x, 0xffff)
    }

    /// What a field's change adds to a checksum sum: ~c(old) + c(new) if it changed, else 0.
    /// Most fields do not change, so the contributions are computed on a branch.
    pub(super) fn delta(&mut self, old: Value, new: Value, off: u32, w: u32) -> Value {
        let changed = self.b.ins().icmp(IntCC::NotEqual, old, new);
        self.value_or_zero(changed, |tr| {
            let ca = tr.contribution(old, off, w);
            let cb = tr.contribution(new, off, w);
            let n = tr.oc_not(ca);
            tr.b.ins().iadd(n, cb)
        })
    }

    /// An i64 computed on a branch taken when `cond` holds, 0 otherwise.
    pub(super) fn value_or_zero(
        &mut self,
        cond: Value,
        then: impl FnOnce(&mut Self) -> Value,
    ) -> Value {
        let yes = self.b.create_block();
        let done = self.b.create_block();
        self.b.append_block_param(done, types::I64);
        let z = self.b.ins().iconst(types::I64, 0);
        self.b
            .ins()
            .brif(cond, yes, &[], done, &[BlockArg::Value(z)]);
        self.b.switch_to_block(yes);
        let v = then(self);
        self.b.ins().jump(done, &[BlockArg::Value(v)]);
        self.b.switch_to_block(done);
        self.b.block_params(done)[0]
    }

    /// Deltas of every field a checksum needs, computed once before the checksums; a field's
    /// delta is the same in every checksum where it sits at the same place in the word grid
    /// (IPv4 source, destination and protocol do, in the header and in the pseudo-header).
    ///
    /// Only a header that was parsed and is still valid has an incremental update; for any
    /// other (a pushed header, say) its deltas are 0 without computing them.
    pub(super) fn field_deltas(&mut self) -> BTreeMap<(HeaderId, FieldId, u32), Value> {
        let mut out = BTreeMap::new();
        let mut by_header: BTreeMap<HeaderId, Vec<(FieldId, Variable, usize)>> = BTreeMap::new();
        for (&(h, f), &(var, i)) in &self.old {
            by_header.entry(h).or_default().push((f, var, i));
        }
        for (h, snaps) in by_header {
            let v = self.b.use_var(self.valid_mask);
            let e = self.b.use_var(self.extracted_mask);
            let both = self.b.ins().band(v, e);
            let x = self.b.ins().band_imm_u(both, h.bit() as i64);
            let live = self.b.ins().icmp_imm_u(IntCC::NotEqual, x, 0);
            let yes = self.b.create_block();
            let merge = self.b.create_block();
            let zeros: Vec<BlockArg> = snaps
                .iter()
                .map(|_| {
                    self.b.append_block_param(merge, types::I64);
                    BlockArg::Value(self.b.ins().iconst(types::I64, 0))
                })
                .collect();
            self.b.ins().brif(live, yes, &[], merge, &zeros);
            self.b.switch_to_block(yes);
            let mut ds = Vec::new();
            for &(f, var, i) in &snaps {
                // A field not written in this pass has not changed.
                let fd = &self.p.headers[h].fields[f];
                let (off, w) = (fd.bit_offset, fd.width);
                let seen = self.written_bit(i);
                let d = self.value_or_zero(seen, |tr| {
                    let base = tr.b.use_var(tr.base[h.index()]);
                    let a = tr.b.use_var(var);
                    let b = tr.load_field(base, off, w);
                    tr.delta(a, b, off, w)
                });
                ds.push(BlockArg::Value(d));
            }
            self.b.ins().jump(merge, &ds);
            self.b.switch_to_block(merge);
            for (i, &(f, _, _)) in snaps.iter().enumerate() {
                let fd = &self.p.headers[h].fields[f];
                let rot = (16 - (fd.bit_offset + fd.width) % 16) % 16;
                out.insert((h, f, rot), self.b.block_params(merge)[i]);
            }
        }
        out
    }

    pub(super) fn translate_checksums(&mut self) {
        if self.p.checksums.is_empty() {
            return;
        }
        let deltas = self.field_deltas();
        for c in &self.p.checksums.clone() {
            self.translate_checksum(c, &deltas);
        }
    }

    pub(super) fn translate_checksum(
        &mut self,
        c: &Checksum,
        deltas: &BTreeMap<(HeaderId, FieldId, u32), Value>,
    ) {
        let p = self.p;
        let h = &p.headers[c.header];
        let coff = h.fields[c.field].bit_offset;
        let valid = self.is_valid(c.header);
        let go = self.b.create_block();
        let done = self.b.create_block();
        self.b.ins().brif(valid, go, &[], done, &[]);
        self.b.switch_to_block(go);
        let base = self.b.use_var(self.base[c.header.index()]);
        let inc = self.b.create_block();
        let fresh = self.b.create_block();
        let store = self.b.create_block();
        self.b.append_block_param(store, types::I64);
        let parsed = self.parsed(c.header);
        if parsed {
            let ex = self.bit(self.extracted_mask, c.header);
            self.b.ins().brif(ex, inc, &[], fresh, &[]);
        } else {
            // Only ever pushed: always a fresh header.
            self.b.ins().jump(fresh, &[]);
        }

        let covered: Vec<FieldId> = (0..h.fields.len())
            .map(FieldId)
            .filter(|&i| i != c.field && Some(i) != h.varbit.map(|v| v.0))
            .collect();
        // Fresh header: computed from scratch (IPv4), or 0 (TCP and UDP).
        self.b.switch_to_block(fresh);
        let v = match c.kind {
            ChecksumKind::Ipv4Header
                if h.fixed_bytes.is_multiple_of(4) && coff.is_multiple_of(16) =>
            {
                // A fresh header's storage starts zeroed and its checksum field cannot be
                // assigned, so the sum of its 32-bit words is the sum over its fields: the
                // same bits, from a handful of loads (the fold makes 32-bit words 16-bit).
                let mut acc = self.b.ins().iconst(types::I64, 0);
                for off in (0..h.fixed_bytes).step_by(4) {
                    let x = self
                        .b
                        .ins()
                        .load(types::I32, self.pkt_flags, base, off as i32);
                    let x = self.b.ins().uextend(types::I64, x);
                    acc = self.b.ins().iadd(acc, x);
                }
                // Byte order does not matter to a one's complement sum, up to a byte swap
                // of the result (RFC 1071): the words are summed as the (little-endian)
                // host loads them, and the sum is swapped into the value the store below
                // swaps back into network order.
                let r = self.fold_sum(acc, 3);
                let r = self.oc_not(r);
                let r16 = self.b.ins().ireduce(types::I16, r);
                let r16 = self.b.ins().bswap(r16);
                self.b.ins().uextend(types::I64, r16)
            }
            ChecksumKind::Ipv4Header => {
                let mut acc = self.b.ins().iconst(types::I64, 0);
                for &f in &covered {
                    let fd = &h.fields[f];
                    let x = self.load_field(base, fd.bit_offset, fd.width);
                    let ct = self.contribution(x, fd.bit_offset, fd.width);
                    acc = self.b.ins().iadd(acc, ct);
                }
                let r = self.fold_sum(acc, 2);
                self.oc_not(r)
            }
            ChecksumKind::Tcp | ChecksumKind::Udp => self.b.ins().iconst(types::I64, 0),
        };
        self.b.ins().jump(store, &[BlockArg::Value(v)]);

        // Parsed header: RFC 1624 from the fields that may have changed. (A header no parser
        // state extracts has no deltas: this block is unreachable and just ends.)
        self.b.switch_to_block(inc);
        let mut ds = Vec::new();
        for &f in &covered {
            let fd = &h.fields[f];
            let rot = (16 - (fd.bit_offset + fd.width) % 16) % 16;
            if let Some(&d) = deltas.get(&(c.header, f, rot)) {
                ds.push(d);
            }
        }
        if let Some(ph) = c.pseudo {
            if let Some(pf) = self.layout.pseudo_fields.get(&ph).copied() {
                if self.parsed(ph) {
                    ds.push(self.pseudo_delta(ph, pf, deltas));
                }
            }
        }
        // With the deltas summing to 0 (nothing covered changed, the common case when only
        // other headers were rewritten) the update gives the checksum it started from: ~(~hc
        // + 0) folded is hc, and a UDP checksum stays what it was. Leave it alone.
        if let Some(&first) = ds.first() {
            let mut dsum = first;
            for &d in &ds[1..] {
                dsum = self.b.ins().iadd(dsum, d);
            }
            self.translate_checksum_update(c, coff, dsum, store, done);
        } else {
            self.b.ins().jump(done, &[]);
        }

        self.b.switch_to_block(store);
        let v = self.b.block_params(store)[0];
        let base = self.b.use_var(self.base[c.header.index()]);
        self.store_field(base, coff, 16, v);
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
    }

    /// The incremental update of a parsed header's checksum by the sum of its deltas: to
    /// `store` with the new value, or straight to `done` when they sum to 0.
    pub(super) fn translate_checksum_update(
        &mut self,
        c: &Checksum,
        coff: u32,
        dsum: Value,
        store: Block,
        done: Block,
    ) {
        let update = self.b.create_block();
        let same = self.b.ins().icmp_imm_u(IntCC::Equal, dsum, 0);
        self.b.ins().brif(same, done, &[], update, &[]);
        self.b.switch_to_block(update);
        let base = self.b.use_var(self.base[c.header.index()]);
        let old_hc = self.load_field(base, coff, 16);
        let acc = self.oc_not(old_hc);
        let acc = self.b.ins().iadd(acc, dsum);
        let acc = self.fold_sum(acc, 2);
        let mut r = self.oc_not(acc);
        if c.kind == ChecksumKind::Udp {
            let is0 = self.b.ins().icmp_imm_u(IntCC::Equal, r, 0);
            let ffff = self.b.ins().iconst(types::I64, 0xffff);
            r = self.b.ins().select(is0, ffff, r);
            // A UDP checksum of 0 (none) stays 0.
            let was0 = self.b.ins().icmp_imm_u(IntCC::Equal, old_hc, 0);
            r = self.b.ins().select(was0, old_hc, r);
        }
        self.b.ins().jump(store, &[BlockArg::Value(r)]);
    }

    /// The change of the IPv4 pseudo-header (source, destination, protocol, upper-layer
    /// length) since parse time, when the pseudo-header's header was parsed and is valid.
    pub(super) fn pseudo_delta(
        &mut self,
        ph: HeaderId,
        pf: super::super::PseudoFields,
        deltas: &BTreeMap<(HeaderId, FieldId, u32), Value>,
    ) -> Value {
        let mut sum = self.b.ins().iconst(types::I64, 0);
        if !self.parsed(ph) {
            return sum;
        }
        // Source, destination and protocol sit at the same place in the word grid in the
        // header and in the pseudo-header, so their deltas are shared.
        for f in [pf.src, pf.dst, pf.protocol] {
            let fd = &self.p.headers[ph].fields[f];
            let rot = (16 - (fd.bit_offset + fd.width) % 16) % 16;
            if let Some(&d) = deltas.get(&(ph, f, rot)) {
                sum = self.b.ins().iadd(sum, d);
            }
        }
        if let (Some(ia), Some(ta)) = (self.old_value(ph, pf.ihl), self.old_value(ph, pf.total_len))
        {
            let base = self.b.use_var(self.base[ph.index()]);
            let ib = self.load_field(base, 4, 4);
            let tb = self.load_field(base, 16, 16);
            let l4 = |tr: &mut Self, ihl: Value, total: Value| {
                let x = tr.b.ins().imul_imm_u(ihl, 4);
                let d = tr.b.ins().isub(total, x);
                tr.b.ins().band_imm_u(d, 0xffff)
            };
            let a = l4(self, ia, ta);
            let b = l4(self, ib, tb);
            let d = self.delta(a, b, 0, 16);
            sum = self.b.ins().iadd(sum, d);
        }
        let valid = self.is_valid(ph);
        let ex = self.bit(self.extracted_mask, ph);
        let live = self.b.ins().band(valid, ex);
        let z = self.b.ins().iconst(types::I64, 0);
        self.b.ins().select(live, sum, z)
    }
}
