#!/bin/sh
# One command for the Mpps sweep: release build of the harness, then every workload / size /
# algorithm / scale point (a few minutes on a 2-core VM), per-run JSON, a Markdown table, a PNG
# plot and the generated part of perf/RESULTS.md.
#
#   scripts/perf.sh [--quick] [--no-results] [--only NAME] [-- EAL args for every run]
#
# Environment: BUILD_DIR (default /tmp/build-perf), OUT_DIR (default /tmp/espgw-perf-results),
# JOBS (default 2). Timings are reported, never pass/fail.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-/tmp/build-perf}
if [ ! -f "$build/build.ninja" ]; then
  # -Wno-restrict: g++ 12 at -O3 raises a false -Wrestrict inside libstdc++'s std::string code
  # (GCC bug 105329), which -Werror turns into a build failure of the release build.
  meson setup "$build" "$here" --buildtype=release -Dtests=false -Dcpp_args=-Wno-restrict
fi
ninja -C "$build" -j "${JOBS:-2}" perf/mpps/mpps
exec /usr/bin/python3 "$here/perf/mpps/sweep.py" --mpps "$build/perf/mpps/mpps" \
  --out "${OUT_DIR:-/tmp/espgw-perf-results}" "$@"
