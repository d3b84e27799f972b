//! Hand-written Rust implementations of the shipped policies: the "native" reference that
//! `sluice bench` holds the JIT against. Each is what an expert would write for that one
//! policy (direct arrays for port ranges, incremental checksums), built from the same tables.

use sluice_compiler::ir::Program;
use sluice_runtime::packet::Verdict;
use sluice_runtime::table::{MatchValue, TableSet};
use std::collections::HashMap;

/// A policy compiled by hand: processes a packet in place.
pub trait Native {
    fn process(&self, pkt: &mut [u8]) -> Verdict;
}

/// Builds the reference for a program, by its file name, if there is one.
pub fn for_program(name: &str, prog: &Program, tables: &TableSet) -> Option<Box<dyn Native>> {
    match name {
        "port_dnat" => PortDnat::new(prog, tables).map(|n| Box::new(n) as Box<dyn Native>),
        _ => None,
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
        let dnat_t = &tables.tables[tables.by_name("dnat")?];
        let snat_t = &tables.tables[tables.by_name("snat")?];
        let mut dnat: HashMap<u32, Box<[u32]>, rustc_hash::FxBuildHasher> = HashMap::default();
        let mut vms = Vec::new();
        // Lower priority values win: fill from the lowest priority (largest number) up.
        let mut entries: Vec<_> = dnat_t.entries().collect();
        entries.sort_by_key(|e| (std::cmp::Reverse(e.priority), std::cmp::Reverse(e.handle)));
        for e in entries {
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
            let MatchValue::Exact(ip) = e.key[0] else {
                return None;
            };
            snat.insert(ip as u32, (e.call.args[0] as u32, e.call.args[1] as u16));
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
