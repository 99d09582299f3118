"""One route the FIB cannot hold blocks no other route change (espgw issue 15.4), against a real
GoBGP peer: the gateway's FIB is made small (max_routes_v4 2048, which gives DIR24_8 its minimum
of 256 tbl8 groups) and GoBGP announces more /25s, each in its own /24, than there are tbl8
groups. The /25s that fit forward, the others are reported as not installed with the reason in
both `show routes` and `show bgp routes`, and an unrelated BGP /16, an API route and a
withdrawal all still apply.

Shape (namespaces prefixed "tq", GoBGP files under /tmp/tg1-bgp/tq-a-gobgp):
  [a: gobgpd AS65050 10.1.0.10] -- espgw AS65010 (peering 10.12.255.4) -- [b: host]
"""
import subprocess

import pytest

from conftest import ping, run
import topo
from test_bgp_interop import (GOBGP, ONPREM_AS, PEERING, STATE, GoBgp, bgp_sections, fib_bgp,
                              gw_peer, gw_route, wait_for)

MAX_V4 = 2048
MAX_V6 = 1024
TBL8_GROUPS = 256  # Fib::init: clamp(max_routes_v4 / 8, 256, 65535)
N25 = 400


def slash25(i):
    return "10.%d.%d.0/25" % (100 + i // 256, i % 256)


def bgp_table(gw):
    """{prefix: (installed, reason)} of the selected BGP routes in `show routes`."""
    return {r["prefix"]: (r["installed"], r.get("reason", ""))
            for r in gw.ctl("show", "routes") if r["source"] == "bgp" and r["selected"]}


@pytest.fixture(scope="module")
def small_fib():
    t = topo.Topology("tq")
    d = None
    try:
        t.add_ns("a")
        t.add_ns("b")
        cfg = topo.basic_config(t.prefix)
        bgp_sections(cfg, PEERING, "onprem", ONPREM_AS, "10.1.0.10", "to-onprem",
                     address_spaces=["10.2.0.0/16"])
        cfg["instance"]["dataplane"] = {"max_routes_v4": MAX_V4, "max_routes_v6": MAX_V6}
        gw = t.start_gateway("gw", cfg)
        topo.attach_basic_hosts(t, gw)
        subprocess.run(["mkdir", "-p", STATE], check=True)
        d = GoBgp(t.ns_name("a"), "gobgp", "10.1.0.10", PEERING, v4=(), v6=())
        d.start()
        wait_for(lambda: gw_peer(gw)["state"] == "Established", 40, "GoBGP session")
        yield t, gw, d
    finally:
        if d:
            d.stop()
        t.down()


def test_refused_routes_block_nothing(small_fib):
    t, gw, d = small_fib
    nsa = t.ns_name("a")
    # max_prefixes unset: the FIB's capacity (max_routes_v4 + max_routes_v6), not unlimited.
    assert gw_peer(gw)["max_prefixes"] == MAX_V4 + MAX_V6, gw_peer(gw)
    # More /25s than tbl8 groups, in one go (one gobgp call each, inside one shell).
    script = "; ".join("%s global rib add %s -a ipv4" % (GOBGP, slash25(i)) for i in range(N25))
    r = run(nsa, "sh", "-c", script, timeout=120)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: gw_peer(gw)["prefixes_received"] == N25, 60, "all /25s received")
    wait_for(lambda: len(bgp_table(gw)) == N25, 30, "all /25s in the route table")

    # An unrelated BGP /16 is installed and forwards.
    subprocess.run(["ip", "-n", nsa, "addr", "add", "10.60.1.1/32", "dev", "lo"], check=True)
    d.cmd(GOBGP, "global", "rib", "add", "10.60.0.0/16", "-a", "ipv4")
    wait_for(lambda: fib_bgp(gw, "10.60.0.0/16"), 20, "10.60.0.0/16 in the FIB")
    assert gw_route(gw, "10.60.0.0/16")[0]["in_fib"] is True
    _, got, out = ping(t.ns_name("b"), "10.60.1.1", count=3)
    assert got == 3, out

    # An API route is installed too, and its reply names no other prefix's error.
    gw.ctl("route", "add", "10.70.0.0/16", "blackhole")
    assert any(r["prefix"] == "10.70.0.0/16" and r["installed"]
               for r in gw.ctl("show", "routes"))

    # The ones that fit are installed; the others say why not.
    table = {p: v for p, v in bgp_table(gw).items() if p.endswith("/25")}
    installed = sorted(p for p, (ok, _) in table.items() if ok)
    refused = {p: why for p, (ok, why) in table.items() if not ok}
    assert 0 < len(installed) <= TBL8_GROUPS, len(installed)
    assert len(refused) >= N25 - TBL8_GROUPS, len(refused)
    for p, why in refused.items():
        assert "FIB full (max_routes_v4" in why, (p, why)
    # `show bgp routes` tells the same story as `show routes`.
    for r in gw.ctl("show", "bgp", "routes"):
        if r["prefix"] in table:
            assert r["in_fib"] == table[r["prefix"]][0], r
            if not r["in_fib"]:
                assert "FIB full" in r["fib_reason"], r
    assert gw.ctl("show", "bgp", "summary")["routes_not_installed"] == len(refused)
    assert "routes not installed" in gw.logtext()

    # Withdrawing an installed /25 stops its forwarding, and the tbl8 group it frees goes to a
    # /25 that did not fit before.
    victim = installed[0]
    host = victim.rsplit(".", 1)[0] + ".1"
    subprocess.run(["ip", "-n", nsa, "addr", "add", host + "/32", "dev", "lo"], check=True)
    _, got, out = ping(t.ns_name("b"), host, count=2)
    assert got == 2, out
    d.cmd(GOBGP, "global", "rib", "del", victim, "-a", "ipv4")
    wait_for(lambda: victim not in bgp_table(gw), 20, "withdrawal of %s" % victim)
    assert not gw_route(gw, victim)
    _, got, _ = ping(t.ns_name("b"), host, count=2)
    assert got == 0
    wait_for(lambda: sum(ok for p, (ok, _) in bgp_table(gw).items() if p.endswith("/25")) ==
             len(installed), 20, "a refused /25 installed in the freed room")
    assert gw.ctl("show", "bgp", "summary")["routes_not_installed"] == len(refused) - 1
