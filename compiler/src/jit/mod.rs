//! The Cranelift backend: the pipeline IR compiled to one native function per program.
//!
//! Compiling is a fixed sequence (declare the `rt_*` imports, translate, define, finalize, get
//! the pointer). [`JitProgram::process`] has the same contract as the interpreter's: same
//! bytes, verdicts and counters.

mod rt;
mod translate;

use crate::ir::*;
use cranelift_codegen::ir::{types, AbiParam, UserFuncName};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};
use rt::{DepEntry, JitCtx, MAX_ARGS};
use sluice_runtime::packet::{PacketBuf, PacketMeta, Verdict};
use sluice_runtime::stats::Stats;
use sluice_runtime::table::TableSet;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Why a program could not be compiled to native code.
#[derive(Debug)]
pub struct JitError(pub String);

impl fmt::Display for JitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JIT: {}", self.0)
    }
}

impl std::error::Error for JitError {}

/// The IPv4 fields the pseudo-header uses, by field id.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PseudoFields {
    pub ihl: FieldId,
    pub total_len: FieldId,
    pub protocol: FieldId,
    pub src: FieldId,
    pub dst: FieldId,
}

/// Decisions made before translation.
pub(crate) struct Layout {
    /// Offset of each header's scratch storage.
    pub scratch_off: Vec<usize>,
    pub scratch_len: usize,
    /// Fields whose parse-time value a checksum update needs: covered by a checksum (or part
    /// of a pseudo-header) and written somewhere in the program.
    pub snapshot: BTreeSet<(HeaderId, FieldId)>,
    /// Bit h: some parser state extracts header h. Any other header is only ever pushed, so
    /// it has no parse-time values and no incremental checksum update.
    pub extractable: u64,
    pub pseudo_fields: BTreeMap<HeaderId, PseudoFields>,
    /// Whether "the valid headers are the extracted ones" implies an unchanged layout.
    pub fast_deparse: bool,
    /// Per deparser entry: whether it can never move (see `never_moves`).
    pub in_place: Vec<bool>,
    /// Each table's key, as the runtime describes it: decides the inline lookup's shape.
    pub table_keys: Vec<Vec<sluice_runtime::table::KeyField>>,
    /// The staging area: `rt_deparse`'s part first, then one slot per deparser entry where
    /// the inline deparser keeps a header that moves (`dep_slot[i]`).
    pub staging_len: usize,
    pub dep_slot: Vec<usize>,
    /// The (valid, extracted) masks, different from each other, that a packet can reach the
    /// deparser with (see `deparse_masks`): each gets a deparser of its own. Empty without
    /// `fast_deparse`.
    pub deparse_masks: Vec<(u64, u64)>,
}

fn written_fields(p: &Program) -> BTreeSet<(HeaderId, FieldId)> {
    p.statements()
        .into_iter()
        .filter_map(|st| match st {
            Stmt::SetField(h, f, _) => Some((*h, *f)),
            _ => None,
        })
        .collect()
}

/// Deparser entries that never move: with `fast_deparse`, a header that nothing makes valid
/// (so it is valid only if this pass extracted it) and after which, in deparser order, no
/// header's validity ever changes, is either invalid or still where the parser found it.
fn never_moves(p: &Program, fast_deparse: bool) -> Vec<bool> {
    let mut out = vec![false; p.deparser.len()];
    if !fast_deparse {
        return out;
    }
    // Headers that some statement makes valid, and those whose validity changes at all.
    let mut made_valid = BTreeSet::new();
    let mut changed = BTreeSet::new();
    for st in p.statements() {
        match st {
            Stmt::SetValid(h) => {
                made_valid.insert(*h);
                changed.insert(*h);
            }
            Stmt::SetInvalid(h) => {
                changed.insert(*h);
            }
            _ => {}
        }
    }
    for i in (0..p.deparser.len()).rev() {
        let after_fixed = p.deparser[i + 1..].iter().all(|g| !changed.contains(g));
        out[i] = after_fixed && !made_valid.contains(&p.deparser[i]);
    }
    out
}

/// Most (valid, extracted) combinations the deparser is specialized for; a program that
/// can reach more keeps the general deparser alone.
const MAX_DEPARSE_MASKS: usize = 64;

/// The (valid, extracted) header masks with which a packet can reach the deparser, where
/// they differ (a header pushed or popped): what the control block does to validity, run
/// over every parser path's extracted set, with conditions on `h.valid` taken into account.
/// An over-approximation (other conditions go both ways, a drop may be overridden); `None`
/// where the sets grow past `MAX_DEPARSE_MASKS` or the program has more than 32 headers.
fn deparse_masks(p: &Program) -> Option<Vec<(u64, u64)>> {
    if p.headers.len() > 32 || p.states.is_empty() {
        return None;
    }
    // Every parser path to accept, by what it extracted (a loop's paths are bounded by the
    // work allowed: past it, no specialization).
    let mut starts = BTreeSet::new();
    let mut stack = vec![(0usize, 0u64)];
    let mut work = 0;
    while let Some((st, m)) = stack.pop() {
        work += 1;
        if work > 4096 || starts.len() > MAX_DEPARSE_MASKS {
            return None;
        }
        let m = m | p.states[st].extracted();
        for t in p.states[st].targets() {
            match t {
                Target::Accept => {
                    starts.insert((m, m));
                }
                Target::Reject => {}
                Target::State(n) => stack.push((n, m)),
            }
        }
    }
    let out = masks_after(p, &p.control, starts)?;
    Some(out.into_iter().filter(|(v, e)| v != e).collect())
}

type Masks = BTreeSet<(u64, u64)>;

fn masks_after(p: &Program, stmts: &[Stmt], mut s: Masks) -> Option<Masks> {
    let map = |s: &Masks, f: &dyn Fn(u64) -> u64| s.iter().map(|&(v, e)| (f(v), e)).collect();
    for st in stmts {
        s = match st {
            Stmt::SetValid(h) => map(&s, &|v| v | 1 << h),
            Stmt::SetInvalid(h) => map(&s, &|v| v & !(1 << h)),
            Stmt::If(c, a, b) => {
                let s = masks_of_expr(p, c, s)?;
                let (t, f) = translate::facts(c);
                let keep =
                    |m: u64| -> Masks { s.iter().filter(|x| x.0 & m == m).copied().collect() };
                let mut out = masks_after(p, a, keep(t))?;
                out.extend(masks_after(p, b, keep(f))?);
                out
            }
            Stmt::Apply(t) => masks_of_apply(p, *t, &s, |_| &[])?,
            Stmt::Switch(t, arms, default) => masks_of_apply(p, *t, &s, |a| {
                arms.iter()
                    .find(|(x, _)| *x == a)
                    .map_or(default.as_slice(), |(_, b)| b.as_slice())
            })?,
            Stmt::Call(a, args) => {
                let mut s = s;
                for e in args {
                    s = masks_of_expr(p, e, s)?;
                }
                masks_after(p, &p.actions[*a].body, s)?
            }
            Stmt::SetField(_, _, e) | Stmt::SetMeta(_, e) | Stmt::Forward(e) => {
                masks_of_expr(p, e, s)?
            }
            Stmt::Drop(_) | Stmt::Recirculate => s,
        };
        if s.len() > MAX_DEPARSE_MASKS {
            return None;
        }
    }
    Some(s)
}

/// A table applied: any of its actions (and the built-ins) may run, then `then(action)`.
fn masks_of_apply<'p>(
    p: &'p Program,
    t: TableId,
    s: &Masks,
    then: impl Fn(ActionId) -> &'p [Stmt],
) -> Option<Masks> {
    let table = &p.tables[t];
    let mut ids: Vec<ActionId> = table.actions.clone();
    ids.push(table.default.0);
    ids.extend([0, 1]);
    ids.sort_unstable();
    ids.dedup();
    let mut out = Masks::new();
    for a in ids {
        let after = masks_after(p, &p.actions[a].body, s.clone())?;
        out.extend(masks_after(p, then(a), after)?);
    }
    Some(out)
}

/// Tables that an expression applies change the masks as their actions do.
fn masks_of_expr(p: &Program, e: &Expr, s: Masks) -> Option<Masks> {
    match &e.kind {
        ExprKind::Apply(t, _) => masks_of_apply(p, *t, &s, |_| &[]),
        ExprKind::Binary(_, a, b) => {
            let s = masks_of_expr(p, a, s)?;
            masks_of_expr(p, b, s)
        }
        ExprKind::Not(a) | ExprKind::BitNot(a) | ExprKind::Resize(a) => masks_of_expr(p, a, s),
        ExprKind::Hash { fields, max, .. } => {
            let mut s = s;
            for f in fields {
                s = masks_of_expr(p, f, s)?;
            }
            masks_of_expr(p, max, s)
        }
        ExprKind::SipHash { fields, .. } => {
            let mut s = s;
            for f in fields {
                s = masks_of_expr(p, f, s)?;
            }
            Some(s)
        }
        _ => Some(s),
    }
}

fn field_at(h: &Header, off: u32, w: u32) -> Option<FieldId> {
    h.fields
        .iter()
        .position(|f| f.bit_offset == off && f.width == w)
}

/// Every parser path extracts headers in deparser order, each once, all of them emitted, and
/// the parser has no loops: then equal valid and extracted sets mean an unchanged layout.
fn fast_deparse_ok(p: &Program) -> bool {
    if p.headers.len() > 64 {
        return false;
    }
    let pos: BTreeMap<HeaderId, usize> = p
        .deparser
        .iter()
        .enumerate()
        .map(|(i, h)| (*h, i))
        .collect();
    // Depth-first over paths, with a budget so that pathological graphs just take the slow path.
    let mut budget = 10_000usize;
    fn succ(s: &State) -> Vec<StateId> {
        s.targets()
            .into_iter()
            .filter_map(|t| match t {
                Target::State(s) => Some(s),
                _ => None,
            })
            .collect()
    }
    fn go(
        p: &Program,
        s: StateId,
        last: Option<usize>,
        on_path: &mut Vec<bool>,
        pos: &BTreeMap<HeaderId, usize>,
        budget: &mut usize,
    ) -> bool {
        if *budget == 0 || on_path[s] {
            return false;
        }
        *budget -= 1;
        on_path[s] = true;
        let mut last = last;
        let mut ok = true;
        for op in &p.states[s].ops {
            if let ParserOp::Extract { header, .. } = op {
                match pos.get(header) {
                    Some(&i) if last.is_none_or(|l| i > l) => last = Some(i),
                    _ => ok = false,
                }
            }
        }
        if ok {
            for t in succ(&p.states[s]) {
                if !go(p, t, last, on_path, pos, budget) {
                    ok = false;
                    break;
                }
            }
        }
        on_path[s] = false;
        ok
    }
    let mut on_path = vec![false; p.states.len()];
    !p.states.is_empty() && go(p, 0, None, &mut on_path, &pos, &mut budget)
}

fn layout(p: &Program) -> Layout {
    let mut scratch_off = Vec::new();
    let mut off = 0usize;
    for h in &p.headers {
        scratch_off.push(off);
        // Room for 8-byte zeroing stores and for loads up to 16 bytes past a field.
        off += (h.max_bytes() + 8).next_multiple_of(16) + 16;
    }
    let written = written_fields(p);
    let extractable = p.states.iter().fold(0, |m, s| m | s.extracted());
    let parsed = |h: HeaderId| h < 64 && extractable & (1 << h) != 0;
    let mut snapshot = BTreeSet::new();
    let mut pseudo_fields = BTreeMap::new();
    for c in &p.checksums {
        let h = &p.headers[c.header];
        for f in 0..h.fields.len() {
            if f != c.field && parsed(c.header) && written.contains(&(c.header, f)) {
                snapshot.insert((c.header, f));
            }
        }
        if let Some(ph) = c.pseudo {
            let hh = &p.headers[ph];
            // The checker guarantees the IPv4 layout.
            if let (Some(ihl), Some(total_len), Some(protocol), Some(src), Some(dst)) = (
                field_at(hh, 4, 4),
                field_at(hh, 16, 16),
                field_at(hh, 72, 8),
                field_at(hh, 96, 32),
                field_at(hh, 128, 32),
            ) {
                let pf = PseudoFields {
                    ihl,
                    total_len,
                    protocol,
                    src,
                    dst,
                };
                for f in [ihl, total_len, protocol, src, dst] {
                    if parsed(ph) && written.contains(&(ph, f)) {
                        snapshot.insert((ph, f));
                    }
                }
                // ihl and total_len go together into the upper-layer length.
                if snapshot.contains(&(ph, ihl)) || snapshot.contains(&(ph, total_len)) {
                    snapshot.insert((ph, ihl));
                    snapshot.insert((ph, total_len));
                }
                pseudo_fields.insert(ph, pf);
            }
        }
    }
    // rt_deparse needs the headroom plus every header; the inline deparser a slot per entry.
    let mut staging_len = p.headroom + p.headers.iter().map(|h| h.max_bytes()).sum::<usize>();
    let mut dep_slot = Vec::new();
    for &h in &p.deparser {
        dep_slot.push(staging_len);
        staging_len += p.headers[h].max_bytes().next_multiple_of(8) + 8;
    }
    let fast_deparse = fast_deparse_ok(p);
    Layout {
        staging_len,
        dep_slot,
        scratch_off,
        scratch_len: off,
        snapshot,
        extractable,
        pseudo_fields,
        fast_deparse,
        deparse_masks: if fast_deparse {
            deparse_masks(p).unwrap_or_default()
        } else {
            Vec::new()
        },
        in_place: never_moves(p, fast_deparse),
        table_keys: p.tables.iter().map(crate::key_fields).collect(),
    }
}

type EntryFn = unsafe extern "C" fn(*mut JitCtx, *mut u8, u64, u64, u64) -> u64;

/// A program compiled to native code, with the memory its code uses.
pub struct JitProgram {
    entry: EntryFn,
    prog: Program,
    scratch: Vec<u8>,
    dep: Vec<DepEntry>,
    staging: Vec<u8>,
    ctx: Box<JitCtx>,
    /// The Cranelift IR, kept for `--emit clif`.
    pub clif: String,
    /// The machine code as Cranelift prints it, for `--emit asm`.
    pub asm: Option<String>,
    /// How many (valid, extracted) header layouts got a deparser of their own (see
    /// `deparse_masks`); 0 for a program that never pushes or pops a header.
    pub layout_deparsers: usize,
    // Owns the code `entry` points into; the last field, so it is dropped last.
    _module: JITModule,
}

fn isa_flags() -> Result<settings::Flags, JitError> {
    let mut fb = settings::builder();
    let set = |fb: &mut settings::Builder, k: &str, v: &str| {
        fb.set(k, v)
            .map_err(|e| JitError(format!("setting {k}: {e}")))
    };
    set(&mut fb, "use_colocated_libcalls", "false")?;
    set(&mut fb, "is_pic", "false")?;
    set(&mut fb, "opt_level", "speed")?;
    set(&mut fb, "enable_verifier", "true")?;
    Ok(settings::Flags::new(fb))
}

impl JitProgram {
    /// Compiles a program. `want_asm` keeps a disassembly of the machine code.
    pub fn compile(p: &Program, want_asm: bool) -> Result<JitProgram, JitError> {
        // Generated code reads and writes network-order fields with a byte swap.
        if cfg!(target_endian = "big") {
            return Err(JitError(
                "the JIT needs a little-endian machine; use --backend interp".into(),
            ));
        }
        if p.actions.iter().any(|a| a.params.len() > MAX_ARGS) {
            return Err(JitError(format!(
                "an action has more than {MAX_ARGS} parameters"
            )));
        }
        let isa = cranelift_native::builder()
            .map_err(|e| JitError(format!("this machine is not supported: {e}")))?
            .finish(isa_flags()?)
            .map_err(|e| JitError(e.to_string()))?;
        let mut jb = JITBuilder::with_isa(isa, default_libcall_names());
        jb.symbol("rt_apply", rt::rt_apply as *const u8);
        jb.symbol("rt_deparse", rt::rt_deparse as *const u8);
        jb.symbol("rt_hash", rt::rt_hash as *const u8);
        jb.symbol("rt_siphash", rt::rt_siphash as *const u8);
        jb.symbol("rt_apply2", rt::rt_apply2 as *const u8);
        let mut module = JITModule::new(jb);
        let ptr = types::I64;
        let sigs = translate::rt_signatures(|| module.make_signature());
        let names = [
            "rt_apply",
            "rt_deparse",
            "rt_hash",
            "rt_siphash",
            "rt_apply2",
        ];
        let mut ids = Vec::new();
        for (n, s) in names.iter().zip(&sigs) {
            ids.push(
                module
                    .declare_function(n, Linkage::Import, s)
                    .map_err(|e| JitError(e.to_string()))?,
            );
        }
        let mut sig = module.make_signature();
        for _ in 0..5 {
            sig.params.push(AbiParam::new(ptr));
        }
        sig.returns.push(AbiParam::new(types::I64));
        let func = module
            .declare_function("sluice_pipeline", Linkage::Local, &sig)
            .map_err(|e| JitError(e.to_string()))?;
        let mut ctx: Context = module.make_context();
        ctx.func.signature = sig;
        ctx.func.name = UserFuncName::user(0, func.as_u32());
        ctx.set_disasm(want_asm);
        let lay = layout(p);
        let layout_deparsers;
        let mut fctx = FunctionBuilderContext::new();
        {
            let b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
            let funcs = translate::Funcs {
                apply: module.declare_func_in_func(ids[0], b.func),
                deparse: module.declare_func_in_func(ids[1], b.func),
                hash: module.declare_func_in_func(ids[2], b.func),
                siphash: module.declare_func_in_func(ids[3], b.func),
                apply2: module.declare_func_in_func(ids[4], b.func),
            };
            b.func.collect_debug_info();
            let tr = translate::Translator::new(b, p, &lay, funcs, module.target_config());
            layout_deparsers = tr.translate_program();
        }
        let clif = ctx.func.display().to_string();
        module
            .define_function(func, &mut ctx)
            .map_err(|e| JitError(format!("{e:?}")))?;
        let asm = ctx.compiled_code().and_then(|c| c.vcode.clone());

        module.clear_context(&mut ctx);
        module
            .finalize_definitions()
            .map_err(|e| JitError(e.to_string()))?;
        let code = module.get_finalized_function(func);
        // SAFETY: the function was declared with this signature (five pointer-sized integers
        // in, one out) and uses the platform's C calling convention.
        let entry = unsafe { std::mem::transmute::<*const u8, EntryFn>(code) };
        let mut jp = JitProgram {
            _module: module,
            entry,
            scratch: vec![0; lay.scratch_len.max(16)],
            dep: vec![DepEntry::default(); p.deparser.len().max(1)],
            staging: vec![0; lay.staging_len],
            prog: p.clone(),
            ctx: Box::new(JitCtx {
                ingress_port: 0,
                ts_sec: 0,
                ts_nsec: 0,
                packet_length: 0,
                pass_len: 0,
                pass: 0,
                tables: std::ptr::null(),
                stats: std::ptr::null_mut(),
                action_runs: std::ptr::null_mut(),
                table_hits: std::ptr::null_mut(),
                table_misses: std::ptr::null_mut(),
                tables_ptr: std::ptr::null(),
                args: [0; MAX_ARGS],
                row: std::ptr::null(),
                scratch: std::ptr::null_mut(),
                dep: std::ptr::null_mut(),
                dep_len: 0,
                out_head: 0,
                out_len: 0,
                staging: std::ptr::null_mut(),
                staging_len: 0,
            }),
            clif,
            asm,
            layout_deparsers,
        };
        // The buffers are never resized, so these pointers stay valid as long as the program.
        jp.ctx.scratch = jp.scratch.as_mut_ptr();
        jp.ctx.dep = jp.dep.as_mut_ptr();
        jp.ctx.dep_len = jp.dep.len() as u64;
        jp.ctx.staging = jp.staging.as_mut_ptr();
        jp.ctx.staging_len = jp.staging.len() as u64;
        Ok(jp)
    }

    pub fn program(&self) -> &Program {
        &self.prog
    }

    /// Runs a packet through the program and counts it, like `Interp::process`.
    ///
    /// Inlined into the caller's packet loop: what runs per packet here is a few counter
    /// bumps, the context's per-packet fields and the call.
    #[inline]
    pub fn process(
        &mut self,
        tables: &TableSet,
        stats: &mut Stats,
        pkt: &mut PacketBuf,
        meta: &PacketMeta,
    ) -> Verdict {
        stats.count_in(meta.ingress_port);
        // Generated code indexes the tables and counters by the program's ids: refuse others.
        if !self.fits(tables, stats) {
            stats.count_drop(reason::NO_FORWARD as u16);
            return Verdict::Drop(reason::NO_FORWARD as u16);
        }
        // Generated code runs every pass of a packet that recirculates.
        self.set_tables(tables, stats);
        let verdict = verdict_of(self.run_pass(stats, pkt, meta));
        stats.count_verdict(verdict);
        verdict
    }

    /// Runs a batch of packets, as the switch loop does: `out[i]` is the verdict of
    /// `pkts[i]`, which arrived with `metas[i]`. The same results and counters as `process`
    /// on each in turn; the checks that do not depend on the packet are made once. The three
    /// slices have the same length (only the shortest's worth of packets is run otherwise).
    pub fn process_batch(
        &mut self,
        tables: &TableSet,
        stats: &mut Stats,
        pkts: &mut [PacketBuf],
        metas: &[PacketMeta],
        out: &mut [Verdict],
    ) {
        debug_assert!(pkts.len() == metas.len() && pkts.len() == out.len());
        let n = pkts.len().min(metas.len()).min(out.len());
        let (pkts, metas, out) = (&mut pkts[..n], &metas[..n], &mut out[..n]);
        if !self.fits(tables, stats) {
            for ((pkt, meta), v) in pkts.iter_mut().zip(metas).zip(out.iter_mut()) {
                *v = self.process(tables, stats, pkt, meta);
            }
            return;
        }
        self.set_tables(tables, stats);
        for ((pkt, meta), v) in pkts.iter_mut().zip(metas).zip(out.iter_mut()) {
            stats.count_in(meta.ingress_port);
            *v = verdict_of(self.run_pass(stats, pkt, meta));
            stats.count_verdict(*v);
        }
    }

    #[inline]
    fn fits(&self, tables: &TableSet, stats: &Stats) -> bool {
        let n = self.prog.tables.len();
        tables.tables.len() == n
            && stats.table_hits.len() == n
            && stats.table_misses.len() == n
            && stats.action_runs.len() == self.prog.actions.len()
            && stats.dropped.len() >= self.prog.drop_reasons.len()
    }

    /// Points the context at the tables and at the counter arrays that generated code
    /// updates in place. The arrays are the vectors' own buffers, which counting other
    /// things (`count_in`, `count_forward`) neither moves nor borrows.
    #[inline(always)]
    fn set_tables(&mut self, tables: &TableSet, stats: &mut Stats) {
        let ctx = &mut *self.ctx;
        ctx.tables = tables;
        ctx.tables_ptr = tables.tables.as_ptr();
        ctx.action_runs = stats.action_runs.as_mut_ptr();
        ctx.table_hits = stats.table_hits.as_mut_ptr();
        ctx.table_misses = stats.table_misses.as_mut_ptr();
    }

    #[inline(always)]
    fn run_pass(&mut self, stats: &mut Stats, pkt: &mut PacketBuf, meta: &PacketMeta) -> u64 {
        let packet_length = u64::from(pkt.orig_len);
        let (buf, head, len) = pkt.raw_parts_mut();
        // The context lives as long as the program and points at its buffers from the start;
        // only what changes per packet is set.
        let ctx = &mut *self.ctx;
        ctx.ingress_port = u64::from(meta.ingress_port);
        ctx.ts_sec = meta.ts_sec;
        ctx.ts_nsec = u64::from(meta.ts_nsec);
        ctx.packet_length = packet_length;
        ctx.pass = 0;
        ctx.pass_len = len as u64;
        // Derived from this call's borrow of the stats, so set for every packet (the table
        // and counter arrays are set once per call, by `set_tables`).
        ctx.stats = stats;
        ctx.out_head = head as u64;
        ctx.out_len = len as u64;
        // The buffer must have the headroom and tailroom that generated code relies on.
        let code = if head < self.prog.headroom
            || buf.len() < head + len + sluice_runtime::packet::TAILROOM
        {
            (1u64 << 32) | reason::PARSER_TRUNCATED as u64
        } else {
            // SAFETY: the entry point was compiled for this program; ctx and the buffer are
            // valid for the duration of the call, and the buffer has the headroom and
            // tailroom that the generated code's loads and stores stay within.
            unsafe {
                (self.entry)(
                    ctx,
                    buf.as_mut_ptr(),
                    head as u64,
                    len as u64,
                    buf.len() as u64,
                )
            }
        };
        let (h, l) = (ctx.out_head as usize, ctx.out_len as usize);
        if ctx.pass != 0 {
            // It came round: the wire length changes by the last pass's move, from what it
            // was when that pass began, as the interpreter changes it pass by pass.
            set_window_from(pkt, h, l, ctx.packet_length, ctx.pass_len);
        } else if (h, l) != (head, len) {
            set_window(pkt, h, l);
        }
        code
    }
}

/// Generated code's result: the port with bit 32 clear, or the drop reason with it set.
#[inline]
fn verdict_of(code: u64) -> Verdict {
    if code >> 32 == 0 {
        Verdict::Forward(code as u16)
    } else {
        Verdict::Drop(code as u16)
    }
}

#[inline]
fn set_window_from(pkt: &mut PacketBuf, head: usize, len: usize, orig: u64, len_before: u64) {
    let orig = u32::try_from(orig).unwrap_or(u32::MAX);
    let ok = pkt.set_window_from(head, len, orig, len_before as usize);
    debug_assert!(ok, "deparser produced a window outside the buffer");
}

#[inline]
fn set_window(pkt: &mut PacketBuf, head: usize, len: usize) {
    let ok = pkt.set_window(head, len);
    debug_assert!(ok, "deparser produced a window outside the buffer");
}
