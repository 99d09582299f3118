#include "control/agent/agent.h"

#include <poll.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "control/agent/bgp_service.h"
#include "control/agent/ike_service.h"
#include "dataplane/log.h"

namespace espgw::agent {

dp::Config dataplane_config(const model::Config& cfg, bool configure_kernel) {
  const auto& d = cfg.instance.dataplane;
  dp::Config c;
  for (const auto& p : cfg.instance.ports) c.ports.push_back({p.name, p.device, p.mtu, p.addresses});
  c.exception_iface = cfg.instance.exception_iface;
  c.configure_kernel = configure_kernel;
  c.mbufs = d.mbufs;
  c.burst = d.burst;
  c.idle_sleep_us = d.idle_sleep_us;
  c.max_routes_v4 = d.max_routes_v4;
  c.max_routes_v6 = d.max_routes_v6;
  c.max_neighbors = d.max_neighbors;
  c.control_pps = d.control_pps;
  return c;
}

// Every outbound static SA continues above the reservation its key's record holds, and the new
// reservations are on disk before any SA exists (control/state/seq_store.h).
bool Agent::install_static_tunnels(std::string* err) {
  if (cfg_.instance.tunnels.empty()) return true;
  const std::string path = cfg_.instance.state_dir + "/" + cfg_.gateway.name + "-" +
                           std::to_string(cfg_.instance.index) + ".seq";
  if (!seq_store_.open(path, err)) return *err = "sequence reservations: " + *err, false;
  std::set<std::string> keep;
  std::vector<std::pair<uint64_t, uint64_t>> start_limit;  // per tunnel
  for (const auto& t : cfg_.instance.tunnels) {
    std::string k = state::SeqStore::sa_key(t.outbound.spi, t.outbound.key.data(),
                                            t.outbound.key.size());
    const uint64_t max_seq = t.esn ? ~uint64_t(0) - 1 : 0xffffffffull;
    const uint64_t used = seq_store_.reserved(k);
    const uint64_t start = std::max(t.outbound.seq_start, used);
    if (start >= max_seq)
      return *err = "tunnel " + t.name + ": the outbound key's sequence space is used up (" +
                    path + "); configure a new outbound key",
             false;
    if (used > t.outbound.seq_start)
      logging::logf(logging::Level::kWarning,
                    "tunnel %s: outbound sequence numbers continue above %llu (reserved "
                    "before the last stop; a (key, nonce) pair is never used twice)",
                    t.name.c_str(), (unsigned long long)used);
    if (!t.esn && max_seq - start < (max_seq >> 4))
      logging::logf(logging::Level::kWarning,
                    "tunnel %s: %llu outbound sequence numbers left for this key; rotate "
                    "the key or enable esn",
                    t.name.c_str(), (unsigned long long)(max_seq - start));
    uint64_t limit = state::SeqStore::next_reservation(start, t.esn, max_seq);
    seq_store_.set(k, limit);
    keep.insert(k);
    start_limit.push_back({start, limit});
    static_out_.push_back({0, k, max_seq});
  }
  seq_store_.retain(keep);
  if (!seq_store_.flush(err)) return *err = "sequence reservations: " + *err, false;
  size_t ti = 0;
  for (const auto& t : cfg_.instance.tunnels) {
    dp::SaParams out;
    out.spi = t.outbound.spi;
    out.algo = t.outbound.algo;
    out.key = t.outbound.key.data();
    out.key_len = t.outbound.key.size();
    out.local = t.local;
    out.remote = t.remote;
    out.udp_encap = t.udp_encap;
    out.esn = t.esn;
    out.soft = {t.soft_lifetime.bytes, t.soft_lifetime.packets};
    out.hard = {t.hard_lifetime.bytes, t.hard_lifetime.packets};
    out.soft_seconds = t.soft_lifetime.seconds;
    out.hard_seconds = t.hard_lifetime.seconds;
    out.seq_start = start_limit[ti].first;
    out.seq_limit = start_limit[ti].second;
    dp::SaParams in = out;
    in.seq_start = 0;
    in.inbound = true;
    in.spi = t.inbound.spi;
    in.algo = t.inbound.algo;
    in.key = t.inbound.key.data();
    in.key_len = t.inbound.key.size();
    in.replay_window = t.anti_replay ? t.replay_window : 0;
    if (!t.anti_replay)
      logging::logf(logging::Level::kWarning,
                    "tunnel %s: anti-replay is off (anti_replay: false): replayed ESP packets "
                    "are accepted",
                    t.name.c_str());
    uint32_t out_id = dp_.add_sa(out, err);
    if (!out_id) return *err = "tunnel " + t.name + " outbound SA: " + *err, false;
    static_out_[ti++].sa = out_id;
    uint32_t in_id = dp_.add_sa(in, err);
    if (!in_id) return *err = "tunnel " + t.name + " inbound SA: " + *err, false;
    dp::TunnelParams tp;
    tp.name = t.name;
    tp.mss_clamp = t.tcp_mss_clamp;
    tp.remote_ts = t.traffic_selectors;
    tp.local = t.local;
    tp.algo = t.outbound.algo;
    tp.udp_encap = t.udp_encap;
    uint32_t tid = dp_.add_tunnel(tp, err);
    if (!tid || !dp_.bind_tunnel(tid, out_id, err) || !dp_.bind_tunnel(tid, in_id, err))
      return *err = "tunnel " + t.name + ": " + *err, false;
  }
  return true;
}

// Keeps every static outbound SA's reservation at least half a block ahead of its counter. The
// new limit reaches the workers only after the file is on disk; if the disk fails, traffic stops
// at the old limit (drop esp_seq_unreserved) instead of risking reuse.
void Agent::extend_seq_reservations(uint64_t now_ms) {
  std::vector<std::pair<uint32_t, uint64_t>> raise;
  for (const auto& so : static_out_) {
    dp::SaStats sa = dp_.sa_stats(so.sa);
    if (!sa.exists) continue;
    uint64_t used = sa.seq;
    uint64_t limit = sa.seq_limit;
    if (used > limit) used = limit;  // numbers past the limit were dropped, never sent
    if (!state::SeqStore::needs_extension(used, limit, sa.esn, so.max_seq)) continue;
    uint64_t next = state::SeqStore::next_reservation(used, sa.esn, so.max_seq);
    seq_store_.set(so.key, next);
    raise.push_back({so.sa, next});
  }
  if (raise.empty()) return;
  std::string err;
  if (!seq_store_.flush(&err)) {
    logging::limited("seq_store_flush", now_ms, logging::Level::kError,
                     "cannot extend sequence reservations: " + err, 1, 10000);
    return;
  }
  for (auto [sa, next] : raise) dp_.raise_seq_limit(sa, next);
}

bool Agent::install_config_routes(std::string* err) {
  // (the ports' connected and local routes are the data plane's own)
  using dp::NhKind;
  for (const auto& r : cfg_.instance.routes) {
    dp::NhSpec nh;
    if (r.blackhole) {
      nh.kind = NhKind::kBlackhole;
    } else if (!r.tunnel.empty()) {
      nh.kind = NhKind::kTunnel;
      nh.tunnel = dp_.tunnel_by_name(r.tunnel);
      if (!nh.tunnel) {
        *err = "route " + r.prefix.str() + ": no tunnel named " + r.tunnel;
        return false;
      }
    } else if (r.via.is_set()) {
      if (!dp_.resolve_via(r.via, r.port, nh, err)) {
        *err = "route " + r.prefix.str() + ": " + *err;
        return false;
      }
    } else {
      nh.kind = NhKind::kConnected;
      if (auto i = dp_.port_index(r.port)) nh.port = *i;
    }
    if (!dp_.route_add(r.prefix, dp::RouteSource::kStatic, nh, err)) return false;
  }
  return dp_.route_commit(err);
}

bool Agent::install_static(std::string* err) {
  return install_static_tunnels(err) && install_config_routes(err);
}

bool Agent::init(std::string* err) {
  if (!install_static(err)) return false;
  // IKE speaks from this instance's public IP; a config without one has no IKE service.
  if (cfg_.instance.index < cfg_.gateway.instances.size()) {
    if (auto ike = std::make_unique<IkeService>(*this); ike->init(err))
      add_service(std::move(ike));
    else
      return *err = "IKE: " + *err, false;
  }
  if (!add_bgp_service(*this, err)) return false;
  register_commands();
  return server_.listen(cfg_.instance.control_socket, err);
}

// The data plane's events: logged, then offered to every service (IKE rekeys on soft expiry).
void Agent::handle_events() {
  events_.clear();
  if (!dp_.drain_events(events_)) return;
  for (const auto& e : events_) {
    if (e.kind == dp::EventKind::kTunnelUp || e.kind == dp::EventKind::kTunnelDown) {
      logging::logf(logging::Level::kInfo, "tunnel %s %s", dp_.tunnel_name(e.tunnel).c_str(),
                    e.kind == dp::EventKind::kTunnelUp ? "up" : "down");
    } else {
      const char* what = e.kind == dp::EventKind::kSaSoftExpired ? "soft" : "hard";
      logging::logf(logging::Level::kInfo, "SA %u (SPI %s) %s lifetime%s reached", e.sa,
                    hex_spi(e.spi).c_str(), what, e.by_time ? " (seconds)" : "");
    }
    for (auto& s : services_) s->on_dp_event(e);
  }
}

void Agent::run(const std::atomic<bool>& stop) {
  uint64_t next_tick = 0, next_seq_check = 0;
  std::vector<pollfd> pfds;
  std::vector<std::pair<Service*, int>> owners;
  while (!stop.load(std::memory_order_relaxed)) {
    pfds.clear();
    owners.clear();
    for (const auto& x : server_.poll_fds()) pfds.push_back({x.fd, x.events, 0});
    size_t first_service_fd = pfds.size();
    for (auto& s : services_)
      for (int fd : s->fds()) {
        pfds.push_back({fd, POLLIN, 0});
        owners.push_back({s.get(), fd});
      }
    // Short timeout: the rings from the workers are polled, not signalled (no syscalls there).
    ::poll(pfds.data(), pfds.size(), 1);
    server_.poll();
    uint64_t now = dp::monotonic_ms();
    for (size_t i = first_service_fd; i < pfds.size(); ++i)
      if (pfds[i].revents & (POLLIN | POLLERR | POLLHUP))
        owners[i - first_service_fd].first->on_readable(pfds[i].fd, now);
    dp_.poll(now);
    handle_events();
    if (now >= next_seq_check) {
      extend_seq_reservations(now);
      next_seq_check = now + 10;
    }
    if (now >= next_tick) {
      for (auto& s : services_) s->tick(now);
      next_tick = now + 100;
    }
  }
}

}  // namespace espgw::agent
