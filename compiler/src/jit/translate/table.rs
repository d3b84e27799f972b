//! Table application: the key, the lookup (inline for the key shapes of
//! `sluice_runtime::jitview`, otherwise `rt_apply`/`rt_apply2`), the counters and the
//! dispatch to the chosen action's body.
//!
//! Rules: a table's view is read at the offsets `JitView` and `Table::VIEW_OFFSET` export;
//! the lookup's shape is decided at compile time from the program's key and checked against
//! the view's `kind` at run time (a mismatch takes the general call).

use super::*;
use sluice_runtime::jitview::{action_bytes, arg_slots, JitView, HASH_MUL, KIND_DIRECT, KIND_HASH};
use sluice_runtime::table::Table;

impl Translator<'_, '_> {
    /// Applies a table: key in a stack slot, `rt_apply`, then the chosen action inlined.
    /// Returns hit as an i8.
    pub(super) fn translate_apply(&mut self, t: TableId) -> Value {
        let table = &self.p.tables[t];
        let kind = sluice_runtime::jitview::kind_for(&self.layout.table_keys[t.index()]);
        if kind != sluice_runtime::jitview::KIND_GENERIC {
            let (r, row) = self.translate_inline_lookup(t, kind);
            return self.dispatch(t, r, Some(row));
        }
        let r = if table.keys.len() <= 2 {
            // Keys in registers, as 64-bit halves.
            let mut halves = Vec::with_capacity(4);
            for i in 0..2 {
                match table.keys.get(i) {
                    Some(k) => {
                        let v = self.translate_expr(&k.expr);
                        if self.b.func.dfg.value_type(v) == types::I128 {
                            let lo = self.b.ins().ireduce(types::I64, v);
                            let hi = self.b.ins().ushr_imm_u(v, 64);
                            let hi = self.b.ins().ireduce(types::I64, hi);
                            halves.extend([lo, hi]);
                        } else {
                            let z = self.b.ins().iconst(types::I64, 0);
                            halves.extend([v, z]);
                        }
                    }
                    None => {
                        let z = self.b.ins().iconst(types::I64, 0);
                        halves.extend([z, z]);
                    }
                }
            }
            let tid = self.b.ins().iconst(types::I32, t.index() as i64);
            let call = self.b.ins().call(
                rt_fn(&self.rt, Rt::Apply2),
                &[self.ctx, tid, halves[0], halves[1], halves[2], halves[3]],
            );
            self.b.inst_results(call)[0]
        } else {
            let n = table.keys.len();
            let slot = self.b.create_sized_stack_slot(StackSlotData::new(
                StackSlotKind::ExplicitSlot,
                (n * 16) as u32,
                4,
            ));
            for (i, k) in table.keys.iter().enumerate() {
                let v = self.translate_expr(&k.expr);
                let v = self.to128(v);
                self.b
                    .ins()
                    .stack_store(types::I64, v, slot, (i * 16) as i32);
            }
            let addr = self.b.ins().stack_addr(types::I64, slot, 0);
            let tid = self.b.ins().iconst(types::I32, t.index() as i64);
            let call = self
                .b
                .ins()
                .call(rt_fn(&self.rt, Rt::Apply), &[self.ctx, tid, addr]);
            self.b.inst_results(call)[0]
        };
        self.dispatch(t, r, None)
    }

    /// Runs the action a lookup chose. `r` is the action id with bit 32 set on a hit; `row`
    /// the chosen row if the lookup was inline (otherwise it is read from `ctx.row`).
    pub(super) fn dispatch(&mut self, t: TableId, r: Value, row_in: Option<Value>) -> Value {
        let table = &self.p.tables[t];
        let action = self.b.ins().ireduce(types::I32, r);
        let action = self.b.ins().uextend(types::I64, action);
        self.b.def_var(self.last_action, action);
        let hit64 = self.b.ins().ushr_imm_u(r, 32);
        let hit = self.b.ins().ireduce(types::I8, hit64);
        // Dispatch on the action: the table's actions, its default, and the built-ins.
        let mut ids: Vec<ActionId> = table.actions.clone();
        ids.push(table.default.0);
        ids.extend([ActionId::DROP, ActionId::NO_ACTION]);
        ids.sort_unstable();
        ids.dedup();
        let done = self.b.create_block();
        let blocks: Vec<Block> = ids.iter().map(|_| self.b.create_block()).collect();
        if ids.len() <= 6 {
            // A few compare-and-branches beat a jump table; the table's own actions first,
            // as entries (hits) are the common case.
            let mut order: Vec<usize> = (0..ids.len()).collect();
            order.sort_by_key(|&i| !table.actions.contains(&ids[i]));
            for i in order {
                let is = self
                    .b
                    .ins()
                    .icmp_imm_u(IntCC::Equal, action, ids[i].index() as i64);
                let next = self.b.create_block();
                self.b.ins().brif(is, blocks[i], &[], next, &[]);
                self.b.switch_to_block(next);
            }
            self.b.ins().jump(done, &[]);
        } else {
            let mut sw = Switch::new();
            for (a, bl) in ids.iter().zip(&blocks) {
                sw.set_entry(a.index() as u128, *bl);
            }
            sw.emit(&mut self.b, action, done);
        }
        let (on_hit, on_miss) = (table.drop_on_hit, table.drop_on_miss);
        let entry = self.known;
        let mut out = entry;
        for (a, bl) in ids.iter().zip(&blocks) {
            self.b.switch_to_block(*bl);
            self.known = entry;
            // An inline lookup leaves the action's run counter to its arm (`rt_apply` counts
            // it itself). The arms cover every action an entry or default can name.
            if row_in.is_some() {
                self.count(offset_of!(JitCtx, action_runs), a.index());
            }
            match *a {
                ActionId::DROP => {
                    let rh = self.b.ins().iconst(types::I64, on_hit.index() as i64);
                    let rm = self.b.ins().iconst(types::I64, on_miss.index() as i64);
                    let r = self.b.ins().select(hit, rh, rm);
                    self.set_verdict(DROPPED, r);
                }
                ActionId::NO_ACTION => {}
                a => {
                    let params: Vec<(String, u32)> = self.p.actions[a].params.clone();
                    let row = if params.is_empty() {
                        None
                    } else if let Some(r) = row_in {
                        Some(r)
                    } else {
                        Some(self.b.ins().load(
                            types::I64,
                            self.trusted,
                            self.ctx,
                            offset_of!(JitCtx, row) as i32,
                        ))
                    };
                    // Each argument in its slot of the row, as the table laid it out.
                    let widths: Vec<u32> = params.iter().map(|(_, w)| *w).collect();
                    let (slots, _) = arg_slots(action_bytes(self.p.actions.len()), &widths);
                    let vals: Vec<Value> = slots
                        .iter()
                        .zip(&widths)
                        .map(|(slot, &w)| {
                            let row = row.unwrap_or(self.ctx);
                            let t = match slot.bytes {
                                1 => types::I8,
                                2 => types::I16,
                                4 => types::I32,
                                8 => types::I64,
                                _ => types::I128,
                            };
                            // Rows are 8-byte aligned at least: a 16-byte argument is
                            // not naturally aligned, so its load does not claim to be.
                            let flags = if slot.bytes > 8 {
                                MemFlagsData::new().with_notrap()
                            } else {
                                self.trusted
                            };
                            let v = self.b.ins().load(t, flags, row, slot.offset as i32);
                            let v = if slot.bytes < 8 {
                                self.b.ins().uextend(types::I64, v)
                            } else {
                                v
                            };
                            // A slot of exactly the argument's width needs no mask.
                            if slot.bytes * 8 == w && w <= 64 {
                                v
                            } else {
                                self.resize(v, w)
                            }
                        })
                        .collect();
                    self.translate_action_body(a, vals);
                }
            }
            out &= self.known;
            self.b.ins().jump(done, &[]);
        }
        self.b.switch_to_block(done);
        self.known = out;
        hit
    }

    /// Where table `t`'s view lies: in the table set's array of `Table`s.
    pub(super) fn table_view(&mut self, t: TableId) -> Value {
        let tables_ptr = self.b.ins().load(
            types::I64,
            self.trusted,
            self.ctx,
            offset_of!(JitCtx, tables_ptr) as i32,
        );
        let view_off = t.index() * std::mem::size_of::<Table>() + Table::VIEW_OFFSET;
        self.b.ins().iadd_imm_u(tables_ptr, view_off as i64)
    }

    /// Exact keys packed as the view's hash and direct array take them: one key as it is,
    /// two as `key0 << width1 | key1`.
    pub(super) fn packed_key(&mut self, view: Value, keys: &[Value]) -> Value {
        match keys {
            [k0, k1] => {
                let w1 = self.view_field(view, offset_of!(JitView, width1));
                let hi = self.b.ins().ishl(*k0, w1);
                self.b.ins().bor(hi, *k1)
            }
            _ => keys[0],
        }
    }

    /// The position of table `t`'s range key (KIND_RANGE: the other one is the exact key).
    pub(super) fn range_pos(&self, t: TableId) -> usize {
        self.layout.table_keys[t.index()]
            .iter()
            .position(|k| k.kind == sluice_runtime::table::MatchKind::Range)
            .unwrap_or(1)
    }

    /// A key's home bucket in a view's hash: `(key * HASH_MUL) >> shift`.
    pub(super) fn hash_home(&mut self, key: Value, shift: Value) -> Value {
        let mul = self.b.ins().iconst(types::I64, HASH_MUL as i64);
        let h = self.b.ins().imul(key, mul);
        self.b.ins().ushr(h, shift)
    }

    /// A load of one field of table `t`'s view.
    pub(super) fn view_field(&mut self, view: Value, off: usize) -> Value {
        self.b
            .ins()
            .load(types::I64, self.trusted, view, off as i32)
    }

    /// Looks table `t` up without leaving generated code, for the key shapes of `jitview`.
    /// Falls back to `rt_apply2` if the table at run time has another shape. Returns the
    /// action id with bit 32 set on a hit, and the chosen row.
    pub(super) fn translate_inline_lookup(&mut self, t: TableId, kind: u64) -> (Value, Value) {
        let table = &self.p.tables[t];
        let keys: Vec<(Value, u32)> = table
            .keys
            .iter()
            .map(|k| (self.translate_expr(&k.expr), k.expr.width))
            .collect();
        let view = self.table_view(t);
        let done = self.b.create_block();
        self.b.append_block_param(done, types::I64); // action | hit << 32
        self.b.append_block_param(done, types::I64); // row
        let generic = self.b.create_block();
        let inline = self.b.create_block();
        let k = self.view_field(view, offset_of!(JitView, kind));
        let same = self.b.ins().icmp_imm_u(IntCC::Equal, k, kind as i64);
        self.b.ins().brif(same, inline, &[], generic, &[]);

        // The table has another shape than the program implies (cannot happen with tables
        // built from this program): the general lookup.
        self.b.switch_to_block(generic);
        let z = self.b.ins().iconst(types::I64, 0);
        let mut halves = Vec::new();
        for i in 0..2 {
            match keys.get(i) {
                Some(&(v, _)) => halves.extend([v, z]),
                None => halves.extend([z, z]),
            }
        }
        let tid = self.b.ins().iconst(types::I32, t.index() as i64);
        let call = self.b.ins().call(
            rt_fn(&self.rt, Rt::Apply2),
            &[self.ctx, tid, halves[0], halves[1], halves[2], halves[3]],
        );
        let r = self.b.inst_results(call)[0];
        let row = self.b.ins().load(
            types::I64,
            self.trusted,
            self.ctx,
            offset_of!(JitCtx, row) as i32,
        );
        self.b
            .ins()
            .jump(done, &[BlockArg::Value(r), BlockArg::Value(row)]);

        // Inline: find the handle, or miss.
        self.b.switch_to_block(inline);
        let hit_blk = self.b.create_block();
        self.b.append_block_param(hit_blk, types::I64); // handle
        let miss_blk = self.b.create_block();
        match kind {
            KIND_DIRECT | KIND_HASH => {
                let values: Vec<Value> = keys.iter().map(|k| k.0).collect();
                let packed = self.packed_key(view, &values);
                if kind == KIND_DIRECT {
                    let direct = self.view_field(view, offset_of!(JitView, direct));
                    self.translate_slot(direct, packed, miss_blk, hit_blk);
                } else {
                    let found = self.b.create_block();
                    self.b.append_block_param(found, types::I64);
                    self.translate_probe(view, packed, found, miss_blk);
                    self.b.switch_to_block(found);
                    let v = self.b.block_params(found)[0];
                    let h = self.b.ins().iadd_imm_s(v, -1);
                    self.b.ins().jump(hit_blk, &[BlockArg::Value(h)]);
                }
            }
            _ => {
                // KIND_RANGE: the exact key finds the array, the range key indexes it.
                let range_pos = self.range_pos(t);
                let (e, r) = (keys[1 - range_pos].0, keys[range_pos].0);
                let found = self.b.create_block();
                self.b.append_block_param(found, types::I64);
                self.translate_probe(view, e, found, miss_blk);
                self.b.switch_to_block(found);
                let group = self.b.block_params(found)[0];
                // Bit 0 set: the group's segments; clear: its array.
                let array_blk = self.b.create_block();
                let seg_blk = self.b.create_block();
                let tag = self.b.ins().band_imm_u(group, 1);
                self.b.ins().brif(tag, seg_blk, &[], array_blk, &[]);
                self.b.switch_to_block(array_blk);
                self.translate_slot(group, r, miss_blk, hit_blk);
                self.b.switch_to_block(seg_blk);
                let segs = self.b.ins().band_imm_s(group, !1);
                self.translate_segments(segs, r, miss_blk, hit_blk);
            }
        }

        // Hit: the entry's row and counters; the table's hit counter.
        self.b.switch_to_block(hit_blk);
        let h = self.b.block_params(hit_blk)[0];
        let hot = self.view_field(view, offset_of!(JitView, hot));
        let shift = self.view_field(view, offset_of!(JitView, row_shift));
        let off = self.b.ins().ishl(h, shift);
        let row = self.b.ins().iadd(hot, off);
        // This worker's lane of the table's counters.
        let bases = self.ctx_field(offset_of!(JitCtx, counter_bases));
        let counters = self.b.ins().load(
            types::I64,
            self.trusted.with_readonly(),
            bases,
            (t.index() * 8) as i32,
        );
        let coff = self.b.ins().ishl_imm_u(h, 4);
        let c = self.b.ins().iadd(counters, coff);
        let n = self.b.ins().load(types::I64, self.trusted, c, 0);
        let n = self.b.ins().iadd_imm_u(n, 1);
        self.b.ins().store(self.trusted, n, c, 0);
        let bytes = self.b.ins().load(types::I64, self.trusted, c, 8);
        let len = self.ctx_var(offset_of!(JitCtx, packet_length));
        let bytes = self.b.ins().iadd(bytes, len);
        self.b.ins().store(self.trusted, bytes, c, 8);
        self.count(offset_of!(JitCtx, table_hits), t.index());
        // The action's run counter is bumped in its arm of the dispatch, at a constant index.
        let action = self.load_action(row);
        let r = self.b.ins().bor_imm_u(action, 1i64 << 32);
        self.b
            .ins()
            .jump(done, &[BlockArg::Value(r), BlockArg::Value(row)]);

        // Miss: the default row.
        self.b.switch_to_block(miss_blk);
        let row = self.view_field(view, offset_of!(JitView, default_row));
        self.count(offset_of!(JitCtx, table_misses), t.index());
        let action = self.load_action(row);
        self.b
            .ins()
            .jump(done, &[BlockArg::Value(action), BlockArg::Value(row)]);

        self.b.switch_to_block(done);
        let p = self.b.block_params(done);
        (p[0], p[1])
    }

    /// The action id a row starts with, as an i64.
    fn load_action(&mut self, row: Value) -> Value {
        let t = match action_bytes(self.p.actions.len()) {
            2 => types::I16,
            _ => types::I32,
        };
        let action = self.b.ins().load(t, self.trusted, row, 0);
        self.b.ins().uextend(types::I64, action)
    }

    /// Loads the `u32` handle at `base[idx]` of a direct or range array: `u32::MAX` (an
    /// empty slot) jumps to `miss`, any other handle to `hit(handle)`.
    pub(super) fn translate_slot(
        &mut self,
        base: Value,
        idx: Value,
        miss: cranelift_codegen::ir::Block,
        hit: cranelift_codegen::ir::Block,
    ) {
        let off = self.b.ins().ishl_imm_u(idx, 2);
        let addr = self.b.ins().iadd(base, off);
        let h = self.b.ins().load(types::I32, self.trusted, addr, 0);
        let h = self.b.ins().uextend(types::I64, h);
        let empty = self.b.ins().icmp_imm_u(IntCC::Equal, h, u32::MAX as i64);
        self.b
            .ins()
            .brif(empty, miss, &[], hit, &[BlockArg::Value(h)]);
    }

    /// Bisection in a range group's segments (see `Slots::Segments` in the runtime: `n` at byte
    /// 0, the u16 starts from byte 8, the u32 handles after them): the last segment starting
    /// at or below `v` holds the handle. Branch-free steps: the loop runs log2(n) times
    /// whatever the value.
    fn translate_segments(
        &mut self,
        segs: Value,
        v: Value,
        miss: cranelift_codegen::ir::Block,
        hit: cranelift_codegen::ir::Block,
    ) {
        let n = self.b.ins().load(types::I32, self.trusted, segs, 0);
        let n = self.b.ins().uextend(types::I64, n);
        let zero = self.b.ins().iconst(types::I64, 0);
        let step = self.b.create_block();
        self.b.append_block_param(step, types::I64); // base
        self.b.append_block_param(step, types::I64); // len
        let body = self.b.create_block();
        let done = self.b.create_block();
        self.b
            .ins()
            .jump(step, &[BlockArg::Value(zero), BlockArg::Value(n)]);

        self.b.switch_to_block(step);
        let (base, len) = (self.b.block_params(step)[0], self.b.block_params(step)[1]);
        let more = self.b.ins().icmp_imm_u(IntCC::UnsignedGreaterThan, len, 1);
        self.b.ins().brif(more, body, &[], done, &[]);

        self.b.switch_to_block(body);
        let half = self.b.ins().ushr_imm_u(len, 1);
        let mid = self.b.ins().iadd(base, half);
        let off = self.b.ins().ishl_imm_u(mid, 1);
        let at = self.b.ins().iadd(segs, off);
        let start = self.b.ins().load(types::I16, self.trusted, at, 8);
        let start = self.b.ins().uextend(types::I64, start);
        let below = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, start, v);
        let base = self.b.ins().select(below, mid, base);
        let len = self.b.ins().isub(len, half);
        self.b
            .ins()
            .jump(step, &[BlockArg::Value(base), BlockArg::Value(len)]);

        // The last base the loop tested, which dominates this block.
        self.b.switch_to_block(done);
        let base = self.b.block_params(step)[0];
        // The handles start at (8 + 2n + 3) & !3.
        let starts_end = self.b.ins().ishl_imm_u(n, 1);
        let hoff = self.b.ins().iadd_imm_u(starts_end, 11);
        let hoff = self.b.ins().band_imm_s(hoff, !3);
        let off = self.b.ins().ishl_imm_u(base, 2);
        let off = self.b.ins().iadd(hoff, off);
        let at = self.b.ins().iadd(segs, off);
        let h = self.b.ins().load(types::I32, self.trusted, at, 0);
        let h = self.b.ins().uextend(types::I64, h);
        let empty = self.b.ins().icmp_imm_u(IntCC::Equal, h, u32::MAX as i64);
        self.b
            .ins()
            .brif(empty, miss, &[], hit, &[BlockArg::Value(h)]);
    }

    /// Linear probing in a view's hash table: jumps to `found(value)` or `miss`.
    pub(super) fn translate_probe(
        &mut self,
        view: Value,
        key: Value,
        found: cranelift_codegen::ir::Block,
        miss: cranelift_codegen::ir::Block,
    ) {
        let keys = self.view_field(view, offset_of!(JitView, keys));
        let vals = self.view_field(view, offset_of!(JitView, vals));
        let shift = self.view_field(view, offset_of!(JitView, shift));
        let i0 = self.hash_home(key, shift);
        let probe = self.b.create_block();
        self.b.append_block_param(probe, types::I64);
        self.b.ins().jump(probe, &[BlockArg::Value(i0)]);
        self.b.switch_to_block(probe);
        let i = self.b.block_params(probe)[0];
        // 16-byte buckets: the key, then its value.
        let off = self.b.ins().ishl_imm_u(i, 4);
        let va = self.b.ins().iadd(vals, off);
        let v = self.b.ins().load(types::I64, self.trusted, va, 0);
        let empty = self.b.ins().icmp_imm_u(IntCC::Equal, v, 0);
        let check = self.b.create_block();
        self.b.ins().brif(empty, miss, &[], check, &[]);
        self.b.switch_to_block(check);
        let ka = self.b.ins().iadd(keys, off);
        let k = self.b.ins().load(types::I64, self.trusted, ka, 0);
        let eq = self.b.ins().icmp(IntCC::Equal, k, key);
        let next = self.b.create_block();
        self.b
            .ins()
            .brif(eq, found, &[BlockArg::Value(v)], next, &[]);
        self.b.switch_to_block(next);
        // Collisions are rare: the mask is loaded only for one.
        let mask = self.view_field(view, offset_of!(JitView, mask));
        let i1 = self.b.ins().iadd_imm_u(i, 1);
        let i1 = self.b.ins().band(i1, mask);
        self.b.ins().jump(probe, &[BlockArg::Value(i1)]);
    }
}
