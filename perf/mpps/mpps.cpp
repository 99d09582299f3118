// Mpps harness: drives the real espgw worker loop (dp::Gateway, dataplane/path/worker.cpp) through
// DPDK ports with no kernel in the path, and compares it with the raw IPsec-MB ceiling measured
// on the same worker core in the same run. See perf/mpps/README.md.
//
// Virtual mode (default): the gateway's ports "lan" and "wan" are net_ring ethdevs made with
// rte_eth_from_rings(); the main lcore is the traffic generator (it enqueues bursts of 32 into a
// port's rx ring) and the sink (it dequeues the port's tx rings and checks every packet).
// NIC mode (--nic): the gateway's ports and the generator's ports are real NICs, cabled
// tg_lan <-> lan and tg_wan <-> wan; the same generator/sink code drives the tg ports.
//
// One process = one gateway configuration (workload, algorithm, tunnels, routes) and a list of
// packet sizes; it prints one JSON object per size on stdout ("RESULT {...}").
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "crypto/algo.h"
#include "crypto/ipsecmb_engine.h"
#include "crypto/sa_crypto.h"
#include "dataplane/counters.h"
#include "dataplane/proto/esp.h"
#include "dataplane/dataplane.h"
#include "dataplane/proto/pkt.h"
#include "perf/mpps/ceiling.h"

namespace espgw::perf {
namespace {

using dp::csum_add;
using dp::csum_fold;
using dp::load_be16;
using dp::load_be32;
using dp::store_be16;
using dp::store_be32;
using Json = nlohmann::ordered_json;

constexpr unsigned kBurst = 32;
constexpr uint32_t kFcs = 4;            // sizes are Ethernet frame sizes including the FCS
constexpr unsigned kRingSize = 2048;
constexpr unsigned kInflight = 1024;    // packets between generator and sink (< ring size)
constexpr double kWindowSec = 0.05;     // sub-window for the median worker rate

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

struct Options {
  Workload wl = Workload::kEnc;
  crypto::Algo algo = crypto::Algo::kAesGcm128;
  std::vector<std::string> sizes{"64", "512", "1420", "imix"};
  uint32_t tunnels = 1;
  uint32_t routes = 10;
  double warmup = 0.3, seconds = 1.0, ceiling_seconds = 0.25;
  bool nic = false;
  bool demote = true;  // --no-demote: leave generated packets in the generator core's caches
  std::string nic_lan, nic_wan, nic_tg_lan, nic_tg_wan;  // ethdev names (after EAL probe)
  std::vector<std::string> eal;
};

const char* wl_name(Workload w) {
  return w == Workload::kFwd ? "forward" : w == Workload::kEnc ? "encrypt" : "decrypt";
}

std::vector<uint32_t> size_pattern(const std::string& s) {
  if (s == "imix") return {64, 570, 64, 64, 570, 64, 1518, 64, 570, 64, 64, 570};  // 7:4:1
  return {uint32_t(std::stoul(s))};
}

double mean_size(const std::vector<uint32_t>& p) {
  double s = 0;
  for (uint32_t v : p) s += v;
  return s / double(p.size());
}

uint32_t hash32(uint64_t k) { return uint32_t((k * 0x9E3779B97F4A7C15ull) >> 32); }

std::vector<uint8_t> keymat(uint32_t tunnel, bool inbound, crypto::Algo a) {
  std::vector<uint8_t> k(crypto::info(a).keymat_len());
  for (size_t b = 0; b < k.size(); ++b)
    k[b] = uint8_t(tunnel * 131 + b * 29 + (inbound ? 7 : 0) + (tunnel >> 8) * 17);
  return k;
}

std::string ip4(uint32_t a) { return IpAddr::v4(a).str(); }

// An inner IPv4/UDP frame of `size` bytes (with FCS) at f.
void build_inner(uint8_t* f, uint32_t size, const rte_ether_addr& dmac, const rte_ether_addr& smac,
                 uint32_t sip, uint32_t dip, uint16_t sport) {
  const uint32_t iplen = size - kFcs - dp::kEthHdrLen;
  std::memcpy(f, dmac.addr_bytes, 6);
  std::memcpy(f + 6, smac.addr_bytes, 6);
  store_be16(f + 12, dp::kEtherTypeIpv4);
  uint8_t* ip = f + dp::kEthHdrLen;
  for (uint32_t i = 28; i < iplen; ++i) ip[i] = uint8_t(i * 7);
  ip[0] = 0x45;
  ip[1] = 0;
  store_be16(ip + 2, uint16_t(iplen));
  store_be16(ip + 4, 0);
  store_be16(ip + 6, 0);
  ip[8] = 64;
  ip[9] = dp::kProtoUdp;
  ip[10] = ip[11] = 0;
  store_be32(ip + 12, sip);
  store_be32(ip + 16, dip);
  store_be16(ip + 10, uint16_t(~csum_fold(csum_add(0, ip, 20))));
  uint8_t* u = ip + 20;
  store_be16(u, sport);
  store_be16(u + 2, 5001);
  store_be16(u + 4, uint16_t(iplen - 20));
  store_be16(u + 6, 0);
}

// ---- ports ------------------------------------------------------------------------------------

struct PortIo {
  uint16_t eth = 0;                 // NIC mode: the generator's own ethdev
  std::vector<rte_ring*> rx, tx;    // ring mode: the gateway port's rx / tx rings
};

// The ring PMD names the ethdev "net_ring_<name>".
bool make_ring_port(const std::string& name, unsigned nrx, unsigned ntx, PortIo& io,
                    std::string* err) {
  for (unsigned q = 0; q < nrx; ++q) {
    std::string n = name + "_rx" + std::to_string(q);
    io.rx.push_back(rte_ring_create(n.c_str(), kRingSize, int(rte_socket_id()),
                                    RING_F_SP_ENQ | RING_F_SC_DEQ));
    if (!io.rx.back()) return *err = "ring " + n + ": " + rte_strerror(rte_errno), false;
  }
  for (unsigned q = 0; q < ntx; ++q) {
    std::string n = name + "_tx" + std::to_string(q);
    io.tx.push_back(rte_ring_create(n.c_str(), kRingSize, int(rte_socket_id()),
                                    RING_F_SP_ENQ | RING_F_SC_DEQ));
    if (!io.tx.back()) return *err = "ring " + n + ": " + rte_strerror(rte_errno), false;
  }
  if (rte_eth_from_rings(name.c_str(), io.rx.data(), nrx, io.tx.data(), ntx,
                         rte_socket_id()) < 0)
    return *err = "rte_eth_from_rings(" + name + "): " + rte_strerror(rte_errno), false;
  return true;
}

bool start_tg_port(const std::string& name, rte_mempool* pool, PortIo& io, std::string* err) {
  if (rte_eth_dev_get_port_by_name(name.c_str(), &io.eth) != 0)
    return *err = "no ethdev named " + name, false;
  rte_eth_conf conf{};
  conf.rxmode.mtu = 1600;
  if (rte_eth_dev_configure(io.eth, 1, 1, &conf) != 0 ||
      rte_eth_rx_queue_setup(io.eth, 0, 1024, rte_socket_id(), nullptr, pool) != 0 ||
      rte_eth_tx_queue_setup(io.eth, 0, 1024, rte_socket_id(), nullptr) != 0 ||
      rte_eth_dev_start(io.eth) != 0)
    return *err = "cannot start generator port " + name, false;
  rte_eth_promiscuous_enable(io.eth);
  return true;
}

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

  bool set_sizes(const std::vector<uint32_t>& p, std::string* err) {
    pat = p;
    pat_pos = 0;
    dsizes.clear();
    pat_dsize.clear();
    for (uint32_t s : p) {
      auto it = std::find(dsizes.begin(), dsizes.end(), s);
      if (it == dsizes.end()) {
        dsizes.push_back(s);
        it = dsizes.end() - 1;
      }
      pat_dsize.push_back(uint32_t(it - dsizes.begin()));
    }
    if (wl != Workload::kDec) {
      tmpl.clear();
      for (uint32_t s : p) {
        tmpl.emplace_back(s, 0);
        build_inner(tmpl.back().data(), s, gw_in_mac, tg_in_mac, 0x0a010001, route_dst(0, 0), 1024);
      }
      return true;
    }
    return build_dec(err);
  }

  // Pre-encrypted ESP frames: tunnel t's inbound SA, one per distinct size; inner destination
  // on route (t mod routes) behind the lan next hop.
  bool build_dec(std::string* err) {
    auto engine = crypto::Engine::create(false);
    if (!engine) return *err = "crypto engine", false;
    const auto& ai = crypto::info(algo);
    dec_off.assign(size_t(tunnels) * dsizes.size(), 0);
    dec_len.assign(dec_off.size(), 0);
    size_t total = 0;
    std::vector<uint32_t> flen(dsizes.size());
    for (size_t d = 0; d < dsizes.size(); ++d) {
      uint32_t iplen = dsizes[d] - kFcs - dp::kEthHdrLen;
      flen[d] = dp::kEthHdrLen + 20 + 8 + ai.iv_len + esp_payload_len(algo, iplen) + ai.icv_len;
      total += (flen[d] + 63) / 64 * 64;
    }
    dec_mem.assign(total * tunnels, 0);
    auto sa = std::make_unique<crypto::SaCrypto>();
    std::vector<uint8_t> inner(2048);
    size_t off = 0;
    for (uint32_t t = 0; t < tunnels; ++t) {
      auto km = keymat(t, true, algo);
      if (!crypto::SaCrypto::init(*sa, algo, km.data(), km.size()))
        return *err = "SA init for the decrypt input", false;
      for (size_t d = 0; d < dsizes.size(); ++d) {
        uint8_t* f = dec_mem.data() + off;
        uint32_t iplen = dsizes[d] - kFcs - dp::kEthHdrLen;
        build_inner(inner.data(), dsizes[d], gw_in_mac, tg_in_mac, 0x0a010001,
                    route_dst(t % routes_eff, t), uint16_t(1024 + t));
        std::memcpy(f, gw_in_mac.addr_bytes, 6);
        std::memcpy(f + 6, tg_in_mac.addr_bytes, 6);
        store_be16(f + 12, dp::kEtherTypeIpv4);
        uint8_t* o = f + dp::kEthHdrLen;
        uint32_t payload = esp_payload_len(algo, iplen);
        uint32_t olen = 20 + 8 + ai.iv_len + payload + ai.icv_len;
        o[0] = 0x45;
        o[1] = 0;
        store_be16(o + 2, uint16_t(olen));
        store_be16(o + 4, uint16_t(t));
        store_be16(o + 6, 0);
        o[8] = 64;
        o[9] = dp::kProtoEsp;
        o[10] = o[11] = 0;
        store_be32(o + 12, kPeerBase + t + 1);
        store_be32(o + 16, kWanAddr);
        store_be16(o + 10, uint16_t(~csum_fold(csum_add(0, o, 20))));
        uint8_t* esp = o + 20;
        store_be32(esp, kInSpiBase + t);
        store_be32(esp + 4, 1 + uint32_t(d));
        uint8_t* pl = esp + 8 + ai.iv_len;
        std::memcpy(pl, inner.data() + dp::kEthHdrLen, iplen);
        uint32_t pad = payload - iplen - 2;
        dp::esp_write_trailer(pl + iplen, pad, dp::kNextIpv4);
        crypto::EspOp op{sa.get(), esp, payload, 0, false, 0};
        if (engine->encrypt_burst(&op, 1) != 1) return *err = "pre-encryption failed", false;
        dec_off[size_t(t) * dsizes.size() + d] = uint32_t(off);
        dec_len[size_t(t) * dsizes.size() + d] = dp::kEthHdrLen + olen;
        off += (flen[d] + 63) / 64 * 64;
      }
    }
    return true;
  }

  void fill(rte_mbuf* m) {
    const size_t pi = pat_pos;
    if (++pat_pos == pat.size()) pat_pos = 0;
    const uint64_t kk = k++;
    uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
    if (wl == Workload::kDec) {
      uint32_t t = tunnels == 1 ? 0 : hash32(kk) % tunnels;
      size_t idx = size_t(t) * dsizes.size() + pat_dsize[pi];
      uint32_t len = dec_len[idx];
      std::memcpy(d, dec_mem.data() + dec_off[idx], len);
      m->data_len = uint16_t(len);
      m->pkt_len = len;
      return;
    }
    const auto& tp = tmpl[pi];
    const uint32_t len = uint32_t(tp.size()) - kFcs;
    std::memcpy(d, tp.data(), len);
    uint8_t* ip = d + dp::kEthHdrLen;
    uint32_t j = routes_eff == 1 ? 0 : hash32(kk) % routes_eff;
    store_be32(ip + 16, route_dst(j, kk));
    store_be16(ip + 20, uint16_t(1024 + (kk & 0x3ff)));  // UDP source port: RSS spread on NICs
    ip[10] = ip[11] = 0;
    store_be16(ip + 10, uint16_t(~csum_fold(csum_add(0, ip, 20))));
    m->data_len = uint16_t(len);
    m->pkt_len = len;
  }

  // Pushes a packet's cache lines out of the generator core's L1/L2 into the shared L3, where a
  // NIC with DDIO would have written it: without this the worker's first touch of every mbuf
  // header and frame is a cross-core transfer of a modified line, which no NIC rx path pays.
  // (CLDEMOTE is a hint; on CPUs without it the encoding executes as a NOP.)
  static void demote(const rte_mbuf* m) {
    auto line = [](const void* p) { asm volatile("cldemote %0" ::"m"(*static_cast<const char*>(p))); };
    line(m);
    line(reinterpret_cast<const char*>(m) + 64);
    const char* d = rte_pktmbuf_mtod(m, const char*);
    for (uint32_t o = 0; o < m->data_len; o += 64) line(d + o);
  }

  void gen() {
    if (sent - ok - bad >= kInflight) return;
    if (!n_pending) {
      if (rte_pktmbuf_alloc_bulk(pool, pending, kBurst) != 0) return;
      for (unsigned i = 0; i < kBurst; ++i) {
        fill(pending[i]);
        if (demote_lines) demote(pending[i]);
      }
      n_pending = kBurst;
    }
    if (nic) {
      unsigned s = rte_eth_tx_burst(in->eth, 0, pending, uint16_t(n_pending));
      sent += s;
      std::memmove(pending, pending + s, (n_pending - s) * sizeof(pending[0]));
      n_pending -= s;
      return;
    }
    // whole bursts of 32 (one tail update), so the worker always sees full bursts
    rte_ring* r = in->rx[rr++ % in->rx.size()];
    if (rte_ring_sp_enqueue_bulk(r, reinterpret_cast<void**>(pending), n_pending, nullptr)) {
      sent += n_pending;
      n_pending = 0;
    }
  }

  bool check(const rte_mbuf* m) const {
    const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
    if (m->data_len < 34 || load_be16(f + 12) != dp::kEtherTypeIpv4) return false;
    if (std::memcmp(f, tg_out_mac.addr_bytes, 6) != 0 ||
        std::memcmp(f + 6, gw_out_mac.addr_bytes, 6) != 0)
      return false;
    const uint8_t* ip = f + dp::kEthHdrLen;
    if (uint32_t(load_be16(ip + 2)) + dp::kEthHdrLen != m->pkt_len) return false;
    if (wl == Workload::kEnc) {  // outer ESP to tunnel i's peer with tunnel i's outbound SPI
      if (ip[9] != dp::kProtoEsp || load_be32(ip + 12) != kWanAddr) return false;
      uint32_t i = load_be32(ip + 16) - kPeerBase - 1;
      return i < tunnels && load_be32(ip + 20) == kOutSpiBase + i && load_be32(ip + 24) != 0;
    }
    // forwarded or decapsulated inner packet: TTL decremented, destination on a test route
    uint32_t dst = load_be32(ip + 16);
    return ip[9] == dp::kProtoUdp && ip[8] == 63 && (dst >> 28) == 1 &&
           csum_fold(csum_add(0, ip, 20)) == 0xffff;
  }

  unsigned sink() {
    rte_mbuf* m[64];
    unsigned got = 0;
    auto take = [&](unsigned n) {
      for (unsigned i = 0; i < n; ++i) {
        if (check(m[i])) ++ok;
        else ++bad;
      }
      rte_pktmbuf_free_bulk(m, n);
      got += n;
    };
    if (nic) {
      take(rte_eth_rx_burst(out->eth, 0, m, 64));
    } else {
      for (rte_ring* r : out->tx)
        take(rte_ring_sc_dequeue_burst(r, reinterpret_cast<void**>(m), 64, nullptr));
    }
    return got;
  }
};

// ---- worker counters --------------------------------------------------------------------------

// On-CPU time of each worker thread (pthread CPU clocks): on a shared machine the busy TSC
// cycles also count time the worker was preempted, so they are scaled by on-CPU/wall per worker
// (assumes preemption hits busy and idle polls in proportion; exact when the core is not shared).
std::vector<clockid_t> g_worker_clocks;

int capture_clock(void* out) {
  pthread_getcpuclockid(pthread_self(), static_cast<clockid_t*>(out));
  return 0;
}

uint64_t cpu_ns(clockid_t c) {
  timespec ts{};
  clock_gettime(c, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

struct Snap {
  uint64_t tsc = 0, busy = 0, rx = 0, polls = 0, busy_polls = 0;
  std::vector<uint64_t> wbusy, wrx, wcpu;
  std::vector<uint64_t> drops, events;
};

Snap snap(const dp::Dataplane& d) {
  Snap s;
  for (clockid_t c : g_worker_clocks) s.wcpu.push_back(cpu_ns(c));
  s.tsc = rte_rdtsc();
  const dp::CounterSet& cs = d.counters();
  for (unsigned lc : d.worker_lcores()) {
    const auto& c = cs.lcore[lc];
    s.wbusy.push_back(dp::peek(c.busy_cycles));
    s.wrx.push_back(dp::peek(c.rx_total));
    s.busy += s.wbusy.back();
    s.rx += s.wrx.back();
    s.polls += dp::peek(c.polls);
    s.busy_polls += dp::peek(c.busy_polls);
  }
  for (size_t d = 0; d < size_t(dp::Drop::kCount); ++d)
    s.drops.push_back(cs.total_drop(dp::Drop(d)));
  for (size_t e = 0; e < size_t(dp::Event::kCount); ++e)
    s.events.push_back(cs.total_event(dp::Event(e)));
  return s;
}

// Busy seconds of all workers between two snapshots, each scaled by its on-CPU share.
double busy_seconds(const Snap& a, const Snap& b, uint64_t hz, double* on_cpu = nullptr) {
  const double wall = double(b.tsc - a.tsc) / double(hz);
  double busy = 0, share_sum = 0;
  for (size_t w = 0; w < a.wbusy.size(); ++w) {
    double share = 1;
    if (w < a.wcpu.size() && wall > 0)
      share = std::min(1.0, double(b.wcpu[w] - a.wcpu[w]) / 1e9 / wall);
    share_sum += share;
    busy += double(b.wbusy[w] - a.wbusy[w]) / double(hz) * share;
  }
  if (on_cpu) *on_cpu = a.wbusy.empty() ? 0 : share_sum / double(a.wbusy.size());
  return busy;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// ---- configuration ----------------------------------------------------------------------------

// The data plane as espgw would configure it for this workload: two ports, a /10 of tunnel
// peers via the WAN neighbour, one tunnel per peer (static SAs) and routes_eff /24 routes.
dp::Config make_config(const std::string& lan_dev, const std::string& wan_dev) {
  dp::Config c;
  c.configure_kernel = false;  // no exception TAP
  c.mbufs = 8192;  // the gateway's own pool (ICMP, fragments): unused here
  c.burst = kBurst;
  c.max_routes_v4 = kMaxRoutes + 64;
  c.ports.push_back({"lan", lan_dev, 1500, {IfAddr{IpAddr::v4(kLanAddr), 24}}});
  // room for ESP around 1500-byte inner packets (IMIX 1518)
  c.ports.push_back({"wan", wan_dev, 1600, {IfAddr{IpAddr::v4(kWanAddr), 24}}});
  return c;
}

bool install(dp::Dataplane& d, const Options& o, uint32_t routes_eff, std::string* err) {
  dp::NhSpec wan_peer, lan_peer;
  if (!d.resolve_via(IpAddr::v4(kWanPeer), "", wan_peer, err) ||
      !d.resolve_via(IpAddr::v4(kLanPeer), "", lan_peer, err) ||
      !d.route_add(Prefix{IpAddr::v4(kPeerBase), 10}, dp::RouteSource::kStatic, wan_peer, err))
    return false;
  std::vector<uint32_t> tunnel_ids;
  if (o.wl != Workload::kFwd) {
    for (uint32_t i = 0; i < o.tunnels; ++i) {
      dp::SaParams out;
      out.spi = kOutSpiBase + i;
      out.algo = o.algo;
      auto ko = keymat(i, false, o.algo);
      out.key = ko.data();
      out.key_len = ko.size();
      out.local = IpAddr::v4(kWanAddr);
      out.remote = IpAddr::v4(kPeerBase + i + 1);
      dp::SaParams in = out;
      in.inbound = true;
      in.spi = kInSpiBase + i;
      auto ki = keymat(i, true, o.algo);
      in.key = ki.data();
      in.key_len = ki.size();
      in.replay_window = 0;  // the decrypt workload replays a fixed set of packets
      const uint32_t out_id = d.add_sa(out, err);
      const uint32_t in_id = out_id ? d.add_sa(in, err) : 0;
      dp::TunnelParams tp;
      tp.name = "t" + std::to_string(i);
      tp.local = out.local;
      tp.algo = o.algo;
      const uint32_t t = in_id ? d.add_tunnel(tp, err) : 0;
      if (!t || !d.bind_tunnel(t, out_id, err) || !d.bind_tunnel(t, in_id, err)) return false;
      tunnel_ids.push_back(t);
    }
  }
  for (uint32_t j = 0; j < routes_eff; ++j) {
    dp::NhSpec nh = o.wl == Workload::kFwd ? wan_peer : lan_peer;
    if (o.wl == Workload::kEnc) nh = {dp::NhKind::kTunnel, 0, {}, tunnel_ids[j % o.tunnels]};
    if (!d.route_add(Prefix{IpAddr::v4(kRouteBase + (j << 8)), 24}, dp::RouteSource::kStatic, nh,
                     err))
      return false;
  }
  return d.route_commit(err);
}

// ---- main -------------------------------------------------------------------------------------

void usage() {
  std::fprintf(stderr,
               "usage: mpps [--workload forward|encrypt|decrypt] [--algo NAME] [--sizes 64,512,...,imix]\n"
               "            [--tunnels N] [--routes N] [--seconds S] [--warmup S] [--ceiling-seconds S]\n"
               "            [--nic LAN,WAN,TG_LAN,TG_WAN] [--no-demote] [-- EAL args]\n"
               "  algorithms: aes128gcm16 aes256gcm16 aes256-sha256 chacha20poly1305 (swanctl names)\n"
               "  default EAL args: -l 0-1 --no-huge -m 2048 --no-pci --file-prefix espgw-perf\n"
               "  --nic: ethdev names of the gateway's lan and wan ports and of the generator's\n"
               "         ports cabled to them (e.g. 0000:03:00.0,...); pass -a for each in EAL args\n");
}

std::vector<std::string> split(const std::string& s, char c) {
  std::vector<std::string> v;
  size_t p = 0;
  while (true) {
    size_t q = s.find(c, p);
    v.push_back(s.substr(p, q - p));
    if (q == std::string::npos) break;
    p = q + 1;
  }
  return v;
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--") {
      for (++i; i < argc; ++i) o.eal.push_back(argv[i]);
      break;
    }
    if (a == "--workload") {
      std::string w = next();
      if (w == "forward" || w == "fwd") o.wl = Workload::kFwd;
      else if (w == "encrypt" || w == "enc") o.wl = Workload::kEnc;
      else if (w == "decrypt" || w == "dec") o.wl = Workload::kDec;
      else return false;
    } else if (a == "--algo") {
      auto al = crypto::algo_by_name(next());
      if (!al) return false;
      o.algo = *al;
    } else if (a == "--sizes") {
      o.sizes = split(next(), ',');
    } else if (a == "--tunnels") {
      o.tunnels = uint32_t(std::stoul(next()));
    } else if (a == "--routes") {
      o.routes = uint32_t(std::stoul(next()));
    } else if (a == "--seconds") {
      o.seconds = std::stod(next());
    } else if (a == "--warmup") {
      o.warmup = std::stod(next());
    } else if (a == "--ceiling-seconds") {
      o.ceiling_seconds = std::stod(next());
    } else if (a == "--no-demote") {
      o.demote = false;
    } else if (a == "--nic") {
      auto v = split(next(), ',');
      if (v.size() != 4) return false;
      o.nic = true;
      o.nic_lan = v[0], o.nic_wan = v[1], o.nic_tg_lan = v[2], o.nic_tg_wan = v[3];
    } else {
      return false;
    }
  }
  for (const auto& s : o.sizes) {
    if (s == "imix") continue;
    char* end = nullptr;
    unsigned long v = std::strtoul(s.c_str(), &end, 10);
    if (*end || v < 64 || v > 1518) return false;
  }
  return o.tunnels >= 1 && o.routes >= 1 && o.routes <= kMaxRoutes;
}

int run(const Options& o) {
  std::vector<std::string> ea{"mpps"};
  if (o.eal.empty()) {
    for (const char* s : {"-l", "0-1", "--no-huge", "-m", "2048", "--no-pci", "--file-prefix",
                          "espgw-perf", "--log-level", "lib.eal:warning"})
      ea.push_back(s);
  } else {
    ea.insert(ea.end(), o.eal.begin(), o.eal.end());
  }
  std::vector<char*> eargv;
  for (auto& s : ea) eargv.push_back(s.data());
  eargv.push_back(nullptr);
  if (rte_eal_init(int(ea.size()), eargv.data()) < 0) {
    std::fprintf(stderr, "mpps: EAL init failed: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  std::vector<unsigned> workers;
  unsigned lc;
  RTE_LCORE_FOREACH_WORKER(lc) workers.push_back(lc);
  if (workers.empty()) {
    std::fprintf(stderr, "mpps: need at least 2 lcores (generator + worker)\n");
    return 1;
  }
  const unsigned nw = unsigned(workers.size());
  std::string err;
  int rc = 0;

  // Tunnels beyond kMaxRoutedTunnels get no route (next-hop id space, see above).
  const uint32_t routed_tunnels = std::min(o.tunnels, kMaxRoutedTunnels);
  uint32_t routes_eff = o.routes;
  if (o.wl == Workload::kEnc) routes_eff = std::max(o.routes, routed_tunnels);
  const uint32_t traffic_tunnels = o.wl == Workload::kEnc ? routed_tunnels : o.tunnels;

  // Ceiling first, on each worker core, while no gateway runs there.
  std::vector<std::vector<uint32_t>> patterns;
  for (const auto& s : o.sizes) patterns.push_back(size_pattern(s));
  auto ip_lens = [](const std::vector<uint32_t>& p) {
    std::vector<uint32_t> v;
    for (uint32_t s : p) v.push_back(s - kFcs - dp::kEthHdrLen);
    return v;
  };
  const bool crypto_wl = o.wl != Workload::kFwd;
  std::vector<CeilingResult> ceil_before(patterns.size()), ceil_after(patterns.size());
  if (crypto_wl)
    for (size_t i = 0; i < patterns.size(); ++i)
      ceil_before[i] = measure_ceiling(workers[0], o.algo, o.wl == Workload::kEnc,
                                       ip_lens(patterns[i]), o.ceiling_seconds);

  PortIo lan_io, wan_io;
  std::string lan_dev = "net_ring_perf_lan", wan_dev = "net_ring_perf_wan";
  rte_mempool* pool = rte_pktmbuf_pool_create("perf_gen", 16383, 256, 0,
                                              RTE_PKTMBUF_HEADROOM + 2048, int(rte_socket_id()));
  if (!pool) {
    std::fprintf(stderr, "mpps: mbuf pool: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  if (o.nic) {
    lan_dev = o.nic_lan;
    wan_dev = o.nic_wan;
    if (!start_tg_port(o.nic_tg_lan, pool, lan_io, &err) ||
        !start_tg_port(o.nic_tg_wan, pool, wan_io, &err)) {
      std::fprintf(stderr, "mpps: %s\n", err.c_str());
      return 1;
    }
  } else if (!make_ring_port("perf_lan", nw, nw + 1, lan_io, &err) ||
             !make_ring_port("perf_wan", nw, nw + 1, wan_io, &err)) {
    std::fprintf(stderr, "mpps: %s\n", err.c_str());
    return 1;
  }

  uint64_t t_setup = rte_rdtsc();
  const uint64_t hz = rte_get_tsc_hz();
  std::vector<Json> results;
  {
    std::unique_ptr<dp::Dataplane> gw = dp::Dataplane::create(make_config(lan_dev, wan_dev), &err);
    if (!gw) {
      std::fprintf(stderr, "mpps: data plane: %s\n", err.c_str());
      return 1;
    }
    Traffic tr;
    tr.wl = o.wl;
    tr.algo = o.algo;
    tr.nic = o.nic;
    tr.demote_lines = o.demote && !o.nic;
    tr.pool = pool;
    tr.tunnels = traffic_tunnels;
    tr.routes_eff = routes_eff;
    const bool in_lan = o.wl != Workload::kDec;
    tr.in = in_lan ? &lan_io : &wan_io;
    tr.out = in_lan ? &wan_io : &lan_io;
    const std::vector<dp::PortView> ports = gw->ports();
    rte_ether_addr lan_mac, wan_mac;
    std::memcpy(lan_mac.addr_bytes, ports[0].mac.data(), 6);
    std::memcpy(wan_mac.addr_bytes, ports[1].mac.data(), 6);
    rte_ether_addr tg_lan_mac{{0x02, 0, 0, 0, 0, 0x02}}, tg_wan_mac{{0x02, 0, 0, 0, 1, 0x02}};
    if (o.nic) {
      rte_eth_macaddr_get(lan_io.eth, &tg_lan_mac);
      rte_eth_macaddr_get(wan_io.eth, &tg_wan_mac);
    }
    tr.gw_in_mac = in_lan ? lan_mac : wan_mac;
    tr.gw_out_mac = in_lan ? wan_mac : lan_mac;
    tr.tg_in_mac = in_lan ? tg_lan_mac : tg_wan_mac;
    tr.tg_out_mac = in_lan ? tg_wan_mac : tg_lan_mac;

    g_worker_clocks.assign(nw, CLOCK_MONOTONIC);
    for (unsigned w = 0; w < nw; ++w)
      rte_eal_remote_launch(capture_clock, &g_worker_clocks[w], workers[w]);
    rte_eal_mp_wait_lcore();
    if (!gw->start(&err) || !install(*gw, o, routes_eff, &err)) {
      std::fprintf(stderr, "mpps: gateway start: %s\n", err.c_str());
      return 1;
    }
    for (auto [port, ip, mac] : {std::tuple{"lan", kLanPeer, tg_lan_mac},
                                 std::tuple{"wan", kWanPeer, tg_wan_mac}}) {
      std::array<uint8_t, 6> m;
      std::memcpy(m.data(), mac.addr_bytes, 6);
      if (!gw->add_neighbor(*gw->port_index(port), IpAddr::v4(ip), m, &err)) {
        std::fprintf(stderr, "mpps: neighbor %s: %s\n", ip4(ip).c_str(), err.c_str());
        return 1;
      }
    }
    gw->enable_forwarding();
    const double setup_s = double(rte_rdtsc() - t_setup) / double(hz);
    std::fprintf(stderr, "mpps: %s %s tunnels=%u routes=%u: gateway up in %.1f s\n",
                 wl_name(o.wl), crypto_wl ? std::string(crypto::info(o.algo).name).c_str() : "-",
                 o.tunnels, routes_eff + 3, setup_s);

    for (size_t si = 0; si < patterns.size(); ++si) {
      if (!tr.set_sizes(patterns[si], &err)) {
        std::fprintf(stderr, "mpps: %s\n", err.c_str());
        rc = 1;
        break;
      }
      const uint64_t sent0 = tr.sent, ok0 = tr.ok, bad0 = tr.bad;
      const Snap all0 = snap(*gw);
      auto pump_until = [&](uint64_t end, auto&& on_window) {
        uint64_t next_win = rte_rdtsc() + uint64_t(kWindowSec * double(hz));
        while (true) {
          uint64_t now = rte_rdtsc();
          if (now >= end) break;
          tr.gen();
          tr.sink();
          if (now >= next_win) {
            on_window();
            next_win = now + uint64_t(kWindowSec * double(hz));
          }
        }
      };
      pump_until(rte_rdtsc() + uint64_t(o.warmup * double(hz)), [] {});
      const uint64_t m_ok0 = tr.ok;
      const Snap s0 = snap(*gw);
      Snap prev = s0;
      std::vector<double> win_mpps;
      pump_until(s0.tsc + uint64_t(o.seconds * double(hz)), [&] {
        Snap s = snap(*gw);
        double b = busy_seconds(prev, s, hz);
        if (b > 0 && s.rx > prev.rx) win_mpps.push_back(double(s.rx - prev.rx) / b / 1e6);
        prev = s;
      });
      const Snap s1 = snap(*gw);
      const uint64_t m_ok = tr.ok - m_ok0;
      // drain: stop generating, collect until nothing moved for 20 ms
      if (tr.n_pending) {
        rte_pktmbuf_free_bulk(tr.pending, tr.n_pending);
        tr.n_pending = 0;
      }
      uint64_t quiet_since = rte_rdtsc();
      while (rte_rdtsc() - quiet_since < hz / 50)
        if (tr.sink()) quiet_since = rte_rdtsc();
      const Snap all1 = snap(*gw);

      const double wall = double(s1.tsc - s0.tsc) / double(hz);
      double on_cpu = 1;
      const double busy_all = busy_seconds(s0, s1, hz, &on_cpu);
      const double busy_s = busy_all / nw;
      const double raw_busy_s = double(s1.busy - s0.busy) / double(hz) / nw;
      const uint64_t wrx = s1.rx - s0.rx;
      // per worker core: packets per busy second of one core
      const double worker_mpps_mean = busy_all > 0 ? double(wrx) / busy_all / 1e6 : 0;
      const double worker_mpps = win_mpps.empty() ? worker_mpps_mean : median(win_mpps);
      const double sz = mean_size(patterns[si]);
      Json drops = Json::object(), events = Json::object();
      uint64_t drop_total = 0;
      for (size_t d = 0; d < all1.drops.size(); ++d)
        if (uint64_t n = all1.drops[d] - all0.drops[d]) {
          drops[std::string(dp::kDropNames[d])] = n;
          drop_total += n;
        }
      for (size_t e = 0; e < all1.events.size(); ++e)
        if (uint64_t n = all1.events[e] - all0.events[e])
          events[std::string(dp::kEventNames[e])] = n;
      const uint64_t sent = tr.sent - sent0, ok = tr.ok - ok0, bad = tr.bad - bad0;
      Json per_worker = Json::array();
      for (unsigned w = 0; w < nw; ++w) {
        double share = std::min(1.0, double(s1.wcpu[w] - s0.wcpu[w]) / 1e9 / wall);
        double b = double(s1.wbusy[w] - s0.wbusy[w]) / double(hz) * share;
        uint64_t n = s1.wrx[w] - s0.wrx[w];
        per_worker.push_back({{"lcore", workers[w]},
                              {"rx_packets", n},
                              {"busy_seconds", b},
                              {"mpps", b > 0 ? double(n) / b / 1e6 : 0}});
      }
      Json j{{"workload", wl_name(o.wl)},
             {"algo", crypto_wl ? std::string(crypto::info(o.algo).name) : "none"},
             {"size", o.sizes[si]},
             {"mean_frame_bytes", sz},
             {"tunnels", o.wl == Workload::kFwd ? 0 : o.tunnels},
             {"tunnels_with_traffic", o.wl == Workload::kFwd ? 0 : traffic_tunnels},
             {"routes", routes_eff},
             {"fib_routes_total", routes_eff + 3},
             {"workers", nw},
             {"mode", o.nic ? "nic" : "ring"},
             {"demote", o.demote && !o.nic},
             {"worker_mpps", worker_mpps},
             {"worker_mpps_mean", worker_mpps_mean},
             {"worker_gbps", worker_mpps * sz * 8 / 1000},
             {"worker_cycles_per_pkt", worker_mpps > 0 ? double(hz) / (worker_mpps * 1e6) : 0},
             {"worker_busy_fraction", wall > 0 ? busy_s / wall : 0},
             {"worker_on_cpu_fraction", on_cpu},
             {"worker_mpps_uncorrected", raw_busy_s > 0 ? double(wrx) / raw_busy_s / 1e6 / nw : 0},
             {"avg_rx_burst", s1.busy_polls > s0.busy_polls
                                  ? double(wrx) / double(s1.busy_polls - s0.busy_polls)
                                  : 0},
             {"per_worker", per_worker},
             {"delivered_mpps", double(m_ok) / wall / 1e6},
             {"delivered_gbps", double(m_ok) / wall / 1e6 * sz * 8 / 1000},
             {"window_seconds", wall},
             {"windows", win_mpps.size()},
             {"sent", sent},
             {"received_ok", ok},
             {"received_bad", bad},
             {"gateway_drops", drop_total},
             {"lost", int64_t(sent) - int64_t(ok + bad + drop_total)},
             {"drops", drops},
             {"events", events},
             {"tsc_hz", hz},
             {"setup_seconds", setup_s}};
      results.push_back(std::move(j));
      std::fprintf(stderr, "mpps:   size %-5s worker %.2f Mpps (%.0f cyc/pkt), delivered %.2f Mpps, bad %lu, drops %lu\n",
                   o.sizes[si].c_str(), worker_mpps, double(hz) / (worker_mpps * 1e6 + 1),
                   double(m_ok) / wall / 1e6, (unsigned long)bad, (unsigned long)drop_total);
    }
    gw->shutdown();
  }

  if (crypto_wl)
    for (size_t i = 0; i < patterns.size(); ++i)
      ceil_after[i] = measure_ceiling(workers[0], o.algo, o.wl == Workload::kEnc,
                                      ip_lens(patterns[i]), o.ceiling_seconds);
  for (size_t i = 0; i < results.size(); ++i) {
    Json& j = results[i];
    if (crypto_wl) {
      const auto& b = ceil_before[i];
      const auto& a = ceil_after[i];
      double cyc = (b.cyc_per_pkt_median + a.cyc_per_pkt_median) / 2;
      double mpps = cyc > 0 ? double(hz) / cyc / 1e6 : 0;
      double sz = j["mean_frame_bytes"].get<double>();
      j["ceiling_mpps"] = mpps;
      j["ceiling_gbps"] = mpps * sz * 8 / 1000;
      j["ceiling_cycles_per_pkt"] = cyc;
      j["ceiling_cycles_before"] = b.cyc_per_pkt_median;
      j["ceiling_cycles_after"] = a.cyc_per_pkt_median;
      j["ratio"] = mpps > 0 ? j["worker_mpps"].get<double>() / mpps : 0;
    } else {
      j["ceiling_mpps"] = nullptr;
      j["ratio"] = nullptr;
    }
    std::printf("RESULT %s\n", j.dump().c_str());
  }
  std::fflush(stdout);
  for (auto* io : {&lan_io, &wan_io}) {
    for (auto* r : io->rx) rte_ring_free(r);
    for (auto* r : io->tx) rte_ring_free(r);
  }
  rte_mempool_free(pool);
  rte_eal_cleanup();
  return rc;
}

}  // namespace
}  // namespace espgw::perf

int main(int argc, char** argv) {
  espgw::perf::Options o;
  if (!espgw::perf::parse(argc, argv, o)) {
    espgw::perf::usage();
    return 2;
  }
  return espgw::perf::run(o);
}
