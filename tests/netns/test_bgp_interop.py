"""BGP-4 interop: espgw's speaker against the real daemons from Debian (BIRD 2, FRR 8 bgpd,
GoBGP 3) in network namespaces. Sessions, IPv4 and IPv6 prefixes both ways, withdrawal, session
reset and recovery, forwarding over the learned routes; eBGP multihop across an ESP tunnel on the
seeds' shape (gateway AS 65010 at 10.12.255.4, on-prem AS 65050 at 10.52.255.253); transit
on-prem <-> VNet1 <-> VNet2.

Shapes (namespaces prefixed "tg1"/"tg2"/"tg3"/"tg6", daemon files under /tmp/tg1-bgp):
  direct:  [a: daemon AS65050 10.1.0.10] -- espgw AS65010 (peering 10.12.255.4) -- [b: host]
  tunnel:  [a: host] -- gw1 AS65010 (10.12.255.4) == ESP == gw2 (plain static tunnel) --
           [b: BIRD AS65050 on 10.52.255.253]
  transit: [a: BIRD AS65050] -- gw1 VNet1 AS65010 == ESP (BGP over it) == gw2 VNet2 AS65020 -- [b]
"""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import ping, run
import topo

STATE = "/tmp/tg1-bgp"
PEERING = "10.12.255.4"
ONPREM_AS = 65050
BIRD, BIRDC = "/usr/sbin/bird", "/usr/sbin/birdc"
GOBGPD, GOBGP = "/usr/bin/gobgpd", "/usr/bin/gobgp"
ZEBRA, BGPD, VTYSH = "/usr/lib/frr/zebra", "/usr/lib/frr/bgpd", "/usr/bin/vtysh"


def wait_for(cond, timeout=30.0, what="condition", interval=0.2):
    return topo.wait_for(cond, timeout, what, interval)


# ---- daemons ---------------------------------------------------------------------------------

class Daemon:
    """A third-party BGP daemon in namespace ns: AS 65050, announces v4 and v6 prefixes."""

    def __init__(self, ns, name, local, peer, peer_as=65010, v4=("10.50.0.0/16",),
                 v6=("fd00:50::/48",), v6_nexthop=None):
        self.ns, self.name, self.local, self.peer, self.peer_as = ns, name, local, peer, peer_as
        self.v4, self.v6, self.v6_nexthop = list(v4), list(v6), v6_nexthop
        self.dir = os.path.join(STATE, "%s-%s" % (ns, name))
        self.procs = []  # (Popen, exe)

    def spawn(self, exe, *args, user_dir_owner=None):
        log = open(os.path.join(self.dir, os.path.basename(exe) + ".out"), "w")
        p = subprocess.Popen(["ip", "netns", "exec", self.ns, exe] + [str(a) for a in args],
                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append((p, exe))
        return p

    def prepare(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        os.chmod(STATE, 0o755)

    def stop(self):
        for p, exe in reversed(self.procs):
            try:
                if os.readlink("/proc/%d/exe" % p.pid) != exe:
                    continue
            except OSError:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.procs = []

    def cmd(self, *args, check=True):
        r = run(self.ns, *args, timeout=20)
        if check and r.returncode != 0:
            raise RuntimeError("%s: %s %s" % (" ".join(map(str, args)), r.stdout, r.stderr))
        return r.stdout


class Bird(Daemon):
    def start(self, recovery=False):
        """recovery: start as a graceful restart (`bird -R`, OPEN with the Restart bit)."""
        self.prepare()
        nh6 = "next hop address %s;" % self.v6_nexthop if self.v6_nexthop else ""
        conf = """
log "{d}/bird.log" all;
router id {local};
protocol device {{ scan time 10; }}
protocol direct {{ ipv4; ipv6; }}
protocol static s4 {{ ipv4; {r4} }}
protocol static s6 {{ ipv6; {r6} }}
{extra}
protocol bgp espgw {{
  local {local} {lport} as {asn};
  neighbor {peer} as {peer_as};
  multihop 2;
  connect delay time 1;
  connect retry time 3;
  error wait time 1, 5;
  hold time 30; keepalive time 10;
  {bgp_extra}
  ipv4 {{ import all; export where proto = "s4"; next hop self; }};
  ipv6 {{ import all; export where proto = "s6"; {nh6} }};
}}
""".format(d=self.dir, local=self.local, asn=ONPREM_AS, peer=self.peer, peer_as=self.peer_as,
           r4=" ".join("route %s unreachable;" % p for p in self.v4),
           r6=" ".join("route %s unreachable;" % p for p in self.v6), nh6=nh6,
           extra=getattr(self, "extra", ""), bgp_extra=getattr(self, "bgp_extra", ""),
           lport="port %d" % self.local_port if getattr(self, "local_port", None) else "")
        with open(os.path.join(self.dir, "bird.conf"), "w") as f:
            f.write(conf)
        self.ctl = os.path.join(self.dir, "bird.ctl")
        self.spawn(BIRD, *(["-R"] if recovery else []), "-f", "-c",
                   os.path.join(self.dir, "bird.conf"), "-s", self.ctl)
        wait_for(lambda: os.path.exists(self.ctl), 10, "bird control socket")

    def birdc(self, *args):
        r = subprocess.run([BIRDC, "-s", self.ctl] + list(args), capture_output=True, text=True,
                           timeout=10)
        return r.stdout

    def established(self):
        return "Established" in self.birdc("show", "protocols", "espgw")

    def learned(self, prefix):
        return "BGP.as_path: 65010" in self.birdc("show", "route", prefix, "all")

    def as_path(self, prefix):
        for line in self.birdc("show", "route", prefix, "all").splitlines():
            if "BGP.as_path" in line:
                return line.split(":", 1)[1].strip()
        return None

    def _static(self, prefix):
        """The static protocol announcing prefix (it must be the only prefix of its family)."""
        v6 = ":" in prefix
        assert [prefix] == (self.v6 if v6 else self.v4), prefix
        return "s6" if v6 else "s4"

    def withdraw(self, prefix):
        self.birdc("disable", self._static(prefix))

    def announce_again(self, prefix):
        self.birdc("enable", self._static(prefix))

    def reset(self):
        self.birdc("restart", "espgw")


class GoBgp(Daemon):
    def start(self):
        self.prepare()
        conf = """
[global.config]
  as = {asn}
  router-id = "{local}"
  local-address-list = ["{local}"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{peer}"
    peer-as = {peer_as}
  [neighbors.transport.config]
    local-address = "{local}"
  [neighbors.ebgp-multihop.config]
    enabled = true
    multihop-ttl = 2
  [neighbors.timers.config]
    connect-retry = 3
    hold-time = 30
    keepalive-interval = 10
    idle-hold-time-after-reset = 3
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
""".format(asn=ONPREM_AS, local=self.local, peer=self.peer, peer_as=self.peer_as)
        path = os.path.join(self.dir, "gobgpd.toml")
        with open(path, "w") as f:
            f.write(conf)
        self.spawn(GOBGPD, "-f", path, "-t", "toml", "--api-hosts", "127.0.0.1:50051",
                   "--pprof-disable", "-p")
        wait_for(lambda: run(self.ns, GOBGP, "global").returncode == 0, 15, "gobgpd API")
        for p in self.v4:
            self.cmd(GOBGP, "global", "rib", "add", p, "-a", "ipv4")
        for p in self.v6:
            self.cmd(GOBGP, "global", "rib", "add", p, "nexthop", self.v6_nexthop or "::",
                     "-a", "ipv6")

    def established(self):
        return "Establ" in self.cmd(GOBGP, "neighbor", check=False)

    def learned(self, prefix):
        fam = "ipv6" if ":" in prefix else "ipv4"
        out = self.cmd(GOBGP, "global", "rib", "-a", fam, prefix, check=False)
        return "65010" in out

    def as_path(self, prefix):
        fam = "ipv6" if ":" in prefix else "ipv4"
        out = self.cmd(GOBGP, "global", "rib", "-a", fam, prefix, "-j", check=False)
        try:
            d = json.loads(out)
        except ValueError:
            return None
        for dest in d.values() if isinstance(d, dict) else []:
            for path in dest:
                for a in path.get("attrs", []):
                    if a.get("type") == 2:
                        return " ".join(str(x) for s in a["as_paths"] for x in s["asns"])
        return None

    def withdraw(self, prefix):
        self.cmd(GOBGP, "global", "rib", "del", prefix, "-a", "ipv6" if ":" in prefix else "ipv4")

    def announce_again(self, prefix):
        if ":" in prefix:
            self.cmd(GOBGP, "global", "rib", "add", prefix, "nexthop", self.v6_nexthop or "::",
                     "-a", "ipv6")
        else:
            self.cmd(GOBGP, "global", "rib", "add", prefix, "-a", "ipv4")

    def reset(self):
        self.cmd(GOBGP, "neighbor", self.peer, "reset")


class Frr(Daemon):
    def start(self):
        self.prepare()
        with open(os.path.join(self.dir, "zebra.conf"), "w") as f:
            f.write("hostname tg1-zebra\nlog file %s/zebra.log\n" % self.dir)
        conf = """hostname tg1-bgpd
log file {d}/bgpd.log
router bgp {asn}
 bgp router-id {local}
 no bgp ebgp-requires-policy
 no bgp network import-check
 timers bgp 10 30
 neighbor {peer} remote-as {peer_as}
 neighbor {peer} ebgp-multihop 2
 neighbor {peer} update-source {local}
 neighbor {peer} timers connect 3
 address-family ipv4 unicast
{n4}
 exit-address-family
 address-family ipv6 unicast
{n6}
  neighbor {peer} activate
 exit-address-family
""".format(d=self.dir, asn=ONPREM_AS, local=self.local, peer=self.peer, peer_as=self.peer_as,
           n4="\n".join("  network %s" % p for p in self.v4),
           n6="\n".join("  network %s" % p for p in self.v6))
        with open(os.path.join(self.dir, "bgpd.conf"), "w") as f:
            f.write(conf)
        subprocess.run(["chown", "-R", "frr:frr", self.dir], check=True)
        zs = os.path.join(self.dir, "zserv.api")
        self.spawn(ZEBRA, "-f", os.path.join(self.dir, "zebra.conf"), "-i",
                   os.path.join(self.dir, "zebra.pid"), "-z", zs, "--vty_socket", self.dir,
                   "-P", "0")
        wait_for(lambda: os.path.exists(zs), 10, "zebra zserv socket")
        self.spawn(BGPD, "-f", os.path.join(self.dir, "bgpd.conf"), "-i",
                   os.path.join(self.dir, "bgpd.pid"), "-z", zs, "--vty_socket", self.dir,
                   "-P", "0")
        wait_for(lambda: os.path.exists(os.path.join(self.dir, "bgpd.vty")), 10, "bgpd vty")

    def vty(self, *cmds):
        args = [VTYSH, "--vty_socket", self.dir]
        for c in cmds:
            args += ["-c", c]
        return subprocess.run(args, capture_output=True, text=True, timeout=15).stdout

    def established(self):
        out = self.vty("show bgp neighbors %s json" % self.peer)
        try:
            return json.loads(out)[self.peer]["bgpState"] == "Established"
        except (ValueError, KeyError):
            return False

    def learned(self, prefix):
        fam = "ipv6" if ":" in prefix else "ipv4"
        out = self.vty("show bgp %s unicast %s json" % (fam, prefix))
        try:
            return any("65010" in p["aspath"]["string"] for p in json.loads(out)["paths"])
        except (ValueError, KeyError):
            return False

    def as_path(self, prefix):
        fam = "ipv6" if ":" in prefix else "ipv4"
        try:
            return json.loads(self.vty("show bgp %s unicast %s json" % (fam, prefix)))[
                "paths"][0]["aspath"]["string"]
        except (ValueError, KeyError, IndexError):
            return None

    def _network(self, prefix, neg):
        self.vty("configure terminal", "router bgp %d" % ONPREM_AS,
                 "address-family %s unicast" % ("ipv6" if ":" in prefix else "ipv4"),
                 ("no " if neg else "") + "network " + prefix)

    def withdraw(self, prefix):
        self._network(prefix, True)

    def announce_again(self, prefix):
        self._network(prefix, False)

    def reset(self):
        self.vty("clear bgp %s" % self.peer)


DAEMONS = {"bird": Bird, "frr": Frr, "gobgp": GoBgp}


# ---- gateway configs -------------------------------------------------------------------------

def bgp_sections(cfg, peering, lng_name, lng_asn, lng_addr, conn_name, gateway_ip="192.0.2.50",
                 address_spaces=None, asn=65010):
    g = cfg["gateway"]
    g["asn"] = asn
    if address_spaces is not None:
        g["address_spaces"] = address_spaces
    g["instances"][0]["bgp_peering_address"] = peering
    cfg.setdefault("local_network_gateways", []).append(
        {"name": lng_name, "gateway_ip": gateway_ip, "asn": lng_asn,
         "bgp_peering_address": lng_addr, "address_prefixes": [lng_addr + "/32"]})
    cfg.setdefault("connections", []).append(
        {"name": conn_name, "peer": lng_name, "shared_key_file": "keys/psk.txt",
         "enable_bgp": True, "connection_mode": "responder_only"})
    cfg.setdefault("_files", {})["keys/psk.txt"] = "not-used-by-static-tunnels-0123456789\n"
    return cfg


def gw_peer(gw, name=None):
    peers = gw.ctl("show", "bgp", "peers")
    return peers[0] if name is None else next(p for p in peers if p["name"] == name)


def gw_route(gw, prefix):
    return [r for r in gw.ctl("show", "bgp", "routes", prefix)]


def fib_bgp(gw, prefix):
    """The installed FIB route of prefix if it comes from BGP, else None."""
    for r in gw.ctl("show", "routes"):
        if r["prefix"] == prefix and r["source"] == "bgp" and r["selected"] and r["installed"]:
            return r
    return None


def any_bgp_route(gw, prefix):
    """Every route-table entry of prefix that came from BGP, selected or not."""
    return [r for r in gw.ctl("show", "routes") if r["prefix"] == prefix and r["source"] == "bgp"]


# ---- direct sessions with each daemon --------------------------------------------------------

@pytest.fixture(scope="module", params=sorted(DAEMONS))
def direct(request):
    name = request.param
    t = topo.Topology("tg1")
    d = None
    try:
        t.add_ns("a")
        t.add_ns("b")
        cfg = topo.basic_config(t.prefix)
        bgp_sections(cfg, PEERING, "onprem", ONPREM_AS, "10.1.0.10", "to-onprem",
                     address_spaces=["10.2.0.0/16", "fd00:b::/48"])
        gw = t.start_gateway("gw", cfg)
        topo.attach_basic_hosts(t, gw)
        nsa = t.ns_name("a")
        # the on-prem networks the daemon announces, on its loopback (ping targets)
        subprocess.run(["ip", "-n", nsa, "addr", "add", "10.50.1.1/32", "dev", "lo"], check=True)
        subprocess.run(["ip", "-n", nsa, "addr", "add", "fd00:50::1/128", "dev", "lo"], check=True)
        os.makedirs(STATE, exist_ok=True)
        d = DAEMONS[name](nsa, name, "10.1.0.10", PEERING, v6_nexthop="fd00:a::10")
        d.start()
        wait_for(lambda: gw_peer(gw)["state"] == "Established", 40, "%s session" % name)
        yield t, gw, d
    finally:
        if d:
            d.stop()
        t.down()


def test_session_established(direct):
    t, gw, d = direct
    p = gw_peer(gw)
    assert p["state"] == "Established", p
    assert p["asn"] == ONPREM_AS and p["neighbor"] == "10.1.0.10"
    assert wait_for(d.established, 10, "daemon sees Established")


def test_ipv4_and_ipv6_prefixes_both_ways(direct):
    t, gw, d = direct
    # daemon -> espgw: in the Loc-RIB and installed in the FIB
    for prefix in ("10.50.0.0/16", "fd00:50::/48"):
        wait_for(lambda: gw_route(gw, prefix), 20, "espgw learns %s" % prefix)
        r = gw_route(gw, prefix)[0]
        assert r["as_path"] == "65050" and r["best"] and r["learned_from"] == "to-onprem", r
    wait_for(lambda: fib_bgp(gw, "10.50.0.0/16"), 10, "10.50.0.0/16 in the FIB")
    wait_for(lambda: fib_bgp(gw, "fd00:50::/48"), 10, "fd00:50::/48 in the FIB")
    # espgw -> daemon: the gateway's address spaces
    for prefix in ("10.2.0.0/16", "fd00:b::/48"):
        wait_for(lambda: d.learned(prefix), 20, "%s learns %s" % (d.name, prefix))
        assert d.as_path(prefix) == "65010"
    p = gw_peer(gw)
    assert p["prefixes_received"] == 2 and p["prefixes_sent"] == 2, p
    # traffic follows the BGP routes: host b -> the daemon's networks (behind 10.1.0.10)
    for dst in ("10.50.1.1", "fd00:50::1"):
        sent, got, out = ping(t.ns_name("b"), dst, count=3)
        assert got == 3, out


def pages(gw, *view, limit=1):
    """Every row of a paged view (`limit N` / `after PREFIX`, issue 15.8), and the page count."""
    rows, after, n = [], [], 0
    while True:
        reply = gw.ctl(*view, "limit", str(limit), *after)
        n += 1
        assert len({r["prefix"] for r in reply["routes"]}) <= limit, reply
        rows += reply["routes"]
        if reply["next"] is None:
            return rows, n
        assert reply["next"] == reply["routes"][-1]["prefix"], reply
        after = ["after", reply["next"]]


def test_route_views_are_paged(direct):
    t, gw, d = direct
    for prefix in ("10.50.0.0/16", "fd00:50::/48"):
        wait_for(lambda: fib_bgp(gw, prefix), 20, "%s in the FIB" % prefix)
    for view, limit in ((("show", "bgp", "routes"), 1), (("show", "routes"), 2)):
        whole = gw.ctl(*view)
        rows, n = pages(gw, *view, limit=limit)
        assert rows == whole, (view, rows, whole)  # same rows, same order, each once
        prefixes = list(dict.fromkeys(r["prefix"] for r in whole))
        assert n == max(1, -(-len(prefixes) // limit)), (view, n, prefixes)
    # BGP's Loc-RIB: our two address spaces and the daemon's two prefixes, one page each
    bgp_rows, n = pages(gw, "show", "bgp", "routes", limit=1)
    assert {"10.50.0.0/16", "fd00:50::/48", "10.2.0.0/16", "fd00:b::/48"} <= {r["prefix"] for r in bgp_rows}
    assert n == len({r["prefix"] for r in bgp_rows})


@pytest.mark.parametrize("prefix,host", [("10.50.0.0/16", "10.50.1.1"),
                                         ("fd00:50::/48", "fd00:50::1")])
def test_withdrawal(direct, prefix, host):
    t, gw, d = direct
    other = "fd00:50::/48" if prefix == "10.50.0.0/16" else "10.50.0.0/16"
    wait_for(lambda: fib_bgp(gw, prefix) and fib_bgp(gw, other), 20, "routes present")
    d.withdraw(prefix)
    wait_for(lambda: not gw_route(gw, prefix), 20, "withdrawal of %s reaches espgw" % prefix)
    assert not any_bgp_route(gw, prefix), any_bgp_route(gw, prefix)
    _, got, _ = ping(t.ns_name("b"), host, count=1)
    assert got == 0
    assert fib_bgp(gw, other), "the other family's route stays"
    assert gw_peer(gw)["prefixes_received"] == 1
    d.announce_again(prefix)
    wait_for(lambda: fib_bgp(gw, prefix), 20, "re-announced %s back" % prefix)
    assert gw_route(gw, prefix)[0]["as_path"] == "65050"


def test_session_reset_and_recovery(direct):
    t, gw, d = direct
    before = gw_peer(gw)["established_transitions"]
    d.reset()  # the daemon drops the session (Cease) and comes back
    wait_for(lambda: gw_peer(gw)["established_transitions"] > before and
             gw_peer(gw)["state"] == "Established", 60, "session back after daemon reset")
    wait_for(lambda: fib_bgp(gw, "10.50.0.0/16"), 20, "routes back after daemon reset")
    wait_for(lambda: d.learned("10.2.0.0/16"), 20, "daemon relearns")
    # and from our side
    before = gw_peer(gw)["established_transitions"]
    gw.ctl("bgp", "reset", "to-onprem")
    wait_for(lambda: gw_peer(gw)["established_transitions"] > before and
             gw_peer(gw)["state"] == "Established", 60, "session back after espgw reset")
    wait_for(lambda: fib_bgp(gw, "10.50.0.0/16"), 20, "routes back after espgw reset")
    assert "Administrative Reset" in gw_peer(gw)["last_error"]


# ---- across an ESP tunnel, and transit -------------------------------------------------------

def up_tunnel_pair(t, mod1, mod2, algo="aes128gcm16"):
    """host/daemon A -- gw1 == ESP (static keys) == gw2 -- host/daemon B, like topo.up_pair but
    with the gateway configs passed through mod1/mod2 first."""
    keys = {d: os.urandom(topo.KEYMAT[algo]).hex() for d in ("1to2", "2to1")}
    t.add_ns("a")
    t.add_ns("b")
    t.add_segment("wan")
    gws = []
    for name, mod in (("gw1", mod1), ("gw2", mod2)):
        cfg = mod(topo.pair_config(t.prefix, name, algo, keys))
        gw = t.start_gateway(name, cfg)
        topo.attach_pair_member(t, gw, name, "a" if name == "gw1" else "b")
        gws.append(gw)
    return gws


def on_lo(ns, *addrs):
    for a in addrs:
        subprocess.run(["ip", "-n", ns, "addr", "add", a, "dev", "lo"], check=True)


SITE5 = "10.52.255.253"


@pytest.fixture(scope="module")
def over_esp():
    """The seeds' shape: VNet1 gateway gw1 (AS 65010, peering 10.12.255.4) and an on-prem BIRD
    (AS 65050, 10.52.255.253) behind gw2, a plain static-keyed ESP peer. Only the peers' /32s
    are static routes; the networks behind them are learned over the BGP session that itself
    runs through the tunnel."""
    t = topo.Topology("tg2")
    d = None

    def mod1(cfg):
        cfg["instance"]["routes"] = [{"prefix": SITE5 + "/32", "tunnel": "to-gw2"}]
        return bgp_sections(cfg, PEERING, "Site5", ONPREM_AS, SITE5, "VNet1toSite5",
                            gateway_ip="198.51.100.2",
                            address_spaces=["10.1.0.0/16", "fd00:a::/48"])

    def mod2(cfg):
        cfg["instance"]["routes"] = [
            {"prefix": PEERING + "/32", "tunnel": "to-gw1"},
            {"prefix": "10.1.0.0/24", "tunnel": "to-gw1"},
            {"prefix": "fd00:a::/64", "tunnel": "to-gw1"},
            {"prefix": "10.52.0.0/16", "via": "10.2.0.10"},
            {"prefix": "fd00:52::/48", "via": "fd00:b::10"}]
        return cfg

    try:
        gw1, gw2 = up_tunnel_pair(t, mod1, mod2)
        nsb = t.ns_name("b")
        on_lo(nsb, SITE5 + "/32", "10.52.1.1/32", "fd00:52::1/128")
        os.makedirs(STATE, exist_ok=True)
        d = Bird(nsb, "bird", SITE5, PEERING, v4=["10.52.0.0/16"], v6=["fd00:52::/48"],
                 v6_nexthop="fd00:b::10")
        # BIRD resolves our next hop (the peering address) through its gateway
        # BIRD resolves our next hops (the peering address; for IPv6 gw1's fd00:a::1, inside
        # its address space) through its own gateway, like the site's static routes
        d.extra = ('protocol static nh4 { ipv4; route %s/32 via 10.2.0.1; }\n'
                   'protocol static nh6 { ipv6; route fd00:a::/64 via fd00:b::1; }' % PEERING)
        d.start()
        wait_for(lambda: gw_peer(gw1)["state"] == "Established", 40, "BGP over ESP")
        yield t, gw1, gw2, d
    finally:
        if d:
            d.stop()
        t.down()


def test_over_esp_session_and_routes(over_esp):
    t, gw1, gw2, d = over_esp
    p = gw_peer(gw1)
    assert p["neighbor"] == SITE5 and p["local_address"] == PEERING and p["asn"] == ONPREM_AS
    for prefix in ("10.52.0.0/16", "fd00:52::/48"):
        r = wait_for(lambda: fib_bgp(gw1, prefix), 20, "%s in gw1's FIB" % prefix)
        assert r["type"] == "tunnel" and r["nexthop"] == "to-gw2", r
    for prefix in ("10.1.0.0/16", "fd00:a::/48"):
        wait_for(lambda: d.learned(prefix), 20, "BIRD learns %s" % prefix)
        assert d.as_path(prefix) == "65010"
    # the session itself rides the tunnel: ESP packets both ways on gw1
    sas = gw1.ctl("show", "sas")
    assert len(sas) == 2 and all(s["packets"] > 0 for s in sas), sas
    for dst in ("10.52.1.1", "fd00:52::1"):
        sent, got, out = ping(t.ns_name("a"), dst, count=3)
        assert got == 3, out


def test_over_esp_withdrawal_and_reset(over_esp):
    t, gw1, gw2, d = over_esp
    wait_for(lambda: fib_bgp(gw1, "10.52.0.0/16"), 20, "route present")
    d.withdraw("10.52.0.0/16")
    wait_for(lambda: fib_bgp(gw1, "10.52.0.0/16") is None, 20, "withdrawn over ESP")
    d.announce_again("10.52.0.0/16")
    wait_for(lambda: fib_bgp(gw1, "10.52.0.0/16"), 20, "announced again")
    before = gw_peer(gw1)["established_transitions"]
    d.reset()
    wait_for(lambda: gw_peer(gw1)["established_transitions"] > before and
             gw_peer(gw1)["state"] == "Established", 60, "session back over ESP")
    wait_for(lambda: fib_bgp(gw1, "10.52.0.0/16"), 20, "routes back over ESP")


TRANSIT_BGP = {"hold_time": 15, "keepalive": 5, "max_prefixes": 100,
               "max_prefix_action": "warn"}


@pytest.fixture(scope="module")
def transit():
    """on-prem BIRD (AS 65050, ns a) -- VNet1 gw1 (AS 65010) == ESP, BGP over it == VNet2 gw2
    (AS 65020) -- host b. No static routes for the networks: BGP on every hop."""
    t = topo.Topology("tg3")
    d = None
    vnet2_peering = "10.22.255.4"

    def mod1(cfg):
        cfg["instance"]["routes"] = [{"prefix": vnet2_peering + "/32", "tunnel": "to-gw2"}]
        bgp_sections(cfg, PEERING, "onprem", ONPREM_AS, "10.1.0.10", "to-onprem",
                     address_spaces=["10.11.0.0/16"])
        bgp_sections(cfg, PEERING, "vnet2", 65020, vnet2_peering, "to-vnet2",
                     gateway_ip="198.51.100.2")
        cfg["connections"][-1]["bgp"] = TRANSIT_BGP  # a dead VNet2 is noticed in 15 s
        return cfg

    def mod2(cfg):
        cfg["instance"]["routes"] = [{"prefix": PEERING + "/32", "tunnel": "to-gw1"}]
        bgp_sections(cfg, vnet2_peering, "vnet1", 65010, PEERING, "to-vnet1",
                     gateway_ip="198.51.100.1", asn=65020,
                     address_spaces=["10.2.0.0/16", "fd00:b::/48"])
        cfg["connections"][-1]["bgp"] = TRANSIT_BGP
        return cfg

    try:
        gw1, gw2 = up_tunnel_pair(t, mod1, mod2)
        nsa = t.ns_name("a")
        on_lo(nsa, "10.50.1.1/32")
        os.makedirs(STATE, exist_ok=True)
        d = Bird(nsa, "bird", "10.1.0.10", PEERING, v6_nexthop="fd00:a::10")
        d.start()
        wait_for(lambda: all(p["state"] == "Established"
                             for p in gw1.ctl("show", "bgp", "peers")), 40, "both gw1 sessions")
        yield t, gw1, gw2, d
    finally:
        if d:
            d.stop()
        t.down()


def test_transit_onprem_learns_vnet2_through_vnet1(transit):
    t, gw1, gw2, d = transit
    wait_for(lambda: d.learned("10.2.0.0/16"), 30, "on-prem learns VNet2's prefix")
    assert d.as_path("10.2.0.0/16") == "65010 65020"
    assert d.learned("10.11.0.0/16") and d.as_path("10.11.0.0/16") == "65010"
    r = wait_for(lambda: gw_route(gw2, "10.50.0.0/16"), 30, "VNet2 learns on-prem's prefix")
    assert r[0]["as_path"] == "65010 65050", r
    # never back to where it came from: gw1 does not announce on-prem's prefix to on-prem
    assert "BGP.as_path" not in d.birdc("show", "route", "10.50.0.0/16", "all")
    assert gw_peer(gw1, "to-onprem")["prefixes_sent"] == 3  # 10.11/16, 10.2/16, fd00:b::/48
    wait_for(lambda: fib_bgp(gw2, "10.50.0.0/16"), 20, "on-prem prefix in VNet2's FIB")
    wait_for(lambda: fib_bgp(gw1, "10.2.0.0/16"), 20, "VNet2 prefix in VNet1's FIB")
    sent, got, out = ping(t.ns_name("a"), "10.2.0.10", count=3, extra=["-I", "10.50.1.1"])
    assert got == 3, out


def test_transit_withdraws_what_goes_away(transit):
    """VNet2 becomes unreachable: gw1's session to it ends by hold timer (the per-connection
    hold time of 15 s from the config) and gw1 withdraws VNet2's prefixes, which it had passed on,
    from on-prem's BIRD; they come back with the session."""
    t, gw1, gw2, d = transit
    p = gw_peer(gw1, "to-vnet2")
    assert p["hold_time"] == 15 and p["max_prefixes"] == 100, p
    assert gw_peer(gw1, "to-onprem")["hold_time"] == 30  # BIRD's 30 < our default 180
    for prefix in ("10.2.0.0/16", "fd00:b::/48"):
        wait_for(lambda: d.learned(prefix), 30, "on-prem has %s" % prefix)
    wan, tap = t.ns_name("wan"), "%sw2" % t.prefix
    subprocess.run(["ip", "-n", wan, "link", "set", tap, "down"], check=True)
    try:
        wait_for(lambda: gw_peer(gw1, "to-vnet2")["state"] != "Established", 40,
                 "gw1 notices VNet2 is gone")
        assert "Hold Timer" in gw_peer(gw1, "to-vnet2")["last_error"]
        for prefix in ("10.2.0.0/16", "fd00:b::/48"):
            wait_for(lambda: not d.learned(prefix), 20, "on-prem loses %s" % prefix)
            assert not gw_route(gw1, prefix) and not any_bgp_route(gw1, prefix)
        assert d.learned("10.11.0.0/16")  # gw1's own space stays
        assert gw_peer(gw1, "to-onprem")["state"] == "Established"
    finally:
        subprocess.run(["ip", "-n", wan, "link", "set", tap, "up"], check=True)
    wait_for(lambda: gw_peer(gw1, "to-vnet2")["state"] == "Established", 90, "VNet2 back")
    for prefix in ("10.2.0.0/16", "fd00:b::/48"):
        wait_for(lambda: d.learned(prefix), 30, "on-prem relearns %s" % prefix)


# ---- ECMP over two tunnels -------------------------------------------------------------------

def second_tunnel(cfg, name, spi_out, spi_in):
    """Adds a second static tunnel next to pair_config's one (same endpoints, own SAs/keys)."""
    t = json.loads(json.dumps(cfg["instance"]["tunnels"][0]))
    t["name"] = name
    t["outbound"].update(spi=spi_out, key_file="keys/out2.hex")
    t["inbound"].update(spi=spi_in, key_file="keys/in2.hex")
    cfg["instance"]["tunnels"].append(t)
    return cfg


SITE5B = "10.52.255.254"


@pytest.fixture(scope="module")
def ecmp():
    """gw1 == two ESP tunnels == gw2. Two speakers of the site's AS 65050 announce 10.52.0.0/16
    to gw1, one per tunnel: BIRD behind gw2 (10.52.255.253, over to-gw2) and gw2 itself, an
    espgw in AS 65050 (10.52.255.254, over to-gw2b) - a site with two devices."""
    t = topo.Topology("tg4")
    d = None
    key2 = {d: os.urandom(20).hex() for d in ("1to2", "2to1")}

    def mod1(cfg):
        second_tunnel(cfg, "to-gw2b", 0x1002, 0x2002)
        cfg["_files"].update({"keys/out2.hex": key2["1to2"], "keys/in2.hex": key2["2to1"]})
        cfg["instance"]["routes"] = [{"prefix": SITE5 + "/32", "tunnel": "to-gw2"},
                                     {"prefix": SITE5B + "/32", "tunnel": "to-gw2b"}]
        bgp_sections(cfg, PEERING, "Site5a", ONPREM_AS, SITE5, "VNet1toSite5a",
                     gateway_ip="198.51.100.2", address_spaces=["10.1.0.0/16"])
        return bgp_sections(cfg, PEERING, "Site5b", ONPREM_AS, SITE5B, "VNet1toSite5b",
                            gateway_ip="198.51.100.3")

    def mod2(cfg):
        second_tunnel(cfg, "to-gw1b", 0x2002, 0x1002)
        cfg["_files"].update({"keys/out2.hex": key2["2to1"], "keys/in2.hex": key2["1to2"]})
        cfg["instance"]["routes"] = [
            {"prefix": PEERING + "/32", "tunnel": "to-gw1b"},
            {"prefix": "10.1.0.0/24", "tunnel": "to-gw1"},
            {"prefix": SITE5 + "/32", "via": "10.2.0.10"},
            {"prefix": "10.52.1.0/24", "via": "10.2.0.10"}]
        return bgp_sections(cfg, SITE5B, "vnet1", 65010, PEERING, "to-vnet1",
                            gateway_ip="198.51.100.1", asn=ONPREM_AS,
                            address_spaces=["10.52.0.0/16"])

    try:
        gw1, gw2 = up_tunnel_pair(t, mod1, mod2)
        nsb = t.ns_name("b")
        on_lo(nsb, SITE5 + "/32", "10.52.1.1/32")
        os.makedirs(STATE, exist_ok=True)
        d = Bird(nsb, "bird", SITE5, PEERING, v4=["10.52.0.0/16"], v6=[])
        d.extra = "protocol static nh4 { ipv4; route %s/32 via 10.2.0.1; }" % PEERING
        d.start()
        wait_for(lambda: all(p["state"] == "Established"
                             for p in gw1.ctl("show", "bgp", "peers")), 40, "both sessions")
        yield t, gw1, gw2, d
    finally:
        if d:
            d.stop()
        t.down()


UDP_FLOWS = r"""
import socket, sys
for port in range(20000, 20000 + int(sys.argv[2])):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    s.sendto(b"x" * 64, (sys.argv[1], 9))
    s.close()
"""


def out_packets(gw):
    return {s["tunnel"]: s["packets"] for s in gw.ctl("show", "sas") if s["direction"] == "out"}


def test_ecmp_over_two_tunnels(ecmp):
    t, gw1, gw2, d = ecmp
    r = wait_for(lambda: (fib_bgp(gw1, "10.52.0.0/16") or {}).get("type") == "tunnel-group" and
                 fib_bgp(gw1, "10.52.0.0/16"), 20, "ECMP tunnel group")
    assert sorted(r["nexthop"].split(",")) == ["to-gw2", "to-gw2b"], r
    routes = gw_route(gw1, "10.52.0.0/16")
    assert len(routes) == 2 and all(x["multipath"] for x in routes), routes
    before = out_packets(gw1)
    run(t.ns_name("a"), "python3", "-c", UDP_FLOWS, "10.52.1.1", 64, check=True)
    after = out_packets(gw1)
    spread = {k: after[k] - before.get(k, 0) for k in after}
    assert all(v >= 5 for v in spread.values()), spread  # 64 flows over both tunnels
    # one flow always takes the same tunnel (the BGP sessions themselves also cross these
    # tunnels, so the other one may carry a keepalive or two meanwhile, never half the flow)
    before = out_packets(gw1)
    for _ in range(20):
        run(t.ns_name("a"), "python3", "-c", UDP_FLOWS, "10.52.1.1", 1, check=True)
    after = out_packets(gw1)
    small, big = sorted(after[k] - before.get(k, 0) for k in after)
    assert big >= 20 and small <= 3, (small, big)
    # one session goes away: the group shrinks to the other tunnel
    d.birdc("disable", "espgw")
    r = wait_for(lambda: (fib_bgp(gw1, "10.52.0.0/16") or {}).get("type") == "tunnel" and
                 fib_bgp(gw1, "10.52.0.0/16"), 20, "single tunnel after withdrawal")
    assert r["nexthop"] == "to-gw2b", r
    sent, got, out = ping(t.ns_name("a"), "10.52.1.1", count=3)
    assert got == 3, out
    d.birdc("enable", "espgw")
    wait_for(lambda: (fib_bgp(gw1, "10.52.0.0/16") or {}).get("type") == "tunnel-group", 30,
             "group back")


# ---- graceful restart: the peer comes back while its old session is silent but open ---------

@pytest.fixture(scope="module")
def gr_bird():
    """espgw and a BIRD with graceful restart (namespaces prefixed "tg6")."""
    t = topo.Topology("tg6")
    d = None
    try:
        t.add_ns("a")
        t.add_ns("b")
        cfg = topo.basic_config(t.prefix)
        bgp_sections(cfg, PEERING, "onprem", ONPREM_AS, "10.1.0.10", "to-onprem",
                     address_spaces=["10.2.0.0/16"])
        gw = t.start_gateway("gw", cfg)
        for side in ("a", "b"):
            s = topo.BASIC[side]
            t.attach(gw, "%s%s0" % (t.prefix, side), side, addrs=[s["host4"], s["host6"]],
                     routes=[("default", s["gw4"].split("/")[0])])
        os.makedirs(STATE, exist_ok=True)
        d = Bird(t.ns_name("a"), "bird", "10.1.0.10", PEERING, v6=())
        d.bgp_extra = "graceful restart on; graceful restart time 120;"
        d.start()
        wait_for(lambda: gw_peer(gw)["state"] == "Established", 40, "BIRD session")
        wait_for(lambda: fib_bgp(gw, "10.50.0.0/16"), 20, "10.50.0.0/16 in the FIB")
        yield t, gw, d
    finally:
        if d:
            d.stop()
        t.down()


def test_graceful_restart_while_old_session_is_open(gr_bird):
    """Issue 16.4 (a), RFC 4724 s4.2: BIRD stops answering while its TCP session stays open (the
    process is frozen, the kernel still ACKs) and a restarted BIRD (`-R`: OPEN with the Restart
    bit; its own listening port is 1790 since the frozen one holds 179) connects again. espgw
    takes the new connection, ends the old session as a transport failure and keeps the routes
    (stale) until BIRD's End-of-RIB; it used to refuse the new connection with Cease/Connection
    Rejected until the old hold timer expired, and then flushed the routes."""
    t, gw, d = gr_bird
    before = gw_peer(gw)["established_transitions"]
    old = [p for p, exe in d.procs]
    for p in old:
        p.send_signal(signal.SIGSTOP)
    d2 = Bird(d.ns, "bird-restarted", "10.1.0.10", PEERING, v6=())
    d2.bgp_extra = d.bgp_extra
    d2.local_port = 1790
    try:
        assert gw_peer(gw)["state"] == "Established"  # espgw has not noticed
        d2.start(recovery=True)
        # The routes stay in the FIB while the session changes hands (stale at most).
        def back():
            assert fib_bgp(gw, "10.50.0.0/16"), "10.50.0.0/16 left the FIB"
            p = gw_peer(gw)
            return p["state"] == "Established" and p["established_transitions"] > before
        wait_for(back, 60, "the restarted BIRD's session")
        wait_for(lambda: not gw_route(gw, "10.50.0.0/16")[0]["stale"], 30,
                 "fresh route after BIRD's End-of-RIB")
        assert fib_bgp(gw, "10.50.0.0/16")
        p = gw_peer(gw)
        sent = p["last_notification_sent"]
        assert not sent or "Connection Rejected" not in sent["name"], p
        assert "graceful restart" in p["last_transition"] or p["sessions_lost"] >= 1, p
        assert "peer restarted" in gw.logtext()
        wait_for(d2.established, 20, "BIRD sees Established")
    finally:
        d2.stop()
        for p in old:  # the frozen BIRD: ours, killed as it is
            p.send_signal(signal.SIGKILL)
            p.wait(5)
        d.procs = []
