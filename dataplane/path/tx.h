// Egress: the per-port tx buffers (flushed after every poll), the last step for a routed packet
// (neighbour lookup, Ethernet rewrite, tx), and the ways out of the fast path: packets held for
// neighbour resolution and protocol packets for the control thread (rate-limited per port), and
// packets for the host kernel through the exception port.
//
// Internal to dataplane/path/worker.cpp and included only there (see stages.h): inline member
// functions of Worker in an anonymous namespace, so the worker stays one translation unit and
// the compiler inlines the stages as before.
#pragma once

#include "dataplane/path/stages.h"

namespace espgw::dp {
namespace {

inline void Worker::drop(rte_mbuf* m, Drop d) {
  c_.drop(d);
  rte_pktmbuf_free(m);
}

inline void Worker::tx(uint16_t pi, rte_mbuf* m) {
  TxBuf& t = tx_[pi];
  t.m[t.n++] = m;
  if (t.n == kTxBuf) flush(pi);
}

inline void Worker::flush(uint16_t pi) {
  TxBuf& t = tx_[pi];
  if (!t.n) return;
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < t.n; ++i) bytes += t.m[i]->pkt_len;
  uint16_t sent = rte_eth_tx_burst(rt_->ports[pi].eth_id, q_, t.m, t.n);
  for (uint16_t i = sent; i < t.n; ++i) {
    bytes -= t.m[i]->pkt_len;
    drop(t.m[i], Drop::tx_full);
  }
  bump(c_.ports[pi].tx_packets, sent);
  bump(c_.ports[pi].tx_bytes, bytes);
  t.n = 0;
}

inline void Worker::flush_all() {
  for (uint16_t pi = 0; pi < rt_->ports.size(); ++pi) flush(pi);
}

inline void Worker::send(uint16_t pi, rte_mbuf* m) { tx(pi, m); }

inline void Worker::to_exception(rte_mbuf* m) {
  if (rt_->exception_port == Runtime::kNoPort) return drop(m, Drop::exception_unsupported);
  const PortRt& x = rt_->ports[rt_->exception_port];
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  eth->dst_addr = x.peer_mac;
  eth->src_addr = x.mac;
  c_.event(Event::to_exception);
  send(rt_->exception_port, m);
}

// Token bucket per port for what goes to the control thread (burst: 100 ms worth).
inline bool Worker::control_allowed(uint16_t pi) {
  CtlBucket& b = ctl_bucket_[pi];
  const uint64_t rate = rt_->control_rate_per_sec;
  uint64_t now = rte_rdtsc();
  uint64_t add = (now - b.last) * rate / tsc_hz_;
  if (add) {
    b.tokens = std::min(rate / 10 + 1, b.tokens + add);
    b.last = now;
  }
  if (!b.tokens) return false;
  --b.tokens;
  return true;
}

// Hands m to the control thread to resolve (port, ip) and transmit later.
inline void Worker::hold(rte_mbuf* m, uint16_t out_pi, uint8_t family, const uint8_t* ip) {
  if (!control_allowed(out_pi)) {
    drop(m, Drop::control_rate_limited);
    return;
  }
  HoldMeta* h = hold_meta(m);
  h->family = family;
  h->port = out_pi;
  std::memcpy(h->ip, ip, family == 4 ? 4 : 16);
  if (rte_ring_mp_enqueue(rt_->to_control, m) != 0) {
    drop(m, Drop::control_ring_full);
    return;
  }
  c_.event(Event::held_for_neighbor);
}

// Final step for one packet whose egress port is known: neighbour, L2 rewrite, tx.
inline void Worker::emit(rte_mbuf* m, const Parsed& p, const NextHop& nh) {
  const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint8_t* dst = f + p.l3_off + (p.l3 == L3::kIpv4 ? 16 : 24);
  uint8_t family = p.l3 == L3::kIpv4 ? 4 : 6;
  NeighEntry* ne = nh.neigh;
  const uint8_t* nip = dst;
  if (nh.kind == NhKind::kConnected) {
    NeighKey k = make_neigh_key(nh.port, family, dst);
    void* data = nullptr;
    ne = rte_hash_lookup_data(rt_->neigh_hash, &k, &data) >= 0 ? static_cast<NeighEntry*>(data)
                                                               : nullptr;
  } else {
    nip = ne->ip.bytes.data();
  }
  uint64_t mac = ne ? ne->mac.load(std::memory_order_acquire) : 0;
  if (!(mac & NeighEntry::kValid)) {
    hold(m, nh.port, family, nip);
    return;
  }
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  NeighEntry::unpack(mac, eth->dst_addr);
  eth->src_addr = rt_->ports[nh.port].mac;
  c_.event(Event::forwarded);
  send(nh.port, m);
}

}  // namespace
}  // namespace espgw::dp
