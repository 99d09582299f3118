#!/usr/bin/env bash
# The espgw demo, in virtual mode (net_tap ports, no hugepages), on namespaces it creates and
# deletes: two sites joined by an IPsec tunnel between two espgw gateways:
#   host A 10.1.0.10 -- gw1 == ESP over the WAN 198.51.100.0/24 == gw2 -- host B 10.2.0.10
#   scripts/demo.sh            VNet1GW (AS 65010) and VNet2GW (AS 65020): a vnet2vnet connection
#                              negotiated with IKEv2, BGP over the tunnel, no static routes
#   scripts/demo.sh static     the same two sites over manually keyed ESP (like ipsec-secgw)
# Installs and builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-vnet2vnet}
[[ $MODE == vnet2vnet || $MODE == static ]] || { echo "usage: $0 [vnet2vnet|static]" >&2; exit 2; }
bash scripts/setup.sh >/dev/null
export ESPGW_BUILD=${ESPGW_BUILD:-$PWD/build}
PY=/usr/bin/python3
P=demo
ALGO=${ALGO:-aes256gcm16}
ctl() { local gw=$1; shift; "$ESPGW_BUILD/control/api/espgwctl" --socket "/tmp/espgw-topo-$P/$gw/ctl.sock" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# wait_for WHAT CMD...: polls CMD every 0.1 s for up to 60 s
wait_for() {
  local what=$1; shift
  for _ in $(seq 600); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "demo: timed out waiting for $what" >&2; exit 1
}
cleanup() {
  [[ -n ${TCPDUMP:-} ]] && kill "$TCPDUMP" 2>/dev/null
  $PY scripts/topo.py --prefix $P down >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup

if [[ $MODE == vnet2vnet ]]; then
  say "VNet1GW (AS 65010, 10.1.0.0/16) and VNet2GW (AS 65020, 10.2.0.0/16): IKEv2 + BGP"
  $PY scripts/topo.py --prefix $P up vnet2vnet
  connected() { ctl gw1 --json show connections | grep -q '"Connected"'; }
  established() { ctl gw1 --json show bgp peers | grep -q '"Established"'; }
  learned() { ctl gw1 --json show routes | grep -q '"fd00:b::/48"'; }
  wait_for "the IKE connection" connected
  say "gw1: espgwctl show connections (IKEv2, PSK; no key is ever shown)"; ctl gw1 show connections
  wait_for "the BGP session" established
  say "gw1: espgwctl show bgp peers"; ctl gw1 show bgp peers
  wait_for "VNet2's prefixes in the FIB" learned
  say "gw1: espgwctl show bgp routes (learned from VNet2GW, and our own)"; ctl gw1 show bgp routes
  say "gw1: espgwctl show routes (BGP's best routes in the FIB, into the IKE tunnel)"; ctl gw1 show routes
else
  say "two espgw gateways, site A and site B, joined by an ESP tunnel ($ALGO, static keys)"
  $PY scripts/topo.py --prefix $P up pair "$ALGO"
  say "gw1: espgwctl show ports";   ctl gw1 show ports
  say "gw1: espgwctl show routes";  ctl gw1 show routes
fi
say "gw1: espgwctl show tunnels"; ctl gw1 show tunnels

ip netns exec $P-wan tcpdump -U -n -i br0 -w /tmp/espgw-demo-wan.pcap 'esp or udp port 4500' \
  >/dev/null 2>&1 &
TCPDUMP=$!
sleep 0.5
say "ping host A -> host B through the tunnel (IPv4, IPv6 inner)"
ip netns exec $P-a ping -n -c 3 -i 0.2 10.2.0.10 | tail -2
ip netns exec $P-a ping -n -c 3 -i 0.2 fd00:b::10 | tail -2
say "TCP: 8 MiB from host A to host B through the tunnel"
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
import socket; c=socket.create_connection(("10.2.0.10", 5001)); c.sendall(b"x"*8388608); c.close()'
wait %2 2>/dev/null || true
sleep 0.3; kill $TCPDUMP 2>/dev/null; wait $TCPDUMP 2>/dev/null || true; TCPDUMP=
say "what crossed the WAN (the kernel's view of the wire): ESP only"
tcpdump -n -r /tmp/espgw-demo-wan.pcap 2>/dev/null | head -5 || true
echo "... $(tcpdump -n -r /tmp/espgw-demo-wan.pcap 2>/dev/null | wc -l) ESP packets captured"
say "gw1: espgwctl show sas";     ctl gw1 show sas
say "gw2: espgwctl show counters (every drop has a name)"; ctl gw2 show counters
say "DPDK telemetry of gw1: /espgw/ports"
echo /espgw/ports | dpdk-telemetry.py -f espgw-$P-gw1 2>/dev/null | tail -1
say "done; tearing down"
