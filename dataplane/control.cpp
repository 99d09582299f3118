#include "dataplane/control.h"

#include <poll.h>
#include <sys/prctl.h>
#include <time.h>

#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <algorithm>
#include <cstdio>
#include <set>

namespace espgw::dp {

uint64_t monotonic_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

namespace {
std::string mac_str(const rte_ether_addr& a) {
  char b[RTE_ETHER_ADDR_FMT_SIZE];
  rte_ether_format_addr(b, sizeof b, &a);
  return b;
}
}  // namespace

// The largest inner packet whose encapsulation fits the MTU of the port that owns `local`.
uint16_t Control::tunnel_mtu(const IpAddr& local, const SaRt& sa) const {
  unsigned port_mtu = 1500;
  for (const auto& p : rt_.ports)
    for (const auto& a : p.addrs)
      if (a.addr == local) port_mtu = p.mtu;
  unsigned fixed = (sa.v6 ? 40 : 20) + (sa.udp_encap ? 8 : 0) + 8 + sa.iv_len + sa.icv_len;
  unsigned room = port_mtu > fixed ? port_mtu - fixed : 0;
  unsigned aligned = room / sa.block * sa.block;
  return uint16_t(aligned > 2 ? aligned - 2 : 0);
}

// Every outbound static SA continues above the reservation its key's record holds, and the new
// reservations are on disk before any SA exists (control/state/seq_store.h).
bool Control::install_static_tunnels(std::string* err) {
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
      std::fprintf(stderr,
                   "espgw: tunnel %s: outbound sequence numbers continue above %llu (reserved "
                   "before the last stop; a (key, nonce) pair is never used twice)\n",
                   t.name.c_str(), (unsigned long long)used);
    if (!t.esn && max_seq - start < (max_seq >> 4))
      std::fprintf(stderr,
                   "espgw: tunnel %s: %llu outbound sequence numbers left for this key; rotate "
                   "the key or enable esn\n",
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
    SaParams out;
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
    SaParams in = out;
    in.seq_start = 0;
    in.inbound = true;
    in.spi = t.inbound.spi;
    in.algo = t.inbound.algo;
    in.key = t.inbound.key.data();
    in.key_len = t.inbound.key.size();
    in.replay_window = t.anti_replay ? t.replay_window : 0;
    if (!t.anti_replay)
      std::fprintf(stderr,
                   "espgw: WARNING: tunnel %s: anti-replay is off (anti_replay: false): replayed "
                   "ESP packets are accepted\n",
                   t.name.c_str());
    uint32_t out_id = sas_.add_sa(out, err);
    if (!out_id) return *err = "tunnel " + t.name + " outbound SA: " + *err, false;
    static_out_[ti++].sa = out_id;
    uint32_t in_id = sas_.add_sa(in, err);
    if (!in_id) return *err = "tunnel " + t.name + " inbound SA: " + *err, false;
    uint16_t mtu = tunnel_mtu(t.local, *sas_.sa(out_id));
    uint32_t tid = sas_.add_tunnel(t.name, t.tcp_mss_clamp, mtu, t.traffic_selectors, err);
    if (!tid || !sas_.bind_tunnel(tid, out_id, err) || !sas_.bind_tunnel(tid, in_id, err))
      return *err = "tunnel " + t.name + ": " + *err, false;
  }
  return true;
}

// Keeps every static outbound SA's reservation at least half a block ahead of its counter. The
// new limit reaches the workers only after the file is on disk; if the disk fails, traffic stops
// at the old limit (drop esp_seq_unreserved) instead of risking reuse.
void Control::extend_seq_reservations(uint64_t now_ms) {
  std::vector<std::pair<SaRt*, uint64_t>> raise;
  for (const auto& so : static_out_) {
    SaRt* sa = sas_.sa(so.sa);
    if (!sa) continue;
    uint64_t used = sa->seq.load(std::memory_order_relaxed);
    uint64_t limit = sa->seq_limit.load(std::memory_order_relaxed);
    if (used > limit) used = limit;  // numbers past the limit were dropped, never sent
    if (!state::SeqStore::needs_extension(used, limit, sa->esn, so.max_seq)) continue;
    uint64_t next = state::SeqStore::next_reservation(used, sa->esn, so.max_seq);
    seq_store_.set(so.key, next);
    raise.push_back({sa, next});
  }
  if (raise.empty()) return;
  std::string err;
  if (!seq_store_.flush(&err)) {
    if (now_ms >= seq_flush_error_ms_) {
      std::fprintf(stderr, "espgw: cannot extend sequence reservations: %s\n", err.c_str());
      seq_flush_error_ms_ = now_ms + 10000;
    }
    return;
  }
  for (auto [sa, next] : raise) sa->seq_limit.store(next, std::memory_order_release);
}

bool Control::install_config_routes(std::string* err) {
  for (uint16_t i = 0; i < rt_.ports.size(); ++i) {
    const PortRt& p = rt_.ports[i];
    if (p.exception) continue;
    for (const auto& a : p.addrs) {
      NhSpec conn{NhKind::kConnected, i, {}};
      if (!routes_.add(a.connected(), RouteSource::kConnected, conn, err)) return false;
      NhSpec local{NhKind::kLocal, rt_.exception_port, {}};
      Prefix host{a.addr, uint8_t(a.addr.is_v4() ? 32 : 128)};
      if (!routes_.add(host, RouteSource::kLocal, local, err)) return false;
    }
  }
  for (const auto& r : cfg_.instance.routes) {
    NhSpec nh;
    if (r.blackhole) {
      nh.kind = NhKind::kBlackhole;
    } else if (!r.tunnel.empty()) {
      nh.kind = NhKind::kTunnel;
      nh.tunnel = sas_.tunnel_by_name(r.tunnel);
      if (!nh.tunnel) {
        *err = "route " + r.prefix.str() + ": no tunnel named " + r.tunnel;
        return false;
      }
    } else if (r.via.is_set()) {
      if (!routes_.resolve_via(r.via, r.port, nh, err)) {
        *err = "route " + r.prefix.str() + ": " + *err;
        return false;
      }
    } else {
      const model::Port* mp = cfg_.find_port(r.port);
      nh.kind = NhKind::kConnected;
      for (uint16_t i = 0; mp && i < rt_.ports.size(); ++i)
        if (rt_.ports[i].name == mp->name) nh.port = i;
    }
    if (!routes_.add(r.prefix, RouteSource::kStatic, nh, err)) return false;
  }
  return routes_.commit(err);
}

api::Json Control::show_ports() const {
  api::Json a = api::Json::array();
  for (uint16_t i = 0; i < rt_.ports.size(); ++i) {
    const PortRt& p = rt_.ports[i];
    PortCounters c = rt_.counters->total_port(i);
    rte_eth_stats st{};
    rte_eth_stats_get(p.eth_id, &st);
    api::Json addrs = api::Json::array();
    for (const auto& ad : p.addrs) addrs.push_back(ad.str());
    a.push_back({{"name", p.name},
                 {"ethdev", p.eth_id},
                 {"mac", mac_str(p.mac)},
                 {"mtu", p.mtu},
                 {"addresses", addrs},
                 {"rx_packets", c.rx_packets},
                 {"rx_bytes", c.rx_bytes},
                 {"tx_packets", c.tx_packets},
                 {"tx_bytes", c.tx_bytes},
                 {"rx_missed", st.imissed},
                 {"rx_errors", st.ierrors},
                 {"tx_errors", st.oerrors}});
  }
  return a;
}

api::Json Control::show_counters(bool per_lcore) const {
  api::Json drops = api::Json::object(), events = api::Json::object();
  for (size_t i = 0; i < kDropNames.size(); ++i)
    drops[std::string(kDropNames[i])] = rt_.counters->total_drop(Drop(i));
  for (size_t i = 0; i < kEventNames.size(); ++i)
    events[std::string(kEventNames[i])] = rt_.counters->total_event(Event(i));
  api::Json out{{"drops", drops}, {"events", events}};
  if (per_lcore) {
    api::Json l = api::Json::object();
    unsigned lc;
    RTE_LCORE_FOREACH(lc) {
      const auto& c = rt_.counters->lcore[lc];
      api::Json d = api::Json::object();
      for (size_t i = 0; i < kDropNames.size(); ++i)
        if (peek(c.drops[i])) d[std::string(kDropNames[i])] = peek(c.drops[i]);
      api::Json e = api::Json::object();
      for (size_t i = 0; i < kEventNames.size(); ++i)
        if (peek(c.events[i])) e[std::string(kEventNames[i])] = peek(c.events[i]);
      int worker = -1;  // the worker index (the owner_worker of an inbound SA)
      for (size_t w = 0; w < rt_.worker_lcores.size(); ++w)
        if (rt_.worker_lcores[w] == lc) worker = int(w);
      l[std::to_string(lc)] = {{"role", lc == rte_get_main_lcore() ? "control" : "worker"},
                               {"worker", worker},
                               {"polls", peek(c.polls)},
                               {"busy_polls", peek(c.busy_polls)},
                               {"drops", d},
                               {"events", e}};
    }
    out["lcores"] = l;
  }
  return out;
}

// Stages one "add PREFIX (via IP [dev PORT] | dev PORT | blackhole)" or "del PREFIX".
void Control::stage_route(const api::Args& a, bool add) {
  if (a.empty()) throw api::RequestError("missing prefix");
  auto p = Prefix::parse(a[0]);
  if (!p) throw api::RequestError("bad prefix '" + a[0] + "' (host bits must be zero)");
  std::string err;
  if (!add) {
    if (a.size() != 1) throw api::RequestError("route del takes only a prefix");
    if (!routes_.del(*p, RouteSource::kApi)) throw api::RequestError("no api route for " + p->str());
    return;
  }
  NhSpec nh;
  std::string via, dev;
  bool blackhole = false;
  for (size_t i = 1; i < a.size(); ++i) {
    if (a[i] == "via" && i + 1 < a.size()) via = a[++i];
    else if (a[i] == "dev" && i + 1 < a.size()) dev = a[++i];
    else if (a[i] == "blackhole") blackhole = true;
    else throw api::RequestError("unexpected '" + a[i] + "'");
  }
  if (blackhole) {
    if (!via.empty() || !dev.empty()) throw api::RequestError("blackhole takes no via/dev");
    nh.kind = NhKind::kBlackhole;
  } else if (!via.empty()) {
    auto gw = IpAddr::parse(via);
    if (!gw) throw api::RequestError("bad next hop '" + via + "'");
    if (gw->family != p->addr.family) throw api::RequestError("next hop family does not match prefix");
    if (!routes_.resolve_via(*gw, dev, nh, &err)) throw api::RequestError(err);
  } else if (!dev.empty()) {
    nh.kind = NhKind::kConnected;
    bool found = false;
    for (uint16_t i = 0; i < rt_.ports.size(); ++i)
      if (!rt_.ports[i].exception && rt_.ports[i].name == dev) {
        nh.port = i;
        found = true;
      }
    if (!found) throw api::RequestError("no port named " + dev);
  } else {
    throw api::RequestError("need 'via IP', 'dev PORT' or 'blackhole'");
  }
  if (!routes_.add(*p, RouteSource::kApi, nh, &err)) throw api::RequestError(err);
}

// route add ... | route del ... | route batch CMD [; CMD]... — all or nothing, one FIB publish.
api::Json Control::route_cmd(const api::Args& a, const std::string& verb) {
  std::vector<std::pair<bool, api::Args>> cmds;
  if (verb == "batch") {
    api::Args cur;
    auto flush = [&] {
      if (cur.empty()) return;
      if (cur[0] != "add" && cur[0] != "del")
        throw api::RequestError("batch items are 'add ...' or 'del ...', got '" + cur[0] + "'");
      cmds.push_back({cur[0] == "add", api::Args(cur.begin() + 1, cur.end())});
      cur.clear();
    };
    for (const auto& w : a) {
      if (w == ";") flush();
      else cur.push_back(w);
    }
    flush();
    if (cmds.empty()) throw api::RequestError("empty batch");
  } else {
    cmds.push_back({verb == "add", a});
  }
  routes_.checkpoint();
  try {
    for (const auto& [add, args] : cmds) stage_route(args, add);
    std::string err;
    if (!routes_.commit(&err)) throw api::RequestError(err);
  } catch (...) {
    routes_.rollback();
    throw;
  }
  return {{"applied", cmds.size()}, {"fib_generation", rt_.fib->generation()}};
}

void Control::register_commands() {
  server_.add({"show", "ports"}, [this](const api::Args&) { return show_ports(); },
              "show ports");
  server_.add({"show", "routes"},
              [this](const api::Args& a) {
                api::Args w = a;
                return routes_.to_json(take_route_page(w));
              },
              "show routes [limit N] [after PREFIX]");
  server_.add({"show", "neighbors"}, [this](const api::Args&) { return neigh_.to_json(); },
              "show neighbors");
  server_.add({"show", "counters"},
              [this](const api::Args& a) {
                return show_counters(!a.empty() && a[0] == "lcores");
              },
              "show counters [lcores]");
  server_.add({"show", "status"},
              [this](const api::Args&) {
                return api::Json{{"gateway", cfg_.gateway.name},
                                 {"instance", cfg_.instance.index},
                                 {"workers", rt_.n_workers},
                                 {"fib_generation", rt_.fib->generation()},
                                 {"routes", routes_.size()},
                                 // keys live in this process: no core dumps, no ptrace by
                                 // other users (main sets PR_SET_DUMPABLE 0)
                                 {"core_dumps", prctl(PR_GET_DUMPABLE) == 1}};
              },
              "show status");
  server_.add({"neighbor", "add"},
              [this](const api::Args& a) {
                // neighbor add IP lladdr MAC dev PORT
                if (a.size() != 5 || a[1] != "lladdr" || a[3] != "dev")
                  throw api::RequestError("expected: neighbor add IP lladdr MAC dev PORT");
                auto ip = IpAddr::parse(a[0]);
                if (!ip) throw api::RequestError("bad address '" + a[0] + "'");
                rte_ether_addr mac;
                if (rte_ether_unformat_addr(a[2].c_str(), &mac) != 0)
                  throw api::RequestError("bad MAC '" + a[2] + "'");
                for (uint16_t i = 0; i < rt_.ports.size(); ++i) {
                  if (rt_.ports[i].exception || rt_.ports[i].name != a[4]) continue;
                  std::string err;
                  if (!neigh_.add_static(i, *ip, mac, &err)) throw api::RequestError(err);
                  return api::Json{{"added", a[0]}};
                }
                throw api::RequestError("no port named " + a[4]);
              },
              "neighbor add IP lladdr MAC dev PORT");
  server_.add({"show", "tunnels"}, [this](const api::Args&) { return sas_.tunnels_json(); },
              "show tunnels");
  server_.add({"show", "sas"}, [this](const api::Args&) { return sas_.sas_json(); },
              "show sas");
  server_.add({"route", "add"}, [this](const api::Args& a) { return route_cmd(a, "add"); },
              "route add PREFIX (via IP [dev PORT] | dev PORT | blackhole)");
  server_.add({"route", "del"}, [this](const api::Args& a) { return route_cmd(a, "del"); },
              "route del PREFIX");
  server_.add({"route", "batch"}, [this](const api::Args& a) { return route_cmd(a, "batch"); },
              "route batch (add ...|del ...) [; (add ...|del ...)]...  (atomic)");
}

bool Control::init(std::string* err) {
  if (!neigh_.init(cfg_.instance.dataplane.max_neighbors, err)) return false;
  if (!sas_.init(err)) return false;
  routes_.tunnel_name = [this](uint32_t id) {
    const TunnelRt* t = sas_.tunnel(id);
    return t ? t->name : std::to_string(id);
  };
  if (!install_static_tunnels(err)) return false;
  if (!install_config_routes(err)) return false;
  register_commands();
  return server_.listen(cfg_.instance.control_socket, err);
}

void Control::run(const std::atomic<bool>& stop) {
  uint64_t next_tick = 0, next_seq_check = 0;
  const unsigned lc = rte_lcore_id();
  while (!stop.load(std::memory_order_relaxed)) {
    std::vector<pollfd> pfds;
    for (const auto& x : server_.poll_fds()) pfds.push_back({x.fd, x.events, 0});
    size_t first_service_fd = pfds.size();
    std::vector<std::pair<Service*, int>> owners;
    for (auto& s : services_)
      for (int fd : s->fds()) {
        pfds.push_back({fd, POLLIN, 0});
        owners.push_back({s.get(), fd});
      }
    // Short timeout: the rings from the workers are polled, not signalled (no syscalls there).
    ::poll(pfds.data(), pfds.size(), 1);
    server_.poll();
    uint64_t now = monotonic_ms();
    for (size_t i = first_service_fd; i < pfds.size(); ++i)
      if (pfds[i].revents & (POLLIN | POLLERR | POLLHUP))
        owners[i - first_service_fd].first->on_readable(pfds[i].fd, now);
    void* objs[64];
    unsigned n;
    // bounded per pass: a flood from the workers (already rate-limited per port there) cannot
    // keep the loop from the sockets and timers; what is left waits for the next pass
    for (unsigned k = 0; k < 4; ++k) {
      n = rte_ring_sc_dequeue_burst(rt_.to_control, objs, 64, nullptr);
      for (unsigned i = 0; i < n; ++i) neigh_.receive(static_cast<rte_mbuf*>(objs[i]), now);
      if (n < 64) break;
    }
    if (now >= next_seq_check) {
      extend_seq_reservations(now);
      next_seq_check = now + 10;
    }
    if (now >= next_tick) {
      neigh_.tick(now);
      sas_.tick(now);
      for (auto& s : services_) s->tick(now);
      next_tick = now + 100;
      bump(rt_.counters->lcore[lc].polls);
    }
  }
}

}  // namespace espgw::dp
