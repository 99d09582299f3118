// The control thread's route table: every route from every source (connected, local, static,
// API, later BGP and tunnels), the best one per prefix by administrative distance, and the
// next-hop objects the FIB points at. Changes are collected and pushed to the FIB as one batch.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/net/ip.h"
#include "dataplane/dataplane.h"
#include "dataplane/tables/fib.h"
#include "dataplane/tables/neighbor.h"
#include "dataplane/runtime.h"

namespace espgw::dp {

struct RouteTable {
 public:
  RouteTable(Runtime& rt, Neighbors& neigh) : rt_(rt), neigh_(neigh) {}

  // Stage a route (replacing the same prefix+source) or its removal; commit() applies.
  // Returns false with err for a next hop that cannot be built.
  bool add(const Prefix& p, RouteSource s, const NhSpec& nh, std::string* err);
  bool del(const Prefix& p, RouteSource s);
  // Pushes staged changes to the FIB in one publish. Every prefix succeeds or fails on its own:
  // a selected route that cannot be installed (FIB or tbl8 groups full, out of next-hop ids,
  // neighbour table full) is recorded as not installed with the reason (failure()), whatever
  // it replaced leaves the FIB (nothing forwards on a route the table no longer selects), and
  // the other changes still apply; removals always apply. Failed prefixes are tried again
  // (a bounded number per commit) whenever a commit frees room.
  // Returns false if a prefix staged since the last commit failed; err names it (and counts
  // the others). Earlier failures retried here do not count.
  bool commit(std::string* err);

  // Saves the staged state so a failed multi-part change can be undone.
  void checkpoint() {
    saved_ = {routes_, dirty_};
    committed_since_checkpoint_ = false;
  }
  // Restores the routes saved by checkpoint(); what a commit since then changed in the FIB is
  // changed back (a second commit), so "all or nothing" holds for the FIB as well.
  void rollback();

  // True if p's selected route comes from s and is what the FIB holds for p.
  bool installed(const Prefix& p, RouteSource s) const;
  // Why p's selected route is not in the FIB (empty if it is, or p has no route).
  std::string failure(const Prefix& p) const;
  size_t failed_count() const { return failed_.size(); }

  // Resolves "via <ip> [dev <port>]" to a next hop using connected prefixes.
  bool resolve_via(const IpAddr& gw, const std::string& port_name, NhSpec& out,
                   std::string* err) const;

  // Every route of every source, or one page of them (see RoutePage).
  RoutesView view(const RoutePage& page = {}) const;
  size_t size() const { return routes_.size(); }
  std::function<std::string(uint32_t)> tunnel_name;  // for display

 private:
  struct Candidate {
    RouteSource src;
    NhSpec nh;
    bool operator==(const Candidate&) const = default;
  };
  struct NhObj {
    uint32_t id;
    unsigned refs;
    NeighEntry* neigh;
  };
  const Candidate* best(const Prefix& p) const;
  uint32_t acquire_nh(const NhSpec& s, std::string* err);
  void release_nh(uint32_t id);
  // Brings the FIB in line with the selected routes of ps (one publish). Failures of prefixes
  // in ps are recorded in failed_ and, if report, appended to *report. Returns true if the FIB
  // gave back room (a route or next hop removed).
  bool apply_prefixes(const std::vector<Prefix>& ps,
                      std::vector<std::pair<Prefix, std::string>>* report);
  void record_failure(const Prefix& p, const std::string& why,
                      std::vector<std::pair<Prefix, std::string>>* report);

  Runtime& rt_;
  Neighbors& neigh_;
  std::map<Prefix, std::vector<Candidate>> routes_;
  std::map<Prefix, uint32_t> installed_;   // prefix -> next-hop id in the FIB
  std::map<Prefix, bool> dirty_;
  std::map<Prefix, std::string> failed_;  // selected but not installed -> why
  Prefix retry_after_{};  // round robin over failed_ across commits
  bool committed_since_checkpoint_ = false;
  struct Saved {
    std::map<Prefix, std::vector<Candidate>> routes;
    std::map<Prefix, bool> dirty;
  } saved_;
  std::map<NhSpec, NhObj> nh_by_spec_;
  std::vector<NhSpec> spec_by_id_ = std::vector<NhSpec>(kMaxNextHops);
  std::vector<uint32_t> free_ids_;
  uint32_t next_id_ = 1;  // 0 is the FIB's default (unreachable)
};

}  // namespace espgw::dp
