// The resource model: what an operator writes in the YAML config (ARCHITECTURE.md, "What the user runs") plus
// the per-instance ports, routes and static tunnels. load_config() parses AND validates; a config
// that fails either yields errors and no Config, so nothing is ever half-applied.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/net/ip.h"
#include "control/model/secret.h"
#include "crypto/algo.h"

namespace espgw::model {

// Where a config value came from, for messages like "gw.yaml:12:5: gateway.asn: reserved ASN 23456".
struct Mark {
  int line = 0;    // 1-based; 0 = unknown
  int column = 0;  // 1-based
};

struct ConfigError {
  std::string file;
  Mark mark;
  std::string field;    // dotted path, e.g. "connections[1].shared_key_file"
  std::string message;
  std::string str() const;  // "file:line:col: field: message" (file/line omitted when unknown)
};

struct GatewayInstance {
  IpAddr public_ip;
  IpAddr bgp_peering_address;  // optional (unset = none)
  Mark mark;
};

struct Gateway {
  std::string name;
  uint32_t asn = 65515;  // note: 65515 itself is refused by validation if given explicitly
  bool asn_set = false;
  std::vector<Prefix> address_spaces;
  bool active_active = false;
  std::vector<GatewayInstance> instances;  // 1 (active-standby) or 2 (active-active)
  uint32_t max_connections = 30;           // bound on connections (cloud SKU style)
  Mark mark;
};

struct LocalNetworkGateway {
  std::string name;
  IpAddr gateway_ip;
  std::vector<Prefix> address_prefixes;  // static routes via the connection; beat BGP routes
  uint32_t asn = 0;                      // 0 = not a BGP speaker
  IpAddr bgp_peering_address;            // unset = none
  Mark mark;
};

// Proposal lists in swanctl syntax: ike "aes256gcm16-prfsha384-ecp384", esp "aes256gcm16[-ecp384]".
struct IpsecPolicy {
  std::vector<std::string> ike;
  std::vector<std::string> esp;
  uint32_t sa_lifetime_seconds = 27000;     // child SA lifetime
  uint64_t sa_data_size_kb = 102400000;     // child SA lifetime in kilobytes
  std::optional<uint64_t> sa_lifetime_packets;  // child SA lifetime in packets (unset = none)
  uint32_t ike_lifetime_seconds = 28800;
  uint32_t dpd_timeout_seconds = 45;
};

// Per-connection BGP session settings (used when enable_bgp is true). Defaults are RFC 4271's.
enum class MaxPrefixAction { kReset, kDiscard, kWarn };
struct BgpSettings {
  uint32_t hold_time = 180;           // seconds proposed in our OPEN: 0 (no keepalives) or >= 3
  std::optional<uint32_t> keepalive;  // seconds, < hold_time; unset = hold_time / 3
  uint32_t max_prefixes = 0;          // routes accepted from the peer; 0 = the FIB capacity
  // Over the limit: reset the session, discard the new prefixes, or only warn.
  MaxPrefixAction max_prefix_action = MaxPrefixAction::kReset;
  bool advertise_default = false;  // pass a default route learned elsewhere on to this peer
  Mark mark;                       // of the `bgp:` mapping
  uint32_t keepalive_or_default() const { return keepalive ? *keepalive : hold_time / 3; }
};

enum class ConnectionType { kIpsec, kVnet2Vnet };
enum class ConnectionMode { kDefault, kInitiatorOnly, kResponderOnly };

struct Connection {
  std::string name;
  ConnectionType type = ConnectionType::kIpsec;
  std::string peer;              // name of a local_network_gateways entry ("local_network_gateway" alias)
  std::string shared_key_file;   // path as written (relative to the config file's directory)
  Secret shared_key;             // file contents, trailing newline stripped; never logged
  bool enable_bgp = false;
  BgpSettings bgp;
  ConnectionMode mode = ConnectionMode::kDefault;
  bool force_udp_encap = false;
  // IKE identities: an IPv4/IPv6 address or an FQDN. Empty: local = our public IP, remote = any
  // (the PSK authenticates the peer).
  std::string local_id, remote_id;
  bool use_policy_based_traffic_selectors = false;
  std::vector<Prefix> local_traffic_selectors;   // empty = route based (0/0 and ::/0)
  std::vector<Prefix> remote_traffic_selectors;
  uint16_t tcp_mss_clamp = 1350;  // 0 = off
  uint32_t replay_window = 1024;  // 64..4096 packets
  IpsecPolicy ipsec_policy;
  Mark mark;
};

// ---- this process (one gateway instance): ports, routes, static tunnels ----

struct Port {
  std::string name;          // operator's name, e.g. "wan", "lan"
  std::string device;        // DPDK devargs: "net_tap0,iface=gw0wan" (vdev) or "0000:03:00.0" (PCI)
  bool is_vdev = false;      // derived: device starts with "net_"
  std::vector<IfAddr> addresses;
  uint16_t mtu = 1500;
  Mark mark;
};

struct Route {
  Prefix prefix;
  IpAddr via;                // next hop (unset for a tunnel or blackhole route)
  std::string port;          // optional egress port name; derived from connected prefixes if empty
  std::string tunnel;        // static tunnel name, or empty
  bool blackhole = false;
  Mark mark;
};

struct SaLifetime {
  uint64_t bytes = 0;        // 0 = unlimited
  uint64_t packets = 0;
  uint32_t seconds = 0;
};

struct StaticSa {
  uint32_t spi = 0;           // >= 256 (RFC 4303: 1..255 reserved)
  crypto::Algo algo = crypto::Algo::kAesGcm128;
  std::string key_file;       // hex, keymat_len() bytes (cipher key || salt || auth key)
  Secret key;                 // decoded key material
  uint64_t seq_start = 0;     // outbound only: first packet gets seq_start + 1 (default 0)
  Mark mark;
};

// Manual keying (like DPDK ipsec-secgw): one outbound and one inbound SA per tunnel.
struct StaticTunnel {
  std::string name;
  IpAddr local;               // outer source: one of this instance's port addresses
  IpAddr remote;              // outer destination
  bool udp_encap = false;     // RFC 3948, UDP 4500 <-> 4500
  bool esn = false;
  uint32_t replay_window = 1024;  // 64..4096; 0 only with anti_replay: false
  bool anti_replay = true;        // false: no replay check (explicit, warned at start)
  uint16_t tcp_mss_clamp = 1350;
  std::vector<Prefix> traffic_selectors;  // inner sources accepted inbound; empty = any
  StaticSa outbound;
  StaticSa inbound;
  SaLifetime soft_lifetime;
  SaLifetime hard_lifetime;
  Mark mark;
};

struct Dataplane {
  unsigned workers = 1;          // worker lcores (the main lcore runs control)
  std::string lcores;            // EAL lcore list, e.g. "0-1"; default "0-<workers>"
  bool hugepages = true;         // false: --no-huge (virtual mode)
  unsigned memory_mb = 2048;     // -m: holds the default tables (dataplane/sizing.h)
  unsigned mbufs = 16384;        // per-socket mbuf pool
  unsigned burst = 32;
  unsigned idle_sleep_us = 0;    // >0: a worker that found nothing for a while sleeps this long
  unsigned max_routes_v4 = 1 << 20;
  unsigned max_routes_v6 = 1 << 16;
  unsigned max_neighbors = 4096;
  // ARP/ND and packets awaiting a neighbour that may go to the control thread, per second, per
  // port and worker; the rest is dropped (control_rate_limited)
  unsigned control_pps = 2000;
  Mark mark;  // of the `dataplane:` mapping (unknown when absent)
};

struct Instance {
  unsigned index = 0;                      // which gateway.instances entry this process is
  std::vector<Port> ports;
  std::vector<Route> routes;
  std::vector<StaticTunnel> tunnels;
  std::string exception_iface = "espgw0";  // host-kernel TAP carrying the gateway's own addresses
  std::string control_socket;              // default "/run/espgw/<gateway>-<index>.sock"
  std::string file_prefix;                 // DPDK --file-prefix; default "espgw-<gateway>-<index>"
  // Durable state (sequence-number reservations of static tunnels); relative paths are taken
  // from the config file's directory. Default "/var/lib/espgw".
  std::string state_dir;
  Dataplane dataplane;
  Mark mark;
};

struct Config {
  std::string path;  // the file it was loaded from
  Gateway gateway;
  std::vector<LocalNetworkGateway> local_network_gateways;
  std::vector<Connection> connections;
  Instance instance;

  const LocalNetworkGateway* find_lng(const std::string& name) const;
  const Port* find_port(const std::string& name) const;
};

struct LoadResult {
  std::optional<Config> config;          // set only when errors is empty
  std::vector<ConfigError> errors;
};

// Parses the YAML file, reads referenced key files, and validates. Never throws.
LoadResult load_config(const std::string& path);
// Same, from a string (path is used for messages and to resolve relative key files).
LoadResult load_config_string(const std::string& yaml, const std::string& path);
// The semantic rules (the README's config reference; the per-instance rules); used by load_config.
std::vector<ConfigError> validate(const Config& c);

bool asn_reserved(uint32_t asn);

}  // namespace espgw::model
