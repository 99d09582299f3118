"""IKE fragmentation (RFC 7383) with strongSwan 5.9.8, ESN negotiation, and the negotiated traffic
selectors enforced on inbound ESP (RFC 4301 5.2), with espgw <-> espgw over IKE.

strongSwan runs as in test_ike_strongswan.py (its Charon helper and espgw config, imported), with
`fragmentation = force` and a small charon.fragment_size, so its IKE_AUTH and CREATE_CHILD_SA
messages arrive as fragments; espgw fragments what exceeds the IPv4 default of 576 octets (its
CREATE_CHILD_SA with a modp3072 key exchange).

ESN with strongSwan: its only ESP backend here is kernel-libipsec (this kernel has no XFRM ESP
algorithms), which refuses ESN ("IPsec SA: ESN not supported"); so strongSwan is checked against
espgw's default proposals (ESN offered first) with "-noesn", and ESN itself between two espgw.

Namespaces: prefix "tz" (strongSwan, state under /tmp/tz-sw) and "tx" (espgw pair).
"""
import json
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import ping, run, tcp_transfer  # noqa: E402,F401
import topo  # noqa: E402
from test_ike_strongswan import (GW_WAN, SW_WAN, Charon, connection, espgw_config,  # noqa: E402
                                 wait_connected)

H1, H2 = "10.1.0.10", "10.2.0.10"
IKE = "aes128gcm16-prfsha256-ecp256"


class Rig:
    """espgw + strongSwan in namespaces with the prefix tz (the layout of test_ike_strongswan)."""

    def __init__(self, esp_gw, esp_sw, gw_mode, sw_start, fragment_size=None, frag="force"):
        self.t = topo.Topology("tz")
        self.t.down()
        self.charon = None
        try:
            self.t.add_ns("h1")
            self.sw = self.t.add_ns("sw")
            self.h2 = self.t.add_ns("h2")
            cfg = espgw_config("tz", IKE, esp_gw, gw_mode)
            if esp_gw is None:  # the default ESP proposals
                del cfg["connections"][0]["ipsec_policy"]["esp"]
            self.gw = self.t.start_gateway("gw", cfg)
            self.t.attach(self.gw, "tza0", "h1", addrs=[H1 + "/24"], routes=[("default", "10.1.0.1")])
            self.t.attach(self.gw, "tzw0", "sw", addrs=[SW_WAN + "/24"])
            topo.sh("ip", "link", "add", "tz-swlan", "netns", self.sw, "type", "veth", "peer",
                    "name", "eth0", "netns", self.h2)
            topo.sh("ip", "-n", self.sw, "addr", "add", "10.2.0.1/24", "dev", "tz-swlan")
            topo.sh("ip", "-n", self.sw, "link", "set", "tz-swlan", "up")
            topo.sh("ip", "-n", self.h2, "addr", "add", H2 + "/24", "dev", "eth0")
            topo.sh("ip", "-n", self.h2, "link", "set", "eth0", "up")
            topo.sh("ip", "-n", self.h2, "route", "add", "default", "via", "10.2.0.1")
            topo.sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=self.sw)
            self.charon = Charon(self.sw, "/tmp/tz-sw")
            self.charon.write(IKE, esp_sw, sw_start)
            self._patch(fragment_size, frag)
            self.charon.start()
        except Exception:
            self.down()
            raise

    def _patch(self, fragment_size, frag):
        conf = os.path.join(self.charon.dir, "strongswan.conf")
        with open(conf) as f:
            text = f.read()
        if fragment_size:
            text = text.replace("  install_routes = yes\n",
                                "  install_routes = yes\n  fragment_size = %d\n" % fragment_size)
        with open(conf, "w") as f:
            f.write(text)
        sw = os.path.join(self.charon.dir, "swanctl.conf")
        with open(sw) as f:
            text = f.read()
        with open(sw, "w") as f:
            f.write(text.replace("    mobike = no\n", "    mobike = no\n    fragmentation = %s\n" % frag))

    def down(self):
        if self.charon:
            self.charon.stop()
        self.t.down()
        shutil.rmtree("/tmp/tz-sw", ignore_errors=True)

    def diag(self):
        return "espgw log:\n%s\ncharon log:\n%s" % (self.gw.logtext()[-5000:],
                                                    self.charon.logtext()[-5000:])


def check_traffic(rig):
    for ns, dst in (("tz-h1", H2), ("tz-h2", H1)):
        tx, rx, out = ping(ns, dst, count=5, interval=0.1)
        assert rx == tx == 5, out + rig.diag()
    sent, got = tcp_transfer("tz-h1", "tz-h2", H2, size=256 * 1024)
    assert sent == got, rig.diag()


def child_spis(gw):
    return {c["spi_in"] for c in connection(gw)["children"] if c["state"] == "INSTALLED"}


@pytest.mark.parametrize("role", ["initiator", "responder"])
def test_strongswan_fragmentation_force(role):
    """strongSwan fragments IKE_AUTH and CREATE_CHILD_SA (fragment_size 200); espgw reassembles,
    and fragments its own CREATE_CHILD_SA (modp3072 KE > 576 octets) on a rekey it initiates."""
    esp = "aes128gcm16-modp3072"
    gw_mode, sw_start = ("initiator_only", "none") if role == "initiator" else \
        ("responder_only", "start")
    rig = Rig(esp, esp, gw_mode, sw_start, fragment_size=200)
    try:
        try:
            c = wait_connected(rig.gw, timeout=30)
        except TimeoutError:
            pytest.fail("no tunnel\n" + rig.diag())
        assert c["role"] == role
        assert c["fragmentation"] is True, rig.diag()
        check_traffic(rig)
        before = child_spis(rig.gw)
        rig.gw.ctl("ike", "rekey", "to-peer")  # CREATE_CHILD_SA with PFS, both ways > MTU
        topo.wait_for(lambda: child_spis(rig.gw) - before and
                      connection(rig.gw)["state"] == "Connected", 20, "child rekey")
        check_traffic(rig)
        f = connection(rig.gw)["ike_fragments"]
        # espgw's own request went out in fragments, strongSwan's answers came in fragments.
        assert f["messages_fragmented"] >= 1, (f, rig.diag())
        assert f["messages_reassembled"] >= 1 + (role == "responder"), (f, rig.diag())
        drops = {k: v for k, v in f.items() if k.startswith("drop_") and v}
        assert not drops, (drops, rig.diag())
        log = rig.charon.logtext()
        assert "received fragment #" in log and "reassembled" in log, rig.diag()
        assert "splitting IKE message" in log, rig.diag()
    finally:
        rig.down()


def test_strongswan_without_fragmentation_gets_whole_messages():
    """A peer that does not announce fragmentation gets whole messages, also over 576 octets."""
    esp = "aes128gcm16-modp3072"
    rig = Rig(esp, esp, "initiator_only", "none", frag="no")
    try:
        c = wait_connected(rig.gw, timeout=30)
        assert c["fragmentation"] is False
        before = child_spis(rig.gw)
        rig.gw.ctl("ike", "rekey", "to-peer")
        topo.wait_for(lambda: child_spis(rig.gw) - before, 20, "child rekey")
        f = connection(rig.gw)["ike_fragments"]
        assert f["messages_fragmented"] == 0 and f["fragments_in"] == 0, f
        check_traffic(rig)
    finally:
        rig.down()


@pytest.mark.parametrize("role", ["initiator", "responder"])
def test_strongswan_noesn_against_espgw_defaults(role):
    """espgw's default ESP proposals offer ESN first; strongSwan with -noesn gets 32-bit SAs."""
    gw_mode, sw_start = ("initiator_only", "none") if role == "initiator" else \
        ("responder_only", "start")
    rig = Rig(None, "aes256gcm16-noesn", gw_mode, sw_start)
    try:
        c = wait_connected(rig.gw, timeout=30)
        assert c["children"][0]["proposal"] == "aes256gcm16-noesn"
        sas = [s for s in rig.gw.ctl("show", "sas") if s["tunnel"] == "to-peer"]
        assert len(sas) == 2 and not any(s["esn"] for s in sas), sas
        check_traffic(rig)
    finally:
        rig.down()


def test_espgw_pair_esn_and_enforced_selectors():
    """gw1 narrows its selectors to 10.1.0.0/24 <-> 10.2.0.0/24, gw2 is route based (0/0): what
    gw2 accepts from the tunnel is 10.1.0.0/24 only. Both use the default ESP proposals: ESN.
    A host behind gw1 sending from 10.1.1.10 (outside the selectors, routed into the tunnel by
    gw1) is dropped by gw2 as selector_mismatch."""
    t = topo.Topology("tx")
    t.down()
    try:
        t.add_ns("a")
        t.add_ns("b")
        t.add_segment("wan")
        gws = {}
        for name, mode in (("gw1", "initiator_only"), ("gw2", "responder_only")):
            me, peer = ("1", "2") if name == "gw1" else ("2", "1")
            side, other = ("a", "b") if name == "gw1" else ("b", "a")
            cfg = espgw_config("tx", IKE, None, mode, public="198.51.100." + me,
                               peer="198.51.100." + peer, lan=topo.BASIC[side]["gw4"],
                               remote_prefixes=[topo.BASIC[other]["gw4"].rsplit(".", 1)[0] + ".0/24"],
                               wan_addr="198.51.100.%s/24" % me, name=name)
            del cfg["connections"][0]["ipsec_policy"]["esp"]
            if name == "gw1":
                cfg["connections"][0]["local_traffic_selectors"] = ["10.1.0.0/24"]
                cfg["connections"][0]["remote_traffic_selectors"] = ["10.2.0.0/24"]
            cfg["instance"]["ports"][0]["device"] = "net_tap_a,iface=tx%s0" % side
            cfg["instance"]["ports"][1]["device"] = "net_tap_w,iface=txw%s" % me
            gw = t.start_gateway(name, cfg)
            s = topo.BASIC[side]
            t.attach(gw, "tx%s0" % side, side, addrs=[s["host4"]],
                     routes=[("default", s["gw4"].split("/")[0])])
            t.attach(gw, "txw" + me, "wan", bridge=True)
            gws[name] = gw
        for gw in gws.values():
            c = wait_connected(gw)
            assert c["children"][0]["proposal"].endswith("-esn"), c
        g2 = connection(gws["gw2"])["children"][0]
        assert g2["remote_ts"] == ["10.1.0.0/24"], g2
        for gw in gws.values():
            sas = [s for s in gw.ctl("show", "sas") if s["tunnel"] == "to-peer"]
            assert len(sas) == 2 and all(s["esn"] for s in sas), sas
        inbound = [s for s in gws["gw2"].ctl("show", "sas") if s["direction"] == "in"]
        assert inbound[0]["remote_ts"] == ["10.1.0.0/24"], inbound
        hb = topo.BASIC["b"]["host4"].split("/")[0]
        tx, rx, out = ping("tx-a", hb, count=5, interval=0.1)
        assert rx == tx == 5, out
        # A second source on host a, outside gw1's selectors; gw1 routes it into the tunnel.
        topo.sh("ip", "-n", "tx-a", "addr", "add", "10.1.1.10/32", "dev", "txa0")

        def mismatches():
            return sum(s["drops"]["selector_mismatch"] for s in gws["gw2"].ctl("show", "sas")
                       if s["direction"] == "in")
        assert mismatches() == 0
        tx, rx, out = ping("tx-a", hb, count=5, interval=0.1, extra=("-I", "10.1.1.10"))
        assert rx == 0, out
        topo.wait_for(lambda: mismatches() >= 5, 5, "selector_mismatch drops at gw2")
        in1 = [s for s in gws["gw2"].ctl("show", "sas") if s["direction"] == "in"][0]
        assert in1["drops"]["selector_mismatch"] >= 5
        # The tunnel itself is fine.
        tx, rx, out = ping("tx-a", hb, count=3, interval=0.1)
        assert rx == tx == 3, out
        sent, got = tcp_transfer("tx-a", "tx-b", hb, size=256 * 1024)
        assert sent == got
        assert json.dumps(gws["gw2"].ctl("show", "connection", "to-peer")).count("psk") == 0
    finally:
        t.down()
