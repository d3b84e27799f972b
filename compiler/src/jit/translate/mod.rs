//! IR to Cranelift IR: one `translate_*` method per construct, on one `Translator`, split by
//! concern (parser, headers and fields, values, expressions, statements, tables, deparser,
//! checksums). Values of up to 64 bits are `i64`, wider ones `i128`, conditions `i8`.
//! Header fields are read and written in place, in the packet buffer, relying on the bounds
//! the parser checked once per extract.
//!
//! Rules every part keeps:
//! - Generated code reads and writes only the packet buffer (headroom and tailroom
//!   included), the scratch and staging areas, the context, the tables' views and the stack.
//! - Blocks are sealed at the end (`seal_all_blocks`): create, branch and switch freely.
//! - The verdict is one variable (kind and port or reason); a forward or a drop replaces it
//!   whole, and only the exit reads it.
//! - What the analyses (`crate::analysis`) say is trusted: a header in `known` is valid, a
//!   layout not in the deparse masks does not occur except through the general deparser.

mod checksum;
mod deparse;
mod expr;
mod header;
mod parser;
mod prefetch;
pub(super) use prefetch::prefetch_table;
mod stmt;
mod table;
mod value;

use super::rt::{JitCtx, Rt, RT_COUNT};
use super::Layout;
use crate::analysis::{condition_facts, known_zero_low_bits};
use crate::ir::*;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    types, Block, BlockArg, FuncRef, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, Type,
    Value,
};
use cranelift_codegen::isa::TargetFrontendConfig;
use cranelift_frontend::{FunctionBuilder, Switch, Variable};
use std::collections::BTreeMap;
use std::mem::offset_of;

pub(super) const CODE_FORWARD: u64 = 0;
pub(super) const CODE_DROP: u64 = 1 << 32;

pub(super) struct Translator<'a, 'b> {
    pub b: FunctionBuilder<'b>,
    p: &'a Program,
    layout: &'a Layout,
    /// The runtime functions, declared in this function, by `Rt`.
    rt: [Option<FuncRef>; RT_COUNT],
    ctx: Value,
    buf: Value,
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

/// A runtime function, declared in the function being built (the crypto ones only in
/// programs that seal or open, which are the only ones that call them). A function of the
/// array rather than a method, so that it borrows the array alone while the builder is
/// borrowed mutably.
fn rt_fn(rt: &[Option<FuncRef>; RT_COUNT], r: Rt) -> FuncRef {
    rt[r as usize].expect("runtime function declared for this program")
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
    /// Sets up the entry block: `fn(ctx, buf, head, len) -> code`.
    pub fn new(
        mut b: FunctionBuilder<'b>,
        p: &'a Program,
        layout: &'a Layout,
        funcs: [Option<FuncRef>; RT_COUNT],
        frontend: TargetFrontendConfig,
    ) -> Self {
        let trusted = MemFlagsData::trusted();
        let pkt_flags = MemFlagsData::new().with_notrap();
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        b.seal_block(entry);
        let params = b.block_params(entry).to_vec();
        let (ctx, buf, head, len) = (params[0], params[1], params[2], params[3]);
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
        let recirculates = layout.facts.recirculates;
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
            rt: funcs,
            ctx,
            buf,
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
        let accept = self.translate_parser();
        self.b.switch_to_block(accept);
        self.known = self.layout.facts.must_extracted.accept;
        let p = self.p;
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
        self.translate_crypto();
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
        let nf = self.b.ins().iconst(
            types::I64,
            (CODE_DROP | reason::NO_FORWARD.index() as u64) as i64,
        );
        let code = self.b.ins().select(is_fw, fw_code, nf);
        self.b.ins().jump(self.exit, &[BlockArg::Value(code)]);
        self.b.switch_to_block(self.exit);
        let code = self.b.block_params(self.exit)[0];
        self.b.ins().return_(&[code]);
        self.b.seal_all_blocks();
        self.b.finalize(self.frontend);
        self.layout_deparsers
    }

    /// The parser's states, from the entry block; returns the block that `accept` reaches,
    /// not yet switched to. (Parser states read the packet and set metadata: no stores.)
    fn translate_parser(&mut self) -> Block {
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
        let must = &self.layout.facts.must_extracted;
        for (i, s) in p.states.iter().enumerate() {
            self.b.switch_to_block(states[i]);
            self.known = must.into[i];
            self.translate_state(s, visits[i], &states, accept);
        }
        accept
    }

    /// After the deparser, the pass's `seal` or `open`, if one ran (`rt_crypto`), for a
    /// program that has them: the tunnel header's place in the packet the deparser made is
    /// the lengths of the valid headers before it, in deparser order.
    fn translate_crypto(&mut self) {
        let headers: Vec<HeaderId> = self.layout.facts.tunnel_headers.iter().copied().collect();
        if headers.is_empty() {
            return;
        }
        let op = self.ctx_var(offset_of!(JitCtx, crypto_op));
        let run = self.b.create_block();
        let after = self.b.create_block();
        self.b.ins().brif(op, run, &[], after, &[]);
        self.b.switch_to_block(run);
        let which = self.ctx_var(offset_of!(JitCtx, crypto_hdr));
        let zero = self.b.ins().iconst(types::I64, 0);
        let (mut header, mut region, mut valid) = (zero, zero, zero);
        for h in headers {
            let mut off = zero;
            for &g in &self.p.deparser {
                if g == h {
                    break;
                }
                let v = self.is_valid(g);
                let len = self.header_len(g);
                let grown = self.b.ins().iadd(off, len);
                off = self.b.ins().select(v, grown, off);
            }
            let v = self.is_valid(h);
            let len = self.header_len(h);
            let past = self.b.ins().iadd(off, len);
            let r = self.b.ins().select(v, past, off);
            let v = self.b.ins().uextend(types::I64, v);
            let is = self
                .b
                .ins()
                .icmp_imm_u(IntCC::Equal, which, h.index() as i64);
            header = self.b.ins().select(is, off, header);
            region = self.b.ins().select(is, r, region);
            valid = self.b.ins().select(is, v, valid);
        }
        let call = self.b.ins().call(
            rt_fn(&self.rt, Rt::Crypto),
            &[self.ctx, self.buf, header, region, valid],
        );
        let code = self.b.inst_results(call)[0];
        let fail = self.b.create_block();
        self.b.ins().brif(code, fail, &[], after, &[]);
        self.b.switch_to_block(fail);
        self.b.ins().jump(self.exit, &[BlockArg::Value(code)]);
        self.b.switch_to_block(after);
    }

    /// The packet comes round again: the next pass starts with the window this pass's
    /// deparser left, the metadata as it is, and the wire length changed by as much as the
    /// window did (as `PacketBuf::set_window` changes `orig_len`). After the last pass
    /// allowed, the packet is dropped instead.
    fn translate_recirculate(&mut self) {
        let Some(pass_head) = self.pass_head else {
            // A program without recirculate() never gets here.
            return self.exit_with(CODE_DROP | reason::RECIRCULATION_LIMIT.index() as u64);
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
    fn drop_if(&mut self, cond: Value, reason: ReasonId) {
        let fail = self.b.create_block();
        let ok = self.b.create_block();
        self.b.ins().brif(cond, fail, &[], ok, &[]);
        self.b.switch_to_block(fail);
        self.exit_with(CODE_DROP | reason.index() as u64);
        self.b.switch_to_block(ok);
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

    /// A context field that does not change during a call, loaded where it is used (keeping
    /// it in a register from the entry on would only add spills).
    fn ctx_field(&mut self, off: usize) -> Value {
        let ro = self.trusted.with_readonly();
        self.b.ins().load(types::I64, ro, self.ctx, off as i32)
    }

    /// A context field that changes when the packet comes round again (the pass, the wire
    /// length, the window): a plain load, never hoisted over the stores that change it.
    fn ctx_var(&mut self, off: usize) -> Value {
        self.b
            .ins()
            .load(types::I64, self.trusted, self.ctx, off as i32)
    }
}
