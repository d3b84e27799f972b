#!/usr/bin/env python3
"""Writes a benchmark workload for port_dnat.sluice: an entries file with N dnat entries
(public addresses x port ranges of 64 ports) and a pcap of M packets of 64 to 1,500
bytes (TCP and UDP to assigned ports, replies from VMs, a few misses). Standard library only.

    python3 programs/tools/gen_bench.py --entries 1000 --packets 1000000 --out-dir bench/1k
"""
import argparse
import os
import random
import struct

from netbytes import csum


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1000)
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    os.makedirs(a.out_dir, exist_ok=True)
    ranges_per_ip = 1000
    n_ips = max(1, (a.entries + ranges_per_ip - 1) // ranges_per_ip)
    per_ip = min(ranges_per_ip, a.entries)
    publics = [0xCB000000 | (i + 1) for i in range(n_ips)]  # 203.x.x.x
    vms = []
    with open(os.path.join(a.out_dir, "port_dnat.entries"), "w") as f:
        n = 0
        for pub in publics:
            for r in range(per_ip):
                if n == a.entries:
                    break
                lo = 1024 + r * 64
                vm = 0x0A000000 | (len(vms) + 1)
                vms.append(vm)
                f.write("table_add dnat to_vm %s %d->%d => %s %d 10\n" % (ip(pub), lo, lo + 63, ip(vm), 1 + (n % 8)))
                n += 1
        for vm in vms[:1000]:
            f.write("table_add snat from_vm %s => %s 0\n" % (ip(vm), ip(publics[0])))
    hdr = bytes.fromhex("020000000002020000000001") + b"\x08\x00"
    payload = bytes(range(256)) * 6
    with open(os.path.join(a.out_dir, "port_dnat.pcap"), "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for i in range(a.packets):
            size = rnd.randint(64, 1500)
            k = rnd.random()
            proto = 6 if rnd.random() < 0.7 else 17
            if k < 0.9:
                pub = rnd.choice(publics)
                src, dst = 0xC6336400 | rnd.randint(1, 254), pub
                sport, dport = rnd.randint(1024, 65535), 1024 + rnd.randint(0, per_ip - 1) * 64 + rnd.randint(0, 63)
            elif k < 0.95:
                src, dst = rnd.choice(vms[:1000]), 0xC6336400 | rnd.randint(1, 254)
                sport, dport = rnd.randint(1024, 65535), rnd.randint(1024, 65535)
            else:
                src, dst = 0xC6336400 | rnd.randint(1, 254), rnd.choice(publics)
                sport, dport = rnd.randint(1024, 65535), rnd.randint(1, 1023)
            l4len = size - 14 - 20
            if proto == 6:
                l4 = struct.pack("!HHIIBBHHH", sport, dport, i, 0, 0x50, 0x18, 65535, rnd.randint(0, 65535), 0)
            else:
                l4 = struct.pack("!HHHH", sport, dport, l4len, rnd.randint(1, 65535))
            l4 += payload[: l4len - len(l4)]
            iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), i & 0xFFFF, 0x4000, 64, proto, 0,
                              src.to_bytes(4, "big"), dst.to_bytes(4, "big"))
            iph = iph[:10] + struct.pack("!H", csum(iph)) + iph[12:]
            pkt = hdr + iph + l4
            f.write(struct.pack("<IIII", 1_700_000_000 + i // 1_000_000, i % 1_000_000, len(pkt), len(pkt)))
            f.write(pkt)
    print("%d entries, %d packets in %s" % (a.entries, a.packets, a.out_dir))


def ip(v):
    return "%d.%d.%d.%d" % (v >> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255)


if __name__ == "__main__":
    main()
