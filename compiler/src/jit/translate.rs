//! IR to Cranelift IR: one `translate_*` method per construct. Values of up to 64 bits are
//! `i64`, wider ones `i128`, conditions `i8`. Header fields are read and written in place, in
//! the packet buffer, relying on the bounds the parser checked once per extract.

use super::rt::{DepEntry, JitCtx};
use super::Layout;
use crate::ir::*;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    types, AbiParam, Block, BlockArg, FuncRef, InstBuilder, MemFlagsData, Signature, StackSlotData,
    StackSlotKind, Type, Value,
};
use cranelift_codegen::isa::TargetFrontendConfig;
use cranelift_frontend::{FunctionBuilder, Switch, Variable};
use std::collections::BTreeMap;
use std::mem::offset_of;

pub(super) const CODE_FORWARD: u64 = 0;
pub(super) const CODE_DROP: u64 = 1 << 32;

pub(super) struct Funcs {
    pub apply: FuncRef,
    pub apply2: FuncRef,
    pub deparse: FuncRef,
    pub hash: FuncRef,
    pub siphash: FuncRef,
}

/// Signatures of the `rt_*` functions, shared by declaration and translation.
pub(super) fn rt_signatures(make: impl Fn() -> Signature) -> [Signature; 5] {
    let p = |s: &mut Signature, ts: &[Type]| {
        for t in ts {
            s.params.push(AbiParam::new(*t));
        }
        s.returns.push(AbiParam::new(types::I64));
    };
    let (i64_, i32_) = (types::I64, types::I32);
    let mut apply = make();
    p(&mut apply, &[i64_, i32_, i64_]);
    let mut deparse = make();
    p(&mut deparse, &[i64_, i64_, i64_, i64_]);
    let mut hash = make();
    p(&mut hash, &[i32_, i64_, i64_, i64_, i64_]);
    let mut siphash = make();
    p(&mut siphash, &[i64_, i32_, i64_, i64_]);
    let mut apply2 = make();
    p(&mut apply2, &[i64_, i32_, i64_, i64_, i64_, i64_]);
    [apply, deparse, hash, siphash, apply2]
}

pub(super) struct Translator<'a, 'b> {
    pub b: FunctionBuilder<'b>,
    p: &'a Program,
    layout: &'a Layout,
    f: Funcs,
    ctx: Value,
    buf: Value,
    buf_len: Value,
    data: Value,
    len: Value,
    scratch: Value,
    /// Bit h set: header h is valid. One register for all headers keeps the state that is
    /// live across calls and block boundaries small.
    valid_mask: Variable,
    /// Bit h set: header h was extracted in this pass.
    extracted_mask: Variable,
    base: Vec<Variable>,
    /// Length of each header with a varbit field (others have their fixed length).
    hlen: Vec<Option<Variable>>,
    meta: Vec<Variable>,
    /// Parse-time values of fields that checksums need and actions may change, each taken
    /// where the field is first written (see `capture_old`), and its bit in `written`.
    old: BTreeMap<(HeaderId, FieldId), (Variable, usize)>,
    /// Bit i of word i / 64: snapshot field i was written in this pass (so `old` holds its
    /// parse-time value). Most packets write few of them: the others cost nothing. Cleared
    /// where each pass starts; only the control block writes header fields (the checker
    /// keeps the parser to metadata), so every write comes after every extract.
    written: Vec<Variable>,
    cursor: Variable,
    /// What the pass decided, in one register: the kind (`FORWARDED`, `DROPPED` or 0) in
    /// bits 32 to 39, the port or drop reason below. Each forward or drop replaces it whole.
    verdict: Variable,
    /// Whether the pass asked to come round again (an i8; only programs that recirculate
    /// ever set it).
    recirc: Variable,
    last_action: Variable,
    /// Where a pass starts, for a program that recirculates (block parameters: the window).
    pass_head: Option<Block>,

    params: Vec<Value>,
    exit: Block,
    /// Context and stack accesses: aligned, cannot trap.
    trusted: MemFlagsData,
    /// Packet and header accesses: valid memory by construction (see module docs), so they
    /// cannot trap; fields are not aligned.
    pkt_flags: MemFlagsData,
    frontend: TargetFrontendConfig,
    /// Headers known to be valid at the point being translated (bit h): their fields are read
    /// and written without a validity test. A static fact, derived from extracts, set_valid and
    /// conditions on `h.valid`; the runtime mask stays the truth.
    known: u64,
    /// How many (valid, extracted) layouts got a deparser of their own.
    layout_deparsers: usize,
}

const FORWARDED: u8 = 1;
const DROPPED: u8 = 2;

fn ty(width: u32) -> Type {
    match width {
        0 => types::I8,
        1..=64 => types::I64,
        _ => types::I128,
    }
}

impl<'a, 'b> Translator<'a, 'b> {
    /// Sets up the entry block: `fn(ctx, buf, head, len, buf_len) -> code`.
    pub fn new(
        mut b: FunctionBuilder<'b>,
        p: &'a Program,
        layout: &'a Layout,
        f: Funcs,
        frontend: TargetFrontendConfig,
    ) -> Self {
        let trusted = MemFlagsData::trusted();
        let pkt_flags = MemFlagsData::new().with_notrap();
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        b.seal_block(entry);
        let params = b.block_params(entry).to_vec();
        let (ctx, buf, head, len, buf_len) =
            (params[0], params[1], params[2], params[3], params[4]);
        let exit = b.create_block();
        b.append_block_param(exit, types::I64);
        // Fields that do not change during a call: readonly, so that unused loads go away.
        let ro = trusted.with_readonly();
        let ld =
            |b: &mut FunctionBuilder, off: usize| b.ins().load(types::I64, ro, ctx, off as i32);
        let scratch = ld(&mut b, offset_of!(JitCtx, scratch));
        let var = |b: &mut FunctionBuilder, t: Type, init: Value| {
            let v = b.declare_var(t);
            b.def_var(v, init);
            v
        };
        let zero64 = b.ins().iconst(types::I64, 0);
        // User metadata starts at zero and is kept from pass to pass.
        let mut meta = Vec::new();
        for m in &p.metadata {
            let t = ty(m.width);
            let z = if t == types::I128 {
                b.ins().iconcat(zero64, zero64)
            } else {
                b.ins().iconst(t, 0)
            };
            meta.push(var(&mut b, t, z));
        }
        // A program that recirculates loops here, in generated code: each pass starts at
        // `pass_head` with the window the last one's deparser left.
        let recirculates = program_recirculates(p);
        let (head, len, pass_head) = if recirculates {
            let ph = b.create_block();
            let h = b.append_block_param(ph, types::I64);
            let l = b.append_block_param(ph, types::I64);
            b.ins()
                .jump(ph, &[BlockArg::Value(head), BlockArg::Value(len)]);
            b.switch_to_block(ph);
            // The deparser works from the current window, and the wire length of the packet
            // that leaves is computed from this pass's start.
            b.ins()
                .store(trusted, h, ctx, offset_of!(JitCtx, out_head) as i32);
            b.ins()
                .store(trusted, l, ctx, offset_of!(JitCtx, out_len) as i32);
            b.ins()
                .store(trusted, l, ctx, offset_of!(JitCtx, pass_len) as i32);
            (h, l, Some(ph))
        } else {
            (head, len, None)
        };
        let data = b.ins().iadd(buf, head);
        let n = p.headers.len();
        let mut base = Vec::with_capacity(n);
        let mut hlen = Vec::with_capacity(n);
        for (h, hd) in p.headers.iter().enumerate() {
            // Until a header is extracted or made valid, its storage is its scratch area, so
            // that a read through it is always of valid memory.
            let s = b.ins().iadd_imm_u(scratch, layout.scratch_off[h] as i64);
            base.push(var(&mut b, types::I64, s));
            if hd.varbit.is_some() {
                let fixed = b.ins().iconst(types::I64, hd.fixed_bytes as i64);
                hlen.push(Some(var(&mut b, types::I64, fixed)));
            } else {
                hlen.push(None);
            }
        }
        let mut old = BTreeMap::new();
        for (i, &(h, f)) in layout.snapshot.iter().enumerate() {
            let t = ty(p.headers[h].fields[f].width);
            let z = if t == types::I128 {
                b.ins().iconcat(zero64, zero64)
            } else {
                zero64
            };
            old.insert((h, f), (var(&mut b, t, z), i));
        }
        let written = (0..layout.snapshot.len().div_ceil(64))
            .map(|_| var(&mut b, types::I64, zero64))
            .collect();
        let valid_mask = var(&mut b, types::I64, zero64);
        let extracted_mask = var(&mut b, types::I64, zero64);
        let cursor = var(&mut b, types::I64, zero64);
        let verdict = var(&mut b, types::I64, zero64);
        let zero8 = b.ins().iconst(types::I8, 0);
        let recirc = var(&mut b, types::I8, zero8);
        let last_action = var(&mut b, types::I64, zero64);
        Translator {
            b,
            p,
            layout,
            f,
            ctx,
            buf,
            buf_len,
            data,
            len,
            scratch,
            valid_mask,
            extracted_mask,
            base,
            hlen,
            meta,
            old,
            written,
            cursor,
            verdict,
            recirc,
            last_action,
            pass_head,
            params: Vec::new(),
            exit,
            trusted,
            pkt_flags,
            frontend,
            known: 0,
            layout_deparsers: 0,
        }
    }

    /// Translates the whole pipeline and finishes the function. Returns how many header
    /// layouts got a deparser of their own.
    pub fn translate_program(mut self) -> usize {
        let p = self.p;
        let accept = self.b.create_block();
        let states: Vec<Block> = p.states.iter().map(|_| self.b.create_block()).collect();
        let visits: Vec<Option<Variable>> = p
            .states
            .iter()
            .map(|s| {
                s.limit.map(|_| {
                    let v = self.b.declare_var(types::I64);
                    let z = self.b.ins().iconst(types::I64, 0);
                    self.b.def_var(v, z);
                    v
                })
            })
            .collect();
        self.b.ins().jump(states[0], &[]);
        let (must_in, must_accept) = must_extracted(p);
        for (i, s) in p.states.iter().enumerate() {
            self.b.switch_to_block(states[i]);
            self.known = must_in[i];
            self.translate_state(s, visits[i], &states, accept);
        }
        self.b.switch_to_block(accept);
        self.known = must_accept;
        self.translate_stmts(&p.control);
        // Dropped: no deparse.
        let is_drop = self.verdict_is(DROPPED);
        let drop_blk = self.b.create_block();
        let go = self.b.create_block();
        self.b.ins().brif(is_drop, drop_blk, &[], go, &[]);
        self.b.switch_to_block(drop_blk);
        let r = self.verdict_value();
        let code = self.b.ins().bor_imm_u(r, CODE_DROP as i64);
        self.b.ins().jump(self.exit, &[BlockArg::Value(code)]);
        self.b.switch_to_block(go);
        self.translate_deparse();
        // Recirculate, forward, or nobody forwarded it.
        let rc = self.b.use_var(self.recirc);
        let rc_blk = self.b.create_block();
        let fw_check = self.b.create_block();
        self.b.ins().brif(rc, rc_blk, &[], fw_check, &[]);
        self.b.switch_to_block(rc_blk);
        self.translate_recirculate();
        self.b.switch_to_block(fw_check);
        let is_fw = self.verdict_is(FORWARDED);
        let port = self.verdict_value();
        let fw_code = self.b.ins().bor_imm_u(port, CODE_FORWARD as i64);
        let nf = self
            .b
            .ins()
            .iconst(types::I64, (CODE_DROP | reason::NO_FORWARD as u64) as i64);
        let code = self.b.ins().select(is_fw, fw_code, nf);
        self.b.ins().jump(self.exit, &[BlockArg::Value(code)]);
        self.b.switch_to_block(self.exit);
        let code = self.b.block_params(self.exit)[0];
        self.b.ins().return_(&[code]);
        self.b.seal_all_blocks();
        self.b.finalize(self.frontend);
        self.layout_deparsers
    }

    /// The packet comes round again: the next pass starts with the window this pass's
    /// deparser left, the metadata as it is, and the wire length changed by as much as the
    /// window did (as `PacketBuf::set_window` changes `orig_len`). After the last pass
    /// allowed, the packet is dropped instead.
    fn translate_recirculate(&mut self) {
        let Some(pass_head) = self.pass_head else {
            // A program without recirculate() never gets here.
            return self.exit_with(CODE_DROP | reason::RECIRCULATION_LIMIT as u64);
        };
        let c = self.ctx;
        let pass = self.ctx_var(offset_of!(JitCtx, pass));
        let over = self.b.ins().icmp_imm_u(
            IntCC::UnsignedGreaterThanOrEqual,
            pass,
            i64::from(MAX_RECIRCULATIONS),
        );
        self.drop_if(over, reason::RECIRCULATION_LIMIT);
        let head = self.ctx_var(offset_of!(JitCtx, out_head));
        let len = self.ctx_var(offset_of!(JitCtx, out_len));
        let plen = self.ctx_var(offset_of!(JitCtx, packet_length));
        let grown = self.b.ins().iadd(plen, len);
        let plen = self.b.ins().isub(grown, self.len);
        let max = self.b.ins().iconst(types::I64, i64::from(u32::MAX));
        let plen = self.b.ins().umin(plen, max);
        self.b.ins().store(
            self.trusted,
            plen,
            c,
            offset_of!(JitCtx, packet_length) as i32,
        );
        let next = self.b.ins().iadd_imm_u(pass, 1);
        self.b
            .ins()
            .store(self.trusted, next, c, offset_of!(JitCtx, pass) as i32);
        self.b
            .ins()
            .jump(pass_head, &[BlockArg::Value(head), BlockArg::Value(len)]);
    }

    fn exit_with(&mut self, code: u64) {
        let c = self.b.ins().iconst(types::I64, code as i64);
        self.b.ins().jump(self.exit, &[BlockArg::Value(c)]);
    }

    /// Branches to a drop with `reason` when `cond` holds, continuing in a new block otherwise.
    fn drop_if(&mut self, cond: Value, reason: usize) {
        let fail = self.b.create_block();
        let ok = self.b.create_block();
        self.b.ins().brif(cond, fail, &[], ok, &[]);
        self.b.switch_to_block(fail);
        self.exit_with(CODE_DROP | reason as u64);
        self.b.switch_to_block(ok);
    }

    fn translate_state(
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
                    self.b.def_var(self.meta[*m], v);
                }
            }
        }
        let goto = |t: Target| -> Result<Block, u64> {
            match t {
                Target::Accept => Ok(accept),
                Target::Reject => Err(CODE_DROP | reason::PARSER_REJECT as u64),
                Target::State(s) => Ok(states[s]),
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
                        let low = sluice_runtime::bits::low_mask(w);
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

    fn translate_extract(&mut self, h: HeaderId, varbit: Option<&Expr>) {
        let hd = &self.p.headers[h];
        let cur = self.b.use_var(self.cursor);
        let end = self.b.ins().iadd_imm_u(cur, hd.fixed_bytes as i64);
        // The one bounds check of this extract: nothing reads past the packet.
        let short = self.b.ins().icmp(IntCC::UnsignedGreaterThan, end, self.len);
        self.drop_if(short, reason::PARSER_TRUNCATED);
        let base = self.b.ins().iadd(self.data, cur);
        self.b.def_var(self.base[h], base);
        self.set_bit(self.valid_mask, h, true);
        self.set_bit(self.extracted_mask, h, true);
        self.known |= 1 << h;
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
            if let Some(v) = self.hlen[h] {
                self.b.def_var(v, l);
            }
        }
        self.b.def_var(self.cursor, total);
    }

    /// A header's length in bytes: its variable's for one with a varbit field.
    fn header_len(&mut self, h: HeaderId) -> Value {
        match self.hlen[h] {
            Some(l) => self.b.use_var(l),
            None => self
                .b
                .ins()
                .iconst(types::I64, self.p.headers[h].fixed_bytes as i64),
        }
    }

    /// Bit `i` of the `written` mask, as a condition.
    fn written_bit(&mut self, i: usize) -> Value {
        let m = self.b.use_var(self.written[i / 64]);
        let x = self.b.ins().band_imm_u(m, (1u64 << (i % 64)) as i64);
        self.b.ins().icmp_imm_u(IntCC::NotEqual, x, 0)
    }

    /// Before a write to a field that a checksum update needs: on the field's first write of
    /// the pass, its value (still the parsed one) becomes its snapshot. Taken here rather
    /// than at extract time, a field that the packet's path never writes costs nothing.
    fn capture_old(&mut self, h: HeaderId, f: FieldId, base: Value) {
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
    fn old_value(&mut self, h: HeaderId, f: FieldId) -> Option<Value> {
        let base = self.b.use_var(self.base[h]);
        self.old_value_at(h, f, base)
    }

    /// `old_value` for a header at `base`.
    fn old_value_at(&mut self, h: HeaderId, f: FieldId, base: Value) -> Option<Value> {
        let &(var, i) = self.old.get(&(h, f))?;
        let fd = &self.p.headers[h].fields[f];
        let cur = self.load_field(base, fd.bit_offset, fd.width);
        let seen = self.written_bit(i);
        let prev = self.b.use_var(var);
        Some(self.b.ins().select(seen, prev, cur))
    }

    // ---- header state

    /// A context field that does not change during a call, loaded where it is used (keeping
    /// it in a register from the entry on would only add spills).
    fn ctx_field(&mut self, off: usize) -> Value {
        let ro = self.trusted.with_readonly();
        self.b.ins().load(types::I64, ro, self.ctx, off as i32)
    }

    /// Whether some parser state extracts header `h` (a static fact).
    fn parsed(&self, h: HeaderId) -> bool {
        h < 64 && self.layout.extractable & (1 << h) != 0
    }

    /// A context field that changes when the packet comes round again (the pass, the wire
    /// length, the window): a plain load, never hoisted over the stores that change it.
    fn ctx_var(&mut self, off: usize) -> Value {
        self.b
            .ins()
            .load(types::I64, self.trusted, self.ctx, off as i32)
    }

    /// Bit `h` of a mask variable, as a condition.
    fn bit(&mut self, mask: Variable, h: HeaderId) -> Value {
        // `test $bit, mask` with the flags used by the branch or select that reads it.
        let m = self.b.use_var(mask);
        let x = self.b.ins().band_imm_u(m, (1u64 << h) as i64);
        self.b.ins().icmp_imm_u(IntCC::NotEqual, x, 0)
    }

    fn is_valid(&mut self, h: HeaderId) -> Value {
        self.bit(self.valid_mask, h)
    }

    fn set_bit(&mut self, mask: Variable, h: HeaderId, on: bool) {
        let m = self.b.use_var(mask);
        let m = if on {
            self.b.ins().bor_imm_u(m, 1i64 << h)
        } else {
            self.b.ins().band_imm_u(m, !(1i64 << h))
        };
        self.b.def_var(mask, m);
    }

    // ---- values

    fn iconst(&mut self, v: u128, width: u32) -> Value {
        match ty(width) {
            types::I128 => {
                let lo = self.b.ins().iconst(types::I64, v as u64 as i64);
                let hi = self.b.ins().iconst(types::I64, (v >> 64) as u64 as i64);
                self.b.ins().iconcat(lo, hi)
            }
            t => self.b.ins().iconst(t, v as u64 as i64),
        }
    }

    fn mask(&mut self, v: Value, width: u32) -> Value {
        match ty(width) {
            types::I128 if width < 128 => {
                let m = self.iconst(sluice_runtime::bits::low_mask(width), width);
                self.b.ins().band(v, m)
            }
            // A 32-bit mask as an immediate would be a constant in memory on x86-64; a
            // 32-bit move clears the upper half instead.
            types::I64 if width == 32 => {
                let l = self.b.ins().ireduce(types::I32, v);
                self.b.ins().uextend(types::I64, l)
            }
            types::I64 if width < 64 => self
                .b
                .ins()
                .band_imm_u(v, sluice_runtime::bits::low_mask(width) as i64),
            _ => v,
        }
    }

    fn to128(&mut self, v: Value) -> Value {
        if self.b.func.dfg.value_type(v) == types::I128 {
            v
        } else {
            let v = if self.b.func.dfg.value_type(v) == types::I64 {
                v
            } else {
                self.b.ins().uextend(types::I64, v)
            };
            self.b.ins().uextend(types::I128, v)
        }
    }

    /// Converts a value to the representation of `width`, truncating to it.
    fn resize(&mut self, v: Value, width: u32) -> Value {
        let from = self.b.func.dfg.value_type(v);
        let to = ty(width);
        let v = match (from, to) {
            (a, b) if a == b => v,
            (types::I8, types::I64) => self.b.ins().uextend(types::I64, v),
            (types::I8, types::I128) => self.to128(v),
            (types::I64, types::I128) => self.b.ins().uextend(types::I128, v),
            (types::I128, types::I64) => self.b.ins().ireduce(types::I64, v),
            _ => v,
        };
        self.mask(v, width)
    }

    /// Reads a field from a header's storage: one load of the bytes it spans, a byte swap, a
    /// shift and a mask.
    fn load_field(&mut self, base: Value, bit_off: u32, w: u32) -> Value {
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
    fn store_field(&mut self, base: Value, bit_off: u32, w: u32, v: Value) {
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
        let fmask = sluice_runtime::bits::low_mask(w) << shift;
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
            let full = sluice_runtime::bits::low_mask(bits);
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

    fn read_field(&mut self, h: HeaderId, f: FieldId) -> Value {
        let fd = &self.p.headers[h].fields[f];
        let (off, w) = (fd.bit_offset, fd.width);
        let base = self.b.use_var(self.base[h]);
        let v = self.load_field(base, off, w);
        if self.known & (1 << h) != 0 {
            return v;
        }
        let valid = self.is_valid(h);
        let z = self.iconst(0, w);
        self.b.ins().select(valid, v, z)
    }

    fn write_field(&mut self, h: HeaderId, f: FieldId, v: Value) {
        let fd = &self.p.headers[h].fields[f];
        let (off, w) = (fd.bit_offset, fd.width);
        if self.known & (1 << h) != 0 {
            let base = self.b.use_var(self.base[h]);
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
        let base = self.b.use_var(self.base[h]);
        self.capture_old(h, f, base);
        self.store_field(base, off, w, v);
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
    }

    fn bool_of(&mut self, v: Value) -> Value {
        // Conditions are i8 0/1 already; values compare with 0.
        match self.b.func.dfg.value_type(v) {
            types::I8 => v,
            types::I128 => {
                let z = self.iconst(0, 128);
                self.b.ins().icmp(IntCC::NotEqual, v, z)
            }
            _ => self.b.ins().icmp_imm_u(IntCC::NotEqual, v, 0),
        }
    }

    pub fn translate_expr(&mut self, e: &Expr) -> Value {
        let w = e.width;
        match &e.kind {
            ExprKind::Const(v) => {
                if w == 0 {
                    self.b.ins().iconst(types::I8, i64::from(*v != 0))
                } else {
                    self.iconst(*v & sluice_runtime::bits::low_mask(w), w)
                }
            }
            ExprKind::Field(h, f) => self.read_field(*h, *f),
            ExprKind::Meta(m) => self.b.use_var(self.meta[*m]),
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
                let a = self.b.ins().iconst(
                    types::I32,
                    match algo {
                        HashAlgo::Crc32 => 0,
                        HashAlgo::Crc16 => 1,
                        HashAlgo::Identity => 2,
                    },
                );
                let len = self.b.ins().iconst(types::I64, n as i64);
                let call = self.b.ins().call(self.f.hash, &[a, ptr, len, lo, hi]);
                let r = self.b.inst_results(call)[0];
                self.resize(r, w)
            }
            ExprKind::SipHash { secret, fields } => {
                let (ptr, n) = self.field_bytes(fields);
                let s = self.b.ins().iconst(types::I32, *secret as i64);
                let len = self.b.ins().iconst(types::I64, n as i64);
                let call = self.b.ins().call(self.f.siphash, &[self.ctx, s, ptr, len]);
                self.b.inst_results(call)[0]
            }
        }
    }

    /// The fields' bytes in network order in a stack slot: (address, length).
    fn field_bytes(&mut self, fields: &[Expr]) -> (Value, usize) {
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

    fn translate_binary(&mut self, op: BinOp, a: &Expr, b: &Expr, w: u32) -> Value {
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

    // ---- statements

    /// `&&` and `||` as a value: the condition's branches (short-circuit, as the interpreter
    /// evaluates them: the right side may apply a table) joined into 0 or 1.
    fn cond_value(&mut self, e: &Expr) -> Value {
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
    fn translate_cond(&mut self, e: &Expr, t: Block, f: Block) {
        match &e.kind {
            ExprKind::Not(a) => self.translate_cond(a, f, t),
            ExprKind::Valid(h) if self.known & (1 << *h) != 0 => {
                self.b.ins().jump(t, &[]);
            }
            ExprKind::Binary(op @ (BinOp::And | BinOp::Or), a, b) => {
                let mid = self.b.create_block();
                let (pos, neg) = facts(a);
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

    fn translate_stmts(&mut self, s: &[Stmt]) {
        for st in s {
            self.translate_stmt(st);
        }
    }

    fn translate_stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::SetField(h, f, e) => {
                let v = self.translate_expr(e);
                self.write_field(*h, *f, v);
            }
            Stmt::SetMeta(m, e) => {
                let v = self.translate_expr(e);
                self.b.def_var(self.meta[*m], v);
            }
            Stmt::Apply(t) => {
                self.translate_apply(*t);
            }
            Stmt::If(c, a, b) => {
                let (pos, neg) = facts(c);
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
                        let is = self.b.ins().icmp_imm_u(IntCC::Equal, a, *aid as i64);
                        let next = self.b.create_block();
                        self.b.ins().brif(is, *bl, &[], next, &[]);
                        self.b.switch_to_block(next);
                    }
                    self.b.ins().jump(dflt, &[]);
                } else {
                    let mut sw = Switch::new();
                    for ((aid, _), bl) in arms.iter().zip(&blocks) {
                        sw.set_entry(*aid as u128, *bl);
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
                self.known &= !(1 << *h);
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
            Stmt::Drop(r) => self.set_drop(*r as i64),
            Stmt::Call(a, args) => {
                let vals: Vec<Value> = args.iter().map(|e| self.translate_expr(e)).collect();
                self.count(offset_of!(JitCtx, action_runs), *a);
                self.translate_action_body(*a, vals);
            }
            Stmt::Recirculate => {
                let one = self.b.ins().iconst(types::I8, 1);
                self.b.def_var(self.recirc, one);
            }
        }
    }

    fn set_drop(&mut self, reason: i64) {
        let r = self.b.ins().iconst(types::I64, reason);
        self.set_verdict(DROPPED, r);
    }

    /// Forwarded to port `value`, or dropped for reason `value`.
    fn set_verdict(&mut self, kind: u8, value: Value) {
        // Ports and reasons are at most 16 bits wide: no mask needed.
        let x = self.b.ins().bor_imm_u(value, i64::from(kind) << 32);
        self.b.def_var(self.verdict, x);
    }

    /// Whether the verdict so far is of this kind.
    fn verdict_is(&mut self, kind: u8) -> Value {
        let v = self.b.use_var(self.verdict);
        let k = self.b.ins().ushr_imm_u(v, 32);
        let k = self.b.ins().band_imm_u(k, 0xff);
        self.b.ins().icmp_imm_u(IntCC::Equal, k, i64::from(kind))
    }

    /// The verdict's port or reason.
    fn verdict_value(&mut self) -> Value {
        let v = self.b.use_var(self.verdict);
        self.b.ins().band_imm_u(v, 0xffff_ffff)
    }

    fn translate_action_body(&mut self, a: ActionId, params: Vec<Value>) {
        let saved = std::mem::replace(&mut self.params, params);
        let body = &self.p.actions[a].body;
        self.translate_stmts(body);
        self.params = saved;
    }

    fn translate_set_valid(&mut self, h: HeaderId) {
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
            .iadd_imm_u(self.scratch, self.layout.scratch_off[h] as i64);
        self.b.def_var(self.base[h], base);
        let fixed = self.p.headers[h].fixed_bytes;
        let z = self.b.ins().iconst(types::I64, 0);
        for off in (0..fixed).step_by(8) {
            self.b.ins().store(self.trusted, z, base, off as i32);
        }
        if let Some(v) = self.hlen[h] {
            let l = self.b.ins().iconst(types::I64, fixed as i64);
            self.b.def_var(v, l);
        }
        self.b.ins().jump(mark, &[]);
        self.b.switch_to_block(mark);
        self.set_bit(self.valid_mask, h, true);
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
        self.known |= 1 << h;
    }

    /// Applies a table: key in a stack slot, `rt_apply`, then the chosen action inlined.
    /// Returns hit as an i8.
    fn translate_apply(&mut self, t: TableId) -> Value {
        let table = &self.p.tables[t];
        let kind = sluice_runtime::jitview::kind_for(&self.layout.table_keys[t]);
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
            let tid = self.b.ins().iconst(types::I32, t as i64);
            let call = self.b.ins().call(
                self.f.apply2,
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
            let tid = self.b.ins().iconst(types::I32, t as i64);
            let call = self.b.ins().call(self.f.apply, &[self.ctx, tid, addr]);
            self.b.inst_results(call)[0]
        };
        self.dispatch(t, r, None)
    }

    /// Runs the action a lookup chose. `r` is the action id with bit 32 set on a hit; `row`
    /// the chosen row if the lookup was inline (otherwise it is read from `ctx.row`).
    fn dispatch(&mut self, t: TableId, r: Value, row_in: Option<Value>) -> Value {
        let table = &self.p.tables[t];
        let action = self.b.ins().ireduce(types::I32, r);
        let action = self.b.ins().uextend(types::I64, action);
        self.b.def_var(self.last_action, action);
        let hit64 = self.b.ins().ushr_imm_u(r, 32);
        let hit = self.b.ins().ireduce(types::I8, hit64);
        // Dispatch on the action: the table's actions, its default, and the built-ins.
        let mut ids: Vec<ActionId> = table.actions.clone();
        ids.push(table.default.0);
        ids.extend([BUILTIN_DROP, BUILTIN_NOACTION]);
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
                let is = self.b.ins().icmp_imm_u(IntCC::Equal, action, ids[i] as i64);
                let next = self.b.create_block();
                self.b.ins().brif(is, blocks[i], &[], next, &[]);
                self.b.switch_to_block(next);
            }
            self.b.ins().jump(done, &[]);
        } else {
            let mut sw = Switch::new();
            for (a, bl) in ids.iter().zip(&blocks) {
                sw.set_entry(*a as u128, *bl);
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
                self.count(offset_of!(JitCtx, action_runs), *a);
            }
            match *a {
                BUILTIN_DROP => {
                    let rh = self.b.ins().iconst(types::I64, on_hit as i64);
                    let rm = self.b.ins().iconst(types::I64, on_miss as i64);
                    let r = self.b.ins().select(hit, rh, rm);
                    self.set_verdict(DROPPED, r);
                }
                BUILTIN_NOACTION => {}
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
                    let vals: Vec<Value> = params
                        .iter()
                        .enumerate()
                        .map(|(i, (_, w))| {
                            // Arguments follow the action id in the row; a value of up to
                            // 64 bits is the low half of its u128.
                            let row = row.unwrap_or(self.ctx);
                            let off = ((i + 1) * 16) as i32;
                            let t = if *w <= 64 { types::I64 } else { types::I128 };
                            let v = self.b.ins().load(t, self.trusted, row, off);
                            self.resize(v, *w)
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

    // ---- deparser

    fn translate_deparse(&mut self) {
        self.translate_checksums();
        let p = self.p;
        let slow = self.b.create_block();
        let done = self.b.create_block();
        if self.layout.fast_deparse {
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
        self.b.switch_to_block(slow);
        let dep = self.b.ins().load(
            types::I64,
            self.trusted,
            self.ctx,
            offset_of!(JitCtx, dep) as i32,
        );
        for (i, &h) in p.deparser.iter().enumerate() {
            let base = self.b.use_var(self.base[h]);
            let len = self.header_len(h);
            let v = self.is_valid(h);
            let v = self.b.ins().uextend(types::I64, v);
            let o = (i * std::mem::size_of::<DepEntry>()) as i32;
            self.b.ins().store(
                self.trusted,
                base,
                dep,
                o + offset_of!(DepEntry, ptr) as i32,
            );
            self.b
                .ins()
                .store(self.trusted, len, dep, o + offset_of!(DepEntry, len) as i32);
            self.b
                .ins()
                .store(self.trusted, v, dep, o + offset_of!(DepEntry, valid) as i32);
        }
        let consumed = self.b.use_var(self.cursor);
        self.b.ins().call(
            self.f.deparse,
            &[self.ctx, self.buf, self.buf_len, consumed],
        );
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
    }

    /// A deparser for each (valid, extracted) pair that the program can reach, where its
    /// moves can be made in place: chosen by the masks, it knows every header's destination
    /// and copies only the headers that move, each straight to its place, in an order that
    /// never overwrites a header not yet copied. Other pairs fall through to the general
    /// deparser, in the current block.
    fn translate_special_deparses(&mut self, slow: Block, done: Block) {
        let plans: Vec<((u64, u64), Vec<usize>)> = self
            .layout
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
    fn deparse_plan(&self, v: u64, e: u64) -> Option<Vec<usize>> {
        let dep = &self.p.deparser;
        let after = |m: u64, i: usize| {
            dep[i + 1..]
                .iter()
                .filter(|&&g| m & (1 << g) != 0)
                .fold(0u64, |acc, &g| acc | 1 << g)
        };
        let (mut front, mut back) = (false, false);
        let mut moving = Vec::new();
        for (i, &h) in dep.iter().enumerate() {
            if v & (1 << h) == 0 {
                continue;
            }
            if e & (1 << h) != 0 {
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
                if self.hlen[h].is_some() {
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

    fn translate_special_deparse(
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
            if v & (1 << h) == 0 {
                continue;
            }
            // A header not extracted in this pass has its fixed length.
            pos = match self.hlen[h] {
                Some(l) if e & (1 << h) != 0 => {
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
            let src = self.b.use_var(self.base[h]);
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
    fn set_out_window(&mut self, pos: Value, ps: Value, consumed: Value) {
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
    /// destinations may overlap. Falls back to `slow` (`rt_deparse`) only if the headroom
    /// would not hold the headers, which the headroom's size rules out.
    fn translate_inline_deparse(&mut self, slow: Block, done: Block) {
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
        // The headers must fit the headroom (they do by construction; rt_deparse says so).
        let short = self.b.ins().icmp(IntCC::UnsignedLessThan, pos, self.buf);
        let fits = self.b.create_block();
        self.b.ins().brif(short, slow, &[], fits, &[]);
        self.b.switch_to_block(fits);
        let staging = self.ctx_field(offset_of!(JitCtx, staging));
        // Stage every header that moves (a header with a variable part too, by its current
        // length), before anything is written to the packet.
        for (i, &h) in p.deparser.iter().enumerate() {
            if self.layout.in_place[i] {
                continue;
            }
            let base = self.b.use_var(self.base[h]);
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
            if self.layout.in_place[i] {
                continue;
            }
            let copy = self.b.create_block();
            let next = self.b.create_block();
            let base = self.b.use_var(self.base[h]);
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
    fn branch_if_moves(&mut self, v: Value, base: Value, dst: Value, yes: Block, no: Block) {
        let check = self.b.create_block();
        self.b.ins().brif(v, check, &[], no, &[]);
        self.b.switch_to_block(check);
        let away = self.b.ins().icmp(IntCC::NotEqual, base, dst);
        self.b.ins().brif(away, yes, &[], no, &[]);
    }

    /// Copies header `h`'s bytes, as many as its length (for a header with a variable part,
    /// its current length): 8-byte pieces, the last one overlapping the one before instead of
    /// reading or writing past the end.
    fn copy_header(&mut self, h: HeaderId, src: Value, dst: Value) {
        let hd = &self.p.headers[h];
        let Some(lv) = self.hlen[h] else {
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

    fn copy_fixed_at(&mut self, src: Value, dst: Value, off: usize, t: Type) {
        let x = self.b.ins().load(t, self.pkt_flags, src, off as i32);
        self.b.ins().store(self.pkt_flags, x, dst, off as i32);
    }

    /// Copies `len` bytes (known at compile time) in the widest pieces, the last piece
    /// overlapping the one before instead of reading or writing past the end.
    fn copy_fixed(&mut self, src: Value, dst: Value, len: usize) {
        for (off, t) in pieces(len) {
            let x = self.b.ins().load(t, self.pkt_flags, src, off as i32);
            self.b.ins().store(self.pkt_flags, x, dst, off as i32);
        }
    }

    // One's complement arithmetic on i64 values.
    //
    // `checksum::update` adds 16-bit contributions one at a time with end-around carry. The
    // result of such a chain depends only on the plain sum of its addends (0 if it is 0,
    // otherwise the sum's residue mod 0xffff in 1..=0xffff), so the generated code adds the
    // exact contributions as plain integers and folds once at the end: the same bits.

    /// Folds a value of `width` bits into 16 bits, as `checksum::fold` does (both give v mod
    /// 0xffff, and zero only for zero), with only as many steps as the width needs.
    fn oc_fold(&mut self, v: Value, width: u32) -> Value {
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
    fn fold_sum(&mut self, mut s: Value, rounds: u32) -> Value {
        for _ in 0..rounds {
            let lo = self.b.ins().band_imm_u(s, 0xffff);
            let hi = self.b.ins().ushr_imm_u(s, 16);
            s = self.b.ins().iadd(lo, hi);
        }
        s
    }

    fn oc_not(&mut self, a: Value) -> Value {
        self.b.ins().bxor_imm_u(a, 0xffff)
    }

    /// `checksum::contribution`: the folded value rotated to its place in the word grid.
    fn contribution(&mut self, v: Value, bit_off: u32, width: u32) -> Value {
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
    fn delta(&mut self, old: Value, new: Value, off: u32, w: u32) -> Value {
        let changed = self.b.ins().icmp(IntCC::NotEqual, old, new);
        self.value_or_zero(changed, |tr| {
            let ca = tr.contribution(old, off, w);
            let cb = tr.contribution(new, off, w);
            let n = tr.oc_not(ca);
            tr.b.ins().iadd(n, cb)
        })
    }

    /// An i64 computed on a branch taken when `cond` holds, 0 otherwise.
    fn value_or_zero(&mut self, cond: Value, then: impl FnOnce(&mut Self) -> Value) -> Value {
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
    fn field_deltas(&mut self) -> BTreeMap<(HeaderId, FieldId, u32), Value> {
        let mut out = BTreeMap::new();
        let mut by_header: BTreeMap<HeaderId, Vec<(FieldId, Variable, usize)>> = BTreeMap::new();
        for (&(h, f), &(var, i)) in &self.old {
            by_header.entry(h).or_default().push((f, var, i));
        }
        for (h, snaps) in by_header {
            let v = self.b.use_var(self.valid_mask);
            let e = self.b.use_var(self.extracted_mask);
            let both = self.b.ins().band(v, e);
            let x = self.b.ins().band_imm_u(both, (1u64 << h) as i64);
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
                    let base = tr.b.use_var(tr.base[h]);
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

    fn translate_checksums(&mut self) {
        if self.p.checksums.is_empty() {
            return;
        }
        let deltas = self.field_deltas();
        for c in &self.p.checksums.clone() {
            self.translate_checksum(c, &deltas);
        }
    }

    fn translate_checksum(
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
        let base = self.b.use_var(self.base[c.header]);
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
        let base = self.b.use_var(self.base[c.header]);
        self.store_field(base, coff, 16, v);
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
    }

    /// The incremental update of a parsed header's checksum by the sum of its deltas: to
    /// `store` with the new value, or straight to `done` when they sum to 0.
    fn translate_checksum_update(
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
        let base = self.b.use_var(self.base[c.header]);
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
    fn pseudo_delta(
        &mut self,
        ph: HeaderId,
        pf: super::PseudoFields,
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
            let base = self.b.use_var(self.base[ph]);
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

const BUILTIN_DROP: ActionId = 0;
const BUILTIN_NOACTION: ActionId = 1;

fn unreachable_value(tr: &mut Translator) -> Value {
    tr.b.ins().iconst(types::I8, 0)
}

/// What a condition says about validity once evaluated: (headers valid when it is true,
/// when it is false). A fact learned on the left of `&&` or `||` does not survive a table
/// applied on the right (its action may invalidate the header).
pub(super) fn facts(e: &Expr) -> (u64, u64) {
    match &e.kind {
        ExprKind::Valid(h) if *h < 64 => (1 << h, 0),
        ExprKind::Not(a) => {
            let (p, n) = facts(a);
            (n, p)
        }
        ExprKind::Binary(BinOp::And, a, b) => {
            let (pa, na) = facts(a);
            let (pb, nb) = facts(b);
            let pa = if applies(b) { 0 } else { pa };
            (pa | pb, na & nb)
        }
        ExprKind::Binary(BinOp::Or, a, b) => {
            let (pa, na) = facts(a);
            let (pb, nb) = facts(b);
            let na = if applies(b) { 0 } else { na };
            (pa & pb, na | nb)
        }
        _ => (0, 0),
    }
}

/// Whether evaluating an expression may apply a table.
fn applies(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Apply(..) => true,
        ExprKind::Not(a) | ExprKind::BitNot(a) | ExprKind::Resize(a) => applies(a),
        ExprKind::Binary(_, a, b) => applies(a) || applies(b),
        ExprKind::Hash { fields, max, .. } => fields.iter().any(applies) || applies(max),
        ExprKind::SipHash { fields, .. } => fields.iter().any(applies),
        _ => false,
    }
}

/// Headers extracted on every parser path into each state, and into accept: a forward
/// "must" dataflow over the parser graph.
fn must_extracted(p: &Program) -> (Vec<u64>, u64) {
    let n = p.states.len();
    let mut ins = vec![u64::MAX; n];
    if n > 0 {
        ins[0] = 0;
    }
    let mut accept = u64::MAX;
    // Sets only shrink, so this terminates; programs have a handful of states.
    loop {
        let mut changed = false;
        let mut acc = u64::MAX;
        let mut new_ins = vec![u64::MAX; n];
        if n > 0 {
            new_ins[0] = 0;
        }
        for (i, st) in p.states.iter().enumerate() {
            let out = ins[i] | st.extracted();
            for t in st.targets() {
                match t {
                    Target::State(j) => new_ins[j] &= out,
                    Target::Accept => acc &= out,
                    Target::Reject => {}
                }
            }
        }
        if n > 0 {
            new_ins[0] = 0;
        }
        if new_ins != ins || acc != accept {
            changed = true;
        }
        ins = new_ins;
        accept = acc;
        if !changed {
            break;
        }
    }
    (ins, if accept == u64::MAX { 0 } else { accept })
}

use sluice_runtime::jitview::{JitView, HASH_MUL, KIND_DIRECT, KIND_HASH};
use sluice_runtime::table::Table;

impl Translator<'_, '_> {
    /// A load of one field of table `t`'s view.
    fn view_field(&mut self, view: Value, off: usize) -> Value {
        self.b
            .ins()
            .load(types::I64, self.trusted, view, off as i32)
    }

    /// Looks table `t` up without leaving generated code, for the key shapes of `jitview`.
    /// Falls back to `rt_apply2` if the table at run time has another shape. Returns the
    /// action id with bit 32 set on a hit, and the chosen row.
    fn translate_inline_lookup(&mut self, t: TableId, kind: u64) -> (Value, Value) {
        let table = &self.p.tables[t];
        let keys: Vec<(Value, u32)> = table
            .keys
            .iter()
            .map(|k| (self.translate_expr(&k.expr), k.expr.width))
            .collect();
        let tables_ptr = self.b.ins().load(
            types::I64,
            self.trusted,
            self.ctx,
            offset_of!(JitCtx, tables_ptr) as i32,
        );
        let view_off = t * std::mem::size_of::<Table>() + offset_of!(Table, view);
        let view = self.b.ins().iadd_imm_u(tables_ptr, view_off as i64);
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
        let tid = self.b.ins().iconst(types::I32, t as i64);
        let call = self.b.ins().call(
            self.f.apply2,
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
        let k0 = keys[0].0;
        match kind {
            KIND_DIRECT | KIND_HASH => {
                let packed = match keys.as_slice() {
                    [_] => k0,
                    [_, (k1, _)] => {
                        let w1 = self.view_field(view, offset_of!(JitView, width1));
                        let hi = self.b.ins().ishl(k0, w1);
                        self.b.ins().bor(hi, *k1)
                    }
                    _ => k0,
                };
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
                let range_pos = self.layout.table_keys[t]
                    .iter()
                    .position(|k| k.kind == sluice_runtime::table::MatchKind::Range)
                    .unwrap_or(1);
                let (e, r) = (keys[1 - range_pos].0, keys[range_pos].0);
                let found = self.b.create_block();
                self.b.append_block_param(found, types::I64);
                self.translate_probe(view, e, found, miss_blk);
                self.b.switch_to_block(found);
                let arr = self.b.block_params(found)[0];
                self.translate_slot(arr, r, miss_blk, hit_blk);
            }
        }

        // Hit: the entry's row and counters; the table's hit counter.
        self.b.switch_to_block(hit_blk);
        let h = self.b.block_params(hit_blk)[0];
        let hot = self.view_field(view, offset_of!(JitView, hot));
        let stride = self.view_field(view, offset_of!(JitView, stride));
        let off = self.b.ins().imul(h, stride);
        let off = self.b.ins().ishl_imm_u(off, 4);
        let row = self.b.ins().iadd(hot, off);
        let counters = self.view_field(view, offset_of!(JitView, counters));
        let coff = self.b.ins().ishl_imm_u(h, 4);
        let c = self.b.ins().iadd(counters, coff);
        let n = self.b.ins().load(types::I64, self.trusted, c, 0);
        let n = self.b.ins().iadd_imm_u(n, 1);
        self.b.ins().store(self.trusted, n, c, 0);
        let bytes = self.b.ins().load(types::I64, self.trusted, c, 8);
        let len = self.ctx_var(offset_of!(JitCtx, packet_length));
        let bytes = self.b.ins().iadd(bytes, len);
        self.b.ins().store(self.trusted, bytes, c, 8);
        self.count(offset_of!(JitCtx, table_hits), t);
        // The action's run counter is bumped in its arm of the dispatch, at a constant index.
        let action = self.b.ins().load(types::I32, self.trusted, row, 0);
        let action = self.b.ins().uextend(types::I64, action);
        let r = self.b.ins().bor_imm_u(action, 1i64 << 32);
        self.b
            .ins()
            .jump(done, &[BlockArg::Value(r), BlockArg::Value(row)]);

        // Miss: the default row.
        self.b.switch_to_block(miss_blk);
        let row = self.view_field(view, offset_of!(JitView, default_row));
        self.count(offset_of!(JitCtx, table_misses), t);
        let action = self.b.ins().load(types::I32, self.trusted, row, 0);
        let action = self.b.ins().uextend(types::I64, action);
        self.b
            .ins()
            .jump(done, &[BlockArg::Value(action), BlockArg::Value(row)]);

        self.b.switch_to_block(done);
        let p = self.b.block_params(done);
        (p[0], p[1])
    }

    /// Loads the `u32` handle at `base[idx]` of a direct or range array: `u32::MAX` (an
    /// empty slot) jumps to `miss`, any other handle to `hit(handle)`.
    fn translate_slot(
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

    /// Linear probing in a view's hash table: jumps to `found(value)` or `miss`.
    fn translate_probe(
        &mut self,
        view: Value,
        key: Value,
        found: cranelift_codegen::ir::Block,
        miss: cranelift_codegen::ir::Block,
    ) {
        let keys = self.view_field(view, offset_of!(JitView, keys));
        let vals = self.view_field(view, offset_of!(JitView, vals));
        let shift = self.view_field(view, offset_of!(JitView, shift));
        let mul = self.b.ins().iconst(types::I64, HASH_MUL as i64);
        let h = self.b.ins().imul(key, mul);
        let i0 = self.b.ins().ushr(h, shift);
        let probe = self.b.create_block();
        self.b.append_block_param(probe, types::I64);
        self.b.ins().jump(probe, &[BlockArg::Value(i0)]);
        self.b.switch_to_block(probe);
        let i = self.b.block_params(probe)[0];
        let off = self.b.ins().ishl_imm_u(i, 3);
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

    /// Adds one to a counter array of the context at a constant index (in bounds: `fits`
    /// checked the arrays' lengths against the program's tables and actions).
    fn count(&mut self, field: usize, index: usize) {
        let arr = self
            .b
            .ins()
            .load(types::I64, self.trusted, self.ctx, field as i32);
        let off = (index * 8) as i32;
        let n = self.b.ins().load(types::I64, self.trusted, arr, off);
        let n = self.b.ins().iadd_imm_u(n, 1);
        self.b.ins().store(self.trusted, n, arr, off);
    }
}

/// How many low bits of an expression's value are 0 whatever the packet (up to its width):
/// products and left shifts add them up, sums and differences keep the fewer.
fn known_zero_low_bits(e: &Expr) -> u32 {
    let z = match &e.kind {
        ExprKind::Const(0) => e.width,
        ExprKind::Const(c) => c.trailing_zeros(),
        ExprKind::Binary(BinOp::Mul, a, b) => {
            known_zero_low_bits(a).saturating_add(known_zero_low_bits(b))
        }
        ExprKind::Binary(BinOp::Shl, a, b) => match b.kind {
            ExprKind::Const(k) => known_zero_low_bits(a).saturating_add(k.min(128) as u32),
            _ => known_zero_low_bits(a),
        },
        ExprKind::Binary(BinOp::BitAnd, a, b) => known_zero_low_bits(a).max(known_zero_low_bits(b)),
        ExprKind::Binary(BinOp::Add | BinOp::Sub | BinOp::BitOr | BinOp::BitXor, a, b) => {
            known_zero_low_bits(a).min(known_zero_low_bits(b))
        }
        ExprKind::Resize(a) => known_zero_low_bits(a),
        _ => 0,
    };
    z.min(e.width)
}

/// Whether any statement of the program recirculates.
fn program_recirculates(p: &Program) -> bool {
    p.statements()
        .into_iter()
        .any(|st| matches!(st, Stmt::Recirculate))
}
