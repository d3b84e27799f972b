#!/usr/bin/env python3
"""Writes an ACL workload for programs/acl.sluice: N rules in the shape of ClassBench's ACL
seeds (Taylor and Turner, 2007) and a pcap where half the packets are built to match a
random rule and half are random headers (mostly misses, which probe every tuple).

The rules follow the seeds' proportions, from the ClassBench paper's ACL figures: source and
destination prefixes of mixed lengths (many /32 hosts and /24 networks, some short prefixes
and wildcards) drawn inside a few hundred networks so that prefixes nest; the source port
almost always any; the destination port exact (well-known ports), any, or one of the usual
ranges (1024-65535, 0-1023) or an arbitrary one; TCP, UDP or any protocol. Priorities are
the rules' order, the first rule winning, as ClassBench's filter sets are read. Standard
library only.

    python3 programs/tools/gen_acl.py --rules 10000 --packets 200000 --out-dir /tmp/acl10k
"""
import argparse
import os
import random

from netbytes import dotted as ip, l4_packet, pcap_header, pcap_record

WELL_KNOWN = [20, 21, 22, 23, 25, 53, 67, 68, 80, 110, 123, 135, 137, 139, 143, 161, 179,
              389, 443, 445, 465, 514, 587, 636, 993, 995, 1433, 1521, 3306, 3389, 5432,
              8080, 8443]


def pick(rnd, table):
    """One value from a list of (weight, value)."""
    x = rnd.random() * sum(w for w, _ in table)
    for w, v in table:
        x -= w
        if x < 0:
            return v
    return table[-1][1]


def prefix(rnd, nets, lengths):
    length = pick(rnd, lengths)
    if callable(length):
        length = length(rnd)
    base = rnd.choice(nets) | rnd.getrandbits(16)
    mask = (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF if length else 0
    return base & mask, length


SRC_LENGTHS = [(30, 32), (20, 24), (15, lambda r: r.randint(25, 31)),
               (10, lambda r: r.randint(16, 23)), (10, lambda r: r.randint(8, 15)), (15, 0)]
DST_LENGTHS = [(45, 32), (25, 24), (15, lambda r: r.randint(25, 31)),
               (10, lambda r: r.randint(16, 23)), (5, 0)]


def dport(rnd):
    return pick(rnd, [
        (40, lambda: (lambda p: (p, p))(rnd.choice(WELL_KNOWN))),
        (25, lambda: (0, 65535)),
        (15, lambda: (1024, 65535)),
        (10, lambda: (0, 1023)),
        (10, lambda: (lambda lo: (lo, min(65535, lo + rnd.randint(1, 2000))))(rnd.randint(0, 60000))),
    ])()


def sport(rnd):
    return pick(rnd, [
        (90, lambda: (0, 65535)),
        (5, lambda: (1024, 65535)),
        (5, lambda: (lambda p: (p, p))(rnd.choice(WELL_KNOWN))),
    ])()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, default=10000)
    ap.add_argument("--packets", type=int, default=200000)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    os.makedirs(a.out_dir, exist_ok=True)
    # Networks the prefixes are drawn in: /16s, so that /24s and /32s nest inside them.
    src_nets = [rnd.getrandbits(16) << 16 for _ in range(300)]
    dst_nets = [rnd.getrandbits(16) << 16 for _ in range(200)]
    rules = []
    seen = set()
    while len(rules) < a.rules:
        s = prefix(rnd, src_nets, SRC_LENGTHS)
        d = prefix(rnd, dst_nets, DST_LENGTHS)
        sp, dp = sport(rnd), dport(rnd)
        proto = pick(rnd, [(60, (6, 255)), (25, (17, 255)), (15, (0, 0))])
        key = (s, d, sp, dp, proto)
        if key in seen:
            continue
        seen.add(key)
        permit = rnd.random() < 0.7
        rules.append((key, permit))
    with open(os.path.join(a.out_dir, "acl.entries"), "w") as f:
        for prio, ((s, d, sp, dp, proto), permit) in enumerate(rules, 1):
            dmask = (0xFFFFFFFF << (32 - d[1])) & 0xFFFFFFFF if d[1] else 0
            match = "%s/%d %s&&&%s %d->%d %d->%d %d&&&%d" % (
                ip(s[0]), s[1], ip(d[0]), ip(dmask), sp[0], sp[1], dp[0], dp[1], proto[0], proto[1])
            if permit:
                f.write("table_add acl permit %s => %d %d\n" % (match, 1 + prio % 4, prio))
            else:
                f.write("table_add acl deny %s => %d\n" % (match, prio))
    with open(os.path.join(a.out_dir, "acl.pcap"), "wb") as f:
        pcap_header(f)
        for i in range(a.packets):
            if i % 2 == 0:
                (s, d, sp, dp, proto), _ = rnd.choice(rules)
                src = s[0] | (rnd.getrandbits(32) & ((1 << (32 - s[1])) - 1))
                dst = d[0] | (rnd.getrandbits(32) & ((1 << (32 - d[1])) - 1))
                sport_, dport_ = rnd.randint(*sp), rnd.randint(*dp)
                p = proto[0] if proto[1] else rnd.choice([6, 17])
            else:
                src, dst = rnd.getrandbits(32), rnd.getrandbits(32)
                sport_, dport_ = rnd.randint(0, 65535), rnd.randint(0, 65535)
                p = rnd.choice([6, 17])
            size = rnd.randint(64, 256)
            pcap_record(f, i, l4_packet(src, dst, p, sport_, dport_, size, i))
    print("%d rules, %d packets in %s" % (len(rules), a.packets, a.out_dir))



if __name__ == "__main__":
    main()
