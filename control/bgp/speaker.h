// The BGP speaker: the peers (fsm.h), the RIB (rib.h), import and export policy, and the
// Adj-RIB-Out packing of UPDATEs. Time and the network are injected: every entry point takes
// `now` (ms) and the Transport carries the bytes, so two speakers can run in one test process.
//
// Import (per peer): AS-path loop detection (our ASN in the path), the first AS must be the
// peer's, prefixes inside (or equal to) our own address spaces are refused (a more-specific would
// pull our own traffic away; a supernet such as a default route is fine), max-prefix with an
// action.
// Export (to each peer): our address spaces, and transit: the best route learned from one peer
// goes to the others with our ASN prepended and next hop self, never back to the peer it came
// from nor to a peer whose ASN is already in the path, a learned default route only to peers
// configured for it (PeerConfig::advertise_default),
// NO_EXPORT / NO_ADVERTISE honoured, MED and LOCAL_PREF not passed on.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "control/bgp/fsm.h"
#include "control/bgp/rib.h"

namespace espgw::bgp {

struct SpeakerConfig {
  LocalSpeaker local;
  std::vector<Prefix> originate;  // the gateway's address spaces
  unsigned max_paths = 8;         // multipath (ECMP) width
  // Operator log lines ("peer site (10.52.255.253): Established -> Idle: hold timer expired"),
  // at most kLogBurst per peer per kLogWindowMs; unset = no log.
  std::function<void(const std::string&)> log;
};

inline constexpr unsigned kLogBurst = 20;
// A ROUTE-REFRESH makes us send a family's whole table again: a 23-byte message for megabytes
// of UPDATEs. Requests are served at the next flush (any number received in between count as
// one) and at most once per family per peer in this interval; later ones wait, none is lost.
inline constexpr uint64_t kRefreshIntervalMs = 5000;
inline constexpr uint64_t kLogWindowMs = 60'000;

// Where selected routes go (the data-plane FIB through the route table). `paths` holds the
// selected learned paths of the prefix (best first, then the equal-cost ones); empty = remove.
class FibSink {
 public:
  virtual ~FibSink() = default;
  virtual void fib_update(const Prefix& p, const std::vector<const Path*>& paths) = 0;
  virtual void fib_commit() = 0;  // end of a batch
};

struct PeerCounters {
  uint64_t refused_loop = 0;        // our ASN in the AS path
  uint64_t refused_own_space = 0;   // inside one of our address spaces
  uint64_t refused_first_as = 0;    // leftmost AS is not the peer's
  uint64_t refused_max_prefix = 0;  // over the limit with the discard action
  uint64_t refused_family = 0;      // family not negotiated
  uint64_t treat_as_withdraw = 0;   // RFC 7606 UPDATEs handled as withdrawals
  uint64_t attr_discards = 0;       // RFC 7606 attribute discards
  // ROUTE-REFRESHes folded into one already pending for the family (see kRefreshIntervalMs).
  uint64_t route_refresh_coalesced = 0;
  bool max_prefix_warned = false;
};

class Speaker : public PeerOwner {
 public:
  Speaker(SpeakerConfig cfg, Transport& t, FibSink* fib = nullptr);
  ~Speaker() override;

  PeerId add_peer(PeerConfig pc);  // ids start at 1
  void start(uint64_t now);        // ManualStart for every peer
  void stop(uint64_t now);
  bool reset_peer(PeerId id, uint64_t now);
  void tick(uint64_t now);

  // Transport events.
  void on_connected(ConnId c, uint64_t now);
  void on_connect_failed(ConnId c, uint64_t now);
  // An incoming connection from `remote`; false = no such peer or refused (the caller closes).
  bool on_accept(ConnId c, const IpAddr& remote, uint64_t now);
  void on_data(ConnId c, std::span<const uint8_t> bytes, uint64_t now);
  void on_closed(ConnId c, uint64_t now);

  // Runtime origination (the config's address spaces are originated at construction).
  void originate(const Prefix& p, uint64_t now);
  void withdraw_originated(const Prefix& p, uint64_t now);

  Peer* peer(PeerId id);
  Peer* peer_by_conn(ConnId c);
  const std::vector<std::unique_ptr<Peer>>& peers() const { return peers_; }
  const Rib& rib() const { return rib_; }
  size_t adj_out_count(PeerId id) const;
  const PeerCounters& counters(PeerId id) const { return state_.at(id).counters; }
  const SpeakerConfig& config() const { return cfg_; }
  // Sends what is pending and pushes FIB changes (called by every entry point).
  void flush(uint64_t now);

  // PeerOwner.
  void on_established(PeerId p, uint64_t now) override;
  void on_down(PeerId p, bool graceful, uint64_t now) override;
  void on_update(PeerId p, const Verdict& v, const Update& u, uint64_t now) override;
  void on_route_refresh(PeerId p, const RouteRefresh& r, uint64_t now) override;
  void on_event(PeerId p, const std::string& line, uint64_t now) override;

 private:
  struct PeerState {
    std::map<Prefix, AttrsPtr> adj_out;  // what the peer has from us
    std::map<Prefix, AttrsPtr> pending;  // to send; nullptr = withdraw
    std::set<AfiSafi> eor_due;           // End-of-RIB to send after the pending updates
    // Graceful restart (helper): families whose paths are stale -> when to drop them (the
    // peer's restart time while it is away, then our stale-path time until its End-of-RIB).
    std::map<AfiSafi, uint64_t> stale;
    // ROUTE-REFRESH: families to send again -> not before; when each was last sent again.
    std::map<AfiSafi, uint64_t> refresh_due, refreshed_at;
    PeerCounters counters;
    // Log rate limit: lines in the current window, and lines left out since the last one.
    uint64_t log_window_start = 0;
    unsigned log_lines = 0;
    uint64_t log_suppressed = 0;
  };

  void mark(const Prefix& p) { dirty_.insert(p); }
  void withdraw_in(PeerId id, const Prefix& p);
  void announce_in(Peer& peer, const std::vector<Nlri>& nlri, AfiSafi family,
                   const IpAddr& next_hop, const AttrsPtr& attrs, uint64_t now);
  AttrsPtr export_attrs(const Peer& to, const Prefix& p);
  void queue_all(Peer& to, std::optional<AfiSafi> only, bool force);
  void send_pending(Peer& to);
  void serve_refreshes(Peer& to, uint64_t now);
  void send_group(Peer& to, AfiSafi f, const AttrsPtr& attrs, std::vector<Nlri>& nlri);
  void send_withdrawals(Peer& to, AfiSafi f, std::vector<Nlri>& nlri);
  IpAddr next_hop_for(const Peer& to, AfiSafi f) const;
  bool is_own_space(const Prefix& p) const;
  // Graceful restart: drops the peer's stale paths of family f and forgets its timer.
  void drop_stale(PeerId id, AfiSafi f);

  SpeakerConfig cfg_;
  Transport& t_;
  FibSink* fib_;
  Rib rib_;
  std::vector<std::unique_ptr<Peer>> peers_;  // index = id - 1
  std::map<PeerId, PeerState> state_;
  std::set<Prefix> dirty_;  // selection changed since the last flush
  std::map<std::pair<const PathAttrs*, PeerId>, AttrsPtr> export_cache_;  // within one flush
  AttrsPtr local_attrs_;
};

AfiSafi family_of(const Prefix& p);

}  // namespace espgw::bgp
