// Security associations and tunnels as the workers see them, and the one narrow interface the
// control plane (static config now, IKE later) uses to install them: add_sa / del_sa /
// bind_tunnel. Hot records are cache-aligned; everything the control thread replaces is freed
// only after an RCU grace period.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/dataplane.h"
#include "dataplane/net/ip.h"
#include "crypto/algo.h"
#include "crypto/sa_crypto.h"
#include "dataplane/tables/replay.h"

struct rte_hash;
struct rte_ring;
struct rte_rcu_qsbr;

namespace espgw::dp {

struct Runtime;

// Lifetime events for the control thread (an rte_ring of these, packed into a pointer-sized word).
enum class SaEvent : uint8_t { kSoftExpired = 1, kHardExpired = 2 };

// The hot runtime record of one SA.
struct alignas(64) SaRt {
  crypto::SaCrypto crypto;        // expanded keys; read-only after creation
  uint32_t spi = 0;
  uint32_t id = 0;                // index in the SA table
  uint32_t tunnel = 0;            // owning tunnel id (0 = none yet)
  bool inbound = false;
  bool esn = false;
  bool udp_encap = false;
  bool v6 = false;                // outer family
  uint8_t iv_len = 0, icv_len = 0, block = 4;
  uint16_t owner_queue = 0;       // inbound: the worker that owns the replay window
  uint16_t sport = 4500, dport = 4500;
  IpAddr local, remote;
  uint8_t local_b[16], remote_b[16];
  SaLimits soft, hard;
  std::vector<Prefix> remote_ts;  // inbound: see SaParams; immutable once published

  // outbound: last sequence number used (the next packet gets seq + 1); shared by workers
  alignas(64) std::atomic<uint64_t> seq{0};
  // outbound: the highest sequence number that may be used. The control thread raises it only
  // after the reservation is on disk (manually keyed SAs, control/state/seq_store.h), so a
  // restart can never send a (key, sequence number) pair twice. ~0 = no reservation needed.
  std::atomic<uint64_t> seq_limit{~uint64_t(0)};
  std::atomic<uint64_t> bytes{0}, packets{0};
  std::atomic<uint8_t> soft_fired{0};
  std::atomic<uint8_t> expired{0};  // hard limit, seq exhaustion or deleted: drop everything
  std::atomic<uint64_t> drops[size_t(SaDrop::kCount)] = {};

  // inbound: one writer (the owner worker)
  alignas(64) ReplayWindow replay;
};


struct alignas(64) TunnelRt {
  uint32_t id = 0;
  std::string name;
  std::atomic<SaRt*> out{nullptr};       // current outbound SA (make-before-break swaps it)
  uint16_t mss_clamp = 0;                // 0 = off
  uint16_t mtu = 1400;                   // inner MTU: larger packets get ICMP/fragmentation
  std::vector<Prefix> remote_ts;         // inner sources accepted from the peer (empty = any)
  bool reported_up = false;              // control thread: the last up/down event raised
};

// Control-thread owner of SAs and tunnels.
class SaTable {
 public:
  // Events (SA lifetimes, tunnel up/down) are appended to *events.
  SaTable(Runtime& rt, std::vector<DpEvent>* events) : rt_(rt), events_(events) {}
  ~SaTable();
  bool init(std::string* err);

  // Behind the facade's add_sa/del_sa/add_tunnel/bind_tunnel. Returns the SA id (>0) or 0 with err.
  uint32_t add_sa(const SaParams& p, std::string* err);
  bool del_sa(uint32_t id);  // unpublishes, waits a grace period, frees (wipes keys)
  // The inner MTU comes from the port that owns p.local (tunnel_mtu in dataplane.h).
  uint32_t add_tunnel(const TunnelParams& p, std::string* err);
  // Binds an outbound SA (or an inbound SA, which only records its tunnel) to a tunnel.
  bool bind_tunnel(uint32_t tunnel, uint32_t sa, std::string* err, bool send = true);

  SaRt* sa(uint32_t id) const { return id < sas_.size() ? sas_[id] : nullptr; }
  TunnelRt* tunnel(uint32_t id) const;
  uint32_t tunnel_by_name(const std::string& name) const;

  // Lifetime events from the workers (call every loop pass: the ring is bounded).
  void drain_worker_events();
  // Seconds-based lifetimes; call about every 100 ms.
  void tick(uint64_t now_ms);

  SaStats stats(uint32_t id) const;
  std::vector<SaView> view() const;
  std::vector<TunnelView> tunnels_view() const;

 private:
  struct SaCtl {  // cold control record
    uint64_t created_ms = 0;
    uint32_t soft_seconds = 0, hard_seconds = 0;
    crypto::Algo algo;
  };
  void event(EventKind k, const SaRt& sa, bool by_time = false);
  void report(TunnelRt* t);  // raises up/down if the tunnel's liveness changed

  Runtime& rt_;
  std::vector<DpEvent>* events_;
  std::vector<SaRt*> sas_ = std::vector<SaRt*>(kMaxSas, nullptr);
  std::vector<SaCtl> ctl_ = std::vector<SaCtl>(kMaxSas);
  std::vector<std::unique_ptr<TunnelRt>> tunnels_;  // index = id; [0] unused
  std::unordered_map<std::string, uint32_t> tunnel_ids_;
  uint32_t next_sa_ = 1;
  uint32_t next_owner_ = 0;  // round robin of inbound SAs over the workers
  std::vector<uint32_t> free_sas_;
};

}  // namespace espgw::dp
