#include "control/agent/bgp_service.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <iterator>
#include <map>
#include <set>

#include "control/bgp/format.h"
#include "control/bgp/speaker.h"
#include "control/agent/sockaddr.h"
#include "dataplane/log.h"

namespace espgw::agent {

using dp::NhKind;
using dp::NhSpec;
using dp::RouteSource;
using dp::kMaxEcmp;
using dp::monotonic_ms;
namespace {

constexpr uint16_t kBgpPort = 179;
constexpr int kTtl = 64;                 // eBGP multihop: the peer is behind the tunnel
constexpr size_t kMaxTxBuffer = 256u << 20;
// Connections accepted per loop pass: anyone who reaches the peering address can connect (those
// that are not our peers are closed at once), and the loop must not stay here while they do.
constexpr int kAcceptsPerPass = 16;


void set_socket_options(int fd, bool v6) {
  int one = 1, ttl = kTtl;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (v6) setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof ttl);
  else setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
  // BGP traffic is network control (DSCP CS6).
  int tos = 0xc0;
  if (!v6) setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof tos);
}

std::string uptime_str(uint64_t s) {
  char b[32];
  std::snprintf(b, sizeof b, "%02llu:%02llu:%02llu", (unsigned long long)(s / 3600),
                (unsigned long long)(s / 60 % 60), (unsigned long long)(s % 60));
  return b;
}

class BgpService : public Service, public bgp::Transport, public bgp::FibSink {
 public:
  explicit BgpService(Agent& ctl) : ctl_(ctl), dp_(ctl.dp()), cfg_(ctl.config()) {}
  ~BgpService() override {
    if (speaker_) speaker_->stop(monotonic_ms());
    for (auto& [id, s] : socks_) ::close(s.fd);
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }

  bool init(std::string* err);

  // Service.
  std::vector<int> fds() const override {
    std::vector<int> v;
    if (listen_fd_ >= 0) v.push_back(listen_fd_);
    for (const auto& [id, s] : socks_)
      if (!s.connecting) v.push_back(s.fd);
    return v;
  }
  void on_readable(int fd, uint64_t now) override;
  void tick(uint64_t now) override;

  // bgp::Transport.
  bgp::ConnId connect(const IpAddr& local, const IpAddr& remote) override;
  bool send(bgp::ConnId c, std::span<const uint8_t> bytes) override;
  void close(bgp::ConnId c) override;

  // bgp::FibSink.
  void fib_update(const Prefix& p, const std::vector<const bgp::Path*>& paths) override;
  void fib_commit() override;

 private:
  struct Sock {
    int fd = -1;
    bool connecting = false;
    bgp::Bytes tx;
    size_t tx_head = 0;  // tx[0, tx_head) is sent (dropped in bulk, not per send())
  };
  struct PeerInfo {
    std::string connection;  // its tunnel is named like the connection (IKE) ...
    IpAddr address;
    uint32_t tunnel = 0;     // ... and its id is learned from the first up event
  };

  uint32_t default_max_prefixes() const {
    const auto& d = cfg_.instance.dataplane;
    return uint32_t(std::min<uint64_t>(uint64_t(d.max_routes_v4) + d.max_routes_v6, UINT32_MAX));
  }
  bool resolve(const bgp::Path& path, NhSpec& nh, std::string* why) const;
  uint32_t live(uint32_t tunnel) const { return tunnel && dp_.tunnel_up(tunnel) ? tunnel : 0; }
  // A tunnel went up or down (the data plane's event stream): every learned route is resolved
  // again (down: its routes leave the FIB or its ECMP group; up again: they come back).
  void on_dp_event(const dp::DpEvent& e) override {
    if (e.kind != dp::EventKind::kTunnelUp && e.kind != dp::EventKind::kTunnelDown) return;
    tunnels_changed_ = true;
    if (e.kind == dp::EventKind::kTunnelUp) {
      const std::string name = dp_.tunnel_name(e.tunnel);
      for (auto& [id, pi] : peer_info_)
        if (pi.connection == name) pi.tunnel = e.tunnel;
    }
  }
  void flush_tx(bgp::ConnId c);
  void drop(bgp::ConnId c, uint64_t now);  // the transport failed: tell the speaker
  void register_commands();
  api::Json peers_json(uint64_t now) const;
  api::Json routes_json(const api::Args& a) const;
  std::string fib_reason(const Prefix& p) const;

  Agent& ctl_;
  dp::Dataplane& dp_;
  const model::Config& cfg_;
  IpAddr local_;
  std::unique_ptr<bgp::Speaker> speaker_;
  std::map<bgp::PeerId, PeerInfo> peer_info_;
  int listen_fd_ = -1;
  std::map<bgp::ConnId, Sock> socks_;
  std::map<int, bgp::ConnId> by_fd_;
  bgp::ConnId next_conn_ = 1;
  std::set<Prefix> unresolved_;  // selected routes without a usable next hop (retried)
  std::map<Prefix, NhSpec> installed_;
  uint64_t next_retry_ = 0;
  bool tunnels_changed_ = false;
  uint64_t fib_errors_ = 0;
  std::string last_fib_error_;
};

bool BgpService::init(std::string* err) {
  const auto& gw = cfg_.gateway;
  const auto& inst = gw.instances.at(cfg_.instance.index);
  local_ = inst.bgp_peering_address;
  // Our peering address lives on the exception TAP (the kernel owns the TCP sessions) and is a
  // local route in the FIB.
  if (!dp_.add_local_address(local_, err)) return *err = "bgp: local address " + local_.str() + ": " + *err, false;

  bgp::SpeakerConfig sc;
  sc.local.asn = gw.asn;
  sc.local.router_id = local_.is_v4() ? local_.v4_host()
                       : inst.public_ip.is_v4() ? inst.public_ip.v4_host() : 1;
  sc.originate = gw.address_spaces;
  sc.log = [](const std::string& line) { logging::info("bgp: " + line); };
  speaker_ = std::make_unique<bgp::Speaker>(sc, *this, this);
  for (const auto& conn : cfg_.connections) {
    if (!conn.enable_bgp) continue;
    const model::LocalNetworkGateway* lng = cfg_.find_lng(conn.peer);
    if (!lng || !lng->bgp_peering_address.is_set()) continue;
    bgp::PeerConfig pc;
    pc.name = conn.name;
    pc.address = lng->bgp_peering_address;
    pc.asn = lng->asn;
    pc.local_address = local_;
    pc.hold_time = uint16_t(conn.bgp.hold_time);  // validated: 0 or 3..65535
    pc.keepalive = uint16_t(conn.bgp.keepalive_or_default());
    // Unset (0): the FIB's capacity. More prefixes than the FIB holds can never all forward,
    // and the limit bounds the peer's share of the RIB (one Path per prefix it announces;
    // attributes are shared) however much a peer sends.
    pc.max_prefixes = conn.bgp.max_prefixes ? conn.bgp.max_prefixes : default_max_prefixes();
    pc.max_prefix_action = conn.bgp.max_prefix_action == model::MaxPrefixAction::kDiscard
                               ? bgp::MaxPrefixAction::kDiscard
                           : conn.bgp.max_prefix_action == model::MaxPrefixAction::kWarn
                               ? bgp::MaxPrefixAction::kWarn
                               : bgp::MaxPrefixAction::kReset;
    pc.advertise_default = conn.bgp.advertise_default;
    // A peer on one of our connected networks gets that port's addresses as next hops (what it
    // can resolve on the link); a peer behind a tunnel gets the peering address.
    for (const auto& port : cfg_.instance.ports)
      for (const auto& a : port.addresses)
        if (a.connected().contains(pc.address))
          for (const auto& b : port.addresses) {
            if (b.addr.is_v4() && !pc.next_hop_v4) pc.next_hop_v4 = b.addr;
            if (b.addr.is_v6() && !pc.next_hop_v6) pc.next_hop_v6 = b.addr;
          }
    // Behind a tunnel, routes of the other family need a next hop of that family too (BIRD
    // refuses IPv4-mapped ones): our port address inside our address spaces, which the site
    // routes into the tunnel.
    for (const auto& port : cfg_.instance.ports)
      for (const auto& a : port.addresses)
        for (const auto& space : gw.address_spaces)
          if (space.contains(a.addr)) {
            if (a.addr.is_v6() && !pc.next_hop_v6 && local_.is_v4()) pc.next_hop_v6 = a.addr;
            if (a.addr.is_v4() && !pc.next_hop_v4 && local_.is_v6()) pc.next_hop_v4 = a.addr;
          }
    bgp::PeerId id = speaker_->add_peer(pc);
    peer_info_[id] = {conn.name, pc.address, dp_.tunnel_by_name(conn.name)};
  }

  listen_fd_ = ::socket(local_.is_v4() ? AF_INET : AF_INET6,
                        SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return *err = std::string("bgp: socket: ") + strerror(errno), false;
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(listen_fd_, SOL_IP, IP_FREEBIND, &one, sizeof one);
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(local_, kBgpPort, ss);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(listen_fd_, 16) != 0)
    return *err = "bgp: listen on " + local_.str() + ":179: " + strerror(errno), false;
  register_commands();
  speaker_->start(monotonic_ms());
  logging::logf(logging::Level::kInfo, "bgp: AS %u, peering address %s, %zu peer(s)", gw.asn,
                local_.str().c_str(), peer_info_.size());
  return true;
}

// ---- transport -----------------------------------------------------------------------------

bgp::ConnId BgpService::connect(const IpAddr& local, const IpAddr& remote) {
  int fd = ::socket(remote.is_v4() ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  int one = 1;
  setsockopt(fd, SOL_IP, IP_FREEBIND, &one, sizeof one);
  set_socket_options(fd, remote.is_v6());
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(local, 0, ss);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    ::close(fd);
    return 0;
  }
  len = to_sockaddr(remote, kBgpPort, ss);
  int r = ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  if (r != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return 0;
  }
  bgp::ConnId id = next_conn_++;
  socks_[id] = {fd, true, {}};
  by_fd_[fd] = id;
  return id;
}

bool BgpService::send(bgp::ConnId c, std::span<const uint8_t> bytes) {
  auto it = socks_.find(c);
  if (it == socks_.end()) return false;
  Sock& s = it->second;
  if (s.tx.size() - s.tx_head + bytes.size() > kMaxTxBuffer) return false;
  s.tx.insert(s.tx.end(), bytes.begin(), bytes.end());
  if (!s.connecting) flush_tx(c);
  return true;
}

void BgpService::flush_tx(bgp::ConnId c) {
  auto it = socks_.find(c);
  if (it == socks_.end()) return;
  Sock& s = it->second;
  while (s.tx_head < s.tx.size()) {
    ssize_t n = ::send(s.fd, s.tx.data() + s.tx_head, s.tx.size() - s.tx_head,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n <= 0) break;  // EAGAIN: later; errors show up on the read side
    s.tx_head += size_t(n);
  }
  // A peer that reads slowly leaves a long backlog: moving it forward after every partial send
  // would copy it once per UPDATE queued. The sent part goes when it is at least half.
  if (s.tx_head == s.tx.size()) {
    s.tx.clear();
    s.tx_head = 0;
  } else if (s.tx_head >= s.tx.size() / 2) {
    s.tx.erase(s.tx.begin(), s.tx.begin() + ptrdiff_t(s.tx_head));
    s.tx_head = 0;
  }
}

void BgpService::close(bgp::ConnId c) {
  auto it = socks_.find(c);
  if (it == socks_.end()) return;
  if (!it->second.connecting) flush_tx(c);  // a final NOTIFICATION, if the socket takes it
  by_fd_.erase(it->second.fd);
  ::close(it->second.fd);
  socks_.erase(it);
}

void BgpService::drop(bgp::ConnId c, uint64_t now) {
  auto it = socks_.find(c);
  if (it == socks_.end()) return;
  bool was_connecting = it->second.connecting;
  by_fd_.erase(it->second.fd);
  ::close(it->second.fd);
  socks_.erase(it);
  if (was_connecting) speaker_->on_connect_failed(c, now);
  else speaker_->on_closed(c, now);
}

void BgpService::on_readable(int fd, uint64_t now) {
  if (fd == listen_fd_) {
    for (int i = 0; i < kAcceptsPerPass; ++i) {  // poll() reports the rest on the next pass
      sockaddr_storage ss;
      socklen_t len = sizeof ss;
      int c = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len,
                        SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c < 0) break;
      set_socket_options(c, ss.ss_family == AF_INET6);
      bgp::ConnId id = next_conn_++;
      socks_[id] = {c, false, {}};
      by_fd_[c] = id;
      if (!speaker_->on_accept(id, from_sockaddr(ss), now)) close(id);
    }
    return;
  }
  auto f = by_fd_.find(fd);
  if (f == by_fd_.end()) return;
  const bgp::ConnId id = f->second;
  // A full table arrives faster than it is processed: take a bounded slice per loop pass (at
  // most ~10 ms of work) so the control loop keeps serving the API, IKE and the other peers'
  // keepalives; poll() reports the socket again on the next pass.
  uint8_t buf[16384];
  const uint64_t deadline = monotonic_ms() + 10;
  for (int i = 0; i < 64 && socks_.count(id) && (i == 0 || monotonic_ms() < deadline); ++i) {
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      speaker_->on_data(id, std::span<const uint8_t>(buf, size_t(n)), now);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
    drop(id, now);  // EOF or error
    break;
  }
  if (socks_.count(id)) flush_tx(id);
}

void BgpService::tick(uint64_t now) {
  // Outgoing connects complete with POLLOUT, which the control loop does not watch.
  std::vector<bgp::ConnId> done, failed;
  for (auto& [id, s] : socks_) {
    if (!s.connecting) continue;
    pollfd p{s.fd, POLLOUT, 0};
    if (::poll(&p, 1, 0) <= 0) continue;
    int e = 0;
    socklen_t l = sizeof e;
    getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &e, &l);
    (e == 0 && (p.revents & POLLOUT) ? done : failed).push_back(id);
  }
  for (auto id : done) {
    socks_[id].connecting = false;
    speaker_->on_connected(id, now);
    flush_tx(id);
  }
  for (auto id : failed) drop(id, now);
  speaker_->tick(now);
  for (auto& [id, s] : socks_)
    if (!s.connecting && s.tx_head < s.tx.size()) flush_tx(id);
  // Tunnels up/down (at once), unresolved routes (every second: e.g. a connected next hop).
  if (tunnels_changed_ || now >= next_retry_) {
    next_retry_ = now + 1000;
    std::set<Prefix> retry;
    if (tunnels_changed_) {
      tunnels_changed_ = false;
      for (const auto& [p, e] : speaker_->rib().entries()) retry.insert(p);
    }
    retry.merge(unresolved_);
    unresolved_.clear();
    for (const auto& p : retry) {
      const bgp::Rib::Entry* e = speaker_->rib().find(p);
      std::vector<const bgp::Path*> sel;
      if (e)
        for (uint32_t i : e->selected)
          if (e->paths[i].peer != bgp::kLocalPeer) sel.push_back(&e->paths[i]);
      fib_update(p, sel);
    }
    fib_commit();
  }
}

// ---- FIB -----------------------------------------------------------------------------------



// The next hop of a learned route: the tunnel of the connection it was learned over (IKE names
// tunnels after connections), else a static route's tunnel covering the BGP next hop or the
// peer, else the BGP next hop or the peer on a connected network.
bool BgpService::resolve(const bgp::Path& path, NhSpec& nh, std::string* why) const {
  auto it = peer_info_.find(path.peer);
  if (it == peer_info_.end()) return *why = "unknown peer", false;
  const PeerInfo& pi = it->second;
  nh = {};
  if (uint32_t t = live(pi.tunnel)) {
    nh.kind = NhKind::kTunnel;
    nh.tunnel = t;
    return true;
  }
  for (const IpAddr& target : {path.next_hop, pi.address}) {
    const model::Route* bestr = nullptr;
    for (const auto& r : cfg_.instance.routes)
      if (!r.tunnel.empty() && r.prefix.contains(target) && (!bestr || r.prefix.len > bestr->prefix.len))
        bestr = &r;
    if (bestr) {
      if (uint32_t t = live(dp_.tunnel_by_name(bestr->tunnel))) {  // static: exists from the start
        nh.kind = NhKind::kTunnel;
        nh.tunnel = t;
        return true;
      }
      return *why = "tunnel " + bestr->tunnel + " is down", false;
    }
  }
  for (const IpAddr& target : {path.next_hop, pi.address}) {
    if (!target.is_set()) continue;
    NhSpec v;
    std::string e;
    if (dp_.resolve_via(target, "", v, &e)) {
      nh = v;
      return true;
    }
  }
  *why = "no tunnel or connected network reaches " + path.next_hop.str();
  return false;
}

void BgpService::fib_update(const Prefix& p, const std::vector<const bgp::Path*>& paths) {
  unresolved_.erase(p);
  if (paths.empty()) {
    if (installed_.erase(p)) dp_.route_del(p, RouteSource::kBgp);
    return;
  }
  // The best path first; the equal-cost ones after it. Two or more distinct live tunnels make
  // an ECMP tunnel group; otherwise the first usable next hop.
  NhSpec nh;
  std::string why;
  bool ok = false;
  std::vector<uint32_t> tunnels;
  for (const bgp::Path* path : paths) {
    NhSpec one;
    if (!resolve(*path, one, &why)) continue;
    if (one.kind == NhKind::kVia && one.gw.family != p.addr.family) continue;
    if (!ok) nh = one;
    ok = true;
    if (one.kind == NhKind::kTunnel &&
        std::find(tunnels.begin(), tunnels.end(), one.tunnel) == tunnels.end() &&
        tunnels.size() < kMaxEcmp)
      tunnels.push_back(one.tunnel);
  }
  if (ok && nh.kind == NhKind::kTunnel && tunnels.size() > 1) {
    std::sort(tunnels.begin(), tunnels.end());
    nh = {};
    nh.kind = NhKind::kTunnelGroup;
    std::copy(tunnels.begin(), tunnels.end(), nh.members.begin());
  }
  if (!ok) {
    unresolved_.insert(p);
    if (installed_.erase(p)) dp_.route_del(p, RouteSource::kBgp);
    return;
  }
  auto it = installed_.find(p);
  if (it != installed_.end() && it->second == nh) return;
  std::string err;
  if (!dp_.route_add(p, RouteSource::kBgp, nh, &err)) {
    ++fib_errors_;
    last_fib_error_ = p.str() + ": " + err;
    unresolved_.insert(p);
    return;
  }
  installed_[p] = nh;
}

void BgpService::fib_commit() {
  std::string err;
  if (!dp_.route_commit(&err)) {
    // Only the prefixes of this batch that the FIB refused (the route commit isolates them);
    // a peer can cause one per UPDATE, so the log line is rate-limited.
    ++fib_errors_;
    last_fib_error_ = err;
    logging::limited("bgp_fib", monotonic_ms(), logging::Level::kWarning,
                     "bgp: routes not installed: " + err, 1, 10000);
  }
}

// ---- status --------------------------------------------------------------------------------

api::Json BgpService::peers_json(uint64_t now) const {
  api::Json a = api::Json::array();
  // Seconds since a moment (null if it never happened).
  auto ago = [now](uint64_t at) {
    return at ? api::Json((now - std::min(now, at)) / 1000) : api::Json();
  };
  auto notification_json = [&](const bgp::NotificationRecord& n) {
    if (n.name.empty()) return api::Json();
    return api::Json{{"code", n.code}, {"subcode", n.subcode}, {"name", n.name},
                     {"ago_s", ago(n.at_ms)}};
  };
  for (const auto& p : speaker_->peers()) {
    const auto& c = p->config();
    const auto& st = p->stats();
    const bool up = p->state() == bgp::State::kEstablished;
    uint64_t uptime = up ? (now - st.established_at_ms) / 1000 : 0;
    const auto& cnt = speaker_->counters(p->id());
    a.push_back({{"name", c.name},
                 {"neighbor", c.address.str()},
                 {"local_address", c.local_address.str()},
                 {"asn", c.asn},
                 {"local_asn", speaker_->config().local.asn},
                 {"state", bgp::state_name(p->state())},
                 {"connected_duration", uptime_str(uptime)},
                 {"uptime_s", uptime},
                 {"hold_time", up ? p->negotiated_hold() : 0},
                 {"prefixes_received", speaker_->rib().adj_in_count(p->id())},
                 {"prefixes_sent", speaker_->adj_out_count(p->id())},
                 {"messages_received", st.msgs_in},
                 {"messages_sent", st.msgs_out},
                 {"updates_received", st.updates_in},
                 {"updates_sent", st.updates_out},
                 {"established_transitions", st.established_transitions},
                 {"route_refresh_coalesced", cnt.route_refresh_coalesced},
                 {"refused",
                  {{"as_loop", cnt.refused_loop},
                   {"own_address_space", cnt.refused_own_space},
                   {"first_as", cnt.refused_first_as},
                   {"max_prefix", cnt.refused_max_prefix},
                   {"family_not_negotiated", cnt.refused_family}}},
                 {"max_prefixes", c.max_prefixes},
                 {"max_prefix_exceeded", cnt.max_prefix_warned},
                 {"last_error", st.last_error},
                 {"last_state_change", st.last_reason},
                 {"last_transition", st.last_transition},
                 {"last_transition_ago_s", ago(st.last_transition_ms)},
                 {"last_notification_sent", notification_json(st.last_notification_sent)},
                 {"last_notification_received", notification_json(st.last_notification_received)},
                 {"notifications_sent", st.notifications_sent},
                 {"notifications_received", st.notifications_received},
                 {"sessions_lost", st.sessions_lost},
                 {"rfc7606",
                  {{"treat_as_withdraw", cnt.treat_as_withdraw},
                   {"attribute_discards", cnt.attr_discards},
                   {"session_resets", st.update_error_resets}}}});
  }
  return a;
}

std::string BgpService::fib_reason(const Prefix& p) const {
  if (unresolved_.count(p)) return "next hop unresolved";
  if (!installed_.count(p)) return "not installed";
  std::string why = dp_.route_failure(p);
  if (!why.empty()) return why;
  return "another source's route for the prefix is preferred";
}

api::Json BgpService::routes_json(const api::Args& args) const {
  api::Args words = args;
  const dp::RoutePage page = take_route_page(words);
  std::optional<Prefix> only;
  if (!words.empty()) {
    only = Prefix::parse(words[0]);
    if (!only) throw api::RequestError("bad prefix '" + words[0] + "'");
  }
  const auto& entries = speaker_->rib().entries();
  // One prefix, or (a page of) the Loc-RIB in prefix order; a page never splits a prefix's paths.
  auto it = only ? entries.find(*only) : page.after ? entries.upper_bound(*page.after)
                                                    : entries.begin();
  auto end = only && it != entries.end() ? std::next(it) : entries.end();
  api::Json a = api::Json::array();
  for (size_t n = 0; it != end && (!page.paged() || n < page.limit); ++it, ++n) {
    const auto& [p, e] = *it;
    for (uint32_t i = 0; i < e.paths.size(); ++i) {
      const bgp::Path& path = e.paths[i];
      auto sel = std::find(e.selected.begin(), e.selected.end(), i);
      std::string from = "local", peer_addr;
      if (path.peer != bgp::kLocalPeer) {
        const auto* pr = const_cast<bgp::Speaker&>(*speaker_).peer(path.peer);
        from = pr->config().name;
        peer_addr = pr->config().address.str();
      }
      const auto& at = *path.attrs;
      // Only what the FIB really holds: the route table's selected route for p is BGP's and
      // was installed (not refused, not overridden by a connection or static route).
      const bool in_fib = path.peer != bgp::kLocalPeer && sel != e.selected.end() &&
                          dp_.route_installed(p, RouteSource::kBgp);
      api::Json comms = api::Json::array();
      if (at.communities)
        for (uint32_t c : *at.communities) comms.push_back(bgp::community_str(c));
      a.push_back({{"prefix", p.str()},
                   {"next_hop", path.peer == bgp::kLocalPeer ? local_.str() : path.next_hop.str()},
                   {"learned_from", from},
                   {"source_peer", peer_addr},
                   {"as_path", at.as_path ? at.as_path->str() : ""},
                   {"origin", at.origin ? bgp::origin_str(*at.origin) : ""},
                   {"med", at.med ? api::Json(*at.med) : api::Json()},
                   {"communities", comms},
                   {"best", sel == e.selected.begin()},
                   {"multipath", sel != e.selected.end()},
                   {"stale", path.stale},
                   {"in_fib", in_fib}});
      // Why a selected learned route does not forward: what the operator needs to act on.
      if (path.peer != bgp::kLocalPeer && sel != e.selected.end() && !in_fib)
        a.back()["fib_reason"] = fib_reason(p);
    }
  }
  if (!page.paged()) return a;
  api::Json next;
  if (it != end) next = std::prev(it)->first.str();
  return api::Json{{"routes", std::move(a)}, {"next", std::move(next)}};
}

void BgpService::register_commands() {
  auto& api = ctl_.api();
  api.add({"show", "bgp", "peers"}, [this](const api::Args&) { return peers_json(monotonic_ms()); },
          "show bgp peers");
  api.add({"show", "bgp", "routes"}, [this](const api::Args& a) { return routes_json(a); },
          "show bgp routes [PREFIX] [limit N] [after PREFIX]");
  api.add({"show", "bgp", "summary"},
          [this](const api::Args&) {
            size_t up = 0;
            for (const auto& p : speaker_->peers()) up += p->state() == bgp::State::kEstablished;
            return api::Json{{"asn", speaker_->config().local.asn},
                             {"router_id", IpAddr::v4(speaker_->config().local.router_id).str()},
                             {"peering_address", local_.str()},
                             {"peers", speaker_->peers().size()},
                             {"established", up},
                             {"loc_rib_prefixes", speaker_->rib().size()},
                             {"fib_routes", installed_.size()},
                             {"routes_not_installed", dp_.routes_failed()},
                             {"unresolved", unresolved_.size()},
                             {"fib_errors", fib_errors_},
                             {"last_fib_error", last_fib_error_}};
          },
          "show bgp summary");
  api.add({"bgp", "reset"},
          [this](const api::Args& a) {
            if (a.size() != 1) throw api::RequestError("expected: bgp reset NAME|ADDRESS");
            for (const auto& p : speaker_->peers())
              if (p->config().name == a[0] || p->config().address.str() == a[0]) {
                speaker_->reset_peer(p->id(), monotonic_ms());
                return api::Json{{"reset", p->config().name}};
              }
            throw api::RequestError("no BGP peer " + a[0]);
          },
          "bgp reset NAME|ADDRESS");
}

}  // namespace

bool add_bgp_service(Agent& ctl, std::string* err) {
  const auto& cfg = ctl.config();
  bool any = false;
  for (const auto& c : cfg.connections) any |= c.enable_bgp;
  if (!any) return true;
  if (cfg.instance.index >= cfg.gateway.instances.size() ||
      !cfg.gateway.instances[cfg.instance.index].bgp_peering_address.is_set())
    return true;  // validation requires it; nothing to run without it
  auto s = std::make_unique<BgpService>(ctl);
  if (!s->init(err)) return false;
  ctl.add_service(std::move(s));
  return true;
}

}  // namespace espgw::agent
