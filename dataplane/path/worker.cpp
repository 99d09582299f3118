#include "dataplane/path/worker.h"

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
    std::fprintf(stderr, "espgw: worker %u: cannot set up the crypto engine; stopping\n", q_);
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

// RFC 4861 7.1.1 / 7.1.2 checks that need no state, done here so that only plausible NS/NA
// reach the control thread: hop limit 255 (never forwarded), code 0, and a destination that
// is ours: one of the port's addresses, a solicited-node multicast address or all-nodes.
inline bool Worker::nd_acceptable(const uint8_t* f, const Parsed& p, const PortRt& port) const {
  const uint8_t* ip6 = f + p.l3_off;
  if (ip6[7] != 255 || p.l4_off + 2 > p.l3_off + p.l3_len || f[p.l4_off + 1] != 0) return false;
  const uint8_t* dst = ip6 + 24;
  static const uint8_t kSolicited[13] = {0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff};
  static const uint8_t kAllNodes[16] = {0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  if (std::memcmp(dst, kSolicited, 13) == 0 || std::memcmp(dst, kAllNodes, 16) == 0) return true;
  for (const auto& a : port.addrs)
    if (a.addr.is_v6() && std::memcmp(a.addr.bytes.data(), dst, 16) == 0) return true;
  return false;
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

inline void Worker::process(uint16_t pi, rte_mbuf** pkts, unsigned n, bool count_rx) {
  const PortRt& port = rt_->ports[pi];
  const bool from_kernel = port.exception;
  RouteBatch& b = rx_batch_;
  rte_mbuf* ctl[kMaxBurst];
  unsigned nc = 0;
  uint64_t bytes = 0;

  for (unsigned i = 0; i < n; ++i) {
    if (i + 2 < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 2], void*));
    rte_mbuf* m = pkts[i];
    bytes += m->pkt_len;
    if (m->nb_segs != 1) {
      drop(m, Drop::runt);
      continue;
    }
    const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
    const bool v6 = m->data_len >= kEthHdrLen && load_be16(f + 12) == kEtherTypeIpv6;
    Parsed& p = b.slot(v6);  // committed below if the packet is to be routed
    ParseResult r = parse_frame(f, m->data_len, p);
    if (!r.is_ok()) {
      drop(m, from_kernel && r.reason == Drop::unknown_ethertype ? Drop::exception_unsupported
                                                                 : r.reason);
      continue;
    }
    if (from_kernel) {
      if (p.l3 == L3::kArp) {
        drop(m, Drop::exception_unsupported);
        continue;
      }
      c_.event(Event::from_exception);
    } else if (!(f[0] & 1) &&
               !rte_is_same_ether_addr(reinterpret_cast<const rte_ether_addr*>(f), &port.mac)) {
      drop(m, Drop::not_for_us_l2);
      continue;
    }
    if (p.l3 == L3::kArp) {
      if (!control_allowed(pi)) {
        drop(m, Drop::control_rate_limited);
        continue;
      }
      c_.event(Event::arp_to_control);
      ctl[nc++] = m;
      continue;
    }
    // trim Ethernet padding so lengths below are the IP lengths
    uint32_t want = uint32_t(p.l3_off) + p.l3_len;
    if (m->data_len > want) rte_pktmbuf_trim(m, uint16_t(m->data_len - want));
    if (p.l3 == L3::kIpv4) {
      uint8_t d0 = f[p.l3_off + 16];
      if (d0 >= 224) {  // multicast, class E, limited broadcast
        drop(m, from_kernel ? Drop::exception_unsupported : Drop::multicast);
        continue;
      }
      b.commit(m, v6, pi);
    } else {
      bool mcast = f[p.l3_off + 24] == 0xff;
      if (p.l4_proto == 58 && !from_kernel && p.l4_off < m->data_len) {
        uint8_t type = f[p.l4_off];
        if (type == 135 || type == 136) {  // neighbour solicitation / advertisement
          if (!nd_acceptable(f, p, port)) {
            drop(m, Drop::nd_invalid);
            continue;
          }
          if (!control_allowed(pi)) {
            drop(m, Drop::control_rate_limited);
            continue;
          }
          c_.event(Event::nd_to_control);
          ctl[nc++] = m;
          continue;
        }
      }
      if (mcast) {
        drop(m, from_kernel ? Drop::exception_unsupported : Drop::multicast);
        continue;
      }
      b.commit(m, v6, pi);
    }
  }
  if (count_rx) {
    bump(c_.ports[pi].rx_packets, n);
    bump(c_.ports[pi].rx_bytes, bytes);
  }

  if (nc) {
    for (unsigned i = 0; i < nc; ++i) {
      hold_meta(ctl[i])->family = 0;  // a protocol packet for the control thread, not held
      hold_meta(ctl[i])->port = pi;
    }
    unsigned q =
        rte_ring_mp_enqueue_burst(rt_->to_control, reinterpret_cast<void**>(ctl), nc, nullptr);
    for (unsigned i = q; i < nc; ++i) drop(ctl[i], Drop::control_ring_full);
  }
  route(b, from_kernel);
  drain();
}

}  // namespace

int worker_main(void* arg) {
  auto* a = static_cast<WorkerArgs*>(arg);
  Worker w(a->rt, a->index);
  w.run();
  return 0;
}

}  // namespace espgw::dp
