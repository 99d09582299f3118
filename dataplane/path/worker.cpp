// The worker (one per lcore, rte_eal_remote_launch entry point worker_main): set-up, the poll loop
// (inbound ESP handed off by other workers, rx bursts on its queues, tx flush, busy/idle
// accounting, idle sleep, RCU quiescent states) and drain(), which runs the stages a burst queued
// work for. The stages are inline members of Worker in the headers of this directory, included
// here only, so the whole worker is this one translation unit (see stages.h).
#include "dataplane/path/worker.h"

#include "dataplane/log.h"

#include "dataplane/path/classify.h"
#include "dataplane/path/esp_common.h"
#include "dataplane/path/esp_in.h"
#include "dataplane/path/esp_out.h"
#include "dataplane/path/forward.h"
#include "dataplane/path/stages.h"
#include "dataplane/path/tx.h"

namespace espgw::dp {
namespace {

inline Worker::Worker(Runtime* rt, unsigned index)
    : rt_(rt), q_(uint16_t(index)), lcore_(rte_lcore_id()), c_(rt->counters->lcore[lcore_]) {
  tsc_hz_ = rte_get_tsc_hz();
  icmp_tokens_ = rt->icmp_rate_per_sec / 10 + 1;
  for (auto& b : ctl_bucket_) b = {rt->control_rate_per_sec / 10 + 1, rte_rdtsc()};
  icmp_last_ = rte_rdtsc();
  for (auto& t : tx_) t.n = 0;
  engine_ = crypto::Engine::create();
  for (uint16_t pi = 0; pi < rt->ports.size(); ++pi)
    for (uint16_t q = 0; q < rt->ports[pi].nb_rxq; ++q)
      if (q % rt->n_workers == index && n_polls_ < kMaxPolls) polls_[n_polls_++] = {pi, q};
}

inline void Worker::run() {
  if (!engine_) {
    // before the loop: a worker that cannot encrypt stops the gateway
    logging::logf(logging::Level::kError, "worker %u: cannot set up the crypto engine; stopping", q_);
    rt_->running.store(false);
    return;
  }
  // Not yet an RCU reader: the control thread's grace periods while it installs the
  // configuration do not wait for workers that read nothing.
  while (!rt_->forwarding.load(std::memory_order_acquire) &&
         rt_->running.load(std::memory_order_relaxed))
    rte_delay_us_sleep(100);
  rte_rcu_qsbr_thread_register(rt_->qsbr, lcore_);
  rte_rcu_qsbr_thread_online(rt_->qsbr, lcore_);
  rte_mbuf* pkts[kMaxBurst];
  const unsigned burst = std::min(rt_->burst, kMaxBurst);
  unsigned idle = 0;
  while (rt_->running.load(std::memory_order_relaxed)) {
    rte_rcu_qsbr_quiescent(rt_->qsbr, lcore_);
    unsigned got = 0;
    const uint64_t t0 = rte_rdtsc();
    if (rte_ring* h = rt_->handoff[q_]) {  // inbound ESP whose SA this worker owns
      unsigned n = rte_ring_sc_dequeue_burst(h, reinterpret_cast<void**>(pkts), burst, nullptr);
      for (unsigned i = 0; i < n; ++i) process(hold_meta(pkts[i])->port, &pkts[i], 1, false);
      got += n;
    }
    for (unsigned i = 0; i < n_polls_; ++i) {
      const uint16_t pi = polls_[i].port;
      uint16_t n = rte_eth_rx_burst(rt_->ports[pi].eth_id, polls_[i].queue, pkts, uint16_t(burst));
      if (n == 0) continue;
      got += n;
      process(pi, pkts, n, true);
    }
    flush_all();
    bump(c_.polls);
    if (got) {
      bump(c_.busy_polls);
      bump(c_.busy_cycles, rte_rdtsc() - t0);
      bump(c_.rx_total, got);
      idle = 0;
    } else if (rt_->idle_sleep_us && ++idle >= kIdlePollsBeforeSleep) {
      // Virtual mode courtesy: an idle worker gives the core back for a moment. It goes
      // offline for RCU first so the control thread never waits on a sleeping worker.
      rte_rcu_qsbr_thread_offline(rt_->qsbr, lcore_);
      rte_delay_us_sleep(rt_->idle_sleep_us);
      rte_rcu_qsbr_thread_online(rt_->qsbr, lcore_);
    }
  }
  flush_all();
  rte_rcu_qsbr_thread_offline(rt_->qsbr, lcore_);
  rte_rcu_qsbr_thread_unregister(rt_->qsbr, lcore_);
}

// Runs the stages that packets of this burst were queued for, until none is left (a packet
// may go rx -> decrypt -> route -> encrypt -> route; bounded against loops).
inline void Worker::drain() {
  for (int round = 0; round < 4 && (n_in_ || n_out_ || n_gen_); ++round) {
    if (n_in_) esp_in_run();
    if (n_out_) esp_out_run();
    if (n_gen_) route_generated();
  }
  for (unsigned i = 0; i < n_in_; ++i) drop(in_[i].m, Drop::tunnel_loop);
  for (unsigned i = 0; i < n_out_; ++i) drop(out_[i].m, Drop::tunnel_loop);
  for (unsigned i = 0; i < n_gen_; ++i) drop(gen_[i], Drop::tunnel_loop);
  n_in_ = n_out_ = n_gen_ = 0;
}

}  // namespace

int worker_main(void* arg) {
  auto* a = static_cast<WorkerArgs*>(arg);
  Worker w(a->rt, a->index);
  w.run();
  return 0;
}

}  // namespace espgw::dp
