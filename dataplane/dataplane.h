// The data plane's one public interface (ARCHITECTURE.md, "Layering"). The control side (the
// espgw process in control/agent/, the Mpps harness, the worker fuzz target) includes this header
// and nothing else of dataplane/ except the plain value headers it pulls in (net/ip.h,
// counters.h, crypto/algo.h). Everything here takes and returns plain values; the run-time
// tables, rings and workers behind it are the data plane's own.
//
// Threads: every method is called from one thread, the control thread (the EAL main lcore),
// which is the single writer of every table. Workers run on the other lcores and never stop
// while the control thread changes what they read: changes are published with release stores
// and memory is reclaimed after an RCU grace period.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "crypto/algo.h"
#include "dataplane/counters.h"
#include "dataplane/net/ip.h"

namespace espgw::dp {

uint64_t monotonic_ms();

// Capacities of the tables behind the facade.
inline constexpr uint32_t kMaxNextHops = 1 << 18;  // tunnels + neighbours + ECMP groups
inline constexpr uint32_t kMaxTunnels = 1 << 17;
inline constexpr uint32_t kMaxSas = 1 << 18;

// ---- configuration ------------------------------------------------------------------------

struct PortConfig {
  std::string name;    // the operator's name ("wan", "lan")
  std::string device;  // DPDK devargs ("net_tap0,iface=x") or PCI address
  uint16_t mtu = 1500;
  std::vector<IfAddr> addrs;
};

struct Config {
  std::vector<PortConfig> ports;
  // The host-kernel TAP that carries the gateway's own addresses (IKE, BGP, ping); empty: none
  // (the perf harness).
  std::string exception_iface;
  // Put the ports' addresses and routes on the exception interface in the host kernel.
  bool configure_kernel = true;
  unsigned mbufs = 16384;
  unsigned burst = 32;
  unsigned idle_sleep_us = 0;
  unsigned max_routes_v4 = 1 << 20, max_routes_v6 = 1 << 16;
  unsigned max_neighbors = 4096;
  unsigned control_pps = 2000;  // per port and worker, to the control thread
};

// DPDK vdev arguments of the exception TAP named iface (the EAL must be started with it).
std::string exception_vdev(const std::string& iface);

// ---- routes ---------------------------------------------------------------------------------

inline constexpr unsigned kMaxEcmp = 8;

enum class NhKind : uint8_t {
  kNone = 0,     // unreachable (the FIB's default next hop)
  kLocal,        // one of the gateway's own addresses -> exception path
  kConnected,    // on-link: the destination itself is the neighbour
  kVia,          // via a gateway address on a port
  kBlackhole,
  kTunnel,       // into an IPsec tunnel (encrypt, then route the outer packet)
  kTunnelGroup,  // ECMP: one of several tunnels, chosen per flow (hash of the inner 5-tuple)
};

enum class RouteSource : uint8_t { kLocal, kConnected, kStatic, kApi, kConnection, kBgp };
const char* source_name(RouteSource s);
unsigned admin_distance(RouteSource s);

struct NhSpec {
  NhKind kind = NhKind::kNone;
  uint16_t port = 0;  // port index (Dataplane::port_index)
  IpAddr gw;          // kVia
  uint32_t tunnel = 0;                       // kTunnel
  std::array<uint32_t, kMaxEcmp> members{};  // kTunnelGroup: sorted tunnel ids, 0-padded
  auto operator<=>(const NhSpec&) const = default;
};

// A page of the route view: at most `limit` prefixes after the prefix `after` (prefix order).
struct RoutePage {
  size_t limit = 0;  // 0: not paged (the whole table)
  std::optional<Prefix> after;
  bool paged() const { return limit != 0; }
};
inline constexpr size_t kMaxRoutePage = 10000;

struct RouteView {
  Prefix prefix;
  RouteSource source;
  std::string type, nexthop, port;
  bool selected = false, installed = false;
  std::string reason;  // selected but not installed: why
};
struct RoutesView {
  std::vector<RouteView> routes;
  std::optional<Prefix> next;  // paged: the cursor of the following page
};

// ---- SAs and tunnels --------------------------------------------------------------------------

// X(name): per-SA drop reasons (also counted per lcore as esp_* drops).
#define ESPGW_SA_DROPS(X) \
  X(replay)               \
  X(bad_icv)              \
  X(bad_pad)              \
  X(bad_next_header)      \
  X(selector_mismatch)    \
  X(expired)              \
  X(inner_malformed)      \
  X(seq_unreserved)

enum class SaDrop : uint8_t {
#define X(n) n,
  ESPGW_SA_DROPS(X)
#undef X
      kCount
};
extern const char* const kSaDropNames[size_t(SaDrop::kCount)];

struct SaLimits {
  uint64_t bytes = 0, packets = 0;  // 0 = unlimited
};

struct SaParams {
  uint32_t spi = 0;
  bool inbound = false;
  crypto::Algo algo = crypto::Algo::kAesGcm128;
  const uint8_t* key = nullptr;  // keymat_len() bytes, copied into the key schedule
  size_t key_len = 0;
  IpAddr local, remote;          // outer addresses (inbound: local is the destination)
  bool udp_encap = false;
  uint16_t sport = 4500, dport = 4500;
  bool esn = false;
  uint32_t replay_window = 1024;
  uint64_t seq_start = 0;        // outbound: the first packet gets seq_start + 1
  uint64_t seq_limit = ~uint64_t(0);  // outbound: highest sequence number usable for now
  uint64_t bytes_start = 0, packets_start = 0;  // volume already counted (an SA re-created)
  SaLimits soft, hard;
  uint32_t soft_seconds = 0, hard_seconds = 0;
  // Inbound: inner sources accepted on this SA (IKE: the negotiated selectors); checked in
  // addition to the tunnel's remote_ts. Empty = any.
  std::vector<Prefix> remote_ts;
};

struct TunnelParams {
  std::string name;
  uint16_t mss_clamp = 0;           // 0 = off
  std::vector<Prefix> remote_ts;    // inner sources accepted from the peer (empty = any)
  // What the inner MTU is computed from (once, here): the port that owns `local`, the outer
  // family, UDP encapsulation and the algorithm's IV, ICV and block size.
  IpAddr local;
  crypto::Algo algo = crypto::Algo::kAesGcm128;
  bool udp_encap = false;
};

// The inner MTU of a tunnel whose outer packets leave a port of port_mtu.
uint16_t tunnel_mtu(unsigned port_mtu, bool v6, bool udp_encap, crypto::Algo algo);

struct SaStats {
  bool exists = false;
  uint32_t spi = 0;
  bool inbound = false, esn = false, expired = false;
  uint64_t seq = 0;        // outbound: last used; inbound: highest seen
  uint64_t seq_limit = 0;  // outbound
  uint64_t packets = 0, bytes = 0;
};

struct SaView {
  uint32_t id = 0;
  std::string tunnel;
  bool inbound = false;
  uint32_t spi = 0;
  crypto::Algo algo{};
  IpAddr local, remote;
  bool udp_encap = false, esn = false, expired = false;
  uint64_t packets = 0, bytes = 0, seq = 0;
  uint32_t replay_window = 0;
  int owner_worker = -1;
  uint64_t age_seconds = 0;
  int64_t hard_seconds_left = -1;
  std::array<uint64_t, size_t(SaDrop::kCount)> drops{};
  std::vector<Prefix> remote_ts;
};

struct TunnelView {
  uint32_t id = 0;
  std::string name;
  bool up = false;  // has an outbound SA that is not expired
  IpAddr remote;
  uint32_t spi_in = 0, spi_out = 0;  // 0: none
  uint16_t mtu = 0, mss_clamp = 0;
  uint64_t packets_in = 0, bytes_in = 0, packets_out = 0, bytes_out = 0;
};

// ---- ports, neighbours -----------------------------------------------------------------------

struct PortView {
  std::string name;
  uint16_t ethdev = 0;
  std::array<uint8_t, 6> mac{};
  uint16_t mtu = 0;
  bool exception = false;
  std::vector<IfAddr> addrs;
  uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0;
  uint64_t rx_missed = 0, rx_errors = 0, tx_errors = 0;
};

struct NeighborView {
  IpAddr address;
  std::string port, mac, state;
  size_t held = 0;
  unsigned refs = 0;
};

std::string mac_str(const std::array<uint8_t, 6>& m);
bool parse_mac(const std::string& s, std::array<uint8_t, 6>& out);

// ---- events -------------------------------------------------------------------------------

// What the data plane tells the control side, drained by the control loop (drain_events).
enum class EventKind : uint8_t {
  kSaSoftExpired,  // soft lifetime (bytes, packets or seconds) reached: rekey
  kSaHardExpired,  // hard lifetime or sequence space used up: the SA drops everything now
  kTunnelUp,       // the tunnel has a live outbound SA (again)
  kTunnelDown,     // it has none (deleted, expired or never bound)
};
struct DpEvent {
  EventKind kind;
  uint32_t sa = 0;  // SA id (SA events)
  uint32_t spi = 0;
  bool inbound = false;
  uint32_t tunnel = 0;
  bool by_time = false;  // a seconds lifetime (else bytes, packets or the sequence space)
};

// ---- the data plane ---------------------------------------------------------------------------

struct Runtime;  // internal (runtime.h)

class Dataplane {
 public:
  // The EAL must be initialised with every port of cfg present (and the exception TAP unless
  // cfg.exception_iface is empty) and at least one worker lcore.
  static std::unique_ptr<Dataplane> create(const Config& cfg, std::string* err);
  ~Dataplane();
  Dataplane(const Dataplane&) = delete;
  Dataplane& operator=(const Dataplane&) = delete;

  // Launches the workers; they receive nothing until enable_forwarding() (the configured state
  // first: no early packet is dropped as unroutable).
  bool start(std::string* err);
  void enable_forwarding();
  // Stops the workers and frees everything in DPDK memory (before rte_eal_cleanup).
  void shutdown();

  unsigned workers() const;
  const std::vector<unsigned>& worker_lcores() const;
  unsigned control_lcore() const;  // the lcore of the calling (control) thread
  // Port index by name (data ports only), for NhSpec::port and neighbours.
  std::optional<uint16_t> port_index(const std::string& name) const;
  std::vector<PortView> ports() const;
  const CounterSet& counters() const;

  // SAs. add_sa returns the SA id (> 0), or 0 with err. del_sa unpublishes, waits a grace
  // period and frees (the keys are wiped).
  uint32_t add_sa(const SaParams& p, std::string* err);
  bool del_sa(uint32_t id);
  SaStats sa_stats(uint32_t id) const;
  // Outbound: lets the workers use sequence numbers up to limit (never lowers it).
  void raise_seq_limit(uint32_t id, uint64_t limit);
  std::vector<SaView> sas() const;

  // Tunnels. bind_tunnel makes an outbound SA the tunnel's sender (make-before-break; with
  // send false it only records the tunnel, the SA stays in the background) or records an
  // inbound SA's tunnel.
  uint32_t add_tunnel(const TunnelParams& p, std::string* err);
  bool bind_tunnel(uint32_t tunnel, uint32_t sa, std::string* err, bool send = true);
  uint32_t tunnel_out_sa(uint32_t tunnel) const;  // the SA id of the sender, 0 if none
  uint32_t tunnel_by_name(const std::string& name) const;
  std::string tunnel_name(uint32_t id) const;
  bool tunnel_up(uint32_t id) const;  // an outbound SA that is not expired
  std::vector<TunnelView> tunnels() const;

  // Routes: staged, then published to the FIB by route_commit() in one batch (see
  // tables/routes.h for the failure semantics).
  bool route_add(const Prefix& p, RouteSource s, const NhSpec& nh, std::string* err);
  bool route_del(const Prefix& p, RouteSource s);
  bool route_commit(std::string* err);
  void route_checkpoint();
  void route_rollback();
  bool route_installed(const Prefix& p, RouteSource s) const;
  std::string route_failure(const Prefix& p) const;
  size_t routes_failed() const;
  size_t route_count() const;
  bool resolve_via(const IpAddr& gw, const std::string& port_name, NhSpec& out,
                   std::string* err) const;
  RoutesView routes(const RoutePage& page = {}) const;
  uint64_t fib_generation() const;

  // Neighbours.
  bool add_neighbor(uint16_t port, const IpAddr& ip, const std::array<uint8_t, 6>& mac,
                    std::string* err);
  std::vector<NeighborView> neighbors() const;

  // A local address of the gateway beyond the ports' own (e.g. the BGP peering address): on the
  // exception interface in the host kernel and a local route in the FIB (committed).
  bool add_local_address(const IpAddr& a, std::string* err);

  // The control thread's share of the data plane's work, from its loop: packets the workers
  // handed over (ARP, ND, packets waiting for a neighbour; bounded per call), neighbour timers
  // (every ~100 ms), seconds-based SA lifetimes. Events go to the stream.
  // Tunnel up/down events are raised when the tunnel's sender changes (bind, delete, expiry).
  void poll(uint64_t now_ms);
  // Moves the pending events to out (appended); returns how many.
  size_t drain_events(std::vector<DpEvent>& out);

  struct Impl;

 private:
  friend Runtime& runtime_of(Dataplane& d);
  explicit Dataplane(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace espgw::dp
