#!/usr/bin/env python3
"""Writes the seed corpora of the bgp_fsm and bgp_speaker fuzz targets (input formats: the
comments at the top of tests/fuzz/bgp_fsm_fuzz.cpp and bgp_speaker_fuzz.cpp). The UPDATEs are
hand-built in the shape BIRD, FRR and GoBGP send them: ORIGIN, AS_PATH, NEXT_HOP (IPv4) or
MP_REACH_NLRI (IPv6), MED, COMMUNITIES; End-of-RIB markers; withdrawals.
   tests/fuzz/gen_bgp_seeds.py   (run from the repository root)"""
import os
import struct

MARKER = b'\xff' * 16


def msg(t, body):
    return MARKER + struct.pack('!HB', 19 + len(body), t) + body


def attr(flags, code, value):
    if len(value) > 255:
        return struct.pack('!BBH', flags | 0x10, code, len(value)) + value
    return struct.pack('!BBB', flags, code, len(value)) + value


def as_path(asns):
    return attr(0x40, 2, struct.pack('!BB', 2, len(asns)) + b''.join(struct.pack('!I', a) for a in asns))


def nlri4(prefixes):
    out = b''
    for p in prefixes:
        a, l = p.split('/')
        l = int(l)
        out += bytes([l]) + bytes(int(x) for x in a.split('.'))[:(l + 7) // 8]
    return out


def update_v4(asns, nh, prefixes, med=None, communities=()):
    attrs = attr(0x40, 1, b'\x00') + as_path(asns) + attr(0x40, 3, bytes(int(x) for x in nh.split('.')))
    if med is not None:
        attrs += attr(0x80, 4, struct.pack('!I', med))
    if communities:
        attrs += attr(0xc0, 8, b''.join(struct.pack('!I', c) for c in communities))
    return struct.pack('!HH', 0, len(attrs)) + attrs + nlri4(prefixes)


def update_v6(asns, nh16, prefixes6):
    mp = struct.pack('!HBB', 2, 1, 16) + nh16 + b'\x00'
    for addr16, l in prefixes6:
        mp += bytes([l]) + addr16[:(l + 7) // 8]
    attrs = attr(0x40, 1, b'\x00') + as_path(asns) + attr(0x80, 14, mp)
    return struct.pack('!HH', 0, len(attrs)) + attrs


def withdraw_v4(prefixes):
    w = nlri4(prefixes)
    return struct.pack('!H', len(w)) + w + b'\x00\x00'


EOR_V4 = b'\x00\x00\x00\x00'
EOR_V6 = struct.pack('!HH', 0, 6) + attr(0x80, 15, struct.pack('!HB', 2, 1))
V6NH = bytes.fromhex('fd000000000000000000000000000002')
V6P = bytes.fromhex('fd020000000000000000000000000000')


def write(d, name, data):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def chunks(stream, size):
    """bgp_fsm ops delivering `stream` in pieces of `size` bytes (op 0, u8 length)."""
    out = b''
    for i in range(0, len(stream), size):
        piece = stream[i:i + size]
        out += bytes([0, len(piece)]) + piece
    return out


def fsm():
    d = 'tests/fuzz/corpus/bgp_fsm'
    full = (msg(2, update_v4([65001], '10.0.0.2', ['198.51.100.0/24', '203.0.113.0/25'], 10, [0xfde90064]))
            + msg(2, update_v6([65001, 64999], V6NH, [(V6P, 48)]))
            + msg(2, EOR_V4) + msg(2, EOR_V6) + msg(4, b''))
    write(d, 'established_split_7', b'\x01' + chunks(full, 7))
    write(d, 'established_split_200', b'\x03' + chunks(full, 200))
    # One big read holding many messages (op 0x80: u16 length).
    big = full * 4
    write(d, 'established_one_read', b'\x01' + bytes([0x80]) + struct.pack('!H', len(big)) + big)
    # Handshake by the peer's own bytes: the OPEN BIRD sends (caps: MP v4+v6, route refresh,
    # 4-octet AS, graceful restart), then KEEPALIVE, UPDATE, withdrawal, NOTIFICATION Cease.
    caps = (bytes.fromhex('02060104000100010206010400020001') + bytes.fromhex('02020200')
            + bytes.fromhex('0206410400' + '00fde9') + bytes.fromhex('02084006007800010180'))
    open_ = msg(1, struct.pack('!BHHIB', 4, 65001, 90, 0x0a000002, len(caps)) + caps)
    stream = (open_ + msg(4, b'') + msg(2, update_v4([65001], '10.0.0.2', ['198.51.100.0/24']))
              + msg(2, withdraw_v4(['198.51.100.0/24'])) + msg(3, b'\x06\x02'))
    write(d, 'accept_open_stream', b'\x12\x04' + chunks(stream, 33))
    # Collision: a second connection with the OPEN (op 7 type 0), ticks, a close.
    write(d, 'collision', b'\x00\x06\x04\x07\x00\x00\x00\x0f\x00\x00\x00\x03\x10\x05')
    # Graceful restart: Established with GR, a route, then an OPEN on a new connection.
    write(d, 'gr_restart', b'\x05' + chunks(msg(2, update_v4([65001], '10.0.0.2', ['198.51.100.0/24'])), 60)
          + b'\x04\x0f\x00\x00\x00\x03\x20\x03\xff\x03\xff')
    # Garbage: bad marker, short length.
    write(d, 'bad_header', b'\x01\x00\x13' + b'\xfe' * 16 + b'\x00\x13\x04')


def speaker():
    d = 'tests/fuzz/corpus/bgp_speaker'

    def upd(peer, body):
        return bytes([(peer << 3) | 0]) + struct.pack('!H', len(body)) + body

    routes = [f'198.51.{i}.0/24' for i in range(50)]
    s = b'\x07'
    for p in range(3):
        asn = 65001 + p
        s += upd(p, update_v4([asn], f'10.0.0.{p + 2}', routes[:20], 5 * p, [0xfde90064]))
        s += upd(p, update_v6([asn, 64999], V6NH, [(V6P, 48)]))
    s += upd(1, withdraw_v4(routes[:5]))
    s += bytes([(0 << 3) | 4, 0x80 | (1 << 3) | 4])  # route refreshes
    s += upd(0, EOR_V4) + upd(0, EOR_V6)
    write(d, 'three_peers_transit', s)
    # Over the limits: peer 0 resets (40), peer 1 discards (60), peer 2 warns (30).
    many = [f'203.0.{i // 4}.{(i % 4) * 64}/26' for i in range(90)]
    s = b'\x00'
    for p in range(3):
        s += upd(p, update_v4([65001 + p], f'10.0.0.{p + 2}', many))
    s += bytes([7, 3])  # 3 s pass
    write(d, 'max_prefix', s)
    # Graceful restart on peers 0 and 1: routes, session lost (TCP), back, End-of-RIB.
    s = b'\x03' + upd(0, update_v4([65001], '10.0.0.2', routes[:10])) + upd(1, update_v4([65002], '10.0.0.3', routes[5:15]))
    s += bytes([6, 8 | 6]) + upd(0, update_v4([65001], '10.0.0.2', routes[:3])) + upd(0, EOR_V4)
    s += bytes([7, 200])
    write(d, 'graceful_restart', s)
    # A NOTIFICATION, a default route to the peer that takes it, a loop, a wrong first AS.
    s = b'\x00' + upd(0, update_v4([65001], '10.0.0.2', ['0.0.0.0/0', '192.0.2.0/24']))
    s += upd(1, update_v4([65002, 65000], '10.0.0.3', ['192.0.2.0/24']))
    s += upd(2, update_v4([65099], '10.0.0.4', ['192.0.2.0/24']))
    s += bytes([0x80 | 6])
    write(d, 'policy_notification', s)
    # Raw bytes on a session: a KEEPALIVE and half a message.
    s = b'\x00' + bytes([5, 19]) + msg(4, b'') + bytes([5, 10]) + MARKER[:10]
    write(d, 'raw', s)


fsm()
speaker()
