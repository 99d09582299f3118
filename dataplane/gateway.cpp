#include "dataplane/gateway.h"

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <cstdio>

#include "crypto/ipsecmb_engine.h"
#include "dataplane/bgp_service.h"
#include "dataplane/ike_service.h"
#include "dataplane/port.h"
#include "dataplane/tables/sa.h"

namespace espgw::dp {

int g_hold_meta_offset = -1;

bool Gateway::init(const model::Config& cfg, bool configure_kernel, std::string* err) {
  cfg_ = &cfg;
  static const rte_mbuf_dynfield hold_desc = {"espgw_hold_meta", sizeof(HoldMeta),
                                              alignof(HoldMeta), 0};
  g_hold_meta_offset = rte_mbuf_dynfield_register(&hold_desc);
  if (g_hold_meta_offset < 0) return *err = "cannot register the mbuf dynfield", false;

  rt_ = std::make_unique<Runtime>();
  counters_ = std::make_unique<CounterSet>();
  rt_->counters = counters_.get();
  const auto& dpc = cfg.instance.dataplane;
  unsigned lc;
  RTE_LCORE_FOREACH_WORKER(lc) rt_->worker_lcores.push_back(lc);
  if (rt_->worker_lcores.empty()) return *err = "no worker lcore: give at least 2 lcores", false;
  if (rt_->worker_lcores.size() > kMaxWorkers) return *err = "too many worker lcores", false;
  rt_->n_workers = unsigned(rt_->worker_lcores.size());
  rt_->burst = dpc.burst;
  rt_->idle_sleep_us = dpc.idle_sleep_us;
  rt_->control_rate_per_sec = dpc.control_pps;

  const int socket = int(rte_socket_id());
  size_t qsz = rte_rcu_qsbr_get_memsize(RTE_MAX_LCORE);
  rt_->qsbr = static_cast<rte_rcu_qsbr*>(rte_zmalloc("espgw_qsbr", qsz, RTE_CACHE_LINE_SIZE));
  if (!rt_->qsbr || rte_rcu_qsbr_init(rt_->qsbr, RTE_MAX_LCORE) != 0)
    return *err = "RCU init failed", false;
  rt_->nexthops = static_cast<NextHop*>(
      rte_zmalloc("espgw_nh", sizeof(NextHop) * kMaxNextHops, RTE_CACHE_LINE_SIZE));
  if (!rt_->nexthops) return *err = "cannot allocate the next-hop table", false;
  rt_->to_control = rte_ring_create("espgw_to_ctl", 4096, socket, RING_F_SC_DEQ);
  rt_->sa_events = rte_ring_create("espgw_sa_ev", 1024, socket, RING_F_SC_DEQ);
  if (!rt_->to_control || !rt_->sa_events) return *err = "cannot create the control rings", false;
  for (unsigned i = 0; i < rt_->n_workers; ++i) {
    std::string n = "espgw_handoff" + std::to_string(i);
    rt_->handoff[i] = rte_ring_create(n.c_str(), 1024, socket, RING_F_SC_DEQ);
    if (!rt_->handoff[i]) return *err = "cannot create hand-off ring " + n, false;
  }
  tunnels_ = std::make_unique<std::atomic<TunnelRt*>[]>(kMaxTunnels);
  rt_->tunnels = tunnels_.get();
  if (auto probe = crypto::Engine::create(); !probe)
    return *err = "the IPsec-MB engine cannot be set up on this CPU", false;
  else
    std::printf("espgw: crypto engine: IPsec-MB %s\n", probe->arch());

  fib_ = std::make_unique<Fib>();
  if (!fib_->init("espgw_fib", socket, dpc.max_routes_v4, dpc.max_routes_v6, rt_->qsbr, err))
    return false;
  rt_->fib = fib_.get();
  if (!setup_ports(cfg, *rt_, err)) return false;
  if (configure_kernel && !cfg.instance.exception_iface.empty() &&
      !setup_exception_kernel(cfg, *rt_, err))
    return *err = "exception path: " + *err, false;
  ctl_ = std::make_unique<Control>(cfg, *rt_);
  return true;
}

bool Gateway::start(std::string* err) {
  // Workers are launched first but receive nothing until the configured state is installed
  // (Runtime::forwarding); every later change reaches them through the RCU-protected publish.
  wargs_.resize(rt_->n_workers);
  for (unsigned i = 0; i < rt_->n_workers; ++i) {
    wargs_[i] = {rt_.get(), i};
    rte_eal_remote_launch(worker_main, &wargs_[i], rt_->worker_lcores[i]);
  }
  launched_ = true;
  if (!ctl_->init(err)) return false;
  // IKE speaks from this instance's public IP; a config without one (the perf harness) has no
  // IKE service.
  if (cfg_->instance.index < cfg_->gateway.instances.size()) {
    if (auto ike = std::make_unique<IkeService>(*ctl_); ike->init(err))
      ctl_->add_service(std::move(ike));
    else
      return *err = "IKE: " + *err, false;
  }
  if (!add_bgp_service(*ctl_, err)) return false;
  register_telemetry(*rt_, *ctl_);
  rt_->forwarding.store(true, std::memory_order_release);
  return true;
}

void Gateway::shutdown() {
  if (down_ || !rt_) return;
  down_ = true;
  rt_->running.store(false);
  if (launched_) rte_eal_mp_wait_lcore();
  ctl_.reset();
  for (const auto& p : rt_->ports) {
    rte_eth_dev_stop(p.eth_id);
    rte_eth_dev_close(p.eth_id);
  }
  fib_.reset();
  rte_ring_free(rt_->to_control);
  rte_ring_free(rt_->sa_events);
  for (auto* h : rt_->handoff) rte_ring_free(h);
  rte_free(rt_->nexthops);
  rte_free(rt_->qsbr);
  rte_mempool_free(rt_->pool);
  rte_mempool_free(rt_->indirect_pool);
}

}  // namespace espgw::dp
