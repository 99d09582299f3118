"""Process lifecycle: bad configs start nothing, clean stop on SIGTERM, several instances side
by side on one machine."""
import os
import signal
import subprocess
import tempfile

import topo
from conftest import ping

ESPGW = os.path.join(topo.build_dir(), "dataplane/espgw")


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
  dataplane: {hugepages: false, memory_mb: 512, idle_sleep_us: 100}
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
