"""IKEv2 interop: espgw <-> strongSwan 5.9.8 (charon-systemd, userspace ESP via kernel-libipsec,
which always sends ESP in UDP 4500 and fakes NAT-D, so espgw does NAT-T), and espgw <-> espgw
over IKE with raw ESP.

  [ti-h1] 10.1.0.10 --tap a-- [espgw ti-gw] --tap wan-- 198.51.100.2 [ti-sw charon] -- [ti-h2] 10.2.0.10
           10.1.0.1/24          198.51.100.1                                 10.2.0.1/24

Everything lives in namespaces with the prefix "ti"; charon's files are under /tmp/ti-sw; only the
PIDs started here are killed (checked against /proc/PID/exe).
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import ping, run, tcp_transfer  # noqa: E402
import topo  # noqa: E402

CHARON = "/usr/sbin/charon-systemd"
PSK = "ti-interop-0123456789abcdef"
GW_WAN, SW_WAN = "198.51.100.1", "198.51.100.2"
H1, H2 = "10.1.0.10", "10.2.0.10"

PROPOSALS = {
    "gcm128": ("aes128gcm16-prfsha256-ecp256", "aes128gcm16"),
    "gcm256": ("aes256gcm16-prfsha384-ecp384", "aes256gcm16"),
    "cbc": ("aes256-sha256-modp2048", "aes256-sha256"),
    "chacha": ("chacha20poly1305-prfsha256-x25519", "chacha20poly1305"),
}



def alive(pid):
    return topo.alive(pid)


# ---- strongSwan -------------------------------------------------------------------------------
class Charon:
    def __init__(self, ns, state):
        self.ns, self.dir, self.pid = ns, state, None
        self.vici = os.path.join(state, "charon.vici")

    def write(self, ike, esp, start, child_rekey="1h", ike_rekey="4h", dpd="10s",
              local_ts="10.2.0.0/24", remote_ts="10.1.0.0/24", child_life="120s",
              dpd_action="restart", table_prio=220, log_append=False):
        """table_prio: the table-220 rule's priority (32800: behind main, for route-based TS);
        log_append: keep charon.log across restarts."""
        os.makedirs(self.dir, exist_ok=True)
        for d in ("x509", "x509ca", "private", "pubkey"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        with open(os.path.join(self.dir, "strongswan.conf"), "w") as f:
            f.write("""charon {
  load = random nonce openssl kdf kernel-libipsec kernel-netlink socket-default vici updown
  install_routes = yes
  routing_table = 220
  routing_table_prio = %(prio)d
  retransmit_tries = 3
  filelog {
    main {
      path = %(d)s/charon.log
      time_format = %%T
      append = %(append)s
      default = 1
      ike = 2
      knl = 1
      flush_line = yes
    }
  }
  plugins {
    vici { socket = unix://%(d)s/charon.vici }
    kernel-libipsec { allow_peer_ts = no }
  }
}
""" % {"d": self.dir, "prio": table_prio, "append": "yes" if log_append else "no"})
        with open(os.path.join(self.dir, "swanctl.conf"), "w") as f:
            f.write("""connections {
  espgw {
    version = 2
    local_addrs = %(sw)s
    remote_addrs = %(gw)s
    proposals = %(ike)s
    mobike = no
    dpd_delay = %(dpd)s
    rekey_time = %(ike_rekey)s
    over_time = 60s
    rand_time = 0s
    local { auth = psk
            id = %(sw)s }
    remote { auth = psk
             id = %(gw)s }
    children {
      net {
        local_ts = %(lts)s
        remote_ts = %(rts)s
        esp_proposals = %(esp)s
        start_action = %(start)s
        dpd_action = %(dpd_action)s
        rekey_time = %(child_rekey)s
        life_time = %(child_life)s
        rand_time = 0s
      }
    }
  }
}
secrets {
  ike-espgw {
    id-1 = %(sw)s
    id-2 = %(gw)s
    secret = "%(psk)s"
  }
}
""" % {"sw": SW_WAN, "gw": GW_WAN, "ike": ike, "esp": esp, "start": start, "dpd": dpd,
       "ike_rekey": ike_rekey, "child_rekey": child_rekey, "psk": PSK, "lts": local_ts,
       "rts": remote_ts, "dpd_action": dpd_action, "child_life": child_life})

    def start(self):
        if os.path.exists(self.vici):
            os.unlink(self.vici)
        env = dict(os.environ, STRONGSWAN_CONF=os.path.join(self.dir, "strongswan.conf"))
        self.log = open(os.path.join(self.dir, "charon.stdout"), "a")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, CHARON], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid  # ip netns exec execs charon
        topo.wait_for(lambda: os.path.exists(self.vici), 10, "charon vici socket")
        self.swanctl("--load-all", "--file", os.path.join(self.dir, "swanctl.conf"))

    def swanctl(self, *args):
        env = dict(os.environ, STRONGSWAN_CONF=os.path.join(self.dir, "strongswan.conf"))
        return subprocess.run(["swanctl", *args, "--uri", "unix://" + self.vici], env=env,
                              capture_output=True, text=True, timeout=20)

    def installed(self):
        return "INSTALLED" in self.swanctl("--list-sas", "--noblock").stdout

    def stop(self, sig=signal.SIGTERM):
        if not self.pid or not alive(self.pid):
            return
        try:
            if os.readlink("/proc/%d/exe" % self.pid) != os.path.realpath(CHARON):
                return
        except OSError:
            return
        os.kill(self.pid, sig)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(5)

    def logtext(self):
        try:
            with open(os.path.join(self.dir, "charon.log")) as f:
                return f.read()
        except OSError:
            return ""


# ---- espgw ------------------------------------------------------------------------------------
def espgw_config(prefix, ike, esp, mode="default", lifetime=3600, ike_lifetime=28800, dpd=9,
                 public=GW_WAN, peer=SW_WAN, lan="10.1.0.1/24", remote_prefixes=("10.2.0.0/24",),
                 wan_addr="198.51.100.1/24", name="gw"):
    return {
        "gateway": {"name": "%s-%s" % (prefix, name), "asn": 65010,
                    "instances": [{"public_ip": public}]},
        "local_network_gateways": [{"name": "peer", "gateway_ip": peer,
                                    "address_prefixes": list(remote_prefixes)}],
        "connections": [{"name": "to-peer", "peer": "peer", "shared_key_file": "psk.txt",
                         "connection_mode": mode,
                         "ipsec_policy": {"ike": [ike], "esp": [esp],
                                          "sa_lifetime_seconds": lifetime,
                                          "ike_lifetime_seconds": ike_lifetime,
                                          "dpd_timeout_seconds": dpd}}],
        "instance": {
            "ports": [{"name": "a", "device": "net_tap_a,iface=%sa0" % prefix, "addresses": [lan]},
                      {"name": "wan", "device": "net_tap_w,iface=%sw0" % prefix,
                       "addresses": [wan_addr]}],
            "exception_iface": "espgw0"},
        "_files": {"psk.txt": PSK + "\n"},
    }


def connection(gw):
    rows = gw.ctl("show", "connections")
    assert len(rows) == 1 and rows[0]["name"] == "to-peer"
    return gw.ctl("show", "connection", "to-peer")


def wait_connected(gw, timeout=20):
    return topo.wait_for(lambda: connection(gw)["state"] == "Connected" and connection(gw),
                         timeout, "IKE connection")


class Rig:
    """espgw + strongSwan in namespaces (prefix ti)."""

    def __init__(self, ike, esp_gw, esp_sw, gw_mode, sw_start, before_charon=None, **kw):
        """before_charon(rig): runs once the namespaces are wired, before charon starts."""
        self.t = topo.Topology("ti")
        self.t.down()  # leftovers of an interrupted run
        self.charon = None
        try:
            self.t.add_ns("h1")
            self.sw = self.t.add_ns("sw")
            self.h2 = self.t.add_ns("h2")
            gwkw = {k: v for k, v in kw.items() if k in ("lifetime", "ike_lifetime", "dpd")}
            self.gw = self.t.start_gateway("gw", espgw_config("ti", ike, esp_gw, gw_mode, **gwkw))
            self.t.attach(self.gw, "tia0", "h1", addrs=["10.1.0.10/24"], routes=[("default", "10.1.0.1")])
            self.t.attach(self.gw, "tiw0", "sw", addrs=[SW_WAN + "/24"])
            topo.sh("ip", "link", "add", "ti-swlan", "netns", self.sw, "type", "veth", "peer",
                    "name", "eth0", "netns", self.h2)
            topo.sh("ip", "-n", self.sw, "addr", "add", "10.2.0.1/24", "dev", "ti-swlan")
            topo.sh("ip", "-n", self.sw, "link", "set", "ti-swlan", "up")
            topo.sh("ip", "-n", self.h2, "addr", "add", "10.2.0.10/24", "dev", "eth0")
            topo.sh("ip", "-n", self.h2, "link", "set", "eth0", "up")
            topo.sh("ip", "-n", self.h2, "route", "add", "default", "via", "10.2.0.1")
            topo.sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=self.sw)
            if before_charon:
                before_charon(self)
            self.charon = Charon(self.sw, "/tmp/ti-sw")
            ckw = {k: v for k, v in kw.items() if k in ("child_rekey", "ike_rekey")}
            self.charon.write(ike, esp_sw, sw_start, **ckw)
            self.charon.start()
        except Exception:
            self.down()
            raise

    def down(self):
        if self.charon:
            self.charon.stop()
        self.t.down()
        shutil.rmtree("/tmp/ti-sw", ignore_errors=True)

    def diag(self):
        return "espgw log:\n%s\ncharon log:\n%s" % (self.gw.logtext()[-4000:],
                                                    self.charon.logtext()[-4000:])


def check_traffic(rig):
    tx, rx, out = ping("ti-h1", H2, count=5, interval=0.1)
    assert rx == tx == 5, out + rig.diag()
    tx, rx, out = ping("ti-h2", H1, count=5, interval=0.1)
    assert rx == tx == 5, out + rig.diag()
    sent, got = tcp_transfer("ti-h1", "ti-h2", H2, size=1024 * 1024)
    assert sent == got, rig.diag()
    sent, got = tcp_transfer("ti-h2", "ti-h1", H1, size=512 * 1024, port=5002)
    assert sent == got, rig.diag()


@pytest.mark.parametrize("name", list(PROPOSALS))
@pytest.mark.parametrize("role", ["initiator", "responder"])
def test_strongswan_proposal(role, name):
    ike, esp = PROPOSALS[name]
    gw_mode, sw_start = ("initiator_only", "none") if role == "initiator" else ("responder_only", "start")
    rig = Rig(ike, esp, esp, gw_mode, sw_start)
    try:
        try:
            c = wait_connected(rig.gw)
        except TimeoutError:
            pytest.fail("no tunnel\n" + rig.diag())
        assert c["ike_proposal"] in (ike, ike.replace("sha256-", "sha256-prfsha256-"))
        assert c["role"] == role
        assert c["nat"]["remote"]  # kernel-libipsec fakes NAT-D
        child = c["children"][0]
        assert child["encap"] == "udp4500"
        assert child["proposal"].startswith(esp)
        check_traffic(rig)
        c = connection(rig.gw)
        assert c["packets_in"] > 0 and c["packets_out"] > 0
        text = json.dumps(c)
        assert PSK not in text
    finally:
        rig.down()


class Pinger:
    """ping -i 0.05 in the background. With a count, ping ends by itself and waits (-W 2) for the
    replies still in flight; stopped with SIGINT instead, the request sent just before the signal
    counts as lost, so only the counted form may be used to assert that nothing was lost."""

    def __init__(self, ns, dst, count=None):
        cmd = ["ip", "netns", "exec", ns, "ping", "-n", "-i", "0.05", "-W", "2"]
        if count:
            cmd += ["-c", str(count)]
        self.p = subprocess.Popen(cmd + [dst], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    @staticmethod
    def _result(out):
        m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        if not m:
            return 0, 0, out
        tx, rx = int(m.group(1)), int(m.group(2))
        seen = {int(s) for s in re.findall(r"icmp_seq=(\d+)", out)}
        missing = sorted(set(range(1, tx + 1)) - seen)
        return tx, rx, "missing icmp_seq %s" % missing[:20]

    def wait(self, timeout):
        out, _ = self.p.communicate(timeout=timeout)
        return self._result(out)

    def stop(self):
        self.p.send_signal(signal.SIGINT)
        out, _ = self.p.communicate(timeout=10)
        return self._result(out)


@pytest.mark.parametrize("who", ["strongswan", "espgw"])
def test_strongswan_rekey_under_traffic(who):
    ike, _ = PROPOSALS["gcm128"]
    esp = "aes128gcm16-ecp256"  # with PFS: every Child SA rekey runs its own key exchange
    if who == "strongswan":  # strongSwan initiates and rekeys often
        rig = Rig(ike, esp, esp, "responder_only", "start", child_rekey="4s", ike_rekey="9s")
    else:  # espgw initiates and rekeys often (Child SA at ~5-5.5 s, IKE SA at ~11 s)
        rig = Rig(ike, esp, esp, "initiator_only", "none", lifetime=6, ike_lifetime=12)
    try:
        try:
            c0 = wait_connected(rig.gw)
        except TimeoutError:
            pytest.fail("no tunnel\n" + rig.diag())
        spis = {c0["children"][0]["spi_in"]}
        ike_spis = {c0["ike_spi_i"]}
        pinger = Pinger("ti-h1", H2, count=400)  # ~20 s at 0.05 s
        result = {}
        th = threading.Thread(target=lambda: result.update(
            r=tcp_transfer("ti-h2", "ti-h1", H1, size=6 * 1024 * 1024, port=5003)))
        th.start()
        deadline = time.time() + 20
        while time.time() < deadline:
            c = connection(rig.gw)
            for ch in c["children"]:
                spis.add(ch["spi_in"])
            ike_spis.add(c["ike_spi_i"])
            time.sleep(0.5)
        th.join(60)
        tx, rx, missing = pinger.wait(timeout=30)
        assert tx == 400
        assert rx == tx, "lost %d of %d pings across rekeys (%s)\n%s" % (tx - rx, tx, missing, rig.diag())
        sent, got = result["r"]
        assert sent == got
        assert len(spis) >= 3, "Child SA was not rekeyed: %s" % spis
        assert len(ike_spis) >= 2, "IKE SA was not rekeyed: %s" % ike_spis
        assert any("ecp256" in ch["proposal"] for ch in connection(rig.gw)["children"])  # PFS
        check_traffic(rig)
    finally:
        rig.down()


def test_strongswan_dead_peer_and_return():
    ike, esp = PROPOSALS["gcm128"]
    rig = Rig(ike, esp, esp, "default", "none", dpd=9)
    try:
        try:
            wait_connected(rig.gw)
        except TimeoutError:
            pytest.fail("no tunnel\n" + rig.diag())
        check_traffic(rig)
        routes = json.dumps(rig.gw.ctl("show", "routes"))
        assert "10.2.0.0/24" in routes
        pinger = Pinger("ti-h1", H2)
        time.sleep(0.5)
        t0 = time.time()
        rig.charon.stop(signal.SIGKILL)
        topo.wait_for(lambda: connection(rig.gw)["state"] != "Connected", 15, "dead peer detection")
        detected = time.time() - t0
        pinger.stop()
        assert detected <= 9 + 1, "dead after %.1f s (DPD timeout 9 s)" % detected
        assert "10.2.0.0/24" not in json.dumps(rig.gw.ctl("show", "routes"))
        assert "dead-peer" in rig.gw.logtext()
        # strongSwan comes back; espgw (default mode) re-initiates.
        rig.charon.start()
        try:
            wait_connected(rig.gw, timeout=40)
        except TimeoutError:
            pytest.fail("tunnel did not return\n" + rig.diag())
        assert "10.2.0.0/24" in json.dumps(rig.gw.ctl("show", "routes"))
        topo.wait_for(lambda: ping("ti-h1", H2, count=1)[1] == 1, 10, "traffic after return")
        check_traffic(rig)
    finally:
        rig.down()


def established_ike_sas(charon):
    return charon.swanctl("--list-sas", "--noblock").stdout.count("ESTABLISHED, IKEv2")


def test_strongswan_refuses_child_espgw_backs_off():
    """16.7a: strongSwan answers espgw's IKE_AUTH with NO_PROPOSAL_CHOSEN for the Child SA. espgw
    counts every such handshake as a failure and backs off (1, 2, 4 ... s); before, the count
    was reset by the IKE SA and espgw redid a full handshake every second for good."""
    ike, esp = PROPOSALS["gcm128"]
    rig = Rig(ike, esp, "aes256-sha256", "initiator_only", "none")
    try:
        try:
            topo.wait_for(lambda: connection(rig.gw).get("failures", 0) >= 3, 40,
                          "three consecutive failures")
        except TimeoutError:
            pytest.fail("no back-off: %s\n%s" % (connection(rig.gw), rig.diag()))
        c = connection(rig.gw)
        assert c["state"] != "Connected"
        assert "NO_PROPOSAL_CHOSEN" in c["last_error"], c
        assert "N(NO_PROP)" in rig.charon.logtext()  # its IKE_AUTH response
    finally:
        rig.down()


def test_espgw_refuses_child_deletes_ike_sa():
    """16.7a, responder: espgw refuses strongSwan's Child SA (NO_PROPOSAL_CHOSEN) and deletes the
    IKE SA instead of keeping a child-less one; strongSwan keeps such IKE SAs itself."""
    ike, esp = PROPOSALS["gcm128"]
    rig = Rig(ike, esp, "aes256-sha256", "responder_only", "start")
    try:
        try:
            topo.wait_for(lambda: "IKE_SA espgw[1] established" in rig.charon.logtext(), 20,
                          "strongSwan's IKE SA")
            topo.wait_for(lambda: established_ike_sas(rig.charon) == 0 and
                          not connection(rig.gw)["ike_state"], 20, "child-less IKE SA deleted")
        except TimeoutError:
            pytest.fail("child-less IKE SA kept\n%s\n%s" % (
                rig.charon.swanctl("--list-sas", "--noblock").stdout, rig.diag()))
        c = connection(rig.gw)
        assert not c["children"]
        assert "NO_PROPOSAL_CHOSEN" in c["last_error"], c
        assert "received DELETE for IKE_SA espgw[1]" in rig.charon.logtext()
        counters = rig.gw.ctl("show", "ike", "counters")  # every refusal, by name
        assert isinstance(counters, dict) and PSK not in json.dumps(counters)
    finally:
        rig.down()


def test_strongswan_simultaneous_start_leaves_one_ike_sa():
    """16.7b: both sides initiate at once (forced: the path is blackholed until both have sent
    their IKE_SA_INIT, then both retransmissions get through). strongSwan does not resolve the
    duplicate; espgw deletes it with a DELETE although its address is the lower one, and nobody
    declares the peer dead afterwards."""
    ike, esp = PROPOSALS["gcm128"]

    def block(rig):  # strongSwan's packets to espgw (and its answers) go nowhere
        topo.sh("ip", "-n", rig.sw, "route", "add", "blackhole", GW_WAN + "/32")

    rig = Rig(ike, esp, esp, "default", "start", before_charon=block, dpd=9)
    try:
        try:
            # (espgw's IKE_SA_INIT may reach charon first: then its own SA is not espgw[1])
            topo.wait_for(lambda: re.search(r"initiating IKE_SA espgw\[\d+\]",
                                            rig.charon.logtext()), 10, "strongSwan initiating")
            topo.wait_for(lambda: "initiating to " + SW_WAN in rig.gw.logtext(), 10,
                          "espgw initiating")
        finally:
            topo.sh("ip", "-n", rig.sw, "route", "del", "blackhole", GW_WAN + "/32")
        try:
            topo.wait_for(lambda: "duplicate IKE SA (both sides initiated)" in rig.gw.logtext(),
                          40, "espgw resolving the duplicate IKE SA")
            topo.wait_for(lambda: established_ike_sas(rig.charon) == 1 and
                          len(connection(rig.gw)["children"]) == 1 and
                          connection(rig.gw)["state"] == "Connected", 20, "one IKE SA per side")
        except TimeoutError:
            pytest.fail("duplicates left\n%s\n%s" % (
                rig.charon.swanctl("--list-sas", "--noblock").stdout, rig.diag()))
        # The SA strongSwan initiated went with espgw's DELETE, not silently.
        ours = re.search(r"initiating IKE_SA (espgw\[\d+\])", rig.charon.logtext()).group(1)
        assert "received DELETE for IKE_SA " + ours in rig.charon.logtext(), rig.diag()
        check_traffic(rig)
        # Liveness checks run on the one IKE SA left: nobody is declared dead, it stays one.
        time.sleep(12)
        assert "dead-peer" not in rig.gw.logtext() and "peer is dead" not in rig.gw.logtext()
        assert established_ike_sas(rig.charon) == 1
        assert len(connection(rig.gw)["children"]) == 1
        check_traffic(rig)
    finally:
        rig.down()


FLOOD = r"""
import os, socket, struct, sys
def transform(last, ttype, tid):
    return struct.pack("!BBHBBH", 0 if last else 3, 0, 8, ttype, 0, tid)
ts = transform(0, 1, 28) + transform(0, 2, 5) + transform(1, 4, 31)
prop = struct.pack("!BBHBBBB", 0, 0, 8 + len(ts), 1, 1, 0, 3) + ts
sa = struct.pack("!BBH", 34, 0, 4 + len(prop)) + prop
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
for i in range(int(sys.argv[3])):
    ke = struct.pack("!BBHHH", 40, 0, 8 + 32, 31, 0) + os.urandom(32)
    no = struct.pack("!BBH", 0, 0, 4 + 32) + os.urandom(32)
    body = sa + ke + no
    hdr = os.urandom(8) + bytes(8) + struct.pack("!BBBBII", 33, 0x20, 34, 0x08, 0, 28 + len(body))
    s.sendto(hdr + body, (sys.argv[2], 500))
print("sent", flush=True)
"""


def test_strongswan_connects_through_half_open_flood():
    """A flood of IKE_SA_INIT requests from the peer's address makes espgw demand cookies; the
    real strongSwan still connects (it answers the COOKIE)."""
    ike, esp = PROPOSALS["chacha"]
    rig = Rig(ike, esp, esp, "responder_only", "none")
    try:
        r = run("ti-sw", sys.executable, "-c", FLOOD, SW_WAN, GW_WAN, 40)
        assert "sent" in r.stdout, r.stderr
        topo.wait_for(lambda: "asking for a cookie" in rig.gw.logtext(), 10, "cookie demand")
        rig.charon.swanctl("--initiate", "--child", "net", "--timeout", "20")
        try:
            wait_connected(rig.gw)
        except TimeoutError:
            pytest.fail("no tunnel through the flood\n" + rig.diag())
        assert "COOKIE" in rig.charon.logtext()
        check_traffic(rig)
    finally:
        rig.down()


@pytest.mark.parametrize("outer", ["v4", "v6"])
def test_espgw_pair_over_ike(outer):
    """espgw <-> espgw: IKE on UDP 500, raw ESP (no NAT-T), IPv4 and IPv6 inner traffic, over an
    IPv4 or IPv6 WAN."""
    t = topo.Topology("tj")
    t.down()
    ike, esp = PROPOSALS["gcm256"]
    try:
        t.add_ns("a")
        t.add_ns("b")
        t.add_segment("wan")
        gws = {}
        for name, mode in (("gw1", "default"), ("gw2", "default")):  # both may initiate
            me, peer = ("1", "2") if name == "gw1" else ("2", "1")
            side, other = ("a", "b") if name == "gw1" else ("b", "a")
            wan = ("198.51.100.%s", "/24") if outer == "v4" else ("2001:db8:ff::%s", "/64")
            cfg = espgw_config("tj", ike, esp, mode, public=wan[0] % me,
                               peer=wan[0] % peer, lan=topo.BASIC[side]["gw4"],
                               remote_prefixes=[topo.BASIC[other]["gw4"].rsplit(".", 1)[0] + ".0/24",
                                                topo.BASIC[other]["gw6"].split("::")[0] + "::/64"],
                               wan_addr=wan[0] % me + wan[1], name=name)
            cfg["instance"]["ports"][0]["device"] = "net_tap_a,iface=tj%s0" % side
            cfg["instance"]["ports"][0]["addresses"].append(topo.BASIC[side]["gw6"])
            cfg["instance"]["ports"][1]["device"] = "net_tap_w,iface=tjw%s" % me
            gw = t.start_gateway(name, cfg)
            s = topo.BASIC[side]
            t.attach(gw, "tj%s0" % side, side, addrs=[s["host4"], s["host6"]],
                     routes=[("default", s["gw4"].split("/")[0]), ("default", s["gw6"].split("/")[0])])
            t.attach(gw, "tjw" + me, "wan", bridge=True)
            gws[name] = gw
        for gw in gws.values():
            c = wait_connected(gw)
            assert c["children"][0]["encap"] == "esp"
            assert not c["nat"]["local"] and not c["nat"]["remote"]
        roles = {connection(g)["role"] for g in gws.values()}
        assert roles == {"initiator", "responder"}
        topo.wait_for(lambda: all(len(connection(g)["children"]) == 1 for g in gws.values()), 10,
                      "one IKE SA per side (duplicates resolved)")
        hb4, hb6 = topo.BASIC["b"]["host4"].split("/")[0], topo.BASIC["b"]["host6"].split("/")[0]
        for dst in (hb4, hb6):
            tx, rx, out = ping("tj-a", dst, count=5, interval=0.1)
            assert rx == tx == 5, out + gws["gw1"].logtext()[-3000:]
        sent, got = tcp_transfer("tj-a", "tj-b", hb4, size=2 * 1024 * 1024)
        assert sent == got
        sas = gws["gw1"].ctl("show", "sas")
        assert all(s["encap"] == "esp" for s in sas)
        # rekey both ways through espgwctl under the same tunnel
        gws["gw1"].ctl("ike", "rekey", "to-peer")
        time.sleep(1)
        gws["gw2"].ctl("ike", "rekey", "to-peer", "ike")
        time.sleep(3)
        for dst in (hb4, hb6):
            tx, rx, out = ping("tj-a", dst, count=5, interval=0.1)
            assert rx == tx == 5, out
        # delete: both sides go down and withdraw their routes
        # (both are in default mode: each would re-initiate unless told to stop)
        gws["gw1"].ctl("ike", "terminate", "to-peer")
        gws["gw2"].ctl("ike", "terminate", "to-peer")
        for g in gws.values():
            topo.wait_for(lambda: connection(g)["state"] == "NotConnected", 10, "delete")
        assert "10.1.0.0/24" not in json.dumps(gws["gw2"].ctl("show", "routes"))
        assert "10.2.0.0/24" not in json.dumps(gws["gw1"].ctl("show", "routes"))
        assert ping("tj-a", hb4, count=1)[1] == 0
    finally:
        t.down()
