// Mpps harness, traffic: the test network (addresses, routes, SPIs, tunnel keys), packet size
// patterns, the generator's ports (net_ring rings or NICs) and Traffic, the generator and sink
// that run on the main lcore. Definitions in traffic.cpp.
#pragma once

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <cstdint>
#include <string>
#include <vector>

#include "crypto/algo.h"
#include "dataplane/dataplane.h"

namespace espgw::perf {

constexpr unsigned kBurst = 32;
constexpr uint32_t kFcs = 4;            // sizes are Ethernet frame sizes including the FCS
constexpr unsigned kRingSize = 2048;
constexpr unsigned kInflight = 1024;    // packets between generator and sink (< ring size)

// Addressing (IPv4): lan 10.0.0.1/24 (next hop 10.0.0.2), wan 198.51.100.1/24 (next hop
// 198.51.100.2); tunnel i's peer is 100.64.0.0 + i + 1 (100.64.0.0/10 via 198.51.100.2);
// route j is 16.0.0.0/4 sliced into /24s: 16.0.0.0 + (j << 8).
constexpr uint32_t kLanAddr = 0x0a000001, kLanPeer = 0x0a000002;
constexpr uint32_t kWanAddr = 0xc6336401, kWanPeer = 0xc6336402;
constexpr uint32_t kPeerBase = 0x64400000;
constexpr uint32_t kRouteBase = 0x10000000;
constexpr uint32_t kMaxRoutes = 1u << 20;
constexpr uint32_t kOutSpiBase = 0x00010000, kInSpiBase = 0x01000000;
// Tunnel next hops share the FIB's next-hop id space (dataplane/runtime.h kMaxNextHops, 2^18)
// with neighbours and groups: at most this many tunnels get a route (the rest exist, with SAs, but
// carry no traffic out).
constexpr uint32_t kMaxRoutedTunnels = dp::kMaxNextHops - 4096;

enum class Workload { kFwd, kEnc, kDec };

// Frame sizes for one --sizes entry: the size itself, or the IMIX pattern.
std::vector<uint32_t> size_pattern(const std::string& s);
double mean_size(const std::vector<uint32_t>& p);
// Tunnel i's key material, the same for the gateway's SA and the generator's.
std::vector<uint8_t> keymat(uint32_t tunnel, bool inbound, crypto::Algo a);

// ---- ports ------------------------------------------------------------------------------------

struct PortIo {
  uint16_t eth = 0;                 // NIC mode: the generator's own ethdev
  std::vector<rte_ring*> rx, tx;    // ring mode: the gateway port's rx / tx rings
};

bool make_ring_port(const std::string& name, unsigned nrx, unsigned ntx, PortIo& io,
                    std::string* err);
bool start_tg_port(const std::string& name, rte_mempool* pool, PortIo& io, std::string* err);

// ---- generator + sink -------------------------------------------------------------------------

struct Traffic {
  Workload wl;
  crypto::Algo algo;
  bool nic = false;
  bool demote_lines = true;
  PortIo* in = nullptr;   // where the generator injects (gateway rx side)
  PortIo* out = nullptr;  // where the sink collects (gateway tx side)
  rte_mempool* pool = nullptr;
  uint32_t tunnels = 1, routes_eff = 10;
  rte_ether_addr gw_in_mac{}, gw_out_mac{}, tg_in_mac{}, tg_out_mac{};

  // current size pattern
  std::vector<uint32_t> pat;
  size_t pat_pos = 0;
  // fwd/enc: one template frame per pattern entry (patched per packet)
  std::vector<std::vector<uint8_t>> tmpl;
  // dec: pre-encrypted frames, [tunnel][distinct size index]
  std::vector<uint32_t> dsizes;           // distinct sizes of the pattern
  std::vector<uint32_t> pat_dsize;        // pattern entry -> distinct size index
  std::vector<uint8_t> dec_mem;
  std::vector<uint32_t> dec_off, dec_len;

  uint64_t k = 0;  // packet counter (flow selection)
  uint64_t sent = 0, ok = 0, bad = 0;
  unsigned rr = 0;
  rte_mbuf* pending[kBurst];
  unsigned n_pending = 0;

  uint32_t route_dst(uint32_t j, uint64_t kk) const {
    return kRouteBase + (j << 8) + 1 + uint32_t(kk & 0x7f);
  }

  bool set_sizes(const std::vector<uint32_t>& p, std::string* err);

  // Pre-encrypted ESP frames: tunnel t's inbound SA, one per distinct size; inner destination
  // on route (t mod routes) behind the lan next hop.
  bool build_dec(std::string* err);

  void fill(rte_mbuf* m);
  static void demote(const rte_mbuf* m);
  void gen();
  bool check(const rte_mbuf* m) const;
  unsigned sink();
};

}  // namespace espgw::perf
