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
