#!/usr/bin/env python3
"""Writes the entries files and sample captures of host_secure.sluice and gateway_secure.sluice
and, computed here independently of Sluice, what each program must output
(programs/NAME.expected/port-N.pcap).

The cryptography is the `cryptography` package's (OpenSSL): X25519 (RFC 7748), HKDF-SHA256
(RFC 5869) and ChaCha20-Poly1305 (RFC 8439), following docs/language.md ("Sealed tunnels"):
  link key = HKDF(salt "sluice link key", IKM the X25519 shared secret,
                  info "sluice link key v1" ++ smaller public key ++ larger public key)
  key id   = HKDF(salt "sluice key id", same IKM, info "sluice link id v1" ++ both keys), 4
             bytes, top bit cleared, then set for the end whose public key is the larger
  nonce    = key id (4 bytes) ++ counter (8 bytes), both network order; no AAD
  counter  = the larger of (last counter + 1) and the packet's time in nanoseconds
The packets themselves are built with gen_tunnels.py's helpers. From the repository root:
    pip install cryptography; python3 programs/tools/gen_secure.py
"""
import os
import random
import struct
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

sys.path.insert(0, os.path.dirname(__file__))
from gen_tunnels import BASE_TS, ETH, GW, HOST_A, Pkt, frame, ipv4_header, siphash24, write_pcap  # noqa: E402

PUBLIC = "203.0.113.10"
VM = "10.0.0.1"
CLIENT = "198.51.100.7"
OTHER = "198.51.100.8"
EXPIRY = 1_800_000_000
PAIR_KEY = bytes.fromhex("5ac2e7f0a1b2c3d4e5f60718293a4b5c")


def read_key(path):
    text = open(path).read().strip()
    assert text.startswith("0x") and len(text) == 66, path
    return bytes.fromhex(text[2:])


def public(private):
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def hkdf(salt, ikm, info, n):
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=salt, info=info).derive(ikm)


class End:
    """One end of a sealed link, as Sluice keeps it: the key, the ids, the counter."""

    def __init__(self, private, peer_public):
        mine = public(private)
        shared = X25519PrivateKey.from_private_bytes(private).exchange(
            X25519PublicKey.from_public_bytes(peer_public))
        lo, hi = sorted([mine, peer_public])
        self.key = hkdf(b"sluice link key", shared, b"sluice link key v1" + lo + hi, 32)
        base = int.from_bytes(hkdf(b"sluice key id", shared, b"sluice link id v1" + lo + hi, 4), "big") & 0x7FFFFFFF
        self.send_id = base | (0x80000000 if mine == hi else 0)
        self.recv_id = base | (0x80000000 if peer_public == hi else 0)
        self.counter = 0

    def seal(self, src, dst, plaintext, ts, df):
        """The sealed tunnel packet (from the outer IPv4 header on) at capture time ts."""
        self.counter = max(self.counter + 1, ts * 1_000_000_000)
        return self.seal_with(src, dst, plaintext, self.counter, df)

    def seal_with(self, src, dst, plaintext, counter, df):
        sec = struct.pack("!IQ", self.send_id, counter)
        body = ChaCha20Poly1305(self.key).encrypt(sec, plaintext, b"")
        outer = ipv4_header(src, dst, 254, len(sec) + len(body), ttl=64, ident=0, flags=df)
        return outer + sec + body


def df_of(dgram):
    return (dgram[6] >> 5) & 0b010


def token(src, dst, expiry, key=PAIR_KEY):
    return siphash24(key, struct.pack("!I", expiry) + bytes(int(x) for x in src.split(".")) +
                     bytes(int(x) for x in dst.split(".")))


def pair_header(src, dst, expiry=EXPIRY, key=PAIR_KEY):
    return struct.pack("!QI", token(src, dst, expiry, key), expiry)


class Capture:
    def __init__(self, name):
        self.name = name
        self.inputs = []
        self.outputs = {}

    def ts(self):
        """The time of the next packet: one second apart."""
        return BASE_TS + len(self.inputs)

    def add(self, frame_bytes, out=None):
        ts = self.ts()
        self.inputs.append((ts, frame_bytes, len(frame_bytes)))
        if out is not None:
            port, o = out
            self.outputs.setdefault(port, []).append((ts, o, len(o)))

    def write(self):
        os.makedirs("programs/%s.expected" % self.name, exist_ok=True)
        for old in os.listdir("programs/%s.expected" % self.name):
            os.remove("programs/%s.expected/%s" % (self.name, old))
        write_pcap("programs/%s.pcap" % self.name, self.inputs)
        for port, recs in self.outputs.items():
            write_pcap("programs/%s.expected/port-%d.pcap" % (self.name, port), recs)
        n = sum(len(v) for v in self.outputs.values())
        print("%s: %d packets in, %d expected out" % (self.name, len(self.inputs), n))


def host(rnd, gw_key, host_key):
    """Host A (192.0.2.11) runs the VM 10.0.0.1 behind port 3; the gateway is behind port 1."""
    c = Capture("host_secure")
    host_end = End(host_key, public(gw_key))
    gw_end = End(gw_key, public(host_key))
    sealed_from_gw = []
    for i in range(48):
        kind = i % 8
        sport = rnd.randint(1024, 65535)
        if kind in (0, 5):  # the VM's reply to a client it has a token for: sealed to the gateway
            proto = 6 if kind == 0 else 17
            p = Pkt(VM, CLIENT, proto, 80 + rnd.randint(0, 99), sport, ident=i, data=bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 64))))
            q = Pkt(**p.__dict__)
            q.sport = (p.sport + 7920) & 0xFFFF
            inner = q.datagram()
            out = frame(host_end.seal(HOST_A, GW, pair_header(VM, CLIENT) + inner, c.ts(), df_of(inner)))
            c.add(frame(p.datagram()), (1, out))
        elif kind == 1:  # a destination the VM has no token for
            p = Pkt(VM, OTHER, 6, 80, sport, ident=i)
            c.add(frame(p.datagram()))
        elif kind == 2:  # a client's packet for the VM, sealed by the gateway
            p = Pkt(CLIENT, VM, rnd.choice([6, 17]), sport, 8000 + rnd.randint(0, 99), ident=i, ttl=63)
            q = Pkt(**p.__dict__)
            q.dport = (p.dport + 57616) & 0xFFFF
            sealed = frame(gw_end.seal(GW, HOST_A, p.datagram(), c.ts(), df_of(p.datagram())))
            sealed_from_gw.append(sealed)
            c.add(sealed, (3, frame(q.datagram())))
        elif kind == 3:  # a replay of one already taken
            c.add(rnd.choice(sealed_from_gw))
        elif kind == 4:  # a fresh one with a byte changed: key id, counter, sealed part or tag
            p = Pkt(CLIENT, VM, 17, sport, 8003, ident=i, ttl=63)
            s = bytearray(frame(gw_end.seal(GW, HOST_A, p.datagram(), c.ts(), df_of(p.datagram()))))
            at = rnd.randrange(14 + 20, len(s))
            s[at] ^= 1 << rnd.randrange(8)
            c.add(bytes(s))
        elif kind == 6:  # reordered: two sealed by the gateway, the later one arrives first
            p1 = Pkt(CLIENT, VM, 17, sport, 8001, ident=i, ttl=63)
            p2 = Pkt(CLIENT, VM, 17, sport, 8002, ident=i + 1000, ttl=63)
            ts = c.ts()
            first = frame(gw_end.seal(GW, HOST_A, p1.datagram(), ts, df_of(p1.datagram())))
            second = frame(gw_end.seal(GW, HOST_A, p2.datagram(), ts, df_of(p2.datagram())))
            for p, s in ((p2, second), (p1, first)):
                q = Pkt(**p.__dict__)
                q.dport = (p.dport + 57616) & 0xFFFF
                c.add(s, (3, frame(q.datagram())))
        else:  # not TCP or UDP
            c.add(frame(Pkt(VM, CLIENT, 1, data=bytes(8), ident=i).datagram()))
    c.write()


def gateway(rnd, gw_key, host_key, stranger_key):
    """The gateway (192.0.2.1): clients behind port 0, host A (192.0.2.11) behind port 1."""
    c = Capture("gateway_secure")
    gw_end = End(gw_key, public(host_key))
    host_end = End(host_key, public(gw_key))
    stranger = End(stranger_key, public(gw_key))
    from_vm = []
    for i in range(60):
        kind = i % 10
        cport = rnd.randint(1024, 65535)
        vport = 8000 + rnd.randint(0, 99)
        if kind == 0:  # a client's packet for the VM: sealed to host A
            p = Pkt(CLIENT, PUBLIC, rnd.choice([6, 17]), cport, vport, ident=i, data=bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 64))))
            q = Pkt(**p.__dict__)
            q.dst = VM
            inner = q.datagram()
            c.add(frame(p.datagram()), (1, frame(gw_end.seal(GW, HOST_A, inner, c.ts(), df_of(inner)))))
            continue
        reply = Pkt(VM, CLIENT, rnd.choice([6, 17]), vport, cport, ident=i)
        left = Pkt(**reply.__dict__)
        left.src = PUBLIC
        ts = c.ts()

        def sealed(pair, end=host_end, dgram=None):
            d = dgram or reply.datagram()
            return frame(end.seal(HOST_A, GW, pair + d, ts, df_of(d)))

        if kind in (1, 6):  # the VM's reply with a valid token: leaves with the public address
            s = sealed(pair_header(VM, CLIENT))
            from_vm.append(s)
            c.add(s, (0, frame(left.datagram())))
        elif kind == 2:  # expired: the capture's time is past the expiry
            c.add(sealed(pair_header(VM, CLIENT, ts - 1)))
        elif kind == 3:  # a token for another pair
            c.add(sealed(struct.pack("!QI", token(VM, OTHER, EXPIRY), EXPIRY)))
        elif kind == 4:  # a token from another registry key
            c.add(sealed(pair_header(VM, CLIENT, key=bytes(16))))
        elif kind == 5:  # a replay
            c.add(rnd.choice(from_vm))
        elif kind == 7:  # a fresh one with a byte changed after the outer header
            s = bytearray(sealed(pair_header(VM, CLIENT)))
            at = rnd.randrange(14 + 20, len(s))
            s[at] ^= 1 << rnd.randrange(8)
            c.add(bytes(s))
        elif kind == 8:  # sealed with a key derived from another key pair than host A's
            c.add(sealed(pair_header(VM, CLIENT), end=stranger))
        else:  # accepted at the expiry's second
            c.add(sealed(pair_header(VM, CLIENT, ts)), (0, frame(left.datagram())))
    c.write()


ENTRIES_HOST = """\
# Entries for host_secure.sluice on host A (192.0.2.11), which runs VM 10.0.0.1 behind port 3.
# The gateway (192.0.2.1, behind port 1) sends it ports 8000-8099; the VM listens on 80-179.
# Written by programs/tools/gen_secure.py.
table_add tunnel_term decap_secure 192.0.2.11 =>
# The link key with the gateway: this host's private key (relative to this file) and the
# gateway's public key (sluice keygen --public keys/gateway.key). These are example keys:
# they are public, in this repository.
key_derive link_key --private keys/host-a.key --peer {gw_pub}
# 8000 + 57616 = 80 (mod 2^16).
table_add port_in to_local 10.0.0.1 8000->8099 => 57616 3 10
# The registry's token for the VM's pair with {client}, until {expiry}:
#   sluice token --secret-file pair.key --expiry {expiry} --src 10.0.0.1 --dst {client}
table_add pair_token stamp 10.0.0.1 {client} => {token:#018x} {expiry}
# 80 + 7920 = 8000: the VM's replies get the public port back, then go to the gateway.
table_add port_out to_gateway_secure 10.0.0.1 80->179 => 7920 192.0.2.11 192.0.2.1 1 10
"""

ENTRIES_GATEWAY = """\
# Entries for gateway_secure.sluice. The public address 203.0.113.10 is shared by the VMs; the
# gateway's own tunnel address is 192.0.2.1; VM 10.0.0.1 runs on host A (192.0.2.11), reached
# through a sealed tunnel. Written by programs/tools/gen_secure.py.
table_add tunnel_term decap_secure 192.0.2.1 =>
# The link key with host A: the gateway's private key (relative to this file) and host A's
# public key; one such line per host, each with the host's address. Example keys: public.
key_derive link_key --private keys/gateway.key --peer {host_pub} --peer-ip 192.0.2.11
# The registry's key, which the tokens are made with (an example key).
secret_set pair_key {pair_key}

table_add dnat to_vm 203.0.113.10 8000->8099 => 10.0.0.1 10
table_add vm_location tunnel_secure 10.0.0.1 => 192.0.2.1 192.0.2.11 1
table_add snat from_vm 10.0.0.1 8000->8099 => 203.0.113.10 0 10
"""


def main():
    rnd = random.Random(17)
    gw_key = read_key("programs/keys/gateway.key")
    host_key = read_key("programs/keys/host-a.key")
    # A key pair the gateway knows nothing of, fixed so that the capture does not change.
    stranger_key = bytes(range(32, 64))
    tok = token(VM, CLIENT, EXPIRY)
    with open("programs/host_secure.entries", "w") as f:
        f.write(ENTRIES_HOST.format(gw_pub="0x" + public(gw_key).hex(), client=CLIENT, expiry=EXPIRY, token=tok))
    with open("programs/gateway_secure.entries", "w") as f:
        f.write(ENTRIES_GATEWAY.format(host_pub="0x" + public(host_key).hex(), pair_key="0x" + PAIR_KEY.hex()))
    host(rnd, gw_key, host_key)
    gateway(rnd, gw_key, host_key, stranger_key)


if __name__ == "__main__":
    main()
