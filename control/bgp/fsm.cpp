#include "control/bgp/fsm.h"

#include <algorithm>

namespace espgw::bgp {

const char* state_name(State s) {
  switch (s) {
    case State::kIdle: return "Idle";
    case State::kConnect: return "Connect";
    case State::kActive: return "Active";
    case State::kOpenSent: return "OpenSent";
    case State::kOpenConfirm: return "OpenConfirm";
    case State::kEstablished: return "Established";
  }
  return "?";
}

namespace {
constexpr uint64_t kOpenSentHoldMs = 240000;  // "large value" for the hold timer (s8.2.2)
}

Peer::Peer(PeerId id, PeerConfig cfg, const LocalSpeaker& local, Transport& t, PeerOwner& owner)
    : id_(id),
      cfg_(std::move(cfg)),
      local_(local),
      t_(t),
      owner_(owner),
      retry_ms_(cfg_.connect_retry_ms),
      idle_ms_(cfg_.idle_hold_ms),
      rng_(local.router_id * 2654435761u + id * 40503u + 1) {}

uint32_t Peer::jitter(uint32_t ms) {
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 17;
  rng_ ^= rng_ << 5;
  return uint32_t(uint64_t(ms) * (75 + rng_ % 26) / 100);
}

bool Peer::family_enabled(AfiSafi f) const {
  const auto& mp = remote_open_.caps.multiprotocol;
  if (mp.empty()) return f == kIpv4Unicast;  // no capabilities: plain IPv4 unicast (RFC 4760)
  return std::find(mp.begin(), mp.end(), f) != mp.end() && (f == kIpv4Unicast || f == kIpv6Unicast);
}

// ---- transport and messages ----------------------------------------------------------------

bool Peer::send_msg(ConnId c, const Bytes& msg) {
  if (!c) return false;
  ++stats_.msgs_out;
  return t_.send(c, msg);
}

bool Peer::send_raw(const Bytes& msg, bool is_update) {
  if (state_ != State::kEstablished) return false;
  if (is_update) ++stats_.updates_out;
  return send_msg(main_.id, msg);
}

void Peer::send_notification(ConnId c, const Notification& n, uint64_t now) {
  send_msg(c, encode_notification(n));
  ++stats_.notifications_sent;
  stats_.last_notification_sent = {n.code, n.subcode, error_name(n.code, n.subcode), now};
  owner_.on_event(id_,
                  std::string("NOTIFICATION sent") +
                      (c && c == main_.id ? "" : " on a second connection") + ": " +
                      stats_.last_notification_sent.name,
                  now);
}

void Peer::record_received(const Notification& n, const char* where, uint64_t now) {
  ++stats_.notifications_received;
  stats_.last_notification_received = {n.code, n.subcode, error_name(n.code, n.subcode), now};
  owner_.on_event(id_,
                  std::string("NOTIFICATION received") + where + ": " +
                      stats_.last_notification_received.name,
                  now);
}

void Peer::send_open(ConnId c) {
  Capabilities caps;
  caps.multiprotocol = {kIpv4Unicast, kIpv6Unicast};
  caps.route_refresh = true;
  if (local_.graceful_restart_helper) {
    GracefulRestart gr;
    gr.restart_time = local_.gr_restart_time;
    caps.graceful_restart = gr;  // helper only: no families preserved across our restarts
  }
  send_msg(c, encode_open(Open::make(local_.asn, cfg_.hold_time, local_.router_id, caps)));
}

void Peer::close_main() {
  if (main_.id) t_.close(main_.id);
  main_ = {};
}

void Peer::close_alt() {
  if (alt_.id) t_.close(alt_.id);
  alt_ = {};
}

void Peer::start_connect(uint64_t now) {
  if (connecting_) t_.close(connecting_);
  connecting_ = t_.connect(cfg_.local_address, cfg_.address);
  connect_retry_at_ = now + jitter(retry_ms_);
  retry_ms_ = std::min(retry_ms_ * 2, cfg_.connect_retry_max_ms);
}

std::optional<Notification> Peer::open_error(const Open& o) const {
  if (o.version != kVersion) return Notification{err::kOpen, err::open::kUnsupportedVersion, {0, kVersion}};
  if (o.asn() != cfg_.asn) return Notification{err::kOpen, err::open::kBadPeerAs, {}};
  if (o.bgp_id == 0) return Notification{err::kOpen, err::open::kBadBgpId, {}};
  if (o.hold_time == 1 || o.hold_time == 2)
    return Notification{err::kOpen, err::open::kUnacceptableHoldTime, {}};
  return std::nullopt;
}

// ---- common transitions --------------------------------------------------------------------

Peer::Next Peer::to_idle(const Notification* send, const std::string& why, uint64_t now) {
  if (send && main_.id) {
    send_notification(main_.id, *send, now);
    stats_.last_error = "sent: " + error_name(send->code, send->subcode);
    got_notification_ = true;
  }
  close_main();
  close_alt();
  if (connecting_) t_.close(connecting_);
  connecting_ = 0;
  return {State::kIdle, why};
}

Peer::Next Peer::fsm_error(uint8_t subcode, uint64_t now) {
  Notification n{err::kFsm, subcode, {}};
  return to_idle(&n, "unexpected message in " + std::string(state_name(state_)), now);
}

Peer::Next Peer::on_notification(const Event& e) {
  const auto& n = std::get<Notification>(e.msg->message);
  stats_.last_error = "received: " + error_name(n.code, n.subcode);
  record_received(n, "", e.now);
  got_notification_ = true;
  return to_idle(nullptr, "NOTIFICATION received: " + error_name(n.code, n.subcode), e.now);
}

Peer::Next Peer::adopt(ConnId c, bool outgoing, uint64_t now) {
  main_ = {};
  main_.id = c;
  main_.outgoing = outgoing;
  got_notification_ = false;
  connect_retry_at_ = 0;
  send_open(c);
  hold_at_ = now + kOpenSentHoldMs;
  return {State::kOpenSent, outgoing ? "connected" : "connection accepted"};
}

Peer::Next Peer::check_open(const Open& o, uint64_t now) {
  if (auto n = open_error(o)) return to_idle(&*n, "bad OPEN from the peer", now);
  remote_open_ = o;
  codec_ = Codec{};
  codec_.as4 = o.caps.as4.has_value();
  codec_.ebgp = true;
  hold_ = (cfg_.hold_time == 0 || o.hold_time == 0) ? 0 : std::min(cfg_.hold_time, o.hold_time);
  keepalive_ = hold_ ? uint16_t(std::max(1, std::min<int>(cfg_.keepalive, hold_ / 3))) : 0;
  send_msg(main_.id, encode_keepalive());
  arm_keepalive(now);
  arm_hold(now);
  return {State::kOpenConfirm, "OPEN received"};
}

// ---- the states ----------------------------------------------------------------------------

Peer::Next Peer::idle(const Event& e) {
  switch (e.ev) {
    case Ev::kStart:
      if (cfg_.passive) return {State::kActive, "start (passive)"};
      start_connect(e.now);
      return {State::kConnect, "start"};
    case Ev::kTcpAccepted:  // Idle refuses connections (s8.2.2)
      t_.close(e.conn);
      return {State::kIdle, ""};
    default:
      return {State::kIdle, ""};
  }
}

Peer::Next Peer::connect(const Event& e) {
  switch (e.ev) {
    case Ev::kStop: return to_idle(nullptr, "stopped", e.now);
    case Ev::kConnectRetryTimer:
      start_connect(e.now);
      return {State::kConnect, "connect retry"};
    case Ev::kTcpConnected:
      connecting_ = 0;
      return adopt(e.conn, true, e.now);
    case Ev::kTcpFailed:
      connecting_ = 0;
      return {State::kActive, "connection failed"};
    case Ev::kTcpAccepted:
      if (connecting_) t_.close(connecting_);
      connecting_ = 0;
      return adopt(e.conn, false, e.now);
    default:
      return {State::kConnect, ""};
  }
}

Peer::Next Peer::active(const Event& e) {
  switch (e.ev) {
    case Ev::kStop: return to_idle(nullptr, "stopped", e.now);
    case Ev::kConnectRetryTimer:
      if (cfg_.passive) return {State::kActive, ""};
      start_connect(e.now);
      return {State::kConnect, "connect retry"};
    case Ev::kTcpConnected:
      connecting_ = 0;
      return adopt(e.conn, true, e.now);
    case Ev::kTcpAccepted:
      return adopt(e.conn, false, e.now);
    default:
      return {State::kActive, ""};
  }
}

Peer::Next Peer::open_sent(const Event& e) {
  switch (e.ev) {
    case Ev::kStop: {
      Notification n{err::kCease, err::cease::kAdminShutdown, {}};
      return to_idle(&n, "stopped", e.now);
    }
    case Ev::kOpen: return check_open(std::get<Open>(e.msg->message), e.now);
    case Ev::kHoldTimer: {
      Notification n{err::kHoldTimer, 0, {}};
      return to_idle(&n, "hold timer expired in OpenSent", e.now);
    }
    case Ev::kTcpClosed:  // s8.2.2: back to Active, retry later
      close_alt();
      hold_at_ = 0;
      connect_retry_at_ = e.now + jitter(retry_ms_);
      return {State::kActive, "connection closed in OpenSent"};
    case Ev::kNotification: return on_notification(e);
    case Ev::kKeepalive:
    case Ev::kUpdate:
    case Ev::kRouteRefresh: return fsm_error(err::fsm::kUnexpectedInOpenSent, e.now);
    default: return {State::kOpenSent, ""};
  }
}

Peer::Next Peer::open_confirm(const Event& e) {
  switch (e.ev) {
    case Ev::kStop: {
      Notification n{err::kCease, err::cease::kAdminShutdown, {}};
      return to_idle(&n, "stopped", e.now);
    }
    case Ev::kKeepalive:
      arm_hold(e.now);
      return {State::kEstablished, "KEEPALIVE received"};
    case Ev::kKeepaliveTimer:
      send_msg(main_.id, encode_keepalive());
      arm_keepalive(e.now);
      return {State::kOpenConfirm, ""};
    case Ev::kHoldTimer: {
      Notification n{err::kHoldTimer, 0, {}};
      return to_idle(&n, "hold timer expired in OpenConfirm", e.now);
    }
    case Ev::kTcpClosed: return to_idle(nullptr, "connection closed in OpenConfirm", e.now);
    case Ev::kNotification: return on_notification(e);
    case Ev::kOpen:
    case Ev::kUpdate:
    case Ev::kRouteRefresh: return fsm_error(err::fsm::kUnexpectedInOpenConfirm, e.now);
    default: return {State::kOpenConfirm, ""};
  }
}

Peer::Next Peer::established(const Event& e) {
  switch (e.ev) {
    case Ev::kStop: {
      Notification n{err::kCease, err::cease::kAdminShutdown, {}};
      return to_idle(&n, "stopped", e.now);
    }
    case Ev::kKeepalive:
      arm_hold(e.now);
      return {State::kEstablished, ""};
    case Ev::kUpdate:
      arm_hold(e.now);
      ++stats_.updates_in;
      owner_.on_update(id_, *e.msg, std::get<Update>(e.msg->message), e.now);
      return {State::kEstablished, ""};
    case Ev::kRouteRefresh:
      owner_.on_route_refresh(id_, std::get<RouteRefresh>(e.msg->message), e.now);
      return {State::kEstablished, ""};
    case Ev::kKeepaliveTimer:
      send_msg(main_.id, encode_keepalive());
      arm_keepalive(e.now);
      return {State::kEstablished, ""};
    case Ev::kHoldTimer: {
      Notification n{err::kHoldTimer, 0, {}};
      return to_idle(&n, "hold timer expired", e.now);
    }
    case Ev::kTcpClosed: return to_idle(nullptr, "connection closed", e.now);
    case Ev::kNotification: return on_notification(e);
    case Ev::kOpen: return fsm_error(err::fsm::kUnexpectedInEstablished, e.now);
    default: return {State::kEstablished, ""};
  }
}

// ---- driver --------------------------------------------------------------------------------

void Peer::dispatch(const Event& e) {
  // A second connection while a session is being opened: collision detection (s6.8) once its
  // OPEN arrives. In Established the new connection loses at once.
  if (e.ev == Ev::kTcpAccepted &&
      (state_ == State::kOpenSent || state_ == State::kOpenConfirm ||
       state_ == State::kEstablished)) {
    if (state_ == State::kEstablished && !restart_possible()) {
      send_notification(e.conn, {err::kCease, err::cease::kConnectionRejected, {}}, e.now);
      t_.close(e.conn);
      return;
    }
    // Established with a peer that announced graceful restart: this may be the peer back from
    // a restart while its old TCP session is silent but open; its OPEN decides (alt_message).
    close_alt();
    alt_.id = e.conn;
    send_open(e.conn);
    return;
  }
  Next n{state_, ""};
  const uint64_t changes = changes_;
  switch (state_) {
    case State::kIdle: n = idle(e); break;
    case State::kConnect: n = connect(e); break;
    case State::kActive: n = active(e); break;
    case State::kOpenSent: n = open_sent(e); break;
    case State::kOpenConfirm: n = open_confirm(e); break;
    case State::kEstablished: n = established(e); break;
  }
  // The owner may have ended the session from inside the handler (max-prefix, RFC 7606 reset):
  // that transition stands.
  if (changes_ == changes) enter(n.state, n.reason, e.now);
}

void Peer::enter(State next, const std::string& reason, uint64_t now) {
  if (next == state_) return;
  const State old = state_;
  state_ = next;
  ++changes_;
  stats_.last_reason = reason;
  stats_.last_transition = std::string(state_name(old)) + " -> " + state_name(next) +
                           (reason.empty() ? "" : ": " + reason);
  stats_.last_transition_ms = now;
  if (old == State::kEstablished) ++stats_.sessions_lost;
  owner_.on_event(id_, stats_.last_transition, now);
  if (next == State::kEstablished) {
    stats_.established_at_ms = now;
    ++stats_.established_transitions;
    retry_ms_ = cfg_.connect_retry_ms;
    idle_ms_ = cfg_.idle_hold_ms;
    owner_.on_established(id_, now);
  }
  if (next == State::kIdle) {
    hold_at_ = keepalive_at_ = connect_retry_at_ = 0;
    idle_hold_at_ = 0;
    if (enabled_) {
      idle_hold_at_ = now + jitter(idle_ms_);
      idle_ms_ = std::min(idle_ms_ * 2, cfg_.idle_hold_max_ms);
    }
  }
  if (old == State::kEstablished) {
    bool graceful = !got_notification_ && remote_open_.caps.graceful_restart.has_value();
    owner_.on_down(id_, graceful, now);
  }
}

void Peer::start(uint64_t now) {
  enabled_ = true;
  idle_hold_at_ = 0;
  if (state_ == State::kIdle) dispatch({Ev::kStart, 0, nullptr, now});
}

void Peer::stop(uint64_t now, uint8_t subcode) {
  enabled_ = false;
  if (state_ == State::kIdle) return;
  if (main_.id && state_ >= State::kOpenSent) {
    Notification n{err::kCease, subcode, {}};
    enter(to_idle(&n, "stopped", now).state, "stopped", now);
    return;
  }
  dispatch({Ev::kStop, 0, nullptr, now});
}

void Peer::reset(uint64_t now) {
  if (state_ == State::kIdle) {
    idle_hold_at_ = now;
    return;
  }
  Notification n{err::kCease, err::cease::kAdminReset, {}};
  fail(n, "administrative reset", now, 1);
}

void Peer::fail(const Notification& n, const std::string& why, uint64_t now,
                uint32_t idle_hold_ms) {
  if (state_ == State::kIdle) return;
  enter(to_idle(&n, why, now).state, why, now);
  if (idle_hold_ms && enabled_) idle_hold_at_ = now + idle_hold_ms;
}

void Peer::tick(uint64_t now) {
  if (state_ == State::kIdle && enabled_ && idle_hold_at_ && now >= idle_hold_at_) {
    idle_hold_at_ = 0;
    dispatch({Ev::kStart, 0, nullptr, now});
  }
  if (connect_retry_at_ && now >= connect_retry_at_) {
    connect_retry_at_ = 0;
    dispatch({Ev::kConnectRetryTimer, 0, nullptr, now});
  }
  if (hold_at_ && now >= hold_at_) {
    hold_at_ = 0;
    dispatch({Ev::kHoldTimer, 0, nullptr, now});
  }
  if (keepalive_at_ && now >= keepalive_at_) {
    keepalive_at_ = 0;
    dispatch({Ev::kKeepaliveTimer, 0, nullptr, now});
  }
}

void Peer::connected(ConnId c, uint64_t now) {
  if (c != connecting_) return;
  if (state_ == State::kConnect || state_ == State::kActive) {
    dispatch({Ev::kTcpConnected, c, nullptr, now});
    return;
  }
  // A session is already being opened on an accepted connection: this one becomes the second
  // connection and collision detection picks one (s6.8).
  connecting_ = 0;
  if (state_ == State::kOpenSent || state_ == State::kOpenConfirm) {
    close_alt();
    alt_.id = c;
    alt_.outgoing = true;
    send_open(c);
  } else {
    t_.close(c);
  }
}

void Peer::connect_failed(ConnId c, uint64_t now) {
  if (c != connecting_) return;
  connecting_ = 0;
  dispatch({Ev::kTcpFailed, c, nullptr, now});
}

bool Peer::accept(ConnId c, uint64_t now) {
  dispatch({Ev::kTcpAccepted, c, nullptr, now});
  return owns(c);
}

void Peer::closed(ConnId c, uint64_t now) {
  if (!c) return;
  if (c == connecting_) {
    connecting_ = 0;
    dispatch({Ev::kTcpFailed, c, nullptr, now});
  } else if (c == alt_.id) {
    alt_ = {};
  } else if (c == main_.id) {
    main_ = {};  // already gone: nothing to close
    dispatch({Ev::kTcpClosed, c, nullptr, now});
  }
}

void Peer::data(ConnId c, std::span<const uint8_t> bytes, uint64_t now) {
  Conn* k = c == main_.id ? &main_ : c == alt_.id ? &alt_ : nullptr;
  if (!c || !k) return;
  k->rx.insert(k->rx.end(), bytes.begin(), bytes.end());
  process(*k, now);
}

void Peer::process(Conn& k, uint64_t now) {
  const ConnId id = k.id;
  const bool is_alt = &k == &alt_;
  // Messages are framed from `off` and the handled ones leave the buffer once, at the end: one
  // erase per message would copy the rest of the buffer each time, quadratic in a read of many
  // small messages. Handling a message on the session either keeps main_ or clears it (the
  // loop then stops). On the second connection each message leaves before it is handled: its
  // OPEN may make that connection the session (main_), which takes the rest of the buffer.
  size_t off = 0;
  while (k.id == id && k.rx.size() - off >= kHeaderLen) {
    std::span<const uint8_t> rest(k.rx.data() + off, k.rx.size() - off);
    HeaderResult h = decode_header(rest.first(kHeaderLen));
    if (!h.ok) {
      if (is_alt) {
        send_notification(id, h.error, now);
        close_alt();
      } else {
        fail(h.error, "bad message header", now);
      }
      return;
    }
    if (rest.size() < h.header.length) break;
    Bytes msg(rest.begin(), rest.begin() + h.header.length);
    off += h.header.length;
    MessageResult m = decode_message(msg, codec_);
    ++stats_.msgs_in;
    if (is_alt) {
      k.rx.erase(k.rx.begin(), k.rx.begin() + ptrdiff_t(off));
      off = 0;
      alt_message(m, now);
      continue;
    }
    if (!m.ok()) {
      if (h.header.type == MsgType::kUpdate) ++stats_.update_error_resets;
      stats_.last_error = "sent: " + error_name(m.notification.code, m.notification.subcode) +
                          " (" + m.reason + ")";
      Notification n = m.notification;
      enter(to_idle(&n, "bad message: " + m.reason, now).state, "bad message: " + m.reason, now);
      return;
    }
    Ev ev = Ev::kKeepalive;
    if (std::holds_alternative<Open>(m.message)) ev = Ev::kOpen;
    else if (std::holds_alternative<Update>(m.message)) ev = Ev::kUpdate;
    else if (std::holds_alternative<Notification>(m.message)) ev = Ev::kNotification;
    else if (std::holds_alternative<RouteRefresh>(m.message)) ev = Ev::kRouteRefresh;
    dispatch({ev, id, &m, now});
  }
  if (k.id == id && off) k.rx.erase(k.rx.begin(), k.rx.begin() + ptrdiff_t(off));
  // The second connection became the session (collision, graceful restart): what the peer
  // sent after its OPEN is already buffered there.
  if (is_alt && main_.id == id && !main_.rx.empty()) process(main_, now);
}

void Peer::alt_message(const MessageResult& m, uint64_t now) {
  const ConnId id = alt_.id;
  if (!m.ok()) {
    send_notification(id, m.notification, now);
    close_alt();
    return;
  }
  const Open* o = std::get_if<Open>(&m.message);
  if (!o) {  // anything but OPEN first (a NOTIFICATION included) ends the second connection
    if (const auto* n = std::get_if<Notification>(&m.message))
      record_received(*n, " on a second connection", now);
    else
      send_notification(id, {err::kFsm, err::fsm::kUnexpectedInOpenSent, {}}, now);
    close_alt();
    return;
  }
  if (auto n = open_error(*o)) {
    send_notification(id, *n, now);
    close_alt();
    return;
  }
  if (state_ == State::kEstablished) {
    if (!restart_possible()) {
      send_notification(id, {err::kCease, err::cease::kCollisionResolution, {}}, now);
      close_alt();
      return;
    }
    // RFC 4724 s4.2: an OPEN on a new connection while the session with a graceful-restart
    // peer is Established means the peer restarted. The old session ends as if its TCP
    // connection had failed (closed without a NOTIFICATION, its routes kept as stale), and
    // the new connection goes on from its OPEN.
    close_main();
    got_notification_ = false;
    const uint32_t idle_ms = idle_ms_;
    enter(State::kIdle, "peer restarted: OPEN on a new connection (graceful restart)", now);
    idle_hold_at_ = 0;  // not an error: no idle hold, no back-off
    idle_ms_ = idle_ms;
    main_ = std::move(alt_);
    alt_ = {};
    Next n = check_open(*o, now);
    enter(n.state, n.state == State::kOpenConfirm ? "OPEN received on the new connection"
                                                  : n.reason,
          now);
    if (state_ == State::kIdle && enabled_) idle_hold_at_ = now + jitter(idle_ms_);
    return;
  }
  bool keep_alt;
  if (main_.outgoing == alt_.outgoing) keep_alt = true;  // a newer connection of one kind
  else if (local_.router_id < o->bgp_id) keep_alt = !alt_.outgoing;  // keep the remote's
  else keep_alt = alt_.outgoing;                                     // keep ours
  if (!keep_alt) {
    send_notification(id, {err::kCease, err::cease::kCollisionResolution, {}}, now);
    close_alt();
    return;
  }
  if (main_.id)
    send_notification(main_.id, {err::kCease, err::cease::kCollisionResolution, {}}, now);
  close_main();
  main_ = std::move(alt_);
  alt_ = {};
  Next n = check_open(*o, now);
  stats_.last_reason = "collision resolved";
  enter(n.state, n.reason, now);
}

}  // namespace espgw::bgp
