#!/usr/bin/env bash
# The espgw demo, in virtual mode (net_tap ports, no hugepages), on namespaces it creates and
# deletes: host A -- espgw -- host B, IPv4 and IPv6. Installs and builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
export ESPGW_BUILD=${ESPGW_BUILD:-$PWD/build}
PY=/usr/bin/python3
P=demo
CTL="$ESPGW_BUILD/control/api/espgwctl --socket /tmp/espgw-topo-$P/gw/ctl.sock"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cleanup() { $PY scripts/topo.py down --prefix $P >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup

say "starting espgw between host A (10.1.0.10, fd00:a::10) and host B (10.2.0.10, fd00:b::10)"
$PY scripts/topo.py up --prefix $P
say "espgwctl show ports";     $CTL show ports
say "espgwctl show routes";    $CTL show routes
say "ping A -> B (IPv4, IPv6) through the DPDK data plane"
ip netns exec $P-a ping -n -c 3 -i 0.2 10.2.0.10 | tail -2
ip netns exec $P-a ping -n -c 3 -i 0.2 fd00:b::10 | tail -2
say "ping the gateway itself: answered by its kernel through the exception path"
ip netns exec $P-a ping -n -c 2 -i 0.2 10.1.0.1 | tail -1
say "a route added at run time (10.99.0.0/16 blackholed), then ICMP unreachable for unrouted nets"
$CTL route add 10.99.0.0/16 blackhole
ip netns exec $P-a ping -n -c 1 -W 1 10.99.0.1 | tail -1 || true
ip netns exec $P-a ping -n -c 1 -W 1 10.77.0.1 | grep -E 'Unreachable|received' || true
say "TCP: 4 MiB from A to B"
ip netns exec $P-b $PY -c '
import socket; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.2.0.10", 5001)); s.listen(1); c,_=s.accept(); n=0
while True:
    d=c.recv(65536)
    if not d: break
    n+=len(d)
print("host B received", n, "bytes")' &
sleep 0.3
ip netns exec $P-a $PY -c '
import socket; c=socket.create_connection(("10.2.0.10", 5001)); c.sendall(b"x"*4194304); c.close()'
wait
say "espgwctl show neighbors"; $CTL show neighbors
say "espgwctl show counters (every drop has a name)"; $CTL show counters
say "DPDK telemetry: /espgw/ports"
echo /espgw/ports | dpdk-telemetry.py -f espgw-$P-gw 2>/dev/null | tail -1
say "done; tearing down"
