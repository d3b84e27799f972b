//! Expressions and conditions.
//!
//! Rules: operands are evaluated in `Expr::operands` order, as the interpreter evaluates
//! them; `&&` and `||` short-circuit (the right side may apply a table); a condition is
//! translated as branches where it decides control flow (`translate_cond`), as a value only
//! where one is needed.

use super::*;

fn unreachable_value(tr: &mut Translator) -> Value {
    tr.b.ins().iconst(types::I8, 0)
}

impl Translator<'_, '_> {
    pub fn translate_expr(&mut self, e: &Expr) -> Value {
        let w = e.width;
        match &e.kind {
            ExprKind::Const(v) => {
                if w == 0 {
                    self.b.ins().iconst(types::I8, i64::from(*v != 0))
                } else {
                    self.iconst(*v & sluice_defs::bits::low_mask(w), w)
                }
            }
            ExprKind::Field(h, f) => self.read_field(*h, *f),
            ExprKind::Meta(m) => self.b.use_var(self.meta[m.index()]),
            ExprKind::Std(s) => {
                let v = match s {
                    StdField::IngressPort => self.ctx_field(offset_of!(JitCtx, ingress_port)),
                    StdField::PacketLength => self.ctx_var(offset_of!(JitCtx, packet_length)),
                    StdField::IngressTsSec => self.ctx_field(offset_of!(JitCtx, ts_sec)),
                    StdField::IngressTsNsec => self.ctx_field(offset_of!(JitCtx, ts_nsec)),
                    StdField::Pass => self.ctx_var(offset_of!(JitCtx, pass)),
                    StdField::EgressPort => {
                        // 0 unless forwarded.
                        let f = self.verdict_is(FORWARDED);
                        let port = self.verdict_value();
                        let z = self.b.ins().iconst(types::I64, 0);
                        self.b.ins().select(f, port, z)
                    }
                    StdField::Dropped => {
                        let d = self.verdict_is(DROPPED);
                        self.b.ins().uextend(types::I64, d)
                    }
                };
                self.mask(v, w)
            }
            ExprKind::Param(i) => self.params[*i],
            ExprKind::Valid(h) => self.is_valid(*h),
            ExprKind::Not(a) => {
                let a = self.translate_expr(a);
                let a = self.bool_of(a);
                self.b.ins().bxor_imm_u(a, 1)
            }
            ExprKind::BitNot(a) => {
                let a = self.translate_expr(a);
                let n = self.b.ins().bnot(a);
                self.mask(n, w)
            }
            ExprKind::Resize(a) => {
                let a = self.translate_expr(a);
                self.resize(a, w)
            }
            ExprKind::Apply(t, hit) => {
                let h = self.translate_apply(*t);
                if *hit {
                    h
                } else {
                    self.b.ins().bxor_imm_u(h, 1)
                }
            }
            ExprKind::Binary(BinOp::And | BinOp::Or, ..) => self.cond_value(e),
            ExprKind::Binary(op, a, b) => self.translate_binary(*op, a, b, w),
            ExprKind::Hash { algo, fields, max } => {
                let (ptr, n) = self.field_bytes(fields);
                let m = self.translate_expr(max);
                let (lo, hi) = if self.b.func.dfg.value_type(m) == types::I128 {
                    let lo = self.b.ins().ireduce(types::I64, m);
                    let hi = self.b.ins().ushr_imm_u(m, 64);
                    (lo, self.b.ins().ireduce(types::I64, hi))
                } else {
                    (m, self.b.ins().iconst(types::I64, 0))
                };
                let a = self.b.ins().iconst(types::I32, i64::from(algo.id()));
                let len = self.b.ins().iconst(types::I64, n as i64);
                let call = self
                    .b
                    .ins()
                    .call(rt_fn(&self.rt, Rt::Hash), &[a, ptr, len, lo, hi]);
                let r = self.b.inst_results(call)[0];
                self.resize(r, w)
            }
            ExprKind::SipHash { secret, fields } => {
                let (ptr, n) = self.field_bytes(fields);
                let s = self.b.ins().iconst(types::I32, secret.index() as i64);
                let len = self.b.ins().iconst(types::I64, n as i64);
                let call = self
                    .b
                    .ins()
                    .call(rt_fn(&self.rt, Rt::SipHash), &[self.ctx, s, ptr, len]);
                self.b.inst_results(call)[0]
            }
        }
    }

    /// The fields' bytes in network order in a stack slot: (address, length).
    pub(super) fn field_bytes(&mut self, fields: &[Expr]) -> (Value, usize) {
        let total: usize = fields.iter().map(|f| f.width.div_ceil(8) as usize).sum();
        let slot = self.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            total.max(1) as u32,
            3,
        ));
        let mut off = 0i32;
        for f in fields {
            let v = self.translate_expr(f);
            let n = f.width.div_ceil(8);
            let t = match n {
                1 => Some(types::I8),
                2 => Some(types::I16),
                4 => Some(types::I32),
                8 => Some(types::I64),
                _ => None,
            };
            if let (Some(t), types::I64) = (t, self.b.func.dfg.value_type(v)) {
                // A whole integer's bytes in network order: one swap and one store.
                let x = if t == types::I64 {
                    v
                } else {
                    self.b.ins().ireduce(t, v)
                };
                let x = if t == types::I8 {
                    x
                } else {
                    self.b.ins().bswap(x)
                };
                self.b.ins().stack_store(types::I64, x, slot, off);
                off += n as i32;
                continue;
            }
            for i in 0..n {
                let sh = 8 * (n - 1 - i);
                let byte = if sh > 0 {
                    self.b.ins().ushr_imm_u(v, i64::from(sh))
                } else {
                    v
                };
                let byte = self.b.ins().ireduce(types::I8, byte);
                self.b.ins().stack_store(types::I64, byte, slot, off);
                off += 1;
            }
        }
        (self.b.ins().stack_addr(types::I64, slot, 0), total)
    }

    pub(super) fn translate_binary(&mut self, op: BinOp, a: &Expr, b: &Expr, w: u32) -> Value {
        let x = self.translate_expr(a);
        let y = self.translate_expr(b);
        let cmp = |tr: &mut Self, cc: IntCC| tr.b.ins().icmp(cc, x, y);
        match op {
            BinOp::Eq => cmp(self, IntCC::Equal),
            BinOp::Ne => cmp(self, IntCC::NotEqual),
            BinOp::Lt => cmp(self, IntCC::UnsignedLessThan),
            BinOp::Le => cmp(self, IntCC::UnsignedLessThanOrEqual),
            BinOp::Gt => cmp(self, IntCC::UnsignedGreaterThan),
            BinOp::Ge => cmp(self, IntCC::UnsignedGreaterThanOrEqual),
            BinOp::BitOr => self.b.ins().bor(x, y),
            BinOp::BitXor => self.b.ins().bxor(x, y),
            BinOp::BitAnd => self.b.ins().band(x, y),
            BinOp::Add => {
                let r = self.b.ins().iadd(x, y);
                self.mask(r, w)
            }
            BinOp::Sub => {
                let r = self.b.ins().isub(x, y);
                self.mask(r, w)
            }
            BinOp::Mul => {
                let r = self.b.ins().imul(x, y);
                self.mask(r, w)
            }
            BinOp::Shl | BinOp::Shr => {
                // Cranelift shifts modulo the type's width; the language gives 0 for a shift
                // by the width or more.
                let yw = b.width;
                let lim = self.iconst(u128::from(w), yw);
                let big = self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, y, lim);
                let amt = if self.b.func.dfg.value_type(y) == types::I128 {
                    self.b.ins().ireduce(types::I64, y)
                } else {
                    y
                };
                let r = if op == BinOp::Shl {
                    let r = self.b.ins().ishl(x, amt);
                    self.mask(r, w)
                } else {
                    self.b.ins().ushr(x, amt)
                };
                let z = self.iconst(0, w);
                self.b.ins().select(big, z, r)
            }
            BinOp::And | BinOp::Or => unreachable_value(self),
        }
    }

    /// `&&` and `||` as a value: the condition's branches (short-circuit, as the interpreter
    /// evaluates them: the right side may apply a table) joined into 0 or 1.
    pub(super) fn cond_value(&mut self, e: &Expr) -> Value {
        let t = self.b.create_block();
        let f = self.b.create_block();
        let done = self.b.create_block();
        self.b.append_block_param(done, types::I8);
        self.translate_cond(e, t, f);
        for (blk, v) in [(t, 1), (f, 0)] {
            self.b.switch_to_block(blk);
            let c = self.b.ins().iconst(types::I8, v);
            self.b.ins().jump(done, &[BlockArg::Value(c)]);
        }
        self.b.switch_to_block(done);
        self.b.block_params(done)[0]
    }

    /// A condition as branches to `t` or `f`: `!` swaps the targets, `&&` and `||`
    /// short-circuit, a validity test is one `test` of the mask, a comparison one `cmp`.
    pub(super) fn translate_cond(&mut self, e: &Expr, t: Block, f: Block) {
        match &e.kind {
            ExprKind::Not(a) => self.translate_cond(a, f, t),
            ExprKind::Valid(h) if self.known & h.bit() != 0 => {
                self.b.ins().jump(t, &[]);
            }
            ExprKind::Binary(op @ (BinOp::And | BinOp::Or), a, b) => {
                let mid = self.b.create_block();
                let (pos, neg) = condition_facts(a);
                if *op == BinOp::And {
                    self.translate_cond(a, mid, f);
                } else {
                    self.translate_cond(a, t, mid);
                }
                // What holds after the left side on every path (a table it applied may have
                // invalidated headers), and, for the right side only, what deciding it gave.
                let after_a = self.known;
                self.known |= if *op == BinOp::And { pos } else { neg };
                // The right side runs only when the left one did not decide.
                self.b.switch_to_block(mid);
                self.translate_cond(b, t, f);
                self.known &= after_a;
            }
            _ => {
                let c = self.translate_expr(e);
                let c = self.bool_of(c);
                self.b.ins().brif(c, t, &[], f, &[]);
            }
        }
    }
}
