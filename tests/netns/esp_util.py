"""Helpers for test_esp.py: an independent ESP peer built on scapy's IPsec implementation,
namespace sockets, and a topology where scapy (not a second espgw) is the remote gateway.

    host A (10.1.0.10, fd00:a::10) -- espgw -- wan tap in namespace <prefix>-peer
                                                 (198.51.100.x / 2001:db8:ff::1:x: the scapy peer)

Every static tunnel i of that gateway has its own peer address, SPIs 0x10000+i (espgw -> peer)
and 0x20000+i (peer -> espgw), random keys, and inner prefixes 10.200.i.0/24 and
fd00:200:0:i::/64 that are routed into it.

The crypto is scapy's: SecurityAssociation (encrypt/decrypt) wherever scapy 2.5 can do the job,
and scapy's own building blocks (_ESPPlain, CryptAlgo.pad/encrypt, AuthAlgo.sign) where a test
needs a wrong trailer. Two things scapy 2.5 cannot do are completed with pyca/cryptography and
hashlib (scapy's own crypto backend), never with espgw code: AES-GMAC (RFC 4543) is not in
scapy's CRYPT_ALGOS, and scapy's ESP integrity (AuthAlgo.sign/verify) ignores the ESN high
half that RFC 4303 2.2.1/3.3.2.1 appends to the HMAC input. test_scapy_limitations asserts both.
"""
import ctypes
import hashlib
import hmac
import json
import os
import queue
import socket
import struct
import threading
import time

from scapy.all import ICMP, IP, UDP, IPv6, ICMPv6EchoReply, ICMPv6EchoRequest, Raw, conf, raw
from scapy.layers.ipsec import (CRYPT_ALGOS, ESP, IPSecIntegrityError, SecurityAssociation,
                                _ESPPlain)
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import topo

conf.verb = 0

# ---- algorithms ---------------------------------------------------------------------------------


class Algo:
    def __init__(self, name, kind, scapy_crypt, enc_len, salt_len, scapy_auth, auth_len, digest,
                 iv_len, icv_len, block):
        self.name, self.kind = name, kind  # kind: aead | cbc | gmac
        self.scapy_crypt, self.scapy_auth = scapy_crypt, scapy_auth
        self.enc_len, self.salt_len, self.auth_len = enc_len, salt_len, auth_len
        self.digest = digest
        self.iv_len, self.icv_len, self.block = iv_len, icv_len, block

    @property
    def keymat_len(self):
        return self.enc_len + self.salt_len + self.auth_len


ALGOS = {a.name: a for a in (
    Algo("aes128gcm16", "aead", "AES-GCM", 16, 4, None, 0, None, 8, 16, 4),
    Algo("aes256gcm16", "aead", "AES-GCM", 32, 4, None, 0, None, 8, 16, 4),
    Algo("aes128-sha256", "cbc", "AES-CBC", 16, 0, "SHA2-256-128", 32, hashlib.sha256, 16, 16, 16),
    Algo("aes256-sha256", "cbc", "AES-CBC", 32, 0, "SHA2-256-128", 32, hashlib.sha256, 16, 16, 16),
    Algo("aes256-sha384", "cbc", "AES-CBC", 32, 0, "SHA2-384-192", 48, hashlib.sha384, 16, 24, 16),
    Algo("aes256-sha512", "cbc", "AES-CBC", 32, 0, "SHA2-512-256", 64, hashlib.sha512, 16, 32, 16),
    Algo("chacha20poly1305", "aead", "CHACHA20-POLY1305", 32, 4, None, 0, None, 8, 16, 4),
    Algo("aes128gmac", "gmac", None, 16, 4, None, 0, None, 8, 16, 4),
    Algo("aes256gmac", "gmac", None, 32, 4, None, 0, None, 8, 16, 4),
)}
assert all(a.keymat_len == topo.KEYMAT[n] for n, a in ALGOS.items())


class Sa:
    """One direction of a static SA as the independent peer sees it. `src`/`dst` are the outer
    addresses of the packets this SA carries."""

    def __init__(self, algo, key, spi, esn, src, dst, udp):
        self.a = ALGOS[algo]
        self.spi, self.esn, self.src, self.dst, self.udp = spi, esn, src, dst, udp
        self.v6 = ":" in src
        self.lock = threading.Lock()
        self.next_seq = 1
        self.hdr = IPv6(src=src, dst=dst) if self.v6 else IP(src=src, dst=dst)
        nat = UDP(sport=4500, dport=4500) if udp else None
        a = self.a
        if a.kind == "aead":
            self.sa = SecurityAssociation(ESP, spi=spi, crypt_algo=a.scapy_crypt, crypt_key=key,
                                          tunnel_header=self.hdr, nat_t_header=nat, esn_en=esn)
        elif a.kind == "cbc":
            ek, self.auth_key = key[:a.enc_len], key[a.enc_len:]
            if esn:  # scapy's ESP HMAC ignores ESN: cipher by scapy, ICV by hmac (see above)
                self.sa = SecurityAssociation(ESP, spi=spi, crypt_algo="AES-CBC", crypt_key=ek,
                                              crypt_icv_size=a.icv_len, tunnel_header=self.hdr,
                                              nat_t_header=nat)
            else:
                self.sa = SecurityAssociation(ESP, spi=spi, crypt_algo="AES-CBC", crypt_key=ek,
                                              auth_algo=a.scapy_auth, auth_key=self.auth_key,
                                              tunnel_header=self.hdr, nat_t_header=nat)
        else:  # gmac: not in scapy 2.5
            self.sa = None
            self.gkey, self.salt = key[:a.enc_len], key[a.enc_len:]

    def take_seq(self, skip=0):
        """The next outgoing sequence number (64-bit); skip jumps ahead. Hold self.lock."""
        self.next_seq += skip
        s = self.next_seq
        self.next_seq += 1
        return s

    def _hmac_esn(self, data, hi):
        return hmac.new(self.auth_key, data + struct.pack("!L", hi),
                        self.a.digest).digest()[:self.a.icv_len]

    def encrypt(self, inner, seq, iv=None, padding=None, padlen=None, nh=None):
        """ESP (SPI .. ICV) carrying scapy packet `inner` in tunnel mode, with sequence number
        seq (64-bit with ESN). padding/padlen/nh override the trailer (ICV still valid)."""
        a = self.a
        lo, hi = seq & 0xffffffff, seq >> 32
        iv = os.urandom(a.iv_len) if iv is None else iv
        # (SecurityAssociation.encrypt takes a low half of 0 for "not given")
        custom = padding is not None or padlen is not None or nh is not None or lo == 0
        if not custom and (a.kind == "aead" or (a.kind == "cbc" and not self.esn)):
            out = self.sa.encrypt(inner, seq_num=lo, iv=iv, esn=hi)  # scapy end to end
            return raw(out[ESP])
        if nh is None:
            nh = 41 if isinstance(inner, IPv6) else 4
        plain = _ESPPlain(spi=self.spi, seq=lo, iv=iv, data=raw(inner), nh=nh)
        calgo = self.sa.crypt_algo if self.sa else CRYPT_ALGOS["NULL"]
        plain = calgo.pad(plain)  # RFC 4303 padding 1, 2, 3, ... to the block
        if padding is not None:
            plain.padding, plain.padlen = padding, len(padding)
        if padlen is not None:
            plain.padlen = padlen
        if a.kind == "gmac":
            body = plain.data_for_encryption()
            aad = (struct.pack("!L", self.spi) + (struct.pack("!L", hi) if self.esn else b"") +
                   struct.pack("!L", lo) + iv + body)
            tag = AESGCM(self.gkey).encrypt(self.salt + iv, b"", aad)  # RFC 4543: GMAC = GCM
            return struct.pack("!LL", self.spi, lo) + iv + body + tag  # over AAD, no plaintext
        enc = calgo.encrypt(self.sa, plain, self.sa.crypt_key, self.sa.crypt_icv_size,
                            esn_en=self.esn, esn=hi)
        if a.kind == "cbc":
            if self.esn:
                return raw(enc) + self._hmac_esn(raw(enc), hi)
            self.sa.auth_algo.sign(enc, self.sa.auth_key)
        return raw(enc)

    def decrypt(self, esp, hi=0):
        """Verifies and decrypts ESP bytes; returns (inner packet bytes, IV). Raises
        IPSecIntegrityError when the ICV is wrong."""
        a = self.a
        spi, _ = struct.unpack("!LL", esp[:8])
        assert spi == self.spi, hex(spi)
        iv = esp[8:8 + a.iv_len]
        if a.kind == "gmac":
            body, tag = esp[8 + a.iv_len:-a.icv_len], esp[-a.icv_len:]
            aad = esp[:4] + (struct.pack("!L", hi) if self.esn else b"") + esp[4:8] + iv + body
            try:
                AESGCM(self.gkey).decrypt(self.salt + iv, tag, aad)
            except InvalidTag as e:
                raise IPSecIntegrityError(e)
            padlen = body[-2]
            return body[:len(body) - 2 - padlen], iv
        if a.kind == "cbc" and self.esn:
            if not hmac.compare_digest(self._hmac_esn(esp[:-a.icv_len], hi), esp[-a.icv_len:]):
                raise IPSecIntegrityError("ESN HMAC mismatch")
        pkt = (IPv6() if self.v6 else IP()) / ESP(esp)
        inner = self.sa.decrypt(pkt, esn=hi)  # scapy: ICV (AEAD/HMAC), decryption, trailer
        return raw(inner), iv


# ---- namespaces ---------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000


def in_ns(ns, fn):
    """Runs fn() with this thread in network namespace ns (sockets created there stay there)."""
    cur = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    tgt = os.open("/run/netns/" + ns, os.O_RDONLY)
    try:
        if _libc.setns(tgt, _CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns %s: %s" % (ns, os.strerror(e)))
        try:
            return fn()
        finally:
            if _libc.setns(cur, _CLONE_NEWNET) != 0:
                os._exit(99)  # never continue in the wrong namespace
    finally:
        os.close(cur)
        os.close(tgt)


def ns_socket(ns, family, type_, proto=0, bind=None):
    def mk():
        s = socket.socket(family, type_, proto)
        if bind is not None:
            if family != socket.AF_PACKET:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(bind)
        return s
    return in_ns(ns, mk)


def link_mac(ns, iface):
    out = topo.sh("ip", "-j", "-n", ns, "link", "show", iface, capture=True).stdout
    return json.loads(out)[0]["address"]


def mac_bytes(mac):
    return bytes.fromhex(mac.replace(":", ""))


# ---- frames -------------------------------------------------------------------------------------

def ip_of(frame):
    """(version, IP packet bytes without L2 padding) or (None, None)."""
    et = struct.unpack("!H", frame[12:14])[0]
    if et == 0x0800 and len(frame) >= 34:
        return 4, frame[14:14 + struct.unpack("!H", frame[16:18])[0]]
    if et == 0x86DD and len(frame) >= 54:
        return 6, frame[14:54 + struct.unpack("!H", frame[18:20])[0]]
    return None, None


def esp_of(frame):
    """For raw ESP or ESP in UDP 4500: (outer IP bytes, UDP header bytes or None, ESP bytes,
    outer version); else None."""
    v, ip = ip_of(frame)
    if v is None:
        return None
    hl = (ip[0] & 15) * 4 if v == 4 else 40
    proto = ip[9] if v == 4 else ip[6]
    l4 = ip[hl:]
    if proto == 50:
        return ip, None, l4, v
    if proto == 17 and len(l4) >= 16 and struct.unpack("!HH", l4[:4]) == (4500, 4500) \
            and l4[8:12] != b"\0\0\0\0":
        return ip, l4[:8], l4[8:], v
    return None


def spi_of(frame):
    e = esp_of(frame)
    return struct.unpack("!L", e[2][:4])[0] if e else None


def outer_packet(sa, esp, chksum_v6=True):
    """The outer IP packet (bytes) for ESP bytes sent with SA sa (peer -> espgw)."""
    hdr = IPv6(src=sa.src, dst=sa.dst, hlim=64) if sa.v6 else IP(src=sa.src, dst=sa.dst, ttl=64)
    if sa.udp:
        udp = UDP(sport=4500, dport=4500)
        if not sa.v6:
            udp.chksum = 0  # RFC 3948 2.1; IPv6 needs a real one (scapy computes it)
        return raw(hdr / udp / Raw(esp))
    return raw(hdr / ESP(esp))


class Tap:
    """An AF_PACKET socket on iface in namespace ns with a reader thread. Frames go to a queue
    unless `handler(frame)` (if set) consumes them. Outgoing frames are queued only if
    keep_outgoing."""

    def __init__(self, ns, iface, keep_outgoing=False):
        self.ns, self.iface, self.keep_outgoing = ns, iface, keep_outgoing
        self.sock = ns_socket(ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3),
                              bind=(iface, 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.settimeout(0.1)
        self.mac = link_mac(ns, iface)
        self.q = queue.Queue()
        self.handler = None
        self.errors = []
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop:
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            out = addr[2] == socket.PACKET_OUTGOING
            if out and not self.keep_outgoing:
                continue
            try:
                if not out and self.handler and self.handler(data):
                    continue
            except Exception as e:  # surfaced by the tests through .errors
                self.errors.append(repr(e))
            self.q.put((data, out))

    def close(self):
        self._stop = True
        self._t.join(2)
        self.sock.close()

    def drain(self):
        while True:
            try:
                self.q.get_nowait()
            except queue.Empty:
                return

    def wait(self, pred, n=1, timeout=3.0, outgoing=None):
        """Returns the first n queued frames for which pred(frame) holds (others are dropped);
        fewer if the timeout passes. outgoing: None = either direction, else that direction."""
        got, deadline = [], time.time() + timeout
        while len(got) < n:
            left = deadline - time.time()
            if left <= 0:
                break
            try:
                f, out = self.q.get(timeout=left)
            except queue.Empty:
                break
            if outgoing is not None and out != outgoing:
                continue
            if pred(f):
                got.append(f)
        return got

    def send(self, dst_mac, ip_bytes):
        et = 0x86DD if (ip_bytes[0] >> 4) == 6 else 0x0800
        self.sock.send(mac_bytes(dst_mac) + mac_bytes(self.mac) + struct.pack("!H", et) + ip_bytes)


# ---- the topology -------------------------------------------------------------------------------

GW4, GW6 = "198.51.100.1", "2001:db8:ff::1"
A4, A6 = "10.1.0.10", "fd00:a::10"


class Tunnel:
    """One static tunnel of the gateway and the scapy SAs that play its far end."""

    def __init__(self, idx, algo, v6=False, udp=False, esn=False, replay_window=1024,
                 seq_start=None, **extra):
        self.idx, self.algo, self.v6, self.udp, self.esn = idx, algo, v6, udp, esn
        self.seq_start = seq_start  # espgw's outbound.seq_start (None: not configured)
        self.name = "t%d" % idx
        self.out_spi, self.in_spi = 0x10000 + idx, 0x20000 + idx
        self.gw = GW6 if v6 else GW4
        self.peer = "2001:db8:ff::1:%x" % idx if v6 else "198.51.100.%d" % (100 + idx)
        self.replay_window = replay_window
        self.extra = extra
        n = ALGOS[algo].keymat_len
        self.key_out, self.key_in = os.urandom(n), os.urandom(n)
        self.rx = Sa(algo, self.key_out, self.out_spi, esn, self.gw, self.peer, udp)  # espgw->peer
        self.tx = Sa(algo, self.key_in, self.in_spi, esn, self.peer, self.gw, udp)   # peer->espgw
        self.last_out_seq = 0  # highest sequence number seen from espgw on this tunnel

    def __repr__(self):
        return "%s(%s o%d %s%s)" % (self.name, self.algo, 6 if self.v6 else 4,
                                    "udp" if self.udp else "esp", " esn" if self.esn else "")

    def inner(self, fam, host=7):
        return "10.200.%d.%d" % (self.idx, host) if fam == 4 else "fd00:200:0:%x::%x" % (self.idx,
                                                                                         host)

    def config(self):
        t = {"name": self.name, "local": self.gw, "remote": self.peer, "udp_encap": self.udp,
             "esn": self.esn, "replay_window": self.replay_window,
             "outbound": {"spi": self.out_spi, "algo": self.algo,
                          "key_file": "keys/%s.out.hex" % self.name},
             "inbound": {"spi": self.in_spi, "algo": self.algo,
                         "key_file": "keys/%s.in.hex" % self.name}}
        if self.seq_start is not None:
            t["outbound"]["seq_start"] = self.seq_start
        t.update(self.extra)
        return t

    def files(self):
        return {"keys/%s.out.hex" % self.name: self.key_out.hex() + "\n",
                "keys/%s.in.hex" % self.name: self.key_in.hex() + "\n"}

    def routes(self):
        return [{"prefix": "10.200.%d.0/24" % self.idx, "tunnel": self.name},
                {"prefix": "fd00:200:0:%x::/64" % self.idx, "tunnel": self.name}]


class PeerTopo:
    """host A -- espgw -- scapy peer. Attributes: t (topo.Topology), gw, peer (Tap on the wan
    side), hosta (Tap on host A, both directions), gw_mac (espgw's wan MAC), tunnels."""

    def __init__(self, prefix, tunnels, dataplane=None):
        self.t = topo.Topology(prefix)
        self.tunnels = {tu.name: tu for tu in tunnels}
        self.responders = {}  # espgw outbound SPI -> Tunnel answered by the echo responder
        self.answered = 0
        self.sizes = []  # outer IP lengths of the requests answered and of the answers
        self.peer = self.hosta = None
        p = prefix
        try:
            self.t.add_ns("a")
            self.t.add_ns("peer")
            files = {}
            for tu in tunnels:
                files.update(tu.files())
            cfg = {
                "gateway": {"name": "%s-gw" % p, "asn": 65010, "instances": [{"public_ip": GW4}]},
                "instance": {
                    "ports": [{"name": "a", "device": "net_tap_a,iface=%sa0" % p,
                               "addresses": ["10.1.0.1/24", "fd00:a::1/64"]},
                              {"name": "wan", "device": "net_tap_w,iface=%sw" % p,
                               "addresses": [GW4 + "/24", GW6 + "/64"]}],
                    "tunnels": [tu.config() for tu in tunnels],
                    "routes": [r for tu in tunnels for r in tu.routes()],
                    "exception_iface": "espgw0", "dataplane": dict(dataplane or {})},
                "_files": files,
            }
            self.gw = self.t.start_gateway("gw", cfg)
            self.t.attach(self.gw, "%sa0" % p, "a", addrs=[A4 + "/24", A6 + "/64"],
                          routes=[("default", "10.1.0.1"), ("default", "fd00:a::1")])
            self.t.attach(self.gw, "%sw" % p, "peer")
            self.peer_ns, self.a_ns = self.t.ns_name("peer"), self.t.ns_name("a")
            batch = "".join("address add %s/%d dev %sw%s\n" % (
                tu.peer, 64 if tu.v6 else 24, p, " nodad" if tu.v6 else "") for tu in tunnels)
            batch += "address add 198.51.100.99/24 dev %sw\n" % p
            batch += "address add 2001:db8:ff::99/64 dev %sw nodad\n" % p
            topo.sh("ip", "-n", self.peer_ns, "-batch", "-", input=batch)
            self.gw_mac = [x for x in self.gw.ctl("show", "ports")
                           if x["name"] == "wan"][0]["mac"].lower()
            self.a_mac = [x for x in self.gw.ctl("show", "ports")
                          if x["name"] == "a"][0]["mac"].lower()
            # the peer's kernel would answer ESP/UDP 4500 with ICMP errors: give it sockets
            self.sinks = [ns_socket(self.peer_ns, socket.AF_INET, socket.SOCK_DGRAM,
                                    bind=("0.0.0.0", 4500)),
                          ns_socket(self.peer_ns, socket.AF_INET6, socket.SOCK_DGRAM,
                                    bind=("::", 4500))]
            self.peer = Tap(self.peer_ns, "%sw" % p)
            self.peer.handler = self._respond
            self.hosta = Tap(self.a_ns, "%sa0" % p, keep_outgoing=True)
        except Exception:
            self.down()
            raise

    def down(self):
        for tap in (self.peer, self.hosta):
            if tap:
                tap.close()
        for s in getattr(self, "sinks", []):
            s.close()
        self.t.down()

    # ---- peer side ----
    def send_esp(self, tu, inner, skip=0, mangle=None, **kw):
        """Encrypts inner with the tunnel's peer->espgw SA at the next sequence number and sends
        it; mangle(esp) -> esp may break it. Returns (seq, the outer IP packet bytes)."""
        with tu.tx.lock:
            seq = tu.tx.take_seq(skip)
            esp = tu.tx.encrypt(inner, seq, **kw)
            if mangle:
                esp = mangle(esp)
            pkt = outer_packet(tu.tx, esp)
            self.peer.send(self.gw_mac, pkt)
        return seq, pkt

    def send_raw(self, ip_bytes):
        self.peer.send(self.gw_mac, ip_bytes)

    def _respond(self, frame):
        """Reader-thread hook: answers ICMP echo requests that arrive over a responder tunnel."""
        e = esp_of(frame)
        if not e:
            return False
        tu = self.responders.get(struct.unpack("!L", e[2][:4])[0])
        if not tu:
            return False
        inner, _ = tu.rx.decrypt(e[2])
        if inner[0] >> 4 == 4:
            p = IP(inner)
            if ICMP not in p or p[ICMP].type != 8:
                return False
            rep = IP(src=p.dst, dst=p.src, ttl=64) / ICMP(type=0, id=p[ICMP].id,
                                                          seq=p[ICMP].seq) / p[ICMP].payload
        else:
            p = IPv6(inner)
            if ICMPv6EchoRequest not in p:
                return False
            q = p[ICMPv6EchoRequest]
            rep = IPv6(src=p.dst, dst=p.src, hlim=64) / ICMPv6EchoReply(id=q.id, seq=q.seq,
                                                                         data=q.data)
        _, pkt = self.send_esp(tu, rep)
        self.sizes += [len(e[0]), len(pkt)]
        self.answered += 1
        return True

    # ---- host A side ----
    def a_socket(self, fam, port=0, type_=socket.SOCK_DGRAM):
        return ns_socket(self.a_ns, socket.AF_INET6 if fam == 6 else socket.AF_INET, type_,
                         bind=(A6 if fam == 6 else A4, port))

    def ns_udp(self, ns, fam, addr, port):
        return ns_socket(ns, socket.AF_INET6 if fam == 6 else socket.AF_INET, socket.SOCK_DGRAM,
                         bind=(addr, port))

    # ---- gateway state ----
    def sa(self, spi):
        want = "0x%08x" % spi
        return [s for s in self.gw.ctl("show", "sas") if s["spi"] == want][0]

    def tunnel_info(self, name):
        return [x for x in self.gw.ctl("show", "tunnels") if x["name"] == name][0]


def ttl_dec(ip_bytes):
    """The IP packet as a router forwards it: TTL / hop limit minus one, checksum fixed."""
    if ip_bytes[0] >> 4 == 6:
        return ip_bytes[:7] + bytes([ip_bytes[7] - 1]) + ip_bytes[8:]
    p = IP(ip_bytes)
    p.ttl -= 1
    del p.chksum
    return raw(p)


def drops_delta(before, after, prefix=""):
    """{name: delta} of the drops that changed (optionally only names starting with prefix)."""
    return {k: v - before["drops"][k] for k, v in after["drops"].items()
            if v != before["drops"][k] and k.startswith(prefix)}


def wait_counters(gw, before, want, timeout=5.0):
    """Polls show counters until every (group, name) in want reached its delta; returns the last
    reading (the caller asserts exact values)."""
    deadline = time.time() + timeout
    while True:
        c = gw.counters()
        if all(c[g][n] - before[g][n] >= v for (g, n), v in want.items()) or \
                time.time() > deadline:
            return c
        time.sleep(0.05)
