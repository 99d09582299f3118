// The BGP speaker as a control-thread service: kernel TCP sockets in the gateway's namespace
// (reached through the exception TAP), peers from the config (every connection with enable_bgp:
// the local network gateway's asn and bgp_peering_address), selected routes to the FIB through
// the data plane's routes (RouteSource::kBgp) with the tunnel that reaches the peer as next hop, and
// the espgwctl commands `show bgp peers`, `show bgp routes`, `bgp reset NAME|ADDRESS`.
//
// At start the service puts the instance's bgp_peering_address on the exception TAP (ip addr
// replace X/32 dev <exception_iface>) and installs it as a local route in the FIB, so sessions
// to it reach the host kernel.
#pragma once

#include <string>

#include "control/agent/agent.h"

namespace espgw::agent {

// Adds the BGP service to ctl when the config enables BGP on some connection. Returns false
// (with err) only on a hard error (e.g. the listening socket cannot be opened).
bool add_bgp_service(Agent& ctl, std::string* err);

}  // namespace espgw::agent
