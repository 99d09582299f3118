#!/usr/bin/env bash
# Runs the whole test suite: installs and builds first (scripts/setup.sh), then the unit tests
# (suite fast) and the network-namespace tests against real kernel peers (suite netns, root).
# Ends with one summary line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
BUILD=${ESPGW_BUILD:-build}

rc=0
rm -f "$BUILD"/meson-logs/testlog-*.json
meson test -C "$BUILD" --suite fast --print-errorlogs --logbase testlog-fast || rc=1
if [[ $(id -u) == 0 ]]; then
  meson test -C "$BUILD" --suite netns --print-errorlogs --num-processes 1 \
    --logbase testlog-netns || rc=1
else
  echo "test.sh: not root: the netns suite needs root (namespaces, taps)" >&2
  rc=1
fi

# one closing line over both runs' logs
python3 - "$BUILD" <<'PY'
import json, pathlib, sys
passed = failed = 0
for f in sorted((pathlib.Path(sys.argv[1]) / "meson-logs").glob("testlog-*.json")):
    for line in f.read_text().splitlines():
        r = json.loads(line)
        if r.get("result") in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r.get("result") != "SKIP":
            failed += 1
print("%d passed, %d failed" % (passed, failed))
PY
exit $rc
