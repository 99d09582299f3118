#include "control/bgp/speaker.h"

#include <algorithm>

namespace espgw::bgp {

AfiSafi family_of(const Prefix& p) { return p.addr.is_v6() ? kIpv6Unicast : kIpv4Unicast; }

namespace {

bool is_default(const Prefix& p) { return p.len == 0; }

size_t nlri_bytes(const Nlri& n) { return 1 + (size_t(n.prefix.len) + 7) / 8; }

IpAddr v4_mapped(const IpAddr& a) {
  IpAddr m;
  m.family = 6;
  m.bytes[10] = m.bytes[11] = 0xff;
  std::copy(a.bytes.begin(), a.bytes.begin() + 4, m.bytes.begin() + 12);
  return m;
}

bool has_community(const PathAttrs& a, uint32_t c) {
  return a.communities && std::find(a.communities->begin(), a.communities->end(), c) !=
                              a.communities->end();
}

uint32_t first_as(const AsPath& p) {
  for (const auto& s : p.segments)
    if (!s.asns.empty()) return s.type == SegType::kSequence ? s.asns.front() : 0;
  return 0;
}

}  // namespace

Speaker::Speaker(SpeakerConfig cfg, Transport& t, FibSink* fib)
    : cfg_(std::move(cfg)), t_(t), fib_(fib), rib_(cfg_.max_paths) {
  auto a = std::make_shared<PathAttrs>();
  a->origin = Origin::kIgp;
  a->as_path = AsPath{};
  local_attrs_ = a;
  for (const auto& p : cfg_.originate) {
    Path path;
    path.attrs = local_attrs_;
    rib_.update(p, path);
  }
}

Speaker::~Speaker() = default;

PeerId Speaker::add_peer(PeerConfig pc) {
  PeerId id = PeerId(peers_.size() + 1);
  peers_.push_back(std::make_unique<Peer>(id, std::move(pc), cfg_.local, t_, *this));
  state_[id];
  return id;
}

Peer* Speaker::peer(PeerId id) {
  return id >= 1 && id <= peers_.size() ? peers_[id - 1].get() : nullptr;
}

Peer* Speaker::peer_by_conn(ConnId c) {
  for (auto& p : peers_)
    if (p->owns(c)) return p.get();
  return nullptr;
}

size_t Speaker::adj_out_count(PeerId id) const {
  auto it = state_.find(id);
  return it == state_.end() ? 0 : it->second.adj_out.size();
}

void Speaker::start(uint64_t now) {
  for (auto& p : peers_) p->start(now);
  flush(now);
}

void Speaker::stop(uint64_t now) {
  for (auto& p : peers_) p->stop(now);
  flush(now);
}

bool Speaker::reset_peer(PeerId id, uint64_t now) {
  Peer* p = peer(id);
  if (!p) return false;
  p->reset(now);
  flush(now);
  return true;
}

void Speaker::tick(uint64_t now) {
  for (auto& p : peers_) p->tick(now);
  for (auto& [id, st] : state_) {
    // The restarting peer did not come back in time, or did not finish its initial updates.
    std::vector<AfiSafi> due;
    for (const auto& [f, at] : st.stale)
      if (now >= at) due.push_back(f);
    for (AfiSafi f : due) drop_stale(id, f);
  }
  flush(now);
}

void Speaker::on_connected(ConnId c, uint64_t now) {
  if (Peer* p = peer_by_conn(c)) p->connected(c, now);
  flush(now);
}

void Speaker::on_connect_failed(ConnId c, uint64_t now) {
  if (Peer* p = peer_by_conn(c)) p->connect_failed(c, now);
  flush(now);
}

bool Speaker::on_accept(ConnId c, const IpAddr& remote, uint64_t now) {
  for (auto& p : peers_) {
    if (p->config().address != remote) continue;
    bool kept = p->accept(c, now);
    flush(now);
    return kept;
  }
  return false;
}

void Speaker::on_data(ConnId c, std::span<const uint8_t> bytes, uint64_t now) {
  if (Peer* p = peer_by_conn(c)) p->data(c, bytes, now);
  flush(now);
}

void Speaker::on_closed(ConnId c, uint64_t now) {
  if (Peer* p = peer_by_conn(c)) p->closed(c, now);
  flush(now);
}

void Speaker::originate(const Prefix& p, uint64_t now) {
  Path path;
  path.attrs = local_attrs_;
  if (rib_.update(p, path)) mark(p);
  if (std::find(cfg_.originate.begin(), cfg_.originate.end(), p) == cfg_.originate.end())
    cfg_.originate.push_back(p);
  flush(now);
}

void Speaker::withdraw_originated(const Prefix& p, uint64_t now) {
  std::erase(cfg_.originate, p);
  if (rib_.withdraw(p, kLocalPeer)) mark(p);
  flush(now);
}

bool Speaker::is_own_space(const Prefix& p) const {
  for (const auto& o : cfg_.originate)
    if (o.len <= p.len && o.contains(p.addr)) return true;  // equal to or inside our space
  return false;
}

void Speaker::drop_stale(PeerId id, AfiSafi f) {
  state_[id].stale.erase(f);
  for (const auto& p : rib_.drop_peer(id, true, f)) mark(p);
}

// ---- import --------------------------------------------------------------------------------

void Speaker::withdraw_in(PeerId id, const Prefix& p) {
  if (rib_.withdraw(p, id)) mark(p);
}

void Speaker::announce_in(Peer& peer, const std::vector<Nlri>& nlri, AfiSafi family,
                          const IpAddr& next_hop, const AttrsPtr& attrs, uint64_t now) {
  PeerState& st = state_[peer.id()];
  PeerCounters& c = st.counters;
  const PeerConfig& pc = peer.config();
  if (!peer.family_enabled(family)) {
    c.refused_family += nlri.size();
    return;
  }
  // Path-wide checks (RFC 4271 s9.1.2: a path holding our ASN is not used).
  int refuse = 0;
  if (!attrs->as_path || attrs->as_path->contains(cfg_.local.asn)) refuse = 1;
  else if (first_as(*attrs->as_path) != pc.asn) refuse = 2;
  for (const auto& n : nlri) {
    if (n.prefix.addr.family != (family == kIpv6Unicast ? 6 : 4)) continue;
    if (refuse || is_own_space(n.prefix)) {
      (refuse == 1 ? c.refused_loop : refuse == 2 ? c.refused_first_as : c.refused_own_space)++;
      withdraw_in(peer.id(), n.prefix);  // an implicit withdrawal of what it replaced
      continue;
    }
    if (pc.max_prefixes && rib_.adj_in_count(peer.id()) >= pc.max_prefixes) {
      const Rib::Entry* e = rib_.find(n.prefix);
      bool known = e && std::any_of(e->paths.begin(), e->paths.end(),
                                    [&](const Path& x) { return x.peer == peer.id(); });
      if (!known) {
        if (pc.max_prefix_action == MaxPrefixAction::kReset) {
          Notification notif{err::kCease, err::cease::kMaxPrefixes,
                             {uint8_t(family.afi >> 8), uint8_t(family.afi), family.safi,
                              uint8_t(pc.max_prefixes >> 24), uint8_t(pc.max_prefixes >> 16),
                              uint8_t(pc.max_prefixes >> 8), uint8_t(pc.max_prefixes)}};
          peer.fail(notif, "maximum number of prefixes reached", now, pc.max_prefix_restart_ms);
          return;
        }
        if (pc.max_prefix_action == MaxPrefixAction::kDiscard) {
          ++c.refused_max_prefix;
          continue;
        }
        c.max_prefix_warned = true;
      }
    }
    Path path;
    path.peer = peer.id();
    path.attrs = attrs;
    path.next_hop = next_hop;
    path.peer_asn = pc.asn;
    path.peer_router_id = peer.remote_open().bgp_id;
    path.peer_addr = pc.address;
    if (rib_.update(n.prefix, std::move(path))) mark(n.prefix);
  }
}

void Speaker::on_event(PeerId id, const std::string& line, uint64_t now) {
  if (!cfg_.log) return;
  Peer* p = peer(id);
  PeerState& st = state_[id];
  if (now >= st.log_window_start + kLogWindowMs) {
    st.log_window_start = now;
    st.log_lines = 0;
  }
  if (st.log_lines >= kLogBurst) {
    ++st.log_suppressed;
    return;
  }
  ++st.log_lines;
  std::string out =
      "peer " + (p ? p->config().name + " (" + p->config().address.str() + ")" : "?") + ": " + line;
  if (st.log_suppressed)
    out += " [" + std::to_string(st.log_suppressed) + " earlier line(s) suppressed]";
  st.log_suppressed = 0;
  cfg_.log(out);
}

void Speaker::on_update(PeerId id, const Verdict& v, const Update& u, uint64_t now) {
  Peer& peer = *this->peer(id);
  PeerState& st = state_[id];
  st.counters.attr_discards += v.discarded.size();
  if (v.outcome == Outcome::kTreatAsWithdraw) {
    ++st.counters.treat_as_withdraw;
    size_t n_withdrawn = 0;
    for (AfiSafi f : {kIpv4Unicast, kIpv6Unicast})
      for (const auto& n : all_prefixes(u, f)) {
        withdraw_in(id, n.prefix);
        ++n_withdrawn;
      }
    on_event(id,
             "UPDATE treated as withdraw (RFC 7606), " + std::to_string(n_withdrawn) +
                 " prefix(es) withdrawn: " + v.reason,
             now);
    return;
  }
  if (!v.discarded.empty())
    on_event(id, "UPDATE attribute(s) discarded (RFC 7606): " + v.reason, now);
  if (auto eor = end_of_rib(u)) {
    // Graceful restart: what the peer did not announce again in this family is gone.
    if (st.stale.count(*eor)) drop_stale(id, *eor);
    return;
  }
  for (const auto& n : u.withdrawn) withdraw_in(id, n.prefix);
  if (u.attrs.mp_unreach)
    for (const auto& n : u.attrs.mp_unreach->withdrawn) withdraw_in(id, n.prefix);
  const bool has_v4 = !u.nlri.empty();
  const bool has_mp = u.attrs.mp_reach && !u.attrs.mp_reach->nlri.empty();
  if (!has_v4 && !has_mp) return;
  auto shared = std::make_shared<PathAttrs>(u.attrs);
  shared->mp_reach.reset();
  shared->mp_unreach.reset();
  shared->next_hop.reset();
  AttrsPtr attrs = shared;
  if (has_v4 && u.attrs.next_hop)
    announce_in(peer, u.nlri, kIpv4Unicast, *u.attrs.next_hop, attrs, now);
  if (has_mp && peer.state() == State::kEstablished)
    announce_in(peer, u.attrs.mp_reach->nlri, u.attrs.mp_reach->family,
                u.attrs.mp_reach->next_hop, attrs, now);
}

void Speaker::on_route_refresh(PeerId id, const RouteRefresh& r, uint64_t now) {
  if (r.subtype != 0) return;
  // RFC 2918 s4: a ROUTE-REFRESH for an AFI/SAFI not advertised in both OPENs is ignored (no
  // re-advertisement, no End-of-RIB).
  if (!peer(id)->family_enabled(r.family)) {
    ++state_[id].counters.refused_family;
    return;
  }
  // Served by flush (serve_refreshes): a burst of requests costs one re-advertisement.
  PeerState& st = state_[id];
  if (st.refresh_due.count(r.family)) {
    ++st.counters.route_refresh_coalesced;
    return;
  }
  auto last = st.refreshed_at.find(r.family);
  st.refresh_due[r.family] =
      last == st.refreshed_at.end() ? now : std::max(now, last->second + kRefreshIntervalMs);
}

void Speaker::serve_refreshes(Peer& to, uint64_t now) {
  PeerState& st = state_[to.id()];
  for (auto it = st.refresh_due.begin(); it != st.refresh_due.end();) {
    if (now < it->second) {
      ++it;
      continue;
    }
    const AfiSafi f = it->first;
    st.refreshed_at[f] = now;
    std::erase_if(st.adj_out, [&](const auto& kv) { return family_of(kv.first) == f; });
    queue_all(to, f, false);
    st.eor_due.insert(f);
    it = st.refresh_due.erase(it);
  }
}

// ---- session up/down -----------------------------------------------------------------------

void Speaker::on_established(PeerId id, uint64_t now) {
  Peer& p = *peer(id);
  PeerState& st = state_[id];
  // RFC 4724 s4.2: stale routes of a family stay only if the new OPEN's GR capability lists the
  // family with the F bit (the peer kept forwarding); they go at its End-of-RIB, or after our
  // stale-path time at the latest.
  const auto& gr = p.remote_open().caps.graceful_restart;
  std::vector<AfiSafi> drop;
  for (auto& [f, at] : st.stale) {
    bool kept = false;
    if (gr && p.family_enabled(f))
      for (const auto& gf : gr->families)
        if (gf.family == f && gf.forwarding_preserved) kept = true;
    if (kept)
      at = now + uint64_t(cfg_.local.gr_stale_time_s) * 1000;
    else
      drop.push_back(f);
  }
  for (AfiSafi f : drop) drop_stale(id, f);
  st.adj_out.clear();
  st.pending.clear();
  st.refresh_due.clear();  // the initial advertisement sends everything
  queue_all(p, std::nullopt, true);
  for (AfiSafi f : {kIpv4Unicast, kIpv6Unicast})
    if (p.family_enabled(f)) st.eor_due.insert(f);
}

void Speaker::on_down(PeerId id, bool graceful, uint64_t now) {
  PeerState& st = state_[id];
  st.adj_out.clear();
  st.pending.clear();
  st.eor_due.clear();
  st.refresh_due.clear();
  const auto& gr = peer(id)->remote_open().caps.graceful_restart;
  if (graceful && cfg_.local.graceful_restart_helper && gr && gr->restart_time) {
    // RFC 4724 s4.2 (helper): keep the routes of the families the peer's GR capability listed,
    // marked stale, for its restart time; the routes of other families go now.
    const uint64_t until = now + uint64_t(gr->restart_time) * 1000;
    for (AfiSafi f : {kIpv4Unicast, kIpv6Unicast}) {
      const bool listed =
          std::any_of(gr->families.begin(), gr->families.end(),
                      [&](const GracefulRestart::Family& x) { return x.family == f; });
      if (listed) {
        for (const auto& p : rib_.mark_stale(id, f)) mark(p);
        st.stale[f] = until;  // a second loss before End-of-RIB restarts the wait
      } else {
        st.stale.erase(f);
        for (const auto& p : rib_.drop_peer(id, false, f)) mark(p);
      }
    }
    return;
  }
  st.stale.clear();
  for (const auto& p : rib_.drop_peer(id)) mark(p);
}

// ---- export --------------------------------------------------------------------------------

AttrsPtr Speaker::export_attrs(const Peer& to, const Prefix& p) {
  const Path* best = rib_.best(p);
  if (!best || !best->attrs) return nullptr;
  if (best->peer == to.id()) return nullptr;  // never back to the peer it came from
  if (is_default(p) && best->peer != kLocalPeer && !to.config().advertise_default)
    return nullptr;
  if (!to.family_enabled(family_of(p))) return nullptr;
  const PathAttrs& src = *best->attrs;
  if (has_community(src, kNoAdvertise) || has_community(src, kNoExport) ||
      has_community(src, kNoExportSubconfed))
    return nullptr;
  if (src.as_path && src.as_path->contains(to.config().asn)) return nullptr;  // it would drop it
  auto key = std::make_pair(best->attrs.get(), to.id());
  if (auto it = export_cache_.find(key); it != export_cache_.end()) return it->second;
  auto out = std::make_shared<PathAttrs>();
  out->origin = src.origin ? src.origin : Origin::kIncomplete;
  out->as_path = src.as_path ? *src.as_path : AsPath{};
  out->as_path->prepend(cfg_.local.asn);
  out->atomic_aggregate = src.atomic_aggregate;
  out->aggregator = src.aggregator;
  out->communities = src.communities;
  out->unknown = src.unknown;
  for (auto& u : out->unknown) u.flags |= attr::kPartial;  // passed on by us: RFC 4271 s5
  out->partial = src.partial;
  AttrsPtr r = out;
  export_cache_[key] = r;
  return r;
}

void Speaker::queue_all(Peer& to, std::optional<AfiSafi> only, bool force) {
  PeerState& st = state_[to.id()];
  for (const auto& [p, e] : rib_.entries()) {
    if (only && family_of(p) != *only) continue;
    AttrsPtr a = export_attrs(to, p);
    if (a || (force && st.adj_out.count(p))) st.pending[p] = a;
  }
}

IpAddr Speaker::next_hop_for(const Peer& to, AfiSafi f) const {
  const PeerConfig& pc = to.config();
  if (f == kIpv6Unicast) {
    if (pc.next_hop_v6) return *pc.next_hop_v6;
    return pc.local_address.is_v6() ? pc.local_address : v4_mapped(pc.local_address);
  }
  if (pc.next_hop_v4) return *pc.next_hop_v4;
  return pc.local_address.is_v4() ? pc.local_address : IpAddr::v4(cfg_.local.router_id);
}

void Speaker::send_withdrawals(Peer& to, AfiSafi f, std::vector<Nlri>& nlri) {
  const size_t room = kMaxMessageLen - kHeaderLen - 4 - (f == kIpv4Unicast ? 0 : 10);
  size_t i = 0;
  while (i < nlri.size()) {
    Update u;
    std::vector<Nlri>& dst = f == kIpv4Unicast ? u.withdrawn : u.attrs.mp_unreach.emplace().withdrawn;
    if (f != kIpv4Unicast) u.attrs.mp_unreach->family = f;
    size_t used = 0;
    while (i < nlri.size() && used + nlri_bytes(nlri[i]) <= room) {
      used += nlri_bytes(nlri[i]);
      dst.push_back(nlri[i++]);
    }
    to.send_raw(encode_update(u, to.codec()), true);
  }
}

void Speaker::send_group(Peer& to, AfiSafi f, const AttrsPtr& attrs, std::vector<Nlri>& nlri) {
  Update base;
  base.attrs = *attrs;
  const IpAddr nh = next_hop_for(to, f);
  const bool classic = f == kIpv4Unicast && nh.is_v4();
  if (classic) {
    base.attrs.next_hop = nh;
  } else {
    base.attrs.mp_reach.emplace();
    base.attrs.mp_reach->family = f;
    base.attrs.mp_reach->next_hop = nh;
  }
  const size_t fixed = encode_update(base, to.codec()).size() + 2;  // +extended length, margin
  size_t i = 0;
  while (i < nlri.size()) {
    Update u = base;
    std::vector<Nlri>& dst = classic ? u.nlri : u.attrs.mp_reach->nlri;
    size_t used = fixed;
    while (i < nlri.size() && used + nlri_bytes(nlri[i]) <= kMaxMessageLen) {
      used += nlri_bytes(nlri[i]);
      dst.push_back(nlri[i++]);
    }
    Bytes msg = encode_update(u, to.codec());
    if (msg.empty()) return;  // cannot happen with the room computed above
    to.send_raw(msg, true);
  }
}

void Speaker::send_pending(Peer& to) {
  PeerState& st = state_[to.id()];
  if (to.state() != State::kEstablished) {
    st.pending.clear();
    return;
  }
  std::vector<Nlri> wd[2];
  std::map<AttrsPtr, std::vector<Nlri>> groups[2];
  for (auto& [p, a] : st.pending) {
    const int fi = p.addr.is_v6() ? 1 : 0;
    auto out = st.adj_out.find(p);
    if (!a) {
      if (out == st.adj_out.end()) continue;
      st.adj_out.erase(out);
      wd[fi].push_back({p, 0});
      continue;
    }
    if (out != st.adj_out.end() && (out->second == a || *out->second == *a)) continue;
    st.adj_out[p] = a;
    groups[fi][a].push_back({p, 0});
  }
  st.pending.clear();
  const AfiSafi fam[2] = {kIpv4Unicast, kIpv6Unicast};
  for (int fi = 0; fi < 2; ++fi) {
    if (!wd[fi].empty()) send_withdrawals(to, fam[fi], wd[fi]);
    for (auto& [a, v] : groups[fi]) send_group(to, fam[fi], a, v);
  }
  for (AfiSafi f : st.eor_due) to.send_raw(encode_update(end_of_rib_marker(f), to.codec()), true);
  st.eor_due.clear();
}

void Speaker::flush(uint64_t now) {
  if (!dirty_.empty()) {
    for (const auto& p : dirty_) {
      if (fib_) {
        std::vector<const Path*> sel;
        if (const Rib::Entry* e = rib_.find(p))
          for (uint32_t i : e->selected)
            if (e->paths[i].peer != kLocalPeer) sel.push_back(&e->paths[i]);
        fib_->fib_update(p, sel);
      }
      for (auto& peer : peers_)
        if (peer->state() == State::kEstablished) state_[peer->id()].pending[p] = export_attrs(*peer, p);
    }
    dirty_.clear();
    if (fib_) fib_->fib_commit();
  }
  for (auto& peer : peers_) {
    PeerState& st = state_[peer->id()];
    if (!st.refresh_due.empty() && peer->state() == State::kEstablished)
      serve_refreshes(*peer, now);
    if (!st.pending.empty() || !st.eor_due.empty()) send_pending(*peer);
  }
  export_cache_.clear();
}

}  // namespace espgw::bgp
