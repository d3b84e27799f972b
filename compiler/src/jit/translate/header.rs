//! Headers in generated code: validity and extraction as bits of two masks, each header's
//! base address in a variable, field loads and stores at constant offsets, the parse-time
//! snapshots that checksum updates need.
//!
//! Rules: a field of a header not known valid goes through `read_field` or `write_field`,
//! which read 0 and write nothing when it is invalid, as the interpreter does; only a header
//! in `known` is read or written without that test. A write to a field a checksum covers
//! goes through `capture_old` first.

use super::*;

impl Translator<'_, '_> {
    /// A header's length in bytes: its variable's for one with a varbit field.
    pub(super) fn header_len(&mut self, h: HeaderId) -> Value {
        match self.hlen[h.index()] {
            Some(l) => self.b.use_var(l),
            None => self
                .b
                .ins()
                .iconst(types::I64, self.p.headers[h].fixed_bytes as i64),
        }
    }

    /// Whether some parser state extracts header `h` (a static fact).
    pub(super) fn parsed(&self, h: HeaderId) -> bool {
        self.layout.facts.parsed(h)
    }

    /// Bit `h` of a mask variable, as a condition.
    pub(super) fn bit(&mut self, mask: Variable, h: HeaderId) -> Value {
        // `test $bit, mask` with the flags used by the branch or select that reads it.
        let m = self.b.use_var(mask);
        let x = self.b.ins().band_imm_u(m, h.bit() as i64);
        self.b.ins().icmp_imm_u(IntCC::NotEqual, x, 0)
    }

    pub(super) fn is_valid(&mut self, h: HeaderId) -> Value {
        self.bit(self.valid_mask, h)
    }

    pub(super) fn set_bit(&mut self, mask: Variable, h: HeaderId, on: bool) {
        let m = self.b.use_var(mask);
        let m = if on {
            self.b.ins().bor_imm_u(m, h.bit() as i64)
        } else {
            self.b.ins().band_imm_u(m, !(h.bit() as i64))
        };
        self.b.def_var(mask, m);
    }

    /// Reads a field from a header's storage: one load of the bytes it spans, a byte swap, a
    /// shift and a mask.
    pub(super) fn load_field(&mut self, base: Value, bit_off: u32, w: u32) -> Value {
        let byte = (bit_off / 8) as i32;
        let bit_in = bit_off % 8;
        let nbytes = (bit_in + w).div_ceil(8);
        if nbytes > 16 {
            let hi = self.load_field(base, bit_off, w - 64);
            let lo = self.load_field(base, bit_off + w - 64, 64);
            let hi = self.to128(hi);
            let lo = self.to128(lo);
            let hi = self.b.ins().ishl_imm_u(hi, 64);
            return self.b.ins().bor(hi, lo);
        }
        let (lt, lbytes) = match nbytes {
            1 => (types::I8, 1),
            2 => (types::I16, 2),
            3 | 4 => (types::I32, 4),
            5..=8 => (types::I64, 8),
            _ => (types::I128, 16),
        };
        let mut x = self.b.ins().load(lt, self.pkt_flags, base, byte);
        if lbytes > 1 {
            x = self.b.ins().bswap(x);
        }
        let shift = lbytes * 8 - bit_in - w;
        if shift > 0 {
            x = self.b.ins().ushr_imm_u(x, i64::from(shift));
        }
        let x = match (lt, ty(w)) {
            (types::I128, types::I128) => x,
            (types::I128, _) => self.b.ins().ireduce(types::I64, x),
            (types::I64, _) => x,
            _ => self.b.ins().uextend(types::I64, x),
        };
        self.mask(x, w)
    }

    /// Writes a field: a byte-aligned 8/16/32/64-bit field is one swapped store; others are a
    /// read-modify-write of the bytes they span.
    pub(super) fn store_field(&mut self, base: Value, bit_off: u32, w: u32, v: Value) {
        let byte = (bit_off / 8) as i32;
        let bit_in = bit_off % 8;
        let nbytes = (bit_in + w).div_ceil(8);
        if nbytes > 16 {
            let v128 = self.to128(v);
            let hi = self.b.ins().ushr_imm_u(v128, 64);
            let hi = self.resize(hi, w - 64);
            let lo = self.b.ins().ireduce(types::I64, v128);
            self.store_field(base, bit_off, w - 64, hi);
            self.store_field(base, bit_off + w - 64, 64, lo);
            return;
        }
        if bit_in == 0 && matches!(w, 8 | 16 | 32 | 64 | 128) {
            let t = types::Type::int(w as u16).unwrap_or(types::I64);
            let x = if t == self.b.func.dfg.value_type(v) {
                v
            } else {
                self.b.ins().ireduce(t, v)
            };
            let x = if w > 8 { self.b.ins().bswap(x) } else { x };
            self.b.ins().store(self.pkt_flags, x, base, byte);
            return;
        }
        let (lt, lbytes) = match nbytes {
            1 => (types::I8, 1u32),
            2 => (types::I16, 2),
            3 | 4 => (types::I32, 4),
            5..=8 => (types::I64, 8),
            _ => (types::I128, 16),
        };
        let shift = lbytes * 8 - bit_in - w;
        let mut x = self.b.ins().load(lt, self.pkt_flags, base, byte);
        if lbytes > 1 {
            x = self.b.ins().bswap(x);
        }
        let fmask = sluice_defs::bits::low_mask(w) << shift;
        let vv = match (self.b.func.dfg.value_type(v), lt) {
            (a, b) if a == b => v,
            (types::I128, _) | (types::I64, types::I8 | types::I16 | types::I32) => {
                self.b.ins().ireduce(lt, v)
            }
            (_, types::I128) => self.to128(v),
            _ => v,
        };
        let vv = if shift > 0 {
            self.b.ins().ishl_imm_u(vv, i64::from(shift))
        } else {
            vv
        };
        let (keep, put) = if lt == types::I128 {
            let k = self.iconst(!fmask, 128);
            let m = self.iconst(fmask, 128);
            (k, m)
        } else {
            let bits = lbytes * 8;
            let full = sluice_defs::bits::low_mask(bits);
            let k = self.b.ins().iconst(lt, (!fmask & full) as u64 as i64);
            let m = self.b.ins().iconst(lt, (fmask & full) as u64 as i64);
            (k, m)
        };
        let x = self.b.ins().band(x, keep);
        let vv = self.b.ins().band(vv, put);
        let mut x = self.b.ins().bor(x, vv);
        if lbytes > 1 {
            x = self.b.ins().bswap(x);
        }
        self.b.ins().store(self.pkt_flags, x, base, byte);
    }

    pub(super) fn read_field(&mut self, h: HeaderId, f: FieldId) -> Value {
        let fd = &self.p.headers[h].fields[f];
        let (off, w) = (fd.bit_offset, fd.width);
        let base = self.b.use_var(self.base[h.index()]);
        let v = self.load_field(base, off, w);
        if self.known & h.bit() != 0 {
            return v;
        }
        let valid = self.is_valid(h);
        let z = self.iconst(0, w);
        self.b.ins().select(valid, v, z)
    }

    pub(super) fn write_field(&mut self, h: HeaderId, f: FieldId, v: Value) {
        let fd = &self.p.headers[h].fields[f];
        let (off, w) = (fd.bit_offset, fd.width);
        if self.known & h.bit() != 0 {
            let base = self.b.use_var(self.base[h.index()]);
            self.capture_old(h, f, base);
            self.store_field(base, off, w, v);
            return;
        }
        // A write to a header that is not valid has no effect.
        let valid = self.is_valid(h);
        let yes = self.b.create_block();
        let done = self.b.create_block();
        self.b.ins().brif(valid, yes, &[], done, &[]);
        self.b.switch_to_block(yes);
        let base = self.b.use_var(self.base[h.index()]);
        self.capture_old(h, f, base);
        self.store_field(base, off, w, v);
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
    }

    /// Bit `i` of the `written` mask, as a condition.
    pub(super) fn written_bit(&mut self, i: usize) -> Value {
        let m = self.b.use_var(self.written[i / 64]);
        let x = self.b.ins().band_imm_u(m, (1u64 << (i % 64)) as i64);
        self.b.ins().icmp_imm_u(IntCC::NotEqual, x, 0)
    }

    /// Before a write to a field that a checksum update needs: on the field's first write of
    /// the pass, its value (still the parsed one) becomes its snapshot. Taken here rather
    /// than at extract time, a field that the packet's path never writes costs nothing.
    pub(super) fn capture_old(&mut self, h: HeaderId, f: FieldId, base: Value) {
        let Some(keep) = self.old_value_at(h, f, base) else {
            return;
        };
        let (var, i) = self.old[&(h, f)];
        self.b.def_var(var, keep);
        let w = self.written[i / 64];
        let m = self.b.use_var(w);
        let m = self.b.ins().bor_imm_u(m, (1u64 << (i % 64)) as i64);
        self.b.def_var(w, m);
    }

    /// A snapshot field's parse-time value: its snapshot if it was written, else what it
    /// holds now.
    pub(super) fn old_value(&mut self, h: HeaderId, f: FieldId) -> Option<Value> {
        let base = self.b.use_var(self.base[h.index()]);
        self.old_value_at(h, f, base)
    }

    /// `old_value` for a header at `base`.
    pub(super) fn old_value_at(&mut self, h: HeaderId, f: FieldId, base: Value) -> Option<Value> {
        let &(var, i) = self.old.get(&(h, f))?;
        let fd = &self.p.headers[h].fields[f];
        let cur = self.load_field(base, fd.bit_offset, fd.width);
        let seen = self.written_bit(i);
        let prev = self.b.use_var(var);
        Some(self.b.ins().select(seen, prev, cur))
    }

    pub(super) fn translate_set_valid(&mut self, h: HeaderId) {
        let valid = self.is_valid(h);
        let check = self.b.create_block();
        let fresh = self.b.create_block();
        let mark = self.b.create_block();
        let done = self.b.create_block();
        self.b.ins().brif(valid, done, &[], check, &[]);
        self.b.switch_to_block(check);
        if self.parsed(h) {
            let ex = self.bit(self.extracted_mask, h);
            self.b.ins().brif(ex, mark, &[], fresh, &[]);
        } else {
            // Never extracted: always fresh.
            self.b.ins().jump(fresh, &[]);
        }
        self.b.switch_to_block(fresh);
        // A header that was never parsed starts as zeros in its scratch area.
        let base = self
            .b
            .ins()
            .iadd_imm_u(self.scratch, self.layout.scratch_off[h.index()] as i64);
        self.b.def_var(self.base[h.index()], base);
        let fixed = self.p.headers[h].fixed_bytes;
        let z = self.b.ins().iconst(types::I64, 0);
        for off in (0..fixed).step_by(8) {
            self.b.ins().store(self.trusted, z, base, off as i32);
        }
        if let Some(v) = self.hlen[h.index()] {
            let l = self.b.ins().iconst(types::I64, fixed as i64);
            self.b.def_var(v, l);
        }
        self.b.ins().jump(mark, &[]);
        self.b.switch_to_block(mark);
        self.set_bit(self.valid_mask, h, true);
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
        self.known |= h.bit();
    }
}
