//! Statements of the control block and of actions, with the validity facts (`known`) each
//! branch establishes.
//!
//! Rules: after a branch joins, `known` is what holds on every incoming path; an action's
//! parameters are `params`, restored after its body.

use super::*;

impl Translator<'_, '_> {
    pub(super) fn translate_stmts(&mut self, s: &[Stmt]) {
        for st in s {
            self.translate_stmt(st);
        }
    }

    pub(super) fn translate_stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::SetField(h, f, e) => {
                let v = self.translate_expr(e);
                self.write_field(*h, *f, v);
            }
            Stmt::SetMeta(m, e) => {
                let v = self.translate_expr(e);
                self.b.def_var(self.meta[m.index()], v);
            }
            Stmt::Apply(t) => {
                self.translate_apply(*t);
            }
            Stmt::If(c, a, b) => {
                let (pos, neg) = condition_facts(c);
                let tb = self.b.create_block();
                let eb = self.b.create_block();
                let done = self.b.create_block();
                self.translate_cond(c, tb, eb);
                // After the condition: a table it applied may have invalidated headers.
                let at_branch = self.known;
                self.b.switch_to_block(tb);
                self.known = at_branch | pos;
                self.translate_stmts(a);
                let after_then = self.known;
                self.b.ins().jump(done, &[]);
                self.b.switch_to_block(eb);
                self.known = at_branch | neg;
                self.translate_stmts(b);
                self.known &= after_then;
                self.b.ins().jump(done, &[]);
                self.b.switch_to_block(done);
            }
            Stmt::Switch(t, arms, default) => {
                self.translate_apply(*t);
                let a = self.b.use_var(self.last_action);
                let done = self.b.create_block();
                let dflt = self.b.create_block();
                let blocks: Vec<Block> = arms.iter().map(|_| self.b.create_block()).collect();
                if arms.len() <= 4 {
                    // A few compare-and-branches beat a jump table.
                    for ((aid, _), bl) in arms.iter().zip(&blocks) {
                        let is = self.b.ins().icmp_imm_u(IntCC::Equal, a, aid.index() as i64);
                        let next = self.b.create_block();
                        self.b.ins().brif(is, *bl, &[], next, &[]);
                        self.b.switch_to_block(next);
                    }
                    self.b.ins().jump(dflt, &[]);
                } else {
                    let mut sw = Switch::new();
                    for ((aid, _), bl) in arms.iter().zip(&blocks) {
                        sw.set_entry(aid.index() as u128, *bl);
                    }
                    sw.emit(&mut self.b, a, dflt);
                }
                let entry = self.known;
                let mut out = u64::MAX;
                for ((_, body), bl) in arms.iter().zip(&blocks) {
                    self.b.switch_to_block(*bl);
                    self.known = entry;
                    self.translate_stmts(body);
                    out &= self.known;
                    self.b.ins().jump(done, &[]);
                }
                self.b.switch_to_block(dflt);
                self.known = entry;
                self.translate_stmts(default);
                self.known &= out;
                self.b.ins().jump(done, &[]);
                self.b.switch_to_block(done);
            }
            Stmt::SetValid(h) => self.translate_set_valid(*h),
            Stmt::SetInvalid(h) => {
                self.set_bit(self.valid_mask, *h, false);
                self.known &= !h.bit();
            }
            Stmt::Forward(e) => {
                let v = self.translate_expr(e);
                // A port is 16 bits (the checker resizes to it); kept below the kind's bits.
                let v = if e.width > 32 {
                    self.b.ins().band_imm_u(v, 0xffff_ffff)
                } else {
                    v
                };
                self.set_verdict(FORWARDED, v);
            }
            Stmt::Drop(r) => self.set_drop(r.index() as i64),
            Stmt::Call(a, args) => {
                let vals: Vec<Value> = args.iter().map(|e| self.translate_expr(e)).collect();
                self.count(offset_of!(JitCtx, action_runs), a.index());
                self.translate_action_body(*a, vals);
            }
            Stmt::Recirculate => {
                let one = self.b.ins().iconst(types::I8, 1);
                self.b.def_var(self.recirc, one);
            }
            Stmt::Seal {
                secret,
                header,
                peer,
                no_key,
            } => {
                let v = self.translate_expr(peer);
                let c = |t: &mut Self, x: usize| t.b.ins().iconst(types::I64, x as i64);
                let args = [
                    self.ctx,
                    c(self, secret.index()),
                    c(self, header.index()),
                    v,
                    c(self, no_key.index()),
                ];
                self.b.ins().call(rt_fn(&self.rt, Rt::SealRequest), &args);
            }
            Stmt::Open {
                secret,
                header,
                bad_tag,
                replay,
            } => {
                let valid = self.is_valid(*header);
                let valid = self.b.ins().uextend(types::I64, valid);
                let bytes = self.b.use_var(self.base[header.index()]);
                let c = |t: &mut Self, x: u64| t.b.ins().iconst(types::I64, x as i64);
                let reasons = (bad_tag.index() as u64) | (replay.index() as u64) << 32;
                let args = [
                    self.ctx,
                    c(self, secret.index() as u64),
                    c(self, header.index() as u64),
                    bytes,
                    c(self, self.p.headers[*header].fixed_bytes as u64),
                    valid,
                    c(self, reasons),
                ];
                self.b.ins().call(rt_fn(&self.rt, Rt::OpenRequest), &args);
            }
        }
    }

    pub(super) fn translate_action_body(&mut self, a: ActionId, params: Vec<Value>) {
        let saved = std::mem::replace(&mut self.params, params);
        let body = &self.p.actions[a].body;
        self.translate_stmts(body);
        self.params = saved;
    }
}
