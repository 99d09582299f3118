// libFuzzer target for the worker's stages on whole bursts: classify, forward (IPv4/IPv6, TTL,
// ICMP errors, fragmentation), ESP out and ESP in on every algorithm, with and without ESN, raw
// and in UDP 4500. The real data plane (dp::Dataplane) runs on two lcores of an EAL (--no-huge) with net_ring ports;
// the fuzzer thread plays both neighbours.
//
// Input: records {flags, len_hi, len_lo, bytes[len]}. flags bit 0: 0 = an IP packet from the
// LAN host (the harness adds the Ethernet header), 1 = a raw frame on the WAN. Each record
// group is one burst. After the worker has taken a burst, every ESP packet it sent to the WAN
// is turned around (outer addresses swapped, to the gateway's WAN MAC) and fed back in, so the
// inbound path sees ESP with valid ICVs: each tunnel's inbound SA has its outbound SA's SPI and
// key (a loopback only a harness may build: the config loader refuses equal keys). It is a
// white-box test: it reads the data plane's rings and pools (dataplane/runtime.h). flags bit 1
// corrupts one byte (position from the next input byte) of the turned-around packets, bit 2
// drops them instead.
//
// Invariants: no crash, no sanitizer report, and every mbuf comes back to the pools after each
// input (nothing leaks in the hold queues, hand-off or reassembly of a burst).
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_eth_ring.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "dataplane/dataplane.h"
#include "dataplane/proto/pkt.h"
#include "dataplane/runtime.h"

using namespace espgw;

namespace {

constexpr unsigned kRing = 1024;
const uint8_t kHostMac[6] = {0x02, 0, 0, 0, 0, 0x0a};
const uint8_t kPeerMac[6] = {0x02, 0, 0, 0, 1, 0x0a};

struct Port {
  std::vector<rte_ring*> rx, tx;
  rte_ether_addr gw_mac{};
};

struct Harness {
  dp::Dataplane* gw = nullptr;
  Port lan, wan;
  rte_mempool* pool = nullptr;  // the harness's own frames
  unsigned base_gw = 0, base_indirect = 0, base_pool = 0;
  bool ok = false;
};

bool ring_port(const char* name, Port& p) {
  for (unsigned q = 0; q < 1; ++q)
    p.rx.push_back(rte_ring_create((std::string(name) + "_rx").c_str(), kRing, 0,
                                   RING_F_SP_ENQ | RING_F_SC_DEQ));
  for (unsigned q = 0; q < 2; ++q)
    p.tx.push_back(rte_ring_create((std::string(name) + "_tx" + std::to_string(q)).c_str(), kRing,
                                   0, RING_F_SP_ENQ | RING_F_SC_DEQ));
  for (auto* r : p.rx)
    if (!r) return false;
  for (auto* r : p.tx)
    if (!r) return false;
  return rte_eth_from_rings(name, p.rx.data(), unsigned(p.rx.size()), p.tx.data(),
                            unsigned(p.tx.size()), 0) >= 0;
}

// Tunnel i: an outbound SA and an inbound SA with the same SPI and key (a loopback: our own ESP
// comes back to the inbound SA), routes 10.100+i.0.0/16 and fd00:100:i::/48 into it.
bool add_tunnel(dp::Dataplane& d, unsigned i, crypto::Algo algo, bool esn, bool udp,
                std::string* err) {
  std::vector<uint8_t> k(crypto::info(algo).keymat_len());
  for (size_t b = 0; b < k.size(); ++b) k[b] = uint8_t(i * 37 + b * 11 + 1);
  dp::SaParams sa;
  sa.spi = 0x1000 + i;
  sa.algo = algo;
  sa.key = k.data();
  sa.key_len = k.size();
  sa.local = IpAddr::v4(0xc6336401);  // 198.51.100.1
  sa.remote = IpAddr::v4(0xc6336402);
  sa.udp_encap = udp;
  sa.esn = esn;
  sa.replay_window = 128;
  uint32_t out = d.add_sa(sa, err);
  sa.inbound = true;
  uint32_t in = out ? d.add_sa(sa, err) : 0;
  dp::TunnelParams tp;
  tp.name = "t" + std::to_string(i);
  tp.local = sa.local;
  tp.algo = algo;
  tp.udp_encap = udp;
  uint32_t t = in ? d.add_tunnel(tp, err) : 0;
  if (!t || !d.bind_tunnel(t, out, err) || !d.bind_tunnel(t, in, err)) return false;
  dp::NhSpec nh{dp::NhKind::kTunnel, 0, {}, t};
  return d.route_add(Prefix{IpAddr::v4(0x0a640000 + (i << 16)), 16}, dp::RouteSource::kStatic, nh,
                     err) &&
         d.route_add(*Prefix::parse("fd00:100:" + std::to_string(i) + "::/48"),
                     dp::RouteSource::kStatic, nh, err);
}

Harness* setup() {
  static Harness h;
  std::string prefix = "espgw-wfuzz-" + std::to_string(getpid());
  const char* args[] = {"worker_fuzz", "--no-huge",      "-m",          "512",
                        "--no-pci",    "-l",             "0-1",         "--file-prefix",
                        prefix.c_str(), "--log-level",   "lib.eal:error", "--no-telemetry"};
  if (rte_eal_init(int(sizeof args / sizeof args[0]), const_cast<char**>(args)) < 0) return &h;
  if (!ring_port("wf_lan", h.lan) || !ring_port("wf_wan", h.wan)) return &h;
  h.pool = rte_pktmbuf_pool_create("wf_gen", 4095, 0, 0, RTE_PKTMBUF_HEADROOM + 2048, 0);
  if (!h.pool) return &h;

  dp::Config c;
  c.configure_kernel = false;
  c.mbufs = 4096;
  c.max_routes_v4 = 1024;
  c.max_routes_v6 = 1024;
  c.ports.push_back({"lan", "net_ring_wf_lan", 1500,
                     {IfAddr{IpAddr::v4(0x0a010001), 24}, IfAddr{*IpAddr::parse("fd00:a::1"), 64}}});
  // small enough that the fuzzer reaches fragmentation and "too big"
  c.ports.push_back({"wan", "net_ring_wf_wan", 1400, {IfAddr{IpAddr::v4(0xc6336401), 24}}});
  std::string err;
  static std::unique_ptr<dp::Dataplane> gw = dp::Dataplane::create(c, &err);
  if (!gw || !gw->start(&err)) {
    std::fprintf(stderr, "worker_fuzz: %s\n", err.c_str());
    return &h;
  }
  const crypto::Algo algos[] = {crypto::Algo::kAesGcm128, crypto::Algo::kAesGcm256,
                                crypto::Algo::kChacha20Poly1305, crypto::Algo::kAesCbc128Sha256,
                                crypto::Algo::kAesGmac128};
  unsigned i = 0;
  for (crypto::Algo a : algos)
    for (bool esn : {false, true}) {
      if (!add_tunnel(*gw, i, a, esn, i % 3 == 0, &err)) {
        std::fprintf(stderr, "worker_fuzz: tunnel %u: %s\n", i, err.c_str());
        return &h;
      }
      ++i;
    }
  dp::NhSpec via;  // forwarded without a tunnel, to a next hop that resolves
  if (!gw->resolve_via(IpAddr::v4(0xc6336403), "", via, &err) ||
      !gw->route_add(Prefix{IpAddr::v4(0x0a090000), 16}, dp::RouteSource::kStatic, via, &err) ||
      !gw->route_commit(&err)) {
    std::fprintf(stderr, "worker_fuzz: routes: %s\n", err.c_str());
    return &h;
  }
  const uint16_t lan = *gw->port_index("lan"), wan = *gw->port_index("wan");
  for (auto [port, ip, mac] : {std::tuple{lan, "10.1.0.10", "02:00:00:00:00:0a"},
                               std::tuple{wan, "198.51.100.2", "02:00:00:00:01:0a"},
                               std::tuple{wan, "198.51.100.3", "02:00:00:00:01:0b"}}) {
    std::array<uint8_t, 6> m;
    if (!dp::parse_mac(mac, m) || !gw->add_neighbor(port, *IpAddr::parse(ip), m, &err)) return &h;
  }
  gw->enable_forwarding();
  h.gw = gw.get();
  if (std::getenv("ESPGW_FUZZ_STATS"))  // what the inputs reached (ESPGW_FUZZ_STATS=1)
    std::atexit([] {
      const auto& c = h.gw->counters();
      for (auto e : {dp::Event::forwarded, dp::Event::esp_encrypted, dp::Event::esp_decrypted})
        std::fprintf(stderr, "worker_fuzz: %s %llu\n",
                     std::string(dp::kEventNames[size_t(e)]).c_str(),
                     (unsigned long long)c.total_event(e));
      for (size_t d = 0; d < dp::kDropNames.size(); ++d)
        if (uint64_t n = c.total_drop(dp::Drop(d)))
          std::fprintf(stderr, "worker_fuzz: drop %s %llu\n",
                       std::string(dp::kDropNames[d]).c_str(), (unsigned long long)n);
    });
  const auto ports = gw->ports();
  std::memcpy(h.lan.gw_mac.addr_bytes, ports[lan].mac.data(), 6);
  std::memcpy(h.wan.gw_mac.addr_bytes, ports[wan].mac.data(), 6);
  h.ok = true;
  return &h;
}

rte_mbuf* frame(Harness& h, const uint8_t* eth_dst, const uint8_t* src, const uint8_t* data,
                size_t len, bool add_eth) {
  rte_mbuf* m = rte_pktmbuf_alloc(h.pool);
  if (!m) return nullptr;
  size_t total = len + (add_eth ? dp::kEthHdrLen : 0);
  if (total > 2048 || total < 1) {
    rte_pktmbuf_free(m);
    return nullptr;
  }
  uint8_t* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, uint16_t(total)));
  if (add_eth) {
    std::memcpy(p, eth_dst, 6);
    std::memcpy(p + 6, src, 6);
    dp::store_be16(p + 12, len && (data[0] >> 4) == 6 ? 0x86dd : 0x0800);
    p += dp::kEthHdrLen;
  }
  std::memcpy(p, data, len);
  return m;
}

// Waits until the worker has taken everything from the rx rings and finished that poll. The
// bound is wall-clock time, not a number of spins: a campaign shares the machine (nice, other
// jobs), and a worker thread that is not scheduled for a while must not look like a leak.
void settle(Harness& h) {
  const dp::Runtime& rt = dp::runtime_of(*h.gw);
  const unsigned lc = rt.worker_lcores[0];
  const uint64_t deadline = rte_get_timer_cycles() + 30 * rte_get_timer_hz();
  auto wait = [&](auto&& done, const char* what) {
    while (!done()) {
      if (rte_get_timer_cycles() > deadline) {
        std::fprintf(stderr, "worker_fuzz: the worker did not %s within 30 s\n", what);
        std::abort();
      }
      rte_pause();
    }
  };
  wait([&] {
    bool empty = true;
    for (auto* r : h.lan.rx) empty &= rte_ring_empty(r) != 0;
    for (auto* r : h.wan.rx) empty &= rte_ring_empty(r) != 0;
    return empty;
  }, "take the burst");
  uint64_t p0 = __atomic_load_n(&rt.counters->lcore[lc].polls, __ATOMIC_RELAXED);
  wait([&] { return __atomic_load_n(&rt.counters->lcore[lc].polls, __ATOMIC_RELAXED) >= p0 + 2; },
       "finish the poll");
}

// Everything the control thread would get (ARP, ND, held packets) and SA events: freed.
void drain_control(Harness& h) {
  dp::Runtime& rt = dp::runtime_of(*h.gw);
  void* objs[64];
  unsigned n;
  while ((n = rte_ring_dequeue_burst(rt.to_control, objs, 64, nullptr)) > 0)
    for (unsigned i = 0; i < n; ++i) rte_pktmbuf_free(static_cast<rte_mbuf*>(objs[i]));
  while (rte_ring_dequeue_burst(rt.sa_events, objs, 64, nullptr) > 0) {
  }
}

// Collects what the gateway sent on a port; ESP to the peer goes to `esp`, the rest is freed.
void collect(Port& p, std::vector<rte_mbuf*>* esp) {
  void* objs[64];
  for (auto* r : p.tx) {
    unsigned n;
    while ((n = rte_ring_dequeue_burst(r, objs, 64, nullptr)) > 0)
      for (unsigned i = 0; i < n; ++i) {
        auto* m = static_cast<rte_mbuf*>(objs[i]);
        const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
        bool is_esp = esp && m->data_len >= 34 && dp::load_be16(f + 12) == 0x0800 &&
                      (f[23] == 50 || (f[23] == 17 && m->data_len >= 42 &&
                                       dp::load_be16(f + 36) == 4500));
        if (is_esp && esp->size() < kRing / 2) esp->push_back(m);
        else rte_pktmbuf_free(m);
      }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness* h = setup();
  if (!h->ok) std::abort();  // the harness itself must come up
  dp::Runtime& rt = dp::runtime_of(*h->gw);
  if (!h->base_pool) {
    h->base_gw = rte_mempool_avail_count(rt.pool);
    h->base_indirect = rte_mempool_avail_count(rt.indirect_pool);
    h->base_pool = rte_mempool_avail_count(h->pool);
  }
  uint8_t flags_all = 0, corrupt_at = 0;
  std::vector<rte_mbuf*> lan_in, wan_in;
  for (size_t off = 0; off + 3 <= size && lan_in.size() + wan_in.size() < 64;) {
    uint8_t flags = data[off];
    size_t len = size_t(data[off + 1]) << 8 | data[off + 2];
    off += 3;
    if (len > size - off) len = size - off;
    flags_all |= flags;
    if (flags & 1) {
      if (rte_mbuf* m = frame(*h, nullptr, nullptr, data + off, len, false)) wan_in.push_back(m);
    } else {
      if (rte_mbuf* m = frame(*h, h->lan.gw_mac.addr_bytes, kHostMac, data + off, len, true))
        lan_in.push_back(m);
    }
    off += len;
    if (off < size) corrupt_at = data[off - 1];
  }
  unsigned n = rte_ring_enqueue_burst(h->lan.rx[0], reinterpret_cast<void**>(lan_in.data()),
                                      unsigned(lan_in.size()), nullptr);
  for (size_t i = n; i < lan_in.size(); ++i) rte_pktmbuf_free(lan_in[i]);
  n = rte_ring_enqueue_burst(h->wan.rx[0], reinterpret_cast<void**>(wan_in.data()),
                             unsigned(wan_in.size()), nullptr);
  for (size_t i = n; i < wan_in.size(); ++i) rte_pktmbuf_free(wan_in[i]);
  settle(*h);

  // the gateway's ESP, turned around into its own inbound SAs
  std::vector<rte_mbuf*> esp;
  collect(h->wan, (flags_all & 4) ? nullptr : &esp);
  collect(h->lan, nullptr);
  for (rte_mbuf* m : esp) {
    uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
    std::memcpy(f, h->wan.gw_mac.addr_bytes, 6);
    std::memcpy(f + 6, kPeerMac, 6);
    uint8_t a[4];  // swap the outer addresses (the IPv4 checksum does not change)
    std::memcpy(a, f + 26, 4);
    std::memcpy(f + 26, f + 30, 4);
    std::memcpy(f + 30, a, 4);
    if ((flags_all & 2) && m->data_len > 34) f[34 + corrupt_at % (m->data_len - 34)] ^= 0x5a;
  }
  n = rte_ring_enqueue_burst(h->wan.rx[0], reinterpret_cast<void**>(esp.data()),
                             unsigned(esp.size()), nullptr);
  for (size_t i = n; i < esp.size(); ++i) rte_pktmbuf_free(esp[i]);
  settle(*h);
  collect(h->wan, nullptr);
  collect(h->lan, nullptr);
  drain_control(*h);

  // every mbuf is back (the worker holds none between bursts)
  if (rte_mempool_avail_count(rt.pool) != h->base_gw ||
      rte_mempool_avail_count(rt.indirect_pool) != h->base_indirect ||
      rte_mempool_avail_count(h->pool) != h->base_pool) {
    std::fprintf(stderr, "worker_fuzz: mbufs leaked: gateway %u/%u indirect %u/%u harness %u/%u\n",
                 rte_mempool_avail_count(rt.pool), h->base_gw,
                 rte_mempool_avail_count(rt.indirect_pool), h->base_indirect,
                 rte_mempool_avail_count(h->pool), h->base_pool);
    std::abort();
  }
  return 0;
}
