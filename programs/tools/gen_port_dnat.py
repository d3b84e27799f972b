#!/usr/bin/env python3
"""Writes programs/port_dnat.pcap and, independently of Sluice, the output that
port_dnat.sluice with port_dnat.entries must produce (programs/port_dnat.expected/).

The expected packets are built from scratch with their checksums summed over the
whole packet, so the golden test checks Sluice's incremental updates against a
full recomputation. Standard library only. Run from the repository root:
    python3 programs/tools/gen_port_dnat.py
"""
import os
import struct

from netbytes import csum, ip

PUBLIC = "203.0.113.10"
BASE_TS = 1_700_000_000


def eth(payload, ethertype=0x0800):
    return bytes.fromhex("020000000002") + bytes.fromhex("020000000001") + struct.pack("!H", ethertype) + payload


def ipv4(src, dst, proto, payload, ident=1, flags=0, frag=0, ttl=64, options=b"", total=None):
    ihl = 5 + len(options) // 4
    total = total if total is not None else ihl * 4 + len(payload)
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, ident, (flags << 13) | frag, ttl, proto, 0, ip(src), ip(dst)) + options
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def l4(proto, src, dst, sport, dport, data, flags=0x02, zero_udp_csum=False):
    if proto == 6:
        hdr = struct.pack("!HHIIBBHHH", sport, dport, 1000, 0, 5 << 4, flags, 65535, 0, 0)
    else:
        hdr = struct.pack("!HHHH", sport, dport, 8 + len(data), 0)
    seg = hdr + data
    if proto == 17 and zero_udp_csum:
        return seg
    pseudo = ip(src) + ip(dst) + struct.pack("!BBH", 0, proto, len(seg))
    c = csum(pseudo + seg)
    if proto == 17 and c == 0:
        c = 0xFFFF
    off = 16 if proto == 6 else 6
    return seg[:off] + struct.pack("!H", c) + seg[off + 2:]


def flow(proto, src, dst, sport, dport, data=b"hello", **kw):
    return eth(ipv4(src, dst, proto, l4(proto, src, dst, sport, dport, data, **{k: v for k, v in kw.items() if k in ("flags", "zero_udp_csum")}),
                    **{k: v for k, v in kw.items() if k in ("ident", "options", "ttl")}))


def write_pcap(path, records):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for ts, data, orig in records:
            f.write(struct.pack("<IIII", BASE_TS + ts // 1_000_000, ts % 1_000_000, len(data), orig))
            f.write(data)


def main():
    inputs = []   # (data, orig_len)
    expected = {}  # port -> [(index, data, orig_len)]

    def add(pkt, out=None, cut=None):
        """pkt: the input packet; out: (port, expected full output packet) or None if dropped."""
        idx = len(inputs)
        data = pkt if cut is None else pkt[:cut]
        inputs.append((data, len(pkt)))
        if out is not None:
            port, opkt = out
            odata = opkt if cut is None else opkt[:cut]
            expected.setdefault(port, []).append((idx, odata, len(opkt)))

    c1, c2, c3 = "198.51.100.7", "198.51.100.8", "198.51.100.9"
    # TCP and UDP to the public address: the destination port picks the VM.
    add(flow(6, c1, PUBLIC, 40000, 8080), (1, flow(6, c1, "10.0.0.1", 40000, 8080)))
    add(flow(6, c2, PUBLIC, 40001, 8150, b"GET / HTTP/1.0\r\n\r\n", flags=0x18),
        (2, flow(6, c2, "10.0.0.2", 40001, 8150, b"GET / HTTP/1.0\r\n\r\n", flags=0x18)))
    add(flow(17, c3, PUBLIC, 5353, 53, b"\x12\x34\x01\x00\x00\x01"), (3, flow(17, c3, "10.0.0.3", 5353, 53, b"\x12\x34\x01\x00\x00\x01")))
    # A UDP checksum of 0 (no checksum) stays 0.
    add(flow(17, c3, PUBLIC, 5000, 8001, b"nochecksum", zero_udp_csum=True),
        (1, flow(17, c3, "10.0.0.1", 5000, 8001, b"nochecksum", zero_udp_csum=True)))
    # A VM's reply: dnat misses, snat gives it the public source.
    add(flow(6, "10.0.0.1", c1, 8080, 40000, flags=0x12), (0, flow(6, PUBLIC, c1, 8080, 40000, flags=0x12)))
    add(flow(17, "10.0.0.3", c3, 53, 5353, b"answer"), (0, flow(17, PUBLIC, c3, 53, 5353, b"answer")))
    # Edges of the port ranges.
    add(flow(6, c1, PUBLIC, 40002, 8000), (1, flow(6, c1, "10.0.0.1", 40002, 8000)))
    add(flow(6, c1, PUBLIC, 40003, 8199), (2, flow(6, c1, "10.0.0.2", 40003, 8199)))
    # An unassigned port: dnat misses, snat misses (the client is no VM): dropped.
    add(flow(6, c1, PUBLIC, 40004, 9999))
    add(flow(6, c1, PUBLIC, 40005, 7999))
    # IPv4 options (Router Alert + padding): the header is longer, the policy the same.
    opts = bytes([0x94, 0x04, 0x00, 0x00])
    add(flow(6, c2, PUBLIC, 40006, 8090, options=opts), (1, flow(6, c2, "10.0.0.1", 40006, 8090, options=opts)))
    # A capture cut by its snaplen: 1400 bytes on the wire, 96 captured. The output is the
    # first 96 bytes of the uncut packet's output.
    big = bytes(range(256)) * 5 + bytes(80)
    add(flow(6, c1, PUBLIC, 40007, 8081, big, flags=0x18), (1, flow(6, c1, "10.0.0.1", 40007, 8081, big, flags=0x18)), cut=96)
    # Fragments of one UDP datagram to port 8002: the first (with the UDP header) is
    # translated, with the UDP checksum that covers the whole datagram; the second is dropped.
    payload = bytes((i * 7) & 0xFF for i in range(1200))
    seg_in = l4(17, c2, PUBLIC, 6000, 8002, payload)
    seg_out = l4(17, c2, "10.0.0.1", 6000, 8002, payload)
    first = 1000
    add(eth(ipv4(c2, PUBLIC, 17, seg_in[:first], ident=77, flags=1)),
        (1, eth(ipv4(c2, "10.0.0.1", 17, seg_out[:first], ident=77, flags=1))))
    add(eth(ipv4(c2, PUBLIC, 17, seg_in[first:], ident=77, frag=first // 8)))
    # Not IPv4 TCP or UDP.
    icmp = struct.pack("!BBHHH", 8, 0, 0, 1, 1) + b"ping"
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    add(eth(ipv4(c1, PUBLIC, 1, icmp)))
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, bytes.fromhex("020000000001"), ip(c1), bytes(6), ip(PUBLIC))
    add(eth(arp, 0x0806))
    ip6 = struct.pack("!IHBB16s16s", 0x60000000, 8 + 4, 17, 64, bytes(15) + b"\x01", bytes(15) + b"\x02")
    add(eth(ip6 + struct.pack("!HHHH", 1000, 53, 12, 0) + b"abcd", 0x86DD))
    # A packet cut inside its IPv4 header: the parser stops, the packet is dropped.
    add(flow(6, c1, PUBLIC, 40008, 8080), cut=30)
    # A 14-byte frame (Ethernet header only): not IPv4.
    add(eth(b"", 0x9000))

    os.makedirs("programs/port_dnat.expected", exist_ok=True)
    write_pcap("programs/port_dnat.pcap", [(i * 1000, d, o) for i, (d, o) in enumerate(inputs)])
    for port, pkts in expected.items():
        write_pcap(f"programs/port_dnat.expected/port-{port}.pcap", [(i * 1000, d, o) for i, d, o in pkts])
    print(f"{len(inputs)} packets in, {sum(len(v) for v in expected.values())} expected out")


if __name__ == "__main__":
    main()
