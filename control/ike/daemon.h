// The IKEv2 daemon: connections, IKE SAs by SPI, the IKE_SA_INIT responder (half-open SAs and
// cookies), timers (rekey, liveness, NAT keepalives, re-initiation) and the status view. One
// thread; everything from outside comes through receive(), tick() and the injected Env/Kernel.
// Defined in daemon.cpp (connections, IKE SA life cycle, operator actions, receiving),
// daemon_messages.cpp (encoding, fragments), daemon_children.cpp (Child SAs in the kernel) and
// daemon_tick.cpp (timers, status).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control/ike/conn.h"
#include "control/ike/cookie.h"
#include "control/ike/env.h"
#include "control/ike/frag.h"
#include "control/ike/ike_sa.h"

namespace espgw::ike {

struct Tunables {
  uint64_t retransmit_base_ms = 1000;  // first retransmission after this, then doubling
  uint64_t retransmit_max_ms = 8000;   // interval cap
  unsigned cookie_threshold = 16;      // half-open SAs before IKE_SA_INIT needs a cookie
  uint64_t half_open_timeout_ms = 30000;
  uint64_t keepalive_ms = 20000;       // NAT keepalives when we are behind a NAT
  uint64_t drain_ms = 2000;            // old inbound SA stays this long after its delete
  uint64_t out_pending_ms = 10000;     // rekey responder: install outbound even without a delete
  uint64_t retry_ms = 1000;            // re-initiation back-off: first delay, doubling
  uint64_t retry_max_ms = 16000;
  uint64_t initiate_jitter_ms = 0;     // random delay before the first initiation
  unsigned rekey_margin_pct = 10;      // rekey at lifetime * (100 - margin - jitter) / 100
  unsigned rekey_jitter_pct = 5;
  unsigned max_retries = 4;            // IKE_SA_INIT retries after COOKIE / INVALID_KE
  uint64_t cookie_rotate_ms = 300000;  // a new cookie secret (the previous one stays valid)
  // IKE fragmentation (RFC 7383), when both peers announce it: messages (after IKE_SA_INIT) whose
  // IP datagram would exceed this are sent as fragments. Without path MTU knowledge the minimum
  // MTUs every path must carry: 576 for IPv4 (RFC 791), 1280 for IPv6 (RFC 8200); RFC 7383 2.5.1.
  unsigned frag_mtu_v4 = 576;
  unsigned frag_mtu_v6 = 1280;
  FragLimits frag;  // reassembly bounds
  // Resource caps against a flooding or misbehaving peer.
  unsigned max_half_open = 1024;  // beyond this, IKE_SA_INIT is refused even with a cookie
  size_t max_init_bytes = 8192;   // a larger IKE_SA_INIT request is refused (half-open memory)
  unsigned max_children = 16;     // Child SAs per IKE SA (NO_ADDITIONAL_SAS beyond)
  uint64_t rekeyed_timeout_ms = 30000;  // a rekeyed IKE SA the peer never deletes: we delete it
  uint64_t log_interval_ms = 10000;     // refusal log lines: one per counter per interval
};

enum class ConnEvent { kUp, kDown, kDeadPeer, kAuthFailed };
const char* to_string(ConnEvent e);

struct ChildStatus {
  std::string spi_in, spi_out;  // "0x...."
  std::string proposal;         // e.g. "aes128gcm16-noesn"
  std::string state;
  bool udp_encap = false;
  int64_t rekey_in_s = 0, expires_in_s = 0;
  SaStats in, out;
  std::vector<std::string> ts_local, ts_remote;
};

struct ConnStatus {
  std::string name;
  std::string state;  // Connected, Connecting, NotConnected
  std::string local, remote;
  bool initiator = false;
  std::string ike_state;
  std::string ike_proposal;
  std::string ike_spi_i, ike_spi_r;
  bool nat_local = false, nat_remote = false;
  int64_t ike_rekey_in_s = 0;
  uint64_t established_ms = 0;  // clock of Env::now_ms; 0 = never
  std::vector<ChildStatus> children;
  SaStats in, out;
  std::string last_error;
  bool fragmentation = false;  // negotiated on the current IKE SA
  FragCounters frag;           // all IKE SAs of the connection so far
  unsigned failures = 0;  // consecutive failed attempts (re-initiation back-off)
};

class Daemon {
 public:
  Daemon(Env env, Kernel& kernel, Tunables tun = {});
  ~Daemon();

  void add_connection(ConnConfig c);
  void receive(const Endpoint& local, const Endpoint& remote, ByteView msg);
  void tick();
  // The data plane reached a Child SA's soft limit (bytes or packets: rekey) or its hard limit
  // (the SA drops everything now: it is deleted, and re-created if the connection is wanted).
  void on_child_lifetime(const std::string& conn, uint32_t spi, bool inbound, bool hard);

  // Operator actions (espgwctl, tests).
  bool initiate(const std::string& conn);
  bool terminate(const std::string& conn);
  bool rekey_child(const std::string& conn);
  bool rekey_ike(const std::string& conn);

  std::vector<ConnStatus> status() const;
  std::function<void(const std::string& conn, ConnEvent ev)> on_event;

  // ---- for tests ----
  std::vector<IkeSa*> ike_sas(const std::string& conn) const;
  IkeSa* established_sa(const std::string& conn) const;
  bool connected(const std::string& conn) const;
  size_t half_open() const;
  CookieJar& cookies() { return cookies_; }
  // Every message or request the daemon refuses is counted under a name (e.g. "unknown_spi",
  // "integrity_failed", "fragment_unsupported"); shown by `show ike counters`.
  const std::map<std::string, uint64_t>& counters() const { return counters_; }
  uint64_t counter(const std::string& name) const {
    auto it = counters_.find(name);
    return it == counters_.end() ? 0 : it->second;
  }

  // ---- used by the tasks ----
  Env& env() { return env_; }
  Kernel& kernel() { return kernel_; }
  const Tunables& tun() const { return tun_; }
  uint64_t now() const { return env_.now_ms(); }
  Bytes random_bytes(size_t n);
  uint64_t new_ike_spi();
  void log(const IkeSa& sa, const std::string& what);
  // Counts a refusal and logs it, at most one line per counter and log_interval_ms (with the
  // number of refusals not logged since): a flood cannot flood the log.
  void refuse(const std::string& counter, const std::string& what);
  // A new, authenticated request (the message ID check passed) of an IKE SA: behind a NAT, the
  // IKE SA and its Child SAs follow the address it came from (RFC 7296 2.23).
  void on_new_request(IkeSa& sa);
  // Encodes (IKE_SA_INIT: plain, otherwise SK-protected) and sends.
  std::optional<Bytes> encode(IkeSa& sa, ExchangeType ex, bool response, uint32_t id,
                              const std::vector<Payload>& payloads);
  // encode(), as the datagrams to send: SKF fragments when fragmentation was negotiated and the
  // message does not fit the path MTU (Tunables::frag_mtu_*), else the one message.
  std::optional<std::vector<Bytes>> encode_packets(IkeSa& sa, ExchangeType ex, bool response,
                                                   uint32_t id,
                                                   const std::vector<Payload>& payloads);
  void send(IkeSa& sa, const Bytes& msg);
  void send(IkeSa& sa, const std::vector<Bytes>& packets);
  // Installs the Child SA's inbound (and, unless out_pending, outbound) SA. False: child failed.
  bool install_child(IkeSa& sa, ChildSa& c, const ChildKeys& keys, bool we_initiated,
                     bool out_pending);
  bool install_pending_out(IkeSa& sa, ChildSa& c);
  void remove_out(IkeSa& sa, ChildSa& c);
  void remove_in(IkeSa& sa, ChildSa& c);
  // Children that wait for the delete of `old_out` get their outbound SA now.
  void promote_replacements(IkeSa& sa, uint32_t old_spi_out);
  void schedule_child_timers(IkeSa& sa, ChildSa& c);
  void established(IkeSa& sa);
  // Records the error; the SA is torn down (children removed) and re-initiation scheduled.
  void fail(IkeSa& sa, const std::string& error, bool dead_peer = false);
  // A rekeyed IKE SA: registers the new SA (children are moved by the caller).
  IkeSa& adopt(std::unique_ptr<IkeSa> sa);
  void set_error(IkeSa& sa, const std::string& error);
  void update_connection(const std::string& conn);
  std::vector<TrafficSelector> our_ts(const ConnConfig& c, bool local) const;
  bool has_other_sa(const IkeSa& sa) const;
  void delete_duplicates(IkeSa& keep);
  void resolve_duplicates(IkeSa& sa);

 private:
  struct ConnState {
    ConnConfig cfg;
    uint64_t next_initiate_ms = 0;
    unsigned failures = 0;
    bool up = false;
    bool want = true;  // false after terminate
    std::string last_error;
    uint64_t last_established_ms = 0;
    FragCounters frag;
  };
  // An SKF message: verified, decrypted and added to the SA's reassembly. True with `m` set when
  // it completed a message; false when stored or refused (counted).
  bool reassemble(IkeSa& sa, ByteView raw, Message& m);
  bool add_fragment(IkeSa& sa, ByteView raw, Message& m, FragCounters& c);
  void refuse_fragments(const FragCounters& before, const FragCounters& after,
                        const std::string& what);
  void handle_init_request(const Endpoint& local, const Endpoint& remote, ByteView raw,
                           const Message& m);
  void send_plain_error(const Endpoint& local, const Endpoint& remote, const Header& req,
                        NotifyPayload n);
  void start(ConnState& cs);
  void destroy(IkeSa& sa);
  void tick_sa(IkeSa& sa, uint64_t now);
  uint64_t soft_limit(uint64_t hard) const;
  ConnState* conn_state(const std::string& name);
  const ConnState* conn_state(const std::string& name) const;
  ConnStatus status_of(const ConnState& cs) const;
  void follow_nat(IkeSa& sa, const Endpoint& local, const Endpoint& remote);
  void send_version_error(const Endpoint& local, const Endpoint& remote, const Header& req);

  Env env_;
  Kernel& kernel_;
  Tunables tun_;
  std::vector<std::unique_ptr<ConnState>> conns_;
  std::map<uint64_t, std::unique_ptr<IkeSa>> sas_;  // by our SPI
  CookieJar cookies_;
  uint64_t next_cookie_rotate_ms_ = 0;
  std::map<std::string, uint64_t> counters_;
  struct LogGate {
    uint64_t next_ms = 0;
    uint64_t suppressed = 0;
  };
  std::map<std::string, LogGate> log_gates_;
  // The endpoints of the message receive() is handling (for on_new_request).
  Endpoint rx_local_, rx_remote_;
};

}  // namespace espgw::ike
