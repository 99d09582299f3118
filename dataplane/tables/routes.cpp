#include "dataplane/tables/routes.h"

#include <algorithm>
#include <iterator>


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
    case RouteSource::kConnection: return 5;  // beats BGP (ARCHITECTURE.md, "Routes")
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

namespace {
// Failed prefixes tried again per commit that frees room: bounds the cost of a commit when a
// peer left many prefixes the FIB cannot hold (each try is one refused rte_fib_add).
constexpr size_t kRetriesPerCommit = 4096;
// Failed prefixes named in a commit's error (the rest are counted).
constexpr size_t kErrorsNamed = 3;
}  // namespace

void RouteTable::record_failure(const Prefix& p, const std::string& why,
                                std::vector<std::pair<Prefix, std::string>>* report) {
  failed_[p] = why;
  if (report) report->push_back({p, why});
}

bool RouteTable::apply_prefixes(const std::vector<Prefix>& ps,
                                std::vector<std::pair<Prefix, std::string>>* report) {
  // Removals first: the room they free is usable by the additions of the same batch.
  std::vector<FibChange> dels, adds;
  for (const Prefix& p : ps) {
    const Candidate* b = best(p);
    auto inst = installed_.find(p);
    if (!b) {
      failed_.erase(p);
      if (inst != installed_.end()) dels.push_back({p, 0, true});
      continue;
    }
    std::string why;
    uint32_t id = acquire_nh(b->nh, &why);
    if (!id) {
      record_failure(p, why, report);
      if (inst != installed_.end()) dels.push_back({p, 0, true});
      continue;
    }
    if (inst != installed_.end() && inst->second == id) {
      release_nh(id);  // unchanged
      failed_.erase(p);
      continue;
    }
    adds.push_back({p, id, false});
  }
  std::vector<FibChange> batch = std::move(dels);
  batch.insert(batch.end(), adds.begin(), adds.end());
  if (batch.empty()) return false;
  std::vector<FibFailure> ff;
  rt_.fib->apply(batch, &ff);
  std::vector<uint32_t> released;
  std::vector<FibChange> stale;  // a refused replacement: the old route must not stay
  size_t fi = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const FibChange& ch = batch[i];
    const bool ok = fi == ff.size() || ff[fi].index != i;
    auto inst = installed_.find(ch.prefix);
    if (!ok) {
      const std::string& why = ff[fi++].why;
      if (ch.del) {  // DPDK does not fail removals; kept as installed so it is tried again
        record_failure(ch.prefix, "cannot remove from the FIB: " + why, nullptr);
        continue;
      }
      release_nh(ch.nh);
      record_failure(ch.prefix, why, report);
      if (inst != installed_.end()) stale.push_back({ch.prefix, 0, true});
      continue;
    }
    if (inst != installed_.end()) released.push_back(inst->second);
    if (ch.del) {
      installed_.erase(inst);
    } else {
      installed_[ch.prefix] = ch.nh;
      failed_.erase(ch.prefix);
    }
  }
  if (!stale.empty()) {
    std::vector<FibFailure> ff2;
    rt_.fib->apply(stale, &ff2);
    size_t fj = 0;
    for (size_t i = 0; i < stale.size(); ++i) {
      if (fj < ff2.size() && ff2[fj].index == i) {
        ++fj;
        continue;
      }
      auto inst = installed_.find(stale[i].prefix);
      released.push_back(inst->second);
      installed_.erase(inst);
    }
  }
  for (uint32_t r : released) release_nh(r);  // apply() waited for the grace period
  return !released.empty();
}

bool RouteTable::commit(std::string* err) {
  committed_since_checkpoint_ = true;
  if (dirty_.empty()) return true;
  std::vector<Prefix> todo;
  todo.reserve(dirty_.size());
  for (const auto& [p, _] : dirty_) todo.push_back(p);
  dirty_.clear();
  std::vector<std::pair<Prefix, std::string>> failed;
  const bool freed = apply_prefixes(todo, &failed);
  if (freed && !failed_.empty()) {
    // Room came free: earlier failures may fit now (round robin, bounded).
    std::vector<Prefix> retry;
    auto it = failed_.upper_bound(retry_after_);
    for (size_t n = 0; n < failed_.size() && retry.size() < kRetriesPerCommit; ++n, ++it) {
      if (it == failed_.end()) it = failed_.begin();
      retry.push_back(it->first);
    }
    retry_after_ = retry.back();
    apply_prefixes(retry, nullptr);
  }
  if (failed.empty()) return true;
  *err = "";
  for (size_t i = 0; i < failed.size() && i < kErrorsNamed; ++i)
    *err += (i ? "; " : "") + failed[i].first.str() + ": " + failed[i].second;
  if (failed.size() > kErrorsNamed)
    *err += " (and " + std::to_string(failed.size() - kErrorsNamed) + " more not installed)";
  return false;
}

void RouteTable::rollback() {
  // Every prefix whose candidates differ from the checkpoint gets its old selection back.
  for (auto a = routes_.begin(), b = saved_.routes.begin();
       a != routes_.end() || b != saved_.routes.end();) {
    if (b == saved_.routes.end() || (a != routes_.end() && a->first < b->first)) {
      dirty_[a->first] = true;
      ++a;
    } else if (a == routes_.end() || b->first < a->first) {
      dirty_[b->first] = true;
      ++b;
    } else {
      if (a->second != b->second) dirty_[a->first] = true;
      ++a;
      ++b;
    }
  }
  std::map<Prefix, bool> changed = std::move(dirty_);
  routes_ = std::move(saved_.routes);
  dirty_ = std::move(saved_.dirty);
  saved_ = {};
  if (!committed_since_checkpoint_) {
    dirty_.merge(changed);
    return;
  }
  // Something was committed since the checkpoint: put the FIB back now. The prefixes staged
  // before the checkpoint stay staged for the caller's next commit.
  std::vector<Prefix> todo;
  for (const auto& [p, _] : changed)
    if (!dirty_.count(p)) todo.push_back(p);
  apply_prefixes(todo, nullptr);
}

bool RouteTable::installed(const Prefix& p, RouteSource s) const {
  const Candidate* b = best(p);
  return b && b->src == s && installed_.count(p) && !dirty_.count(p) && !failed_.count(p);
}

std::string RouteTable::failure(const Prefix& p) const {
  const Candidate* b = best(p);
  if (!b) return "";
  if (auto f = failed_.find(p); f != failed_.end()) return f->second;
  if (dirty_.count(p)) return "not committed yet";
  return installed_.count(p) ? "" : "not installed";
}

RoutesView RouteTable::view(const RoutePage& page) const {
  RoutesView out;
  auto it = page.after ? routes_.upper_bound(*page.after) : routes_.begin();
  size_t n = 0;
  for (; it != routes_.end() && (!page.paged() || n < page.limit); ++it, ++n) {
    const auto& [p, cands] = *it;
    const Candidate* b = best(p);
    for (const auto& c : cands) {
      RouteView v;
      v.prefix = p;
      v.source = c.src;
      switch (c.nh.kind) {
        case NhKind::kLocal: v.type = "local"; break;
        case NhKind::kConnected: v.type = "connected"; break;
        case NhKind::kVia: v.type = "via"; v.nexthop = c.nh.gw.str(); break;
        case NhKind::kBlackhole: v.type = "blackhole"; break;
        case NhKind::kNone: v.type = "unreachable"; break;
        case NhKind::kTunnel:
          v.type = "tunnel";
          v.nexthop = tunnel_name ? tunnel_name(c.nh.tunnel) : std::to_string(c.nh.tunnel);
          break;
        case NhKind::kTunnelGroup:
          v.type = "tunnel-group";
          for (uint32_t m : c.nh.members)
            if (m)
              v.nexthop += (v.nexthop.empty() ? "" : ",") +
                           (tunnel_name ? tunnel_name(m) : std::to_string(m));
          break;
      }
      if (c.nh.kind == NhKind::kConnected || c.nh.kind == NhKind::kVia)
        v.port = rt_.ports[c.nh.port].name;
      if (c.nh.kind == NhKind::kLocal && rt_.exception_port != Runtime::kNoPort)
        v.port = rt_.ports[rt_.exception_port].name;
      v.selected = &c == b;
      v.installed =
          v.selected && installed_.count(p) && !dirty_.count(p) && !failed_.count(p);
      if (v.selected && !v.installed) v.reason = failure(p);
      out.routes.push_back(std::move(v));
    }
  }
  // More after this page: the cursor is the page's last prefix.
  if (page.paged() && it != routes_.end()) out.next = std::prev(it)->first;
  return out;
}

}  // namespace espgw::dp
