"""Foundation: routing in virtual mode, exception path, ICMP errors, live route changes,
malformed input, counters and telemetry — against the real kernel stacks of host namespaces."""
import json
import subprocess
import sys
import threading
import time

import pytest

from conftest import delta, ping, run, tcp_transfer

A4, A6 = "10.1.0.10", "fd00:a::10"
B4, B6 = "10.2.0.10", "fd00:b::10"
GW_A4, GW_A6, GW_B4, GW_B6 = "10.1.0.1", "fd00:a::1", "10.2.0.1", "fd00:b::1"


@pytest.mark.parametrize("src,dst", [("a", B4), ("a", B6), ("b", A4), ("b", A6)])
def test_ping_through(basic, src, dst):
    t, gw = basic
    sent, got, out = ping(t.ns_name(src), dst, count=5)
    assert sent == 5 and got == 5, out


@pytest.mark.parametrize("dst", [B4, B6])
def test_tcp_transfer_through(basic, dst):
    # port b has MTU 1400: the sender's 1500-byte segments are refused with ICMP
    # "fragmentation needed" / "packet too big" and PMTU discovery must make it work.
    t, gw = basic
    sent, got = tcp_transfer(t.ns_name("a"), t.ns_name("b"), dst, size=3 * 1024 * 1024)
    assert sent and sent == got


@pytest.mark.parametrize("dst", [GW_A4, GW_A6, GW_B4, GW_B6])
def test_ping_gateway_itself_via_exception_path(basic, dst):
    t, gw = basic
    before = gw.counters()
    sent, got, out = ping(t.ns_name("a"), dst, count=3)
    assert got == 3, out
    after = gw.counters()
    assert delta(before, after, "events", "to_exception") >= 3
    assert delta(before, after, "events", "from_exception") >= 3


@pytest.mark.parametrize("addr", [GW_A4, GW_A6])
def test_tcp_server_in_gateway_namespace(basic, addr):
    # a plain kernel socket in the gateway's namespace (what IKE and BGP will use)
    t, gw = basic
    sent, got = tcp_transfer(t.ns_name("a"), gw.ns, addr, size=512 * 1024, port=5179)
    assert sent and sent == got


def test_ttl_exceeded(basic):
    t, gw = basic
    before = gw.counters()
    _, got, out = ping(t.ns_name("a"), B4, count=1, extra=["-t", "1"])
    assert got == 0
    assert "From %s" % GW_A4 in out and "Time to live exceeded" in out, out
    _, _, out6 = ping(t.ns_name("a"), B6, count=1, extra=["-t", "1"])
    assert "From %s" % GW_A6 in out6 and "Time exceeded" in out6, out6
    assert delta(before, gw.counters(), "drops", "ttl_exceeded") == 2


def test_no_route_unreachable(basic):
    t, gw = basic
    before = gw.counters()
    _, got, out = ping(t.ns_name("a"), "10.77.0.1", count=1)
    assert got == 0 and "Destination Net Unreachable" in out, out
    _, _, out6 = ping(t.ns_name("a"), "fd00:77::1", count=1)
    assert "Destination unreachable" in out6 or "No route" in out6, out6
    assert delta(before, gw.counters(), "drops", "no_route") == 2


def test_mtu_df_and_packet_too_big(basic):
    t, gw = basic
    before = gw.counters()
    # fresh destinations: host A has no cached path MTU for them (the MTU check comes before
    # neighbour resolution, so they need not exist)
    _, got, out = ping(t.ns_name("a"), "10.2.0.99", count=1, extra=["-M", "do", "-s", "1450"])
    assert got == 0 and "mtu = 1400" in out, out
    _, got6, out6 = ping(t.ns_name("a"), "fd00:b::99", count=1, extra=["-M", "do", "-s", "1450"])
    assert got6 == 0 and "mtu=1400" in out6.replace(" ", ""), out6
    assert delta(before, gw.counters(), "drops", "mtu_exceeded") >= 2


def test_ipv4_fragmentation_without_df(basic):
    t, gw = basic
    before = gw.counters()
    # 10.2.0.11: no path MTU cached on host A, so host A sends 1478-byte packets without DF
    sent, got, out = ping(t.ns_name("a"), "10.2.0.11", count=3, extra=["-M", "dont", "-s", "1450"])
    assert got == 3, out
    assert delta(before, gw.counters(), "events", "fragments_sent") >= 6


UDP_RX = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind(('0.0.0.0', 6000)); s.settimeout(3)
seen = set(); print('ready', flush=True)
while True:
    try: d, _ = s.recvfrom(2048)
    except socket.timeout: break
    seen.add(int(d[:8]))
print(len(seen), flush=True)
"""
UDP_TX = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); n = int(sys.argv[2])
for i in range(n):
    s.sendto(b'%08d' % i + b'x' * 200, (sys.argv[1], 6000))
    if i % 20 == 0: time.sleep(0.001)  # paced: host buffers must not be what drops
"""


def test_route_change_under_traffic(basic):
    """Flip 10.9.0.0/16 between one /16 and two /17s (different next hops on host B) in atomic
    batches while a UDP stream to 10.9.0.1 flows: every packet must arrive, and no packet may
    meet a half-applied table (which would show as no_route drops)."""
    t, gw = basic
    gw.ctl("route", "add", "10.9.0.0/16", "via", "10.2.0.10")
    assert ping(t.ns_name("a"), "10.9.0.1", count=2)[1] == 2
    ping(t.ns_name("a"), "10.2.0.11", count=1)  # resolve the second next hop
    # Host A's kernel must not be what drops: when the gateway's worker is off its core for a
    # moment (a loaded CI machine), the tap's qdisc holds the burst instead of dropping it.
    subprocess.run(["ip", "-n", t.ns_name("a"), "link", "set", "tba0", "txqueuelen", "100000"],
                   check=True)
    before = gw.counters()
    rx = subprocess.Popen(["ip", "netns", "exec", t.ns_name("b"), sys.executable, "-c", UDP_RX],
                          stdout=subprocess.PIPE, text=True)
    assert rx.stdout.readline().strip() == "ready"
    n = 20000
    tx = subprocess.Popen(["ip", "netns", "exec", t.ns_name("a"), sys.executable, "-c", UDP_TX,
                           "10.9.0.1", str(n)])
    flips = 0
    while tx.poll() is None:
        gw.ctl("route", "batch", "del", "10.9.0.0/16", ";", "add", "10.9.0.0/17", "via",
               "10.2.0.11", ";", "add", "10.9.128.0/17", "via", "10.2.0.11")
        gw.ctl("route", "batch", "add", "10.9.0.0/16", "via", "10.2.0.10", ";", "del",
               "10.9.0.0/17", ";", "del", "10.9.128.0/17")
        flips += 2
    tx.wait(60)
    got = int(rx.communicate(timeout=30)[0].strip())
    after = gw.counters()
    assert flips >= 10
    assert delta(before, after, "drops", "no_route") == 0
    # multicast / exception_unsupported: neighbour-discovery noise of the hosts' and the
    # gateway's own kernels, not the stream
    inside = {k: v - before["drops"][k] for k, v in after["drops"].items()
              if k not in ("multicast", "exception_unsupported") and v != before["drops"][k]}
    assert not inside, "the gateway dropped packets during the flips: %s" % inside
    assert delta(before, after, "events", "forwarded") >= n
    assert got == n, "lost %d of %d packets across %d route flips" % (n - got, n, flips)
    gw.ctl("route", "del", "10.9.0.0/16")
    assert ping(t.ns_name("a"), "10.9.0.1", count=1)[1] == 0


def test_route_api_errors_change_nothing(basic):
    t, gw = basic
    routes_before = gw.ctl("show", "routes")
    for bad in (["route", "add", "10.9.0.1/16", "via", "10.2.0.10"],   # host bits set
                ["route", "add", "10.9.0.0/16", "via", "10.55.0.1"],   # not on a connected net
                ["route", "add", "10.9.0.0/16", "via", "fd00:b::10"],  # family mismatch
                ["route", "add", "10.9.0.0/16"],
                ["route", "del", "10.123.0.0/16"],
                ["route", "batch", "add", "10.9.0.0/16", "via", "10.2.0.10", ";", "add",
                 "bogus"]):
        r = gw.ctl(*bad, check=False)
        assert not r["ok"] and r["error"], bad
    assert gw.ctl("show", "routes") == routes_before


def scapy_send(ns, iface, frames_py):
    """Sends the scapy frames built by the expression frames_py (a list) out of iface in ns."""
    code = ("from scapy.all import *\nconf.verb=0\nframes=%s\nsendp(frames, iface=%r)\n"
            % (frames_py, iface))
    r = run(ns, sys.executable, "-c", code, timeout=60)
    assert r.returncode == 0, r.stderr


def test_malformed_burst_dropped_with_counters_while_traffic_flows(basic):
    t, gw = basic
    iface = "tba0"
    mac = [p for p in gw.ctl("show", "ports") if p["name"] == "a"][0]["mac"].lower()
    n = 50
    frames = f"""(
  # 11-byte runt: the kernel pads it to a 14-byte header of ethertype 0 on the way into the tap
  [Raw(bytes.fromhex({mac.replace(':', '')!r}) + b'\\x02' * 5)] * {n} +
  [Ether(dst={mac!r}, type=0x0800)/Raw(b'\\x45' + b'\\x00' * 8)] * {n} +      # truncated IPv4
  [Ether(dst={mac!r}, type=0x0800)/Raw(b'\\x43' + b'\\x00' * 30)] * {n} +      # IHL 3
  [Ether(dst={mac!r})/IP(dst='10.2.0.10', len=900)/UDP()/Raw(b'x'*10)] * {n} +  # len > frame
  [Ether(dst={mac!r})/IP(dst='10.2.0.10', chksum=0x1234)/UDP()] * {n} +        # bad checksum
  [Ether(dst={mac!r})/IP(src='127.0.0.1', dst='10.2.0.10')/UDP()] * {n} +      # martian
  [Ether(dst={mac!r})/IPv6(dst='fd00:b::10', plen=800)/UDP()] * {n} +          # plen > frame
  [Ether(dst={mac!r})/IPv6(dst='fd00:b::10', nh=60)/Raw(b'\\x11\\x20' + b'\\x00'*6)] * {n} +
  [Ether(dst={mac!r})/IPv6(dst='fd00:b::10')/IPv6ExtHdrDestOpt()/IPv6ExtHdrHopByHop()/UDP()] * {n} +
  [Ether(dst={mac!r}, type=0x88b5)/Raw(b'y'*50)] * {n}                          # unknown type
)"""
    before = gw.counters()
    pinger = threading.Thread(target=lambda: results.append(ping(t.ns_name("a"), B4, count=20,
                                                                 interval=0.05)))
    results = []
    pinger.start()
    scapy_send(t.ns_name("a"), iface, frames)
    pinger.join()
    after = gw.counters()
    assert results[0][1] == 20, results[0][2]
    for name, want in (("ipv4_bad_ihl", 2 * n), ("ipv4_bad_length", n),
                       ("ipv4_bad_checksum", n), ("ipv4_martian", n), ("ipv6_bad_length", n),
                       ("ipv6_bad_ext", 2 * n), ("unknown_ethertype", 2 * n)):
        assert delta(before, after, "drops", name) == want, (name, {k: v - before["drops"][k] for k, v in after["drops"].items() if v != before["drops"][k]})
    # and the gateway still forwards afterwards
    assert ping(t.ns_name("a"), B6, count=2)[1] == 2


def test_counters_and_ports_in_telemetry(basic):
    t, gw = basic
    prefix = "espgw-tb-gw"
    r = subprocess.run(["dpdk-telemetry.py", "-f", prefix], input="/espgw/counters\n",
                       capture_output=True, text=True, timeout=20)
    line = [l for l in r.stdout.splitlines() if l.startswith("{") and "/espgw/counters" in l]
    assert line, r.stdout + r.stderr
    data = json.loads(line[-1])["/espgw/counters"]
    assert data["forwarded"] > 0 and "drop_no_route" in data and "drop_tx_full" in data
    r = subprocess.run(["dpdk-telemetry.py", "-f", prefix], input="/espgw/ports\n",
                       capture_output=True, text=True, timeout=20)
    ports = json.loads([l for l in r.stdout.splitlines() if "/espgw/ports" in l][-1])
    assert ports["/espgw/ports"]["a"]["rx_packets"] > 0
    assert "exception_espgw0" in ports["/espgw/ports"]


def test_espgwctl_tables_for_people(basic):
    t, gw = basic
    exe = gw.topo and __import__("topo").build_dir() + "/control/api/espgwctl"
    out = subprocess.run([exe, "--socket", gw.socket, "show", "ports"], capture_output=True,
                         text=True).stdout
    assert out.splitlines()[0].split()[:3] == ["name", "ethdev", "mac"] and "\nb " in out
    r = subprocess.run([exe, "--socket", gw.socket, "route", "add", "nonsense"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "bad prefix" in r.stderr
    r = subprocess.run([exe, "--socket", gw.socket, "show", "nothing"], capture_output=True,
                       text=True)
    assert r.returncode == 1 and "unknown command" in r.stderr
