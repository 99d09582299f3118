"""Fixtures and helpers for the netns suite: real namespaces, real espgw, real kernel peers."""
import hashlib
import os
import re
import subprocess
import sys
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import topo  # noqa: E402


def run(ns, *args, timeout=30, check=False):
    return subprocess.run(["ip", "netns", "exec", ns] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout, check=check)


def ping(ns, dst, count=3, interval=0.2, extra=()):
    """Returns (transmitted, received, output)."""
    fam = ["-6"] if ":" in dst else []
    r = run(ns, "ping", *fam, "-n", "-c", count, "-i", interval, "-W", 2, *extra, dst,
            timeout=count * interval + 10)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
    if not m:
        return 0, 0, r.stdout + r.stderr
    return int(m.group(1)), int(m.group(2)), r.stdout


SERVER = r"""
import hashlib, socket, sys
fam = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
s = socket.socket(fam); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); s.settimeout(20)
print('listening', flush=True)
c, _ = s.accept(); c.settimeout(20); h = hashlib.sha256(); n = 0
while True:
    d = c.recv(1 << 16)
    if not d: break
    h.update(d); n += len(d)
print(n, h.hexdigest(), flush=True)
"""

CLIENT = r"""
import hashlib, os, socket, sys
d = os.urandom(int(sys.argv[3]))
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
c.sendall(d); c.close()
print(len(d), hashlib.sha256(d).hexdigest(), flush=True)
"""


def tcp_transfer(src_ns, dst_ns, dst_addr, size=2 * 1024 * 1024, port=5001, bind=None):
    """Moves `size` random bytes over TCP; returns (sent, received) as 'len sha' strings."""
    srv = subprocess.Popen(["ip", "netns", "exec", dst_ns, sys.executable, "-c", SERVER,
                            bind or dst_addr, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout.readline().strip() == "listening"
        cli = run(src_ns, sys.executable, "-c", CLIENT, dst_addr, port, size, timeout=60)
        out, _ = srv.communicate(timeout=30)
        return cli.stdout.strip(), out.strip()
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()


def delta(before, after, group, name):
    return after[group][name] - before[group][name]


@pytest.fixture(scope="module")
def basic():
    """host A -- espgw -- host B; port b has MTU 1400; host B also owns 10.2.0.11 and
    10.9.0.1/32 + fd00:9::1/128 (on lo) for the route-change test."""
    t = topo.Topology("tb")
    try:
        gw = topo.up_basic(t, mtu_b=1400, host_b_extra=["10.2.0.11/24"])
        nsb = t.ns_name("b")
        subprocess.run(["ip", "-n", nsb, "addr", "add", "10.9.0.1/32", "dev", "lo"], check=True)
        subprocess.run(["ip", "-n", nsb, "addr", "add", "fd00:9::1/128", "dev", "lo"], check=True)
        yield t, gw
    finally:
        t.down()
