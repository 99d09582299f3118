// Helpers shared by the ESP stages (esp_in.h, esp_out.h): per-SA drop counters, SA events for the
// control thread (soft/hard expiry), byte/packet lifetime accounting (RFC 4301 4.4.2.1), and TCP
// MSS clamping of tunnelled traffic.
//
// Internal to dataplane/path/worker.cpp and included only there (see stages.h): inline member
// functions of Worker in an anonymous namespace, so the worker stays one translation unit and
// the compiler inlines the stages as before.
#pragma once

#include "dataplane/path/stages.h"

namespace espgw::dp {
namespace {

inline void Worker::sa_drop(SaRt* sa, SaDrop sd, rte_mbuf* m, Drop d) {
  sa->drops[size_t(sd)].fetch_add(1, std::memory_order_relaxed);
  drop(m, d);
}

inline void Worker::sa_event(SaRt* sa, SaEvent e) {
  uintptr_t v = uintptr_t(sa->id) << 8 | uintptr_t(e);
  rte_ring_mp_enqueue(rt_->sa_events, reinterpret_cast<void*>(v));
}

// Byte/packet lifetimes (RFC 4301 4.4.2.1); returns false once the hard limit is passed.
// b0/n0 (optional): the SA's bytes and packets before these.
inline bool Worker::account(SaRt* sa, uint64_t bytes, uint64_t packets, uint64_t* b0,
                            uint64_t* n0) {
  uint64_t b, n;
  if (sa->inbound) {
    // one writer per inbound SA (its owner worker): plain stores, no locked instructions
    b = sa->bytes.load(std::memory_order_relaxed) + bytes;
    n = sa->packets.load(std::memory_order_relaxed) + packets;
    sa->bytes.store(b, std::memory_order_relaxed);
    sa->packets.store(n, std::memory_order_relaxed);
  } else {
    b = sa->bytes.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    n = sa->packets.fetch_add(packets, std::memory_order_relaxed) + packets;
  }
  if (b0) *b0 = b - bytes;
  if (n0) *n0 = n - packets;
  // soft first: a run of packets may cross both limits at once
  if (((sa->soft.bytes && b > sa->soft.bytes) || (sa->soft.packets && n > sa->soft.packets)) &&
      !sa->soft_fired.load(std::memory_order_relaxed) && !sa->soft_fired.exchange(1))
    sa_event(sa, SaEvent::kSoftExpired);
  if ((sa->hard.bytes && b > sa->hard.bytes) || (sa->hard.packets && n > sa->hard.packets)) {
    if (!sa->expired.exchange(1)) sa_event(sa, SaEvent::kHardExpired);
    return false;
  }
  return true;
}

inline void Worker::clamp_mss(rte_mbuf* m, const Parsed& p, uint16_t mss) {
  if (!mss || p.l4_proto != kProtoTcp || p.fragment) return;
  uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
  if (tcp_clamp_mss(f + p.l4_off, uint32_t(p.l3_off + p.l3_len - p.l4_off), mss))
    c_.event(Event::mss_clamped);
}

}  // namespace
}  // namespace espgw::dp
