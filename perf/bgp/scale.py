#!/usr/bin/python3
"""BGP scale benchmark: GoBGP announces N (default 1,000,000) IPv4 prefixes to the REAL espgw
daemon (kernel TCP over the exception path, the BGP speaker, RouteTable, the double-buffered
DPDK DIR24_8 FIB); reports the time until all of them are in the FIB and the memory used.

A benchmark, not a pass/fail test. Topology (namespaces "<prefix>-a", "<prefix>-b",
"<prefix>-gw", created and deleted here; default prefix "bs1"):

    [a: gobgpd AS65050 10.1.0.10] -- espgw AS65010 (BGP peering 10.12.255.4) -- [b: host]

The prefixes are N distinct /24s from 16.0.0.0 upwards (16.0.0.0/24 .. 31.255.255.0/24 for 1M),
all with one attribute set (ORIGIN IGP, AS_PATH 65100, NEXT_HOP 10.1.0.10), written as an MRT
TABLE_DUMP_V2 file (RFC 6396) and loaded with `gobgp mrt inject global`.

Modes (--mode):
  before  inject into GoBGP while its neighbor is admin-down, then `gobgp neighbor X enable`;
          t0 = the session is Established (espgw's `show bgp peers`). Measures espgw alone (GoBGP already holds the table). Default.
  after   bring the session up first (empty table), then inject; t0 = start of the injection.
          Measures GoBGP ingest + GoBGP->espgw streaming + espgw together.

Done = espgw's `show status` routes count >= N + the routes it had before t0 (its connected,
local and peering routes), and `show bgp peers` prefixes_received >= N. Then one packet proves
the data plane: host b pings an address inside the LAST prefix (on a's loopback).

Prints one JSON line and updates the section for the mode in perf/bgp/RESULTS.md
(--no-results to skip). Run as root from the repo:
    ESPGW_BUILD=/tmp/bd python3 perf/bgp/scale.py [--mode before|after] [--prefixes N] [--perf]
"""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import topo  # noqa: E402

GOBGPD, GOBGP = "/usr/bin/gobgpd", "/usr/bin/gobgp"
PEERING = "10.12.255.4"
DAEMON_IP = "10.1.0.10"
ONPREM_AS, GW_AS, ORIGIN_AS = 65050, 65010, 65100
FIRST_PREFIX = 16 << 24  # 16.0.0.0
PAD = 4096


# ---- MRT TABLE_DUMP_V2 (RFC 6396) --------------------------------------------------------------

def mrt_record(subtype, body, ts):
    return struct.pack("!IHHI", ts, 13, subtype, len(body)) + body


def write_mrt(path, n, nexthop=DAEMON_IP, origin_as=ORIGIN_AS, pad=PAD):
    """N /24s from 16.0.0.0, one peer, one attribute set; then `pad` records repeating the first
    prefixes (same attributes: no change): GoBGP 3.10's `mrt inject` drops the last few hundred
    records of a file (seen: 440 of 1000, 533 of 20000), so the padding is what gets lost."""
    ts = int(time.time())
    nh = socket.inet_aton(nexthop)
    # PEER_INDEX_TABLE: collector id, empty view name, 1 peer (type 0x02: IPv4 address, AS4)
    pit = nh + struct.pack("!HH", 0, 1) + struct.pack("!B", 0x02) + nh + nh + \
        struct.pack("!I", ONPREM_AS)
    # attributes: ORIGIN IGP; AS_PATH (4-byte ASNs in TABLE_DUMP_V2) AS_SEQUENCE [origin_as];
    # NEXT_HOP
    attrs = struct.pack("!BBBB", 0x40, 1, 1, 0) + \
        struct.pack("!BBBBBI", 0x40, 2, 6, 2, 1, origin_as) + \
        struct.pack("!BBB", 0x40, 3, 4) + nh
    entry = struct.pack("!HIH", 0, ts, len(attrs)) + attrs
    hdr = struct.Struct("!IHHI")
    body_len = 4 + 1 + 3 + 2 + len(entry)
    tail = struct.pack("!H", 1) + entry
    with open(path, "wb", buffering=1 << 22) as f:
        f.write(mrt_record(1, pit, ts))
        chunk = []
        for j in range(n + pad):
            i = j if j < n else (j - n) % n
            a = FIRST_PREFIX + (i << 8)
            chunk.append(hdr.pack(ts, 13, 2, body_len) + struct.pack("!IB", i, 24) +
                         struct.pack("!I", a)[:3] + tail)
            if len(chunk) == 65536:
                f.write(b"".join(chunk))
                chunk = []
        f.write(b"".join(chunk))


def prefix_str(i):
    return "%s/24" % socket.inet_ntoa(struct.pack("!I", FIRST_PREFIX + (i << 8)))


# ---- process and memory helpers ----------------------------------------------------------------

def proc_status(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "VmSize"):
                    out[k] = int(v.split()[0]) // 1024  # MiB
    except OSError:
        pass
    return out


def thread_cpu(pid):
    """{thread name: CPU seconds (utime+stime)} summed per name."""
    hz = os.sysconf("SC_CLK_TCK")
    res = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return res
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                s = f.read()
        except OSError:
            continue
        name = s[s.index("(") + 1:s.rindex(")")]
        fields = s[s.rindex(")") + 2:].split()
        res[name] = res.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / hz
    return res


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class GoBgpd:
    def __init__(self, ns, state, admin_down):
        self.ns, self.dir, self.admin_down = ns, os.path.join(state, "gobgp"), admin_down
        self.proc = None

    def start(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        conf = """
[global.config]
  as = {asn}
  router-id = "{local}"
  local-address-list = ["{local}"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{peer}"
    peer-as = {peer_as}
    admin-down = {down}
  [neighbors.transport.config]
    local-address = "{local}"
  [neighbors.ebgp-multihop.config]
    enabled = true
    multihop-ttl = 2
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 90
    keepalive-interval = 30
    idle-hold-time-after-reset = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
""".format(asn=ONPREM_AS, local=DAEMON_IP, peer=PEERING, peer_as=GW_AS,
           down="true" if self.admin_down else "false")
        path = os.path.join(self.dir, "gobgpd.toml")
        with open(path, "w") as f:
            f.write(conf)
        log = open(os.path.join(self.dir, "gobgpd.out"), "w")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, GOBGPD, "-f", path, "-t",
                                      "toml", "--api-hosts", "127.0.0.1:50051", "--pprof-disable",
                                      "-p", "-l", "warn"],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        topo.wait_for(lambda: self.cli("global", check=False).returncode == 0, 15, "gobgpd API",
                      0.2)

    def cli(self, *args, check=True, timeout=60):
        r = subprocess.run(["ip", "netns", "exec", self.ns, GOBGP] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError("gobgp %s: %s %s" % (" ".join(map(str, args)), r.stdout, r.stderr))
        return r

    def stop(self):
        p = self.proc
        if not p or p.poll() is not None:
            return
        try:
            if os.readlink("/proc/%d/exe" % p.pid) != GOBGPD:
                return
        except OSError:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


# ---- the benchmark ------------------------------------------------------------------------------

def gw_config(prefix, n):
    cfg = topo.basic_config(prefix)
    g = cfg["gateway"]
    g["asn"] = GW_AS
    g["address_spaces"] = ["10.2.0.0/16"]
    g["instances"][0]["bgp_peering_address"] = PEERING
    cfg["local_network_gateways"] = [
        {"name": "onprem", "gateway_ip": "192.0.2.50", "asn": ONPREM_AS,
         "bgp_peering_address": DAEMON_IP, "address_prefixes": [DAEMON_IP + "/32"]}]
    cfg["connections"] = [
        {"name": "to-onprem", "peer": "onprem", "shared_key_file": "keys/psk.txt",
         "enable_bgp": True, "connection_mode": "responder_only"}]
    cfg["_files"] = {"keys/psk.txt": "not-used-by-static-tunnels-0123456789\n"}
    dp = cfg["instance"].setdefault("dataplane", {})
    dp["max_routes_v4"] = max(1100000, int(n * 1.1))
    dp["memory_mb"] = 2048
    dp["mbufs"] = 8192
    return cfg


def peer(gw):
    ps = gw.ctl("show", "bgp", "peers")
    return ps[0] if ps else {}


def perf_profile(pid, seconds, outdir):
    """perf record of espgw's threads during the load; returns the top symbols per thread."""
    data = os.path.join(outdir, "perf.data")
    r = subprocess.run(["perf", "record", "-F", "499", "-g", "-o", data, "-p", str(pid), "--",
                        "sleep", str(seconds)], capture_output=True, text=True,
                       timeout=seconds + 60)
    if r.returncode != 0:
        return {"error": r.stderr[-400:]}
    rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort",
                          "comm,dso,symbol", "--stdio", "-g", "none", "--percent-limit", "1"],
                         capture_output=True, text=True, timeout=120)
    lines = [l for l in rep.stdout.splitlines() if l.strip() and not l.startswith("#")]
    with open(os.path.join(outdir, "perf-report.txt"), "w") as f:
        f.write(rep.stdout)
    return {"top": lines[:25]}


def run(args):
    n = args.prefixes
    t = topo.Topology(args.topo_prefix)
    g = None
    res = {"benchmark": "bgp-scale", "mode": args.mode, "prefixes": n,
           "date": datetime.datetime.now().isoformat(timespec="seconds"),
           "load_before": loadavg(), "nproc": os.cpu_count()}
    state = t.state
    os.makedirs(state, exist_ok=True)
    mrt = os.path.join(state, "table.mrt")
    t_gen = time.time()
    write_mrt(mrt, n)
    res["mrt_bytes"] = os.path.getsize(mrt)
    res["mrt_gen_s"] = round(time.time() - t_gen, 2)
    try:
        t.add_ns("a")
        t.add_ns("b")
        gw = t.start_gateway("gw", gw_config(t.prefix, n))
        for side in ("a", "b"):
            s = topo.BASIC[side]
            t.attach(gw, "%s%s0" % (t.prefix, side), side, addrs=[s["host4"], s["host6"]],
                     routes=[("default", s["gw4"].split("/")[0]),
                             ("default", s["gw6"].split("/")[0])])
        nsa, nsb = t.ns_name("a"), t.ns_name("b")
        probe = socket.inet_ntoa(struct.pack("!I", FIRST_PREFIX + ((n - 1) << 8) + 1))
        subprocess.run(["ip", "-n", nsa, "addr", "add", probe + "/32", "dev", "lo"], check=True)
        g = GoBgpd(nsa, state, admin_down=(args.mode == "before"))
        g.start()

        def established():
            return peer(gw).get("state") == "Established"

        if args.mode == "before":
            t_inj = time.time()
            g.cli("mrt", "inject", "global", mrt, timeout=900)
            res["gobgp_inject_s"] = round(time.time() - t_inj, 2)
            # the CLI returns when it has sent the paths; wait until GoBGP's RIB holds them
            topo.wait_for(lambda: re.search(r"Destination: %d\b" % n, g.cli(
                "global", "rib", "summary", "-a", "ipv4").stdout), 300, "GoBGP RIB holds all paths",
                0.5)
            res["gobgp_rib_s"] = round(time.time() - t_inj, 2)
        time.sleep(1)
        st0 = gw.ctl("show", "status")
        base_routes, gen0 = st0["routes"], st0["fib_generation"]
        mem0 = proc_status(gw.pid)
        cpu0 = thread_cpu(gw.pid)
        res["gobgpd_mem_mib_loaded"] = proc_status(g.proc.pid)
        if args.mode == "before":
            t_en = time.time()
            g.cli("neighbor", PEERING, "enable")
            topo.wait_for(established, 60, "session Established", 0.02)
            t0 = time.time()
            res["established_s"] = round(t0 - t_en, 3)
        else:
            g.cli("neighbor", PEERING, "enable", check=False)
            topo.wait_for(established, 60, "session Established", 0.1)
            time.sleep(1)
            st0 = gw.ctl("show", "status")
            base_routes, gen0 = st0["routes"], st0["fib_generation"]
            t0 = time.time()
            inj = subprocess.Popen(["ip", "netns", "exec", nsa, GOBGP, "mrt", "inject", "global",
                                    mrt], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        res["espgw_routes_before"] = base_routes
        gcpu0 = sum(thread_cpu(g.proc.pid).values())
        prof = None
        if args.perf:
            prof = subprocess.Popen([sys.executable, "-c",
                                     "import sys, json; sys.path.insert(0, %r); import scale; "
                                     "print(json.dumps(scale.perf_profile(%d, %d, %r)))"
                                     % (HERE, gw.pid, args.perf_seconds, state)],
                                    stdout=subprocess.PIPE, text=True)
        samples = []  # (t, routes, fib_generation, rss MiB)
        peak_rss = 0
        deadline = t0 + args.timeout
        first_route = None
        ctl_fail, ctl_max = 0, 0.0
        while True:
            c0 = time.time()
            try:
                st = gw.ctl("show", "status")
            except RuntimeError:  # espgwctl gives up after 10 s without a reply
                st = None
            ctl_max = max(ctl_max, time.time() - c0)
            if st is None:
                ctl_fail += 1
                if time.time() > deadline:
                    raise TimeoutError("espgw control socket not answering")
                continue
            now = time.time() - t0
            rss = proc_status(gw.pid).get("VmRSS", 0)
            peak_rss = max(peak_rss, rss)
            got = st["routes"] - base_routes
            samples.append((round(now, 2), got, st["fib_generation"] - gen0, rss))
            if got > 0 and first_route is None:
                first_route = now
            if got >= n:
                break
            if time.time() > deadline:
                raise TimeoutError("only %d of %d routes after %ds" % (got, n, args.timeout))
            time.sleep(args.poll)
        t_done = time.time() - t0
        if args.mode == "after":
            inj.wait(600)
            res["gobgp_inject_s"] = None
        p = peer(gw)
        st = gw.ctl("show", "status")
        cpu1 = thread_cpu(gw.pid)
        mem1 = proc_status(gw.pid)
        summary = gw.ctl("show", "bgp", "summary")
        sent, got_pings, out = ping(nsb, probe)
        res.update({
            "time_to_fib_s": round(t_done, 2),
            "first_route_s": round(first_route or 0, 2),
            "rate_prefixes_per_s": int(n / t_done),
            "ctl_status_max_latency_s": round(ctl_max, 2),
            "ctl_status_timeouts": ctl_fail,
            "rate_after_first_route": int(n / max(t_done - (first_route or 0), 1e-3)),
            "prefixes_received": p.get("prefixes_received"),
            "espgw_routes_after": st["routes"],
            "fib_batches": st["fib_generation"] - gen0,
            "avg_prefixes_per_batch": int(n / max(st["fib_generation"] - gen0, 1)),
            "bgp_summary": summary,
            "espgw_mem_mib_before": mem0,
            "espgw_mem_mib_after": mem1,
            "espgw_rss_delta_mib": mem1.get("VmRSS", 0) - mem0.get("VmRSS", 0),
            "gobgpd_mem_mib_after": proc_status(g.proc.pid),
            "espgw_thread_cpu_s": {k: round(cpu1.get(k, 0) - cpu0.get(k, 0), 2)
                                   for k in cpu1 if cpu1.get(k, 0) - cpu0.get(k, 0) >= 0.01},
            "gobgpd_cpu_s": round(sum(thread_cpu(g.proc.pid).values()) - gcpu0, 2),
            "probe_ping_last_prefix": "%d/%d" % (got_pings, sent),
            "load_after": loadavg(),
            "progress": samples[::max(1, len(samples) // 20)] + [samples[-1]],
        })
        if prof:
            res["perf_seconds"] = args.perf_seconds
            out, _ = prof.communicate(timeout=args.perf_seconds + 200)
            try:
                res["perf"] = json.loads(out)
            except ValueError:
                res["perf"] = {"error": out[-400:]}
        return res
    finally:
        if g:
            g.stop()
        t.down()


def ping(ns, dst, count=3):
    r = subprocess.run(["ip", "netns", "exec", ns, "ping", "-n", "-c", str(count), "-i", "0.2",
                        "-W", "2", dst], capture_output=True, text=True, timeout=30)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
    return (int(m.group(1)), int(m.group(2)), r.stdout) if m else (count, 0, r.stdout)


# ---- RESULTS.md ---------------------------------------------------------------------------------

def update_results(res, path):
    mark_b, mark_e = "<!-- scale:%s:begin -->" % res["mode"], "<!-- scale:%s:end -->" % res["mode"]
    m0, m1 = res["espgw_mem_mib_before"], res["espgw_mem_mib_after"]
    gm0, gm1 = res.get("gobgpd_mem_mib_loaded", {}), res["gobgpd_mem_mib_after"]
    cpu = ", ".join("%s %.2f s" % kv for kv in sorted(res["espgw_thread_cpu_s"].items(),
                                                      key=lambda kv: -kv[1]))
    t0 = {"before": "session Established as seen by espgw (`show bgp peers`, polled every 20 ms; "
                    "GoBGP already holds the table and starts sending at Established)",
          "after": "start of `gobgp mrt inject` (session already Established)"}[res["mode"]]
    lines = [
        mark_b,
        "### mode `%s`: %d prefixes, %s" % (res["mode"], res["prefixes"], res["date"]),
        "",
        "t0 = %s. Load average %s before, %s after (%d vCPU)."
        % (t0, res["load_before"], res["load_after"], res["nproc"]),
        "",
        "| metric | value |",
        "|---|---|",
        "| **time until all %d prefixes are in the espgw FIB** | **%.2f s** |"
        % (res["prefixes"], res["time_to_fib_s"]),
        "| rate (t0 .. done) | %d prefixes/s |" % res["rate_prefixes_per_s"],
        "| first BGP route in the RouteTable | %.2f s after t0 |" % res["first_route_s"],
    ]
    if "established_s" in res:
        lines.append("| `gobgp neighbor enable` -> Established (connect retry timers, not in the "
                     "time) | %.2f s |" % res["established_s"])
    if res.get("gobgp_inject_s"):
        lines.append("| GoBGP `mrt inject` of the table (before t0, not in the time) | %.1f s "
                     "(RIB full after %.1f s) |" % (res["gobgp_inject_s"], res["gobgp_rib_s"]))
    lines += [
        "| slowest `espgwctl show status` during the load (10 s client timeout) | %.2f s "
        "(%d timed out) |" % (res["ctl_status_max_latency_s"], res["ctl_status_timeouts"]),
        "| FIB batches (fib_generation delta) | %d (avg %d prefixes/batch) |"
        % (res["fib_batches"], res["avg_prefixes_per_batch"]),
        "| espgw routes before / after | %d / %d |" % (res["espgw_routes_before"],
                                                     res["espgw_routes_after"]),
        "| espgw VmRSS before / after (MiB) | %s / %s (+%d) |"
        % (m0.get("VmRSS"), m1.get("VmRSS"), res["espgw_rss_delta_mib"]),
        "| espgw VmHWM after (MiB) | %s |" % m1.get("VmHWM"),
        "| gobgpd VmRSS with the table loaded / after (MiB) | %s / %s (VmHWM %s) |"
        % (gm0.get("VmRSS"), gm1.get("VmRSS"), gm1.get("VmHWM")),
        "| espgw CPU by thread during the load | %s |" % cpu,
        "| gobgpd CPU during the load | %.2f s |" % res["gobgpd_cpu_s"],
        "| data-plane probe: ping from host b to .1 of the last prefix | %s replies |"
        % res["probe_ping_last_prefix"],
        "",
        "Progress (seconds after t0, BGP routes in the RouteTable, FIB batches, espgw RSS MiB): "
        + ", ".join("(%s, %d, %d, %d)" % tuple(s) for s in res["progress"]),
    ]
    if res.get("perf", {}).get("top"):
        lines += ["", "`perf record -F 499 -p <espgw>` for %s s from t0, self time (comm, dso, "
                  "symbol):" % res["perf_seconds"], "", "```"] + \
            [" ".join(l.split()[:4]) + " " + " ".join(l.split()[4:]).rstrip(" -")
             for l in res["perf"]["top"][:20]] + ["```"]
    lines.append(mark_e)
    section = "\n".join(lines)
    text = open(path).read() if os.path.exists(path) else ""
    if mark_b in text and mark_e in text:
        a, rest = text.split(mark_b, 1)
        _, b = rest.split(mark_e, 1)
        text = a + section + b
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=("before", "after"), default="before")
    ap.add_argument("--prefixes", type=int, default=1000000)
    ap.add_argument("--topo-prefix", default="bs1")
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--poll", type=float, default=0.25)
    ap.add_argument("--perf", action="store_true", help="perf record espgw during the load")
    ap.add_argument("--perf-seconds", type=int, default=5)
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--no-results", action="store_true")
    args = ap.parse_args()

    def on_term(sig, frame):
        raise KeyboardInterrupt("signal %d" % sig)
    signal.signal(signal.SIGTERM, on_term)  # tear the namespaces down (run's finally)
    res = run(args)
    print(json.dumps(res), flush=True)
    if not args.no_results:
        update_results(res, args.results)


if __name__ == "__main__":
    main()
