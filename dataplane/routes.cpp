#include "dataplane/routes.h"

namespace espgw::dp {

const char* source_name(RouteSource s) {
  switch (s) {
    case RouteSource::kLocal: return "local";
    case RouteSource::kConnected: return "connected";
    case RouteSource::kStatic: return "static";
    case RouteSource::kApi: return "api";
    case RouteSource::kConnection: return "connection";  // a site's static prefixes (LNG)
    case RouteSource::kBgp: return "bgp";
  }
  return "?";
}

unsigned admin_distance(RouteSource s) {
  switch (s) {
    case RouteSource::kLocal: return 0;
    case RouteSource::kConnected: return 0;
    case RouteSource::kStatic: return 1;
    case RouteSource::kApi: return 1;
    case RouteSource::kConnection: return 5;  // beats BGP (ARCHITECTURE.md 5)
    case RouteSource::kBgp: return 20;
  }
  return 255;
}

bool RouteTable::resolve_via(const IpAddr& gw, const std::string& port_name, NhSpec& out,
                             std::string* err) const {
  out.kind = NhKind::kVia;
  out.gw = gw;
  for (uint16_t i = 0; i < rt_.ports.size(); ++i) {
    const PortRt& p = rt_.ports[i];
    if (p.exception) continue;
    if (!port_name.empty()) {
      if (p.name != port_name) continue;
      out.port = i;
      return true;
    }
    for (const auto& a : p.addrs) {
      if (a.connected().contains(gw)) {
        if (a.addr == gw) {
          *err = "next hop " + gw.str() + " is the gateway's own address";
          return false;
        }
        out.port = i;
        return true;
      }
    }
  }
  *err = port_name.empty() ? "next hop " + gw.str() + " is not on any connected prefix"
                           : "no port named " + port_name;
  return false;
}

bool RouteTable::add(const Prefix& p, RouteSource s, const NhSpec& nh, std::string* err) {
  if (nh.kind == NhKind::kVia && nh.gw.family != p.addr.family) {
    *err = "next hop family does not match " + p.str();
    return false;
  }
  auto& v = routes_[p];
  bool replaced = false;
  for (auto& c : v)
    if (c.src == s) {
      c.nh = nh;
      replaced = true;
    }
  if (!replaced) v.push_back({s, nh});
  dirty_[p] = true;
  return true;
}

bool RouteTable::del(const Prefix& p, RouteSource s) {
  auto it = routes_.find(p);
  if (it == routes_.end()) return false;
  auto& v = it->second;
  size_t before = v.size();
  std::erase_if(v, [&](const Candidate& c) { return c.src == s; });
  if (v.size() == before) return false;
  if (v.empty()) routes_.erase(it);
  dirty_[p] = true;
  return true;
}

const RouteTable::Candidate* RouteTable::best(const Prefix& p) const {
  auto it = routes_.find(p);
  if (it == routes_.end()) return nullptr;
  const Candidate* b = nullptr;
  for (const auto& c : it->second)
    if (!b || admin_distance(c.src) < admin_distance(b->src)) b = &c;
  return b;
}

uint32_t RouteTable::acquire_nh(const NhSpec& s, std::string* err) {
  auto it = nh_by_spec_.find(s);
  if (it != nh_by_spec_.end()) {
    ++it->second.refs;
    return it->second.id;
  }
  uint32_t id;
  if (!free_ids_.empty()) {
    id = free_ids_.back();
    free_ids_.pop_back();
  } else if (next_id_ < kMaxNextHops) {
    id = next_id_++;
  } else {
    *err = "out of next-hop ids";
    return 0;
  }
  NeighEntry* ne = nullptr;
  if (s.kind == NhKind::kVia) {
    ne = neigh_.get(s.port, s.gw);
    if (!ne) {
      free_ids_.push_back(id);
      *err = "neighbour table full";
      return 0;
    }
    neigh_.ref(ne);
  }
  // Publish the next-hop object before any FIB entry can point at it.
  NextHop& nh = rt_.nexthops[id];
  nh.port = s.port;
  nh.neigh = ne;
  nh.tunnel = s.tunnel;
  nh.n_members = 0;
  for (uint32_t m : s.members)
    if (m) nh.members[nh.n_members++] = m;
  std::atomic_ref<NhKind>(nh.kind).store(s.kind, std::memory_order_release);
  nh_by_spec_[s] = {id, 1, ne};
  spec_by_id_[id] = s;
  return id;
}

// Called only after the FIB no longer references id and a grace period has passed.
void RouteTable::release_nh(uint32_t id) {
  auto it = nh_by_spec_.find(spec_by_id_[id]);
  if (it == nh_by_spec_.end() || --it->second.refs) return;
  if (it->second.neigh) neigh_.unref(it->second.neigh);
  rt_.nexthops[id] = NextHop{};
  nh_by_spec_.erase(it);
  free_ids_.push_back(id);
}

bool RouteTable::commit(std::string* err) {
  if (dirty_.empty()) return true;
  std::vector<FibChange> batch;
  std::vector<uint32_t> acquired, released;
  for (const auto& [p, _] : dirty_) {
    const Candidate* b = best(p);
    auto inst = installed_.find(p);
    if (!b) {
      if (inst != installed_.end()) {
        batch.push_back({p, 0, true});
        released.push_back(inst->second);
      }
      continue;
    }
    uint32_t id = acquire_nh(b->nh, err);
    if (!id) {
      for (uint32_t a : acquired) release_nh(a);
      return false;
    }
    if (inst != installed_.end() && inst->second == id) {
      release_nh(id);  // unchanged
      continue;
    }
    acquired.push_back(id);
    batch.push_back({p, id, false});
    if (inst != installed_.end()) released.push_back(inst->second);
  }
  if (!rt_.fib->apply(batch, err)) {
    for (uint32_t a : acquired) release_nh(a);
    return false;
  }
  for (const auto& ch : batch) {
    if (ch.del) installed_.erase(ch.prefix);
    else installed_[ch.prefix] = ch.nh;
  }
  for (uint32_t r : released) release_nh(r);  // apply() waited for the grace period
  dirty_.clear();
  return true;
}

nlohmann::ordered_json RouteTable::to_json() const {
  nlohmann::ordered_json a = nlohmann::ordered_json::array();
  for (const auto& [p, cands] : routes_) {
    const Candidate* b = best(p);
    for (const auto& c : cands) {
      std::string kind, nexthop, port;
      switch (c.nh.kind) {
        case NhKind::kLocal: kind = "local"; break;
        case NhKind::kConnected: kind = "connected"; break;
        case NhKind::kVia: kind = "via"; nexthop = c.nh.gw.str(); break;
        case NhKind::kBlackhole: kind = "blackhole"; break;
        case NhKind::kNone: kind = "unreachable"; break;
        case NhKind::kTunnel:
          kind = "tunnel";
          nexthop = tunnel_name ? tunnel_name(c.nh.tunnel) : std::to_string(c.nh.tunnel);
          break;
        case NhKind::kTunnelGroup:
          kind = "tunnel-group";
          for (uint32_t m : c.nh.members)
            if (m)
              nexthop += (nexthop.empty() ? "" : ",") +
                         (tunnel_name ? tunnel_name(m) : std::to_string(m));
          break;
      }
      if (c.nh.kind == NhKind::kConnected || c.nh.kind == NhKind::kVia)
        port = rt_.ports[c.nh.port].name;
      if (c.nh.kind == NhKind::kLocal && rt_.exception_port != Runtime::kNoPort)
        port = rt_.ports[rt_.exception_port].name;
      bool selected = &c == b;
      a.push_back({{"prefix", p.str()},
                   {"source", source_name(c.src)},
                   {"type", kind},
                   {"nexthop", nexthop},
                   {"port", port},
                   {"selected", selected},
                   {"installed", selected && installed_.count(p) && !dirty_.count(p)}});
    }
  }
  return a;
}

}  // namespace espgw::dp
