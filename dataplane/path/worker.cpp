#include "dataplane/path/worker.h"

#include "dataplane/path/esp_common.h"
#include "dataplane/path/esp_in.h"
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
