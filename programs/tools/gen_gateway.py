#!/usr/bin/env python3
"""Writes a gateway workload for port_dnat.sluice at scale: N public addresses, each with R
port ranges (its ports 1024-65535 split evenly, one VM each), and a pcap of M packets to
random addresses and ports (nine in ten inside a range; the rest below 1024, which misses).
Also writes gateway.sluice: port_dnat.sluice with the dnat table's `size` raised to hold
N x R entries, as a user raises it. Standard library only.

    python3 programs/tools/gen_gateway.py --addresses 100000 --ranges 32 --packets 200000 --out-dir /tmp/gw
    sluice bench /tmp/gw/gateway.sluice --entries /tmp/gw/gateway.entries --in /tmp/gw/gateway.pcap
"""
import argparse
import os
import random

from netbytes import dotted as ip, l4_packet, pcap_header, pcap_record


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addresses", type=int, default=100000)
    ap.add_argument("--ranges", type=int, default=32)
    ap.add_argument("--packets", type=int, default=200000)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    os.makedirs(a.out_dir, exist_ok=True)
    width = (65536 - 1024) // a.ranges
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "port_dnat.sluice")) as f:
        prog = f.read()
    size = 1 << max(20, (a.addresses * a.ranges - 1).bit_length())
    with open(os.path.join(a.out_dir, "gateway.sluice"), "w") as f:
        f.write(prog.replace("size 1048576;", "size %d;" % size, 1))
    # Public addresses from 100.64.0.0 on (shared address space), VMs from 10.0.0.0 on.
    publics = [0x64400000 + i for i in range(a.addresses)]
    with open(os.path.join(a.out_dir, "gateway.entries"), "w") as f:
        vm = 0x0A000001
        for pub in publics:
            for r in range(a.ranges):
                lo = 1024 + r * width
                f.write("table_add dnat to_vm %s %d->%d => %s %d 10\n" % (ip(pub), lo, lo + width - 1, ip(vm), 1 + r % 8))
                vm += 1
    with open(os.path.join(a.out_dir, "gateway.pcap"), "wb") as f:
        pcap_header(f)
        for i in range(a.packets):
            dst = rnd.choice(publics)
            dport = rnd.randint(1024, 1024 + a.ranges * width - 1) if rnd.random() < 0.9 else rnd.randint(1, 1023)
            src, sport = 0xC6336400 | rnd.randint(1, 254), rnd.randint(1024, 65535)
            proto = 6 if rnd.random() < 0.7 else 17
            size = rnd.randint(64, 256)
            pcap_record(f, i, l4_packet(src, dst, proto, sport, dport, size, i))
    print("%d addresses x %d ranges = %d entries, %d packets in %s"
          % (a.addresses, a.ranges, a.addresses * a.ranges, a.packets, a.out_dir))



if __name__ == "__main__":
    main()
