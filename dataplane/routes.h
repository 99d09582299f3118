// The control thread's route table: every route from every source (connected, local, static,
// API, later BGP and tunnels), the best one per prefix by administrative distance, and the
// next-hop objects the FIB points at. Changes are collected and pushed to the FIB as one batch.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/model/ip.h"
#include "dataplane/fib.h"
#include "dataplane/neighbor.h"
#include "dataplane/runtime.h"

namespace espgw::dp {

enum class RouteSource : uint8_t { kLocal, kConnected, kStatic, kApi, kConnection, kBgp };
const char* source_name(RouteSource s);
unsigned admin_distance(RouteSource s);

struct NhSpec {
  NhKind kind = NhKind::kNone;
  uint16_t port = 0;
  IpAddr gw;  // kVia
  uint32_t tunnel = 0;  // kTunnel
  std::array<uint32_t, kMaxEcmp> members{};  // kTunnelGroup: sorted tunnel ids, 0-padded
  auto operator<=>(const NhSpec&) const = default;
};

struct RouteTable {
 public:
  RouteTable(Runtime& rt, Neighbors& neigh) : rt_(rt), neigh_(neigh) {}

  // Stage a route (replacing the same prefix+source) or its removal; commit() applies.
  // Returns false with err for a next hop that cannot be built.
  bool add(const Prefix& p, RouteSource s, const NhSpec& nh, std::string* err);
  bool del(const Prefix& p, RouteSource s);
  // Pushes staged changes to the FIB in one batch; on failure nothing changes and err is set.
  bool commit(std::string* err);

  // Saves the staged state so a failed multi-part change can be undone before commit().
  void checkpoint() { saved_ = {routes_, dirty_}; }
  void rollback() {
    routes_ = saved_.routes;
    dirty_ = saved_.dirty;
  }

  // Resolves "via <ip> [dev <port>]" to a next hop using connected prefixes.
  bool resolve_via(const IpAddr& gw, const std::string& port_name, NhSpec& out,
                   std::string* err) const;

  nlohmann::ordered_json to_json() const;
  size_t size() const { return routes_.size(); }
  std::function<std::string(uint32_t)> tunnel_name;  // for display

 private:
  struct Candidate {
    RouteSource src;
    NhSpec nh;
  };
  struct NhObj {
    uint32_t id;
    unsigned refs;
    NeighEntry* neigh;
  };
  const Candidate* best(const Prefix& p) const;
  uint32_t acquire_nh(const NhSpec& s, std::string* err);
  void release_nh(uint32_t id);

  Runtime& rt_;
  Neighbors& neigh_;
  std::map<Prefix, std::vector<Candidate>> routes_;
  std::map<Prefix, uint32_t> installed_;   // prefix -> next-hop id in the FIB
  std::map<Prefix, bool> dirty_;
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
