//! The deparser: nothing to do when the valid headers are the extracted ones; a deparser
//! specialized for each (valid, extracted) layout the analyses found; the general one
//! otherwise, which stages every moving header before writing any.
//!
//! Rules: the payload never moves; headers are packed in deparser order against it; no
//! header is overwritten before it is copied.

use super::*;

impl Translator<'_, '_> {
    pub(super) fn translate_deparse(&mut self) {
        self.translate_checksums();
        let slow = self.b.create_block();
        let done = self.b.create_block();
        if self.layout.facts.fast_deparse {
            // Same headers valid as were extracted: the layout is the input's, nothing moves.
            let v = self.b.use_var(self.valid_mask);
            let e = self.b.use_var(self.extracted_mask);
            let same = self.b.ins().icmp(IntCC::Equal, v, e);
            let inline = self.b.create_block();
            self.b.ins().brif(same, done, &[], inline, &[]);
            self.b.switch_to_block(inline);
            self.translate_special_deparses(slow, done);
            self.translate_inline_deparse(slow, done);
        } else {
            let inline = self.b.create_block();
            self.b.ins().jump(inline, &[]);
            self.b.switch_to_block(inline);
            self.translate_inline_deparse(slow, done);
        }
        // A buffer whose headroom cannot hold the headers: `JitWorker` refuses such a buffer
        // before the call (the headroom is sized for every push), so this is a safety net
        // that keeps generated code inside the buffer whatever happens.
        self.b.switch_to_block(slow);
        self.exit_with(CODE_DROP | reason::PARSER_TRUNCATED.index() as u64);
        self.b.switch_to_block(done);
    }

    /// A deparser for each (valid, extracted) pair that the program can reach, where its
    /// moves can be made in place: chosen by the masks, it knows every header's destination
    /// and copies only the headers that move, each straight to its place, in an order that
    /// never overwrites a header not yet copied. Other pairs fall through to the general
    /// deparser, in the current block.
    pub(super) fn translate_special_deparses(&mut self, slow: Block, done: Block) {
        let plans: Vec<((u64, u64), Vec<usize>)> = self
            .layout
            .facts
            .deparse_masks
            .iter()
            .filter_map(|&m| Some((m, self.deparse_plan(m.0, m.1)?)))
            .collect();
        self.layout_deparsers = plans.len();
        if plans.is_empty() {
            return;
        }
        let general = self.b.create_block();
        let blocks: Vec<Block> = plans.iter().map(|_| self.b.create_block()).collect();
        let v = self.b.use_var(self.valid_mask);
        let e = self.b.use_var(self.extracted_mask);
        let e = self.b.ins().ishl_imm_u(e, 32);
        let key = self.b.ins().bor(v, e);
        let mut sw = Switch::new();
        for (((v, e), _), &bl) in plans.iter().zip(&blocks) {
            sw.set_entry(u128::from(v | e << 32), bl);
        }
        sw.emit(&mut self.b, key, general);
        for ((masks, order), bl) in plans.into_iter().zip(blocks) {
            self.b.switch_to_block(bl);
            self.translate_special_deparse(masks, &order, slow, done);
        }
        self.b.switch_to_block(general);
    }

    /// Which deparser entries move, in the order to copy them, for headers `v` valid after
    /// `e` were extracted (with `fast_deparse`, the extracted ones lie back to back in
    /// deparser order, up to the payload). A valid header that was extracted stays where it
    /// is if the valid headers after it are the extracted ones; it moves to the front if more
    /// are valid after it, to the back if fewer. With every move to the front, copying front
    /// to back never overwrites a header before it is copied; with every move to the back,
    /// back to front. Pushed headers come from their scratch storage, with their fixed length
    /// (only an extract gives a header more). `None` for moves both ways, or a moving
    /// extracted header with a variable part: the general deparser takes those.
    pub(super) fn deparse_plan(&self, v: u64, e: u64) -> Option<Vec<usize>> {
        let dep = &self.p.deparser;
        let after = |m: u64, i: usize| {
            dep[i + 1..]
                .iter()
                .filter(|&&g| m & g.bit() != 0)
                .fold(0u64, |acc, &g| acc | g.bit())
        };
        let (mut front, mut back) = (false, false);
        let mut moving = Vec::new();
        for (i, &h) in dep.iter().enumerate() {
            if v & h.bit() == 0 {
                continue;
            }
            if e & h.bit() != 0 {
                let (av, ae) = (after(v, i), after(e, i));
                if av == ae {
                    continue;
                }
                if av & !ae != 0 && ae & !av == 0 {
                    front = true;
                } else if ae & !av != 0 && av & !ae == 0 {
                    back = true;
                } else {
                    return None;
                }
                if self.hlen[h.index()].is_some() {
                    return None;
                }
            }
            moving.push(i);
        }
        if front && back {
            return None;
        }
        if back {
            moving.reverse();
        }
        Some(moving)
    }

    pub(super) fn translate_special_deparse(
        &mut self,
        (v, e): (u64, u64),
        order: &[usize],
        slow: Block,
        done: Block,
    ) {
        let p = self.p;
        let consumed = self.b.use_var(self.cursor);
        let ps = self.b.ins().iadd(self.data, consumed);
        let mut dst = vec![None; p.deparser.len()];
        let mut pos = ps;
        for (i, &h) in p.deparser.iter().enumerate().rev() {
            if v & h.bit() == 0 {
                continue;
            }
            // A header not extracted in this pass has its fixed length.
            pos = match self.hlen[h.index()] {
                Some(l) if e & h.bit() != 0 => {
                    let l = self.b.use_var(l);
                    self.b.ins().isub(pos, l)
                }
                _ => self
                    .b
                    .ins()
                    .iadd_imm_s(pos, -(p.headers[h].fixed_bytes as i64)),
            };
            dst[i] = Some(pos);
        }
        let short = self.b.ins().icmp(IntCC::UnsignedLessThan, pos, self.buf);
        let fits = self.b.create_block();
        self.b.ins().brif(short, slow, &[], fits, &[]);
        self.b.switch_to_block(fits);
        for &i in order {
            let h = p.deparser[i];
            let src = self.b.use_var(self.base[h.index()]);
            let d = dst[i].expect("a moving header is valid");
            // Every load before any store: a header may overlap its own old place.
            let pieces = pieces(p.headers[h].fixed_bytes);
            let vals: Vec<Value> = pieces
                .iter()
                .map(|&(off, t)| self.b.ins().load(t, self.pkt_flags, src, off as i32))
                .collect();
            for (&(off, _), x) in pieces.iter().zip(vals) {
                self.b.ins().store(self.pkt_flags, x, d, off as i32);
            }
        }
        self.set_out_window(pos, ps, consumed);
        self.b.ins().jump(done, &[]);
    }

    /// The window after the deparser: from the first header (at `pos`) to the end of the
    /// payload (which starts at `ps`, `consumed` bytes into this pass's window).
    pub(super) fn set_out_window(&mut self, pos: Value, ps: Value, consumed: Value) {
        let head = self.b.ins().isub(pos, self.buf);
        let grown = self.b.ins().isub(ps, pos);
        let rest = self.b.ins().isub(self.len, consumed);
        let out_len = self.b.ins().iadd(rest, grown);
        let c = self.ctx;
        self.b
            .ins()
            .store(self.trusted, head, c, offset_of!(JitCtx, out_head) as i32);
        self.b
            .ins()
            .store(self.trusted, out_len, c, offset_of!(JitCtx, out_len) as i32);
    }

    /// The deparser in generated code, for a layout that changed (headers pushed or popped):
    /// the valid headers are packed in deparser order against the payload, which stays where
    /// it is. A header already at its place (the inner headers, next to the payload) is not
    /// touched; one that moves goes through its staging slot first, since sources and
    /// destinations may overlap. Goes to `slow` (a drop) only if the headroom would not hold
    /// the headers, which the headroom's size rules out.
    pub(super) fn translate_inline_deparse(&mut self, slow: Block, done: Block) {
        let p = self.p;
        let consumed = self.b.use_var(self.cursor);
        let ps = self.b.ins().iadd(self.data, consumed);
        // Destinations, back to front.
        let n = p.deparser.len();
        let mut valid = vec![None; n];
        let mut dst = vec![None; n];
        let mut pos = ps;
        for (i, &h) in p.deparser.iter().enumerate().rev() {
            let v = self.is_valid(h);
            let len = self.header_len(h);
            let np = self.b.ins().isub(pos, len);
            pos = self.b.ins().select(v, np, pos);
            valid[i] = Some(v);
            dst[i] = Some(np);
        }
        // The headers must fit the headroom (they do by construction).
        let short = self.b.ins().icmp(IntCC::UnsignedLessThan, pos, self.buf);
        let fits = self.b.create_block();
        self.b.ins().brif(short, slow, &[], fits, &[]);
        self.b.switch_to_block(fits);
        let staging = self.ctx_field(offset_of!(JitCtx, staging));
        // Stage every header that moves (a header with a variable part too, by its current
        // length), before anything is written to the packet.
        for (i, &h) in p.deparser.iter().enumerate() {
            if self.layout.facts.in_place[i] {
                continue;
            }
            let base = self.b.use_var(self.base[h.index()]);
            let next = self.b.create_block();
            let copy = self.b.create_block();
            self.branch_if_moves(valid[i].unwrap(), base, dst[i].unwrap(), copy, next);
            self.b.switch_to_block(copy);
            let slot = self
                .b
                .ins()
                .iadd_imm_u(staging, self.layout.dep_slot[i] as i64);
            self.copy_header(h, base, slot);
            self.b.ins().jump(next, &[]);
            self.b.switch_to_block(next);
        }
        for (i, &h) in p.deparser.iter().enumerate() {
            if self.layout.facts.in_place[i] {
                continue;
            }
            let copy = self.b.create_block();
            let next = self.b.create_block();
            let base = self.b.use_var(self.base[h.index()]);
            self.branch_if_moves(valid[i].unwrap(), base, dst[i].unwrap(), copy, next);
            self.b.switch_to_block(copy);
            let slot = self
                .b
                .ins()
                .iadd_imm_u(staging, self.layout.dep_slot[i] as i64);
            self.copy_header(h, slot, dst[i].unwrap());
            self.b.ins().jump(next, &[]);
            self.b.switch_to_block(next);
        }
        self.set_out_window(pos, ps, consumed);
        self.b.ins().jump(done, &[]);
    }

    /// Branches to `yes` if a header (valid `v`, at `base`) must move to `dst`.
    pub(super) fn branch_if_moves(
        &mut self,
        v: Value,
        base: Value,
        dst: Value,
        yes: Block,
        no: Block,
    ) {
        let check = self.b.create_block();
        self.b.ins().brif(v, check, &[], no, &[]);
        self.b.switch_to_block(check);
        let away = self.b.ins().icmp(IntCC::NotEqual, base, dst);
        self.b.ins().brif(away, yes, &[], no, &[]);
    }

    /// Copies header `h`'s bytes, as many as its length (for a header with a variable part,
    /// its current length): 8-byte pieces, the last one overlapping the one before instead of
    /// reading or writing past the end.
    pub(super) fn copy_header(&mut self, h: HeaderId, src: Value, dst: Value) {
        let hd = &self.p.headers[h];
        let Some(lv) = self.hlen[h.index()] else {
            return self.copy_fixed(src, dst, hd.fixed_bytes);
        };
        let (fixed, max) = (hd.fixed_bytes, hd.max_bytes());
        if fixed < 8 {
            // A tiny fixed part with a variable tail: byte by byte (no program here has one).
            let len = self.b.use_var(lv);
            for off in 0..max {
                let yes = self.b.create_block();
                let next = self.b.create_block();
                let inside = self
                    .b
                    .ins()
                    .icmp_imm_u(IntCC::UnsignedGreaterThan, len, off as i64);
                self.b.ins().brif(inside, yes, &[], next, &[]);
                self.b.switch_to_block(yes);
                self.copy_fixed_at(src, dst, off, types::I8);
                self.b.ins().jump(next, &[]);
                self.b.switch_to_block(next);
            }
            return;
        }
        let len = self.b.use_var(lv);
        // Most such headers have no variable part (IPv4 without options, and every pushed
        // header): a straight copy.
        let plain = self.b.create_block();
        let var = self.b.create_block();
        let done = self.b.create_block();
        let is_fixed = self.b.ins().icmp_imm_u(IntCC::Equal, len, fixed as i64);
        self.b.ins().brif(is_fixed, plain, &[], var, &[]);
        self.b.switch_to_block(plain);
        self.copy_fixed(src, dst, fixed);
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(var);
        let mut off = 0;
        while off + 8 <= fixed {
            self.copy_fixed_at(src, dst, off, types::I64);
            off += 8;
        }
        // The pieces the variable part may need.
        while off + 8 <= max {
            let yes = self.b.create_block();
            let next = self.b.create_block();
            let inside =
                self.b
                    .ins()
                    .icmp_imm_u(IntCC::UnsignedGreaterThanOrEqual, len, (off + 8) as i64);
            self.b.ins().brif(inside, yes, &[], next, &[]);
            self.b.switch_to_block(yes);
            self.copy_fixed_at(src, dst, off, types::I64);
            self.b.ins().jump(next, &[]);
            self.b.switch_to_block(next);
            off += 8;
        }
        // The last 8 bytes, wherever the length ends (len >= fixed >= 8).
        let tail = self.b.ins().iadd_imm_u(len, -8);
        let s = self.b.ins().iadd(src, tail);
        let d = self.b.ins().iadd(dst, tail);
        self.copy_fixed_at(s, d, 0, types::I64);
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
    }

    pub(super) fn copy_fixed_at(&mut self, src: Value, dst: Value, off: usize, t: Type) {
        let x = self.b.ins().load(t, self.pkt_flags, src, off as i32);
        self.b.ins().store(self.pkt_flags, x, dst, off as i32);
    }

    /// Copies `len` bytes (known at compile time) in the widest pieces, the last piece
    /// overlapping the one before instead of reading or writing past the end.
    pub(super) fn copy_fixed(&mut self, src: Value, dst: Value, len: usize) {
        for (off, t) in pieces(len) {
            let x = self.b.ins().load(t, self.pkt_flags, src, off as i32);
            self.b.ins().store(self.pkt_flags, x, dst, off as i32);
        }
    }
}

/// `len` bytes as the widest pieces (offset, type), the last piece overlapping the one before
/// instead of reaching past the end.
fn pieces(len: usize) -> Vec<(usize, Type)> {
    let mut out = Vec::new();
    for (w, t) in [
        (8, types::I64),
        (4, types::I32),
        (2, types::I16),
        (1, types::I8),
    ] {
        if len >= w {
            let mut off = 0;
            while off + w <= len {
                out.push((off, t));
                off += w;
            }
            if off < len {
                out.push((len - w, t));
            }
            break;
        }
    }
    out
}
