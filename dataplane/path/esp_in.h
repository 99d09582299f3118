// ESP inbound: a packet for one of the gateway's addresses is ESP for a local SA, a NAT-T
// keepalive, or goes to the host kernel. ESP whose SA another worker owns is handed off to that
// worker's ring (one writer per replay window). The owner checks the replay window, then after
// the burst decrypts the collected packets in one engine call, checks the ICV, trailer, selectors
// and lifetimes, applies RFC 6040 ECN decapsulation, strips the outer headers and routes the inner
// packets.
//
// Internal to dataplane/path/worker.cpp and included only there (see stages.h): inline member
// functions of Worker in an anonymous namespace, so the worker stays one translation unit and
// the compiler inlines the stages as before.
#pragma once

#include "dataplane/path/stages.h"

namespace espgw::dp {
namespace {

// A packet for one of the gateway's addresses: ESP for a local SA is consumed here,
// everything else (IKE, BGP, ping, ...) goes to the host kernel.
inline void Worker::to_me(rte_mbuf* m, const Parsed& p, uint16_t in_pi) {
  const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
  EspLoc loc;
  switch (classify_esp(f, p, loc)) {
    case EspClass::kEsp:
      return esp_in_collect(m, p, loc, in_pi);
    case EspClass::kNatKeepalive:
      c_.event(Event::natt_keepalive);
      rte_pktmbuf_free(m);
      return;
    case EspClass::kMalformed:
      return drop(m, Drop::udp_bad_length);
    case EspClass::kIke:
    case EspClass::kNotEsp:
      return to_exception(m);
  }
}

inline void Worker::esp_in_collect(rte_mbuf* m, const Parsed& p, const EspLoc& loc,
                                   uint16_t in_pi) {
  const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint8_t* esp = f + loc.esp_off;
  if (loc.esp_len < 8) return drop(m, Drop::esp_runt);
  uint32_t spi = load_be32(esp);
  void* data = nullptr;
  if (rte_hash_lookup_data(rt_->spi_hash, &spi, &data) < 0) return drop(m, Drop::esp_no_sa);
  auto* sa = static_cast<SaRt*>(data);
  const uint8_t* dst = f + p.l3_off + (p.l3 == L3::kIpv4 ? 16 : 24);
  if (sa->v6 != (p.l3 == L3::kIpv6) || std::memcmp(dst, sa->local_b, sa->v6 ? 16 : 4) != 0)
    return drop(m, Drop::esp_no_sa);
  if (sa->owner_queue != q_) {  // one writer per replay window: hand off to the owner
    hold_meta(m)->port = in_pi;
    if (rte_ring_mp_enqueue(rt_->handoff[sa->owner_queue], m) != 0)
      return drop(m, Drop::esp_handoff_full);
    c_.event(Event::esp_handoff);
    return;
  }
  if (sa->expired.load(std::memory_order_relaxed))
    return sa_drop(sa, SaDrop::expired, m, Drop::esp_sa_expired);
  uint32_t overhead = 8u + sa->iv_len + sa->icv_len;
  if (loc.esp_len < overhead + 4 || (loc.esp_len - overhead) % sa->block)
    return drop(m, Drop::esp_runt);
  uint64_t seq = sa->replay.infer(load_be32(esp + 4));
  if (!sa->replay.check(seq)) return sa_drop(sa, SaDrop::replay, m, Drop::esp_replay);
  if (n_in_ == kMaxBurst) return drop(m, Drop::esp_no_room);
  const uint8_t* ip = f + p.l3_off;
  in_[n_in_++] = {m, sa, seq, loc, in_pi, uint8_t(ip_tos(ip, p.l3 == L3::kIpv6) & 3)};
}

// Decrypt every collected inbound packet with one engine call, then decapsulate and route.
inline void Worker::esp_in_run() {
  unsigned n = n_in_;
  InEntry* in = in_copy_;  // member scratch: no per-call initialisation
  std::copy(in_, in_ + n, in);
  n_in_ = 0;
  crypto::EspOp* ops = ops_;
  for (unsigned i = 0; i < n; ++i) {
    SaRt* sa = in[i].sa;
    uint8_t* esp = rte_pktmbuf_mtod_offset(in[i].m, uint8_t*, in[i].loc.esp_off);
    ops[i] = {&sa->crypto,
              esp,
              in[i].loc.esp_len - 8u - sa->iv_len - sa->icv_len,
              uint32_t(in[i].seq >> 32),
              sa->esn,
              0};
  }
  engine_->decrypt_burst(ops, n);
  RouteBatch& out = esp_batch_;
  for (unsigned i = 0; i < n; ++i) {
    rte_mbuf* m = in[i].m;
    SaRt* sa = in[i].sa;
    if (ops[i].status == crypto::kAuthFail) {
      sa_drop(sa, SaDrop::bad_icv, m, Drop::esp_bad_icv);
      continue;
    }
    if (ops[i].status != crypto::kOk) {
      drop(m, Drop::esp_crypto_error);
      continue;
    }
    // the window moves only for authenticated packets (RFC 4303 3.4.3)
    if (!sa->replay.update(in[i].seq)) {
      sa_drop(sa, SaDrop::replay, m, Drop::esp_replay);
      continue;
    }
    uint8_t* payload = ops[i].esp + 8 + sa->iv_len;
    uint32_t inner_len;
    uint8_t nh;
    switch (esp_check_trailer(payload, ops[i].payload_len, inner_len, nh)) {
      case TrailerResult::kOk:
        break;
      case TrailerResult::kBadPad:
        sa_drop(sa, SaDrop::bad_pad, m, Drop::esp_bad_pad);
        continue;
      case TrailerResult::kBadNextHeader:
        sa_drop(sa, SaDrop::bad_next_header, m, Drop::esp_bad_next_header);
        continue;
      case TrailerResult::kDummy:
        c_.event(Event::esp_dummy);
        rte_pktmbuf_free(m);
        continue;
    }
    const bool inner6 = nh != kNextIpv4;
    Parsed& ip = out.slot(inner6);
    ip.l3_off = 0;
    ParseResult r =
        inner6 ? parse_ipv6(payload, inner_len, ip) : parse_ipv4(payload, inner_len, ip);
    if (!r.is_ok()) {
      sa_drop(sa, SaDrop::inner_malformed, m, Drop::esp_inner_malformed);
      continue;
    }
    TunnelRt* t = rt_->tunnels[sa->tunnel].load(std::memory_order_acquire);
    if ((t && !t->remote_ts.empty() && !selector_ok(t->remote_ts, payload, ip.l3 == L3::kIpv6)) ||
        (!sa->remote_ts.empty() && !selector_ok(sa->remote_ts, payload, ip.l3 == L3::kIpv6))) {
      sa_drop(sa, SaDrop::selector_mismatch, m, Drop::esp_selector_mismatch);
      continue;
    }
    // RFC 6040 decapsulation: CE on the outer header survives onto an ECN-capable inner
    if (in[i].outer_ecn == 3) {
      uint8_t iecn = ip_tos(payload, ip.l3 == L3::kIpv6) & 3;
      if (iecn == 0) {
        drop(m, Drop::esp_ecn_drop);
        continue;
      }
      if (iecn != 3) set_ce(payload, ip.l3 == L3::kIpv6);
    }
    if (!account(sa, ip.l3_len)) {
      sa_drop(sa, SaDrop::expired, m, Drop::esp_sa_expired);
      continue;
    }
    // decapsulate: [eth][outer][udp][esp][iv] inner [pad][icv] -> [eth] inner
    rte_pktmbuf_adj(m, uint16_t(payload - rte_pktmbuf_mtod(m, uint8_t*)));
    rte_pktmbuf_trim(m, uint16_t(m->pkt_len - ip.l3_len));
    auto* eth = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, kEthHdrLen));
    store_be16(eth + 12, ip.l3 == L3::kIpv4 ? kEtherTypeIpv4 : kEtherTypeIpv6);
    ip.l3_off = kEthHdrLen;
    ip.l4_off = uint16_t(ip.l4_off + kEthHdrLen);
    if (t) clamp_mss(m, ip, t->mss_clamp);
    c_.event(Event::esp_decrypted);
    out.commit(m, inner6, in[i].in_pi);
  }
  route(out, false);
}

inline bool Worker::selector_ok(const std::vector<Prefix>& ts, const uint8_t* ip, bool v6) {
  IpAddr src;
  src.family = v6 ? 6 : 4;
  std::memcpy(src.bytes.data(), ip + (v6 ? 8 : 12), v6 ? 16 : 4);
  for (const auto& p : ts)
    if (p.contains(src)) return true;
  return false;
}

inline void Worker::set_ce(uint8_t* ip, bool v6) {
  if (v6) {
    ip[1] |= 0x30;
    return;
  }
  uint16_t old = load_be16(ip);
  ip[1] |= 3;
  uint32_t sum = uint16_t(~load_be16(ip + 10)) + uint16_t(~old) + load_be16(ip);
  store_be16(ip + 10, uint16_t(~csum_fold(sum)));
}

}  // namespace
}  // namespace espgw::dp
