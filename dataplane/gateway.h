// One gateway instance inside an initialised EAL: the run-time tables, the ports, the workers and
// the control thread. Used by espgw's main() and by the Mpps harness (perf/mpps), which drives
// the same worker loop through ring ports instead of NICs.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "control/model/config.h"
#include "dataplane/control.h"
#include "dataplane/tables/fib.h"
#include "dataplane/runtime.h"
#include "dataplane/path/worker.h"

namespace espgw::dp {

class Gateway {
 public:
  Gateway() = default;
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;
  ~Gateway() { shutdown(); }

  // The EAL must be initialised with every port of cfg present (and the exception TAP unless
  // cfg.instance.exception_iface is empty). configure_kernel: put the gateway's addresses on the
  // exception TAP in the host kernel.
  bool init(const model::Config& cfg, bool configure_kernel, std::string* err);
  // Launches the workers on the worker lcores, then applies the config's tunnels and routes.
  bool start(std::string* err);
  // The control loop on the calling (main) lcore, until stop.
  void run(const std::atomic<bool>& stop) { ctl_->run(stop); }
  // Stops the workers and frees everything that lives in DPDK memory (before rte_eal_cleanup).
  void shutdown();

  Runtime& runtime() { return *rt_; }
  Control& control() { return *ctl_; }

 private:
  const model::Config* cfg_ = nullptr;
  std::unique_ptr<Runtime> rt_;
  std::unique_ptr<CounterSet> counters_;
  std::unique_ptr<std::atomic<TunnelRt*>[]> tunnels_;
  std::unique_ptr<Fib> fib_;
  std::unique_ptr<Control> ctl_;
  std::vector<WorkerArgs> wargs_;
  bool launched_ = false, down_ = false;
};

}  // namespace espgw::dp
