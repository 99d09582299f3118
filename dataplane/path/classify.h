// Classify: the first stage of every received burst (and of inbound ESP handed off by another
// worker). Parses each frame, drops what is not for the gateway (multi-segment, malformed, other
// L2 destination, multicast), passes ARP and plausible neighbour discovery to the control thread,
// trims Ethernet padding and batches IPv4/IPv6 packets for one bulk FIB lookup per family; then
// routes the batch and drains the stages it fed.
//
// Internal to dataplane/path/worker.cpp and included only there (see stages.h): inline member
// functions of Worker in an anonymous namespace, so the worker stays one translation unit and
// the compiler inlines the stages as before.
#pragma once

#include "dataplane/path/stages.h"

namespace espgw::dp {
namespace {

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
}  // namespace espgw::dp
