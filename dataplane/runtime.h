// Run-time state shared by the control thread (single writer) and the worker lcores (readers).
// Workers never lock; the control thread publishes with release stores and reclaims memory only
// after an RCU (rte_rcu_qsbr) grace period.
#pragma once

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "dataplane/counters.h"
#include "dataplane/dataplane.h"
#include "dataplane/net/ip.h"

struct rte_hash;
struct rte_ring;
struct rte_mempool;
struct rte_rcu_qsbr;

namespace espgw::dp {

class Fib;
struct SaRt;
struct TunnelRt;
inline constexpr unsigned kMaxWorkers = 64;

// A neighbour (ARP/ND) entry. Workers read only `mac`; everything else is the control thread's.
struct NeighEntry {
  static constexpr uint64_t kValid = 1ull << 63;
  std::atomic<uint64_t> mac{0};  // kValid | 48-bit MAC (byte 0 in the low bits)

  IpAddr ip;
  uint16_t port = 0;
  unsigned refs = 0;               // next hops pointing at it
  uint64_t confirmed_ms = 0;       // last time a reply/announcement was seen
  uint64_t next_probe_ms = 0;
  unsigned probes = 0;             // unanswered probes in a row
  bool permanent = false;          // configured by the operator: never probed or expired
  std::deque<rte_mbuf*> hold;      // packets waiting for resolution (bounded)
  uint64_t hold_since_ms = 0;
  uint64_t last_used_ms = 0;       // created, a packet held for it, or a reply learned

  static uint64_t pack(const rte_ether_addr& a) {
    uint64_t v = 0;
    for (int i = 0; i < 6; ++i) v |= uint64_t(a.addr_bytes[i]) << (8 * i);
    return v | kValid;
  }
  static void unpack(uint64_t v, rte_ether_addr& a) {
    for (int i = 0; i < 6; ++i) a.addr_bytes[i] = uint8_t(v >> (8 * i));
  }
};


struct NextHop {
  NhKind kind = NhKind::kNone;
  uint16_t port = 0;          // index into Runtime::ports
  NeighEntry* neigh = nullptr;  // kVia
  uint32_t tunnel = 0;          // kTunnel
  uint8_t n_members = 0;        // kTunnelGroup: members[0..n_members) are tunnel ids; a group
  uint32_t members[kMaxEcmp] = {};  // never changes while published (new set = new next hop)
};


struct PortRt {
  std::string name;
  uint16_t eth_id = 0;        // DPDK ethdev port id
  uint16_t mtu = 1500;
  uint16_t nb_rxq = 1;        // rx queue q is polled by worker q % n_workers
  bool exception = false;     // the host-kernel TAP
  rte_ether_addr mac{};       // our MAC on this port
  rte_ether_addr peer_mac{};  // exception port only: the kernel interface's MAC
  std::vector<IfAddr> addrs;  // this port's addresses (data ports)
  IpAddr src4, src6;          // source for ICMP errors and probes (unset if none)
};

// Metadata the workers attach to an mbuf they hand to the control thread for neighbour
// resolution (an mbuf dynamic field).
struct HoldMeta {
  uint8_t family;
  uint8_t pad;
  uint16_t port;
  uint8_t ip[16];
};
extern int g_hold_meta_offset;
inline HoldMeta* hold_meta(rte_mbuf* m) {
  return RTE_MBUF_DYNFIELD(m, g_hold_meta_offset, HoldMeta*);
}

struct Runtime {
  std::vector<PortRt> ports;        // data ports first, the exception port last
  static constexpr uint16_t kNoPort = 0xffff;
  uint16_t exception_port = kNoPort;  // index into ports (kNoPort: no exception path)
  unsigned n_workers = 1;
  std::vector<unsigned> worker_lcores;
  unsigned burst = 32;
  unsigned idle_sleep_us = 0;

  rte_mempool* pool = nullptr;
  rte_mempool* indirect_pool = nullptr;  // IPv4 fragmentation
  rte_ring* to_control = nullptr;        // ARP/ND and packets held for resolution
  rte_hash* neigh_hash = nullptr;        // (port, ip) -> NeighEntry*
  rte_rcu_qsbr* qsbr = nullptr;
  Fib* fib = nullptr;
  NextHop* nexthops = nullptr;           // [kMaxNextHops], immutable once published

  rte_hash* spi_hash = nullptr;              // inbound SPI -> SaRt*
  std::atomic<TunnelRt*>* tunnels = nullptr;  // [kMaxTunnels]
  rte_ring* sa_events = nullptr;             // lifetime events, workers -> control
  rte_ring* handoff[kMaxWorkers] = {};       // inbound ESP for the SA's owner worker

  CounterSet* counters = nullptr;
  std::atomic<bool> running{true};
  // Set once the configured state (routes, static tunnels, services) is in place: until then
  // workers receive nothing, so early packets wait in the ports' queues instead of being dropped
  // as no_route and answered with ICMP unreachable.
  std::atomic<bool> forwarding{false};
  uint64_t icmp_rate_per_sec = 1000;     // ICMP errors per worker per second
  // packets per second per port and worker that may go to the control thread (ARP, ND, packets
  // waiting for a neighbour): a flood cannot starve it; the rest is dropped and counted
  uint64_t control_rate_per_sec = 2000;
};

struct NeighKey {
  uint8_t ip[16];
  uint16_t port;
  uint8_t family;
  uint8_t pad;
};
static_assert(sizeof(NeighKey) == 20);

// The run-time state behind a Dataplane: for the data plane's white-box tests (the worker fuzz
// target) only; the control side uses the facade.
Runtime& runtime_of(Dataplane& d);

inline NeighKey make_neigh_key(uint16_t port, uint8_t family, const uint8_t* ip) {
  NeighKey k{};
  k.port = port;
  k.family = family;
  std::memcpy(k.ip, ip, family == 4 ? 4 : 16);
  return k;
}

}  // namespace espgw::dp
