// The semantic rules of the resource model, one small function per rule. validate() (config.h) runs
// all of them in this order; tests call them one at a time. Each appends errors naming the field.
#pragma once

#include <vector>

#include "control/model/config.h"

namespace espgw::model::rules {

using Errors = std::vector<ConfigError>;

// --- gateway and sites ---
void names_valid(const Config& c, Errors& e);   // [A-Za-z0-9_.-]{1,64} for every name
void names_unique(const Config& c, Errors& e);  // LNGs, connections, ports, tunnels
void address_spaces_disjoint(const Config& c, Errors& e);
void lng_gateway_ips_unique(const Config& c, Errors& e);
void asns_not_reserved(const Config& c, Errors& e);
void gateway_instances(const Config& c, Errors& e);  // count vs active_active, index, unique IPs

// --- connections ---
void connections_bounded(const Config& c, Errors& e);  // count <= gateway.max_connections
void connection_peers_exist(const Config& c, Errors& e);
void bgp_requirements(const Config& c, Errors& e);  // ASNs and peering addresses present
void ebgp_asns_differ(const Config& c, Errors& e);
void bgp_active_active_prefixes(const Config& c, Errors& e);  // only the peer's /32 (/128)
void ipsec_policies(const Config& c, Errors& e);              // proposals parse; dpd timeout range
void connection_ranges(const Config& c, Errors& e);           // replay_window, tcp_mss_clamp
void bgp_settings(const Config& c, Errors& e);  // hold time 0 or 3..65535, keepalive < hold

// --- this instance ---
void ports(const Config& c, Errors& e);  // >= 1, mtu, unique devices and addresses
void routes(const Config& c, Errors& e);
void tunnel_endpoints(const Config& c, Errors& e);   // local is ours, same family as remote
void tunnel_sas(const Config& c, Errors& e);         // spi >= 256, unique inbound, key length
void tunnel_settings(const Config& c, Errors& e);    // replay_window, mss, soft < hard lifetime
void instance_settings(const Config& c, Errors& e);  // exception_iface, socket, file prefix
void dataplane_ranges(const Config& c, Errors& e);

}  // namespace espgw::model::rules
