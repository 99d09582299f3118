// The routing table: Adj-RIB-In (per peer, after the import filters), the Loc-RIB with the
// RFC 4271 s9.1.2 decision process and multipath (equal paths from different peers are all
// selected), and per-peer Adj-RIB-Out bookkeeping. No I/O, no time: the Speaker drives it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "control/bgp/attrs.h"
#include "control/bgp/fsm.h"

namespace espgw::bgp {

inline constexpr PeerId kLocalPeer = 0;
inline constexpr uint32_t kDefaultLocalPref = 100;

using AttrsPtr = std::shared_ptr<const PathAttrs>;

struct Path {
  PeerId peer = kLocalPeer;
  AttrsPtr attrs;          // as received (MP_REACH/MP_UNREACH removed), shared between prefixes
  IpAddr next_hop;         // from NEXT_HOP or MP_REACH_NLRI
  uint32_t peer_asn = 0;   // the neighbour AS (eBGP: the AS the route came from)
  uint32_t peer_router_id = 0;
  IpAddr peer_addr;
  bool stale = false;      // graceful restart: kept while the peer restarts
};

// RFC 4271 s9.1.2.2: < 0 when a is preferred, > 0 when b is, 0 when equal. With `multipath`, only
// the steps that make paths equal-cost are applied (through s9.1.2.2 e: local pref, AS path
// length, origin, MED, eBGP/iBGP) and a different neighbour AS also makes paths unequal.
int compare_paths(const Path& a, const Path& b, bool multipath = false);

class Rib {
 public:
  struct Entry {
    std::vector<Path> paths;        // one per peer (Adj-RIB-In view of this prefix)
    std::vector<uint32_t> selected; // indices into paths: [0] is the best, then multipath
  };

  explicit Rib(unsigned max_paths = 8) : max_paths_(max_paths ? max_paths : 1) {}

  // Adds or replaces the peer's path; true when the prefix's selection changed.
  bool update(const Prefix& p, Path path);
  bool withdraw(const Prefix& p, PeerId peer);
  // Removes every path of the peer (or only its stale ones, or only those of one family);
  // returns the prefixes whose selection changed.
  std::vector<Prefix> drop_peer(PeerId peer, bool only_stale = false,
                                std::optional<AfiSafi> family = std::nullopt);
  // Marks every path of the peer (of one family) stale (graceful restart); returns the prefixes
  // whose selection changed (a stale path loses ties to fresh ones).
  std::vector<Prefix> mark_stale(PeerId peer, std::optional<AfiSafi> family = std::nullopt);

  const Entry* find(const Prefix& p) const;
  const Path* best(const Prefix& p) const;
  const std::map<Prefix, Entry>& entries() const { return loc_; }
  size_t adj_in_count(PeerId peer) const;  // prefixes received from the peer and kept
  size_t size() const { return loc_.size(); }

 private:
  bool select(Entry& e);  // recomputes e.selected; true when it changed

  unsigned max_paths_;
  std::map<Prefix, Entry> loc_;
  std::unordered_map<PeerId, size_t> per_peer_;
};

}  // namespace espgw::bgp
