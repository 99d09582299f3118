// ARP (RFC 826) and IPv6 neighbour discovery (RFC 4861) for the gateway's own addresses and its
// next hops, run by the control thread. The table is an rte_hash with lock-free readers; the
// control thread is its only writer. Packets waiting for resolution are held here (bounded).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataplane/runtime.h"

namespace espgw::dp {

class Neighbors {
 public:
  static constexpr unsigned kHoldMax = 16;        // packets held per unresolved neighbour
  static constexpr uint64_t kProbeIntervalMs = 1000;
  static constexpr unsigned kMaxProbes = 3;
  static constexpr uint64_t kReachableMs = 30000;  // re-confirm a valid entry after this

  explicit Neighbors(Runtime& rt) : rt_(rt) {}
  ~Neighbors();
  bool init(unsigned max_entries, std::string* err);

  // Entry for (port, ip), created (unresolved) if absent. nullptr if the table is full.
  NeighEntry* get(uint16_t port, const IpAddr& ip);
  void ref(NeighEntry* e) { ++e->refs; }
  void unref(NeighEntry* e) { --e->refs; }

  // A static entry (operator or harness): valid at once, never probed, never expired.
  bool add_static(uint16_t port, const IpAddr& ip, const rte_ether_addr& mac, std::string* err);

  // A packet from the to_control ring: ARP, NS/NA (family 0 in the hold metadata) or a packet
  // held for resolution. Takes ownership.
  void receive(rte_mbuf* m, uint64_t now_ms);
  // Probes, retries, expiries; call every ~100 ms.
  void tick(uint64_t now_ms);

  nlohmann::ordered_json to_json() const;
  uint64_t dropped_holds() const { return dropped_holds_; }

 private:
  void on_arp(uint16_t port, rte_mbuf* m, uint64_t now_ms);
  void on_nd(uint16_t port, rte_mbuf* m, uint64_t now_ms);
  void learn(uint16_t port, const IpAddr& ip, const uint8_t* mac, bool create, uint64_t now_ms);
  void hold(NeighEntry* e, rte_mbuf* m, uint64_t now_ms);
  void release_holds(NeighEntry* e);
  void drop_holds(NeighEntry* e);
  void probe(NeighEntry* e, bool unicast);
  bool is_local(uint16_t port, const IpAddr& ip) const;
  void send(uint16_t port, rte_mbuf* m);

  Runtime& rt_;
  std::vector<std::unique_ptr<NeighEntry>> entries_;
  unsigned max_ = 0;
  uint64_t dropped_holds_ = 0;
};

}  // namespace espgw::dp
