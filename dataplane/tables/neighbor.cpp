#include "dataplane/tables/neighbor.h"

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_hash.h>
#include <rte_jhash.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>

#include <algorithm>

#include "dataplane/proto/icmp.h"
#include "dataplane/proto/pkt.h"

namespace espgw::dp {
namespace {

constexpr uint8_t kNdNs = 135, kNdNa = 136;
constexpr uint8_t kOptSrcLl = 1, kOptTgtLl = 2;

std::string mac_str(uint64_t v) {
  rte_ether_addr a;
  NeighEntry::unpack(v, a);
  char b[RTE_ETHER_ADDR_FMT_SIZE];
  rte_ether_format_addr(b, sizeof b, &a);
  return b;
}

// Solicited-node multicast address ff02::1:ffXX:XXXX and its MAC 33:33:ff:XX:XX:XX.
void solicited_node(const uint8_t* target, uint8_t* ip, rte_ether_addr& mac) {
  static const uint8_t pfx[13] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff};
  std::memcpy(ip, pfx, 13);
  std::memcpy(ip + 13, target + 13, 3);
  mac = {{0x33, 0x33, 0xff, target[13], target[14], target[15]}};
}

}  // namespace

Neighbors::~Neighbors() {
  for (auto& e : entries_) drop_holds(e.get());
  retired_.clear();  // the workers have stopped
  if (rt_.neigh_hash) rte_hash_free(rt_.neigh_hash);
}

void Neighbors::count(Drop d) { rt_.counters->lcore[rte_lcore_id()].drop(d); }

bool Neighbors::init(unsigned max_entries, std::string* err) {
  max_ = max_entries;
  // at most an eighth of the pool waits for neighbours, so a flood of unresolvable
  // destinations cannot empty it
  if (rt_.pool) hold_cap_ = std::max<size_t>(64, std::min<size_t>(1024, rt_.pool->size / 8));
  rte_hash_parameters p{};
  std::string name = "espgw_neigh";
  p.name = name.c_str();
  p.entries = std::max(max_entries * 2, 64u);
  p.key_len = sizeof(NeighKey);
  p.hash_func = rte_jhash;
  p.socket_id = int(rte_socket_id());
  // lock-free concurrent readers, one writer (the control thread)
  p.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF;
  rt_.neigh_hash = rte_hash_create(&p);
  if (!rt_.neigh_hash) {
    *err = std::string("cannot create neighbour table: ") + rte_strerror(rte_errno);
    return false;
  }
  return true;
}

// The control thread is the only writer. An evicted entry leaves the hash at once and is freed
// only after an RCU grace period (the hash is lock-free for readers and does not recycle the key
// slot on delete), so a worker never reads a freed entry.
NeighEntry* Neighbors::lookup(uint16_t port, const IpAddr& ip) const {
  NeighKey k = make_neigh_key(port, ip.family, ip.bytes.data());
  void* data = nullptr;
  return rte_hash_lookup_data(rt_.neigh_hash, &k, &data) >= 0 ? static_cast<NeighEntry*>(data)
                                                              : nullptr;
}

NeighEntry* Neighbors::get(uint16_t port, const IpAddr& ip, uint64_t now_ms) {
  if (NeighEntry* e = lookup(port, ip)) return e;
  if (entries_.size() >= max_ && !make_room(now_ms)) {
    count(Drop::neighbor_table_full);
    return nullptr;
  }
  reclaim(false);
  auto e = std::make_unique<NeighEntry>();
  e->ip = ip;
  e->port = port;
  e->last_used_ms = now_ms;
  NeighKey k = make_neigh_key(port, ip.family, ip.bytes.data());
  if (rte_hash_add_key_data(rt_.neigh_hash, &k, e.get()) != 0) {
    reclaim(true);  // key slots of retired entries come back after their grace period
    if (rte_hash_add_key_data(rt_.neigh_hash, &k, e.get()) != 0) {
      count(Drop::neighbor_table_full);
      return nullptr;
    }
  }
  entries_.push_back(std::move(e));
  return entries_.back().get();
}

// Picks the victim for a new entry: the oldest failed entry, else the least recently confirmed
// valid one; never a next hop, a permanent entry or one with packets waiting.
bool Neighbors::make_room(uint64_t now_ms) {
  (void)now_ms;
  size_t best = entries_.size();
  bool best_failed = false;
  uint64_t best_age = ~uint64_t(0);
  for (size_t i = 0; i < entries_.size(); ++i) {
    const NeighEntry* e = entries_[i].get();
    if (e->permanent || e->refs || !e->hold.empty()) continue;
    bool failed = !(e->mac.load(std::memory_order_relaxed) & NeighEntry::kValid);
    uint64_t age = failed ? e->last_used_ms : e->confirmed_ms;
    if ((failed && !best_failed) || (failed == best_failed && age < best_age)) {
      best = i;
      best_failed = failed;
      best_age = age;
    }
  }
  if (best == entries_.size()) return false;
  evict(best);
  return true;
}

void Neighbors::evict(size_t index) {
  NeighEntry* e = entries_[index].get();
  NeighKey k = make_neigh_key(e->port, e->ip.family, e->ip.bytes.data());
  int32_t pos = rte_hash_del_key(rt_.neigh_hash, &k);
  Retired r{std::move(entries_[index]), pos, rte_rcu_qsbr_start(rt_.qsbr)};
  entries_[index] = std::move(entries_.back());
  entries_.pop_back();
  retired_.push_back(std::move(r));
  rt_.counters->lcore[rte_lcore_id()].event(Event::neighbor_evicted);
}

void Neighbors::reclaim(bool wait) {
  for (size_t i = 0; i < retired_.size();) {
    Retired& r = retired_[i];
    if (rte_rcu_qsbr_check(rt_.qsbr, r.token, wait) != 1) {
      ++i;
      continue;
    }
    if (r.pos >= 0) rte_hash_free_key_with_position(rt_.neigh_hash, r.pos);
    retired_[i] = std::move(retired_.back());
    retired_.pop_back();
  }
}

bool Neighbors::is_local(uint16_t port, const IpAddr& ip) const {
  for (const auto& a : rt_.ports[port].addrs)
    if (a.addr == ip) return true;
  return false;
}

void Neighbors::send(uint16_t port, rte_mbuf* m) {
  uint16_t q = uint16_t(rt_.n_workers);  // the control thread's own tx queue
  auto& c = rt_.counters->lcore[rte_lcore_id()];
  uint32_t len = m->pkt_len;
  if (rte_eth_tx_burst(rt_.ports[port].eth_id, q, &m, 1) != 1) {
    c.drop(Drop::tx_full);
    rte_pktmbuf_free(m);
    return;
  }
  bump(c.ports[port].tx_packets);
  bump(c.ports[port].tx_bytes, len);
}

void Neighbors::learn(uint16_t port, const IpAddr& ip, const uint8_t* mac, bool create,
                      uint64_t now_ms) {
  NeighEntry* e = lookup(port, ip);
  if (!e && create) e = get(port, ip, now_ms);
  if (!e) return;
  rte_ether_addr a;
  std::memcpy(a.addr_bytes, mac, 6);
  if (rte_is_zero_ether_addr(&a) || rte_is_multicast_ether_addr(&a) || e->permanent) return;
  e->mac.store(NeighEntry::pack(a), std::memory_order_release);
  e->confirmed_ms = now_ms;
  e->last_used_ms = now_ms;
  e->probes = 0;
  e->next_probe_ms = now_ms + kReachableMs;
  release_holds(e);
}

bool Neighbors::add_static(uint16_t port, const IpAddr& ip, const rte_ether_addr& mac,
                           std::string* err) {
  if (rte_is_zero_ether_addr(&mac) || rte_is_multicast_ether_addr(&mac)) {
    *err = "not a unicast MAC address";
    return false;
  }
  NeighEntry* e = get(port, ip);
  if (!e) {
    *err = "neighbour table full";
    return false;
  }
  e->permanent = true;
  e->mac.store(NeighEntry::pack(mac), std::memory_order_release);
  e->probes = 0;
  release_holds(e);
  return true;
}

void Neighbors::release_holds(NeighEntry* e) {
  uint64_t mac = e->mac.load(std::memory_order_relaxed);
  while (!e->hold.empty()) {
    rte_mbuf* m = e->hold.front();
    e->hold.pop_front();
    --held_;
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    NeighEntry::unpack(mac, eth->dst_addr);
    eth->src_addr = rt_.ports[e->port].mac;
    rt_.counters->lcore[rte_lcore_id()].event(Event::forwarded);
    send(e->port, m);
  }
}

void Neighbors::drop_holds(NeighEntry* e) {
  auto& c = rt_.counters->lcore[rte_lcore_id()];
  for (rte_mbuf* m : e->hold) {
    c.drop(Drop::neighbor_unresolved);
    rte_pktmbuf_free(m);
    ++dropped_holds_;
  }
  held_ -= e->hold.size();
  e->hold.clear();
}

void Neighbors::hold(NeighEntry* e, rte_mbuf* m, uint64_t now_ms) {
  uint64_t mac = e->mac.load(std::memory_order_relaxed);
  e->last_used_ms = now_ms;
  if (mac & NeighEntry::kValid) {  // resolved while the packet was in the ring
    e->hold.push_back(m);
    ++held_;
    release_holds(e);
    return;
  }
  if (e->hold.size() >= kHoldMax || held_ >= hold_cap_) {
    count(e->hold.size() >= kHoldMax ? Drop::neighbor_unresolved : Drop::neighbor_hold_full);
    rte_pktmbuf_free(m);
    ++dropped_holds_;
    return;
  }
  if (e->hold.empty()) e->hold_since_ms = now_ms;
  e->hold.push_back(m);
  ++held_;
  if (e->probes == 0 || now_ms >= e->next_probe_ms) {
    probe(e, false);
    e->probes = 1;
    e->next_probe_ms = now_ms + kProbeIntervalMs;
  }
}

void Neighbors::receive(rte_mbuf* m, uint64_t now_ms) {
  HoldMeta* h = hold_meta(m);
  uint16_t port = h->port;
  if (port >= rt_.ports.size()) {
    rte_pktmbuf_free(m);
    return;
  }
  if (h->family == 0) {
    uint16_t et = load_be16(rte_pktmbuf_mtod(m, const uint8_t*) + 12);
    if (et == kEtherTypeArp) on_arp(port, m, now_ms);
    else on_nd(port, m, now_ms);
    return;
  }
  IpAddr ip;
  ip.family = h->family;
  std::memcpy(ip.bytes.data(), h->ip, h->family == 4 ? 4 : 16);
  NeighEntry* e = lookup(port, ip);
  if (!e) {
    // a new unresolved neighbour, made by a forwarded packet (anyone can send those): rate
    // limited, so a sweep over a connected prefix cannot churn the table or the probes
    uint64_t add = (now_ms - create_last_ms_) * kCreatePerSec / 1000;
    if (add) {
      create_tokens_ = std::min(kCreateBurst, create_tokens_ + add);
      create_last_ms_ = now_ms;
    }
    if (!create_tokens_) {
      count(Drop::neighbor_create_limited);
      rte_pktmbuf_free(m);
      return;
    }
    e = get(port, ip, now_ms);
    if (!e) {  // counted by get
      rte_pktmbuf_free(m);
      return;
    }
    --create_tokens_;
  }
  hold(e, m, now_ms);
}

void Neighbors::on_arp(uint16_t port, rte_mbuf* m, uint64_t now_ms) {
  auto& c = rt_.counters->lcore[rte_lcore_id()];
  const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint8_t* a = f + kEthHdrLen;
  if (m->data_len < kEthHdrLen + 28 || load_be16(a) != 1 || load_be16(a + 2) != kEtherTypeIpv4 ||
      a[4] != 6 || a[5] != 4) {
    c.drop(Drop::arp_bad);
    rte_pktmbuf_free(m);
    return;
  }
  uint16_t op = load_be16(a + 6);
  const uint8_t* sha = a + 8;
  IpAddr spa = IpAddr::v4(load_be32(a + 14));
  IpAddr tpa = IpAddr::v4(load_be32(a + 24));
  bool for_us = is_local(port, tpa);
  if ((op != 1 && op != 2) || (sha[0] & 1)) {
    c.drop(Drop::arp_bad);
    rte_pktmbuf_free(m);
    return;
  }
  // RFC 826: update an existing entry from any ARP; create one only if the target is us.
  if (spa.v4_host() != 0) learn(port, spa, sha, for_us, now_ms);
  if (op == 1 && for_us) {
    // turn the request into the reply in place
    uint8_t* w = rte_pktmbuf_mtod(m, uint8_t*);
    uint8_t* r = w + kEthHdrLen;
    const rte_ether_addr& me = rt_.ports[port].mac;
    std::memcpy(w, sha, 6);
    std::memcpy(w + 6, me.addr_bytes, 6);
    store_be16(r + 6, 2);
    uint8_t sender[10];
    std::memcpy(sender, r + 8, 10);        // requester's MAC + IP
    std::memcpy(r + 8, me.addr_bytes, 6);  // our MAC
    std::memcpy(r + 14, tpa.bytes.data(), 4);
    std::memcpy(r + 18, sender, 10);
    rte_pktmbuf_trim(m, uint16_t(m->data_len - (kEthHdrLen + 28)));
    send(port, m);
    return;
  }
  rte_pktmbuf_free(m);
}

void Neighbors::on_nd(uint16_t port, rte_mbuf* m, uint64_t now_ms) {
  auto& c = rt_.counters->lcore[rte_lcore_id()];
  uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
  Parsed p;
  if (!parse_frame(f, m->data_len, p).is_ok() || p.l3 != L3::kIpv6 || p.l4_proto != 58) {
    c.drop(Drop::nd_bad);
    rte_pktmbuf_free(m);
    return;
  }
  uint8_t* ip6 = f + p.l3_off;
  uint8_t* icmp = f + p.l4_off;
  uint32_t icmp_len = uint32_t(p.l3_off + p.l3_len - p.l4_off);
  // RFC 4861 7.1.1/7.1.2 validity checks
  if (icmp_len < 24 || ip6[7] != 255 || icmp[1] != 0 ||
      icmp6_checksum(ip6, icmp, icmp_len, 58) != 0) {
    c.drop(Drop::nd_bad);
    rte_pktmbuf_free(m);
    return;
  }
  IpAddr target = IpAddr::v6(icmp + 8);
  const uint8_t* ll = nullptr;
  for (uint32_t off = 24; off + 2 <= icmp_len;) {
    uint32_t olen = uint32_t(icmp[off + 1]) * 8;
    if (olen == 0 || off + olen > icmp_len) {
      c.drop(Drop::nd_bad);
      rte_pktmbuf_free(m);
      return;
    }
    uint8_t want = icmp[0] == kNdNs ? kOptSrcLl : kOptTgtLl;
    if (icmp[off] == want && olen >= 8) ll = icmp + off + 2;
    off += olen;
  }
  IpAddr src = IpAddr::v6(ip6 + 8);
  if (icmp[0] == kNdNa) {
    if (ll) learn(port, target, ll, false, now_ms);
    rte_pktmbuf_free(m);
    return;
  }
  // neighbour solicitation
  bool dad = ipv6_is_unspecified(ip6 + 8);
  if (!dad && ll) learn(port, src, ll, is_local(port, target), now_ms);
  if (!is_local(port, target)) {
    rte_pktmbuf_free(m);
    return;
  }
  // Reply with a solicited (unless DAD), override, router advertisement in a fresh packet.
  rte_mbuf* r = rte_pktmbuf_alloc(rt_.pool);
  if (!r) {
    c.drop(Drop::alloc_failed);
    rte_pktmbuf_free(m);
    return;
  }
  const rte_ether_addr& me = rt_.ports[port].mac;
  uint8_t* o = rte_pktmbuf_mtod(r, uint8_t*);
  const uint32_t plen = 32;  // NA header 24 + target link-layer option 8
  static const uint8_t all_nodes[16] = {0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  if (dad) {
    rte_ether_addr mc{{0x33, 0x33, 0, 0, 0, 1}};
    std::memcpy(o, mc.addr_bytes, 6);
  } else {
    std::memcpy(o, f + 6, 6);
  }
  std::memcpy(o + 6, me.addr_bytes, 6);
  store_be16(o + 12, kEtherTypeIpv6);
  uint8_t* h = o + kEthHdrLen;
  std::memset(h, 0, 40 + plen);
  h[0] = 0x60;
  store_be16(h + 4, uint16_t(plen));
  h[6] = 58;
  h[7] = 255;
  std::memcpy(h + 8, target.bytes.data(), 16);
  std::memcpy(h + 24, dad ? all_nodes : ip6 + 8, 16);
  uint8_t* na = h + 40;
  na[0] = kNdNa;
  na[4] = uint8_t(0x80 /*router*/ | (dad ? 0 : 0x40) /*solicited*/ | 0x20 /*override*/);
  std::memcpy(na + 8, target.bytes.data(), 16);
  na[24] = kOptTgtLl;
  na[25] = 1;
  std::memcpy(na + 26, me.addr_bytes, 6);
  store_be16(na + 2, icmp6_checksum(h, na, plen, 58));
  r->data_len = uint16_t(kEthHdrLen + 40 + plen);
  r->pkt_len = r->data_len;
  rte_pktmbuf_free(m);
  send(port, r);
}

void Neighbors::probe(NeighEntry* e, bool unicast) {
  const PortRt& port = rt_.ports[e->port];
  const IpAddr& src = e->ip.is_v4() ? port.src4 : port.src6;
  if (!src.is_set()) return;
  rte_mbuf* m = rte_pktmbuf_alloc(rt_.pool);
  if (!m) {
    rt_.counters->lcore[rte_lcore_id()].drop(Drop::alloc_failed);
    return;
  }
  uint8_t* o = rte_pktmbuf_mtod(m, uint8_t*);
  uint64_t known = e->mac.load(std::memory_order_relaxed);
  rte_ether_addr dst;
  if (e->ip.is_v4()) {
    if (unicast && (known & NeighEntry::kValid)) NeighEntry::unpack(known, dst);
    else dst = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
    std::memcpy(o, dst.addr_bytes, 6);
    std::memcpy(o + 6, port.mac.addr_bytes, 6);
    store_be16(o + 12, kEtherTypeArp);
    uint8_t* a = o + kEthHdrLen;
    store_be16(a, 1);
    store_be16(a + 2, kEtherTypeIpv4);
    a[4] = 6;
    a[5] = 4;
    store_be16(a + 6, 1);
    std::memcpy(a + 8, port.mac.addr_bytes, 6);
    std::memcpy(a + 14, src.bytes.data(), 4);
    std::memset(a + 18, 0, 6);
    std::memcpy(a + 24, e->ip.bytes.data(), 4);
    m->data_len = kEthHdrLen + 28;
  } else {
    uint8_t dip[16];
    solicited_node(e->ip.bytes.data(), dip, dst);
    if (unicast && (known & NeighEntry::kValid)) {
      NeighEntry::unpack(known, dst);
      std::memcpy(dip, e->ip.bytes.data(), 16);
    }
    std::memcpy(o, dst.addr_bytes, 6);
    std::memcpy(o + 6, port.mac.addr_bytes, 6);
    store_be16(o + 12, kEtherTypeIpv6);
    uint8_t* h = o + kEthHdrLen;
    const uint32_t plen = 32;
    std::memset(h, 0, 40 + plen);
    h[0] = 0x60;
    store_be16(h + 4, uint16_t(plen));
    h[6] = 58;
    h[7] = 255;
    std::memcpy(h + 8, src.bytes.data(), 16);
    std::memcpy(h + 24, dip, 16);
    uint8_t* ns = h + 40;
    ns[0] = kNdNs;
    std::memcpy(ns + 8, e->ip.bytes.data(), 16);
    ns[24] = kOptSrcLl;
    ns[25] = 1;
    std::memcpy(ns + 26, port.mac.addr_bytes, 6);
    store_be16(ns + 2, icmp6_checksum(h, ns, plen, 58));
    m->data_len = uint16_t(kEthHdrLen + 40 + plen);
  }
  m->pkt_len = m->data_len;
  send(e->port, m);
}

void Neighbors::tick(uint64_t now_ms) {
  reclaim(false);
  for (size_t i = 0; i < entries_.size(); ++i) {
    NeighEntry* e = entries_[i].get();
    if (e->permanent) continue;
    bool valid = e->mac.load(std::memory_order_relaxed) & NeighEntry::kValid;
    if (!valid) {
      if (e->hold.empty()) {
        // failed (or never needed again): gone after a while unless a route uses it
        if (!e->refs && now_ms - e->last_used_ms > kFailedLingerMs) evict(i--);
        continue;
      }
      if (now_ms < e->next_probe_ms) continue;
      if (e->probes >= kMaxProbes) {  // give up on what is held; a new packet starts over
        drop_holds(e);
        e->probes = 0;
        continue;
      }
      probe(e, false);
      ++e->probes;
      e->next_probe_ms = now_ms + kProbeIntervalMs;
      continue;
    }
    // Valid: re-confirm entries in use (next hops, or seen recently) with unicast probes.
    if (now_ms < e->next_probe_ms) continue;
    if (e->probes >= kMaxProbes) {
      e->mac.store(0, std::memory_order_release);  // unreachable: workers hold/probe again
      e->probes = 0;
      continue;
    }
    probe(e, true);
    ++e->probes;
    e->next_probe_ms = now_ms + kProbeIntervalMs;
  }
}

std::vector<NeighborView> Neighbors::view() const {
  std::vector<NeighborView> out;
  for (const auto& e : entries_) {
    uint64_t mac = e->mac.load(std::memory_order_relaxed);
    bool valid = mac & NeighEntry::kValid;
    NeighborView v;
    v.address = e->ip;
    v.port = rt_.ports[e->port].name;
    v.mac = valid ? mac_str(mac) : "";
    v.state = e->permanent ? "permanent"
              : valid      ? (e->probes ? "probe" : "reachable")
                           : (e->hold.empty() ? "failed" : "incomplete");
    v.held = e->hold.size();
    v.refs = e->refs;
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace espgw::dp
