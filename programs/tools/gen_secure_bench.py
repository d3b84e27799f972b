#!/usr/bin/env python3
"""Captures for benchmarking the sealed tunnels (docs/performance.md): packets of 1,400 bytes
(Ethernet frames of 1,414) from clients to the public address (the gateway seals them to the
VM's host) and from the VM to a client with a token (the host seals them to the gateway).
Standard library only. From the repository root:
    python3 programs/tools/gen_secure_bench.py --packets 20000 --out-dir /tmp/sb
then, for what the host sends the gateway:
    sluice run programs/host_secure.sluice --entries programs/host_secure.entries \\
        --in /tmp/sb/vm.pcap --out-dir /tmp/sb/sealed     (-> /tmp/sb/sealed/port-1.pcap)
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from gen_tunnels import BASE_TS, Pkt, frame, write_pcap  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=20000)
    ap.add_argument("--out-dir", required=True)
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    data = bytes(i % 251 for i in range(1400 - 20 - 20))
    clients, vm = [], []
    for i in range(a.packets):
        sport = 1024 + i % 60000
        # To the VM's public ports 8000-8099 (gateway_secure seals, gateway tunnels).
        c = Pkt("198.51.100.7", "203.0.113.10", 6, sport, 8000 + i % 100, data=data, ident=i & 0xFFFF)
        clients.append((BASE_TS, frame(c.datagram()), 14 + 1400))
        # The VM's replies from 80-179 to the client it has a token for.
        v = Pkt("10.0.0.1", "198.51.100.7", 6, 80 + i % 100, sport, data=data, ident=i & 0xFFFF)
        vm.append((BASE_TS, frame(v.datagram()), 14 + 1400))
    write_pcap(os.path.join(a.out_dir, "clients.pcap"), clients)
    write_pcap(os.path.join(a.out_dir, "vm.pcap"), vm)
    print("%d packets of 1,400 bytes in clients.pcap and vm.pcap" % a.packets)


if __name__ == "__main__":
    main()
