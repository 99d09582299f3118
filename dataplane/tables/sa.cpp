#include "dataplane/tables/sa.h"

#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_jhash.h>
#include <rte_lcore.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <algorithm>

#include "dataplane/control.h"
#include "dataplane/runtime.h"

namespace espgw::dp {

namespace {
constexpr const char* kSaDropNames[] = {
#define X(n) #n,
    ESPGW_SA_DROPS(X)
#undef X
};

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
  for (auto& t : tunnels_)
    if (t && t->out.load() == sa) t->out.store(nullptr, std::memory_order_release);
  // No worker may still hold the pointer once every worker has passed a quiescent state.
  rte_rcu_qsbr_synchronize(rt_.qsbr, RTE_QSBR_THRID_INVALID);
  if (pos >= 0) rte_hash_free_key_with_position(rt_.spi_hash, pos);
  sas_[id] = nullptr;
  delete sa;
  free_sas_.push_back(id);
  return true;
}

uint32_t SaTable::add_tunnel(const std::string& name, uint16_t mss_clamp, uint16_t mtu,
                             std::vector<Prefix> remote_ts, std::string* err) {
  if (tunnels_.size() >= kMaxTunnels) {
    *err = "too many tunnels";
    return 0;
  }
  auto t = std::make_unique<TunnelRt>();
  uint32_t id = uint32_t(tunnels_.size());
  t->id = id;
  t->name = name;
  t->mss_clamp = mss_clamp;
  t->mtu = mtu;
  t->remote_ts = std::move(remote_ts);
  if (tunnel_ids_.count(name)) {
    *err = "tunnel " + name + " exists";
    return 0;
  }
  rt_.tunnels[id].store(t.get(), std::memory_order_release);
  tunnel_ids_[name] = id;
  tunnels_.push_back(std::move(t));
  return id;
}

bool SaTable::bind_tunnel(uint32_t tid, uint32_t said, std::string* err) {
  TunnelRt* t = tunnel(tid);
  SaRt* sa = this->sa(said);
  if (!t || !sa) {
    *err = "no such tunnel or SA";
    return false;
  }
  sa->tunnel = tid;
  if (!sa->inbound) {
    SaRt* old = t->out.exchange(sa, std::memory_order_acq_rel);
    (void)old;  // the caller deletes the old SA when it is done with it (make-before-break)
  }
  return true;
}

void SaTable::tick(uint64_t now_ms) {
  // lifetime events the workers raised: here they are logged; IKE will rekey/delete on them
  void* ev[32];
  unsigned n;
  while ((n = rte_ring_sc_dequeue_burst(rt_.sa_events, ev, 32, nullptr)) > 0) {
    for (unsigned i = 0; i < n; ++i) {
      uintptr_t v = reinterpret_cast<uintptr_t>(ev[i]);
      uint32_t id = uint32_t(v >> 8);
      auto kind = SaEvent(v & 0xff);
      if (SaRt* sa = this->sa(id))
        std::printf("espgw: SA %u (SPI 0x%08x) %s lifetime reached\n", id, sa->spi,
                    kind == SaEvent::kSoftExpired ? "soft" : "hard");
    }
    std::fflush(stdout);
  }
  bool said = false;
  for (uint32_t id = 1; id < next_sa_; ++id) {
    SaRt* sa = sas_[id];
    if (!sa) continue;
    uint64_t age_s = (now_ms - ctl_[id].created_ms) / 1000;
    if (ctl_[id].hard_seconds && age_s >= ctl_[id].hard_seconds &&
        !sa->expired.exchange(1)) {
      std::printf("espgw: SA %u (SPI 0x%08x) hard lifetime (seconds) reached\n", id, sa->spi);
      said = true;
    } else if (ctl_[id].soft_seconds && age_s >= ctl_[id].soft_seconds &&
               !sa->soft_fired.exchange(1)) {
      std::printf("espgw: SA %u (SPI 0x%08x) soft lifetime (seconds) reached\n", id, sa->spi);
      said = true;
    }
  }
  if (said) std::fflush(stdout);
}

nlohmann::ordered_json SaTable::sas_json() const {
  nlohmann::ordered_json a = nlohmann::ordered_json::array();
  uint64_t now = monotonic_ms();
  for (uint32_t id = 1; id < next_sa_; ++id) {
    SaRt* sa = sas_[id];
    if (!sa) continue;
    nlohmann::ordered_json drops = nlohmann::ordered_json::object();
    for (size_t i = 0; i < size_t(SaDrop::kCount); ++i)
      drops[kSaDropNames[i]] = sa->drops[i].load(std::memory_order_relaxed);
    char spi[16];
    std::snprintf(spi, sizeof spi, "0x%08x", sa->spi);
    const TunnelRt* t = tunnel(sa->tunnel);
    uint64_t age = (now - ctl_[id].created_ms) / 1000;
    a.push_back({{"id", id},
                 {"tunnel", t ? t->name : ""},
                 {"direction", sa->inbound ? "in" : "out"},
                 {"spi", spi},
                 {"algorithm", std::string(crypto::info(ctl_[id].algo).name)},
                 {"local", sa->local.str()},
                 {"remote", sa->remote.str()},
                 {"encap", sa->udp_encap ? "udp4500" : "esp"},
                 {"esn", sa->esn},
                 {"state", sa->expired.load() ? "expired" : "active"},
                 {"packets", sa->packets.load(std::memory_order_relaxed)},
                 {"bytes", sa->bytes.load(std::memory_order_relaxed)},
                 {"seq", sa->inbound ? sa->replay.top() : last_seq(*sa)},
                 {"replay_window", sa->inbound ? sa->replay.size() : 0},
                 {"owner_worker", sa->inbound ? int(sa->owner_queue) : -1},
                 {"age_seconds", age},
                 {"hard_seconds_left",
                  ctl_[id].hard_seconds ? int64_t(ctl_[id].hard_seconds) - int64_t(age) : -1},
                 {"drops", drops}});
    if (sa->inbound && !sa->remote_ts.empty()) {
      nlohmann::ordered_json ts = nlohmann::ordered_json::array();
      for (const auto& p : sa->remote_ts) ts.push_back(p.str());
      a.back()["remote_ts"] = ts;
    }
  }
  return a;
}

nlohmann::ordered_json SaTable::tunnels_json() const {
  nlohmann::ordered_json a = nlohmann::ordered_json::array();
  for (size_t i = 1; i < tunnels_.size(); ++i) {
    const TunnelRt* t = tunnels_[i].get();
    if (!t) continue;
    const SaRt* out = t->out.load();
    uint64_t in_pk = 0, in_b = 0;
    char spi_in[16] = "", spi_out[16] = "";
    for (uint32_t id = 1; id < next_sa_; ++id)
      if (sas_[id] && sas_[id]->tunnel == t->id && sas_[id]->inbound) {
        in_pk += sas_[id]->packets.load();
        in_b += sas_[id]->bytes.load();
        std::snprintf(spi_in, sizeof spi_in, "0x%08x", sas_[id]->spi);
      }
    if (out) std::snprintf(spi_out, sizeof spi_out, "0x%08x", out->spi);
    a.push_back({{"name", t->name},
                 {"state", out && !out->expired.load() ? "up" : "down"},
                 {"remote", out ? out->remote.str() : ""},
                 {"spi_in", spi_in},
                 {"spi_out", spi_out},
                 {"mtu", t->mtu},
                 {"mss_clamp", t->mss_clamp},
                 {"packets_in", in_pk},
                 {"bytes_in", in_b},
                 {"packets_out", out ? out->packets.load() : 0},
                 {"bytes_out", out ? out->bytes.load() : 0}});
  }
  return a;
}

}  // namespace espgw::dp
