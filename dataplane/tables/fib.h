// Double-buffered IPv4/IPv6 FIB over DPDK rte_fib (DIR24_8) and rte_fib6 (TRIE).
//
// rte_fib in DPDK 22.11 has no RCU integration, so a delete that frees a tbl8 group could be
// reused under a concurrent lookup. We keep two complete copies instead: the control thread
// applies a batch of changes to the copy no worker reads, publishes it with one atomic store,
// waits one RCU grace period (rte_rcu_qsbr) so no worker still reads the old copy, and replays
// the batch onto it. A lookup therefore sees either the whole batch or none of it.
//
// Each change of a batch succeeds or fails on its own: a route that does not fit (the RIB behind
// the FIB full, or no free tbl8 group for a prefix longer than /24) is left out and reported,
// and the rest of the batch still applies, so one bad route never blocks the others.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "dataplane/net/ip.h"

struct rte_fib;
struct rte_fib6;
struct rte_rcu_qsbr;

namespace espgw::dp {

struct FibCopy {
  rte_fib* v4 = nullptr;
  rte_fib6* v6 = nullptr;
};

struct FibChange {
  Prefix prefix;
  uint32_t nh = 0;    // next-hop id (add)
  bool del = false;
};

struct FibFailure {
  size_t index;     // into the batch
  std::string why;  // "FIB full (max_routes_v4 or tbl8 groups exhausted)"
};

class Fib {
 public:
  Fib() = default;
  Fib(const Fib&) = delete;
  Fib& operator=(const Fib&) = delete;
  ~Fib();

  bool init(const std::string& name, int socket, unsigned max_v4, unsigned max_v6,
            rte_rcu_qsbr* qsbr, std::string* err);

  // Worker side: load once per burst.
  const FibCopy* active() const { return active_.load(std::memory_order_acquire); }

  // Control side: applies the batch atomically as seen by workers (one publish). Changes that
  // cannot be applied are skipped and listed in *failed (in batch order); the others apply.
  // Removing a present or absent route always succeeds. Returns true if nothing failed.
  bool apply(std::span<const FibChange> batch, std::vector<FibFailure>* failed);

  uint64_t generation() const { return generation_; }

 private:
  int apply_one(FibCopy& c, const FibChange& ch);  // 0 or a negative errno
  FibCopy copies_[2];
  std::atomic<const FibCopy*> active_{nullptr};
  rte_rcu_qsbr* qsbr_ = nullptr;
  uint64_t generation_ = 0;
};

}  // namespace espgw::dp
