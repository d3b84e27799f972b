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
    SealRequest,
    OpenRequest,
    Crypto,
}

/// How many runtime functions there are.
pub const RT_COUNT: usize = 7;

/// One runtime function: its symbol, its address and its signature (every one returns an
/// `i64`). Adding a function is one line here, one variant of [`Rt`] and the function.
pub struct RtFunc {
    pub rt: Rt,
    pub name: &'static str,
    pub addr: fn() -> *const u8,
    pub params: &'static [Type],
    /// Declared only in programs that seal or open (so that other programs' code, and its
    /// snapshots, do not change).
    pub crypto: bool,
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
        crypto: false,
    },
    RtFunc {
        rt: Rt::Hash,
        name: "rt_hash",
        addr: || rt_hash as *const u8,
        params: &[I32, I64, I64, I64, I64],
        crypto: false,
    },
    RtFunc {
        rt: Rt::SipHash,
        name: "rt_siphash",
        addr: || rt_siphash as *const u8,
        params: &[I64, I32, I64, I64],
        crypto: false,
    },
    RtFunc {
        rt: Rt::Apply2,
        name: "rt_apply2",
        addr: || rt_apply2 as *const u8,
        params: &[I64, I32, I64, I64, I64, I64],
        crypto: false,
    },
    RtFunc {
        rt: Rt::SealRequest,
        name: "rt_seal_request",
        addr: || rt_seal_request as *const u8,
        params: &[I64, I64, I64, I64, I64],
        crypto: true,
    },
    RtFunc {
        rt: Rt::OpenRequest,
        name: "rt_open_request",
        addr: || rt_open_request as *const u8,
        params: &[I64, I64, I64, I64, I64, I64, I64],
        crypto: true,
    },
    RtFunc {
        rt: Rt::Crypto,
        name: "rt_crypto",
        addr: || rt_crypto as *const u8,
        params: &[I64, I64, I64, I64, I64],
        crypto: true,
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
    /// The chosen action's row (id, then arguments packed, see `jitview::arg_slots`), set by
    /// `rt_apply` and `rt_apply2`: generated code reads the arguments from it without a copy.
    /// Valid until the tables change, which they do not during a batch.
    pub row: *const u64,
    /// Storage of headers that are not in the packet (made valid by an action).
    pub scratch: *mut u8,
    /// The packet window after the deparser: offset in the buffer and length.
    pub out_head: u64,
    pub out_len: u64,
    /// The staging area: the inline deparser's slot for each header that moves.
    pub staging: *mut u8,
    pub staging_len: u64,
    /// What the last `seal` or `open` of the pass asked of the deparser (`CRYPTO_*`), with its
    /// secret, its header, the seal's peer, and its drop reasons (no key; or bad tag and
    /// replay). Reset when the deparser has carried it out, and for each packet.
    pub crypto_op: u64,
    pub crypto_secret: u64,
    pub crypto_hdr: u64,
    pub crypto_peer: u64,
    pub crypto_reasons: [u64; 2],
    /// For `open`: the header's bytes when it ran (zeros if it was not valid), its length.
    pub crypto_bytes: [u8; MAX_HEADER_LEN],
    pub crypto_len: u64,
    /// The length of the packet buffer: a tag may be appended after the window.
    pub buf_cap: u64,
    /// The counter lane this worker counts in, and where each table's lane starts (by table
    /// index): generated code adds `handle * 16` to count a hit.
    pub lane: u64,
    pub counter_bases: *const u64,
}

pub const CRYPTO_NONE: u64 = 0;
pub const CRYPTO_SEAL: u64 = 1;
pub const CRYPTO_OPEN: u64 = 2;
use sluice_runtime::crypto::MAX_HEADER_LEN;

/// Looks a key up and points `ctx.row` at the chosen row. Returns the action id, with bit 32
/// set on a hit.
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
    let (hit, row) = t.lookup_row(ctx.lane as usize, key, ctx.packet_length);
    if hit {
        stats.table_hits[table as usize] += 1;
    } else {
        stats.table_misses[table as usize] += 1;
    }
    let action = t.row_action(row);
    // The row stays put until the table changes, which cannot happen during a batch.
    ctx.row = row.as_ptr();
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
    let (hit, row) = t.lookup_row2(ctx.lane as usize, k0, k1, ctx.packet_length);
    let counter = if hit {
        &mut stats.table_hits
    } else {
        &mut stats.table_misses
    };
    if let Some(c) = counter.get_mut(table as usize) {
        *c += 1;
    }
    let action = t.row_action(row);
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

/// `seal(secret, header, peer)` ran: the deparser is to seal (see `Stmt::Seal`).
///
/// # Safety
/// `ctx` as in rt_apply.
pub unsafe extern "C" fn rt_seal_request(
    ctx: *mut JitCtx,
    secret: u64,
    header: u64,
    peer: u64,
    no_key: u64,
) -> u64 {
    // SAFETY: see rt_apply.
    let ctx = unsafe { &mut *ctx };
    ctx.crypto_op = CRYPTO_SEAL;
    ctx.crypto_secret = secret;
    ctx.crypto_hdr = header;
    ctx.crypto_peer = peer;
    ctx.crypto_reasons = [no_key, no_key];
    0
}

/// `open(secret, header)` ran: the deparser is to open (see `Stmt::Open`). The header's
/// `len` bytes at `bytes` are kept (zeros when `valid` is 0); `reasons` is the bad tag
/// reason, then the replay reason in the upper 32 bits.
///
/// # Safety
/// `ctx` as in rt_apply; `bytes` points at `len` readable bytes (a header's storage).
pub unsafe extern "C" fn rt_open_request(
    ctx: *mut JitCtx,
    secret: u64,
    header: u64,
    bytes: *const u8,
    len: u64,
    valid: u64,
    reasons: u64,
) -> u64 {
    // SAFETY: see rt_apply.
    let ctx = unsafe { &mut *ctx };
    let len = (len as usize).min(MAX_HEADER_LEN);
    ctx.crypto_op = CRYPTO_OPEN;
    ctx.crypto_secret = secret;
    ctx.crypto_hdr = header;
    ctx.crypto_reasons = [reasons & 0xffff_ffff, reasons >> 32];
    ctx.crypto_len = len as u64;
    if valid != 0 {
        // SAFETY: generated code passes the header's storage and its fixed length.
        let b = unsafe { std::slice::from_raw_parts(bytes, len) };
        ctx.crypto_bytes[..len].copy_from_slice(b);
    } else {
        ctx.crypto_bytes[..len].fill(0);
    }
    0
}

/// Carries out the pass's `seal` or `open` on the deparsed packet: the tunnel header starts
/// `header` bytes into the window and what is sealed or opened `region` bytes into it
/// (`valid`: whether the header is in the packet). Returns 0, or the drop code.
///
/// # Safety
/// `ctx` as in rt_apply; `buf` is the packet buffer, `ctx.buf_cap` bytes long, and the window
/// `ctx.out_head`, `ctx.out_len` lies inside it.
pub unsafe extern "C" fn rt_crypto(
    ctx: *mut JitCtx,
    buf: *mut u8,
    header: u64,
    region: u64,
    valid: u64,
) -> u64 {
    use sluice_runtime::crypto::{self, CryptoError, Sealed};
    // SAFETY: see rt_apply.
    let ctx = unsafe { &mut *ctx };
    // SAFETY: see rt_apply.
    let tables = unsafe { &*ctx.tables };
    // SAFETY: the caller passes the buffer generated code was called with, `buf_cap` long.
    let whole = unsafe { std::slice::from_raw_parts_mut(buf, ctx.buf_cap as usize) };
    let op = std::mem::replace(&mut ctx.crypto_op, CRYPTO_NONE);
    let head = ctx.out_head as usize;
    let len = ctx.out_len as usize;
    let Some(packet) = whole.get_mut(head..) else {
        return drop_code(ctx.crypto_reasons[0]);
    };
    let now = crypto::time_ns(ctx.ts_sec, ctx.ts_nsec as u32);
    let keys = tables.keyring(ctx.crypto_secret as usize);
    let result = match op {
        CRYPTO_SEAL if valid == 0 => Err(CryptoError::NoKey),
        CRYPTO_SEAL => {
            let at = Sealed {
                header: header as usize,
                region: region as usize,
                len,
            };
            crypto::seal_for(keys, ctx.crypto_peer as u32, packet, at, now)
        }
        CRYPTO_OPEN if (ctx.crypto_len as usize) < crypto::NONCE_HEADER_LEN => {
            Err(CryptoError::BadTag)
        }
        CRYPTO_OPEN => {
            let bytes = &ctx.crypto_bytes[..ctx.crypto_len as usize];
            let key_id = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            let counter = u64::from_be_bytes(bytes[4..12].try_into().unwrap_or([0; 8]));
            let aad = &bytes[crypto::NONCE_HEADER_LEN..];
            match keys {
                Some(k) => {
                    crypto::open(k, packet, region as usize, len, aad, (key_id, counter), now)
                }
                None => Err(CryptoError::BadTag),
            }
        }
        _ => return 0,
    };
    match result {
        Ok(n) => {
            ctx.out_len = n as u64;
            0
        }
        Err(CryptoError::Replay) => drop_code(ctx.crypto_reasons[1]),
        Err(CryptoError::Truncated) => {
            drop_code(crate::ir::reason::PARSER_TRUNCATED.index() as u64)
        }
        Err(CryptoError::BadTag | CryptoError::NoKey) => drop_code(ctx.crypto_reasons[0]),
    }
}

/// Generated code's code for a drop with this reason.
fn drop_code(reason: u64) -> u64 {
    (1 << 32) | reason
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
