// Forward: bulk FIB lookups for a batch of classified packets, then the next hop of each: local
// delivery (esp_in.h), a tunnel or a member of a tunnel group by flow hash (esp_out.h), blackhole,
// or a connected/via next hop with TTL / hop limit decrement, MTU check, IPv4 fragmentation
// (RFC 791) and ICMP/ICMPv6 errors (rate-limited; queued and routed after the burst).
//
// Internal to dataplane/path/worker.cpp and included only there (see stages.h): inline member
// functions of Worker in an anonymous namespace, so the worker stays one translation unit and
// the compiler inlines the stages as before.
#pragma once

#include "dataplane/path/stages.h"

namespace espgw::dp {
namespace {

inline bool Worker::icmp_allowed() {
  uint64_t now = rte_rdtsc();
  uint64_t cap = rt_->icmp_rate_per_sec / 10 + 1;  // burst: 100 ms worth
  uint64_t add = (now - icmp_last_) * rt_->icmp_rate_per_sec / tsc_hz_;
  if (add) {
    icmp_tokens_ = std::min(cap, icmp_tokens_ + add);
    icmp_last_ = now;
  }
  if (!icmp_tokens_) return false;
  --icmp_tokens_;
  return true;
}

// Queues an ICMP error about packet m (which arrived on port in_pi) for routing.
inline void Worker::icmp_error(rte_mbuf* m, const Parsed& p, uint16_t in_pi, uint8_t type,
                               uint8_t code, uint32_t mtu) {
  const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
  if (!may_send_icmp_error(f, p)) return;
  const PortRt& in = rt_->ports[in_pi];
  const IpAddr& src = p.l3 == L3::kIpv4 ? in.src4 : in.src6;
  if (!src.is_set() || n_gen_ == kMaxBurst) return;
  if (!icmp_allowed()) {
    c_.drop(Drop::icmp_rate_limited);
    return;
  }
  rte_mbuf* e = rte_pktmbuf_alloc(rt_->pool);
  if (!e) {
    c_.drop(Drop::alloc_failed);
    return;
  }
  uint8_t* out = rte_pktmbuf_mtod(e, uint8_t*);
  uint32_t cap = rte_pktmbuf_tailroom(e);
  if (cap < kEthHdrLen) {
    rte_pktmbuf_free(e);
    return;
  }
  const uint8_t* ip = f + p.l3_off;
  uint32_t len;
  if (p.l3 == L3::kIpv4) {
    len = build_icmp4_error(out + kEthHdrLen, cap - kEthHdrLen, ip, p.l3_len, type, code,
                            uint16_t(mtu), src.bytes.data());
    store_be16(out + 12, kEtherTypeIpv4);
  } else {
    len = build_icmp6_error(out + kEthHdrLen, cap - kEthHdrLen, ip, p.l3_len, type, code, mtu,
                            src.bytes.data());
    store_be16(out + 12, kEtherTypeIpv6);
  }
  if (!len) {
    rte_pktmbuf_free(e);
    return;
  }
  e->data_len = uint16_t(kEthHdrLen + len);
  e->pkt_len = e->data_len;
  e->port = in.eth_id;
  c_.event(Event::icmp_error_sent);
  gen_[n_gen_++] = e;
}

// Rare path, allocates from the pools: strips m to its IPv4 header at l3_off and fragments it
// for mtu, each fragment's payload a multiple of 8 bytes (RFC 791). m is consumed; returns the
// number of fragments in frags (0 after counting the drop).
inline unsigned Worker::fragment_ipv4(rte_mbuf* m, uint16_t l3_off, uint16_t mtu,
                                      rte_mbuf** frags) {
  rte_pktmbuf_adj(m, l3_off);
  const unsigned ihl = unsigned(rte_pktmbuf_mtod(m, const uint8_t*)[0] & 0xf) * 4;
  const auto frag_mtu = uint16_t(ihl + ((mtu - ihl) & ~7u));
  int n = mtu > ihl + 8 ? rte_ipv4_fragment_packet(m, frags, kMaxFrags, frag_mtu, rt_->pool,
                                                   rt_->indirect_pool)
                        : -1;
  rte_pktmbuf_free(m);
  if (n <= 0) {
    c_.drop(Drop::frag_failed);
    return 0;
  }
  return unsigned(n);
}

inline void Worker::ipv4_set_checksum(uint8_t* ip) {
  ip[10] = ip[11] = 0;
  store_be16(ip + 10, uint16_t(~csum_fold(csum_add(0, ip, uint32_t(ip[0] & 0xf) * 4))));
}

// IPv4 without DF, larger than the egress MTU: fragment (RFC 791) and emit each piece.
inline void Worker::fragment4(rte_mbuf* m, const Parsed& p, const NextHop& nh, uint16_t mtu) {
  rte_mbuf* frags[kMaxFrags];
  const unsigned n = fragment_ipv4(m, kEthHdrLen, mtu, frags);
  for (unsigned i = 0; i < n; ++i) {
    rte_mbuf* fr = frags[i];
    auto* eth = reinterpret_cast<rte_ether_hdr*>(rte_pktmbuf_prepend(fr, kEthHdrLen));
    if (!eth) {
      drop(fr, Drop::frag_failed);
      continue;
    }
    eth->ether_type = rte_cpu_to_be_16(kEtherTypeIpv4);
    auto* ip = reinterpret_cast<uint8_t*>(eth + 1);
    ipv4_set_checksum(ip);
    Parsed fp = p;
    fp.l3_len = load_be16(ip + 2);
    c_.event(Event::fragments_sent);
    emit(fr, fp, nh);
  }
}

// Hash of the inner 5-tuple (addresses, protocol, TCP/UDP ports when present): every packet
// of a flow takes the same member of a tunnel group.
inline uint32_t Worker::flow_hash(const rte_mbuf* m, const Parsed& p) {
  const uint8_t* ip = rte_pktmbuf_mtod_offset(m, const uint8_t*, p.l3_off);
  const bool v4 = p.l3 == L3::kIpv4;
  uint64_t h = 0x9e3779b97f4a7c15ull ^ p.l4_proto;
  const uint8_t* a = ip + (v4 ? 12 : 8);
  for (unsigned i = 0; i < (v4 ? 8u : 32u); i += 4)
    h = (h ^ load_be32(a + i)) * 0xff51afd7ed558ccdull;
  if ((p.l4_proto == 6 || p.l4_proto == 17) && !p.fragment && p.l4_off &&
      uint32_t(p.l4_off) + 4 <= rte_pktmbuf_data_len(m))
    h = (h ^ load_be32(rte_pktmbuf_mtod_offset(m, const uint8_t*, p.l4_off))) *
        0xc4ceb9fe1a85ec53ull;
  return uint32_t((h >> 32) ^ h);
}

// Routes one packet given its FIB next-hop id. originated: written by the host kernel or
// built here (no TTL decrement, no ICMP errors about it).
inline void Worker::forward(rte_mbuf* m, const Parsed& p, uint32_t nhid, uint16_t in_pi,
                            bool originated) {
  const NextHop& nh = rt_->nexthops[nhid];
  switch (nh.kind) {
    case NhKind::kLocal:
      if (originated) return drop(m, Drop::exception_unsupported);
      return to_me(m, p, in_pi);
    case NhKind::kTunnel:
      return to_tunnel(m, p, nh.tunnel, in_pi, originated);
    case NhKind::kTunnelGroup:
      if (nh.n_members == 0) return drop(m, Drop::no_route);
      return to_tunnel(m, p, nh.members[flow_hash(m, p) % nh.n_members], in_pi, originated);
    case NhKind::kNone:
      if (!originated)
        icmp_error(m, p, in_pi, p.l3 == L3::kIpv4 ? kIcmp4Unreach : kIcmp6Unreach, 0, 0);
      return drop(m, Drop::no_route);
    case NhKind::kBlackhole:
      return drop(m, Drop::blackhole);
    case NhKind::kConnected:
    case NhKind::kVia:
      break;
  }
  uint8_t* ip = rte_pktmbuf_mtod_offset(m, uint8_t*, p.l3_off);
  if (!originated) {
    if (p.ttl <= 1) {
      icmp_error(m, p, in_pi, p.l3 == L3::kIpv4 ? kIcmp4TimeExceeded : kIcmp6TimeExceeded, 0, 0);
      return drop(m, Drop::ttl_exceeded);
    }
  }
  uint16_t mtu = rt_->ports[nh.port].mtu;
  if (p.l3_len > mtu) {
    if (p.l3 == L3::kIpv4 && !p.df) {
      if (!originated) ipv4_dec_ttl(ip);
      return fragment4(m, p, nh, mtu);
    }
    if (!originated) {
      if (p.l3 == L3::kIpv4)
        icmp_error(m, p, in_pi, kIcmp4Unreach, kIcmp4CodeFragNeeded, mtu);
      else
        icmp_error(m, p, in_pi, kIcmp6TooBig, 0, mtu);
    }
    return drop(m, Drop::mtu_exceeded);
  }
  if (!originated) {
    if (p.l3 == L3::kIpv4)
      ipv4_dec_ttl(ip);
    else
      ip[7]--;
  }
  emit(m, p, nh);
}

// Bulk FIB lookups for classified IPv4/IPv6 packets, then forward each.
inline void Worker::route(RouteBatch& b, bool originated) {
  const FibCopy* fib = rt_->fib->active();
  const unsigned n4 = b.n4, n6 = b.n6;
  rte_mbuf** m4 = b.m4;
  rte_mbuf** m6 = b.m6;
  const Parsed* p4 = b.p4;
  const Parsed* p6 = b.p6;
  const uint16_t* in4 = b.in4;
  const uint16_t* in6 = b.in6;
  b.n4 = b.n6 = 0;
  if (n4) {
    uint32_t ips[kMaxBurst];
    uint64_t nhs[kMaxBurst];
    for (unsigned i = 0; i < n4; ++i)
      ips[i] = load_be32(rte_pktmbuf_mtod_offset(m4[i], const uint8_t*, p4[i].l3_off + 16));
    rte_fib_lookup_bulk(fib->v4, ips, nhs, n4);
    for (unsigned i = 0; i < n4; ++i)
      forward(m4[i], p4[i], nhs[i] < kMaxNextHops ? uint32_t(nhs[i]) : 0, in4[i], originated);
  }
  if (n6) {
    uint8_t ips[kMaxBurst][16];
    uint64_t nhs[kMaxBurst];
    for (unsigned i = 0; i < n6; ++i)
      std::memcpy(ips[i], rte_pktmbuf_mtod_offset(m6[i], const uint8_t*, p6[i].l3_off + 24), 16);
    rte_fib6_lookup_bulk(fib->v6, ips, nhs, n6);
    for (unsigned i = 0; i < n6; ++i)
      forward(m6[i], p6[i], nhs[i] < kMaxNextHops ? uint32_t(nhs[i]) : 0, in6[i], originated);
  }
}

// Routes the ICMP errors generated while processing a burst (they never generate more).
inline void Worker::route_generated() {
  while (n_gen_) {
    RouteBatch& b = gen_batch_;
    unsigned n = n_gen_;
    rte_mbuf* gen[kMaxBurst];
    std::memcpy(gen, gen_, n * sizeof(gen[0]));
    n_gen_ = 0;
    for (unsigned i = 0; i < n; ++i) {
      Parsed p;
      parse_frame(rte_pktmbuf_mtod(gen[i], const uint8_t*), gen[i]->data_len, p);
      b.add(gen[i], p, 0);
    }
    route(b, true);
  }
}

}  // namespace
}  // namespace espgw::dp
