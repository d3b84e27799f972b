//! The reference interpreter: the specification of what a program does to a packet. It is
//! written to be read, not to be fast; the JIT must produce exactly its bytes, verdicts and
//! counters.

use crate::ir::visit::Visitor;
use crate::ir::*;
use sluice_runtime::bits::{get_bits, low_mask, set_bits};
use sluice_runtime::checksum;
use sluice_runtime::datapath::{Binding, DatapathError, Pipeline, Worker};
use sluice_runtime::packet::{PacketBuf, PacketMeta, Verdict};
use sluice_runtime::stats::Stats;
use sluice_runtime::table::TableSet;
use std::fmt::Write as _;
use std::sync::Arc;

/// One header instance while a packet is processed.
#[derive(Clone, Debug, Default)]
struct Hdr {
    valid: bool,
    /// Extracted by the parser in this pass (its bytes came from the packet).
    extracted: bool,
    bytes: Vec<u8>,
    /// The bytes as parsed, for incremental checksum updates.
    parsed: Vec<u8>,
}

/// Per-pass state.
struct Pass<'a> {
    prog: &'a Program,
    tables: &'a TableSet,
    /// The lane of the entry counters this worker counts in.
    lane: usize,
    stats: &'a mut Stats,
    hdrs: Vec<Hdr>,
    meta: Vec<u128>,
    pkt_meta: PacketMeta,
    packet_length: u32,
    pass: u8,
    egress: Option<u16>,
    drop: Option<ReasonId>,
    recirculate: bool,
    /// The action the most recent table apply ran, for `switch`.
    last_action: ActionId,
    /// The arguments of the action running (empty in the control block and the parser).
    params: Vec<u128>,
    /// What `seal` or `open` (the last one that ran) asks of the deparser.
    crypto: Option<Crypto>,
    trace: Option<&'a mut String>,
}

/// A `seal` or `open` that the deparser carries out.
#[derive(Clone, Debug)]
enum Crypto {
    Seal {
        secret: SecretId,
        header: HeaderId,
        peer: u32,
        no_key: ReasonId,
    },
    Open {
        secret: SecretId,
        header: HeaderId,
        /// The header's bytes when `open` ran: key id, counter, then the AAD.
        bytes: Vec<u8>,
        bad_tag: ReasonId,
        replay: ReasonId,
    },
}

/// The interpreter of a program: a [`Pipeline`] whose workers walk the IR.
pub struct Interp<'p> {
    prog: &'p Program,
    binding: Binding,
}

impl<'p> Interp<'p> {
    pub fn new(prog: &'p Program) -> Interp<'p> {
        let schema = Arc::new(crate::schema(prog));
        Interp {
            prog,
            binding: Binding::new(schema, prog.drop_reasons.len()),
        }
    }

    /// A worker that also records, for each packet, the parser's path, each table's key and
    /// result, the action with its arguments and the verdict (`sluice run --trace`).
    pub fn tracing_worker(&self) -> InterpWorker<'_> {
        InterpWorker {
            traces: Some(Vec::new()),
            ..self.worker()
        }
    }
}

impl Pipeline for Interp<'_> {
    type Worker<'w>
        = InterpWorker<'w>
    where
        Self: 'w;

    fn worker_in_lane(&self, lane: usize) -> InterpWorker<'_> {
        InterpWorker {
            prog: self.prog,
            binding: self.binding.clone(),
            traces: None,
            lane,
        }
    }
}

/// One thread's interpreter.
pub struct InterpWorker<'p> {
    prog: &'p Program,
    binding: Binding,
    /// With tracing, the trace of each packet of the last batch.
    traces: Option<Vec<String>>,
    /// The lane of the tables' entry counters it counts in.
    lane: usize,
}

impl Worker for InterpWorker<'_> {
    fn process_batch(
        &mut self,
        tables: &TableSet,
        stats: &mut Stats,
        pkts: &mut [PacketBuf],
        metas: &[PacketMeta],
        out: &mut [Verdict],
    ) -> Result<(), DatapathError> {
        self.binding.check(tables, stats)?;
        if tables.lanes() <= self.lane {
            return Err(DatapathError::NoLane {
                lane: self.lane,
                lanes: tables.lanes(),
            });
        }
        let mut traces = self.traces.take();
        if let Some(t) = &mut traces {
            t.resize(pkts.len(), String::new());
        }
        for (i, ((pkt, meta), v)) in pkts.iter_mut().zip(metas).zip(out.iter_mut()).enumerate() {
            let trace = traces.as_mut().map(|t| {
                t[i].clear();
                &mut t[i]
            });
            *v = self.run(tables, stats, pkt, meta, trace);
        }
        self.traces = traces;
        Ok(())
    }

    fn trace(&self, i: usize) -> Option<&str> {
        self.traces.as_ref()?.get(i).map(String::as_str)
    }
}

impl InterpWorker<'_> {
    /// Runs a packet through the program, leaving the output bytes in `pkt`, and counts it.
    fn run(
        &mut self,
        tables: &TableSet,
        stats: &mut Stats,
        pkt: &mut PacketBuf,
        meta: &PacketMeta,
        mut trace: Option<&mut String>,
    ) -> Verdict {
        stats.count_in(meta.ingress_port);
        let mut user_meta = vec![0u128; self.prog.metadata.len()];
        let mut pass_no = 0u8;
        let verdict = loop {
            let (v, recirc) = {
                let mut p = Pass {
                    prog: self.prog,
                    tables,
                    lane: self.lane,
                    stats,
                    hdrs: vec![Hdr::default(); self.prog.headers.len()],
                    meta: std::mem::take(&mut user_meta),
                    pkt_meta: *meta,
                    packet_length: pkt.orig_len,
                    pass: pass_no,
                    egress: None,
                    drop: None,
                    recirculate: false,
                    last_action: ActionId::DROP,
                    params: Vec::new(),
                    crypto: None,
                    trace: trace.as_deref_mut(),
                };
                let r = p.run(pkt);
                user_meta = std::mem::take(&mut p.meta);
                r
            };
            if !recirc {
                break v;
            }
            if pass_no >= MAX_RECIRCULATIONS {
                break Verdict::Drop(reason::RECIRCULATION_LIMIT.code());
            }
            pass_no += 1;
            if let Some(t) = trace.as_deref_mut() {
                let _ = writeln!(t, "  recirculate: pass {pass_no}");
            }
        };
        stats.count_verdict(verdict);
        if let Some(t) = trace {
            match verdict {
                Verdict::Forward(p) => {
                    let _ = writeln!(t, "  verdict: forward to port {p} ({} bytes)", pkt.len());
                }
                Verdict::Drop(r) => {
                    let _ = writeln!(
                        t,
                        "  verdict: drop ({})",
                        self.prog.drop_reasons[r as usize]
                    );
                }
            }
        }
        verdict
    }
}

/// Formats a value the way a network engineer reads it: 32 bits as an IPv4 address, 48 bits as
/// a MAC address, 64 bits and more in hex (tokens, wide fields), the rest in decimal.
pub fn format_value(v: u128, width: u32) -> String {
    match width {
        32 => {
            let b = (v as u32).to_be_bytes();
            format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
        }
        48 => {
            let b = (v as u64).to_be_bytes();
            format!(
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                b[2], b[3], b[4], b[5], b[6], b[7]
            )
        }
        w if w >= 64 => format!("0x{v:0n$x}", n = w.div_ceil(4) as usize),
        _ => v.to_string(),
    }
}

impl Pass<'_> {
    fn tr(&mut self, f: impl FnOnce(&mut String)) {
        if let Some(t) = self.trace.as_deref_mut() {
            f(t);
        }
    }

    /// Returns the verdict and whether the packet recirculates.
    fn run(&mut self, pkt: &mut PacketBuf) -> (Verdict, bool) {
        let consumed = match self.parse(pkt.data()) {
            Ok(c) => c,
            Err(r) => return (Verdict::Drop(r.code()), false),
        };
        let control = &self.prog.control;
        self.visit_block(control);
        if let Some(r) = self.drop {
            return (Verdict::Drop(r.code()), false);
        }
        self.deparse(pkt, consumed);
        if let Some(op) = self.crypto.take() {
            if let Err(r) = self.seal_or_open(pkt, op) {
                return (Verdict::Drop(r.code()), false);
            }
        }
        if self.recirculate {
            return (Verdict::Drop(0), true);
        }
        match self.egress {
            Some(p) => (Verdict::Forward(p), false),
            None => (Verdict::Drop(reason::NO_FORWARD.code()), false),
        }
    }

    /// Runs the parser; returns the number of bytes consumed, or a drop reason.
    fn parse(&mut self, data: &[u8]) -> Result<usize, ReasonId> {
        let mut cursor = 0usize;
        let mut state = StateId(0);
        let mut visits = vec![0u32; self.prog.states.len()];
        // The path is only kept for --trace.
        let tracing = self.trace.is_some();
        let mut path = if tracing {
            vec![self.prog.states[0].name.clone()]
        } else {
            Vec::new()
        };
        let result = loop {
            let st = &self.prog.states[state];
            visits[state.index()] += 1;
            if let Some(limit) = st.limit {
                if visits[state.index()] > limit {
                    break Err(reason::PARSER_LOOP_LIMIT);
                }
            }
            let mut failed = None;
            for op in &st.ops {
                match op {
                    ParserOp::Extract {
                        header,
                        varbit_bits,
                    } => {
                        let h = &self.prog.headers[*header];
                        if cursor + h.fixed_bytes > data.len() {
                            failed = Some(reason::PARSER_TRUNCATED);
                            break;
                        }
                        let hdr = &mut self.hdrs[header.index()];
                        hdr.bytes.clear();
                        hdr.bytes
                            .extend_from_slice(&data[cursor..cursor + h.fixed_bytes]);
                        hdr.valid = true;
                        hdr.extracted = true;
                        if let (Some(e), Some((_, max))) = (varbit_bits, h.varbit) {
                            let bits = self.eval(e);
                            if !bits.is_multiple_of(8) || bits / 8 > max as u128 {
                                failed = Some(reason::PARSER_BAD_LENGTH);
                                break;
                            }
                            let n = (bits / 8) as usize;
                            if cursor + h.fixed_bytes + n > data.len() {
                                failed = Some(reason::PARSER_TRUNCATED);
                                break;
                            }
                            let hdr = &mut self.hdrs[header.index()];
                            hdr.bytes.extend_from_slice(
                                &data[cursor + h.fixed_bytes..cursor + h.fixed_bytes + n],
                            );
                        }
                        let hdr = &mut self.hdrs[header.index()];
                        hdr.parsed = hdr.bytes.clone();
                        cursor += hdr.bytes.len();
                    }
                    ParserOp::SetMeta(m, e) => {
                        let v = self.eval(e);
                        self.meta[m.index()] = v & low_mask(self.prog.metadata[*m].width);
                    }
                }
            }
            if let Some(r) = failed {
                break Err(r);
            }
            let next = match &st.transition {
                Transition::Accept => Target::Accept,
                Transition::Reject => Target::Reject,
                Transition::Goto(s) => Target::State(*s),
                Transition::Select {
                    keys,
                    cases,
                    default,
                } => {
                    let vals: Vec<u128> = keys.iter().map(|k| self.eval(k)).collect();
                    cases
                        .iter()
                        .find(|c| {
                            c.matches.iter().zip(&vals).all(|(m, v)| match *m {
                                SelectMatch::Masked { value, mask } => v & mask == value,
                                SelectMatch::Range { lo, hi } => lo <= *v && *v <= hi,
                            })
                        })
                        .map_or(*default, |c| c.target)
                }
            };
            match next {
                Target::Accept => {
                    if tracing {
                        path.push("accept".into());
                    }
                    break Ok(cursor);
                }
                Target::Reject => {
                    if tracing {
                        path.push("reject".into());
                    }
                    break Err(reason::PARSER_REJECT);
                }
                Target::State(s) => {
                    if tracing {
                        path.push(self.prog.states[s].name.clone());
                    }
                    state = s;
                }
            }
        };
        let prog = self.prog;
        self.tr(|t| {
            let _ = write!(t, "  parser: {}", path.join(" -> "));
            match result {
                Err(r) if r != reason::PARSER_REJECT => {
                    let _ = writeln!(t, " ({})", prog.drop_reasons[r]);
                }
                _ => {
                    let _ = writeln!(t);
                }
            }
        });
        result
    }

    fn field(&self, h: HeaderId, f: FieldId) -> u128 {
        let hdr = &self.hdrs[h.index()];
        if !hdr.valid {
            return 0;
        }
        let fd = &self.prog.headers[h].fields[f];
        get_bits(&hdr.bytes, fd.bit_offset as usize, fd.width).unwrap_or(0)
    }

    fn eval(&mut self, e: &Expr) -> u128 {
        let m = low_mask(e.width.max(1));
        match &e.kind {
            ExprKind::Const(v) => *v & m,
            ExprKind::Field(h, f) => self.field(*h, *f),
            ExprKind::Meta(i) => self.meta[i.index()],
            ExprKind::Std(s) => match s {
                StdField::IngressPort => u128::from(self.pkt_meta.ingress_port),
                StdField::EgressPort => u128::from(self.egress.unwrap_or(0)),
                StdField::PacketLength => u128::from(self.packet_length),
                StdField::Dropped => u128::from(self.drop.is_some()),
                StdField::IngressTsSec => u128::from(self.pkt_meta.ts_sec),
                StdField::IngressTsNsec => u128::from(self.pkt_meta.ts_nsec),
                StdField::Pass => u128::from(self.pass),
            },
            ExprKind::Param(i) => self.params.get(*i).copied().unwrap_or(0),
            ExprKind::Valid(h) => u128::from(self.hdrs[h.index()].valid),
            ExprKind::Not(a) => u128::from(self.eval(a) == 0),
            ExprKind::BitNot(a) => !self.eval(a) & m,
            ExprKind::Resize(a) => self.eval(a) & m,
            ExprKind::Apply(t, hit) => {
                let h = self.apply(*t);
                u128::from(h == *hit)
            }
            ExprKind::Binary(op, a, b) => {
                // && and || short-circuit.
                match op {
                    BinOp::And => return u128::from(self.eval(a) != 0 && self.eval(b) != 0),
                    BinOp::Or => return u128::from(self.eval(a) != 0 || self.eval(b) != 0),
                    _ => {}
                }
                let x = self.eval(a);
                let y = self.eval(b);
                match op {
                    BinOp::Eq => u128::from(x == y),
                    BinOp::Ne => u128::from(x != y),
                    BinOp::Lt => u128::from(x < y),
                    BinOp::Le => u128::from(x <= y),
                    BinOp::Gt => u128::from(x > y),
                    BinOp::Ge => u128::from(x >= y),
                    BinOp::BitOr => (x | y) & m,
                    BinOp::BitXor => (x ^ y) & m,
                    BinOp::BitAnd => x & y & m,
                    // A shift by the width or more gives 0.
                    BinOp::Shl => {
                        if y >= u128::from(e.width) {
                            0
                        } else {
                            (x << y) & m
                        }
                    }
                    BinOp::Shr => {
                        if y >= u128::from(e.width) {
                            0
                        } else {
                            x >> y
                        }
                    }
                    BinOp::Add => x.wrapping_add(y) & m,
                    BinOp::Sub => x.wrapping_sub(y) & m,
                    BinOp::Mul => x.wrapping_mul(y) & m,
                    BinOp::And | BinOp::Or => 0,
                }
            }
            ExprKind::Hash { algo, fields, max } => {
                let bytes = self.field_bytes(fields);
                let max = self.eval(max);
                sluice_runtime::hash::reduce(sluice_runtime::hash::compute(*algo, &bytes), max) & m
            }
            ExprKind::SipHash { secret, fields } => {
                let bytes = self.field_bytes(fields);
                let key = self
                    .tables
                    .secret(secret.index())
                    .copied()
                    .unwrap_or([0; 16]);
                u128::from(sluice_runtime::hash::siphash24(&key, &bytes))
            }
        }
    }

    /// Fields in network order, each as many whole bytes as its width needs.
    fn field_bytes(&mut self, fields: &[Expr]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in fields {
            let v = self.eval(f);
            let n = f.width.div_ceil(8) as usize;
            out.extend_from_slice(&v.to_be_bytes()[16 - n..]);
        }
        out
    }

    /// Runs the body of action `a` with these argument values.
    fn run_action(&mut self, a: ActionId, args: Vec<u128>) {
        let saved = std::mem::replace(&mut self.params, args);
        let body = &self.prog.actions[a].body;
        self.visit_block(body);
        self.params = saved;
    }
}

/// Statements run through the IR's walker: a block runs its statements in order
/// (`walk_block`), and each statement is executed here, which chooses the branch or arm to
/// walk into.
impl Visitor for Pass<'_> {
    fn visit_stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::SetField(h, f, e) => {
                let v = self.eval(e);
                let fd = &self.prog.headers[*h].fields[*f];
                let hdr = &mut self.hdrs[h.index()];
                // Writes to a header that is not valid have no effect.
                if hdr.valid {
                    set_bits(&mut hdr.bytes, fd.bit_offset as usize, fd.width, v);
                }
            }
            Stmt::SetMeta(m, e) => {
                let v = self.eval(e);
                self.meta[m.index()] = v & low_mask(self.prog.metadata[*m].width);
            }
            Stmt::Apply(t) => {
                self.apply(*t);
            }
            Stmt::If(c, a, b) => {
                if self.eval(c) != 0 {
                    self.visit_block(a)
                } else {
                    self.visit_block(b)
                }
            }
            Stmt::Switch(t, arms, default) => {
                self.apply(*t);
                let ran = self.last_action;
                match arms.iter().find(|(a, _)| *a == ran) {
                    Some((_, body)) => self.visit_block(body),
                    None => self.visit_block(default),
                }
            }
            Stmt::SetValid(h) => {
                let hdr = &mut self.hdrs[h.index()];
                if !hdr.valid {
                    hdr.valid = true;
                    if !hdr.extracted {
                        // A header that was never parsed starts as zeros, without options.
                        hdr.bytes = vec![0; self.prog.headers[*h].fixed_bytes];
                    }
                }
            }
            Stmt::SetInvalid(h) => self.hdrs[h.index()].valid = false,
            Stmt::Forward(e) => {
                let p = self.eval(e);
                self.egress = Some(p as u16);
                self.drop = None;
            }
            Stmt::Drop(r) => {
                self.drop = Some(*r);
                self.egress = None;
            }
            Stmt::Call(a, args) => {
                let vals: Vec<u128> = args.iter().map(|e| self.eval(e)).collect();
                self.stats.action_runs[a.index()] += 1;
                self.run_action(*a, vals);
            }
            Stmt::Recirculate => self.recirculate = true,
            Stmt::Seal {
                secret,
                header,
                peer,
                no_key,
            } => {
                let peer = self.eval(peer) as u32;
                self.crypto = Some(Crypto::Seal {
                    secret: *secret,
                    header: *header,
                    peer,
                    no_key: *no_key,
                });
            }
            Stmt::Open {
                secret,
                header,
                bad_tag,
                replay,
            } => {
                let h = &self.hdrs[header.index()];
                let bytes = if h.valid {
                    h.bytes.clone()
                } else {
                    vec![0; self.prog.headers[*header].fixed_bytes]
                };
                self.crypto = Some(Crypto::Open {
                    secret: *secret,
                    header: *header,
                    bytes,
                    bad_tag: *bad_tag,
                    replay: *replay,
                });
            }
        }
    }
}

impl Pass<'_> {
    /// Applies a table: builds its key, looks it up, counts, and runs the action. Returns hit.
    fn apply(&mut self, t: TableId) -> bool {
        let table = &self.prog.tables[t];
        let key: Vec<u128> = table.keys.iter().map(|k| self.eval(&k.expr)).collect();
        let rt = &self.tables.tables()[t.index()];
        let (hit, action, args) =
            match rt.lookup_counted(self.lane, &key, u64::from(self.packet_length)) {
                Some((h, call)) => (
                    Some(h.0),
                    ActionId(call.action as usize),
                    call.args.to_vec(),
                ),
                None => {
                    let d = rt.default_action();
                    (None, ActionId(d.action as usize), d.args.to_vec())
                }
            };
        if hit.is_some() {
            self.stats.table_hits[t.index()] += 1;
        } else {
            self.stats.table_misses[t.index()] += 1;
        }
        self.stats.action_runs[action.index()] += 1;
        self.last_action = action;
        let prog = self.prog;
        self.tr(|tr| {
            let keys: Vec<String> = table
                .keys
                .iter()
                .zip(&key)
                .map(|(k, v)| format!("{}={}", k.name, format_value(*v, k.expr.width)))
                .collect();
            let a = &prog.actions[action];
            let args: Vec<String> = a
                .params
                .iter()
                .zip(&args)
                .map(|((n, w), v)| format!("{n}={}", format_value(*v, *w)))
                .collect();
            let res = match hit {
                Some(h) => format!("hit (handle {h})"),
                None => "miss".to_string(),
            };
            let _ = writeln!(
                tr,
                "  table {}: {} -> {res}, {}({})",
                table.name,
                keys.join(" "),
                a.name,
                args.join(", ")
            );
        });
        if action == ActionId::DROP {
            let r = if hit.is_some() {
                table.drop_on_hit
            } else {
                table.drop_on_miss
            };
            self.drop = Some(r);
            self.egress = None;
        } else {
            self.run_action(action, args);
        }
        hit.is_some()
    }

    /// Where header `h` starts in the packet the deparser made (where it would be, if it is not
    /// valid): the lengths of the valid headers before it in deparser order.
    fn deparsed_offset(&self, h: HeaderId) -> usize {
        self.prog
            .deparser
            .iter()
            .take_while(|&&g| g != h)
            .filter(|g| self.hdrs[g.index()].valid)
            .map(|g| self.hdrs[g.index()].bytes.len())
            .sum()
    }

    /// Seals or opens the deparsed packet (see `Stmt::Seal` and `Stmt::Open`); the error is
    /// the drop reason.
    fn seal_or_open(&mut self, pkt: &mut PacketBuf, op: Crypto) -> Result<(), ReasonId> {
        use sluice_runtime::crypto::{self, CryptoError, Sealed};
        let now = crypto::time_ns(self.pkt_meta.ts_sec, self.pkt_meta.ts_nsec);
        let (buf, head, len) = pkt.raw_parts_mut();
        let packet = &mut buf[head..];
        // The trace says what was done, never with what key.
        let said;
        let (result, reasons) = match op {
            Crypto::Seal {
                secret,
                header,
                peer,
                no_key,
            } => {
                if !self.hdrs[header.index()].valid {
                    return Err(no_key);
                }
                let at = self.deparsed_offset(header);
                let sealed = Sealed {
                    header: at,
                    region: at + self.prog.headers[header].fixed_bytes,
                    len,
                };
                let keys = self.tables.keyring(secret.index());
                let r = crypto::seal_for(keys, peer, packet, sealed, now);
                let (name, to) = (
                    &self.prog.secrets[secret].name,
                    format_value(u128::from(peer), 32),
                );
                said = match r {
                    Ok(_) => format!(
                        "  seal {name} for {to}: key id {:#010x}, counter {}, {} bytes sealed",
                        get_bits(&packet[at..], 0, 32).unwrap_or(0),
                        get_bits(&packet[at..], 32, 64).unwrap_or(0),
                        len - sealed.region
                    ),
                    Err(_) => format!("  seal {name} for {to}: no key"),
                };
                (r, [no_key, no_key])
            }
            Crypto::Open {
                secret,
                header,
                bytes,
                bad_tag,
                replay,
            } => {
                let h = &self.hdrs[header.index()];
                let mut region = self.deparsed_offset(header);
                if h.valid {
                    region += h.bytes.len();
                }
                let key_id = get_bits(&bytes, 0, 32).unwrap_or(0) as u32;
                let counter = get_bits(&bytes, 32, 64).unwrap_or(0) as u64;
                let aad = &bytes[crypto::NONCE_HEADER_LEN.min(bytes.len())..];
                let result = match self.tables.keyring(secret.index()) {
                    Some(keys) => {
                        crypto::open(keys, packet, region, len, aad, (key_id, counter), now)
                    }
                    None => Err(CryptoError::BadTag),
                };
                said = format!(
                    "  open {}: key id {key_id:#010x}, counter {counter}: {}",
                    self.prog.secrets[secret].name,
                    match result {
                        Ok(_) => "opened",
                        Err(CryptoError::Replay) => "replay",
                        Err(_) => "bad tag",
                    }
                );
                (result, [bad_tag, replay])
            }
        };
        self.tr(|t| {
            let _ = writeln!(t, "{said}");
        });
        match result {
            Ok(new_len) => {
                let ok = pkt.set_window(head, new_len);
                debug_assert!(ok, "the tailroom holds a tag per pass");
                Ok(())
            }
            Err(CryptoError::Replay) => Err(reasons[1]),
            Err(CryptoError::Truncated) => Err(reason::PARSER_TRUNCATED),
            Err(CryptoError::BadTag | CryptoError::NoKey) => Err(reasons[0]),
        }
    }

    /// Emits the valid headers in deparser order in front of the payload, after updating the
    /// declared checksums.
    fn deparse(&mut self, pkt: &mut PacketBuf, consumed: usize) {
        for c in &self.prog.checksums {
            self.update_checksum(c);
        }
        let mut out = Vec::new();
        for &h in &self.prog.deparser {
            if self.hdrs[h.index()].valid {
                out.extend_from_slice(&self.hdrs[h.index()].bytes);
            }
        }
        // The headroom is sized for the largest emit, so this cannot fail.
        let ok = pkt.replace_front(consumed, &out);
        debug_assert!(ok, "headroom too small");
    }

    fn update_checksum(&mut self, c: &Checksum) {
        let hdr = &self.hdrs[c.header.index()];
        if !hdr.valid {
            return;
        }
        let h = &self.prog.headers[c.header];
        let csum_field = &h.fields[c.field];
        let covered = h.fields.iter().enumerate().filter(|(i, f)| {
            FieldId(*i) != c.field && Some(FieldId(*i)) != h.varbit.map(|v| v.0) && f.width > 0
        });
        let new_csum = if !hdr.extracted {
            match c.kind {
                ChecksumKind::Ipv4Header => checksum::full(covered.map(|(_, f)| {
                    let v = get_bits(&hdr.bytes, f.bit_offset as usize, f.width).unwrap_or(0);
                    checksum::contribution(v, f.bit_offset, f.width)
                })),
                // A TCP or UDP header made by an action has no payload sum to start from.
                ChecksumKind::Tcp | ChecksumKind::Udp => 0,
            }
        } else {
            let old = get_bits(&hdr.parsed, csum_field.bit_offset as usize, 16).unwrap_or(0) as u16;
            if c.kind == ChecksumKind::Udp && old == 0 {
                return;
            }
            let mut changes = Vec::new();
            for (_, f) in covered {
                let a = get_bits(&hdr.parsed, f.bit_offset as usize, f.width).unwrap_or(0);
                let b = get_bits(&hdr.bytes, f.bit_offset as usize, f.width).unwrap_or(0);
                if a != b {
                    changes.push((
                        checksum::contribution(a, f.bit_offset, f.width),
                        checksum::contribution(b, f.bit_offset, f.width),
                    ));
                }
            }
            if let Some(ph) = c.pseudo {
                let p = &self.hdrs[ph.index()];
                if p.valid && p.extracted {
                    for (a, b) in pseudo_header(&p.parsed)
                        .into_iter()
                        .zip(pseudo_header(&p.bytes))
                    {
                        if a != b {
                            changes.push((a, b));
                        }
                    }
                }
            }
            let n = checksum::update(old, changes);
            if c.kind == ChecksumKind::Udp && n == 0 {
                0xffff
            } else {
                n
            }
        };
        let off = csum_field.bit_offset as usize;
        let hdr = &mut self.hdrs[c.header.index()];
        set_bits(&mut hdr.bytes, off, 16, u128::from(new_csum));
    }
}

/// Contributions of the IPv4 pseudo-header's source, destination, protocol and upper-layer
/// length, from an IPv4 header's bytes.
pub fn pseudo_header(ip: &[u8]) -> [u16; 4] {
    let g = |off: usize, w: u32| get_bits(ip, off, w).unwrap_or(0);
    let ihl = g(4, 4);
    let total = g(16, 16);
    let l4_len = total.wrapping_sub(ihl * 4) & 0xffff;
    [
        checksum::contribution(g(96, 32), 0, 32),
        checksum::contribution(g(128, 32), 0, 32),
        checksum::contribution(g(72, 8), 8, 8),
        checksum::contribution(l4_len, 0, 16),
    ]
}
