// The espgw process's control thread (the EAL main lcore): the event loop (control socket,
// service sockets, timers, the data plane's event stream), the static configuration installed at
// start, the espgwctl commands and their JSON views, and the services (IKE, BGP) it runs. This
// folder is the only one that includes the data-plane facade (dataplane/dataplane.h).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "control/api/server.h"
#include "control/model/config.h"
#include "control/state/seq_store.h"
#include "dataplane/dataplane.h"

namespace espgw::agent {

// A control-plane service run by the event loop (IKE, BGP): it owns some kernel sockets (in the
// gateway's namespace, reached through the exception path) and timers.
class Service {
 public:
  virtual ~Service() = default;
  virtual std::vector<int> fds() const = 0;  // polled for POLLIN every loop
  virtual void on_readable(int fd, uint64_t now_ms) = 0;
  virtual void tick(uint64_t now_ms) = 0;  // about every 100 ms
  // An event of the data plane (SA lifetimes); every service sees every event.
  virtual void on_dp_event(const dp::DpEvent&) {}
};

// The data plane's configuration from the resource model.
dp::Config dataplane_config(const model::Config& cfg, bool configure_kernel);

class Agent {
 public:
  Agent(const model::Config& cfg, dp::Dataplane& dp) : cfg_(cfg), dp_(dp) {}

  // Installs the static configuration (tunnels with their sequence reservations, routes),
  // starts the services and the control socket. The caller then enables forwarding.
  bool init(std::string* err);
  // The perf harness and the worker fuzz target: the static configuration only (no control
  // socket, no IKE or BGP).
  bool install_static(std::string* err);
  // Runs until stop becomes true.
  void run(const std::atomic<bool>& stop);

  // Runs one control-socket command in-process (the same words espgwctl sends).
  api::Json command(const api::Args& argv) { return server_.dispatch(argv); }

  void add_service(std::unique_ptr<Service> s) { services_.push_back(std::move(s)); }
  api::Server& api() { return server_; }
  dp::Dataplane& dp() { return dp_; }
  const model::Config& config() const { return cfg_; }

 private:
  bool install_config_routes(std::string* err);
  bool install_static_tunnels(std::string* err);
  void extend_seq_reservations(uint64_t now_ms);
  void handle_events();
  void register_commands();  // commands.cpp
  api::Json route_cmd(const api::Args& a, const std::string& verb);
  void stage_route(const api::Args& a, bool add);

  const model::Config& cfg_;
  dp::Dataplane& dp_;
  api::Server server_;
  std::vector<std::unique_ptr<Service>> services_;
  std::vector<dp::DpEvent> events_;
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

// JSON views of the data plane's snapshots (views.cpp), shared by the commands and the services.
api::Json to_json(const std::vector<dp::PortView>& ports);
api::Json to_json(const std::vector<dp::SaView>& sas);
api::Json to_json(const std::vector<dp::TunnelView>& tunnels);
api::Json to_json(const std::vector<dp::NeighborView>& neighbors);
api::Json to_json(const dp::RoutesView& routes, const dp::RoutePage& page);
api::Json counters_json(const dp::Dataplane& dp, bool per_lcore);
// Takes "limit N" and "after PREFIX" (in any order) out of args; the other words stay, in
// order. Throws api::RequestError on a bad value.
dp::RoutePage take_route_page(std::vector<std::string>& args);
std::string hex_spi(uint32_t spi);  // "0x0000abcd"

}  // namespace espgw::agent
