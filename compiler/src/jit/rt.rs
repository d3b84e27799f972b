//! The boundary between generated code and Rust: the context that generated code receives and
//! the `rt_*` functions it calls. Everything here is `extern "C"`, returns codes and never
//! unwinds.

use cranelift_codegen::ir::{types, Type};
use sluice_runtime::stats::Stats;
use sluice_runtime::table::TableSet;

/// The runtime functions generated code may call, by their index in [`RT_FUNCS`]. The order
/// is the order of declaration, which names them in the Cranelift IR (`fn0`, `fn1`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rt {
    Apply,
    Hash,
    SipHash,
    Apply2,
}

/// How many runtime functions there are.
pub const RT_COUNT: usize = 4;

/// One runtime function: its symbol, its address and its signature (every one returns an
/// `i64`). Adding a function is one line here, one variant of [`Rt`] and the function.
pub struct RtFunc {
    pub rt: Rt,
    pub name: &'static str,
    pub addr: fn() -> *const u8,
    pub params: &'static [Type],
}

const I64: Type = types::I64;
const I32: Type = types::I32;

/// Every function generated code may call, in [`Rt`] order.
pub const RT_FUNCS: [RtFunc; RT_COUNT] = [
    RtFunc {
        rt: Rt::Apply,
        name: "rt_apply",
        addr: || rt_apply as *const u8,
        params: &[I64, I32, I64],
    },
    RtFunc {
        rt: Rt::Hash,
        name: "rt_hash",
        addr: || rt_hash as *const u8,
        params: &[I32, I64, I64, I64, I64],
    },
    RtFunc {
        rt: Rt::SipHash,
        name: "rt_siphash",
        addr: || rt_siphash as *const u8,
        params: &[I64, I32, I64, I64],
    },
    RtFunc {
        rt: Rt::Apply2,
        name: "rt_apply2",
        addr: || rt_apply2 as *const u8,
        params: &[I64, I32, I64, I64, I64, I64],
    },
];

/// Most arguments an action takes (checked when a program is compiled for the JIT).
pub const MAX_ARGS: usize = 32;

/// What generated code sees. Offsets of these fields are baked into generated code through
/// `std::mem::offset_of!`, so the layout is `repr(C)`.
#[repr(C)]
pub struct JitCtx {
    pub ingress_port: u64,
    pub ts_sec: u64,
    pub ts_nsec: u64,
    /// The wire length, and the pass (0): read once per call; generated code keeps them for
    /// later passes, and updates `packet_length` for `rt_apply`'s byte counters.
    pub packet_length: u64,
    pub pass: u64,
    /// The window's length when the current pass began (with `packet_length`, what the wire
    /// length of the packet that leaves is computed from).
    pub pass_len: u64,
    /// The tables, read by `rt_apply`. Only read, never written, during a packet.
    pub tables: *const TableSet,
    pub stats: *mut Stats,
    /// `stats.action_runs`, for inline table lookups (one entry per action of the program).
    pub action_runs: *mut u64,
    /// `stats.table_hits` and `stats.table_misses`, for inline table lookups.
    pub table_hits: *mut u64,
    pub table_misses: *mut u64,
    /// The first `Table` of the table set: generated code reads each table's `view`.
    pub tables_ptr: *const sluice_runtime::table::Table,
    /// Arguments of the action a table chose, written by `rt_apply`.
    pub args: [u128; MAX_ARGS],
    /// The chosen action's row (id, then arguments), set by `rt_apply2`: generated code reads
    /// the arguments from it without a copy. Valid until the next table apply.
    pub row: *const u128,
    /// Storage of headers that are not in the packet (made valid by an action).
    pub scratch: *mut u8,
    /// The packet window after the deparser: offset in the buffer and length.
    pub out_head: u64,
    pub out_len: u64,
    /// The staging area: the inline deparser's slot for each header that moves.
    pub staging: *mut u8,
    pub staging_len: u64,
}

/// Looks a key up and copies the chosen action's arguments into `ctx.args`. Returns the action
/// id, with bit 32 set on a hit.
///
/// # Safety
/// `ctx` is the context generated code was called with; `key` points at the table's key values.
pub unsafe extern "C" fn rt_apply(ctx: *mut JitCtx, table: u32, key: *const u128) -> u64 {
    // SAFETY: generated code passes the context it was given, which `JitProgram::set_tables`
    // and `run_pass` made from live references that outlive the call.
    let ctx = unsafe { &mut *ctx };
    // SAFETY: as above; the table set is only read during a packet.
    let tables = unsafe { &*ctx.tables };
    // SAFETY: the stats live in the caller's frame, exclusively borrowed for the call.
    let stats = unsafe { &mut *ctx.stats };
    let Some(t) = tables.table(table as usize) else {
        return 0;
    };
    let n = t.schema().keys.len();
    // SAFETY: generated code built exactly `n` keys in a 16-byte aligned stack slot.
    let key = unsafe { std::slice::from_raw_parts(key, n) };
    let (hit, row) = t.lookup_row(key, ctx.packet_length);
    if hit {
        stats.table_hits[table as usize] += 1;
    } else {
        stats.table_misses[table as usize] += 1;
    }
    let action = row.first().copied().unwrap_or(0) as u32;
    let args = row.get(1..).unwrap_or(&[]);
    let n = args.len().min(MAX_ARGS);
    ctx.args[..n].copy_from_slice(&args[..n]);
    // The same arguments, read through `row` like rt_apply2's.
    ctx.row = ctx.args.as_ptr().wrapping_sub(1);
    if let Some(r) = stats.action_runs.get_mut(action as usize) {
        *r += 1;
    }
    u64::from(action) | (u64::from(hit) << 32)
}

/// [`rt_apply`] for a table of one or two key fields, with the keys in registers (each as two
/// 64-bit halves) instead of a stack slot.
///
/// # Safety
/// `ctx` is the context generated code was called with.
pub unsafe extern "C" fn rt_apply2(
    ctx: *mut JitCtx,
    table: u32,
    k0_lo: u64,
    k0_hi: u64,
    k1_lo: u64,
    k1_hi: u64,
) -> u64 {
    // SAFETY: see rt_apply.
    let ctx = unsafe { &mut *ctx };
    // SAFETY: see rt_apply.
    let tables = unsafe { &*ctx.tables };
    // SAFETY: see rt_apply.
    let stats = unsafe { &mut *ctx.stats };
    let Some(t) = tables.table(table as usize) else {
        return 0;
    };
    let k0 = (u128::from(k0_hi) << 64) | u128::from(k0_lo);
    let k1 = (u128::from(k1_hi) << 64) | u128::from(k1_lo);
    let (hit, row) = t.lookup_row2(k0, k1, ctx.packet_length);
    let counter = if hit {
        &mut stats.table_hits
    } else {
        &mut stats.table_misses
    };
    if let Some(c) = counter.get_mut(table as usize) {
        *c += 1;
    }
    let action = row.first().copied().unwrap_or(0) as u32;
    if let Some(r) = stats.action_runs.get_mut(action as usize) {
        *r += 1;
    }
    ctx.row = row.as_ptr();
    u64::from(action) | (u64::from(hit) << 32)
}

/// A flow hash over `len` bytes, reduced to 0..max-1 (max as two 64-bit halves).
///
/// # Safety
/// `bytes` points at `len` readable bytes.
pub unsafe extern "C" fn rt_hash(
    algo: u32,
    bytes: *const u8,
    len: u64,
    max_lo: u64,
    max_hi: u64,
) -> u64 {
    // SAFETY: generated code built `len` bytes in a stack slot.
    let b = unsafe { std::slice::from_raw_parts(bytes, len as usize) };
    // Generated code passes the number of an algorithm the checker accepted.
    let algo = sluice_runtime::hash::HashAlgo::from_id(algo)
        .unwrap_or(sluice_runtime::hash::HashAlgo::Identity);
    let max = (u128::from(max_hi) << 64) | u128::from(max_lo);
    sluice_runtime::hash::reduce(sluice_runtime::hash::compute(algo, b), max) as u64
}

/// SipHash-2-4 of `len` bytes keyed by the program's secret number `secret`.
///
/// # Safety
/// `ctx` as in rt_apply; `bytes` points at `len` readable bytes.
pub unsafe extern "C" fn rt_siphash(
    ctx: *mut JitCtx,
    secret: u32,
    bytes: *const u8,
    len: u64,
) -> u64 {
    // SAFETY: see rt_apply.
    let ctx = unsafe { &*ctx };
    // SAFETY: see rt_apply.
    let tables = unsafe { &*ctx.tables };
    // SAFETY: generated code built `len` bytes in a stack slot.
    let b = unsafe { std::slice::from_raw_parts(bytes, len as usize) };
    let key = tables.secret(secret as usize).copied().unwrap_or([0; 16]);
    sluice_runtime::hash::siphash24(&key, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_rt_order() {
        for (i, f) in RT_FUNCS.iter().enumerate() {
            assert_eq!(f.rt as usize, i, "{}", f.name);
            assert!(!(f.addr)().is_null());
        }
    }
}
