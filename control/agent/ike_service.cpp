#include "control/agent/ike_service.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "control/agent/sockaddr.h"
#include "dataplane/log.h"

namespace espgw::agent {

namespace {

ike::Endpoint endpoint_of(const sockaddr_storage& ss) {
  ike::Endpoint e;
  e.addr = from_sockaddr(ss, &e.port);
  return e;
}

std::string wall_time(uint64_t mono_ms) {
  if (!mono_ms) return "";
  int64_t ago = int64_t(dp::monotonic_ms()) - int64_t(mono_ms);
  time_t t = time(nullptr) - time_t(ago / 1000);
  char b[32];
  tm g;
  gmtime_r(&t, &g);
  strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &g);
  return b;
}

api::Json stats_json(const ike::SaStats& s) { return {{"packets", s.packets}, {"bytes", s.bytes}}; }

void random_or_die(uint8_t* p, size_t n) {
  if (RAND_bytes(p, int(n)) != 1) {
    logging::error("ike: RAND_bytes failed: no secure randomness, stopping");
    std::abort();
  }
}

}  // namespace

IkeService::IkeService(Agent& ctl) : ctl_(ctl), dp_(ctl.dp()) {}

IkeService::~IkeService() {
  daemon_.reset();
  if (fd500_ >= 0) ::close(fd500_);
  if (fd4500_ >= 0) ::close(fd4500_);
}

int IkeService::open_socket(uint16_t port, std::string* err) {
  int fd = ::socket(public_ip_.is_v4() ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return *err = std::string("socket: ") + std::strerror(errno), -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (public_ip_.is_v4())
    setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof one);
  else
    setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof one);
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(public_ip_, port, ss);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    *err = "bind " + public_ip_.str() + ":" + std::to_string(port) + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

bool IkeService::init(std::string* err) {
  const model::Config& cfg = ctl_.config();
  if (cfg.instance.index >= cfg.gateway.instances.size()) return *err = "no gateway instance", false;
  public_ip_ = cfg.gateway.instances[cfg.instance.index].public_ip;
  for (const auto& t : cfg.instance.tunnels) reserved_spis_.insert(t.inbound.spi);

  ike::Env env;
  env.now_ms = [] { return dp::monotonic_ms(); };
  // Nonces, SPIs and DH keys come from here: never continue with unfilled bytes.
  env.random = [](uint8_t* p, size_t n) { random_or_die(p, n); };
  env.send = [this](const ike::Endpoint& f, const ike::Endpoint& t, const ike::Bytes& m) {
    send(f, t, m, false);
  };
  env.send_keepalive = [this](const ike::Endpoint& f, const ike::Endpoint& t) {
    send(f, t, ike::Bytes{0xff}, true);
  };
  env.log = [](const std::string& line) { logging::info("ike: " + line); };
  ike::Tunables tun;
  tun.initiate_jitter_ms = 500;
  daemon_ = std::make_unique<ike::Daemon>(std::move(env), *this, tun);
  daemon_->on_event = [this](const std::string& c, ike::ConnEvent e) {
    logging::logf(logging::Level::kInfo, "ike: connection %s: %s", c.c_str(), ike::to_string(e));
  };
  for (const auto& c : cfg.connections) {
    auto cc = ike::conn_from_model(cfg, c, err);
    if (!cc) return false;
    if (cc->remote.family != public_ip_.family) continue;
    ConnRt rt;
    rt.cfg = &c;
    if (const auto* lng = cfg.find_lng(c.peer)) {
      rt.routes = lng->address_prefixes;
      if (c.enable_bgp && lng->bgp_peering_address.is_set())
        rt.routes.push_back(Prefix{lng->bgp_peering_address,
                                   uint8_t(lng->bgp_peering_address.is_v4() ? 32 : 128)});
    }
    conns_[c.name] = rt;
    daemon_->add_connection(std::move(*cc));
  }
  if (conns_.empty()) return true;  // nothing to negotiate: no sockets
  if ((fd500_ = open_socket(ike::kIkePort, err)) < 0) return false;
  if ((fd4500_ = open_socket(ike::kNattPort, err)) < 0) return false;

  auto& api = ctl_.api();
  api.add({"show", "connections"}, [this](const api::Args&) { return show_connections(); },
          "show connections");
  api.add({"show", "connection"},
          [this](const api::Args& a) {
            if (a.size() != 1) throw api::RequestError("usage: show connection NAME");
            return show_connection(a[0]);
          },
          "show connection NAME  (IKE/Child SA details, selectors, routes)");
  api.add({"show", "ike", "counters"}, [this](const api::Args&) { return show_counters(); },
          "show ike counters  (IKE messages and requests refused, by reason)");
  auto act = [this](const api::Args& a, const char* what) -> api::Json {
    if (a.empty()) throw api::RequestError(std::string("usage: ike ") + what + " CONNECTION");
    bool ok = false;
    std::string w = what;
    if (w == "initiate") ok = daemon_->initiate(a[0]);
    else if (w == "terminate") ok = daemon_->terminate(a[0]);
    else if (w == "rekey") ok = a.size() > 1 && a[1] == "ike" ? daemon_->rekey_ike(a[0]) : daemon_->rekey_child(a[0]);
    if (!ok) throw api::RequestError("cannot " + w + " " + a[0] + " now");
    return api::Json{{w, a[0]}};
  };
  api.add({"ike", "initiate"}, [act](const api::Args& a) { return act(a, "initiate"); },
          "ike initiate CONNECTION");
  api.add({"ike", "terminate"}, [act](const api::Args& a) { return act(a, "terminate"); },
          "ike terminate CONNECTION");
  api.add({"ike", "rekey"}, [act](const api::Args& a) { return act(a, "rekey"); },
          "ike rekey CONNECTION [ike]");
  return true;
}

std::vector<int> IkeService::fds() const {
  std::vector<int> v;
  if (fd500_ >= 0) v.push_back(fd500_);
  if (fd4500_ >= 0) v.push_back(fd4500_);
  return v;
}

void IkeService::send(const ike::Endpoint& from, const ike::Endpoint& to, const ike::Bytes& msg,
                      bool keepalive) {
  int fd = from.port == ike::kNattPort ? fd4500_ : fd500_;
  if (fd < 0) return;
  std::vector<uint8_t> buf;
  if (fd == fd4500_ && !keepalive) buf.assign(4, 0);  // non-ESP marker (RFC 3948 2.2)
  buf.insert(buf.end(), msg.begin(), msg.end());
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(to.addr, to.port, ss);
  ::sendto(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&ss), len);
}

void IkeService::on_readable(int fd, uint64_t) {
  uint8_t buf[65536];
  // bounded per pass (RFC 7296 2.6 floods included): the rest waits in the socket buffer while
  // the loop serves BGP, the API and the data plane's rings
  for (int k = 0; k < 64; ++k) {
    sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&ss), &sl);
    if (n <= 0) return;
    ike::ByteView msg(buf, size_t(n));
    uint16_t port = fd == fd4500_ ? ike::kNattPort : ike::kIkePort;
    if (port == ike::kNattPort) {
      if (n < 4 || buf[0] || buf[1] || buf[2] || buf[3]) {  // keepalive or stray ESP
        ++no_marker_4500_;
        continue;
      }
      msg = msg.subspan(4);
    }
    daemon_->receive({public_ip_, port}, endpoint_of(ss), msg);
  }
}

void IkeService::tick(uint64_t) { daemon_->tick(); }

// ---- ike::Kernel over the SaTable ----

uint32_t IkeService::alloc_spi() {
  for (;;) {
    uint32_t spi;
    random_or_die(reinterpret_cast<uint8_t*>(&spi), sizeof spi);
    spi |= 0xc0000000u;  // well clear of the reserved range and of hand-picked static SPIs
    if (!reserved_spis_.count(spi) && !sa_ids_.count({spi, true})) {
      reserved_spis_.insert(spi);
      return spi;
    }
  }
}

bool IkeService::add_sa(const std::string& conn, const ike::ChildSaSpec& s, std::string* err) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return *err = "unknown connection", false;
  ConnRt& c = it->second;
  dp::SaParams p;
  p.spi = s.spi;
  p.inbound = s.inbound;
  p.algo = s.algo;
  p.key = s.key->data();
  p.key_len = s.key->size();
  p.local = s.local.addr;
  p.remote = s.remote.addr;
  p.udp_encap = s.udp_encap;
  p.sport = s.local.port;
  p.dport = s.remote.port;
  p.esn = s.esn;
  p.replay_window = s.replay_window;
  p.remote_ts = s.remote_ts;
  p.hard.bytes = s.hard_bytes;
  p.hard.packets = s.hard_packets;
  p.soft.bytes = s.soft_bytes;
  p.soft.packets = s.soft_packets;
  uint32_t id = dp_.add_sa(p, err);
  if (!id) return false;
  if (!c.tunnel) {
    c.tunnel = dp_.tunnel_by_name(conn);
    if (!c.tunnel) {
      // The inner MTU assumes UDP encapsulation: NAT may appear later (the SA moves to 4500).
      dp::TunnelParams tp;
      tp.name = conn;
      tp.mss_clamp = c.cfg->tcp_mss_clamp;
      tp.remote_ts = c.cfg->remote_traffic_selectors;
      tp.local = s.local.addr;
      tp.algo = s.algo;
      tp.udp_encap = true;
      c.tunnel = dp_.add_tunnel(tp, err);
    }
    if (!c.tunnel) {
      dp_.del_sa(id);
      return false;
    }
  }
  if (!dp_.bind_tunnel(c.tunnel, id, err)) {
    dp_.del_sa(id);
    return false;
  }
  sa_ids_[{s.spi, s.inbound}] = id;
  if (!s.inbound) c.outbound.push_back(s.spi);
  if (!s.inbound && s.udp_encap) {
    MovableOut& m = movable_[s.spi];
    m.key = *s.key;
    m.spec = s;
    m.spec.key = &m.key;
  }
  return true;
}

bool IkeService::move_sa(const std::string& conn, uint32_t spi, const ike::Endpoint& local,
                         const ike::Endpoint& remote, std::string* err) {
  auto it = sa_ids_.find({spi, false});
  auto mv = movable_.find(spi);
  auto c = conns_.find(conn);
  if (it == sa_ids_.end() || mv == movable_.end() || c == conns_.end())
    return *err = "not a UDP-encapsulated outbound SA", false;
  const dp::SaStats old = dp_.sa_stats(it->second);
  if (!old.exists) return *err = "no such SA", false;
  // A fresh SA with the same key continues well past the old one's sequence numbers: workers may
  // still take a few from the old SA until it is unpublished, and a number must never repeat
  // under one key.
  constexpr uint64_t kSeqGap = 1u << 20;
  uint64_t seq = old.seq + kSeqGap;
  if (!mv->second.spec.esn && seq >= 0xffffffffull)
    return *err = "sequence numbers exhausted", false;
  const ike::ChildSaSpec& s = mv->second.spec;
  dp::SaParams p;
  p.spi = spi;
  p.algo = s.algo;
  p.key = s.key->data();
  p.key_len = s.key->size();
  p.local = local.addr;
  p.remote = remote.addr;
  p.udp_encap = true;
  p.sport = local.port;
  p.dport = remote.port;
  p.esn = s.esn;
  p.replay_window = s.replay_window;
  p.seq_start = seq;
  p.hard.bytes = s.hard_bytes;
  p.hard.packets = s.hard_packets;
  p.soft.bytes = s.soft_bytes;
  p.soft.packets = s.soft_packets;
  // lifetimes by volume go on counting where the old SA was
  p.bytes_start = old.bytes;
  p.packets_start = old.packets;
  uint32_t id = dp_.add_sa(p, err);
  if (!id) return false;
  // It carries the traffic: swap it in; an older outbound SA (rekey) stays in the background.
  bool sender = dp_.tunnel_out_sa(c->second.tunnel) == it->second;
  if (!dp_.bind_tunnel(c->second.tunnel, id, err, sender)) {
    dp_.del_sa(id);
    return false;
  }
  dp_.del_sa(it->second);
  it->second = id;
  mv->second.spec.local = local;
  mv->second.spec.remote = remote;
  return true;
}

void IkeService::del_sa(const std::string& conn, uint32_t spi, bool inbound) {
  if (inbound) reserved_spis_.erase(spi);  // also an SPI that was allocated but never installed
  if (!inbound) movable_.erase(spi);
  auto it = sa_ids_.find({spi, inbound});
  if (it == sa_ids_.end()) return;
  dp_.del_sa(it->second);
  sa_ids_.erase(it);
  if (inbound) return;
  // The tunnel lost its outbound SA (e.g. a duplicate IKE SA went): the newest remaining one of
  // the connection carries the traffic.
  auto c = conns_.find(conn);
  if (c == conns_.end()) return;
  auto& outs = c->second.outbound;
  std::erase(outs, spi);
  if (c->second.tunnel && !dp_.tunnel_out_sa(c->second.tunnel) && !outs.empty()) {
    auto id = sa_ids_.find({outs.back(), false});
    std::string err;
    if (id != sa_ids_.end()) dp_.bind_tunnel(c->second.tunnel, id->second, &err);
  }
}

// The data plane's lifetime events for the SAs of this service's connections: the daemon rekeys
// on soft, deletes on hard.
void IkeService::on_dp_event(const dp::DpEvent& e) {
  if (e.kind != dp::EventKind::kSaSoftExpired && e.kind != dp::EventKind::kSaHardExpired) return;
  auto it = sa_ids_.find({e.spi, e.inbound});
  if (it == sa_ids_.end() || it->second != e.sa) return;  // not ours (a static tunnel's)
  const std::string conn = dp_.tunnel_name(e.tunnel);
  if (conns_.count(conn))
    daemon_->on_child_lifetime(conn, e.spi, e.inbound, e.kind == dp::EventKind::kSaHardExpired);
}

ike::SaStats IkeService::sa_stats(const std::string&, uint32_t spi, bool inbound) {
  auto it = sa_ids_.find({spi, inbound});
  if (it == sa_ids_.end()) return {};
  const dp::SaStats sa = dp_.sa_stats(it->second);
  if (!sa.exists) return {};
  return {sa.packets, sa.bytes};
}

void IkeService::connection_up(const std::string& conn) {
  auto it = conns_.find(conn);
  if (it == conns_.end() || !it->second.tunnel) return;
  ConnRt& c = it->second;
  std::string err;
  for (const auto& p : c.routes)
    if (!dp_.route_add(p, dp::RouteSource::kConnection,
                       dp::NhSpec{dp::NhKind::kTunnel, 0, {}, c.tunnel}, &err))
      logging::warning("ike: " + conn + ": route " + p.str() + ": " + err);
  if (!dp_.route_commit(&err)) logging::warning("ike: " + conn + ": routes: " + err);
  c.routed = true;
  std::fflush(stdout);
}

void IkeService::connection_down(const std::string& conn) {
  auto it = conns_.find(conn);
  if (it == conns_.end() || !it->second.routed) return;
  ConnRt& c = it->second;
  for (const auto& p : c.routes) dp_.route_del(p, dp::RouteSource::kConnection);
  std::string err;
  if (!dp_.route_commit(&err)) logging::warning("ike: " + conn + ": routes: " + err);
  c.routed = false;
  std::fflush(stdout);
}

api::Json IkeService::connection_json(const ike::ConnStatus& s, bool detail) const {
  auto it = conns_.find(s.name);
  const ConnRt* rt = it != conns_.end() ? &it->second : nullptr;
  // The newest Child SA carrying the outbound traffic is the one to show in the summary.
  const ike::ChildStatus* cur = nullptr;
  for (const auto& c : s.children)
    if (c.state == "INSTALLED") cur = &c;
  api::Json o{{"name", s.name},
              {"state", s.state},
              {"peer", rt ? rt->cfg->peer : ""},
              {"local", s.local},
              {"remote", s.remote},
              {"role", s.ike_state.empty() ? "" : s.initiator ? "initiator" : "responder"},
              {"ike_proposal", s.ike_proposal},
              {"esp_proposal", cur ? cur->proposal : ""},
              {"encap", cur ? (cur->udp_encap ? "udp4500" : "esp") : ""},
              {"ike_spis", s.ike_spi_i.empty() ? "" : s.ike_spi_i + "_i/" + s.ike_spi_r + "_r"},
              {"child_spis", cur ? cur->spi_in + "_i/" + cur->spi_out + "_o" : ""},
              {"ike_rekey_in_seconds", s.ike_rekey_in_s},
              {"child_lifetime_left_seconds", cur ? cur->expires_in_s : -1},
              {"bytes_in", s.in.bytes},
              {"packets_in", s.in.packets},
              {"bytes_out", s.out.bytes},
              {"packets_out", s.out.packets},
              {"last_established", wall_time(s.established_ms)},
              {"failures", s.failures},
              {"last_error", s.last_error}};
  if (!detail) return o;
  o["ike_state"] = s.ike_state;
  o["ike_spi_i"] = s.ike_spi_i;
  o["ike_spi_r"] = s.ike_spi_r;
  o["nat"] = {{"local", s.nat_local}, {"remote", s.nat_remote}};
  o["fragmentation"] = s.fragmentation;
  api::Json frag = api::Json::object();
  for (const auto& [name, v] : s.frag.named()) frag[name] = v;
  o["ike_fragments"] = frag;
  api::Json children = api::Json::array();
  for (const auto& c : s.children)
    children.push_back({{"state", c.state},
                        {"spi_in", c.spi_in},
                        {"spi_out", c.spi_out},
                        {"proposal", c.proposal},
                        {"encap", c.udp_encap ? "udp4500" : "esp"},
                        {"rekey_in_seconds", c.rekey_in_s},
                        {"lifetime_left_seconds", c.expires_in_s},
                        {"in", stats_json(c.in)},
                        {"out", stats_json(c.out)},
                        {"local_ts", c.ts_local},
                        {"remote_ts", c.ts_remote}});
  o["children"] = children;
  api::Json routes = api::Json::array();
  if (rt)
    for (const auto& p : rt->routes) routes.push_back(p.str());
  o["routes"] = routes;
  o["routes_installed"] = rt && rt->routed;
  return o;
}

api::Json IkeService::show_connections() const {
  api::Json a = api::Json::array();
  for (const auto& s : daemon_->status()) a.push_back(connection_json(s, false));
  return a;
}

api::Json IkeService::show_counters() const {
  api::Json o = api::Json::object();
  for (const auto& [name, n] : daemon_->counters()) o[name] = n;
  if (no_marker_4500_) o["udp4500_no_marker"] = no_marker_4500_;
  return o;
}

api::Json IkeService::show_connection(const std::string& name) const {
  for (const auto& s : daemon_->status())
    if (s.name == name) return connection_json(s, true);
  throw api::RequestError("no connection named " + name);
}

}  // namespace espgw::agent
