// The control thread (main lcore): control socket, ARP/ND and held packets from the workers,
// route changes pushed to the FIB, timers. Later: IKE and BGP on kernel sockets.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "control/api/server.h"
#include "control/model/config.h"
#include "control/state/seq_store.h"
#include "dataplane/tables/neighbor.h"
#include "dataplane/tables/routes.h"
#include "dataplane/runtime.h"
#include "dataplane/tables/sa.h"

namespace espgw::dp {

// A control-plane service run by the control thread's event loop (IKE, BGP): it owns some
// kernel sockets (in the gateway's namespace, reached through the exception path) and timers.
class Service {
 public:
  virtual ~Service() = default;
  virtual std::vector<int> fds() const = 0;       // polled for POLLIN every loop
  virtual void on_readable(int fd, uint64_t now_ms) = 0;
  virtual void tick(uint64_t now_ms) = 0;          // about every 100 ms
};

class Control {
 public:
  Control(const model::Config& cfg, Runtime& rt)
      : cfg_(cfg), rt_(rt), neigh_(rt), routes_(rt, neigh_), sas_(rt) {}
  bool init(std::string* err);
  // Runs until stop becomes true.
  void run(const std::atomic<bool>& stop);

  // Runs one control-socket command in-process (the same words espgwctl sends).
  api::Json command(const api::Args& argv) { return server_.dispatch(argv); }

  // Services and what they may use: the control API (to register commands), the SA table (the
  // one narrow interface that installs SAs and tunnels), the route table (commit() publishes).
  void add_service(std::unique_ptr<Service> s) { services_.push_back(std::move(s)); }
  api::Server& api() { return server_; }
  SaTable& sas() { return sas_; }
  RouteTable& routes() { return routes_; }
  const model::Config& config() const { return cfg_; }

  api::Json show_ports() const;
  api::Json show_counters(bool per_lcore) const;

 private:
  bool install_config_routes(std::string* err);
  bool install_static_tunnels(std::string* err);
  uint16_t tunnel_mtu(const IpAddr& local, const SaRt& sa) const;
  void extend_seq_reservations(uint64_t now_ms);
  void register_commands();
  api::Json route_cmd(const api::Args& a, const std::string& verb);
  void stage_route(const api::Args& a, bool add);

  const model::Config& cfg_;
  Runtime& rt_;
  Neighbors neigh_;
  RouteTable routes_;
  SaTable sas_;
  api::Server server_;
  std::vector<std::unique_ptr<Service>> services_;
  // Outbound SAs of static tunnels and their records in the sequence reservation store.
  struct StaticOut {
    uint32_t sa;
    std::string key;
    uint64_t max_seq;
  };
  state::SeqStore seq_store_;
  std::vector<StaticOut> static_out_;
  uint64_t seq_flush_error_ms_ = 0;
};

// Registers /espgw/* telemetry commands reading rt (dpdk-telemetry.py can query them).
void register_telemetry(Runtime& rt, Control& ctl);

uint64_t monotonic_ms();

}  // namespace espgw::dp
