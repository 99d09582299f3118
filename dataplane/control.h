// The control thread (main lcore): control socket, ARP/ND and held packets from the workers,
// route changes pushed to the FIB, timers. Later: IKE and BGP on kernel sockets.
#pragma once

#include <atomic>
#include <string>

#include "control/api/server.h"
#include "control/model/config.h"
#include "dataplane/neighbor.h"
#include "dataplane/routes.h"
#include "dataplane/runtime.h"
#include "dataplane/sa.h"

namespace espgw::dp {

class Control {
 public:
  Control(const model::Config& cfg, Runtime& rt)
      : cfg_(cfg), rt_(rt), neigh_(rt), routes_(rt, neigh_), sas_(rt) {}
  bool init(std::string* err);
  // Runs until stop becomes true.
  void run(const std::atomic<bool>& stop);

  // Runs one control-socket command in-process (the same words espgwctl sends).
  api::Json command(const api::Args& argv) { return server_.dispatch(argv); }

  api::Json show_ports() const;
  api::Json show_counters(bool per_lcore) const;

 private:
  bool install_config_routes(std::string* err);
  bool install_static_tunnels(std::string* err);
  uint16_t tunnel_mtu(const IpAddr& local, const SaRt& sa) const;
  void register_commands();
  api::Json route_cmd(const api::Args& a, const std::string& verb);
  void stage_route(const api::Args& a, bool add);

  const model::Config& cfg_;
  Runtime& rt_;
  Neighbors neigh_;
  RouteTable routes_;
  SaTable sas_;
  api::Server server_;
};

// Registers /espgw/* telemetry commands reading rt (dpdk-telemetry.py can query them).
void register_telemetry(Runtime& rt, Control& ctl);

uint64_t monotonic_ms();

}  // namespace espgw::dp
