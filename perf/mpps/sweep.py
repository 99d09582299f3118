#!/usr/bin/python3
"""Runs the Mpps harness over every workload, size, algorithm and scale point, writes one JSON
file per run, a Markdown table and a PNG plot, and refreshes the generated part of
perf/RESULTS.md (between the BEGIN/END GENERATED markers; the hand-written analysis around it is
kept).

    perf/mpps/sweep.py --mpps BUILD/perf/mpps/mpps [--out DIR] [--quick] [--no-results]
                       [-- EAL args passed to every run, e.g. -l 0-2 ...]

Timings are reported, never judged: nothing here fails because a number is low.
"""
import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RESULTS_MD = os.path.join(REPO, "perf", "RESULTS.md")
PLOT = os.path.join(HERE, "results.png")
SUMMARY = os.path.join(HERE, "results.json")

ALGOS = ["aes128gcm16", "aes256gcm16", "aes256-sha256", "chacha20poly1305"]
ALGO_LABEL = {"aes128gcm16": "AES-GCM-128", "aes256gcm16": "AES-GCM-256",
              "aes256-sha256": "AES-CBC-256+HMAC-SHA-256", "chacha20poly1305": "ChaCha20-Poly1305",
              "none": "-"}
SIZES = ["64", "512", "1420", "imix"]
SCALE_ALGO = "aes128gcm16"
SCALE_SIZE = "64"


def runs(quick):
    """(name, args) for every harness process; each process covers a list of sizes."""
    t = ["--seconds", "0.4" if quick else "0.8", "--warmup", "0.2", "--ceiling-seconds", "0.2"]
    sizes = ["--sizes", ",".join(SIZES)]
    out = [("forward", ["--workload", "forward"] + sizes + t)]
    for wl in ("encrypt", "decrypt"):
        for a in ALGOS:
            out.append((f"{wl}-{a}", ["--workload", wl, "--algo", a] + sizes + t))
    one = ["--sizes", SCALE_SIZE, "--algo", SCALE_ALGO] + t
    for n in (1000, 100000):  # SA / tunnel sweep (1 is in the main matrix)
        for wl in ("encrypt", "decrypt"):
            out.append((f"{wl}-sas{n}", ["--workload", wl, "--tunnels", str(n)] + one))
    for n in (100000, 1000000):  # FIB sweep (10 is in the main matrix)
        for wl in ("forward", "encrypt"):
            out.append((f"{wl}-routes{n}", ["--workload", wl, "--routes", str(n)] + one))
    return out


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return ""


def machine():
    cpu = {}
    for line in sh("lscpu").splitlines():
        k, _, v = line.partition(":")
        cpu[k.strip()] = v.strip()
    flags = set(cpu.get("Flags", "").split())
    want = ["aes", "vaes", "pclmulqdq", "vpclmulqdq", "sha_ni", "avx2", "avx512f", "avx512bw",
            "avx512vl", "gfni", "cldemote", "constant_tsc", "nonstop_tsc"]
    imb = ""
    try:
        with open("/usr/include/intel-ipsec-mb.h") as f:
            m = re.search(r'#define IMB_VERSION_STR "([^"]+)"', f.read())
            imb = m.group(1) if m else ""
    except OSError:
        pass
    return {
        "cpu_model": cpu.get("Model name", platform.processor()),
        "cpus": cpu.get("CPU(s)", ""),
        "threads_per_core": cpu.get("Thread(s) per core", ""),
        "hypervisor": cpu.get("Hypervisor vendor", "none"),
        "l2": cpu.get("L2 cache", ""), "l3": cpu.get("L3 cache", ""),
        "flags": [f for f in want if f in flags],
        "kernel": platform.release(),
        "dpdk": sh("pkg-config --modversion libdpdk"),
        "ipsec_mb": imb,
        "compiler": sh("c++ --version | head -1"),
        "loadavg": open("/proc/loadavg").read().split()[:3],
    }


def fmt(v, nd=2):
    return "-" if v is None else f"{v:.{nd}f}"


def row(r):
    return {
        "workload": r["workload"], "algo": ALGO_LABEL.get(r["algo"], r["algo"]), "size": r["size"],
        "tunnels": r["tunnels"], "routes": r["routes"],
        "mpps": r["worker_mpps"], "gbps": r["worker_gbps"], "cyc": r["worker_cycles_per_pkt"],
        "ceil": r.get("ceiling_mpps"), "ratio": r.get("ratio"), "deliv": r["delivered_mpps"],
        "oncpu": r["worker_on_cpu_fraction"], "bad": r["received_bad"], "drops": r["gateway_drops"],
        "lost": r["lost"],
    }


def table(results):
    hdr = ("| workload | algorithm | size | worker Mpps | worker Gbps | cycles/pkt | ceiling Mpps "
           "| espgw/ceiling | delivered Mpps | worker on-CPU | bad / drops / lost |\n"
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
    lines = []
    for r in results:
        if r["tunnels"] > 1 or r["routes"] > 10:
            continue
        x = row(r)
        lines.append(f"| {x['workload']} | {x['algo']} | {x['size']} | {fmt(x['mpps'])} | {fmt(x['gbps'])} "
                     f"| {fmt(x['cyc'], 0)} | {fmt(x['ceil'])} | {fmt(x['ratio'])} | {fmt(x['deliv'])} "
                     f"| {fmt(x['oncpu'])} | {x['bad']} / {x['drops']} / {x['lost']} |")
    return hdr + "\n".join(lines) + "\n"


def scale_table(results):
    base = {}
    for r in results:
        if r["size"] == SCALE_SIZE and r["algo"] in (SCALE_ALGO, "none") and r["tunnels"] <= 1 \
                and r["routes"] == 10:
            base[r["workload"]] = r["worker_cycles_per_pkt"]
    hdr = ("| workload | tunnels (SAs in+out) | FIB routes | worker Mpps | cycles/pkt | vs baseline "
           "| delivered Mpps | bad / drops / lost |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
    lines = []
    for r in results:
        if r["size"] != SCALE_SIZE or r["algo"] not in (SCALE_ALGO, "none"):
            continue
        x = row(r)
        b = base.get(r["workload"])
        rel = f"{x['cyc'] / b:.2f}x" if b else "-"
        tun = f"{r['tunnels']:,}" + (f" ({r['tunnels_with_traffic']:,} with traffic)"
                                     if r["tunnels_with_traffic"] != r["tunnels"] else "")
        lines.append(f"| {x['workload']} | {tun} | {r['fib_routes_total']:,} | {fmt(x['mpps'])} "
                     f"| {fmt(x['cyc'], 0)} | {rel} | {fmt(x['deliv'])} "
                     f"| {x['bad']} / {x['drops']} / {x['lost']} |")
    return hdr + "\n".join(lines) + "\n"


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    base = [r for r in results if r["tunnels"] <= 1 and r["routes"] == 10]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=80)
    xs = list(range(len(SIZES)))
    series = [("forward", "none")] + [(wl, a) for wl in ("encrypt", "decrypt") for a in ALGOS]
    for wl, a in series:
        pts = {r["size"]: r for r in base if r["workload"] == wl and r["algo"] == a}
        if not pts:
            continue
        ys = [pts[s]["worker_mpps"] if s in pts else None for s in SIZES]
        style = "-" if wl == "encrypt" else "--" if wl == "decrypt" else ":"
        label = "forward" if wl == "forward" else f"{wl[:3]} {ALGO_LABEL[a]}"
        line, = ax1.plot(xs, ys, style, marker="o", label=label)
        if wl != "forward":
            rs = [pts[s]["ratio"] if s in pts else None for s in SIZES]
            ax2.plot(xs, rs, style, marker="o", color=line.get_color(), label=label)
    ax1.set_title("espgw worker Mpps per core (busy time)")
    ax1.set_ylabel("Mpps")
    ax2.set_title("espgw / raw IPsec-MB ceiling, same core")
    ax2.set_ylabel("ratio")
    ax2.axhline(0.85, color="grey", lw=0.8, ls=":")
    ax2.axhline(0.6, color="grey", lw=0.8, ls=":")
    for ax in (ax1, ax2):
        ax.set_xticks(xs)
        ax.set_xticklabels([s + (" B" if s != "imix" else "") for s in SIZES])
        ax.set_xlabel("frame size")
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def update_results_md(block):
    begin, end = "<!-- BEGIN GENERATED -->", "<!-- END GENERATED -->"
    text = open(RESULTS_MD).read() if os.path.exists(RESULTS_MD) else f"# Performance results\n\n{begin}\n{end}\n"
    if begin not in text:
        text += f"\n{begin}\n{end}\n"
    pre, _, rest = text.partition(begin)
    _, _, post = rest.partition(end)
    with open(RESULTS_MD, "w") as f:
        f.write(pre + begin + "\n" + block + end + post)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mpps", required=True, help="path to the mpps binary")
    ap.add_argument("--out", default="/tmp/espgw-perf-results", help="directory for per-run JSON")
    ap.add_argument("--quick", action="store_true", help="shorter measurement windows")
    ap.add_argument("--no-results", action="store_true", help="do not touch perf/RESULTS.md")
    ap.add_argument("--only", default="", help="run only the runs whose name contains this")
    ap.add_argument("--buildtype", default="release")
    args, eal = ap.parse_known_args()
    if eal and eal[0] == "--":
        eal = eal[1:]
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    outdir = os.path.join(args.out, stamp)
    os.makedirs(outdir, exist_ok=True)
    mach = machine()
    t0 = time.time()
    results = []
    for name, a in runs(args.quick):
        if args.only and args.only not in name:
            continue
        cmd = [args.mpps] + a + (["--"] + eal if eal else [])
        print(f"[{time.time() - t0:6.1f}s] {name}: {' '.join(cmd[1:])}", flush=True)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        got = 0
        for line in p.stdout.splitlines():
            if not line.startswith("RESULT "):
                continue
            r = json.loads(line[7:])
            r["run"] = name
            results.append(r)
            got += 1
            fn = f"{r['workload']}-{r['algo']}-{r['size']}-t{r['tunnels']}-r{r['routes']}.json"
            with open(os.path.join(outdir, fn), "w") as f:
                json.dump(r, f, indent=1)
            print(f"    {r['size']:>5}: worker {r['worker_mpps']:.2f} Mpps"
                  + (f", ceiling {r['ceiling_mpps']:.2f}, ratio {r['ratio']:.2f}" if r.get("ratio") is not None else "")
                  + f", delivered {r['delivered_mpps']:.2f}, bad {r['received_bad']}, drops {r['gateway_drops']}",
                  flush=True)
        if p.returncode != 0 or not got:
            print(f"    FAILED (rc {p.returncode}):\n{p.stderr[-2000:]}", flush=True)
    mach["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    elapsed = time.time() - t0
    md = table(results)
    smd = scale_table(results)
    with open(os.path.join(outdir, "table.md"), "w") as f:
        f.write(md + "\n" + smd)
    with open(os.path.join(outdir, "machine.json"), "w") as f:
        json.dump(mach, f, indent=1)
    png = os.path.join(outdir, "results.png")
    try:
        plot(results, png)
    except Exception as e:  # matplotlib missing: the table is still written
        print(f"plot failed: {e}")
        png = None
    print(md + "\n" + smd)
    print(f"sweep took {elapsed:.0f} s; per-run JSON, table.md and results.png in {outdir}")
    if args.no_results or args.only:
        return 0
    if png:
        import shutil
        shutil.copy(png, PLOT)
    with open(SUMMARY, "w") as f:
        json.dump({"machine": mach, "results": results}, f, indent=0)
    block = (
        f"Latest sweep: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}, {len(results)} runs in "
        f"{elapsed:.0f} s, `{args.buildtype}` build, ring ports, 1 worker lcore.\n\n"
        f"**Machine:** {mach['cpu_model']}, {mach['cpus']} vCPUs ({mach['threads_per_core']} thread/core), "
        f"hypervisor {mach['hypervisor']}, L2 {mach['l2']}, L3 {mach['l3']}; "
        f"flags: {' '.join(mach['flags'])}; kernel {mach['kernel']}; DPDK {mach['dpdk']}; "
        f"Intel IPsec-MB {mach['ipsec_mb']}; {mach['compiler']}. Load average at start / end: "
        f"{' '.join(mach['loadavg'])} / {' '.join(mach['loadavg_end'])} (shared machine).\n\n"
        "### Per-core throughput vs the raw IPsec-MB ceiling (1 tunnel, 10 routes)\n\n"
        + md + "\n"
        f"### Scale: tunnels/SAs and FIB routes ({ALGO_LABEL[SCALE_ALGO]}, {SCALE_SIZE} B)\n\n"
        + smd + "\n![Mpps and ratio by size](mpps/results.png)\n\n"
        "Per-run JSON: `perf/mpps/results.json` (all runs of this sweep, with drops/events per run).\n")
    update_results_md(block)
    print(f"updated {RESULTS_MD} and {PLOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
