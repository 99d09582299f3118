"""Two espgw gateways joined the cloud way, as the demo shows them: a vnet2vnet connection
negotiated with IKEv2 (PSK) and BGP over the tunnel between the gateways' peering addresses; no
static route to the other network anywhere (topo.up_vnet2vnet). And the README's demo command
itself, end to end."""
import os
import subprocess

import pytest

from conftest import ping, tcp_transfer, topo

HOST_A4, HOST_A6 = "10.1.0.10", "fd00:a::10"
HOST_B4, HOST_B6 = "10.2.0.10", "fd00:b::10"
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def fib(gw, prefix):
    for r in gw.ctl("show", "routes"):
        if r["prefix"] == prefix and r["selected"] and r["installed"]:
            return r
    return None


@pytest.fixture(scope="module")
def vnets():
    t = topo.Topology("tv")
    t.down()  # leftovers of an interrupted run
    try:
        gw1, gw2 = topo.up_vnet2vnet(t)
        yield t, gw1, gw2
    finally:
        t.down()


def test_ike_and_bgp_come_up(vnets):
    t, gw1, gw2 = vnets
    for gw, peer_asn in ((gw1, 65020), (gw2, 65010)):
        topo.wait_for(lambda: gw.ctl("show", "connections")[0]["state"] == "Connected", 30,
                      "IKE connection")
        c = gw.ctl("show", "connection", gw.ctl("show", "connections")[0]["name"])
        assert c["encap"] == "esp", c  # no NAT between the gateways: raw ESP
        topo.wait_for(lambda: gw.ctl("show", "bgp", "peers")[0]["state"] == "Established", 40,
                      "BGP session over the tunnel")
        p = gw.ctl("show", "bgp", "peers")[0]
        assert p["asn"] == peer_asn, p
    # each side's address spaces reach the other's FIB through BGP, into the IKE tunnel
    for gw, prefixes in ((gw1, ("10.2.0.0/16", "fd00:b::/48")),
                         (gw2, ("10.1.0.0/16", "fd00:a::/48"))):
        conn = gw.ctl("show", "connections")[0]["name"]
        for prefix in prefixes:
            r = topo.wait_for(lambda: fib(gw, prefix), 30, "%s in the FIB" % prefix)
            assert (r["source"], r["type"], r["nexthop"]) == ("bgp", "tunnel", conn), r
    # the BGP session itself rides ESP: both SAs of gw1 carry packets
    sas = gw1.ctl("show", "sas")
    assert sas and all(s["packets"] > 0 for s in sas), sas


def test_traffic_between_the_vnets(vnets):
    t, gw1, gw2 = vnets
    for src, dst in ((t.ns_name("a"), HOST_B4), (t.ns_name("a"), HOST_B6),
                     (t.ns_name("b"), HOST_A4), (t.ns_name("b"), HOST_A6)):
        tx, rx, out = ping(src, dst, count=5, interval=0.1)
        assert rx == tx == 5, out
    sent, got = tcp_transfer(t.ns_name("a"), t.ns_name("b"), HOST_B4, size=2 * 1024 * 1024)
    assert sent == got
    # no key material in status or logs
    psk = open(os.path.join(gw1.dir, "keys", "psk.txt")).read().strip()
    dump = str(gw1.ctl("show", "connections")) + str(gw1.ctl("show", "sas")) + gw1.logtext()
    assert psk not in dump


def test_tunnel_down_withdraws_and_returns(vnets):
    t, gw1, gw2 = vnets
    name = gw1.ctl("show", "connections")[0]["name"]
    gw1.ctl("ike", "terminate", name)
    # the peer's networks leave the FIB with the tunnel (not only at the BGP hold time)
    topo.wait_for(lambda: fib(gw1, "10.2.0.0/16") is None, 10, "routes withdrawn with the tunnel")
    assert ping(t.ns_name("a"), HOST_B4, count=1)[1] == 0
    gw1.ctl("ike", "initiate", name)
    topo.wait_for(lambda: fib(gw1, "10.2.0.0/16") and fib(gw2, "10.1.0.0/16"), 60,
                  "routes back after the tunnel returns")
    tx, rx, out = ping(t.ns_name("a"), HOST_B4, count=3, interval=0.2)
    assert rx == tx == 3, out


def test_readme_demo_command():
    """`bash scripts/demo.sh` (the README's demo) runs to the end and moves traffic."""
    env = dict(os.environ)
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "demo.sh")], capture_output=True,
                       text=True, timeout=300, env=env, cwd=ROOT)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "3 packets transmitted, 3 received" in out, out[-4000:]
    assert "host B received 8388608 bytes" in out, out[-4000:]
    assert "Established" in out and "Connected" in out, out[-4000:]
