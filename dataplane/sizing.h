// How much DPDK memory (the -m / memory_mb budget) an instance's tables and pools take, so that
// `espgw --check` and start-up refuse a config whose tables cannot fit instead of failing in
// rte_fib_create. Figures measured with DPDK 22.11 (rte_malloc heap usage per table, see
// dataplane/tables/fib.cpp for the table parameters) and rounded up.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

namespace espgw::dp {

// The FIB's tbl8 group counts (dataplane/tables/fib.cpp creates its tables with these).
inline unsigned fib_tbl8_v4(unsigned max_routes_v4) {
  return std::clamp(max_routes_v4 / 8, 256u, 65535u);
}
inline unsigned fib_tbl8_v6(unsigned max_routes_v6) {
  return std::clamp(max_routes_v6 / 2, 1024u, 65535u);
}

struct MemoryEstimate {
  uint64_t fib_v4 = 0, fib_v6 = 0, pools = 0, fixed = 0;  // bytes
  uint64_t total() const { return fib_v4 + fib_v6 + pools + fixed; }
  static uint64_t mib(uint64_t b) { return (b + (1u << 20) - 1) >> 20; }
  std::string str() const {
    return std::to_string(mib(total())) + " MiB (IPv4 FIB " + std::to_string(mib(fib_v4)) +
           ", IPv6 FIB " + std::to_string(mib(fib_v6)) + ", mbuf pools " +
           std::to_string(mib(pools)) + ", other tables " + std::to_string(mib(fixed)) + ")";
  }
};

// Both FIB copies (double-buffered), per copy: the 2^24-entry first level, the tbl8 groups
// (num_tbl8 x 256 x 4 bytes) and the RIB nodes (~420 bytes per route measured).
inline MemoryEstimate estimate_memory(unsigned max_routes_v4, unsigned max_routes_v6,
                                      unsigned mbufs, unsigned max_mtu) {
  constexpr uint64_t kMiB = 1u << 20, kTbl24 = 64 * kMiB, kPerRoute = 448, kTbl8 = 1024;
  MemoryEstimate e;
  const uint64_t tbl8_v4 = fib_tbl8_v4(max_routes_v4);
  const uint64_t tbl8_v6 = fib_tbl8_v6(max_routes_v6);
  e.fib_v4 = 2 * (kTbl24 + tbl8_v4 * kTbl8 + uint64_t(max_routes_v4) * kPerRoute);
  e.fib_v6 = 2 * (kTbl24 + tbl8_v6 * kTbl8 + uint64_t(max_routes_v6) * kPerRoute);
  const uint64_t room = 128 + std::max(2048u, max_mtu + 18 + 64);  // see setup_ports
  e.pools = uint64_t(mbufs) * (room + 192) + uint64_t(mbufs / 4) * 192;
  e.fixed = 64 * kMiB;  // next hops, SPI and neighbour hashes, rings, EAL's own
  return e;
}

}  // namespace espgw::dp
