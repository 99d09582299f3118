#!/usr/bin/python3
"""Namespace topologies for espgw: hosts and gateways as network namespaces.

Shared by the netns tests and the demo. A gateway is an espgw process started inside its own
namespace; its net_tap interfaces are created there and then moved into the neighbouring host
namespaces (or into a "segment" namespace holding a Linux bridge, to join several gateways).
Everything is recorded in a state directory; `down` kills only the PIDs this tool started
(checking /proc/PID/exe) and deletes only the namespaces it created.

CLI:
  topo.py [--prefix P] up basic     host A -- espgw -- host B, IPv4 and IPv6
  topo.py [--prefix P] up pair [ALGO] [udp] [v6]  host A -- gw1 == ESP (static keys) == gw2 -- host B
  topo.py [--prefix P] up vnet2vnet   host A -- VNet1GW == IKEv2, ESP, BGP == VNet2GW -- host B
  topo.py [--prefix P] status
  topo.py [--prefix P] [--gw NAME] ctl ARGS...   espgwctl against a gateway
  topo.py [--prefix P] down
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_dir():
    return os.environ.get("ESPGW_BUILD", os.path.join(ROOT, "build"))


def sh(*args, check=True, capture=False, ns=None, timeout=30, input=None):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=capture, text=True, timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise RuntimeError("command failed (%d): %s\n%s" % (r.returncode, " ".join(cmd),
                                                            (r.stderr or "") if capture else ""))
    return r


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(cond, timeout=20.0, what="condition", interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise TimeoutError("timed out after %.0fs waiting for %s" % (timeout, what))


class Gateway:
    def __init__(self, topo, name, config):
        self.topo, self.name, self.config = topo, name, config
        self.ns = topo.ns_name(name)
        self.dir = os.path.join(topo.state, name)
        self.socket = os.path.join(self.dir, "ctl.sock")
        self.log = os.path.join(self.dir, "espgw.log")
        self.pid = None

    def ctl(self, *args, check=True):
        """Runs espgwctl --json ARGS; returns the parsed reply (raises if not ok and check)."""
        r = sh(os.path.join(build_dir(), "control/api/espgwctl"), "--socket", self.socket,
               "--json", *args, check=False, capture=True)
        try:
            reply = json.loads(r.stdout)
        except ValueError:
            raise RuntimeError("espgwctl %s: %s %s" % (" ".join(args), r.stdout, r.stderr))
        if check and not reply.get("ok"):
            raise RuntimeError("espgwctl %s: %s" % (" ".join(args), reply.get("error")))
        return reply.get("result") if check else reply

    def counters(self):
        return self.ctl("show", "counters")

    def logtext(self):
        with open(self.log) as f:
            return f.read()


class Topology:
    def __init__(self, prefix="eg", state=None):
        self.prefix = prefix
        self.state = state or "/tmp/espgw-topo-%s" % prefix
        self.gateways = {}

    # ---- bookkeeping -------------------------------------------------------
    def ns_name(self, short):
        return "%s-%s" % (self.prefix, short)

    def _record(self, kind, value):
        os.makedirs(self.state, exist_ok=True)
        with open(os.path.join(self.state, kind), "a") as f:
            f.write("%s\n" % value)

    def _recorded(self, kind):
        try:
            with open(os.path.join(self.state, kind)) as f:
                return [l.strip() for l in f if l.strip()]
        except OSError:
            return []

    # ---- building blocks ---------------------------------------------------
    def add_ns(self, short):
        ns = self.ns_name(short)
        sh("ip", "netns", "add", ns)
        self._record("namespaces", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        for k in ("net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
                  "net.ipv6.conf.all.keep_addr_on_down=1"):
            sh("sysctl", "-qw", k, ns=ns, check=False)
        return ns

    def add_segment(self, short):
        """A namespace with bridge br0: several gateways' taps (or hosts) join one L2 segment."""
        ns = self.add_ns(short)
        sh("ip", "-n", ns, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", ns, "link", "set", "br0", "up")
        return ns

    def start_gateway(self, name, config, timeout=60):
        """Writes the config (JSON is YAML), starts espgw in its own namespace, waits for its
        control socket to answer."""
        gw = Gateway(self, name, config)
        os.makedirs(gw.dir, exist_ok=True)
        self.add_ns(name)
        inst = config.setdefault("instance", {})
        inst.setdefault("control_socket", gw.socket)
        inst.setdefault("file_prefix", "espgw-%s-%s" % (self.prefix, name))
        # sequence reservations of static tunnels: kept across restarts of this gateway within
        # the topology, gone with it
        inst.setdefault("state_dir", os.path.join(gw.dir, "state"))
        dp = inst.setdefault("dataplane", {})
        dp.setdefault("hugepages", False)
        dp.setdefault("memory_mb", 512)
        dp.setdefault("mbufs", 8192)
        dp.setdefault("idle_sleep_us", 100)
        dp.setdefault("max_routes_v4", 65536)
        dp.setdefault("max_routes_v6", 8192)
        for f, data in config.pop("_files", {}).items():
            path = os.path.join(gw.dir, f)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            # key files must be private (espgw refuses group/world-readable ones)
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
                fh.write(data)
            os.chmod(path, 0o600)
        cfg_path = os.path.join(gw.dir, "espgw.yaml")
        with open(cfg_path, "w") as f:
            json.dump(config, f, indent=1)
        return self._launch(gw, timeout)

    def restart_gateway(self, name, sig=signal.SIGTERM, timeout=60):
        """Stops gateway `name` with sig (SIGKILL: a crash) and starts it again in its namespace
        with the same config and state directory. Its taps are new: attach them again.
        Returns (exit code of the old process, the new Gateway)."""
        old = self.gateways[name]
        rc = self.stop_gateway(name, sig=sig)
        return rc, self._launch(Gateway(self, name, old.config), timeout, append_log=True)

    def _launch(self, gw, timeout, append_log=False):
        name = gw.name
        cfg_path = os.path.join(gw.dir, "espgw.yaml")
        exe = os.path.join(build_dir(), "control/agent/espgw")
        logf = open(gw.log, "a" if append_log else "w")
        p = subprocess.Popen(["ip", "netns", "exec", gw.ns, exe, "--config", cfg_path],
                             stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        gw.pid = p.pid  # `ip netns exec` execs, so this is espgw itself
        gw.proc = p
        self._record("pids", "%d %s" % (p.pid, os.path.realpath(exe)))
        self.gateways[name] = gw

        def up():
            if p.poll() is not None:
                raise RuntimeError("espgw %s exited with %s:\n%s" % (name, p.returncode,
                                                                      gw.logtext()))
            if not os.path.exists(gw.socket):
                return False
            try:
                gw.ctl("show", "status")
                return True
            except RuntimeError:
                return False
        wait_for(up, timeout, "espgw %s control socket" % name)
        return gw

    def attach(self, gw, iface, ns_short, addrs=(), routes=(), mac=None, bridge=False):
        """Moves gateway tap `iface` into namespace ns_short and configures the host side:
        addresses, routes [(prefix, via)], or enslaves it to br0 when bridge=True."""
        ns = self.ns_name(ns_short)
        sh("ip", "-n", gw.ns, "link", "set", iface, "netns", ns)
        # The kernel side of a tap starts with the PMD's own MAC; give it another one, or a host
        # would answer to the gateway's MAC (and a bridge would keep such frames for itself).
        sh("ip", "-n", ns, "link", "set", iface, "address",
           mac or "02:00:00:%02x:%02x:%02x" % (len(self._recorded("attached")) + 1,
                                               hash(ns) & 0xff, hash(iface) & 0xff))
        if bridge:
            sh("ip", "-n", ns, "link", "set", iface, "master", "br0")
        for a in addrs:
            sh("ip", "-n", ns, "addr", "add", a, "dev", iface, *(["nodad"] if ":" in a else []))
        sh("ip", "-n", ns, "link", "set", iface, "up")
        for prefix, via in routes:
            fam = ["-6"] if ":" in via else []
            sh("ip", *fam, "-n", ns, "route", "replace", prefix, "via", via)
        self._record("attached", "%s %s" % (ns, iface))

    def stop_gateway(self, name, timeout=15, sig=signal.SIGTERM):
        """Sends sig (SIGTERM), waits; returns espgw's exit code."""
        gw = self.gateways.pop(name)
        if gw.proc.poll() is None:
            gw.proc.send_signal(sig)
        try:
            return gw.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            gw.proc.kill()
            return gw.proc.wait(5)

    # ---- teardown ----------------------------------------------------------
    def down(self):
        for line in self._recorded("pids"):
            pid_s, exe = line.split(" ", 1)
            pid = int(pid_s)
            try:
                # a rebuilt binary shows as "<path> (deleted)": still ours
                if os.readlink("/proc/%d/exe" % pid).replace(" (deleted)", "") != exe:
                    continue
            except OSError:
                continue
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not alive(pid):
                    break
                time.sleep(0.05)
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        for gw in self.gateways.values():
            try:
                gw.proc.wait(5)
            except Exception:
                pass
        for ns in reversed(self._recorded("namespaces")):
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.state, ignore_errors=True)
        self.gateways = {}


# ---- the basic topology: host A -- espgw -- host B --------------------------------------------
BASIC = {
    "a": {"gw4": "10.1.0.1/24", "gw6": "fd00:a::1/64", "host4": "10.1.0.10/24",
          "host6": "fd00:a::10/64"},
    "b": {"gw4": "10.2.0.1/24", "gw6": "fd00:b::1/64", "host4": "10.2.0.10/24",
          "host6": "fd00:b::10/64"},
}


def basic_config(prefix, gw_name="gw", extra_routes=(), mtu_b=1500):
    ports = []
    for side in ("a", "b"):
        ports.append({"name": side,
                      "device": "net_tap_%s,iface=%s%s0" % (side, prefix, side),
                      "addresses": [BASIC[side]["gw4"], BASIC[side]["gw6"]],
                      "mtu": mtu_b if side == "b" else 1500})
    return {
        "gateway": {"name": "%s-%s" % (prefix, gw_name), "asn": 65010,
                    "address_spaces": ["10.2.0.0/16"],
                    "instances": [{"public_ip": "10.1.0.1"}]},
        "instance": {"index": 0, "ports": ports, "routes": list(extra_routes),
                     "exception_iface": "espgw0"},
    }


def attach_basic_hosts(topo, gw, host_b_extra=()):
    """Moves gw's taps "a0"/"b0" into host namespaces a and b (BASIC addresses, default routes
    via the gateway)."""
    for side in ("a", "b"):
        s = BASIC[side]
        topo.attach(gw, "%s%s0" % (topo.prefix, side), side,
                    addrs=[s["host4"], s["host6"]] + (list(host_b_extra) if side == "b" else []),
                    routes=[("default", s["gw4"].split("/")[0]),
                            ("default", s["gw6"].split("/")[0])])


def up_basic(topo, extra_routes=(), mtu_b=1500, host_b_extra=()):
    topo.add_ns("a")
    topo.add_ns("b")
    gw = topo.start_gateway("gw", basic_config(topo.prefix, extra_routes=extra_routes,
                                               mtu_b=mtu_b))
    attach_basic_hosts(topo, gw, host_b_extra)
    return gw


# ---- two gateways joined by static-keyed ESP: host A -- gw1 == wan == gw2 -- host B -------------
KEYMAT = {"aes128gcm16": 20, "aes256gcm16": 36, "aes128-sha256": 48, "aes256-sha256": 64,
          "aes256-sha384": 80, "aes256-sha512": 96, "chacha20poly1305": 36, "aes128gmac": 20,
          "aes256gmac": 36}
WAN = {"gw1": ("198.51.100.1/24", "2001:db8:ff::1/64"), "gw2": ("198.51.100.2/24", "2001:db8:ff::2/64")}


def pair_config(prefix, name, algo, keys, outer_v6=False, udp_encap=False, esn=False,
                replay_window=1024, lifetime=None, dataplane=None, split_v6=False):
    """Config of gw1 or gw2; keys = {"1to2": hex, "2to1": hex} shared by both sides.
    dataplane: extra instance.dataplane settings (e.g. {"workers": 2}).
    split_v6: a second tunnel "to-<peer>-v6" between the same outer addresses (SPIs 0x1002/0x2002,
    keys "1to2b"/"2to1b") carries the inner IPv6 prefix; the first one carries IPv4."""
    me, peer = (name, "gw2" if name == "gw1" else "gw1")
    side = "a" if name == "gw1" else "b"
    lan = BASIC[side]
    other = BASIC["b" if side == "a" else "a"]
    fam = 1 if outer_v6 else 0
    local, remote = WAN[me][fam].split("/")[0], WAN[peer][fam].split("/")[0]
    out_key, in_key = ("1to2", "2to1") if name == "gw1" else ("2to1", "1to2")
    spi = {"1to2": 0x1001, "2to1": 0x2001}
    tunnel = {"name": "to-" + peer, "local": local, "remote": remote, "udp_encap": udp_encap,
              "esn": esn, "replay_window": replay_window,
              "outbound": {"spi": spi[out_key], "algo": algo, "key_file": "keys/out.hex"},
              "inbound": {"spi": spi[in_key], "algo": algo, "key_file": "keys/in.hex"}}
    if lifetime:
        tunnel.update(lifetime)
    o4, o6 = other["host4"].split("/")[0], other["host6"].split("/")[0]
    tunnels, v6_tunnel, files = [tunnel], "to-" + peer, {}
    if split_v6:
        t6 = dict(tunnel, name="to-%s-v6" % peer,
                  outbound={"spi": spi[out_key] + 1, "algo": algo, "key_file": "keys/out6.hex"},
                  inbound={"spi": spi[in_key] + 1, "algo": algo, "key_file": "keys/in6.hex"})
        tunnels.append(t6)
        v6_tunnel = t6["name"]
        files = {"keys/out6.hex": keys[out_key + "b"] + "\n",
                 "keys/in6.hex": keys[in_key + "b"] + "\n"}
    return {
        "gateway": {"name": "%s-%s" % (prefix, name), "asn": 65010,
                    "instances": [{"public_ip": WAN[me][0].split("/")[0]}]},
        "instance": {
            "ports": [{"name": side, "device": "net_tap_%s,iface=%s%s0" % (side, prefix, side),
                       "addresses": [lan["gw4"], lan["gw6"]]},
                      {"name": "wan", "device": "net_tap_w,iface=%sw%s" % (prefix, name[-1]),
                       "addresses": list(WAN[me])}],
            "tunnels": tunnels,
            "routes": [{"prefix": other["gw4"].rsplit(".", 1)[0] + ".0/24", "tunnel": "to-" + peer},
                       {"prefix": other["gw6"].split("::")[0] + "::/64", "tunnel": v6_tunnel}],
            "exception_iface": "espgw0", "dataplane": dict(dataplane or {})},
        "_files": dict(files, **{"keys/out.hex": keys[out_key] + "\n",
                                 "keys/in.hex": keys[in_key] + "\n"}),
    }


def attach_pair_member(topo, gw, name, side):
    """Moves gw's LAN tap into host namespace `side` (BASIC addresses, default routes via gw) and
    its WAN tap onto the shared "wan" segment."""
    s = BASIC[side]
    topo.attach(gw, "%s%s0" % (topo.prefix, side), side, addrs=[s["host4"], s["host6"]],
                routes=[("default", s["gw4"].split("/")[0]), ("default", s["gw6"].split("/")[0])])
    topo.attach(gw, "%sw%s" % (topo.prefix, name[-1]), "wan", bridge=True)


def up_pair(topo, algo="aes128gcm16", outer_v6=False, udp_encap=False, esn=False, keys=None,
            **kw):
    """host A -- gw1 == (bridge in namespace 'wan') == gw2 -- host B. Returns (gw1, gw2, keys)."""
    keys = keys or {d: os.urandom(KEYMAT[algo]).hex() for d in ("1to2", "2to1", "1to2b", "2to1b")}
    topo.add_ns("a")
    topo.add_ns("b")
    topo.add_segment("wan")
    gws = []
    for name in ("gw1", "gw2"):
        cfg = pair_config(topo.prefix, name, algo, keys, outer_v6, udp_encap, esn, **kw)
        gw = topo.start_gateway(name, cfg)
        side = "a" if name == "gw1" else "b"
        attach_pair_member(topo, gw, name, side)
        gws.append(gw)
    return gws[0], gws[1], keys


# Two virtual networks joined the cloud way: VNet1GW (AS 65010) and VNet2GW (AS 65020), one
# vnet2vnet connection negotiated by IKEv2 (PSK), BGP over the tunnel between the gateways'
# peering addresses; neither gateway has a static route to the other's networks.
VNETS = {
    "gw1": {"gw": "VNet1GW", "asn": 65010, "spaces": ["10.1.0.0/16", "fd00:a::/48"],
            "peering": "10.1.255.254", "side": "a"},
    "gw2": {"gw": "VNet2GW", "asn": 65020, "spaces": ["10.2.0.0/16", "fd00:b::/48"],
            "peering": "10.2.255.254", "side": "b"},
}


def vnet2vnet_config(prefix, name, psk, ike="aes256gcm16-prfsha384-ecp384", esp="aes256gcm16"):
    me, peer = VNETS[name], VNETS["gw2" if name == "gw1" else "gw1"]
    peer_name = "gw2" if name == "gw1" else "gw1"
    lan = BASIC[me["side"]]
    conn = "%sto%s" % (me["gw"][:5], peer["gw"][:5])
    return {
        "gateway": {"name": "%s-%s" % (prefix, me["gw"]), "asn": me["asn"],
                    "address_spaces": me["spaces"],
                    "instances": [{"public_ip": WAN[name][0].split("/")[0],
                                   "bgp_peering_address": me["peering"]}]},
        "local_network_gateways": [
            {"name": peer["gw"], "gateway_ip": WAN[peer_name][0].split("/")[0],
             "asn": peer["asn"], "bgp_peering_address": peer["peering"],
             "address_prefixes": [peer["peering"] + "/32"]}],
        "connections": [
            {"name": conn, "type": "vnet2vnet", "peer": peer["gw"],
             "shared_key_file": "keys/psk.txt", "enable_bgp": True,
             "bgp": {"hold_time": 30, "keepalive": 10},
             "ipsec_policy": {"ike": [ike], "esp": [esp], "sa_lifetime_seconds": 3600,
                              "dpd_timeout_seconds": 15}}],
        "instance": {
            "ports": [{"name": me["side"],
                       "device": "net_tap_%s,iface=%s%s0" % (me["side"], prefix, me["side"]),
                       "addresses": [lan["gw4"], lan["gw6"]]},
                      {"name": "wan", "device": "net_tap_w,iface=%sw%s" % (prefix, name[-1]),
                       "addresses": [WAN[name][0]]}],
            "exception_iface": "espgw0"},
        "_files": {"keys/psk.txt": psk + "\n"},
    }


def up_vnet2vnet(topo, psk=None):
    """host A -- VNet1GW == IKEv2 + ESP, BGP inside == VNet2GW -- host B. Returns (gw1, gw2)."""
    psk = psk or os.urandom(24).hex()
    topo.add_ns("a")
    topo.add_ns("b")
    topo.add_segment("wan")
    gws = []
    for name in ("gw1", "gw2"):
        gw = topo.start_gateway(name, vnet2vnet_config(topo.prefix, name, psk))
        side = VNETS[name]["side"]
        attach_pair_member(topo, gw, name, side)
        gws.append(gw)
    return gws[0], gws[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("cmd", choices=["up", "down", "status", "ctl"])
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    ap.add_argument("--prefix", default="eg")
    ap.add_argument("--gw", default="gw")
    a = ap.parse_args()
    topo = Topology(a.prefix)
    if a.cmd == "up":
        if os.path.exists(topo.state):
            sys.exit("topology %s is already up (%s); run down first" % (a.prefix, topo.state))
        shape = a.rest[0] if a.rest else "basic"
        try:
            if shape == "basic":
                up_basic(topo)
            elif shape == "pair":
                algo = a.rest[1] if len(a.rest) > 1 else "aes256gcm16"
                up_pair(topo, algo=algo, udp_encap="udp" in a.rest[2:], outer_v6="v6" in a.rest[2:])
            elif shape == "vnet2vnet":
                up_vnet2vnet(topo)
            else:
                sys.exit("unknown topology %s (basic | pair [ALGO] [udp] [v6] | vnet2vnet)" % shape)
        except Exception:
            topo.down()
            raise
        # the espgw processes belong to the topology, not to this CLI process
        print("up: namespaces %s; espgw logs %s" % (
            ", ".join(topo._recorded("namespaces")),
            ", ".join(g.log for g in topo.gateways.values())))
    elif a.cmd == "down":
        topo.down()
        print("down")
    else:
        gw = Gateway(topo, a.gw, {})
        if a.cmd == "status":
            for what in ("ports", "routes", "neighbors"):
                sh(os.path.join(build_dir(), "control/api/espgwctl"), "--socket", gw.socket,
                   "show", what)
        else:
            sys.exit(subprocess.run([os.path.join(build_dir(), "control/api/espgwctl"),
                                     "--socket", gw.socket] + a.rest).returncode)


if __name__ == "__main__":
    main()
