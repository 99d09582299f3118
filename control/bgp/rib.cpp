#include "control/bgp/rib.h"

#include <algorithm>

namespace espgw::bgp {
namespace {

uint32_t local_pref(const Path& p) {
  return p.attrs && p.attrs->local_pref ? *p.attrs->local_pref : kDefaultLocalPref;
}
size_t path_len(const Path& p) {
  return p.attrs && p.attrs->as_path ? p.attrs->as_path->length() : 0;
}
uint8_t origin(const Path& p) {
  return uint8_t(p.attrs && p.attrs->origin ? *p.attrs->origin : Origin::kIncomplete);
}
uint32_t med(const Path& p) { return p.attrs && p.attrs->med ? *p.attrs->med : 0; }
// The AS the route was learned from: the leftmost AS of the path (0 for local routes).
uint32_t neighbour_as(const Path& p) {
  if (!p.attrs || !p.attrs->as_path) return 0;
  for (const auto& s : p.attrs->as_path->segments)
    if (s.type == SegType::kSequence && !s.asns.empty()) return s.asns.front();
  return 0;
}
bool in_family(const Prefix& p, AfiSafi f) { return (f.afi == kAfiIpv6) == p.addr.is_v6(); }
template <class T>
int cmp(T a, T b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

}  // namespace

int compare_paths(const Path& a, const Path& b, bool multipath) {
  // Locally originated routes win over learned ones (weight, as every implementation does).
  if (int c = cmp(a.peer != kLocalPeer, b.peer != kLocalPeer)) return c;
  if (int c = cmp(local_pref(b), local_pref(a))) return c;  // a) highest LOCAL_PREF
  if (int c = cmp(path_len(a), path_len(b))) return c;      // b) shortest AS_PATH
  if (int c = cmp(origin(a), origin(b))) return c;          // c) lowest ORIGIN
  const bool same_as = neighbour_as(a) == neighbour_as(b);
  if (same_as) {
    if (int c = cmp(med(a), med(b))) return c;  // d) MED, only within one neighbour AS
  } else if (multipath) {
    return cmp(neighbour_as(a), neighbour_as(b));  // multipath needs one neighbour AS
  }
  // e) eBGP over iBGP: every peer of this speaker is external. f) IGP cost: all equal.
  if (multipath) return 0;
  if (int c = cmp(a.stale, b.stale)) return c;                      // fresh before stale
  if (int c = cmp(a.peer_router_id, b.peer_router_id)) return c;    // g) lowest BGP Identifier
  if (int c = cmp(a.peer_addr, b.peer_addr)) return c;              // h) lowest peer address
  return cmp(a.peer, b.peer);
}

bool Rib::select(Entry& e) {
  std::vector<uint32_t> sel;
  if (!e.paths.empty()) {
    uint32_t best = 0;
    for (uint32_t i = 1; i < e.paths.size(); ++i)
      if (compare_paths(e.paths[i], e.paths[best]) < 0) best = i;
    sel.push_back(best);
    if (e.paths[best].peer != kLocalPeer) {
      std::vector<uint32_t> eq;
      for (uint32_t i = 0; i < e.paths.size(); ++i)
        if (i != best && e.paths[i].peer != kLocalPeer &&
            compare_paths(e.paths[i], e.paths[best], true) == 0)
          eq.push_back(i);
      // Deterministic order of the extra paths: the full decision process.
      std::sort(eq.begin(), eq.end(), [&](uint32_t x, uint32_t y) {
        return compare_paths(e.paths[x], e.paths[y]) < 0;
      });
      for (uint32_t i : eq)
        if (sel.size() < max_paths_) sel.push_back(i);
    }
  }
  if (sel == e.selected) return false;
  e.selected = std::move(sel);
  return true;
}

bool Rib::update(const Prefix& p, Path path) {
  Entry& e = loc_[p];
  const PeerId who = path.peer;
  bool replaced = false, attrs_changed = true;
  for (auto& old : e.paths) {
    if (old.peer != who) continue;
    attrs_changed = !(old.attrs == path.attrs || (old.attrs && path.attrs && *old.attrs == *path.attrs)) ||
                    old.next_hop != path.next_hop || old.stale != path.stale;
    old = std::move(path);
    replaced = true;
    break;
  }
  if (!replaced) {
    ++per_peer_[who];
    e.paths.push_back(std::move(path));
  }
  bool changed = select(e);
  if (!changed && replaced && attrs_changed)  // a selected path itself changed
    for (uint32_t i : e.selected)
      if (e.paths[i].peer == who) changed = true;
  return changed;
}

bool Rib::withdraw(const Prefix& p, PeerId peer) {
  auto it = loc_.find(p);
  if (it == loc_.end()) return false;
  Entry& e = it->second;
  auto pos = std::find_if(e.paths.begin(), e.paths.end(), [&](const Path& x) { return x.peer == peer; });
  if (pos == e.paths.end()) return false;
  bool was_selected = false;
  for (uint32_t i : e.selected)
    if (e.paths[i].peer == peer) was_selected = true;
  e.paths.erase(pos);
  --per_peer_[peer];
  e.selected.clear();
  select(e);
  if (e.paths.empty()) loc_.erase(it);
  return was_selected;
}

std::vector<Prefix> Rib::drop_peer(PeerId peer, bool only_stale, std::optional<AfiSafi> family) {
  std::vector<Prefix> changed;
  for (auto it = loc_.begin(); it != loc_.end();) {
    Entry& e = it->second;
    if (family && !in_family(it->first, *family)) {
      ++it;
      continue;
    }
    auto pos = std::find_if(e.paths.begin(), e.paths.end(), [&](const Path& x) {
      return x.peer == peer && (!only_stale || x.stale);
    });
    if (pos == e.paths.end()) {
      ++it;
      continue;
    }
    bool was_selected = false;
    for (uint32_t i : e.selected)
      if (e.paths[i].peer == peer) was_selected = true;
    e.paths.erase(pos);
    --per_peer_[peer];
    e.selected.clear();
    select(e);
    if (was_selected) changed.push_back(it->first);
    if (e.paths.empty()) it = loc_.erase(it);
    else ++it;
  }
  return changed;
}

std::vector<Prefix> Rib::mark_stale(PeerId peer, std::optional<AfiSafi> family) {
  std::vector<Prefix> changed;
  for (auto& [p, e] : loc_) {
    if (family && !in_family(p, *family)) continue;
    bool marked = false;
    for (auto& path : e.paths)
      if (path.peer == peer && !path.stale) path.stale = marked = true;
    if (marked && select(e)) changed.push_back(p);
  }
  return changed;
}

const Rib::Entry* Rib::find(const Prefix& p) const {
  auto it = loc_.find(p);
  return it == loc_.end() ? nullptr : &it->second;
}

const Path* Rib::best(const Prefix& p) const {
  const Entry* e = find(p);
  return e && !e->selected.empty() ? &e->paths[e->selected[0]] : nullptr;
}

size_t Rib::adj_in_count(PeerId peer) const {
  auto it = per_peer_.find(peer);
  return it == per_peer_.end() ? 0 : it->second;
}

}  // namespace espgw::bgp
