// ESP outbound: a packet routed into a tunnel is checked (loop, outbound SA, TTL, tunnel MTU with
// ICMP errors or pre-fragmentation, MSS clamp) and queued; after the burst the queue gets its
// sequence numbers and lifetime accounting once per run of packets for the same SA, is
// encapsulated (outer IPv4/IPv6, UDP for NAT-T), encrypted in one engine call and routed as outer
// packets.
//
// Internal to dataplane/path/worker.cpp and included only there (see stages.h): inline member
// functions of Worker in an anonymous namespace, so the worker stays one translation unit and
// the compiler inlines the stages as before.
#pragma once

#include "dataplane/path/stages.h"

namespace espgw::dp {
namespace {

inline void Worker::to_tunnel(rte_mbuf* m, const Parsed& p, uint32_t tid, uint16_t in_pi,
                              bool originated) {
  if (p.outer) return drop(m, Drop::tunnel_loop);
  TunnelRt* t = rt_->tunnels[tid].load(std::memory_order_acquire);
  SaRt* sa = t ? t->out.load(std::memory_order_acquire) : nullptr;
  if (!sa) return drop(m, Drop::esp_no_outbound_sa);
  uint8_t* ip = rte_pktmbuf_mtod_offset(m, uint8_t*, p.l3_off);
  if (!originated && p.ttl <= 1) {
    icmp_error(m, p, in_pi, p.l3 == L3::kIpv4 ? kIcmp4TimeExceeded : kIcmp6TimeExceeded, 0, 0);
    return drop(m, Drop::ttl_exceeded);
  }
  const bool too_big = p.l3_len > t->mtu;
  if (too_big && (p.l3 == L3::kIpv6 || p.df)) {
    // RFC 4301 8.2: tell the sender the tunnel's MTU
    if (!originated) {
      if (p.l3 == L3::kIpv4)
        icmp_error(m, p, in_pi, kIcmp4Unreach, kIcmp4CodeFragNeeded, t->mtu);
      else
        icmp_error(m, p, in_pi, kIcmp6TooBig, 0, t->mtu);
    }
    return drop(m, Drop::mtu_exceeded);
  }
  if (!originated) {
    if (p.l3 == L3::kIpv4)
      ipv4_dec_ttl(ip);
    else
      ip[7]--;
  }
  clamp_mss(m, p, t->mss_clamp);
  if (too_big) return to_tunnel_fragments(m, p, sa, t->mtu);
  if (n_out_ == kMaxBurst) return drop(m, Drop::esp_no_room);
  out_[n_out_++] = {m, sa, p};
}

// IPv4 without DF, larger than the tunnel's inner MTU: fragment the inner packet and encrypt
// every fragment on its own (pre-fragmentation, RFC 4459 3.1; RFC 4301 8.1 leaves the choice
// to the implementation), so each ESP packet fits the egress MTU for either outer family.
// Fragmenting the outer packet instead would make the peer reassemble before it can decrypt
// (espgw itself does not), and an IPv6 outer packet is never fragmented here; the inner
// fragments are reassembled by the destination host.
inline void Worker::to_tunnel_fragments(rte_mbuf* m, const Parsed& p, SaRt* sa, uint16_t mtu) {
  rte_mbuf* frags[kMaxFrags];
  const unsigned n = fragment_ipv4(m, p.l3_off, mtu, frags);
  for (unsigned i = 0; i < n; ++i) {
    rte_mbuf* fr = frags[i];
    // header mbuf + indirect data segment -> one segment, as the ESP encapsulation needs
    if (rte_pktmbuf_linearize(fr) != 0) {
      drop(fr, Drop::frag_failed);
      continue;
    }
    auto* fip = rte_pktmbuf_mtod(fr, uint8_t*);
    ipv4_set_checksum(fip);
    Parsed fp;
    fp.l3_off = 0;
    if (!parse_ipv4(fip, fr->data_len, fp).is_ok()) {
      drop(fr, Drop::frag_failed);
      continue;
    }
    if (n_out_ == kMaxBurst) {
      drop(fr, Drop::esp_no_room);
      continue;
    }
    c_.event(Event::fragments_sent);
    out_[n_out_++] = {fr, sa, fp};
  }
}

// Encapsulates one packet for sa with sequence number seq and fills its crypto op.
inline bool Worker::prepare_out(rte_mbuf* m, SaRt* sa, const Parsed& p, uint64_t seq,
                                crypto::EspOp& op) {
  const bool inner6 = p.l3 == L3::kIpv6;
  const uint32_t inner_len = p.l3_len;
  uint8_t tos = ip_tos(rte_pktmbuf_mtod_offset(m, const uint8_t*, p.l3_off), inner6);
  bool df = inner6 || p.df;
  rte_pktmbuf_adj(m, p.l3_off);
  rte_pktmbuf_trim(m, uint16_t(m->pkt_len - inner_len));
  uint32_t pad = esp_pad_len(inner_len, sa->block);
  auto* tr = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, uint16_t(pad + 2 + sa->icv_len)));
  uint32_t olen = sa->v6 ? 40 : 20, ulen = sa->udp_encap ? 8 : 0;
  auto* o = tr ? reinterpret_cast<uint8_t*>(
                     rte_pktmbuf_prepend(m, uint16_t(olen + ulen + 8 + sa->iv_len)))
               : nullptr;
  if (!o) {
    drop(m, Drop::esp_no_room);
    return false;
  }
  esp_write_trailer(tr, pad, inner6 ? kNextIpv6 : kNextIpv4);
  uint32_t total = m->pkt_len;
  if (sa->v6) {
    o[0] = uint8_t(0x60 | tos >> 4);  // DSCP and ECN copied (RFC 6040 normal mode)
    o[1] = uint8_t(tos << 4);
    o[2] = o[3] = 0;
    store_be16(o + 4, uint16_t(total - 40));
    o[6] = sa->udp_encap ? kProtoUdp : kProtoEsp;
    o[7] = 64;
    std::memcpy(o + 8, sa->local_b, 16);
    std::memcpy(o + 24, sa->remote_b, 16);
  } else {
    const auto id = uint16_t(++ip_id_);
    const uint8_t proto = sa->udp_encap ? kProtoUdp : kProtoEsp;
    o[0] = 0x45;
    o[1] = tos;
    store_be16(o + 2, uint16_t(total));
    store_be16(o + 4, id);
    store_be16(o + 6, df ? 0x4000 : 0);
    o[8] = 64;
    o[9] = proto;
    std::memcpy(o + 12, sa->local_b, 4);
    std::memcpy(o + 16, sa->remote_b, 4);
    // header checksum from the values, not read back from the header just written (the
    // byte-wise stores cannot be forwarded to the 16-bit loads: a stall per packet)
    uint32_t sum = (0x4500u | tos) + uint16_t(total) + id + (df ? 0x4000u : 0u) +
                   (64u << 8 | proto) + load_be16(sa->local_b) + load_be16(sa->local_b + 2) +
                   load_be16(sa->remote_b) + load_be16(sa->remote_b + 2);
    store_be16(o + 10, uint16_t(~csum_fold(sum)));
  }
  uint8_t* esp = o + olen + ulen;
  if (ulen) {
    uint8_t* u = o + olen;
    store_be16(u, sa->sport);
    store_be16(u + 2, sa->dport);
    store_be16(u + 4, uint16_t(total - olen));
    u[6] = u[7] = 0;  // IPv4: zero checksum (RFC 3948 2.1); IPv6: filled after encryption
  }
  store_be32(esp, sa->spi);
  store_be32(esp + 4, uint32_t(seq));
  op = {&sa->crypto, esp, inner_len + pad + 2, uint32_t(seq >> 32), sa->esn, 0};
  return true;
}

// Encapsulate and encrypt every collected outbound packet with one engine call, then route
// the outer packets.
inline void Worker::esp_out_run() {
  unsigned n = n_out_;
  OutEntry* out = out_copy_;
  std::copy(out_, out_ + n, out);
  n_out_ = 0;
  crypto::EspOp* ops = ops_;
  rte_mbuf* ms[kMaxBurst];
  bool dfs[kMaxBurst];
  unsigned k = 0;
  // Sequence numbers and lifetime counters are shared by the workers: take them once per run
  // of packets for the same SA (a burst is usually one or a few runs), not once per packet.
  for (unsigned i = 0; i < n;) {
    SaRt* sa = out[i].sa;
    unsigned j = i;
    uint64_t run_bytes = 0;
    for (; j < n && out[j].sa == sa; ++j) run_bytes += out[j].p.l3_len;
    const unsigned run = j - i;
    unsigned fit = 0;  // how many packets of the run go out
    uint64_t b0, n0;
    if (!sa->expired.load(std::memory_order_relaxed)) {
      if (account(sa, run_bytes, run, &b0, &n0)) {
        fit = run;
      } else {  // the run crossed a hard limit: the packets up to that limit still go out
        for (uint64_t b = b0; fit < run; ++fit) {
          b += out[i + fit].p.l3_len;
          if ((sa->hard.packets && n0 + fit + 1 > sa->hard.packets) ||
              (sa->hard.bytes && b > sa->hard.bytes))
            break;
        }
      }
    }
    bool alive = fit > 0;
    uint64_t base = alive ? sa->seq.fetch_add(fit, std::memory_order_relaxed) : 0;
    // sequence numbers past the persisted reservation are never used (a restart would repeat
    // them); the control thread raises the limit long before traffic gets there
    const uint64_t limit = sa->seq_limit.load(std::memory_order_acquire);
    for (unsigned r = 0; r < run; ++r, ++i) {
      rte_mbuf* m = out[i].m;
      const Parsed& p = out[i].p;
      uint64_t seq = base + 1 + r;
      if (r == fit) alive = false;
      // never wrap the sequence number (RFC 4303 3.3.3): the SA ends instead
      if (alive && ((!sa->esn && seq > 0xffffffffull) || seq == 0)) {
        if (!sa->expired.exchange(1)) sa_event(sa, SaEvent::kHardExpired);
        alive = false;
      }
      if (!alive) {
        sa_drop(sa, SaDrop::expired, m, Drop::esp_sa_expired);
        continue;
      }
      if (seq > limit) {
        sa_drop(sa, SaDrop::seq_unreserved, m, Drop::esp_seq_unreserved);
        continue;
      }
      if (prepare_out(m, sa, p, seq, ops[k])) {
        ms[k] = m;
        dfs[k] = p.l3 == L3::kIpv6 || p.df;
        ++k;
      }
    }
  }
  engine_->encrypt_burst(ops, k);
  RouteBatch& outer = esp_batch_;
  for (unsigned i = 0; i < k; ++i) {
    rte_mbuf* m = ms[i];
    if (ops[i].status != crypto::kOk) {
      drop(m, Drop::esp_crypto_error);
      continue;
    }
    uint8_t* o = rte_pktmbuf_mtod(m, uint8_t*);
    const bool v6 = (o[0] >> 4) == 6;
    if (v6 && o[6] == kProtoUdp) {  // IPv6 needs a real UDP checksum
      uint8_t* u = o + 40;
      uint32_t ulen = m->pkt_len - 40;
      uint16_t c = icmp6_checksum(o, u, ulen, kProtoUdp);
      store_be16(u + 6, c == 0 ? 0xffff : c);
    }
    auto* eth = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, kEthHdrLen));
    if (!eth) {
      drop(m, Drop::esp_no_room);
      continue;
    }
    store_be16(eth + 12, v6 ? kEtherTypeIpv6 : kEtherTypeIpv4);
    Parsed& op = outer.slot(v6);
    op.l3 = v6 ? L3::kIpv6 : L3::kIpv4;
    op.l3_off = kEthHdrLen;
    op.l3_hdr_len = v6 ? 40 : 20;
    op.l3_len = uint16_t(m->pkt_len - kEthHdrLen);
    op.l4_proto = v6 ? o[6] : o[9];
    op.l4_off = uint16_t(kEthHdrLen + op.l3_hdr_len);
    op.ttl = 64;
    op.df = dfs[i];
    op.outer = true;
    c_.event(Event::esp_encrypted);
    outer.commit(m, v6, 0);
  }
  route(outer, true);
}

}  // namespace
}  // namespace espgw::dp
