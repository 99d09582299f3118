"""Process lifecycle: bad configs start nothing, clean stop on SIGTERM, several instances side
by side on one machine."""
import json
import os
import re
import signal
import subprocess
import tempfile

import topo
from conftest import ping

ESPGW = os.path.join(topo.build_dir(), "control/agent/espgw")


def run_espgw_in_fresh_ns(config_text, name="tlc-bad"):
    """Runs espgw with config_text inside a new namespace; returns (rc, output, links after)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "gw.yaml")
        with open(path, "w") as f:
            f.write(config_text)
        subprocess.run(["ip", "netns", "add", name], check=True)
        try:
            r = subprocess.run(["ip", "netns", "exec", name, ESPGW, "--config", path],
                               capture_output=True, text=True, timeout=60)
            links = subprocess.run(["ip", "-n", name, "-o", "link"], capture_output=True,
                                   text=True).stdout
            return r.returncode, r.stdout + r.stderr, path, links
        finally:
            subprocess.run(["ip", "netns", "del", name])


GOOD = """gateway: {name: tlc, asn: 65010, instances: [{public_ip: 10.1.0.1}]}
instance:
  ports:
    - {name: a, device: "net_tap_a,iface=tlca0", addresses: [10.1.0.1/24]}
    - {name: b, device: "net_tap_b,iface=tlcb0", addresses: [10.2.0.1/24]}
  control_socket: /tmp/tlc-bad.sock
  file_prefix: espgw-tlc-bad
  dataplane: {hugepages: false, memory_mb: 512, idle_sleep_us: 100, max_routes_v4: 65536,
              max_routes_v6: 8192}
"""


def test_bad_config_names_the_field_and_starts_nothing():
    cases = [
        (GOOD.replace("asn: 65010", "asn: 23456"), "gateway.asn"),
        (GOOD.replace("addresses: [10.2.0.1/24]", "addresses: [10.2.0.1/33]"),
         "instance.ports[1].addresses[0]"),
        (GOOD.replace("memory_mb: 512", "memroy_mb: 512"), "memroy_mb"),
        (GOOD + "  routes: [{prefix: 10.9.0.0/16, via: 10.55.0.1}]\n", "instance.routes[0]"),
    ]
    for text, field in cases:
        rc, out, path, links = run_espgw_in_fresh_ns(text)
        assert rc == 2, out
        assert field in out, (field, out)
        assert "nothing started" in out
        assert "EAL" not in out                      # DPDK was never initialised
        assert "tlca0" not in links and "espgw0" not in links
        assert not os.path.exists("/tmp/tlc-bad.sock")


def test_yaml_syntax_error_has_file_and_line():
    rc, out, path, _ = run_espgw_in_fresh_ns(GOOD.replace("instance:\n", "instance:\n  - [\n"))
    assert rc == 2
    assert "gw.yaml:" in out and any(c.isdigit() for c in out.split("gw.yaml:")[1][:4]), out


def test_check_mode_validates_without_starting():
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(GOOD)
    try:
        r = subprocess.run([ESPGW, "--config", f.name, "--check"], capture_output=True, text=True)
        assert r.returncode == 0 and "ok" in r.stdout
    finally:
        os.unlink(f.name)


def test_two_gateways_side_by_side_and_clean_stop():
    t1, t2 = topo.Topology("tl1"), topo.Topology("tl2")
    try:
        gw1 = topo.up_basic(t1)
        gw2 = topo.up_basic(t2)  # same addresses, other namespaces, other DPDK file prefix
        for t in (t1, t2):
            assert ping(t.ns_name("a"), "10.2.0.10", count=3)[1] == 3
            assert ping(t.ns_name("b"), "fd00:a::10", count=3)[1] == 3
        assert gw1.ctl("show", "status")["gateway"] != gw2.ctl("show", "status")["gateway"]
        # keys live in the process: it never dumps core (PR_SET_DUMPABLE 0)
        assert gw1.ctl("show", "status")["core_dumps"] is False
        # SIGTERM: clean exit, control socket removed, taps gone from the host namespaces
        rc = t1.stop_gateway("gw")
        assert rc == 0, gw1.logtext()
        assert "stopping" in gw1.logtext()
        assert not os.path.exists(gw1.socket)
        links = subprocess.run(["ip", "-n", t1.ns_name("a"), "-o", "link"], capture_output=True,
                               text=True).stdout
        assert "tl1a0" not in links
        # the other instance is unaffected
        assert ping(t2.ns_name("a"), "10.2.0.10", count=3)[1] == 3
    finally:
        t1.down()
        t2.down()


def test_clean_stop_on_sigint():
    t = topo.Topology("tl3")
    try:
        gw = topo.up_basic(t)
        assert ping(t.ns_name("a"), "10.2.0.10", count=1)[1] == 1
        rc = t.stop_gateway("gw", sig=signal.SIGINT)
        assert rc == 0, gw.logtext()
        assert "stopping" in gw.logtext()
        assert not os.path.exists(gw.socket)
        links = subprocess.run(["ip", "-n", t.ns_name("a"), "-o", "link"], capture_output=True,
                               text=True).stdout
        assert "tl3a0" not in links
    finally:
        t.down()


# ---- the README's examples ----------------------------------------------------------------------

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
KEYS = {"keys/out.hex": 36, "keys/in.hex": 36}  # aes256gcm16: 32-byte key + 4-byte salt


def readme_examples():
    with open(README) as f:
        return re.findall(r"```yaml\n(.*?)```", f.read(), re.S)


def write_example(d, text, extra=""):
    for name, n in KEYS.items():
        os.makedirs(os.path.join(d, "keys"), exist_ok=True)
        with open(os.path.join(d, name), "w") as f:
            f.write(os.urandom(n).hex() + "\n")
        os.chmod(os.path.join(d, name), 0o600)
    with open(os.path.join(d, "keys/site5.psk"), "w") as f:
        f.write("a-long-pre-shared-key-for-the-example\n")
    os.chmod(os.path.join(d, "keys/site5.psk"), 0o600)
    path = os.path.join(d, "gw.yaml")
    with open(path, "w") as f:
        f.write(text + extra)
    return path


def test_readme_examples_check_and_start():
    """Every YAML example of the README passes --check; the minimal and the static-tunnel ones
    also start (the minimal one used to pass --check and then fail in rte_fib_create: its
    memory_mb could not hold the default FIB)."""
    examples = readme_examples()
    assert len(examples) >= 3
    for i, text in enumerate(examples):
        with tempfile.TemporaryDirectory() as d:
            path = write_example(d, text)
            r = subprocess.run([ESPGW, "--config", path, "--check"], capture_output=True,
                               text=True)
            assert r.returncode == 0 and "ok" in r.stdout, (i, r.stdout + r.stderr)
            if i >= 2:
                continue
            # started for real in a namespace of its own (own socket, prefix and state dir)
            text = re.sub(r"state_dir: \S+", "state_dir: %s/state" % d, text)
            path = write_example(d, text, "  control_socket: %s/ctl.sock\n"
                                          "  file_prefix: espgw-tlc-readme\n" % d +
                                 ("" if "state_dir:" in text else "  state_dir: %s/state\n" % d))
            ns = "tlc-readme"
            subprocess.run(["ip", "netns", "add", ns], check=True)
            p = subprocess.Popen(["ip", "netns", "exec", ns, ESPGW, "--config", path],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                topo.wait_for(lambda: os.path.exists(os.path.join(d, "ctl.sock")) or
                              p.poll() is not None, 60, "espgw up")
                assert p.poll() is None, p.stdout.read()
                p.send_signal(signal.SIGTERM)
                out = p.communicate(timeout=30)[0]
                assert p.returncode == 0, out
                assert "instance 0 up" in out, out
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                subprocess.run(["ip", "netns", "del", ns])


def test_tables_that_do_not_fit_memory_are_refused_by_check():
    text = GOOD.replace("max_routes_v4: 65536", "max_routes_v4: 1048576")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "gw.yaml")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([ESPGW, "--config", path, "--check"], capture_output=True, text=True)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "instance.dataplane.memory_mb: 512 MiB cannot hold" in r.stderr, r.stderr
    assert "gw.yaml:" in r.stderr and "nothing started" in r.stderr


def ctl(sock, *args):
    r = subprocess.run([os.path.join(topo.build_dir(), "control/api/espgwctl"), "--socket", sock,
                        "--json", *args], capture_output=True, text=True, check=True)
    reply = json.loads(r.stdout)
    assert reply["ok"], reply
    return reply["result"]


# ---- ports --------------------------------------------------------------------------------------

def test_wan_mtu_above_1500_with_the_exception_tap():
    """A port MTU above 1500 (here a net_ring port, which allows it) used to set the exception
    TAP's MTU too, which net_tap refuses ("Frame size 1618 > device max frame size 1522"): the
    TAP's MTU is its own now. A net_tap data port asked for more than it can do gets an error
    that names the port and the limit."""
    text = GOOD.replace('{name: b, device: "net_tap_b,iface=tlcb0", addresses: [10.2.0.1/24]}',
                        '{name: b, device: "net_ring0", addresses: [10.2.0.1/24], mtu: 1600}')
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "gw.yaml")
        with open(path, "w") as f:
            f.write(text.replace("/tmp/tlc-bad.sock", d + "/ctl.sock"))
        ns = "tlc-mtu"
        subprocess.run(["ip", "netns", "add", ns], check=True)
        p = subprocess.Popen(["ip", "netns", "exec", ns, ESPGW, "--config", path],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            topo.wait_for(lambda: os.path.exists(d + "/ctl.sock") or p.poll() is not None, 60,
                          "espgw up")
            assert p.poll() is None, p.stdout.read()
            ports = {x["name"]: x for x in ctl(d + "/ctl.sock", "show", "ports")}
            assert ports["b"]["mtu"] == 1600, ports
            x = [v for k, v in ports.items() if k.startswith("exception")][0]
            assert 1500 <= x["mtu"] < 1600, ports
        finally:
            p.send_signal(signal.SIGTERM)
            p.communicate(timeout=30)
            subprocess.run(["ip", "netns", "del", ns])
    rc, out, _, _ = run_espgw_in_fresh_ns(GOOD.replace(
        "addresses: [10.2.0.1/24]}", "addresses: [10.2.0.1/24], mtu: 4000}"), name="tlc-mtu2")
    assert rc == 1, out
    assert "port b" in out and "mtu 4000 is above the largest net_tap supports" in out, out


# ---- start-up order -----------------------------------------------------------------------------

def test_no_packet_is_forwarded_before_the_config_is_installed():
    """A pcap port's whole capture is there to be received from the first poll. Workers used to
    forward before the static routes were in place: those packets were dropped as no_route and
    answered with ICMP net unreachable. Now workers receive only once the configuration is
    installed, so every one of them meets the configured route (here a blackhole, so the count
    is exact)."""
    from scapy.all import Ether, IP, UDP, wrpcap
    n = 504
    with tempfile.TemporaryDirectory() as d:
        gw_mac = "02:70:63:61:70:00"  # DPDK's net_pcap: 02:70:63:61:70:<index of the pcap vdev>
        wrpcap(d + "/in.pcap", [Ether(src="02:00:00:00:00:0a", dst=gw_mac) /
                                IP(src="10.1.0.10", dst="10.9.%d.%d" % (i // 200, i % 200 + 1)) /
                                UDP(sport=1000 + i, dport=9) for i in range(n)])
        text = GOOD.replace('"net_tap_a,iface=tlca0"',
                            '"net_pcap0,rx_pcap=%s/in.pcap,tx_pcap=%s/a0.pcap,tx_pcap=%s/a1.pcap"'
                            % (d, d, d))  # 1 rx queue, 2 tx (worker + control)
        text = text.replace("/tmp/tlc-bad.sock", d + "/ctl.sock")
        text += "  routes: [{prefix: 10.9.0.0/16, blackhole: true}]\n"
        with open(d + "/gw.yaml", "w") as f:
            f.write(text)
        ns = "tlc-order"
        subprocess.run(["ip", "netns", "add", ns], check=True)
        p = subprocess.Popen(["ip", "netns", "exec", ns, ESPGW, "--config", d + "/gw.yaml"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            topo.wait_for(lambda: os.path.exists(d + "/ctl.sock") or p.poll() is not None, 60,
                          "espgw up")
            assert p.poll() is None, p.stdout.read()
            ports = ctl(d + "/ctl.sock", "show", "ports")
            assert [x["mac"] for x in ports if x["name"] == "a"] == [gw_mac], ports

            def counters():
                return ctl(d + "/ctl.sock", "show", "counters")
            topo.wait_for(lambda: counters()["drops"].get("blackhole", 0) +
                          counters()["drops"].get("no_route", 0) >= n, 20, "all packets seen")
            c = counters()
            assert c["drops"].get("no_route", 0) == 0, c["drops"]
            assert c["drops"].get("blackhole", 0) == n, c["drops"]
        finally:
            p.send_signal(signal.SIGTERM)
            p.communicate(timeout=30)
            subprocess.run(["ip", "netns", "del", ns])
