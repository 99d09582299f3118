// Mpps harness, traffic (traffic.h): size patterns, tunnel keys, the inner IPv4/UDP frame
// builder, the generator's ports, and Traffic: frame templates and pre-encrypted ESP frames per
// size, bursts filled for the gateway's rx side, every packet from its tx side checked.
#include "perf/mpps/traffic.h"

#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "crypto/ipsecmb_engine.h"
#include "crypto/sa_crypto.h"
#include "dataplane/proto/esp.h"
#include "dataplane/proto/pkt.h"
#include "perf/mpps/ceiling.h"

namespace espgw::perf {

using dp::csum_add;
using dp::csum_fold;
using dp::load_be16;
using dp::load_be32;
using dp::store_be16;
using dp::store_be32;

namespace {

uint32_t hash32(uint64_t k) { return uint32_t((k * 0x9E3779B97F4A7C15ull) >> 32); }

// An inner IPv4/UDP frame of `size` bytes (with FCS) at f.
void build_inner(uint8_t* f, uint32_t size, const rte_ether_addr& dmac, const rte_ether_addr& smac,
                 uint32_t sip, uint32_t dip, uint16_t sport) {
  const uint32_t iplen = size - kFcs - dp::kEthHdrLen;
  std::memcpy(f, dmac.addr_bytes, 6);
  std::memcpy(f + 6, smac.addr_bytes, 6);
  store_be16(f + 12, dp::kEtherTypeIpv4);
  uint8_t* ip = f + dp::kEthHdrLen;
  for (uint32_t i = 28; i < iplen; ++i) ip[i] = uint8_t(i * 7);
  ip[0] = 0x45;
  ip[1] = 0;
  store_be16(ip + 2, uint16_t(iplen));
  store_be16(ip + 4, 0);
  store_be16(ip + 6, 0);
  ip[8] = 64;
  ip[9] = dp::kProtoUdp;
  ip[10] = ip[11] = 0;
  store_be32(ip + 12, sip);
  store_be32(ip + 16, dip);
  store_be16(ip + 10, uint16_t(~csum_fold(csum_add(0, ip, 20))));
  uint8_t* u = ip + 20;
  store_be16(u, sport);
  store_be16(u + 2, 5001);
  store_be16(u + 4, uint16_t(iplen - 20));
  store_be16(u + 6, 0);
}

}  // namespace

std::vector<uint32_t> size_pattern(const std::string& s) {
  if (s == "imix") return {64, 570, 64, 64, 570, 64, 1518, 64, 570, 64, 64, 570};  // 7:4:1
  return {uint32_t(std::stoul(s))};
}

double mean_size(const std::vector<uint32_t>& p) {
  double s = 0;
  for (uint32_t v : p) s += v;
  return s / double(p.size());
}

std::vector<uint8_t> keymat(uint32_t tunnel, bool inbound, crypto::Algo a) {
  std::vector<uint8_t> k(crypto::info(a).keymat_len());
  for (size_t b = 0; b < k.size(); ++b)
    k[b] = uint8_t(tunnel * 131 + b * 29 + (inbound ? 7 : 0) + (tunnel >> 8) * 17);
  return k;
}

// ---- ports ------------------------------------------------------------------------------------

// The ring PMD names the ethdev "net_ring_<name>".
bool make_ring_port(const std::string& name, unsigned nrx, unsigned ntx, PortIo& io,
                    std::string* err) {
  for (unsigned q = 0; q < nrx; ++q) {
    std::string n = name + "_rx" + std::to_string(q);
    io.rx.push_back(rte_ring_create(n.c_str(), kRingSize, int(rte_socket_id()),
                                    RING_F_SP_ENQ | RING_F_SC_DEQ));
    if (!io.rx.back()) return *err = "ring " + n + ": " + rte_strerror(rte_errno), false;
  }
  for (unsigned q = 0; q < ntx; ++q) {
    std::string n = name + "_tx" + std::to_string(q);
    io.tx.push_back(rte_ring_create(n.c_str(), kRingSize, int(rte_socket_id()),
                                    RING_F_SP_ENQ | RING_F_SC_DEQ));
    if (!io.tx.back()) return *err = "ring " + n + ": " + rte_strerror(rte_errno), false;
  }
  if (rte_eth_from_rings(name.c_str(), io.rx.data(), nrx, io.tx.data(), ntx,
                         rte_socket_id()) < 0)
    return *err = "rte_eth_from_rings(" + name + "): " + rte_strerror(rte_errno), false;
  return true;
}

bool start_tg_port(const std::string& name, rte_mempool* pool, PortIo& io, std::string* err) {
  if (rte_eth_dev_get_port_by_name(name.c_str(), &io.eth) != 0)
    return *err = "no ethdev named " + name, false;
  rte_eth_conf conf{};
  conf.rxmode.mtu = 1600;
  if (rte_eth_dev_configure(io.eth, 1, 1, &conf) != 0 ||
      rte_eth_rx_queue_setup(io.eth, 0, 1024, rte_socket_id(), nullptr, pool) != 0 ||
      rte_eth_tx_queue_setup(io.eth, 0, 1024, rte_socket_id(), nullptr) != 0 ||
      rte_eth_dev_start(io.eth) != 0)
    return *err = "cannot start generator port " + name, false;
  rte_eth_promiscuous_enable(io.eth);
  return true;
}

// ---- Traffic ----------------------------------------------------------------------------------

bool Traffic::set_sizes(const std::vector<uint32_t>& p, std::string* err) {
  pat = p;
  pat_pos = 0;
  dsizes.clear();
  pat_dsize.clear();
  for (uint32_t s : p) {
    auto it = std::find(dsizes.begin(), dsizes.end(), s);
    if (it == dsizes.end()) {
      dsizes.push_back(s);
      it = dsizes.end() - 1;
    }
    pat_dsize.push_back(uint32_t(it - dsizes.begin()));
  }
  if (wl != Workload::kDec) {
    tmpl.clear();
    for (uint32_t s : p) {
      tmpl.emplace_back(s, 0);
      build_inner(tmpl.back().data(), s, gw_in_mac, tg_in_mac, 0x0a010001, route_dst(0, 0), 1024);
    }
    return true;
  }
  return build_dec(err);
}

bool Traffic::build_dec(std::string* err) {
  auto engine = crypto::Engine::create(false);
  if (!engine) return *err = "crypto engine", false;
  const auto& ai = crypto::info(algo);
  dec_off.assign(size_t(tunnels) * dsizes.size(), 0);
  dec_len.assign(dec_off.size(), 0);
  size_t total = 0;
  std::vector<uint32_t> flen(dsizes.size());
  for (size_t d = 0; d < dsizes.size(); ++d) {
    uint32_t iplen = dsizes[d] - kFcs - dp::kEthHdrLen;
    flen[d] = dp::kEthHdrLen + 20 + 8 + ai.iv_len + esp_payload_len(algo, iplen) + ai.icv_len;
    total += (flen[d] + 63) / 64 * 64;
  }
  dec_mem.assign(total * tunnels, 0);
  auto sa = std::make_unique<crypto::SaCrypto>();
  std::vector<uint8_t> inner(2048);
  size_t off = 0;
  for (uint32_t t = 0; t < tunnels; ++t) {
    auto km = keymat(t, true, algo);
    if (!crypto::SaCrypto::init(*sa, algo, km.data(), km.size()))
      return *err = "SA init for the decrypt input", false;
    for (size_t d = 0; d < dsizes.size(); ++d) {
      uint8_t* f = dec_mem.data() + off;
      uint32_t iplen = dsizes[d] - kFcs - dp::kEthHdrLen;
      build_inner(inner.data(), dsizes[d], gw_in_mac, tg_in_mac, 0x0a010001,
                  route_dst(t % routes_eff, t), uint16_t(1024 + t));
      std::memcpy(f, gw_in_mac.addr_bytes, 6);
      std::memcpy(f + 6, tg_in_mac.addr_bytes, 6);
      store_be16(f + 12, dp::kEtherTypeIpv4);
      uint8_t* o = f + dp::kEthHdrLen;
      uint32_t payload = esp_payload_len(algo, iplen);
      uint32_t olen = 20 + 8 + ai.iv_len + payload + ai.icv_len;
      o[0] = 0x45;
      o[1] = 0;
      store_be16(o + 2, uint16_t(olen));
      store_be16(o + 4, uint16_t(t));
      store_be16(o + 6, 0);
      o[8] = 64;
      o[9] = dp::kProtoEsp;
      o[10] = o[11] = 0;
      store_be32(o + 12, kPeerBase + t + 1);
      store_be32(o + 16, kWanAddr);
      store_be16(o + 10, uint16_t(~csum_fold(csum_add(0, o, 20))));
      uint8_t* esp = o + 20;
      store_be32(esp, kInSpiBase + t);
      store_be32(esp + 4, 1 + uint32_t(d));
      uint8_t* pl = esp + 8 + ai.iv_len;
      std::memcpy(pl, inner.data() + dp::kEthHdrLen, iplen);
      uint32_t pad = payload - iplen - 2;
      dp::esp_write_trailer(pl + iplen, pad, dp::kNextIpv4);
      crypto::EspOp op{sa.get(), esp, payload, 0, false, 0};
      if (engine->encrypt_burst(&op, 1) != 1) return *err = "pre-encryption failed", false;
      dec_off[size_t(t) * dsizes.size() + d] = uint32_t(off);
      dec_len[size_t(t) * dsizes.size() + d] = dp::kEthHdrLen + olen;
      off += (flen[d] + 63) / 64 * 64;
    }
  }
  return true;
}

void Traffic::fill(rte_mbuf* m) {
  const size_t pi = pat_pos;
  if (++pat_pos == pat.size()) pat_pos = 0;
  const uint64_t kk = k++;
  uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
  if (wl == Workload::kDec) {
    uint32_t t = tunnels == 1 ? 0 : hash32(kk) % tunnels;
    size_t idx = size_t(t) * dsizes.size() + pat_dsize[pi];
    uint32_t len = dec_len[idx];
    std::memcpy(d, dec_mem.data() + dec_off[idx], len);
    m->data_len = uint16_t(len);
    m->pkt_len = len;
    return;
  }
  const auto& tp = tmpl[pi];
  const uint32_t len = uint32_t(tp.size()) - kFcs;
  std::memcpy(d, tp.data(), len);
  uint8_t* ip = d + dp::kEthHdrLen;
  uint32_t j = routes_eff == 1 ? 0 : hash32(kk) % routes_eff;
  store_be32(ip + 16, route_dst(j, kk));
  store_be16(ip + 20, uint16_t(1024 + (kk & 0x3ff)));  // UDP source port: RSS spread on NICs
  ip[10] = ip[11] = 0;
  store_be16(ip + 10, uint16_t(~csum_fold(csum_add(0, ip, 20))));
  m->data_len = uint16_t(len);
  m->pkt_len = len;
}

// Pushes a packet's cache lines out of the generator core's L1/L2 into the shared L3, where a
// NIC with DDIO would have written it: without this the worker's first touch of every mbuf
// header and frame is a cross-core transfer of a modified line, which no NIC rx path pays.
// (CLDEMOTE is a hint; on CPUs without it the encoding executes as a NOP.)
void Traffic::demote(const rte_mbuf* m) {
  auto line = [](const void* p) { asm volatile("cldemote %0" ::"m"(*static_cast<const char*>(p))); };
  line(m);
  line(reinterpret_cast<const char*>(m) + 64);
  const char* d = rte_pktmbuf_mtod(m, const char*);
  for (uint32_t o = 0; o < m->data_len; o += 64) line(d + o);
}

void Traffic::gen() {
  if (sent - ok - bad >= kInflight) return;
  if (!n_pending) {
    if (rte_pktmbuf_alloc_bulk(pool, pending, kBurst) != 0) return;
    for (unsigned i = 0; i < kBurst; ++i) {
      fill(pending[i]);
      if (demote_lines) demote(pending[i]);
    }
    n_pending = kBurst;
  }
  if (nic) {
    unsigned s = rte_eth_tx_burst(in->eth, 0, pending, uint16_t(n_pending));
    sent += s;
    std::memmove(pending, pending + s, (n_pending - s) * sizeof(pending[0]));
    n_pending -= s;
    return;
  }
  // whole bursts of 32 (one tail update), so the worker always sees full bursts
  rte_ring* r = in->rx[rr++ % in->rx.size()];
  if (rte_ring_sp_enqueue_bulk(r, reinterpret_cast<void**>(pending), n_pending, nullptr)) {
    sent += n_pending;
    n_pending = 0;
  }
}

bool Traffic::check(const rte_mbuf* m) const {
  const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
  if (m->data_len < 34 || load_be16(f + 12) != dp::kEtherTypeIpv4) return false;
  if (std::memcmp(f, tg_out_mac.addr_bytes, 6) != 0 ||
      std::memcmp(f + 6, gw_out_mac.addr_bytes, 6) != 0)
    return false;
  const uint8_t* ip = f + dp::kEthHdrLen;
  if (uint32_t(load_be16(ip + 2)) + dp::kEthHdrLen != m->pkt_len) return false;
  if (wl == Workload::kEnc) {  // outer ESP to tunnel i's peer with tunnel i's outbound SPI
    if (ip[9] != dp::kProtoEsp || load_be32(ip + 12) != kWanAddr) return false;
    uint32_t i = load_be32(ip + 16) - kPeerBase - 1;
    return i < tunnels && load_be32(ip + 20) == kOutSpiBase + i && load_be32(ip + 24) != 0;
  }
  // forwarded or decapsulated inner packet: TTL decremented, destination on a test route
  uint32_t dst = load_be32(ip + 16);
  return ip[9] == dp::kProtoUdp && ip[8] == 63 && (dst >> 28) == 1 &&
         csum_fold(csum_add(0, ip, 20)) == 0xffff;
}

unsigned Traffic::sink() {
  rte_mbuf* m[64];
  unsigned got = 0;
  auto take = [&](unsigned n) {
    for (unsigned i = 0; i < n; ++i) {
      if (check(m[i])) ++ok;
      else ++bad;
    }
    rte_pktmbuf_free_bulk(m, n);
    got += n;
  };
  if (nic) {
    take(rte_eth_rx_burst(out->eth, 0, m, 64));
  } else {
    for (rte_ring* r : out->tx)
      take(rte_ring_sc_dequeue_burst(r, reinterpret_cast<void**>(m), 64, nullptr));
  }
  return got;
}

}  // namespace espgw::perf
