#include "dataplane/tables/sa.h"

#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_jhash.h>
#include <rte_lcore.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <algorithm>

#include "dataplane/runtime.h"

namespace espgw::dp {

const char* const kSaDropNames[size_t(SaDrop::kCount)] = {
#define X(n) #n,
    ESPGW_SA_DROPS(X)
#undef X
};

namespace {

// The last outbound sequence number used. Workers take numbers with fetch_add before they
// check for exhaustion, so without ESN the counter may stand past 2^32 - 1 numbers never sent.
uint64_t last_seq(const SaRt& sa) {
  uint64_t s = sa.seq.load(std::memory_order_relaxed);
  return sa.esn ? s : std::min<uint64_t>(s, 0xffffffffull);
}
}  // namespace

SaTable::~SaTable() {
  for (auto*& s : sas_) {
    delete s;  // SaCrypto wipes its keys
    s = nullptr;
  }
  if (rt_.spi_hash) rte_hash_free(rt_.spi_hash);
  rt_.spi_hash = nullptr;
}

bool SaTable::init(std::string* err) {
  rte_hash_parameters p{};
  p.name = "espgw_spi";
  p.entries = kMaxSas;
  p.key_len = sizeof(uint32_t);
  p.hash_func = rte_jhash;
  p.socket_id = int(rte_socket_id());
  // lock-free readers; deleted key slots are freed by us after a grace period
  p.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_NO_FREE_ON_DEL;
  rt_.spi_hash = rte_hash_create(&p);
  if (!rt_.spi_hash) {
    *err = std::string("cannot create the SPI table: ") + rte_strerror(rte_errno);
    return false;
  }
  tunnels_.resize(1);
  return true;
}

TunnelRt* SaTable::tunnel(uint32_t id) const {
  return id && id < tunnels_.size() ? tunnels_[id].get() : nullptr;
}

uint32_t SaTable::tunnel_by_name(const std::string& name) const {
  auto it = tunnel_ids_.find(name);
  return it == tunnel_ids_.end() ? 0 : it->second;
}

uint32_t SaTable::add_sa(const SaParams& p, std::string* err) {
  if (p.spi < 256) {
    *err = "SPI " + std::to_string(p.spi) + " is reserved (RFC 4303: 1-255)";
    return 0;
  }
  if (p.local.family != p.remote.family || !p.local.is_set()) {
    *err = "SA outer addresses must be set and of one family";
    return 0;
  }
  if (!p.inbound && p.seq_start >= (p.esn ? ~uint64_t(0) : 0xffffffffull)) {
    *err = "seq_start " + std::to_string(p.seq_start) + " leaves no sequence number";
    return 0;
  }
  if (p.inbound && rte_hash_lookup(rt_.spi_hash, &p.spi) >= 0) {
    *err = "inbound SPI " + std::to_string(p.spi) + " is already in use";
    return 0;
  }
  uint32_t id;
  if (!free_sas_.empty()) {
    id = free_sas_.back();
    free_sas_.pop_back();
  } else if (next_sa_ < kMaxSas) {
    id = next_sa_++;
  } else {
    *err = "SA table full";
    return 0;
  }
  auto sa = std::make_unique<SaRt>();
  if (!crypto::SaCrypto::init(sa->crypto, p.algo, p.key, p.key_len)) {
    free_sas_.push_back(id);
    *err = "key material does not fit " + std::string(crypto::info(p.algo).name);
    return 0;
  }
  const auto& ai = crypto::info(p.algo);
  sa->spi = p.spi;
  sa->id = id;
  sa->inbound = p.inbound;
  sa->esn = p.esn;
  sa->udp_encap = p.udp_encap;
  sa->v6 = p.local.is_v6();
  sa->iv_len = ai.iv_len;
  sa->icv_len = ai.icv_len;
  sa->block = ai.block;
  sa->sport = p.sport;
  sa->dport = p.dport;
  sa->local = p.local;
  sa->remote = p.remote;
  std::memcpy(sa->local_b, p.local.bytes.data(), 16);
  std::memcpy(sa->remote_b, p.remote.bytes.data(), 16);
  sa->soft = p.soft;
  sa->hard = p.hard;
  sa->remote_ts = p.remote_ts;
  // inbound SAs are spread round robin over the workers (the SA id alternates between outbound
  // and inbound SAs, so id % workers would give every inbound SA of a tunnel pair one worker)
  if (p.inbound) sa->owner_queue = uint16_t(next_owner_++ % rt_.n_workers);
  sa->replay.init(p.replay_window, p.esn);
  if (!p.inbound) {
    sa->seq.store(p.seq_start, std::memory_order_relaxed);
    sa->seq_limit.store(p.seq_limit, std::memory_order_relaxed);
  }
  sa->bytes.store(p.bytes_start, std::memory_order_relaxed);
  sa->packets.store(p.packets_start, std::memory_order_relaxed);
  SaRt* raw = sa.release();
  sas_[id] = raw;
  ctl_[id] = {monotonic_ms(), p.soft_seconds, p.hard_seconds, p.algo};
  if (p.inbound && rte_hash_add_key_data(rt_.spi_hash, &p.spi, raw) != 0) {
    sas_[id] = nullptr;
    delete raw;
    free_sas_.push_back(id);
    *err = "SPI table full";
    return 0;
  }
  return id;
}

bool SaTable::del_sa(uint32_t id) {
  SaRt* sa = this->sa(id);
  if (!sa) return false;
  sa->expired.store(1, std::memory_order_release);
  int32_t pos = -1;
  if (sa->inbound) pos = rte_hash_del_key(rt_.spi_hash, &sa->spi);
  TunnelRt* lost = nullptr;
  for (auto& t : tunnels_)
    if (t && t->out.load() == sa) {
      t->out.store(nullptr, std::memory_order_release);
      lost = t.get();
    }
  // No worker may still hold the pointer once every worker has passed a quiescent state.
  rte_rcu_qsbr_synchronize(rt_.qsbr, RTE_QSBR_THRID_INVALID);
  if (pos >= 0) rte_hash_free_key_with_position(rt_.spi_hash, pos);
  sas_[id] = nullptr;
  delete sa;
  free_sas_.push_back(id);
  report(lost);
  return true;
}

uint16_t tunnel_mtu(unsigned port_mtu, bool v6, bool udp_encap, crypto::Algo algo) {
  const auto& ai = crypto::info(algo);
  unsigned fixed = (v6 ? 40 : 20) + (udp_encap ? 8 : 0) + 8 + ai.iv_len + ai.icv_len;
  unsigned room = port_mtu > fixed ? port_mtu - fixed : 0;
  unsigned block = ai.block < 4 ? 4 : ai.block;
  unsigned aligned = room / block * block;  // whole blocks, then pad length + next header
  return uint16_t(aligned > 2 ? aligned - 2 : 0);
}

uint32_t SaTable::add_tunnel(const TunnelParams& p, std::string* err) {
  const std::string& name = p.name;
  if (tunnels_.size() >= kMaxTunnels) {
    *err = "too many tunnels";
    return 0;
  }
  auto t = std::make_unique<TunnelRt>();
  uint32_t id = uint32_t(tunnels_.size());
  t->id = id;
  t->name = name;
  t->mss_clamp = p.mss_clamp;
  unsigned port_mtu = 1500;
  for (const auto& port : rt_.ports)
    for (const auto& a : port.addrs)
      if (a.addr == p.local) port_mtu = port.mtu;
  t->mtu = tunnel_mtu(port_mtu, p.local.is_v6(), p.udp_encap, p.algo);
  t->remote_ts = p.remote_ts;
  if (tunnel_ids_.count(name)) {
    *err = "tunnel " + name + " exists";
    return 0;
  }
  rt_.tunnels[id].store(t.get(), std::memory_order_release);
  tunnel_ids_[name] = id;
  tunnels_.push_back(std::move(t));
  return id;
}

bool SaTable::bind_tunnel(uint32_t tid, uint32_t said, std::string* err, bool send) {
  TunnelRt* t = tunnel(tid);
  SaRt* sa = this->sa(said);
  if (!t || !sa) {
    *err = "no such tunnel or SA";
    return false;
  }
  sa->tunnel = tid;
  if (!sa->inbound && send) {
    SaRt* old = t->out.exchange(sa, std::memory_order_acq_rel);
    (void)old;  // the caller deletes the old SA when it is done with it (make-before-break)
    report(t);
  }
  return true;
}

void SaTable::event(EventKind k, const SaRt& sa, bool by_time) {
  if (events_) events_->push_back({k, sa.id, sa.spi, sa.inbound, sa.tunnel, by_time});
}

void SaTable::report(TunnelRt* t) {
  if (!t) return;
  const SaRt* out = t->out.load(std::memory_order_acquire);
  bool up = out && !out->expired.load(std::memory_order_acquire);
  if (up == t->reported_up) return;
  t->reported_up = up;
  if (events_)
    events_->push_back({up ? EventKind::kTunnelUp : EventKind::kTunnelDown, out ? out->id : 0,
                        out ? out->spi : 0, false, t->id, false});
}

void SaTable::drain_worker_events() {
  // lifetime events the workers raised (bytes, packets, sequence space)
  void* ev[32];
  unsigned n;
  while ((n = rte_ring_sc_dequeue_burst(rt_.sa_events, ev, 32, nullptr)) > 0) {
    for (unsigned i = 0; i < n; ++i) {
      uintptr_t v = reinterpret_cast<uintptr_t>(ev[i]);
      uint32_t id = uint32_t(v >> 8);
      auto kind = SaEvent(v & 0xff);
      if (SaRt* sa = this->sa(id)) {
        event(kind == SaEvent::kSoftExpired ? EventKind::kSaSoftExpired : EventKind::kSaHardExpired,
              *sa);
        if (kind == SaEvent::kHardExpired && !sa->inbound) report(tunnel(sa->tunnel));
      }
    }
  }
}

void SaTable::tick(uint64_t now_ms) {
  for (uint32_t id = 1; id < next_sa_; ++id) {
    SaRt* sa = sas_[id];
    if (!sa) continue;
    uint64_t age_s = (now_ms - ctl_[id].created_ms) / 1000;
    if (ctl_[id].hard_seconds && age_s >= ctl_[id].hard_seconds && !sa->expired.exchange(1)) {
      event(EventKind::kSaHardExpired, *sa, true);
      if (!sa->inbound) report(tunnel(sa->tunnel));
    } else if (ctl_[id].soft_seconds && age_s >= ctl_[id].soft_seconds &&
               !sa->soft_fired.exchange(1)) {
      event(EventKind::kSaSoftExpired, *sa, true);
    }
  }
}

SaStats SaTable::stats(uint32_t id) const {
  SaStats st;
  const SaRt* sa = this->sa(id);
  if (!sa) return st;
  st.exists = true;
  st.spi = sa->spi;
  st.inbound = sa->inbound;
  st.esn = sa->esn;
  st.expired = sa->expired.load(std::memory_order_relaxed);
  st.seq = sa->inbound ? sa->replay.top() : sa->seq.load(std::memory_order_acquire);
  st.seq_limit = sa->seq_limit.load(std::memory_order_relaxed);
  st.packets = sa->packets.load(std::memory_order_relaxed);
  st.bytes = sa->bytes.load(std::memory_order_relaxed);
  return st;
}

std::vector<SaView> SaTable::view() const {
  std::vector<SaView> out;
  uint64_t now = monotonic_ms();
  for (uint32_t id = 1; id < next_sa_; ++id) {
    SaRt* sa = sas_[id];
    if (!sa) continue;
    SaView v;
    v.id = id;
    for (size_t i = 0; i < size_t(SaDrop::kCount); ++i)
      v.drops[i] = sa->drops[i].load(std::memory_order_relaxed);
    const TunnelRt* t = tunnel(sa->tunnel);
    v.tunnel = t ? t->name : "";
    v.inbound = sa->inbound;
    v.spi = sa->spi;
    v.algo = ctl_[id].algo;
    v.local = sa->local;
    v.remote = sa->remote;
    v.udp_encap = sa->udp_encap;
    v.esn = sa->esn;
    v.expired = sa->expired.load();
    v.packets = sa->packets.load(std::memory_order_relaxed);
    v.bytes = sa->bytes.load(std::memory_order_relaxed);
    v.seq = sa->inbound ? sa->replay.top() : last_seq(*sa);
    v.replay_window = sa->inbound ? sa->replay.size() : 0;
    v.owner_worker = sa->inbound ? int(sa->owner_queue) : -1;
    v.age_seconds = (now - ctl_[id].created_ms) / 1000;
    v.hard_seconds_left =
        ctl_[id].hard_seconds ? int64_t(ctl_[id].hard_seconds) - int64_t(v.age_seconds) : -1;
    if (sa->inbound) v.remote_ts = sa->remote_ts;
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<TunnelView> SaTable::tunnels_view() const {
  std::vector<TunnelView> out;
  for (size_t i = 1; i < tunnels_.size(); ++i) {
    const TunnelRt* t = tunnels_[i].get();
    if (!t) continue;
    const SaRt* o = t->out.load();
    TunnelView v;
    v.id = t->id;
    v.name = t->name;
    for (uint32_t id = 1; id < next_sa_; ++id)
      if (sas_[id] && sas_[id]->tunnel == t->id && sas_[id]->inbound) {
        v.packets_in += sas_[id]->packets.load();
        v.bytes_in += sas_[id]->bytes.load();
        v.spi_in = sas_[id]->spi;
      }
    v.up = o && !o->expired.load();
    if (o) {
      v.remote = o->remote;
      v.spi_out = o->spi;
      v.packets_out = o->packets.load();
      v.bytes_out = o->bytes.load();
    }
    v.mtu = t->mtu;
    v.mss_clamp = t->mss_clamp;
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace espgw::dp
