"""What a remote party can make the gateway keep or do: the neighbour table under a sweep of
unresolvable destinations, and the control thread under an ARP/ND flood. Namespaces "th*".

    host A (10.1.0.10, fd00:a::10) -- espgw -- host B (10.2.0.10, fd00:b::10)
"""
import socket
import time

from scapy.all import Ether, ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, IPv6, conf

import esp_util as eu
import topo
from conftest import ping

conf.verb = 0


def up(t, **dataplane):
    cfg = topo.basic_config(t.prefix)
    cfg["instance"]["dataplane"] = dict(dataplane)
    t.add_ns("a")
    t.add_ns("b")
    gw = t.start_gateway("gw", cfg)
    topo.attach_basic_hosts(t, gw)
    return gw


def held(gw):
    return sum(n["held"] for n in gw.ctl("show", "neighbors"))


def test_neighbor_table_survives_a_sweep():
    """Host A sends one datagram to each of 1,000 addresses of host B's connected /64 that
    nobody answers for. Each used to create a permanent neighbour entry (holding up to 16
    packets): with max_neighbors 64 the table stayed full of failed entries and a host that
    appeared later never resolved. Now the table and the held packets stay within their bounds
    (the excess counted), failed entries go, and the new host is reachable."""
    t = topo.Topology("th1")
    try:
        gw = up(t, max_neighbors=64)
        assert ping(t.ns_name("a"), "fd00:b::10", count=1)[1] == 1
        sk = eu.ns_socket(t.ns_name("a"), socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            for i in range(1000):
                sk.sendto(b"x", ("fd00:b::1:%x" % i, 9))
        finally:
            sk.close()
        c = gw.counters()
        assert len(gw.ctl("show", "neighbors")) <= 64
        assert c["drops"]["neighbor_table_full"] > 0, c["drops"]
        assert held(gw) <= 64 * 16
        # a host that appears now: reachable once the failed entries can be evicted
        topo.sh("ip", "-n", t.ns_name("b"), "addr", "add", "fd00:b::99/64", "dev",
                t.prefix + "b0", "nodad")
        topo.wait_for(lambda: ping(t.ns_name("a"), "fd00:b::99", count=1)[1] == 1, 30,
                      "the new host to answer through the gateway")
        # and the failed entries do not stay
        topo.wait_for(lambda: sum(1 for n in gw.ctl("show", "neighbors")
                                  if n["state"] == "failed") == 0, 30, "failed entries evicted")
        assert gw.counters()["events"]["neighbor_evicted"] > 0
    finally:
        t.down()


def test_nd_flood_is_validated_and_rate_limited():
    """Neighbour solicitations reach the control thread only if they can be valid (hop limit
    255, RFC 4861 7.1.1) and only at a bounded rate per port; the rest is dropped and counted,
    and the control socket keeps answering. (control_pps 100: a burst of 11 per port, so the
    flood is over the rate however fast or slow this machine sends it.)"""
    t = topo.Topology("th2")
    try:
        gw = up(t, control_pps=100)
        assert ping(t.ns_name("a"), "fd00:b::10", count=1)[1] == 1
        iface = t.prefix + "a0"
        gw_mac = [p["mac"] for p in gw.ctl("show", "ports") if p["name"] == "a"][0]
        src_mac = eu.link_mac(t.ns_name("a"), iface)

        def ns(hlim, n):
            return [Ether(src=src_mac, dst=gw_mac) /
                    IPv6(src="fd00:a::%x" % (0x1000 + i), dst="fd00:a::1", hlim=hlim) /
                    ICMPv6ND_NS(tgt="fd00:a::1") / ICMPv6NDOptSrcLLAddr(lladdr=src_mac)
                    for i in range(n)]
        raw = eu.ns_socket(t.ns_name("a"), socket.AF_PACKET, socket.SOCK_RAW, bind=(iface, 0))
        b = gw.counters()
        try:
            bad = ns(64, 300)
            for f in bad:
                raw.send(bytes(f))
            flood = ns(255, 3000)
            for f in flood:
                raw.send(bytes(f))
        finally:
            raw.close()
        topo.wait_for(lambda: gw.counters()["drops"]["nd_invalid"] - b["drops"]["nd_invalid"]
                      >= 300, 10, "the invalid solicitations counted")
        a = gw.counters()
        assert a["drops"]["nd_invalid"] - b["drops"]["nd_invalid"] == 300
        assert a["drops"]["control_rate_limited"] > b["drops"]["control_rate_limited"], a["drops"]
        assert gw.ctl("show", "status")["workers"] == 1
        assert ping(t.ns_name("a"), "fd00:b::10", count=1)[1] == 1
    finally:
        t.down()
