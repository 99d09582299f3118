// The per-peer BGP-4 session: the RFC 4271 s8 finite state machine (Idle, Connect, Active,
// OpenSent, OpenConfirm, Established) with one function per state that returns the next state and
// the reason, timers on an injected clock (every entry point takes `now` in milliseconds), the
// transport injected (Transport), connection collision detection (s6.8) and connect-retry with
// back-off. Routes are not handled here: UPDATEs go to the PeerOwner (the Speaker, with the RIB).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "control/bgp/message.h"
#include "dataplane/net/ip.h"

namespace espgw::bgp {

using PeerId = uint32_t;  // 0 is the local speaker itself (originated routes)
using ConnId = uint64_t;  // a transport connection; 0 = none

enum class State : uint8_t { kIdle, kConnect, kActive, kOpenSent, kOpenConfirm, kEstablished };
const char* state_name(State s);

// The network, injected: kernel TCP sockets in the gateway, in-memory pipes in tests.
class Transport {
 public:
  virtual ~Transport() = default;
  // Starts an active open from local to remote:179. Completion is reported later through
  // Peer::connected() / connect_failed() (or Speaker::on_connected...). 0 = failed at once.
  virtual ConnId connect(const IpAddr& local, const IpAddr& remote) = 0;
  // Queues bytes on the connection; false if the connection is gone.
  virtual bool send(ConnId c, std::span<const uint8_t> bytes) = 0;
  virtual void close(ConnId c) = 0;
};

enum class MaxPrefixAction : uint8_t {
  kReset,    // Cease / Maximum Number of Prefixes Reached (RFC 4486), then wait restart_s
  kDiscard,  // keep the session, refuse the prefixes over the limit
  kWarn,     // keep everything, only count and report
};

struct PeerConfig {
  std::string name;       // the connection's name
  IpAddr address;         // the neighbour (its BGP peering address)
  uint32_t asn = 0;       // its ASN (eBGP: differs from ours)
  IpAddr local_address;   // ours: the source of the session
  uint16_t hold_time = 180;   // seconds, proposed in our OPEN (0 or >= 3)
  uint16_t keepalive = 60;    // seconds (capped at the negotiated hold time / 3)
  uint32_t connect_retry_ms = 5000;      // first connect-retry interval; doubles per failure
  uint32_t connect_retry_max_ms = 120000;
  uint32_t idle_hold_ms = 1000;          // wait in Idle after an error; doubles per failure
  uint32_t idle_hold_max_ms = 60000;
  bool passive = false;                  // never initiate, only accept
  uint32_t max_prefixes = 0;             // per peer, all families; 0 = unlimited
  MaxPrefixAction max_prefix_action = MaxPrefixAction::kReset;
  uint32_t max_prefix_restart_ms = 30000;
  bool advertise_default = false;  // pass on a default route learned from another peer
  // Next hop we put on IPv6 routes when the session runs over IPv4 (and vice versa); unset =
  // the IPv4-mapped IPv6 form of local_address.
  std::optional<IpAddr> next_hop_v6;
  std::optional<IpAddr> next_hop_v4;
};

// A NOTIFICATION sent or received, for status.
struct NotificationRecord {
  uint8_t code = 0, subcode = 0;
  std::string name;     // error_name(): "Cease / Connection Rejected"
  uint64_t at_ms = 0;   // when (meaningful when name is set)
};

struct PeerStats {
  uint64_t msgs_in = 0, msgs_out = 0;
  uint64_t updates_in = 0, updates_out = 0;
  uint64_t established_transitions = 0;
  uint64_t established_at_ms = 0;  // valid in Established
  std::string last_error;          // "sent: Hold Timer Expired", "received: Cease / ..."
  std::string last_reason;         // reason of the last state change
  // Why the session flapped, for an operator: the last state change ("Established -> Idle:
  // hold timer expired") and when, the last NOTIFICATION each way, and counters.
  std::string last_transition;
  uint64_t last_transition_ms = 0;
  NotificationRecord last_notification_sent, last_notification_received;
  uint64_t notifications_sent = 0, notifications_received = 0;
  uint64_t sessions_lost = 0;        // Established left, for any reason
  uint64_t update_error_resets = 0;  // RFC 7606 session resets: an UPDATE that could not be used
};

// What the session reports to its owner (the Speaker).
class PeerOwner {
 public:
  virtual ~PeerOwner() = default;
  virtual void on_established(PeerId p, uint64_t now) = 0;
  // Left Established (or a session that never got there closed); routes must go. graceful =
  // the transport failed without a NOTIFICATION and the peer announced graceful restart.
  virtual void on_down(PeerId p, bool graceful, uint64_t now) = 0;
  virtual void on_update(PeerId p, const Verdict& v, const Update& u, uint64_t now) = 0;
  virtual void on_route_refresh(PeerId p, const RouteRefresh& r, uint64_t now) = 0;
  // Something an operator should find in the log: a state change, a NOTIFICATION sent or
  // received. A peer can cause these at will, so the owner rate-limits them.
  virtual void on_event(PeerId p, const std::string& line, uint64_t now) {
    (void)p, (void)line, (void)now;
  }
};

struct LocalSpeaker {
  uint32_t asn = 0;
  uint32_t router_id = 0;  // BGP Identifier, host order
  bool graceful_restart_helper = true;  // announce GR capability (helper: no families)
  uint16_t gr_restart_time = 120;
  // Helper side (RFC 4724 s4.2): once a restarting peer is back, its stale routes of a family go
  // at that family's End-of-RIB, or after this many seconds at the latest.
  uint32_t gr_stale_time_s = 360;
};

class Peer {
 public:
  Peer(PeerId id, PeerConfig cfg, const LocalSpeaker& local, Transport& t, PeerOwner& owner);

  // ManualStart / ManualStop (stop sends Cease with `subcode` when a session is up).
  void start(uint64_t now);
  void stop(uint64_t now, uint8_t subcode = err::cease::kAdminShutdown);
  // Drops the session with Cease/Administrative Reset and starts again.
  void reset(uint64_t now);
  // Fires due timers.
  void tick(uint64_t now);
  // Transport events.
  void connected(ConnId c, uint64_t now);
  void connect_failed(ConnId c, uint64_t now);
  bool accept(ConnId c, uint64_t now);  // an incoming connection from our neighbour
  void data(ConnId c, std::span<const uint8_t> bytes, uint64_t now);
  void closed(ConnId c, uint64_t now);
  bool owns(ConnId c) const { return c && (c == main_.id || c == alt_.id || c == connecting_); }

  // Sends an encoded message on the established session.
  bool send_raw(const Bytes& msg, bool is_update);
  // Sends a NOTIFICATION and goes to Idle (used by the owner: max-prefix, RFC 7606 resets).
  void fail(const Notification& n, const std::string& why, uint64_t now,
            uint32_t idle_hold_ms = 0);

  PeerId id() const { return id_; }
  State state() const { return state_; }
  const PeerConfig& config() const { return cfg_; }
  const PeerStats& stats() const { return stats_; }
  const Codec& codec() const { return codec_; }
  const Open& remote_open() const { return remote_open_; }
  bool family_enabled(AfiSafi f) const;
  uint16_t negotiated_hold() const { return hold_; }
  // Timers, for tests and status: absolute deadlines in ms, 0 = not running.
  uint64_t hold_deadline() const { return hold_at_; }
  uint64_t keepalive_deadline() const { return keepalive_at_; }
  uint64_t connect_retry_deadline() const { return connect_retry_at_; }
  uint64_t idle_hold_deadline() const { return idle_hold_at_; }
  // Received bytes not yet framed into a whole message (both connections): below one message
  // per connection after every data() (the fuzzers check this bound).
  size_t buffered() const { return main_.rx.size() + alt_.rx.size(); }

 private:
  enum class Ev : uint8_t {
    kStart, kStop, kConnectRetryTimer, kHoldTimer, kKeepaliveTimer, kTcpConnected, kTcpFailed,
    kTcpAccepted, kTcpClosed, kOpen, kKeepalive, kUpdate, kNotification, kRouteRefresh,
  };
  struct Event {
    Ev ev;
    ConnId conn = 0;
    const MessageResult* msg = nullptr;
    uint64_t now = 0;
  };
  struct Next {
    State state;
    std::string reason;
  };
  struct Conn {
    ConnId id = 0;
    bool outgoing = false;
    Bytes rx;
    std::optional<Open> open;  // alt connection only: its OPEN, awaiting collision resolution
  };

  // One function per state (RFC 4271 s8.2.2).
  Next idle(const Event& e);
  Next connect(const Event& e);
  Next active(const Event& e);
  Next open_sent(const Event& e);
  Next open_confirm(const Event& e);
  Next established(const Event& e);

  void dispatch(const Event& e);
  void enter(State next, const std::string& reason, uint64_t now);
  // Common exits.
  Next to_idle(const Notification* send, const std::string& why, uint64_t now);
  Next fsm_error(uint8_t subcode, uint64_t now);
  Next on_notification(const Event& e);
  Next adopt(ConnId c, bool outgoing, uint64_t now);  // new main connection: send OPEN
  Next check_open(const Open& o, uint64_t now);      // -> OpenConfirm or Idle

  void start_connect(uint64_t now);
  void send_open(ConnId c);
  bool send_msg(ConnId c, const Bytes& msg);
  void send_notification(ConnId c, const Notification& n, uint64_t now);
  void record_received(const Notification& n, const char* where, uint64_t now);
  void close_main();
  void close_alt();
  void arm_hold(uint64_t now) { hold_at_ = hold_ ? now + uint64_t(hold_) * 1000 : 0; }
  void arm_keepalive(uint64_t now) { keepalive_at_ = keepalive_ ? now + keepalive_ms() : 0; }
  uint64_t keepalive_ms() const { return uint64_t(keepalive_) * 1000; }
  uint32_t jitter(uint32_t ms);  // 75..100% (RFC 4271 s10)
  std::optional<Notification> open_error(const Open& o) const;
  void alt_message(const MessageResult& m, uint64_t now);
  // Established with a peer whose OPEN carried the graceful-restart capability (and we help):
  // a new connection from it may be the peer back from a restart (RFC 4724 s4.2).
  bool restart_possible() const {
    return state_ == State::kEstablished && local_.graceful_restart_helper &&
           remote_open_.caps.graceful_restart.has_value();
  }
  void process(Conn& c, uint64_t now);  // frames and handles the messages in c.rx

  PeerId id_;
  PeerConfig cfg_;
  const LocalSpeaker& local_;
  Transport& t_;
  PeerOwner& owner_;
  State state_ = State::kIdle;
  uint64_t changes_ = 0;  // state changes so far (re-entrancy guard)
  bool enabled_ = false;  // ManualStart given (automatic restarts after errors)
  Conn main_, alt_;
  ConnId connecting_ = 0;  // outgoing attempt not yet connected
  Open remote_open_;
  Codec codec_;
  uint16_t hold_ = 0, keepalive_ = 0;  // negotiated, seconds
  uint64_t hold_at_ = 0, keepalive_at_ = 0, connect_retry_at_ = 0, idle_hold_at_ = 0;
  uint32_t retry_ms_, idle_ms_;
  uint32_t rng_;
  bool got_notification_ = false;  // the session that just ended was closed by a NOTIFICATION
  PeerStats stats_;
};

}  // namespace espgw::bgp
