// ARP (RFC 826) and IPv6 neighbour discovery (RFC 4861) for the gateway's own addresses and its
// next hops, run by the control thread. The table is an rte_hash with lock-free readers; the
// control thread is its only writer. Packets waiting for resolution are held here (bounded).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/counters.h"
#include "dataplane/runtime.h"

namespace espgw::dp {

class Neighbors {
 public:
  static constexpr unsigned kHoldMax = 16;        // packets held per unresolved neighbour
  static constexpr uint64_t kProbeIntervalMs = 1000;
  static constexpr unsigned kMaxProbes = 3;
  static constexpr uint64_t kReachableMs = 30000;  // re-confirm a valid entry after this
  // What remote traffic can make us keep (RFC 4861 7.3.3 leaves the policy to us): an entry that
  // failed to resolve goes after kFailedLingerMs; new entries for forwarded packets are created
  // at most kCreatePerSec (burst kCreateBurst); all entries together hold at most
  // hold_cap() packets; a full table evicts the oldest unreferenced entry (failed ones first).
  // Entries that are next hops of routes (refs > 0) and permanent ones are never evicted.
  static constexpr uint64_t kFailedLingerMs = 5000;
  static constexpr uint64_t kCreatePerSec = 256, kCreateBurst = 512;

  explicit Neighbors(Runtime& rt) : rt_(rt) {}
  ~Neighbors();
  bool init(unsigned max_entries, std::string* err);

  // Entry for (port, ip), created (unresolved) if absent, evicting an unused one if the table
  // is full. nullptr if nothing can be evicted.
  NeighEntry* get(uint16_t port, const IpAddr& ip, uint64_t now_ms = 0);
  void ref(NeighEntry* e) { ++e->refs; }
  void unref(NeighEntry* e) { --e->refs; }

  // A static entry (operator or harness): valid at once, never probed, never expired.
  bool add_static(uint16_t port, const IpAddr& ip, const rte_ether_addr& mac, std::string* err);

  // A packet from the to_control ring: ARP, NS/NA (family 0 in the hold metadata) or a packet
  // held for resolution. Takes ownership.
  void receive(rte_mbuf* m, uint64_t now_ms);
  // Probes, retries, expiries; call every ~100 ms.
  void tick(uint64_t now_ms);

  std::vector<NeighborView> view() const;
  uint64_t dropped_holds() const { return dropped_holds_; }
  size_t size() const { return entries_.size(); }
  size_t held() const { return held_; }
  size_t hold_cap() const { return hold_cap_; }

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
  NeighEntry* lookup(uint16_t port, const IpAddr& ip) const;
  bool make_room(uint64_t now_ms);
  void evict(size_t index);
  void reclaim(bool wait);
  void count(Drop d);

  Runtime& rt_;
  std::vector<std::unique_ptr<NeighEntry>> entries_;
  unsigned max_ = 0;
  uint64_t dropped_holds_ = 0;
  size_t held_ = 0, hold_cap_ = 1024;
  uint64_t create_tokens_ = kCreateBurst, create_last_ms_ = 0;
  // Removed from the hash, freed after an RCU grace period (workers may still read them).
  struct Retired {
    std::unique_ptr<NeighEntry> e;
    int32_t pos;
    uint64_t token;
  };
  std::vector<Retired> retired_;
};

}  // namespace espgw::dp
