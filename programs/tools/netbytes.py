"""Helpers shared by the generators in this folder (standard library only): addresses as
bytes and the Internet checksum (RFC 1071), written from the RFCs, not from Sluice."""
import struct


def ip(a):
    """A dotted IPv4 address as its 4 bytes."""
    return bytes(int(x) for x in a.split("."))


def csum(data):
    """The Internet checksum of `data` (padded with a zero byte to an even length)."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def dotted(v):
    """A 32-bit value as a dotted IPv4 address."""
    return "%d.%d.%d.%d" % (v >> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255)


ETH = bytes.fromhex("020000000002020000000001") + b"\x08\x00"


def l4_packet(src, dst, proto, sport, dport, size, seq):
    """Ethernet, IPv4 (checksum set) and TCP (proto 6) or UDP of `size` bytes in all, zero
    payload; `seq` is the TCP sequence number and the IPv4 identification."""
    l4len = size - 14 - 20
    if proto == 6:
        l4 = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 0x50, 0x18, 65535, 0, 0)
    else:
        l4 = struct.pack("!HHHH", sport, dport, l4len, 0)
    l4 += bytes(l4len - len(l4))
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), seq & 0xFFFF, 0x4000, 64, proto, 0,
                      src.to_bytes(4, "big"), dst.to_bytes(4, "big"))
    iph = iph[:10] + struct.pack("!H", csum(iph)) + iph[12:]
    return ETH + iph + l4


def pcap_header(f):
    """A classic pcap header: microseconds, Ethernet, 256 KiB snaplen."""
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))


def pcap_record(f, i, pkt):
    """Packet `i`, a microsecond after packet i - 1."""
    f.write(struct.pack("<IIII", 1_700_000_000 + i // 1_000_000, i % 1_000_000, len(pkt), len(pkt)))
    f.write(pkt)
