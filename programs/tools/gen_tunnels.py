#!/usr/bin/env python3
"""Writes the sample captures of vnet.sluice, gateway.sluice, host.sluice and vnet_auth.sluice
and, computed here independently of Sluice, what each program with its programs/*.entries must
output (programs/NAME.expected/port-N.pcap).

Each expected packet is built from scratch (outer headers, translated addresses and ports) and
its checksums are summed over the whole packet; a packet that arrived with a wrong checksum is
expected to leave wrong by the same amount; a packet cut by its snaplen is expected as the first
bytes of the uncut packet's output. Standard library only. From the repository root:
    python3 programs/tools/gen_tunnels.py
"""
import os
import random
import struct
import zlib

from netbytes import csum, ip

ETH = bytes.fromhex("020000000002020000000001")
BASE_TS = 1_750_000_000


def oc_add(a, b):
    s = a + b
    return (s & 0xFFFF) + (s >> 16)


def ipv4_header(src, dst, proto, payload_len, ttl=64, ident=1, flags=0, frag=0, options=b"", tos=0):
    ihl = 5 + len(options) // 4
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, ihl * 4 + payload_len, ident, (flags << 13) | frag, ttl, proto, 0,
                    ip(src), ip(dst)) + options
    return h[:10] + struct.pack("!H", csum(h)) + h[12:]


def l4(proto, src, dst, sport, dport, data, zero_udp=False):
    if proto == 6:
        seg = struct.pack("!HHIIBBHHH", sport, dport, 7, 0, 0x50, 0x18, 8192, 0, 0) + data
        off = 16
    else:
        seg = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
        off = 6
        if zero_udp:
            return seg
    c = csum(ip(src) + ip(dst) + struct.pack("!BBH", 0, proto, len(seg)) + seg)
    if proto == 17 and c == 0:
        c = 0xFFFF
    return seg[:off] + struct.pack("!H", c) + seg[off + 2:]


class Pkt:
    """An IPv4 packet described by its fields, so that the expected output can be rebuilt."""

    def __init__(self, src, dst, proto=17, sport=1000, dport=80, data=b"hello", ttl=64, ident=1, flags=2,
                 frag=0, options=b"", zero_udp=False, bad_ip=0, bad_l4=0):
        self.__dict__.update(locals())
        del self.__dict__["self"]

    def datagram(self, **over):
        d = dict(self.__dict__)
        d.update(over)
        if d["proto"] in (6, 17) and d["frag"] == 0:
            pay = l4(d["proto"], d["src"], d["dst"], d["sport"], d["dport"], d["data"], d["zero_udp"])
            if d["bad_l4"]:
                off = 16 if d["proto"] == 6 else 6
                c = struct.unpack("!H", pay[off:off + 2])[0]
                pay = pay[:off] + struct.pack("!H", (c + d["bad_l4"]) & 0xFFFF) + pay[off + 2:]
        else:
            pay = d["data"]
        h = ipv4_header(d["src"], d["dst"], d["proto"], len(pay), d["ttl"], d["ident"], d["flags"], d["frag"],
                        d["options"])
        if d["bad_ip"]:
            c = struct.unpack("!H", h[10:12])[0]
            h = h[:10] + struct.pack("!H", (c + d["bad_ip"]) & 0xFFFF) + h[12:]
        return h + pay


def encap_ipip(dgram, src, dst, proto=4, extra=b""):
    inner_total = struct.unpack("!H", dgram[2:4])[0]
    df = (dgram[6] >> 5) & 0b010
    h = ipv4_header(src, dst, proto, len(extra) + inner_total, ttl=64, ident=0, flags=df)
    # total_len comes from the inner header's field, as the programs compute it.
    return h + extra + dgram


def gre(dgram, src, dst):
    return encap_ipip(dgram, src, dst, proto=47, extra=struct.pack("!HH", 0, 0x0800))


def write_pcap(path, records):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for ts, data, orig in records:
            f.write(struct.pack("<IIII", ts, 0, len(data), orig))
            f.write(data)


class Case:
    def __init__(self, name):
        self.name = name
        self.inputs = []
        self.outputs = {}

    def add(self, frame, out=None, cut=None):
        """frame: the input frame; out: (port, expected full output frame) or None (dropped)."""
        i = len(self.inputs)
        data = frame if cut is None else frame[:cut]
        self.inputs.append((BASE_TS + i, data, len(frame)))
        if out is not None:
            port, oframe = out
            delta = len(oframe) - len(frame)
            odata = oframe if cut is None else oframe[:cut + delta]
            self.outputs.setdefault(port, []).append((BASE_TS + i, odata, len(oframe)))

    def write(self):
        os.makedirs("programs/%s.expected" % self.name, exist_ok=True)
        write_pcap("programs/%s.pcap" % self.name, self.inputs)
        for port, recs in self.outputs.items():
            write_pcap("programs/%s.expected/port-%d.pcap" % (self.name, port), recs)
        n = sum(len(v) for v in self.outputs.values())
        print("%s: %d packets in, %d expected out" % (self.name, len(self.inputs), n))


def frame(dgram):
    return ETH + b"\x08\x00" + dgram


def ttl_down(p):
    """The same packet with its TTL one lower (checksums recomputed, wrong ones kept wrong)."""
    q = Pkt(**p.__dict__)
    q.ttl -= 1
    return q


HOST_A, HOST_B, HOST_C, GW = "192.0.2.11", "192.0.2.12", "192.0.2.13", "192.0.2.1"


def vnet(rnd):
    c = Case("vnet")
    vm1, vm2, vm3 = "10.0.0.1", "10.0.0.2", "10.0.0.3"
    for i in range(300):
        kind = i % 12
        sport, dport = rnd.randint(1024, 65535), rnd.choice([80, 443, 53, 8080])
        proto = rnd.choice([6, 17])
        src = "10.0.9.%d" % rnd.randint(1, 254)
        if kind == 0:    # local delivery
            p = Pkt(src, vm1, proto, sport, dport, ident=i)
            c.add(frame(p.datagram()), (3, frame(p.datagram())))
        elif kind == 1:  # to a VM on host B: IP-in-IP, TTL kept (not arrived in a tunnel)
            p = Pkt(src, vm2, proto, sport, dport, ident=i, ttl=rnd.choice([1, 64]))
            c.add(frame(p.datagram()), (1, frame(encap_ipip(p.datagram(), HOST_A, HOST_B))))
        elif kind == 2:  # to a VM on host C: GRE
            p = Pkt(src, vm3, proto, sport, dport, ident=i, flags=rnd.choice([0, 2]))
            c.add(frame(p.datagram()), (1, frame(gre(p.datagram(), HOST_A, HOST_C))))
        elif kind == 3:  # arrived in IP-in-IP for the local VM: decapsulated, TTL kept
            p = Pkt(src, vm1, proto, sport, dport, ident=i)
            c.add(frame(encap_ipip(p.datagram(), HOST_B, HOST_A)), (3, frame(p.datagram())))
        elif kind == 4:  # arrived in GRE for a VM that moved on to B: routed, TTL - 1
            p = Pkt(src, vm2, proto, sport, dport, ident=i, ttl=rnd.choice([2, 64]))
            c.add(frame(gre(p.datagram(), HOST_C, HOST_A)),
                  (1, frame(encap_ipip(ttl_down(p).datagram(), HOST_A, HOST_B))))
        elif kind == 5:  # the same with TTL 1 or 0: dropped
            p = Pkt(src, vm2, proto, sport, dport, ident=i, ttl=rnd.choice([0, 1]))
            c.add(frame(encap_ipip(p.datagram(), HOST_C, HOST_A)))
        elif kind == 6:  # malformed GRE (flags, version or type): dropped
            p = Pkt(src, vm1, proto, sport, dport, ident=i)
            bad = struct.pack("!HH", rnd.choice([0x8000, 0x0001, 0x2000]), 0x0800) if i % 2 else struct.pack("!HH", 0, 0x86DD)
            c.add(frame(encap_ipip(p.datagram(), HOST_B, HOST_A, proto=47, extra=bad)))
        elif kind == 7:  # unknown VM: dropped
            p = Pkt(src, "10.0.0.99", proto, sport, dport, ident=i)
            c.add(frame(p.datagram()))
        elif kind == 8:  # IPv4 options, wrong checksums (offload), UDP checksum 0
            p = Pkt(src, vm2, 17, sport, dport, ident=i, options=bytes([0x94, 4, 0, 0]),
                    zero_udp=(i % 24 == 8), bad_l4=(0 if i % 24 == 8 else 0x100), bad_ip=0x0101)
            c.add(frame(p.datagram()), (1, frame(encap_ipip(p.datagram(), HOST_A, HOST_B))))
        elif kind == 9:  # a capture cut by its snaplen, and a non-first fragment (forwarded: vnet routes by address)
            p = Pkt(src, vm3, 6, sport, dport, ident=i, data=bytes(range(256)) * 4)
            c.add(frame(p.datagram()), (1, frame(gre(p.datagram(), HOST_A, HOST_C))), cut=96)
            f = Pkt(src, vm2, 17, ident=i, frag=185, flags=0, data=bytes(64))
            c.add(frame(f.datagram()), (1, frame(encap_ipip(f.datagram(), HOST_A, HOST_B))))
        elif kind == 10:  # not IPv4
            c.add(ETH + b"\x08\x06" + bytes(28))
            c.add(ETH + b"\x86\xdd" + bytes(48))
        else:  # ICMP to the local VM: delivered (vnet does not filter by protocol)
            p = Pkt(src, vm1, 1, data=b"\x08\x00\xf7\xff\x00\x00\x00\x00", ident=i)
            c.add(frame(p.datagram()), (3, frame(p.datagram())))
    c.write()


def crc_member(p, size):
    b = ip(p.src) + ip(p.dst) + bytes([p.proto]) + struct.pack("!HH", p.sport, p.dport)
    return zlib.crc32(b) % size


def gateway(rnd):
    c = Case("gateway")
    pub = "203.0.113.10"
    place = {"10.0.0.1": ("ipip", HOST_B.replace("12", "11"), 1), "10.0.0.2": ("gre", HOST_B, 2),
             "10.0.0.3": ("ipip", "192.0.2.11", 1), "10.0.0.4": ("gre", HOST_B, 2)}

    def to_host(p):
        kind, host, port = place[p.dst]
        d = p.datagram()
        return port, frame(encap_ipip(d, GW, host) if kind == "ipip" else gre(d, GW, host))

    for i in range(320):
        kind = i % 10
        client = "198.51.100.%d" % rnd.randint(1, 254)
        proto = rnd.choice([6, 17])
        sport = rnd.randint(1024, 65535)
        if kind in (0, 1):  # dnat to a VM by port
            dport = rnd.randint(8000, 8199)
            p = Pkt(client, pub, proto, sport, dport, ident=i)
            vm = "10.0.0.1" if dport < 8100 else "10.0.0.2"
            q = Pkt(**p.__dict__)
            q.dst = vm
            c.add(frame(p.datagram()), to_host(q))
        elif kind == 2:  # port 80: balanced over group 1
            p = Pkt(client, pub, proto, sport, 80, ident=i)
            vm = ["10.0.0.3", "10.0.0.4"][crc_member(p, 2)]
            q = Pkt(**p.__dict__)
            q.dst = vm
            c.add(frame(p.datagram()), to_host(q))
        elif kind == 3:  # a VM's reply back through its host's tunnel: snat, TTL kept, plain
            vm, lo = rnd.choice([("10.0.0.1", 8000), ("10.0.0.2", 8100)])
            r = Pkt(vm, client, proto, lo + rnd.randint(0, 99), sport, ident=i)
            out = Pkt(**r.__dict__)
            out.src = pub
            c.add(frame(encap_ipip(r.datagram(), "192.0.2.11", GW)), (0, frame(out.datagram())))
        elif kind == 4:  # a reply from a port outside the VM's range: dropped
            r = Pkt("10.0.0.1", client, proto, 9000, sport, ident=i)
            c.add(frame(encap_ipip(r.datagram(), "192.0.2.11", GW)))
        elif kind == 5:  # unassigned public port: dnat misses, snat misses
            c.add(frame(Pkt(client, pub, proto, sport, rnd.randint(1, 1023), ident=i).datagram()))
        elif kind == 6:  # a hairpin: a VM to the public address, through its tunnel: routed, TTL - 1
            r = Pkt("10.0.0.3", pub, 17, 5000, 8050, ident=i, ttl=rnd.choice([1, 64]))
            q = Pkt(**r.__dict__)
            q.dst = "10.0.0.1"
            if r.ttl <= 1:
                c.add(frame(gre(r.datagram(), HOST_B, GW)))
            else:
                q.ttl -= 1
                c.add(frame(gre(r.datagram(), HOST_B, GW)), to_host(q))
        elif kind == 7:  # not TCP or UDP; a non-first fragment
            c.add(frame(Pkt(client, pub, 1, data=b"\x08\x00\xf7\xff\x00\x00\x00\x00", ident=i).datagram()))
            c.add(frame(Pkt(client, pub, 17, frag=100, flags=0, data=bytes(40), ident=i).datagram()))
        elif kind == 8:  # options, wrong checksums, UDP zero, snaplen cut
            zero = i % 20 == 8
            p = Pkt(client, pub, 17, sport, 8010, ident=i, options=bytes([0x94, 4, 0, 0]), bad_ip=0x20,
                    bad_l4=(0 if zero else 0x7), zero_udp=zero)
            q = Pkt(**p.__dict__)
            q.dst = "10.0.0.1"
            c.add(frame(p.datagram()), to_host(q))
            big = Pkt(client, pub, 6, sport, 8120, ident=i, data=bytes(range(256)) * 5)
            qb = Pkt(**big.__dict__)
            qb.dst = "10.0.0.2"
            c.add(frame(big.datagram()), to_host(qb), cut=96)
        else:  # not IPv4
            c.add(ETH + b"\x08\x06" + bytes(28))
    c.write()


def host(rnd):
    c = Case("host")
    for i in range(240):
        kind = i % 6
        client = "198.51.100.%d" % rnd.randint(1, 254)
        proto = rnd.choice([6, 17])
        cport = rnd.randint(1024, 65535)
        if kind in (0, 1):  # from the gateway in IP-in-IP: port 8000-8099 becomes 80-179
            dport = rnd.randint(8000, 8099)
            p = Pkt(client, "10.0.0.1", proto, cport, dport, ident=i)
            q = Pkt(**p.__dict__)
            q.dport = (dport + 57616) % 65536
            c.add(frame(encap_ipip(p.datagram(), GW, HOST_A)), (3, frame(q.datagram())))
        elif kind == 2:  # the VM's reply: source port 80-179 becomes 8000-8099, IP-in-IP to the gateway
            sp = rnd.randint(80, 179)
            r = Pkt("10.0.0.1", client, proto, sp, cport, ident=i)
            q = Pkt(**r.__dict__)
            q.sport = sp + 7920
            c.add(frame(r.datagram()), (1, frame(encap_ipip(q.datagram(), HOST_A, GW))))
        elif kind == 3:  # a port outside the ranges: dropped either way
            c.add(frame(encap_ipip(Pkt(client, "10.0.0.1", proto, cport, 9000, ident=i).datagram(), GW, HOST_A)))
            c.add(frame(Pkt("10.0.0.1", client, proto, 5000, cport, ident=i).datagram()))
        elif kind == 4:  # UDP checksum 0 and a wrong TCP checksum keep their state
            r = Pkt("10.0.0.1", client, 17, 100, cport, ident=i, zero_udp=True)
            q = Pkt(**r.__dict__)
            q.sport = 8020
            c.add(frame(r.datagram()), (1, frame(encap_ipip(q.datagram(), HOST_A, GW))))
            t = Pkt(client, "10.0.0.1", 6, cport, 8001, ident=i, bad_l4=0x33)
            qt = Pkt(**t.__dict__)
            qt.dport = 81
            c.add(frame(encap_ipip(t.datagram(), GW, HOST_A)), (3, frame(qt.datagram())))
        else:  # ICMP and a fragment: dropped
            c.add(frame(Pkt("10.0.0.1", client, 1, data=bytes(8), ident=i).datagram()))
            c.add(frame(Pkt("10.0.0.1", client, 17, frag=50, flags=0, data=bytes(16), ident=i).datagram()))
    c.write()


def siphash24(key, msg):
    def rotl(x, b):
        return ((x << b) | (x >> (64 - b))) & 0xFFFFFFFFFFFFFFFF

    k0, k1 = struct.unpack("<QQ", key)
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D, k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]
    M = 0xFFFFFFFFFFFFFFFF

    def rnd():
        v[0] = (v[0] + v[1]) & M; v[1] = rotl(v[1], 13) ^ v[0]; v[0] = rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & M; v[3] = rotl(v[3], 16) ^ v[2]
        v[0] = (v[0] + v[3]) & M; v[3] = rotl(v[3], 21) ^ v[0]
        v[2] = (v[2] + v[1]) & M; v[1] = rotl(v[1], 17) ^ v[2]; v[2] = rotl(v[2], 32)

    b = len(msg) << 56
    end = len(msg) - len(msg) % 8
    for i in range(0, end, 8):
        m = struct.unpack("<Q", msg[i:i + 8])[0]
        v[3] ^= m; rnd(); rnd(); v[0] ^= m
    for i, x in enumerate(msg[end:]):
        b |= x << (8 * i)
    v[3] ^= b; rnd(); rnd(); v[0] ^= b
    v[2] ^= 0xFF
    for _ in range(4):
        rnd()
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def vnet_auth(rnd):
    c = Case("vnet_auth")
    key = bytes(range(16))
    expiry = 1_800_000_000
    assert siphash24(key, bytes(range(8))) == 0x93F5F5799A932462

    def auth(dgram, token, exp, nxt=4):
        extra = struct.pack("!QIB3s", token, exp, nxt, b"\0\0\0")
        return encap_ipip(dgram, HOST_B, HOST_A, proto=253, extra=extra)

    def tok(vm, exp=expiry, k=key):
        return siphash24(k, struct.pack("!I", exp) + ip(vm))

    for i in range(200):
        kind = i % 8
        src = "10.0.9.%d" % rnd.randint(1, 254)
        p = Pkt(src, "10.0.0.1", rnd.choice([6, 17]), rnd.randint(1024, 65535), 80, ident=i)
        if kind == 0:  # accepted and delivered
            c.add(frame(auth(p.datagram(), tok("10.0.0.1"), expiry)), (3, frame(p.datagram())))
        elif kind == 1:  # a token for another VM
            c.add(frame(auth(p.datagram(), tok("10.0.0.7"), expiry)))
        elif kind == 2:  # another secret
            c.add(frame(auth(p.datagram(), tok("10.0.0.1", k=bytes(16)), expiry)))
        elif kind == 3:  # expired (the capture time is later than the expiry)
            old = BASE_TS + len(c.inputs) - 1
            c.add(frame(auth(p.datagram(), tok("10.0.0.1", old), old)))
        elif kind == 4:  # a VM not hosted here (10.0.0.2 runs on host B)
            q = Pkt(src, "10.0.0.2", 17, 5000, 80, ident=i)
            c.add(frame(auth(q.datagram(), tok("10.0.0.2"), expiry)))
        elif kind == 5:  # malformed auth header
            c.add(frame(auth(p.datagram(), tok("10.0.0.1"), expiry, nxt=6)))
        elif kind == 6:  # outbound to a VM on host B: the auth tunnel with the registry's token
            q = Pkt("10.0.0.1", "10.0.0.2", 17, 5000, 80, ident=i)
            extra = struct.pack("!QIB3s", 0x0597EC7B2D0641ED, expiry, 4, b"\0\0\0")
            c.add(frame(q.datagram()), (1, frame(encap_ipip(q.datagram(), HOST_A, HOST_B, proto=253, extra=extra))))
        else:  # plain local delivery
            c.add(frame(p.datagram()), (3, frame(p.datagram())))
    c.write()


def main():
    rnd = random.Random(6)
    vnet(rnd)
    gateway(rnd)
    host(rnd)
    vnet_auth(rnd)


if __name__ == "__main__":
    main()
