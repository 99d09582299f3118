"""BGP over an IKE-made tunnel, on the seeds' shape, and what a tunnel going down does to the
BGP-learned routes.

  [tk-h1] 10.11.0.10 --tap a-- [espgw tk-gw "VNet1GW"] --tap wan-- 198.51.100.2 [tk-sw] -- [tk-h2]
  fd00:11::10       10.11.0.1     AS 65010, BGP 10.12.255.4   charon (kernel-libipsec,   10.50.0.10
                    fd00:11::1    198.51.100.1                ipsec0) + BIRD AS 65050    fd00:50::10
                                                              on 10.52.255.253 (lo)

espgw's connection "VNet1toSite5" (type ipsec, enable_bgp, PSK file, route-based traffic selectors
0.0.0.0/0 + ::/0) is negotiated with strongSwan 5.9.8 (userspace ESP, always in UDP 4500). The
site's only static knowledge is its BGP peer: 10.12.255.4/32 dev ipsec0 in the kernel and a device
route to it inside BIRD (to resolve the BGP next hop); charon's table-220 rule sits behind main, as
in the rigs' MODE=route. espgw only knows the site's /32 (the local network gateway's BGP peering
address, routed into the tunnel when the connection is up). Everything else is learned over the
eBGP multihop session that runs inside the tunnel: 10.50.0.0/16 + fd00:50::/48 from BIRD into
espgw's FIB, espgw's address spaces (10.11/16, 10.12/16, fd00:11::/48) into BIRD and from there
into the site's kernel (dev ipsec0).

Tunnel down (espgwctl ike terminate, then charon SIGKILLed -> DPD): the BGP-learned routes leave
espgw's FIB at once (well inside the hold time), come back when the tunnel does.

Namespaces are prefixed "tk"; charon's and BIRD's files live under /tmp/tk-sw and /tmp/tk-bird;
only PIDs started here are killed (checked against /proc/PID/exe).
"""
import json
import os
import shutil
import signal
import time

import pytest

from conftest import ping
import topo
from test_bgp_interop import BIRD, Bird, fib_bgp, gw_peer, gw_route
from test_ike_strongswan import CHARON, PROPOSALS, PSK, SW_WAN, Charon, espgw_config

P = "tk"
CONN = "VNet1toSite5"
PEERING = "10.12.255.4"          # espgw VNet1GW's BGP peering address
SITE = "10.52.255.253"           # on-prem BIRD's router (on lo in tk-sw)
SITE_AS = 65050
H1, H1_6 = "10.11.0.10", "fd00:11::10"
H2, H2_6 = "10.50.0.10", "fd00:50::10"
SITE_V4, SITE_V6 = "10.50.0.0/16", "fd00:50::/48"
SPACES = ["10.11.0.0/16", "10.12.0.0/16", "fd00:11::/48"]
DPD = 10      # espgw's dpd_timeout_seconds
HOLD = 15     # BGP hold time espgw proposes (BIRD's is 30: 15 is negotiated)
SW_DIR, BIRD_DIR = "/tmp/tk-sw", "/tmp/tk-bird"

def wait_for(cond, timeout, what, interval=0.2):
    return topo.wait_for(cond, timeout, what, interval)


# ---- the on-prem site: charon + BIRD in one namespace ------------------------------------------

class RouteBasedCharon(Charon):
    """test_ike_strongswan's charon, route-based: TS 0.0.0.0/0,::/0 both ways, the table-220
    rule behind main (prio 32800), and the site's route to espgw's peering address via ipsec0
    (re-added whenever charon, and with it ipsec0, comes back)."""

    def write(self, ike, esp):
        super().write(ike, esp, "none", dpd="5s", local_ts="0.0.0.0/0,::/0",
                      remote_ts="0.0.0.0/0,::/0", child_life="70m", dpd_action="clear",
                      table_prio=32800, log_append=True)

    def start(self):
        super().start()
        wait_for(lambda: topo.sh("ip", "-n", self.ns, "link", "show", "ipsec0", check=False,
                                 capture=True).returncode == 0, 10, "charon's ipsec0")
        topo.sh("ip", "-n", self.ns, "route", "replace", PEERING + "/32", "dev", "ipsec0",
                "src", SITE)


class SiteBird(Bird):
    """test_bgp_interop's BIRD (AS 65050, multihop, announces 10.50/16 + fd00:50::/48), with its
    files under BIRD_DIR, next hops resolved through ipsec0, and BGP routes exported to the
    site's kernel (so the site's return traffic follows what espgw announced)."""

    extra = """
protocol static nh4 { ipv4; route %s/32 via "ipsec0"; }
protocol static nh6 { ipv6; route fd00:11::1/128 via "ipsec0"; }
protocol kernel k4 { ipv4 { import none; export where source = RTS_BGP; }; }
protocol kernel k6 { ipv6 { import none; export where source = RTS_BGP; }; }
""" % PEERING

    def __init__(self, ns):
        super().__init__(ns, "bird", SITE, PEERING, v4=[SITE_V4], v6=[SITE_V6],
                         v6_nexthop="fd00:50::1")
        self.dir = BIRD_DIR

    def prepare(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)


class Site:
    """espgw VNet1GW + the on-prem site; down() cleans everything up."""

    def __init__(self):
        self.t = topo.Topology(P)
        self.t.down()  # leftovers of an interrupted run
        self.charon = self.bird = None
        try:
            self.t.add_ns("h1")
            self.sw = self.t.add_ns("sw")
            self.h2 = self.t.add_ns("h2")
            self.gw = self.t.start_gateway("gw", self.config())
            self.t.attach(self.gw, P + "a0", "h1", addrs=[H1 + "/24", H1_6 + "/64"],
                          routes=[("default", "10.11.0.1"), ("default", "fd00:11::1")])
            self.t.attach(self.gw, P + "w0", "sw", addrs=[SW_WAN + "/24"])
            sh = topo.sh
            sh("ip", "link", "add", P + "-swlan", "netns", self.sw, "type", "veth", "peer",
               "name", "eth0", "netns", self.h2)
            for ns, dev, addrs in ((self.sw, P + "-swlan", ("10.50.0.1/24", "fd00:50::1/64")),
                                   (self.h2, "eth0", (H2 + "/24", H2_6 + "/64"))):
                for a in addrs:
                    sh("ip", "-n", ns, "addr", "add", a, "dev", dev,
                       *(["nodad"] if ":" in a else []))
                sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", self.h2, "route", "add", "default", "via", "10.50.0.1")
            sh("ip", "-n", self.h2, "-6", "route", "add", "default", "via", "fd00:50::1")
            sh("ip", "-n", self.sw, "addr", "add", SITE + "/32", "dev", "lo")
            sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=self.sw)
            sh("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1", ns=self.sw)
            shutil.rmtree(SW_DIR, ignore_errors=True)
            self.charon = RouteBasedCharon(self.sw, SW_DIR)
            self.charon.write(*PROPOSALS["gcm128"])
            self.start_charon()
            self.bird = SiteBird(self.sw)
            self.bird.start()
            # also in the topology's PID list: a later run's t.down() ends them if this one was
            # interrupted (killed only if /proc/PID/exe still matches)
            for p, exe in self.bird.procs:
                self.t._record("pids", "%d %s" % (p.pid, os.path.realpath(exe)))
        except Exception:
            self.down()
            raise

    def start_charon(self):
        self.charon.start()
        self.t._record("pids", "%d %s" % (self.charon.pid, os.path.realpath(CHARON)))

    @staticmethod
    def config():
        ike, esp = PROPOSALS["gcm128"]
        cfg = espgw_config(P, ike, esp, "default", dpd=DPD, lan="10.11.0.1/24",
                           remote_prefixes=[SITE + "/32"], name="VNet1GW")
        cfg["gateway"]["address_spaces"] = list(SPACES)
        cfg["gateway"]["instances"][0]["bgp_peering_address"] = PEERING
        cfg["instance"]["ports"][0]["addresses"].append("fd00:11::1/64")
        lng = cfg["local_network_gateways"][0]
        lng.update(name="Site5", asn=SITE_AS, bgp_peering_address=SITE)
        conn = cfg["connections"][0]
        conn.update(name=CONN, peer="Site5", type="ipsec", enable_bgp=True,
                    bgp={"hold_time": HOLD, "keepalive": HOLD // 3})
        return cfg

    def down(self):
        if self.bird:
            self.bird.stop()
        if self.charon:
            self.charon.stop()
        self.t.down()
        shutil.rmtree(SW_DIR, ignore_errors=True)
        shutil.rmtree(BIRD_DIR, ignore_errors=True)

    # ---- state ----
    def conn(self):
        return self.gw.ctl("show", "connection", CONN)

    def connected(self):
        c = self.conn()
        return c["state"] == "Connected" and c

    def peer(self):
        return gw_peer(self.gw, CONN)

    def established(self):
        p = self.peer()
        return p["state"] == "Established" and p

    def tunnel_sas(self):
        """{direction: packets} of the SAs bound to the connection's tunnel (newest wins)."""
        return {s["direction"]: s["packets"] for s in self.gw.ctl("show", "sas")
                if s["tunnel"] == CONN}

    def bgp_fib(self, prefix):
        """The installed FIB route of a BGP-learned prefix if it goes into the IKE tunnel."""
        r = fib_bgp(self.gw, prefix)
        return r if r and r["type"] == "tunnel" and r["nexthop"] == CONN else None

    def bgp_routes_in_fib(self):
        return [r["prefix"] for r in self.gw.ctl("show", "routes") if r["source"] == "bgp"]

    def site_kernel_has(self, prefix):
        fam = ["-6"] if ":" in prefix else []
        out = topo.sh("ip", *fam, "-n", self.sw, "route", "show", prefix, capture=True).stdout
        return "dev ipsec0" in out

    def diag(self):
        return "\nespgw log:\n%s\ncharon log:\n%s\nBIRD:\n%s" % (
            self.gw.logtext()[-4000:], self.charon.logtext()[-3000:],
            self.bird.birdc("show", "protocols", "all", "espgw")[-1500:])

    def wait_all_up(self, timeout=60):
        try:
            wait_for(self.connected, timeout, "IKE connection %s" % CONN)
            wait_for(self.established, timeout, "BGP session with BIRD")
            for prefix in (SITE_V4, SITE_V6):
                wait_for(lambda: self.bgp_fib(prefix), 30, "%s in espgw's FIB" % prefix)
            for prefix in SPACES:
                wait_for(lambda: self.bird.learned(prefix), 30, "BIRD learns %s" % prefix)
                wait_for(lambda: self.site_kernel_has(prefix), 30, "%s in the site's kernel"
                         % prefix)
        except TimeoutError as e:
            pytest.fail("%s%s" % (e, self.diag()))

    def check_traffic(self):
        for src, dst in ((P + "-h1", H2), (P + "-h1", H2_6), (P + "-h2", H1), (P + "-h2", H1_6)):
            tx, rx, out = ping(src, dst, count=3, interval=0.1)
            assert tx == rx == 3, "%s -> %s: %s%s" % (src, dst, out, self.diag())


@pytest.fixture(scope="module")
def site():
    s = Site()
    try:
        s.wait_all_up()
        yield s
    finally:
        s.down()


# ---- a) IKE up, BGP Established, and BGP rides the ESP tunnel ---------------------------------

def test_ike_up_and_bgp_established_through_the_tunnel(site):
    rows = site.gw.ctl("show", "connections")
    assert [r["name"] for r in rows] == [CONN] and rows[0]["state"] == "Connected", rows
    c = site.conn()
    assert c["role"] == "initiator"
    assert c["children"][0]["encap"] == "udp4500"  # kernel-libipsec: ESP in UDP 4500
    assert sorted(c["children"][0]["local_ts"]) == ["0.0.0.0/0", "::/0"], c  # route-based
    assert c["routes_installed"] and SITE + "/32" in c["routes"], c
    p = site.established()
    assert p and p["neighbor"] == SITE and p["local_address"] == PEERING, p
    assert p["asn"] == SITE_AS and p["local_asn"] == 65010 and p["hold_time"] == HOLD, p
    assert site.bird.established()
    # the site's /32 goes into the IKE tunnel (the connection's route)
    r = [r for r in site.gw.ctl("show", "routes") if r["prefix"] == SITE + "/32" and
         r["selected"] and r["installed"]]
    assert len(r) == 1 and r[0]["type"] == "tunnel" and r[0]["nexthop"] == CONN, r
    # No host has sent anything yet: the only traffic in the tunnel is BGP (keepalives every
    # HOLD/3 s). Both SAs' packet counters and both sides' message counters grow together.
    sas0, p0 = site.tunnel_sas(), site.peer()
    assert set(sas0) == {"in", "out"}, site.gw.ctl("show", "sas")
    wait_for(lambda: all(site.tunnel_sas()[d] > sas0[d] for d in ("in", "out")) and
             (q := site.peer())["messages_received"] > p0["messages_received"] and
             q["messages_sent"] > p0["messages_sent"], 3 * HOLD, "BGP keepalives through ESP")
    c = site.conn()
    assert c["packets_in"] > 0 and c["packets_out"] > 0, c


# ---- b) prefixes both ways, forwarding over them ---------------------------------------------

def test_prefixes_both_ways_and_traffic(site):
    for prefix in (SITE_V4, SITE_V6):
        r = gw_route(site.gw, prefix)
        assert len(r) == 1 and r[0]["learned_from"] == CONN and r[0]["as_path"] == str(SITE_AS), r
        assert r[0]["best"] and r[0]["in_fib"], r
        assert site.bgp_fib(prefix), site.gw.ctl("show", "routes")
    for prefix in SPACES:
        assert site.bird.as_path(prefix) == "65010", site.bird.birdc("show", "route", "all")
        assert site.site_kernel_has(prefix)
    p = site.peer()
    assert p["prefixes_received"] == 2 and p["prefixes_sent"] == len(SPACES), p
    before = site.tunnel_sas()
    site.check_traffic()
    after = site.tunnel_sas()
    assert all(after[d] - before[d] >= 12 for d in ("in", "out")), (before, after)


# ---- c) tunnel down -> BGP routes leave the FIB; tunnel back -> they return -------------------

def test_terminate_withdraws_bgp_routes_and_initiate_restores(site):
    t0 = time.time()
    site.gw.ctl("ike", "terminate", CONN)
    wait_for(lambda: site.conn()["state"] != "Connected", 10, "connection down")
    try:
        wait_for(lambda: not site.bgp_routes_in_fib(), 8, "BGP routes leave the FIB")
    except TimeoutError:
        pytest.fail("BGP routes still in the FIB %.1f s after the tunnel went down: %s%s" % (
            time.time() - t0, site.gw.ctl("show", "routes"), site.diag()))
    # taken out because the tunnel went down, not by the end of the session (the hold timer
    # runs >= 10 s longer: BIRD's last keepalive came <= HOLD/3 s before the terminate)
    assert site.peer()["state"] == "Established"
    assert gw_route(site.gw, SITE_V4), "still in the Loc-RIB, only out of the FIB"
    assert not site.conn()["routes_installed"]
    assert SITE + "/32" not in json.dumps(site.gw.ctl("show", "routes"))
    _, got, _ = ping(P + "-h1", H2, count=1)
    assert got == 0
    # the tunnel comes back: the session (kept or re-established) brings the routes back
    site.gw.ctl("ike", "initiate", CONN)
    site.wait_all_up()
    site.check_traffic()


def test_dead_site_withdraws_bgp_routes_and_restart_restores(site):
    transitions = site.peer()["established_transitions"]
    t0 = time.time()
    site.charon.stop(signal.SIGKILL)  # ipsec0 and the site's routes over it go with it
    try:
        wait_for(lambda: site.conn()["state"] != "Connected", DPD + 5, "dead peer detection")
        down = time.time() - t0
        wait_for(lambda: not site.bgp_routes_in_fib(), 3, "BGP routes leave the FIB")
    except TimeoutError as e:
        pytest.fail("%s: %s%s" % (e, site.gw.ctl("show", "routes"), site.diag()))
    gone = time.time() - t0
    assert down <= DPD + 2, "dead after %.1f s (DPD timeout %d s)" % (down, DPD)
    assert gone <= DPD + 3, "BGP routes left the FIB %.1f s after the kill" % gone
    assert "dead-peer" in site.gw.logtext()
    # the session ends by hold timer (nothing reaches BIRD any more)
    wait_for(lambda: site.peer()["state"] != "Established", HOLD + 10, "BGP hold timer")
    assert gw_route(site.gw, SITE_V4) == []
    # the site comes back; espgw (default mode) re-initiates, BIRD reconnects
    site.start_charon()
    site.wait_all_up(timeout=90)
    assert site.peer()["established_transitions"] > transitions
    site.check_traffic()
