//! The Cranelift backend: the pipeline IR compiled to one native function per program.
//!
//! Compiling is a fixed sequence (declare the `rt_*` imports, translate, define, finalize, get
//! the pointer). [`JitProgram::process`] has the same contract as the interpreter's: same
//! bytes, verdicts and counters.

mod rt;
mod translate;

use crate::analysis::Facts;
use crate::ir::*;
use cranelift_codegen::ir::{types, AbiParam, FuncRef, UserFuncName};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};
use rt::{JitCtx, MAX_ARGS};
use sluice_runtime::datapath::{Binding, DatapathError, Pipeline, Worker};
use sluice_runtime::packet::{PacketBuf, PacketMeta, Verdict};
use sluice_runtime::stats::Stats;
use sluice_runtime::table::TableSet;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Why a program could not be compiled to native code.
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    #[error("JIT: the JIT needs a little-endian machine; use --backend interp")]
    BigEndian,
    #[error("JIT: an action has more than {MAX_ARGS} parameters")]
    TooManyArgs,
    #[error("JIT: this machine is not supported: {0}")]
    Unsupported(String),
    /// Cranelift refused the generated code or could not place it: a compiler bug.
    #[error("JIT: {0}")]
    Cranelift(String),
}

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
    /// What the analyses know of the program.
    pub facts: Facts,
    /// Offset of each header's scratch storage.
    pub scratch_off: Vec<usize>,
    pub scratch_len: usize,
    /// Fields whose parse-time value a checksum update needs: covered by a checksum (or part
    /// of a pseudo-header) and written somewhere in the program.
    pub snapshot: BTreeSet<(HeaderId, FieldId)>,
    pub pseudo_fields: BTreeMap<HeaderId, PseudoFields>,
    /// Each table's key, as the runtime describes it: decides the inline lookup's shape.
    pub table_keys: Vec<Vec<sluice_runtime::table::KeyField>>,
    /// The staging area: one slot per deparser entry where the inline deparser keeps a
    /// header that moves (`dep_slot[i]`).
    pub staging_len: usize,
    pub dep_slot: Vec<usize>,
}

fn field_at(h: &Header, off: u32, w: u32) -> Option<FieldId> {
    h.fields
        .iter()
        .position(|f| f.bit_offset == off && f.width == w)
        .map(FieldId)
}

fn layout(p: &Program) -> Layout {
    let facts = Facts::of(p);
    let mut scratch_off = Vec::new();
    let mut off = 0usize;
    for h in &p.headers {
        scratch_off.push(off);
        // Room for 8-byte zeroing stores and for loads up to 16 bytes past a field.
        off += (h.max_bytes() + 8).next_multiple_of(16) + 16;
    }
    let written = &facts.written;
    let parsed = |h: HeaderId| facts.parsed(h);
    let mut snapshot = BTreeSet::new();
    let mut pseudo_fields = BTreeMap::new();
    for c in &p.checksums {
        let h = &p.headers[c.header];
        for f in (0..h.fields.len()).map(FieldId) {
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
    // A slot per deparser entry.
    let mut staging_len = 0;
    let mut dep_slot = Vec::new();
    for &h in &p.deparser {
        dep_slot.push(staging_len);
        staging_len += p.headers[h].max_bytes().next_multiple_of(8) + 8;
    }
    Layout {
        facts,
        staging_len,
        dep_slot,
        scratch_off,
        scratch_len: off,
        snapshot,
        pseudo_fields,
        table_keys: p.tables.iter().map(crate::key_fields).collect(),
    }
}

type EntryFn = unsafe extern "C" fn(*mut JitCtx, *mut u8, u64, u64) -> u64;

/// The memory the generated code lives in. Once compiled, the code is never changed and
/// the module is never used again except to free it when the program is dropped.
struct CodeMemory {
    _module: JITModule,
}

// SAFETY: after `finalize_definitions` the module's memory is executable and read-only, and
// nothing calls into the module again until it is dropped (with the `JitProgram`, after
// every worker that borrows the program): moving it to another thread changes nothing.
unsafe impl Send for CodeMemory {}
// SAFETY: `CodeMemory` has no methods and the field is private: shared references to it
// give no access to the module at all, so there is nothing to race on. The code itself
// keeps no state (everything it changes is reached through the context its caller passes),
// so several threads may run it at once.
unsafe impl Sync for CodeMemory {}

/// A program compiled to native code: a [`Pipeline`], shareable between threads, each of
/// which runs it with a [`JitWorker`] of its own.
pub struct JitProgram {
    entry: EntryFn,
    /// The prefetch functions and the table they prefetch for (see `translate/prefetch.rs`).
    prefetch: Option<Prefetch>,
    prog: Program,
    binding: Binding,
    scratch_len: usize,
    staging_len: usize,
    /// The Cranelift IR, kept for `--emit clif`.
    pub clif: String,
    /// The machine code as Cranelift prints it, for `--emit asm`.
    pub asm: Option<String>,
    /// How many (valid, extracted) header layouts got a deparser of their own (see
    /// `analysis::deparse_masks`); 0 for a program that never pushes or pops a header.
    pub layout_deparsers: usize,
    // Owns the code `entry` points into; the last field, so it is dropped last.
    _code: CodeMemory,
}

fn isa_flags() -> Result<settings::Flags, JitError> {
    let mut fb = settings::builder();
    let set = |fb: &mut settings::Builder, k: &str, v: &str| {
        fb.set(k, v)
            .map_err(|e| JitError::Cranelift(format!("setting {k}: {e}")))
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
            return Err(JitError::BigEndian);
        }
        if p.actions.iter().any(|a| a.params.len() > MAX_ARGS) {
            return Err(JitError::TooManyArgs);
        }
        let isa = cranelift_native::builder()
            .map_err(|e| JitError::Unsupported(e.to_string()))?
            .finish(isa_flags()?)
            .map_err(|e| JitError::Cranelift(e.to_string()))?;
        let mut jb = JITBuilder::with_isa(isa, default_libcall_names());
        for f in &rt::RT_FUNCS {
            jb.symbol(f.name, (f.addr)());
        }
        let mut module = JITModule::new(jb);
        let ptr = types::I64;
        let lay = layout(p);
        let crypto = !lay.facts.tunnel_headers.is_empty();
        // The runtime functions, declared in the table's order (which numbers them in the
        // clif), kept by `Rt`.
        let mut ids = [None; rt::RT_COUNT];
        for f in rt::RT_FUNCS.iter().filter(|f| crypto || !f.crypto) {
            let mut sig = module.make_signature();
            sig.params
                .extend(f.params.iter().map(|t| AbiParam::new(*t)));
            sig.returns.push(AbiParam::new(types::I64));
            ids[f.rt as usize] = Some(
                module
                    .declare_function(f.name, Linkage::Import, &sig)
                    .map_err(|e| JitError::Cranelift(e.to_string()))?,
            );
        }
        let mut sig = module.make_signature();
        for _ in 0..4 {
            sig.params.push(AbiParam::new(ptr));
        }
        sig.returns.push(AbiParam::new(types::I64));
        let func = module
            .declare_function("sluice_pipeline", Linkage::Local, &sig)
            .map_err(|e| JitError::Cranelift(e.to_string()))?;
        let mut ctx: Context = module.make_context();
        ctx.func.signature = sig;
        ctx.func.name = UserFuncName::user(0, func.as_u32());
        ctx.set_disasm(want_asm);
        let layout_deparsers;
        let mut fctx = FunctionBuilderContext::new();
        {
            let b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
            let funcs: [Option<FuncRef>; rt::RT_COUNT] =
                std::array::from_fn(|i| ids[i].map(|id| module.declare_func_in_func(id, b.func)));
            b.func.collect_debug_info();
            let tr = translate::Translator::new(b, p, &lay, funcs, module.target_config());
            layout_deparsers = tr.translate_program();
        }
        let clif = ctx.func.display().to_string();
        module
            .define_function(func, &mut ctx)
            .map_err(|e| JitError::Cranelift(format!("{e:?}")))?;
        let asm = ctx.compiled_code().and_then(|c| c.vcode.clone());
        module.clear_context(&mut ctx);

        // The prefetch functions (translate/prefetch.rs), for a program with an inline lookup:
        // the slot's, and for a range table also the hash bucket's.
        let mut prefetch_fn = |name: &str, t: TableId, kind: u64, bucket: bool| {
            let mut sig = module.make_signature();
            for _ in 0..4 {
                sig.params.push(AbiParam::new(ptr));
            }
            sig.returns.push(AbiParam::new(types::I64));
            let pf = module
                .declare_function(name, Linkage::Local, &sig)
                .map_err(|e| JitError::Cranelift(e.to_string()))?;
            ctx.func.signature = sig;
            ctx.func.name = UserFuncName::user(0, pf.as_u32());
            {
                let b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
                let funcs: [Option<FuncRef>; rt::RT_COUNT] = std::array::from_fn(|i| {
                    ids[i].map(|id| module.declare_func_in_func(id, b.func))
                });
                let tr = translate::Translator::new(b, p, &lay, funcs, module.target_config());
                tr.translate_prefetch(t, kind, bucket);
            }
            module
                .define_function(pf, &mut ctx)
                .map_err(|e| JitError::Cranelift(format!("{e:?}")))?;
            module.clear_context(&mut ctx);
            Ok::<_, JitError>(pf)
        };
        let prefetch = match translate::prefetch_table(p, &lay) {
            Some((t, kind)) => {
                let slot = prefetch_fn("sluice_prefetch", t, kind, false)?;
                let bucket = if kind == sluice_runtime::jitview::KIND_RANGE {
                    Some(prefetch_fn("sluice_prefetch_bucket", t, kind, true)?)
                } else {
                    None
                };
                Some((slot, bucket, t))
            }
            None => None,
        };
        module
            .finalize_definitions()
            .map_err(|e| JitError::Cranelift(e.to_string()))?;
        let code = module.get_finalized_function(func);
        // SAFETY: the function was declared with this signature (four pointer-sized integers
        // in, one out) and uses the platform's C calling convention.
        let entry = unsafe { std::mem::transmute::<*const u8, EntryFn>(code) };
        let finalized = |f| {
            let code = module.get_finalized_function(f);
            // SAFETY: as for the entry point: declared with the same signature.
            unsafe { std::mem::transmute::<*const u8, EntryFn>(code) }
        };
        let prefetch = prefetch.map(|(slot, bucket, table)| Prefetch {
            slot: finalized(slot),
            bucket: bucket.map(finalized),
            table,
        });
        Ok(JitProgram {
            _code: CodeMemory { _module: module },
            entry,
            prefetch,
            scratch_len: lay.scratch_len.max(16),
            staging_len: lay.staging_len,
            binding: Binding::new(Arc::new(crate::schema(p)), p.drop_reasons.len()),
            prog: p.clone(),
            clif,
            asm,
            layout_deparsers,
        })
    }

    /// The table whose lookups the batch loop prefetches (when it has at least
    /// [`PREFETCH_ENTRIES`] entries), if the program has one.
    pub fn prefetch_table(&self) -> Option<TableId> {
        self.prefetch.map(|p| p.table)
    }

    pub fn program(&self) -> &Program {
        &self.prog
    }
}

impl Pipeline for JitProgram {
    type Worker<'p> = JitWorker<'p>;

    fn worker_in_lane(&self, lane: usize) -> JitWorker<'_> {
        let mut w = JitWorker {
            program: self,
            lane,
            bases: vec![0; self.prog.tables.len().max(1)],
            binding: self.binding.clone(),
            scratch: vec![0; self.scratch_len],
            staging: vec![0; self.staging_len.max(16)],
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
                row: std::ptr::null(),
                scratch: std::ptr::null_mut(),
                out_head: 0,
                out_len: 0,
                staging: std::ptr::null_mut(),
                staging_len: 0,
                crypto_op: rt::CRYPTO_NONE,
                crypto_secret: 0,
                crypto_hdr: 0,
                crypto_peer: 0,
                crypto_reasons: [0; 2],
                crypto_bytes: [0; sluice_runtime::crypto::MAX_HEADER_LEN],
                crypto_len: 0,
                buf_cap: 0,
                lane: lane as u64,
                counter_bases: std::ptr::null(),
            }),
        };
        // The buffers are never resized, so these pointers stay valid as long as the worker
        // (moving the worker moves the vectors' handles, not their heap buffers).
        w.ctx.scratch = w.scratch.as_mut_ptr();
        w.ctx.staging = w.staging.as_mut_ptr();
        w.ctx.staging_len = w.staging.len() as u64;
        w.ctx.counter_bases = w.bases.as_ptr();
        w
    }
}

/// The state one thread runs a [`JitProgram`] with: the context generated code receives,
/// the scratch area of headers that actions make valid, the deparser's staging area.
pub struct JitWorker<'p> {
    program: &'p JitProgram,
    /// The counter lane this worker counts in, and each table's lane base, set per batch.
    lane: usize,
    bases: Vec<u64>,
    binding: Binding,
    scratch: Vec<u8>,
    staging: Vec<u8>,
    ctx: Box<JitCtx>,
}

impl Worker for JitWorker<'_> {
    /// Runs a batch of packets, as the switch loop does. The checks that do not depend on
    /// the packet are made once per batch; what runs per packet is a few counter bumps, the
    /// context's per-packet fields and the call.
    fn process_batch(
        &mut self,
        tables: &TableSet,
        stats: &mut Stats,
        pkts: &mut [PacketBuf],
        metas: &[PacketMeta],
        out: &mut [Verdict],
    ) -> Result<(), DatapathError> {
        debug_assert!(pkts.len() == metas.len() && pkts.len() == out.len());
        let n = pkts.len().min(metas.len()).min(out.len());
        let (pkts, metas, out) = (&mut pkts[..n], &metas[..n], &mut out[..n]);
        // Generated code indexes the tables and counters by the program's ids, and reads each
        // table's view with the key widths this program gives it: refuse any others.
        self.binding.check(tables, stats)?;
        // Generated code writes this lane's counters: the tables must have it.
        if tables.lanes() <= self.lane {
            return Err(DatapathError::NoLane {
                lane: self.lane,
                lanes: tables.lanes(),
            });
        }
        self.set_tables(tables, stats);
        if let Some(pf) = self.program.prefetch {
            if let Some(t) = tables
                .tables()
                .get(pf.table.index())
                .filter(|t| t.num_entries() >= PREFETCH_ENTRIES)
            {
                // The hash's buckets first, when the hash is large enough to miss.
                if let Some(bucket) = pf.bucket {
                    if (t.view().mask + 1) * 16 >= PREFETCH_HASH_BYTES {
                        self.prefetch(bucket, pkts);
                    }
                }
                self.prefetch(pf.slot, pkts);
            }
        }
        for ((pkt, meta), v) in pkts.iter_mut().zip(metas).zip(out.iter_mut()) {
            stats.count_in(meta.ingress_port);
            *v = verdict_of(self.run_pass(stats, pkt, meta));
            stats.count_verdict(*v);
        }
        Ok(())
    }
}

/// A program's prefetch functions: the slot's, and for a range table the hash bucket's.
#[derive(Clone, Copy)]
struct Prefetch {
    slot: EntryFn,
    bucket: Option<EntryFn>,
    table: TableId,
}

/// Hash tables (of a range table's exact values) from this many bytes get their buckets
/// prefetched first: smaller ones stay in cache.
pub const PREFETCH_HASH_BYTES: u64 = 1 << 20;

/// Tables from this many entries get their lines prefetched across each batch; smaller
/// ones stay in cache, where the prefetch pass's second parse of every packet would cost
/// more than it saves.
pub const PREFETCH_ENTRIES: usize = 65_536;

/// Asks for the line at `addr` to be brought into the cache.
#[inline(always)]
fn prefetch_line(addr: u64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults, whatever the address, and changes
    // nothing the program can observe.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(addr as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

impl JitWorker<'_> {
    /// The prefetch pass: every packet of the batch through the prefetch function, each
    /// answer prefetched, before the pipeline runs on any.
    fn prefetch(&mut self, pf: EntryFn, pkts: &mut [PacketBuf]) {
        let headroom = self.program.prog.headroom;
        for pkt in pkts.iter_mut() {
            let (buf, head, len) = pkt.raw_parts_mut();
            if head < headroom || buf.len() < head + len + sluice_runtime::packet::TAILROOM {
                continue;
            }
            // SAFETY: as for the entry point in `run_pass`: compiled for this program, with
            // the context and the tables set for this batch, and a buffer with the headroom
            // and tailroom generated code relies on. The function only reads.
            let addr = unsafe { pf(&mut *self.ctx, buf.as_mut_ptr(), head as u64, len as u64) };
            if addr & 1 == 0 {
                prefetch_line(addr);
            } else {
                // A range group's segments: their starts, then their handles.
                for line in 0..4 {
                    prefetch_line((addr & !1) + 64 * line);
                }
            }
        }
    }

    /// Points the context at the tables and at the counter arrays that generated code
    /// updates in place. The arrays are the vectors' own buffers, which counting other
    /// things (`count_in`, `count_forward`) neither moves nor borrows.
    #[inline(always)]
    fn set_tables(&mut self, tables: &TableSet, stats: &mut Stats) {
        for (b, t) in self.bases.iter_mut().zip(tables.tables()) {
            *b = t.counter_base(self.lane);
        }
        let ctx = &mut *self.ctx;
        ctx.tables = tables;
        ctx.tables_ptr = tables.tables().as_ptr();
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
        ctx.buf_cap = buf.len() as u64;
        ctx.crypto_op = rt::CRYPTO_NONE;
        // The buffer must have the headroom and tailroom that generated code relies on.
        let code = if head < self.program.prog.headroom
            || buf.len() < head + len + sluice_runtime::packet::TAILROOM
        {
            (1u64 << 32) | reason::PARSER_TRUNCATED.index() as u64
        } else {
            // SAFETY: the entry point was compiled for this program; ctx and the buffer are
            // valid for the duration of the call, and the buffer has the headroom and
            // tailroom that the generated code's loads and stores stay within.
            unsafe { (self.program.entry)(ctx, buf.as_mut_ptr(), head as u64, len as u64) }
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
