//! The parser: one block per state, one bounds check per extract, select as chains of
//! compare-and-branch.
//!
//! Rules: an extract is the only place that checks the packet's length; after it, the
//! header's fields are read at constant offsets from its base with no further check.

use super::*;

impl Translator<'_, '_> {
    pub(super) fn translate_state(
        &mut self,
        s: &State,
        visits: Option<Variable>,
        states: &[Block],
        accept: Block,
    ) {
        if let (Some(v), Some(limit)) = (visits, s.limit) {
            let n = self.b.use_var(v);
            let n = self.b.ins().iadd_imm_u(n, 1);
            self.b.def_var(v, n);
            let over = self
                .b
                .ins()
                .icmp_imm_u(IntCC::UnsignedGreaterThan, n, i64::from(limit));
            self.drop_if(over, reason::PARSER_LOOP_LIMIT);
        }
        for op in &s.ops {
            match op {
                ParserOp::Extract {
                    header,
                    varbit_bits,
                } => self.translate_extract(*header, varbit_bits.as_ref()),
                ParserOp::SetMeta(m, e) => {
                    let v = self.translate_expr(e);
                    self.b.def_var(self.meta[m.index()], v);
                }
            }
        }
        let goto = |t: Target| -> Result<Block, u64> {
            match t {
                Target::Accept => Ok(accept),
                Target::Reject => Err(CODE_DROP | reason::PARSER_REJECT.index() as u64),
                Target::State(s) => Ok(states[s.index()]),
            }
        };
        let jump = |tr: &mut Self, t: Target| match goto(t) {
            Ok(b) => {
                tr.b.ins().jump(b, &[]);
            }
            Err(code) => tr.exit_with(code),
        };
        match &s.transition {
            Transition::Accept => jump(self, Target::Accept),
            Transition::Reject => jump(self, Target::Reject),
            Transition::Goto(t) => jump(self, Target::State(*t)),
            Transition::Select {
                keys,
                cases,
                default,
            } => {
                let vals: Vec<(Value, u32)> = keys
                    .iter()
                    .map(|k| (self.translate_expr(k), k.width))
                    .collect();
                // A chain of compare-and-branch per case, one per matched key. Consecutive
                // cases often share their first key's match (`(0, 6)`, `(0, 17)`, ...): a
                // mismatch there skips every case that shares it, and a mismatch further on
                // enters the next such case past the first key, which is known to match.
                let n = cases.len();
                let full: Vec<Block> = (0..n).map(|_| self.b.create_block()).collect();
                let rest: Vec<Block> = (0..n).map(|_| self.b.create_block()).collect();
                let dflt = self.b.create_block();
                let first = |i: usize| cases[i].matches.first().copied();
                let block_or = |i: usize, v: &[Block]| if i < n { v[i] } else { dflt };
                self.b.ins().jump(block_or(0, &full), &[]);
                for i in 0..n {
                    // After the first key fails: the next case with another first key.
                    let mut k = i + 1;
                    while k < n && first(k) == first(i) {
                        k += 1;
                    }
                    let fail_first = block_or(k, &full);
                    // After a later key fails: the next case, past its first key if shared.
                    let fail_later = if i + 1 < n && first(i + 1) == first(i) {
                        rest[i + 1]
                    } else {
                        block_or(i + 1, &full)
                    };
                    for (j, (m, &(v, w))) in cases[i].matches.iter().zip(&vals).enumerate() {
                        if j == 0 {
                            self.b.switch_to_block(full[i]);
                        } else if j == 1 {
                            self.b.ins().jump(rest[i], &[]);
                            self.b.switch_to_block(rest[i]);
                        }
                        let fail = if j == 0 { fail_first } else { fail_later };
                        let low = sluice_defs::bits::low_mask(w);
                        let conds = match *m {
                            SelectMatch::Masked { mask, .. } if mask & low == 0 => vec![],
                            SelectMatch::Masked { value, mask } if mask & low == low => {
                                let vv = self.iconst(value & low, w);
                                vec![self.b.ins().icmp(IntCC::Equal, v, vv)]
                            }
                            SelectMatch::Masked { value, mask } => {
                                let mk = self.iconst(mask & low, w);
                                let vv = self.iconst(value & low, w);
                                let x = self.b.ins().band(v, mk);
                                vec![self.b.ins().icmp(IntCC::Equal, x, vv)]
                            }
                            SelectMatch::Range { lo, hi } => {
                                let l = self.iconst(lo, w);
                                let h = self.iconst(hi, w);
                                vec![
                                    self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, v, l),
                                    self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, v, h),
                                ]
                            }
                        };
                        for cnd in conds {
                            let ok = self.b.create_block();
                            self.b.ins().brif(cnd, ok, &[], fail, &[]);
                            self.b.switch_to_block(ok);
                        }
                    }
                    match cases[i].matches.len() {
                        0 => {
                            self.b.switch_to_block(full[i]);
                            self.b.ins().jump(rest[i], &[]);
                            self.b.switch_to_block(rest[i]);
                        }
                        1 => {
                            self.b.ins().jump(rest[i], &[]);
                            self.b.switch_to_block(rest[i]);
                        }
                        _ => {}
                    }
                    // Every key matched.
                    jump(self, cases[i].target);
                }
                self.b.switch_to_block(dflt);
                jump(self, *default);
            }
        }
    }

    pub(super) fn translate_extract(&mut self, h: HeaderId, varbit: Option<&Expr>) {
        let hd = &self.p.headers[h];
        let cur = self.b.use_var(self.cursor);
        let end = self.b.ins().iadd_imm_u(cur, hd.fixed_bytes as i64);
        // The one bounds check of this extract: nothing reads past the packet.
        let short = self.b.ins().icmp(IntCC::UnsignedGreaterThan, end, self.len);
        self.drop_if(short, reason::PARSER_TRUNCATED);
        let base = self.b.ins().iadd(self.data, cur);
        self.b.def_var(self.base[h.index()], base);
        self.set_bit(self.valid_mask, h, true);
        self.set_bit(self.extracted_mask, h, true);
        self.known |= h.bit();
        let mut total = end;
        if let (Some(e), Some((_, max))) = (varbit, hd.varbit) {
            let bits = self.translate_expr(e);
            let too_big =
                self.b
                    .ins()
                    .icmp_imm_u(IntCC::UnsignedGreaterThan, bits, (max * 8) as i64);
            // A length such as `(ihl - 5) * 32` is a whole number of bytes by construction.
            if known_zero_low_bits(e) < 3 {
                let low = self.b.ins().band_imm_u(bits, 7);
                let ragged = self.b.ins().icmp_imm_u(IntCC::NotEqual, low, 0);
                self.drop_if(ragged, reason::PARSER_BAD_LENGTH);
            }
            self.drop_if(too_big, reason::PARSER_BAD_LENGTH);
            let nb = self.b.ins().ushr_imm_u(bits, 3);
            total = self.b.ins().iadd(end, nb);
            let short = self
                .b
                .ins()
                .icmp(IntCC::UnsignedGreaterThan, total, self.len);
            self.drop_if(short, reason::PARSER_TRUNCATED);
            let l = self.b.ins().iadd_imm_u(nb, hd.fixed_bytes as i64);
            if let Some(v) = self.hlen[h.index()] {
                self.b.def_var(v, l);
            }
        }
        self.b.def_var(self.cursor, total);
    }
}
