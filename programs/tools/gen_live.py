#!/usr/bin/env python3
"""Writes the capture that programs/tools/bench_live.sh replays with tcpreplay into the live
gateway of docs/tutorial.md §7 (programs/router_dnat.sluice and .entries): UDP packets from the
client 198.51.100.2 to the public address 203.0.113.10, destination ports 8000-8199 (the two
VMs' ranges), 256 source ports (so 256 x 200 flows for the workers' fanout to spread), framed
for the gateway's port 0 (02:00:00:00:01:01 -> 02:00:00:00:01:02). Standard library only.

    python3 programs/tools/gen_live.py --packets 1000000 --size 64 --out /tmp/live.pcap
"""
import argparse
import random

from netbytes import l4_packet, pcap_header, pcap_record

ETH = bytes.fromhex("020000000102020000000101") + b"\x08\x00"
CLIENT = 0xC6336402  # 198.51.100.2
PUBLIC = 0xCB00710A  # 203.0.113.10


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=1000000)
    ap.add_argument("--size", type=int, default=64, help="frame bytes, without the FCS")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    with open(a.out, "wb") as f:
        pcap_header(f)
        for i in range(a.packets):
            sport = 40000 + rnd.randrange(256)
            dport = 8000 + rnd.randrange(200)
            pkt = l4_packet(CLIENT, PUBLIC, 17, sport, dport, a.size, i)
            pcap_record(f, i, ETH + pkt[14:])


if __name__ == "__main__":
    main()
