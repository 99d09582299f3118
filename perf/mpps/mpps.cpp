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
//
// Files: traffic.{h,cpp} (addressing, size patterns, generator ports, the generator and sink),
// measure.{h,cpp} (worker counter snapshots, busy seconds, RESULT JSON parts), ceiling.{h,cpp}
// (the raw IPsec-MB ceiling); here the options, the gateway's configuration and the run.
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "crypto/algo.h"
#include "dataplane/dataplane.h"
#include "dataplane/proto/pkt.h"
#include "perf/mpps/ceiling.h"
#include "perf/mpps/measure.h"
#include "perf/mpps/traffic.h"

namespace espgw::perf {
namespace {

constexpr double kWindowSec = 0.05;     // sub-window for the median worker rate

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

std::string ip4(uint32_t a) { return IpAddr::v4(a).str(); }

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
      uint64_t drop_total = 0;
      const Json drops = drop_deltas(all0, all1, &drop_total);
      const Json events = event_deltas(all0, all1);
      const uint64_t sent = tr.sent - sent0, ok = tr.ok - ok0, bad = tr.bad - bad0;
      const Json per_worker = per_worker_json(s0, s1, workers, hz, wall);
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
      add_ceiling(j, ceil_before[i], ceil_after[i], hz);
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
