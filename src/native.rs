//! Hand-written Rust implementations of the shipped policies: the "native" reference that
//! `sluice bench` holds the JIT against. Each is what an expert would write for that one
//! policy (direct arrays for port ranges, incremental checksums), built from the same tables.

use sluice_compiler::ir::Program;
use sluice_runtime::datapath::{DatapathError, Pipeline, Worker};
use sluice_runtime::packet::{PacketBuf, PacketMeta, Verdict};
use sluice_runtime::stats::Stats;
use sluice_runtime::table::{MatchValue, TableSet};
use std::collections::HashMap;

/// A policy compiled by hand: processes a packet in place. Programs that push or pop headers
/// need room in front of the packet: `process_buf` gets the whole buffer.
pub trait Native: Sync {
    fn process(&self, pkt: &mut [u8]) -> Verdict;

    /// Processes `buf[head..head + len]`, which may grow into the headroom or shrink; returns
    /// the verdict and the new window.
    fn process_buf(&self, buf: &mut [u8], head: usize, len: usize) -> (Verdict, usize, usize) {
        (self.process(&mut buf[head..head + len]), head, len)
    }
}

/// Builds the reference for a program, by its file name, if there is one.
pub fn for_program(name: &str, prog: &Program, tables: &TableSet) -> Option<Reference> {
    let n: Box<dyn Native> = match name {
        "port_dnat" => Box::new(PortDnat::new(prog, tables)?),
        "vnet" => Box::new(Vnet::new(prog, tables)?),
        "gateway" => Box::new(Gateway::new(prog, tables)?),
        _ => return None,
    };
    Some(Reference(n))
}

/// A hand-written reference as a datapath [`Pipeline`]. It keeps its own snapshot of the
/// tables, taken when it was built, and counts nothing: the figures it gives are those of
/// the policy alone, as an expert would write it for this one program.
pub struct Reference(Box<dyn Native>);

impl Pipeline for Reference {
    type Worker<'p> = ReferenceWorker<'p>;

    /// The references keep their own copy of the tables and count nothing: every lane is
    /// the same to them.
    fn worker_in_lane(&self, _lane: usize) -> ReferenceWorker<'_> {
        ReferenceWorker(&*self.0)
    }
}

pub struct ReferenceWorker<'p>(&'p dyn Native);

impl Worker for ReferenceWorker<'_> {
    /// Ignores `tables` and `stats` (see [`Reference`]).
    fn process_batch(
        &mut self,
        _tables: &TableSet,
        _stats: &mut Stats,
        pkts: &mut [PacketBuf],
        _metas: &[PacketMeta],
        out: &mut [Verdict],
    ) -> Result<(), DatapathError> {
        for (pkt, v) in pkts.iter_mut().zip(out.iter_mut()) {
            let (buf, head, len) = pkt.raw_parts_mut();
            let (verdict, h, l) = self.0.process_buf(buf, head, len);
            if (h, l) != (head, len) {
                pkt.set_window(h, l);
            }
            *v = verdict;
        }
        Ok(())
    }
}

fn reason(prog: &Program, name: &str) -> u16 {
    prog.drop_reasons
        .iter()
        .position(|r| r == name)
        .unwrap_or(0) as u16
}

/// RFC 1624 eqn. 3 for a 32-bit field at an even offset.
#[inline(always)]
fn csum_update32(hc: u16, old: u32, new: u32) -> u16 {
    let mut acc = u32::from(!hc);
    acc += u32::from(!(old >> 16) as u16) + u32::from(!(old as u16));
    acc += (new >> 16) + (new & 0xffff);
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// programs/port_dnat.sluice by hand: a 65,536-slot array of VMs per public address.
pub struct PortDnat {
    dnat: HashMap<u32, Box<[u32]>, rustc_hash::FxBuildHasher>,
    vms: Vec<(u32, u16)>,
    snat: HashMap<u32, (u32, u16), rustc_hash::FxBuildHasher>,
    r: [u16; 6],
}

impl PortDnat {
    pub fn new(prog: &Program, tables: &TableSet) -> Option<PortDnat> {
        let dnat_t = &tables.tables()[tables.by_name("dnat")?];
        let snat_t = &tables.tables()[tables.by_name("snat")?];
        let mut dnat: HashMap<u32, Box<[u32]>, rustc_hash::FxBuildHasher> = HashMap::default();
        let mut vms = Vec::new();
        // Lower priority values win: fill from the lowest priority (largest number) up.
        let mut entries: Vec<_> = dnat_t.entries().collect();
        entries.sort_by_key(|e| (std::cmp::Reverse(e.priority), std::cmp::Reverse(e.handle)));
        for e in entries {
            // A program of the same name but another shape has no reference.
            if e.key.len() != 2 || e.call.args.len() != 2 {
                return None;
            }
            let (MatchValue::Exact(ip), MatchValue::Range { lo, hi }) = (e.key[0], e.key[1]) else {
                return None;
            };
            let slots = dnat
                .entry(ip as u32)
                .or_insert_with(|| vec![0u32; 65536].into_boxed_slice());
            vms.push((e.call.args[0] as u32, e.call.args[1] as u16));
            let idx = vms.len() as u32;
            for p in lo..=hi.min(65535) {
                slots[p as usize] = idx;
            }
        }
        let mut snat = HashMap::default();
        for e in snat_t.entries() {
            let (Some(&MatchValue::Exact(ip)), [public, out]) = (e.key.first(), &e.call.args[..])
            else {
                return None;
            };
            snat.insert(ip as u32, (*public as u32, *out as u16));
        }
        Some(PortDnat {
            dnat,
            vms,
            snat,
            r: [
                reason(prog, "parser: truncated"),
                reason(prog, "not ipv4"),
                reason(prog, "non-first fragment"),
                reason(prog, "not tcp or udp"),
                reason(prog, "snat miss"),
                reason(prog, "parser: invalid header length"),
            ],
        })
    }
}

impl Native for PortDnat {
    #[inline]
    fn process(&self, p: &mut [u8]) -> Verdict {
        let len = p.len();
        if len < 14 {
            return Verdict::Drop(self.r[0]);
        }
        if p[12] != 0x08 || p[13] != 0x00 {
            return Verdict::Drop(self.r[1]);
        }
        if len < 34 {
            return Verdict::Drop(self.r[0]);
        }
        let ihl = usize::from(p[14] & 0x0f);
        if ihl < 5 {
            return Verdict::Drop(self.r[5]);
        }
        let l4 = 14 + ihl * 4;
        if l4 > len {
            return Verdict::Drop(self.r[0]);
        }
        let frag = u16::from_be_bytes([p[20], p[21]]) & 0x1fff;
        if frag != 0 {
            return Verdict::Drop(self.r[2]);
        }
        let proto = p[23];
        let (hlen, csum_off) = match proto {
            6 => (20, 16),
            17 => (8, 6),
            _ => return Verdict::Drop(self.r[3]),
        };
        if l4 + hlen > len {
            return Verdict::Drop(self.r[0]);
        }
        let dst = u32::from_be_bytes([p[30], p[31], p[32], p[33]]);
        let dport = u16::from_be_bytes([p[l4 + 2], p[l4 + 3]]);
        let (field, new, out) = match self
            .dnat
            .get(&dst)
            .map(|s| s[dport as usize])
            .filter(|&i| i != 0)
        {
            Some(i) => {
                let (ip, out) = self.vms[i as usize - 1];
                (30, ip, out)
            }
            None => {
                let src = u32::from_be_bytes([p[26], p[27], p[28], p[29]]);
                match self.snat.get(&src) {
                    Some(&(ip, out)) => (26, ip, out),
                    None => return Verdict::Drop(self.r[4]),
                }
            }
        };
        let old = u32::from_be_bytes([p[field], p[field + 1], p[field + 2], p[field + 3]]);
        p[field..field + 4].copy_from_slice(&new.to_be_bytes());
        let hc = u16::from_be_bytes([p[24], p[25]]);
        p[24..26].copy_from_slice(&csum_update32(hc, old, new).to_be_bytes());
        let c = l4 + csum_off;
        let lc = u16::from_be_bytes([p[c], p[c + 1]]);
        if !(proto == 17 && lc == 0) {
            let mut n = csum_update32(lc, old, new);
            if proto == 17 && n == 0 {
                n = 0xffff;
            }
            p[c..c + 2].copy_from_slice(&n.to_be_bytes());
        }
        Verdict::Forward(out)
    }
}

/// programs/vnet.sluice by hand: where each VM runs (a hash map), this host's tunnel
/// addresses, IP-in-IP and GRE built directly in the headroom.
pub struct Vnet {
    location: HashMap<u32, Place, rustc_hash::FxBuildHasher>,
    own: HashMap<u32, (), rustc_hash::FxBuildHasher>,
    r: VnetReasons,
}

#[derive(Clone, Copy)]
enum Place {
    Ipip(u32, u32, u16),
    Gre(u32, u32, u16),
    Deliver(u16),
}

struct VnetReasons {
    truncated: u16,
    bad_length: u16,
    not_ipv4: u16,
    miss: u16,
    ttl: u16,
    malformed: u16,
    recirculation: u16,
}

impl Vnet {
    pub fn new(prog: &Program, tables: &TableSet) -> Option<Vnet> {
        let loc = &tables.tables()[tables.by_name("vm_location")?];
        let term = &tables.tables()[tables.by_name("tunnel_term")?];
        let id = |n: &str| tables.action_by_name(n);
        let (ipip, gre, deliver) = (id("tunnel_ipip")?, id("tunnel_gre")?, id("deliver")?);
        let mut location = HashMap::default();
        for e in loc.entries() {
            // A program of the same name but another shape has no reference.
            let Some(&MatchValue::Exact(ip)) = e.key.first() else {
                return None;
            };
            let place = match (e.call.action, &e.call.args[..]) {
                (x, [l, h, o]) if x == ipip => Place::Ipip(*l as u32, *h as u32, *o as u16),
                (x, [l, h, o]) if x == gre => Place::Gre(*l as u32, *h as u32, *o as u16),
                (x, [o]) if x == deliver => Place::Deliver(*o as u16),
                _ => return None,
            };
            location.insert(ip as u32, place);
        }
        let mut own = HashMap::default();
        for e in term.entries() {
            let Some(&MatchValue::Exact(ip)) = e.key.first() else {
                return None;
            };
            own.insert(ip as u32, ());
        }
        Some(Vnet {
            location,
            own,
            r: VnetReasons {
                truncated: reason(prog, "parser: truncated"),
                bad_length: reason(prog, "parser: invalid header length"),
                not_ipv4: reason(prog, "not ipv4"),
                miss: reason(prog, "vm_location miss"),
                ttl: reason(prog, "ttl expired"),
                malformed: reason(prog, "malformed tunnel"),
                recirculation: reason(prog, "recirculation limit"),
            },
        })
    }
}

/// The IPv4 header checksum of `h` (20 bytes, checksum field zero) computed from scratch.
#[inline(always)]
fn ip_checksum(h: &[u8]) -> u16 {
    let mut s = 0u32;
    for i in (0..20).step_by(2) {
        s += u32::from(u16::from_be_bytes([h[i], h[i + 1]]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

impl Native for Vnet {
    fn process(&self, _pkt: &mut [u8]) -> Verdict {
        // Needs headroom: see process_buf.
        Verdict::Drop(self.r.truncated)
    }

    fn process_buf(&self, buf: &mut [u8], head: usize, len: usize) -> (Verdict, usize, usize) {
        let f = match front(buf, head, len, &self.own, &self.r) {
            Ok(f) => f,
            Err(drop) => return drop,
        };
        let (head, len) = (f.head, f.len);
        let Some(place) = self.location.get(&f.dst).copied() else {
            return (Verdict::Drop(self.r.miss), head, len);
        };
        let (local, host, out, is_gre) = match place {
            Place::Deliver(out) => return (Verdict::Forward(out), head, len),
            Place::Ipip(l, h, o) => (l, h, o, false),
            Place::Gre(l, h, o) => (l, h, o, true),
        };
        if f.tunnelled && !ttl_down(buf, head) {
            return (Verdict::Drop(self.r.ttl), head, len);
        }
        let (h, l) = encap(buf, head, len, f.l4, f.gre, local, host, is_gre);
        (Verdict::Forward(out), h, l)
    }
}

/// A packet with every tunnel addressed to one of our own hosts taken off: the part of
/// the vnet and gateway programs' parser and decapsulation that both share.
struct Front {
    head: usize,
    len: usize,
    /// Where the (innermost) IPv4 header ends.
    l4: usize,
    frag: u16,
    proto: u8,
    /// A GRE header follows the IPv4 header.
    gre: bool,
    dst: u32,
    /// At least one tunnel was taken off (the TTL goes down on the way out).
    tunnelled: bool,
}

/// Parses `buf[head..head + len]` as the programs' parsers do, decapsulating (the
/// Ethernet header moves up over the outer header and GRE) while the destination is one
/// of `own`, at most `MAX_PASSES` times; the error is the drop verdict with the window.
fn front(
    buf: &mut [u8],
    mut head: usize,
    mut len: usize,
    own: &HashMap<u32, (), rustc_hash::FxBuildHasher>,
    r: &VnetReasons,
) -> Result<Front, (Verdict, usize, usize)> {
    let mut tunnelled = false;
    for _pass in 0..=MAX_PASSES {
        let p = &buf[head..head + len];
        if len < 14 {
            return Err((Verdict::Drop(r.truncated), head, len));
        }
        if p[12] != 0x08 || p[13] != 0x00 {
            return Err((Verdict::Drop(r.not_ipv4), head, len));
        }
        if len < 34 {
            return Err((Verdict::Drop(r.truncated), head, len));
        }
        let ihl = usize::from(p[14] & 0x0f);
        if ihl < 5 {
            return Err((Verdict::Drop(r.bad_length), head, len));
        }
        let l4 = 14 + ihl * 4;
        if l4 > len {
            return Err((Verdict::Drop(r.truncated), head, len));
        }
        let frag = u16::from_be_bytes([p[20], p[21]]) & 0x1fff;
        let proto = p[23];
        let hlen = match (frag, proto) {
            (0, 6) => 20,
            (0, 17) => 8,
            (0, 47) => 4,
            _ => 0,
        };
        if l4 + hlen > len {
            return Err((Verdict::Drop(r.truncated), head, len));
        }
        let gre = frag == 0 && proto == 47;
        let dst = u32::from_be_bytes([p[30], p[31], p[32], p[33]]);
        if (proto == 4 || proto == 47) && own.contains_key(&dst) {
            if gre && (p[l4..l4 + 4] != [0, 0, 0x08, 0x00]) || (proto == 47 && !gre) {
                return Err((Verdict::Drop(r.malformed), head, len));
            }
            let cut = l4 - 14 + if gre { 4 } else { 0 };
            buf.copy_within(head..head + 14, head + cut);
            head += cut;
            len -= cut;
            tunnelled = true;
            continue;
        }
        return Ok(Front {
            head,
            len,
            l4,
            frag,
            proto,
            gre,
            dst,
            tunnelled,
        });
    }
    Err((Verdict::Drop(r.recirculation), head, len))
}

/// TTL down by one with the checksum following it (RFC 1624, the TTL/protocol word);
/// false, and nothing written, when the TTL would expire.
fn ttl_down(buf: &mut [u8], head: usize) -> bool {
    let ttl = buf[head + 22];
    if ttl <= 1 {
        return false;
    }
    let old = u16::from_be_bytes([ttl, buf[head + 23]]);
    let hc = u16::from_be_bytes([buf[head + 24], buf[head + 25]]);
    let mut acc = u32::from(!hc) + u32::from(!old) + u32::from(old - 0x100);
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    buf[head + 22] = ttl - 1;
    buf[head + 24..head + 26].copy_from_slice(&(!(acc as u16)).to_be_bytes());
    true
}

/// Pushes the outer IPv4 header (and GRE) of vnet.sluice's and gateway.sluice's tunnel
/// actions in front of `buf[head..head + len]`; returns the new window. `l4` is where the
/// parsed IPv4 header ends, `gre` whether a GRE header was parsed after it.
#[allow(clippy::too_many_arguments)]
fn encap(
    buf: &mut [u8],
    head: usize,
    len: usize,
    l4: usize,
    gre: bool,
    local: u32,
    host: u32,
    is_gre: bool,
) -> (usize, usize) {
    // A GRE header parsed from the packet is emitted before the IPv4 header, as the
    // program's deparser orders them; otherwise the pushed headers go in front.
    let push = 20 + if is_gre && !gre { 4 } else { 0 };
    let inner_total = u16::from_be_bytes([buf[head + 16], buf[head + 17]]);
    let df = buf[head + 20] & 0x40;
    let new_head = head - push;
    buf.copy_within(head..head + 14, new_head);
    let o = new_head + 14;
    let total = inner_total.wrapping_add(if is_gre { 24 } else { 20 });
    let hdr = &mut buf[o..o + 20];
    hdr.copy_from_slice(&[
        0x45,
        0,
        0,
        0,
        0,
        0,
        df,
        0,
        64,
        if is_gre { 47 } else { 4 },
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ]);
    hdr[2..4].copy_from_slice(&total.to_be_bytes());
    hdr[12..16].copy_from_slice(&local.to_be_bytes());
    hdr[16..20].copy_from_slice(&host.to_be_bytes());
    let c = ip_checksum(hdr);
    hdr[10..12].copy_from_slice(&c.to_be_bytes());
    if is_gre && !gre {
        buf[o + 20..o + 24].copy_from_slice(&[0, 0, 0x08, 0x00]);
    }
    if gre {
        // The parsed GRE header moves in front of the IPv4 header it followed.
        let ip_start = new_head + 14 + push;
        let ip_len = l4 - 14;
        let g = [0u8, 0, 0x08, 0x00];
        let gre_bytes = if is_gre {
            g
        } else {
            [
                buf[ip_start + ip_len],
                buf[ip_start + ip_len + 1],
                buf[ip_start + ip_len + 2],
                buf[ip_start + ip_len + 3],
            ]
        };
        buf.copy_within(ip_start..ip_start + ip_len, ip_start + 4);
        buf[ip_start..ip_start + 4].copy_from_slice(&gre_bytes);
    }
    (new_head, len + push)
}

/// Passes a packet may make, as `ir::MAX_RECIRCULATIONS` allows.
pub const MAX_PASSES: usize = sluice_compiler::ir::MAX_RECIRCULATIONS as usize;

/// programs/gateway.sluice by hand: a 65,536-slot array per public address for dnat, one per
/// VM for snat, a CRC-32 flow hash for groups, vnet's tunnels.
pub struct Gateway {
    own: HashMap<u32, (), rustc_hash::FxBuildHasher>,
    /// Per public address, per port: 0 for none, else 1 + index into `targets`.
    dnat: HashMap<u32, Box<[u32]>, rustc_hash::FxBuildHasher>,
    targets: Vec<Target>,
    members: HashMap<(u16, u16), u32, rustc_hash::FxBuildHasher>,
    location: HashMap<u32, Place, rustc_hash::FxBuildHasher>,
    /// Per VM, per source port: 0 for none, else 1 + index into `publics`.
    snat: HashMap<u32, Box<[u32]>, rustc_hash::FxBuildHasher>,
    publics: Vec<(u32, u16)>,
    r: GatewayReasons,
}

#[derive(Clone, Copy)]
enum Target {
    Vm(u32),
    Group(u16, u16),
}

struct GatewayReasons {
    v: VnetReasons,
    fragment: u16,
    not_l4: u16,
    members_miss: u16,
    snat_miss: u16,
}

/// Port arrays from a table keyed (address: exact, port: range), lowest priority first so
/// that the winners are written last; values are 1 + the index `f` returns.
fn port_arrays<T>(
    t: &sluice_runtime::table::Table,
    out: &mut Vec<T>,
    mut f: impl FnMut(&sluice_runtime::table::ActionCall) -> Option<T>,
) -> Option<HashMap<u32, Box<[u32]>, rustc_hash::FxBuildHasher>> {
    let mut arrays: HashMap<u32, Box<[u32]>, rustc_hash::FxBuildHasher> = HashMap::default();
    let mut entries: Vec<_> = t.entries().collect();
    entries.sort_by_key(|e| (std::cmp::Reverse(e.priority), std::cmp::Reverse(e.handle)));
    for e in entries {
        let (Some(&MatchValue::Exact(a)), Some(&MatchValue::Range { lo, hi })) =
            (e.key.first(), e.key.get(1))
        else {
            return None;
        };
        out.push(f(e.call)?);
        let idx = out.len() as u32;
        let slots = arrays
            .entry(a as u32)
            .or_insert_with(|| vec![0u32; 65536].into_boxed_slice());
        for p in lo..=hi.min(65535) {
            slots[p as usize] = idx;
        }
    }
    Some(arrays)
}

impl Gateway {
    pub fn new(prog: &Program, tables: &TableSet) -> Option<Gateway> {
        let t = |n: &str| tables.by_name(n).map(|i| &tables.tables()[i]);
        let id = |n: &str| tables.action_by_name(n);
        let vnet = Vnet::new(prog, tables)?;
        let (to_vm, to_group) = (id("to_vm")?, id("to_group")?);
        let mut targets = Vec::new();
        let dnat = port_arrays(t("dnat")?, &mut targets, |c| {
            match (c.action, &c.args[..]) {
                (a, [vm]) if a == to_vm => Some(Target::Vm(*vm as u32)),
                (a, [g, size]) if a == to_group => Some(Target::Group(*g as u16, *size as u16)),
                _ => None,
            }
        })?;
        let mut publics = Vec::new();
        let snat = port_arrays(t("snat")?, &mut publics, |c| match &c.args[..] {
            [ip, out] => Some((*ip as u32, *out as u16)),
            _ => None,
        })?;
        let mut members = HashMap::default();
        for e in t("lb_members")?.entries() {
            let (Some(&MatchValue::Exact(g)), Some(&MatchValue::Exact(m)), Some(&vm)) =
                (e.key.first(), e.key.get(1), e.call.args.first())
            else {
                return None;
            };
            members.insert((g as u16, m as u16), vm as u32);
        }
        Some(Gateway {
            own: vnet.own,
            dnat,
            targets,
            members,
            location: vnet.location,
            snat,
            publics,
            r: GatewayReasons {
                v: vnet.r,
                fragment: reason(prog, "non-first fragment"),
                not_l4: reason(prog, "not tcp or udp"),
                members_miss: reason(prog, "lb_members miss"),
                snat_miss: reason(prog, "snat miss"),
            },
        })
    }
}

/// RFC 1624 for a 32-bit field change in a checksum at `c`.
#[inline(always)]
fn fix32(buf: &mut [u8], c: usize, old: u32, new: u32, udp: bool) {
    let hc = u16::from_be_bytes([buf[c], buf[c + 1]]);
    if udp && hc == 0 {
        return;
    }
    let mut n = csum_update32(hc, old, new);
    if udp && n == 0 {
        n = 0xffff;
    }
    buf[c..c + 2].copy_from_slice(&n.to_be_bytes());
}

impl Native for Gateway {
    fn process(&self, _pkt: &mut [u8]) -> Verdict {
        Verdict::Drop(self.r.v.truncated)
    }

    fn process_buf(&self, buf: &mut [u8], head: usize, len: usize) -> (Verdict, usize, usize) {
        let r = &self.r;
        let f = match front(buf, head, len, &self.own, &r.v) {
            Ok(f) => f,
            Err(drop) => return drop,
        };
        let (head, len, l4, frag, proto, dst) = (f.head, f.len, f.l4, f.frag, f.proto, f.dst);
        let p = &buf[head..head + len];
        if frag != 0 {
            return (Verdict::Drop(r.fragment), head, len);
        }
        if proto != 6 && proto != 17 {
            return (Verdict::Drop(r.not_l4), head, len);
        }
        let udp = proto == 17;
        let csum_at = head + l4 + if udp { 6 } else { 16 };
        let src = u32::from_be_bytes([p[26], p[27], p[28], p[29]]);
        let sport = u16::from_be_bytes([p[l4], p[l4 + 1]]);
        let dport = u16::from_be_bytes([p[l4 + 2], p[l4 + 3]]);
        let target = self
            .dnat
            .get(&dst)
            .map(|a| a[dport as usize])
            .filter(|&i| i != 0)
            .map(|i| self.targets[i as usize - 1]);
        let Some(target) = target else {
            // snat: the VM's source port must be in its range.
            let Some(i) = self
                .snat
                .get(&src)
                .map(|a| a[sport as usize])
                .filter(|&i| i != 0)
            else {
                return (Verdict::Drop(r.snat_miss), head, len);
            };
            let (public, out) = self.publics[i as usize - 1];
            buf[head + 26..head + 30].copy_from_slice(&public.to_be_bytes());
            fix32(buf, head + 24, src, public, false);
            fix32(buf, csum_at, src, public, udp);
            return (Verdict::Forward(out), head, len);
        };
        let vm = match target {
            Target::Vm(vm) => vm,
            Target::Group(g, size) => {
                let mut key = [0u8; 13];
                key[..4].copy_from_slice(&src.to_be_bytes());
                key[4..8].copy_from_slice(&dst.to_be_bytes());
                key[8] = proto;
                key[9..11].copy_from_slice(&sport.to_be_bytes());
                key[11..13].copy_from_slice(&dport.to_be_bytes());
                let m = (sluice_runtime::hash::crc32(&key) % u32::from(size.max(1))) as u16;
                match self.members.get(&(g, m)) {
                    Some(&vm) => vm,
                    None => return (Verdict::Drop(r.members_miss), head, len),
                }
            }
        };
        buf[head + 30..head + 34].copy_from_slice(&vm.to_be_bytes());
        fix32(buf, head + 24, dst, vm, false);
        fix32(buf, csum_at, dst, vm, udp);
        let Some(place) = self.location.get(&vm).copied() else {
            return (Verdict::Drop(r.v.miss), head, len);
        };
        let (local, host, out, is_gre) = match place {
            Place::Deliver(out) => return (Verdict::Forward(out), head, len),
            Place::Ipip(l, h, o) => (l, h, o, false),
            Place::Gre(l, h, o) => (l, h, o, true),
        };
        if f.tunnelled && !ttl_down(buf, head) {
            return (Verdict::Drop(r.v.ttl), head, len);
        }
        let (h, l) = encap(buf, head, len, l4, false, local, host, is_gre);
        (Verdict::Forward(out), h, l)
    }
}
