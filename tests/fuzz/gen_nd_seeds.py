#!/usr/bin/env python3
"""Writes the seed corpus of the nd fuzz target (input format: the comment at the top of
tests/fuzz/nd_fuzz.cpp): ARP and ND frames as Linux hosts send them, packets held for
resolution, ticks, route next hops.   tests/fuzz/gen_nd_seeds.py   (from the repository root)"""
import os
import socket
import struct

OUR = [bytes([2, 0, 0, 0, 0, 1]), bytes([2, 0, 0, 0, 0, 2])]
HOST = bytes([0x52, 0x54, 0, 0x12, 0x34, 0x56])
BCAST = b'\xff' * 6


def ip4(s):
    return socket.inet_aton(s)


def ip6(s):
    return socket.inet_pton(socket.AF_INET6, s)


def arp(op, sha, spa, tha, tpa, dst=BCAST):
    return dst + sha + b'\x08\x06' + struct.pack('!HHBBH', 1, 0x0800, 6, 4, op) + sha + ip4(spa) + tha + ip4(tpa)


def csum(data):
    if len(data) % 2:
        data += b'\x00'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


def nd(icmp_type, src, dst, target, opt_type, mac, flags=0, dst_mac=b'\x33\x33\xff\x00\x00\x01'):
    body = struct.pack('!BBHI', icmp_type, 0, 0, flags) + ip6(target)
    if opt_type:
        body += bytes([opt_type, 1]) + mac
    pseudo = ip6(src) + ip6(dst) + struct.pack('!IxxxB', len(body), 58)
    body = body[:2] + struct.pack('!H', csum(pseudo + body)) + body[4:]
    ip = struct.pack('!IHBB', 0x60000000, len(body), 58, 255) + ip6(src) + ip6(dst)
    return dst_mac + HOST + b'\x86\xdd' + ip + body


def frame_op(port, f, fix=False):
    return bytes([(port << 3) | (0x80 if fix else 0)]) + struct.pack('!H', len(f)) + f


def held(port, addr, payload=b'\x45' + b'\x00' * 19):
    v6 = len(addr) == 16
    return bytes([4 | (port << 3) | (0x80 if v6 else 0)]) + addr + bytes([len(payload)]) + payload


def tick(n):
    return bytes([5, n])


def route(port, addr):
    return bytes([6 | (port << 3) | (0x80 if len(addr) == 16 else 0)]) + addr


d = 'tests/fuzz/corpus/nd'
os.makedirs(d, exist_ok=True)


def write(name, data):
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


write('arp_request_for_us', frame_op(0, arp(1, HOST, '10.0.0.2', b'\x00' * 6, '10.0.0.1')) + tick(10))
write('arp_reply_gratuitous', frame_op(1, arp(2, HOST, '10.0.1.7', BCAST, '10.0.1.7')))
write('held_then_reply', held(0, ip4('10.0.0.9')) + held(0, ip4('10.0.0.9')) + tick(5)
      + frame_op(0, arp(2, HOST, '10.0.0.9', OUR[0], '10.0.0.1', OUR[0])))
write('ns_for_us', frame_op(0, nd(135, 'fd00:0::2', 'ff02::1:ff00:1', 'fd00:0::1', 1, HOST)))
write('ns_dad', frame_op(1, nd(135, '::', 'ff02::1:ff00:1', 'fd00:1::1', 0, HOST)))
write('na_after_hold', held(0, ip6('fd00:0::9')) + tick(12)
      + frame_op(0, nd(136, 'fd00:0::9', 'fd00:0::1', 'fd00:0::9', 2, HOST, 0x60000000, OUR[0])))
s = b''
for i in range(40):  # more unresolved next hops than the table holds, with routes on some
    s += held(i & 1, ip4('10.0.%d.%d' % (i & 1, 20 + i)))
    if i % 7 == 0:
        s += route(i & 1, ip4('10.0.%d.%d' % (i & 1, 100 + i)))
s += tick(255) + tick(255) + bytes([7, 7])
write('table_full', s)
write('probe_expiry', route(0, ip6('fd00:0::5')) + held(0, ip6('fd00:0::5')) + tick(15) + tick(15) + tick(15)
      + tick(200) + bytes([7]) + tick(200))
