// espgw --config FILE [--check] [-- EAL args]
#include <signal.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <rte_mbuf_dyn.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "control/model/config.h"
#include "dataplane/control.h"
#include "dataplane/fib.h"
#include "crypto/ipsecmb_engine.h"
#include "dataplane/port.h"
#include "dataplane/sa.h"
#include "dataplane/runtime.h"
#include "dataplane/worker.h"

namespace espgw::dp {
int g_hold_meta_offset = -1;
}

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop.store(true); }

void usage(FILE* f) {
  std::fprintf(f,
               "usage: espgw --config FILE [--check] [-- EAL-ARGS...]\n"
               "  --config FILE  gateway resource model (YAML)\n"
               "  --check        validate the config and exit (0 = valid)\n"
               "  EAL-ARGS       extra DPDK EAL arguments, appended to the ones derived from the\n"
               "                 config (lcores, memory, file prefix, devices)\n");
}

std::vector<std::string> eal_args(const espgw::model::Config& cfg,
                                  const std::vector<std::string>& extra) {
  const auto& in = cfg.instance;
  std::vector<std::string> a{"espgw", "-l", in.dataplane.lcores, "--file-prefix", in.file_prefix,
                             "-m", std::to_string(in.dataplane.memory_mb)};
  if (!in.dataplane.hugepages) a.push_back("--no-huge");
  bool pci = false;
  for (const auto& p : in.ports) {
    if (p.is_vdev) {
      a.push_back("--vdev=" + p.device);
    } else {
      a.push_back("-a");
      a.push_back(p.device);
      pci = true;
    }
  }
  if (!pci) a.push_back("--no-pci");
  a.push_back("--vdev=" + espgw::dp::exception_vdev(in.exception_iface));
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

int fail(const std::string& msg) {
  std::fprintf(stderr, "espgw: %s\n", msg.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace espgw;
  std::string config_path;
  bool check_only = false;
  std::vector<std::string> extra;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      for (++i; i < argc; ++i) extra.push_back(argv[i]);
      break;
    }
    if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a == "--check") {
      check_only = true;
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "espgw: unknown argument '%s'\n", a.c_str());
      usage(stderr);
      return 2;
    }
  }
  if (config_path.empty()) {
    usage(stderr);
    return 2;
  }
  model::LoadResult lr = model::load_config(config_path);
  if (!lr.errors.empty()) {
    for (const auto& e : lr.errors) std::fprintf(stderr, "espgw: %s\n", e.str().c_str());
    std::fprintf(stderr, "espgw: %zu error(s) in %s; nothing started\n", lr.errors.size(),
                 config_path.c_str());
    return 2;
  }
  const model::Config& cfg = *lr.config;
  if (check_only) {
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }

  std::vector<std::string> ea = eal_args(cfg, extra);
  std::vector<char*> eargv;
  for (auto& s : ea) eargv.push_back(s.data());
  eargv.push_back(nullptr);
  if (rte_eal_init(int(ea.size()), eargv.data()) < 0)
    return fail(std::string("EAL init failed: ") + rte_strerror(rte_errno) +
                " (another espgw with the same file_prefix running?)");

  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);

  static const rte_mbuf_dynfield hold_desc = {"espgw_hold_meta", sizeof(dp::HoldMeta),
                                              alignof(dp::HoldMeta), 0};
  dp::g_hold_meta_offset = rte_mbuf_dynfield_register(&hold_desc);
  if (dp::g_hold_meta_offset < 0) return fail("cannot register mbuf dynfield");

  auto rt = std::make_unique<dp::Runtime>();
  auto counters = std::make_unique<dp::CounterSet>();
  rt->counters = counters.get();
  const auto& dpc = cfg.instance.dataplane;
  unsigned lc;
  RTE_LCORE_FOREACH_WORKER(lc) rt->worker_lcores.push_back(lc);
  if (rt->worker_lcores.empty()) return fail("no worker lcore: give at least 2 lcores");
  rt->n_workers = unsigned(rt->worker_lcores.size());
  rt->burst = dpc.burst;
  rt->idle_sleep_us = dpc.idle_sleep_us;

  size_t qsz = rte_rcu_qsbr_get_memsize(RTE_MAX_LCORE);
  rt->qsbr = static_cast<rte_rcu_qsbr*>(rte_zmalloc("espgw_qsbr", qsz, RTE_CACHE_LINE_SIZE));
  if (!rt->qsbr || rte_rcu_qsbr_init(rt->qsbr, RTE_MAX_LCORE) != 0) return fail("RCU init failed");
  rt->nexthops = static_cast<dp::NextHop*>(
      rte_zmalloc("espgw_nh", sizeof(dp::NextHop) * dp::kMaxNextHops, RTE_CACHE_LINE_SIZE));
  if (!rt->nexthops) return fail("cannot allocate the next-hop table");
  rt->to_control = rte_ring_create("espgw_to_ctl", 4096, int(rte_socket_id()), RING_F_SC_DEQ);
  if (!rt->to_control) return fail("cannot create the control ring");

  rt->sa_events = rte_ring_create("espgw_sa_ev", 1024, int(rte_socket_id()), RING_F_SC_DEQ);
  if (!rt->sa_events) return fail("cannot create the SA event ring");
  for (unsigned i = 0; i < rt->n_workers; ++i) {
    std::string n = "espgw_handoff" + std::to_string(i);
    rt->handoff[i] = rte_ring_create(n.c_str(), 1024, int(rte_socket_id()), RING_F_SC_DEQ);
    if (!rt->handoff[i]) return fail("cannot create hand-off ring " + n);
  }
  auto tunnels = std::make_unique<std::atomic<dp::TunnelRt*>[]>(dp::kMaxTunnels);
  rt->tunnels = tunnels.get();
  if (auto probe = espgw::crypto::Engine::create(); !probe)
    return fail("the IPsec-MB engine cannot be set up on this CPU");
  else
    std::printf("espgw: crypto engine: IPsec-MB %s\n", probe->arch());

  std::string err;
  auto fib = std::make_unique<dp::Fib>();
  if (!fib->init("espgw_fib", int(rte_socket_id()), dpc.max_routes_v4, dpc.max_routes_v6,
                 rt->qsbr, &err))
    return fail(err);
  rt->fib = fib.get();
  if (!dp::setup_ports(cfg, *rt, &err)) return fail(err);
  if (!dp::setup_exception_kernel(cfg, *rt, &err)) return fail("exception path: " + err);

  // Workers start before the control thread installs routes: they read the (empty) FIB, and
  // every later change reaches them through the RCU-protected publish.
  std::vector<dp::WorkerArgs> wargs(rt->n_workers);
  for (unsigned i = 0; i < rt->n_workers; ++i) {
    wargs[i] = {rt.get(), i};
    rte_eal_remote_launch(dp::worker_main, &wargs[i], rt->worker_lcores[i]);
  }
  auto ctl = std::make_unique<dp::Control>(cfg, *rt);
  int rc = 0;
  if (!ctl->init(&err)) {
    std::fprintf(stderr, "espgw: %s\n", err.c_str());
    rc = 1;
  } else {
    dp::register_telemetry(*rt, *ctl);
    std::printf("espgw: %s instance %u up: %zu data port(s), %u worker(s), control socket %s\n",
                cfg.gateway.name.c_str(), cfg.instance.index, rt->ports.size() - 1, rt->n_workers,
                cfg.instance.control_socket.c_str());
    std::fflush(stdout);
    ctl->run(g_stop);
    std::printf("espgw: stopping\n");
  }
  rt->running.store(false);
  rte_eal_mp_wait_lcore();
  ctl.reset();
  for (const auto& p : rt->ports) {
    rte_eth_dev_stop(p.eth_id);
    rte_eth_dev_close(p.eth_id);
  }
  // everything that lives in DPDK memory goes before the EAL does
  fib.reset();
  rte_ring_free(rt->to_control);
  rte_ring_free(rt->sa_events);
  for (auto* h : rt->handoff) rte_ring_free(h);
  rte_free(rt->nexthops);
  rte_free(rt->qsbr);
  rte_mempool_free(rt->pool);
  rte_mempool_free(rt->indirect_pool);
  rte_eal_cleanup();
  return rc;
}
