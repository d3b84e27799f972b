//! Counters of a running switch: every packet in is either forwarded or dropped with a reason.
//!
//! Counters are plain integers indexed by port, reason, table or action: the datapath updates
//! them without hashing, locking or atomic read-modify-write.

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub packets_in: u64,
    /// Per ingress port, indexed by port number (grown on demand).
    pub in_by_port: Vec<u64>,
    /// Per egress port, indexed by port number (grown on demand).
    pub forwarded: Vec<u64>,
    /// Per drop reason id (the program's reason table).
    pub dropped: Vec<u64>,
    pub table_hits: Vec<u64>,
    pub table_misses: Vec<u64>,
    pub action_runs: Vec<u64>,
    /// Per egress port: packets forwarded there that its output could not take (it failed,
    /// and the switch stopped writing it). They count as forwarded as well.
    pub unwritten: Vec<u64>,
    /// Per egress port: packets written cut to the output's snaplen (256 KiB).
    pub cut: Vec<u64>,
    /// Input records not run at all (a timestamp an output could not hold); not in
    /// `packets_in`.
    pub skipped: u64,
    /// Packets the program forwarded that the switch then dropped, by [`SwitchDrop`]: they
    /// count as dropped, not forwarded.
    pub switch_dropped: [u64; SwitchDrop::COUNT],
    /// Per port on a Linux interface (`serve --port`), indexed by port number (grown on
    /// demand; empty for ports without an interface).
    pub links: Vec<LinkCounters>,
}

/// Why the switch dropped a packet the program forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwitchDrop {
    /// Its port has neither an interface nor an output file.
    NoSuchPort = 0,
    /// Longer than its port's interface takes (MTU and Ethernet header).
    TooLong = 1,
    /// The interface refused it (it went down, or its ring stayed full).
    SendFailed = 2,
}

impl SwitchDrop {
    pub const COUNT: usize = 3;
    pub const ALL: [SwitchDrop; SwitchDrop::COUNT] = [
        SwitchDrop::NoSuchPort,
        SwitchDrop::TooLong,
        SwitchDrop::SendFailed,
    ];

    /// As `stats` and the summary list it among the drop reasons.
    pub fn name(self) -> &'static str {
        match self {
            SwitchDrop::NoSuchPort => "no such port",
            SwitchDrop::TooLong => "too long for port",
            SwitchDrop::SendFailed => "send failed",
        }
    }
}

/// What a port on an interface saw: BMv2's per-port view, with the ring's overruns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkCounters {
    pub received: u64,
    pub received_bytes: u64,
    pub sent: u64,
    pub sent_bytes: u64,
    /// Packets the kernel dropped because the receive ring was full.
    pub overruns: u64,
    /// Packets that arrived here and were dropped, by the program's reason (indexed like
    /// `Stats::dropped`).
    pub dropped: Vec<u64>,
    /// Packets that arrived here that the switch dropped after the program forwarded them.
    pub switch_dropped: [u64; SwitchDrop::COUNT],
}

impl LinkCounters {
    fn add(&mut self, o: &LinkCounters) {
        self.received += o.received;
        self.received_bytes += o.received_bytes;
        self.sent += o.sent;
        self.sent_bytes += o.sent_bytes;
        self.overruns += o.overruns;
        add_all(&mut self.dropped, &o.dropped);
        for (a, b) in self.switch_dropped.iter_mut().zip(o.switch_dropped) {
            *a += b;
        }
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum::<u64>() + self.switch_dropped.iter().sum::<u64>()
    }
}

// The datapath bumps a counter per packet: the common case inline, growing out of line.
#[inline(always)]
fn bump(v: &mut Vec<u64>, i: usize) {
    match v.get_mut(i) {
        Some(n) => *n += 1,
        None => grow_and_bump(v, i),
    }
}

#[cold]
#[inline(never)]
fn grow_and_bump(v: &mut Vec<u64>, i: usize) {
    v.resize(i + 1, 0);
    v[i] = 1;
}

/// `a[i] += b[i]`, growing `a` as needed.
fn add_all(a: &mut Vec<u64>, b: &[u64]) {
    if a.len() < b.len() {
        a.resize(b.len(), 0);
    }
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

impl Stats {
    /// Adds another thread's counters into these (workers count apart; a summary or `stats`
    /// shows their sum).
    pub fn add(&mut self, o: &Stats) {
        self.packets_in += o.packets_in;
        add_all(&mut self.in_by_port, &o.in_by_port);
        add_all(&mut self.forwarded, &o.forwarded);
        add_all(&mut self.dropped, &o.dropped);
        add_all(&mut self.table_hits, &o.table_hits);
        add_all(&mut self.table_misses, &o.table_misses);
        add_all(&mut self.action_runs, &o.action_runs);
        add_all(&mut self.unwritten, &o.unwritten);
        add_all(&mut self.cut, &o.cut);
        self.skipped += o.skipped;
        self.add_switch_parts(o);
    }

    fn add_switch_parts(&mut self, o: &Stats) {
        for (a, b) in self.switch_dropped.iter_mut().zip(o.switch_dropped) {
            *a += b;
        }
        if self.links.len() < o.links.len() {
            self.links.resize(o.links.len(), LinkCounters::default());
        }
        for (a, b) in self.links.iter_mut().zip(&o.links) {
            a.add(b);
        }
    }

    /// A port's interface counters, made on first use.
    pub fn link(&mut self, port: u16) -> &mut LinkCounters {
        let i = usize::from(port);
        if self.links.len() <= i {
            self.links.resize(i + 1, LinkCounters::default());
        }
        &mut self.links[i]
    }

    /// A packet the program forwarded to `port` that the switch dropped instead: it moves
    /// from forwarded to dropped, so that in = forwarded + dropped still holds.
    pub fn unforward(&mut self, port: u16, why: SwitchDrop) {
        if let Some(n) = self.forwarded.get_mut(usize::from(port)) {
            *n = n.saturating_sub(1);
        }
        self.switch_dropped[why as usize] += 1;
    }

    pub fn new(reasons: usize, tables: usize, actions: usize) -> Stats {
        Stats {
            dropped: vec![0; reasons],
            table_hits: vec![0; tables],
            table_misses: vec![0; tables],
            action_runs: vec![0; actions],
            ..Stats::default()
        }
    }

    #[inline]
    pub fn count_in(&mut self, port: u16) {
        self.packets_in += 1;
        bump(&mut self.in_by_port, port as usize);
    }

    #[inline]
    pub fn count_forward(&mut self, port: u16) {
        bump(&mut self.forwarded, port as usize);
    }

    #[inline]
    pub fn count_drop(&mut self, reason: u16) {
        bump(&mut self.dropped, reason as usize);
    }

    /// Counts a packet's fate: forwarded on its port, or dropped for its reason.
    #[inline]
    pub fn count_verdict(&mut self, v: crate::packet::Verdict) {
        match v {
            crate::packet::Verdict::Forward(p) => self.count_forward(p),
            crate::packet::Verdict::Drop(r) => self.count_drop(r),
        }
    }

    /// Counts a packet forwarded to `port` that its output could not take.
    pub fn count_unwritten(&mut self, port: u16) {
        bump(&mut self.unwritten, port as usize);
    }

    /// Counts a packet written to `port` cut to the snaplen.
    pub fn count_cut(&mut self, port: u16) {
        bump(&mut self.cut, port as usize);
    }

    /// (port, packets) for every port that forwarded a packet.
    pub fn forwarded_ports(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        nonzero(&self.forwarded)
    }

    /// (port, packets) for every port that received a packet.
    pub fn in_ports(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        nonzero(&self.in_by_port)
    }

    pub fn forwarded_total(&self) -> u64 {
        self.forwarded.iter().sum()
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum::<u64>() + self.switch_dropped.iter().sum::<u64>()
    }

    /// in = forwarded + dropped: the invariant every summary states.
    pub fn balanced(&self) -> bool {
        self.packets_in == self.forwarded_total() + self.dropped_total()
    }

    /// Adds another switch's counters (same program) into these.
    pub fn merge(&mut self, other: &Stats) {
        self.packets_in += other.packets_in;
        self.skipped += other.skipped;
        self.add_switch_parts(other);
        for (dst, src) in [
            (&mut self.unwritten, &other.unwritten),
            (&mut self.cut, &other.cut),
            (&mut self.in_by_port, &other.in_by_port),
            (&mut self.forwarded, &other.forwarded),
            (&mut self.dropped, &other.dropped),
            (&mut self.table_hits, &other.table_hits),
            (&mut self.table_misses, &other.table_misses),
            (&mut self.action_runs, &other.action_runs),
        ] {
            if dst.len() < src.len() {
                dst.resize(src.len(), 0);
            }
            for (d, s) in dst.iter_mut().zip(src) {
                *d += s;
            }
        }
    }

    /// Equal counts, ignoring trailing zeros of the grown vectors.
    pub fn same_counts(&self, other: &Stats) -> bool {
        let trim = |v: &[u64]| -> Vec<u64> {
            let n = v.iter().rposition(|x| *x != 0).map_or(0, |i| i + 1);
            v[..n].to_vec()
        };
        self.packets_in == other.packets_in
            && trim(&self.in_by_port) == trim(&other.in_by_port)
            && trim(&self.forwarded) == trim(&other.forwarded)
            && self.dropped == other.dropped
            && self.switch_dropped == other.switch_dropped
            && self.table_hits == other.table_hits
            && self.table_misses == other.table_misses
            && self.action_runs == other.action_runs
    }
}

fn nonzero(v: &[u64]) -> impl Iterator<Item = (u16, u64)> + '_ {
    v.iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(p, n)| (p as u16, *n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_balance_and_merge() {
        let mut a = Stats::new(2, 1, 1);
        a.count_in(3);
        a.count_forward(7);
        a.count_in(0);
        a.count_drop(1);
        assert!(a.balanced());
        assert_eq!(a.forwarded_ports().collect::<Vec<_>>(), [(7, 1)]);
        assert_eq!(a.in_ports().collect::<Vec<_>>(), [(0, 1), (3, 1)]);
        let mut b = Stats::new(2, 1, 1);
        b.count_in(1);
        b.count_forward(1);
        b.merge(&a);
        assert_eq!(b.packets_in, 3);
        assert_eq!(b.forwarded_ports().collect::<Vec<_>>(), [(1, 1), (7, 1)]);
        assert!(b.balanced());
        assert!(!b.same_counts(&a));
    }
}
