// Ethdev setup (data ports and the exception TAP) and the host-kernel side of the exception path.
#pragma once

#include <string>
#include <vector>

#include "dataplane/dataplane.h"
#include "dataplane/runtime.h"

namespace espgw::dp {

// DPDK vdev/device name of a configured port ("net_tap0" of "net_tap0,iface=x", or the PCI BDF).
std::string device_name(const std::string& devargs);

// Creates the mbuf pools and starts every port (queues: one rx per worker, one tx per worker
// plus one for the control thread). Fills rt.ports. Returns false with err set on failure.
bool setup_ports(const Config& cfg, Runtime& rt, std::string* err);

// Puts the gateway's addresses and routes on the exception interface in the host kernel, so the
// kernel answers pings and runs IKE/BGP sockets on them; everything it sends comes back to us.
bool setup_exception_kernel(const Config& cfg, Runtime& rt, std::string* err);
// One more address on the exception interface (a /32 or /128).
bool add_exception_address(const std::string& iface, const IpAddr& a, std::string* err);

// Runs a command (argv[0] is looked up in PATH) and waits; false with err on failure.
bool run_command(const std::vector<std::string>& argv, std::string* err);

}  // namespace espgw::dp
