#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a while on a temporary
# copy of its seed corpus (the repo's corpus stays small). Not part of CI.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   targets: pkt esp_in config bgp bgp_fsm bgp_speaker nd ike ike_daemon keyfile api seqstore worker
# FUZZ_KEEP=1 keeps each grown corpus under $FUZZ_OUT (to pick new seeds from by hand).
# FUZZ_CPU=1: SECONDS is CPU time of the fuzzer process, not wall time (for a campaign that shares
# the machine, e.g. run under nice): it is stopped with SIGINT once it has used that much.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}; shift || true
TARGETS=("$@"); ((${#TARGETS[@]})) || TARGETS=(pkt esp_in config bgp bgp_fsm bgp_speaker nd ike ike_daemon keyfile api seqstore worker)
OUT=${FUZZ_OUT:-/tmp/espgw-fuzz}
mkdir -p "$OUT"
CXX="clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I."

sources() {
  case $1 in
    pkt) echo tests/fuzz/pkt_fuzz.cpp ;;
    esp_in) echo tests/fuzz/esp_in_fuzz.cpp crypto/*.cpp ;;
    config) echo tests/fuzz/config_fuzz.cpp control/model/*.cpp ;;
    bgp|bgp_fsm|bgp_speaker) echo "tests/fuzz/${1}_fuzz.cpp" control/bgp/*.cpp ;;
    ike) echo tests/fuzz/ike_fuzz.cpp control/ike/*.cpp control/ike/tasks/*.cpp control/model/*.cpp ;;
    ike_daemon) echo tests/fuzz/ike_daemon_fuzz.cpp control/ike/*.cpp control/ike/tasks/*.cpp control/model/*.cpp ;;
    nd) echo tests/fuzz/nd_fuzz.cpp dataplane/tables/neighbor.cpp ;;
    keyfile) echo tests/fuzz/keyfile_fuzz.cpp control/model/key_file.cpp ;;
    api) echo tests/fuzz/api_fuzz.cpp control/api/server.cpp ;;
    seqstore) echo tests/fuzz/seqstore_fuzz.cpp control/state/seq_store.cpp ;;
    worker) echo tests/fuzz/worker_fuzz.cpp dataplane/{dataplane,log,port,telemetry}.cpp dataplane/tables/*.cpp dataplane/path/*.cpp crypto/*.cpp ;;
  esac
}
libs() {
  case $1 in
    config) echo "-lyaml-cpp -lcrypto" ;;
    esp_in) echo "-lIPSec_MB" ;;
    ike|ike_daemon) echo "-lyaml-cpp -lcrypto" ;;
    keyfile|seqstore) echo "-lcrypto" ;;
    worker) echo "$(pkg-config --cflags --libs libdpdk) -lrte_net_ring -lIPSec_MB" ;;
    nd) pkg-config --cflags --libs libdpdk ;;
  esac
}

rc=0
for t in "${TARGETS[@]}"; do
  [[ -f tests/fuzz/${t}_fuzz.cpp ]] || { echo "no target $t" >&2; rc=1; continue; }
  echo "== $t: building"
  # shellcheck disable=SC2046
  $CXX $(sources "$t") $(libs "$t") -o "$OUT/${t}_fuzz"
  work=$(mktemp -d "$OUT/${t}-corpus.XXXX")
  cp -r "tests/fuzz/corpus/$t/." "$work/" 2>/dev/null || true
  echo "== $t: fuzzing for ${SECS}s"
  # The whole output goes to $OUT/<target>.log; shown: the last coverage line (cov:, ft:), the
  # final stats, and what a crash reports.
  if [[ ${FUZZ_CPU:-0} == 1 ]]; then
    (cd "$OUT" && exec "./${t}_fuzz" -print_final_stats=1 "$work" >"$OUT/$t.log" 2>&1) &
    pid=$!
    tck=$(getconf CLK_TCK)
    while kill -0 "$pid" 2>/dev/null; do
      # utime + stime (fields 14, 15 of /proc/PID/stat), in clock ticks
      used=$(awk -v t="$tck" '{print int(($14 + $15) / t)}' "/proc/$pid/stat" 2>/dev/null || echo 0)
      if ((used >= SECS)); then kill -INT "$pid"; break; fi
      sleep 5
    done
    wait "$pid" && frc=0 || frc=$?
    # 72: libFuzzer's exit code when interrupted (the budget was reached); it prints its stats
    if ((frc != 0 && frc != 72)); then rc=1; tail -n 40 "$OUT/$t.log"; fi
    echo "== $t: ${SECS}s of CPU time"
  elif ! (cd "$OUT" && "./${t}_fuzz" -max_total_time="$SECS" -print_final_stats=1 "$work" \
        >"$OUT/$t.log" 2>&1); then
    rc=1
    tail -n 40 "$OUT/$t.log"
  fi
  grep -E '^#[0-9]+' "$OUT/$t.log" | tail -n 1 || true
  grep -E '^stat::|^artifact_prefix|SUMMARY' "$OUT/$t.log" || true
  if [[ ${FUZZ_KEEP:-0} == 1 ]]; then echo "== $t: corpus kept in $work"; else rm -rf "$work"; fi
done
exit $rc
