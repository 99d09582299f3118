// espgw --config FILE [--check] [-- EAL args]
#include <signal.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "control/model/config.h"
#include "dataplane/gateway.h"
#include "dataplane/port.h"

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop.store(true); }

void usage(FILE* f) {
  std::fprintf(f,
               "usage: espgw --config FILE [--check] [-- EAL-ARGS...]\n"
               "  --config FILE  gateway resource model (YAML)\n"
               "  --check        validate the config and exit (0 = valid)\n"
               "  EAL-ARGS       extra DPDK EAL arguments, appended to the ones derived from the\n"
               "                 config (lcores, memory, file prefix, devices)\n");
}

std::vector<std::string> eal_args(const espgw::model::Config& cfg,
                                  const std::vector<std::string>& extra) {
  const auto& in = cfg.instance;
  std::vector<std::string> a{"espgw", "-l", in.dataplane.lcores, "--file-prefix", in.file_prefix,
                             "-m", std::to_string(in.dataplane.memory_mb)};
  if (!in.dataplane.hugepages) a.push_back("--no-huge");
  bool pci = false;
  for (const auto& p : in.ports) {
    if (p.is_vdev) {
      a.push_back("--vdev=" + p.device);
    } else {
      a.push_back("-a");
      a.push_back(p.device);
      pci = true;
    }
  }
  if (!pci) a.push_back("--no-pci");
  a.push_back("--vdev=" + espgw::dp::exception_vdev(in.exception_iface));
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

int fail(const std::string& msg) {
  std::fprintf(stderr, "espgw: %s\n", msg.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace espgw;
  std::string config_path;
  bool check_only = false;
  std::vector<std::string> extra;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      for (++i; i < argc; ++i) extra.push_back(argv[i]);
      break;
    }
    if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a == "--check") {
      check_only = true;
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "espgw: unknown argument '%s'\n", a.c_str());
      usage(stderr);
      return 2;
    }
  }
  if (config_path.empty()) {
    usage(stderr);
    return 2;
  }
  model::LoadResult lr = model::load_config(config_path);
  if (!lr.errors.empty()) {
    for (const auto& e : lr.errors) std::fprintf(stderr, "espgw: %s\n", e.str().c_str());
    std::fprintf(stderr, "espgw: %zu error(s) in %s; nothing started\n", lr.errors.size(),
                 config_path.c_str());
    return 2;
  }
  const model::Config& cfg = *lr.config;
  if (check_only) {
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }

  std::vector<std::string> ea = eal_args(cfg, extra);
  std::vector<char*> eargv;
  for (auto& s : ea) eargv.push_back(s.data());
  eargv.push_back(nullptr);
  if (rte_eal_init(int(ea.size()), eargv.data()) < 0)
    return fail(std::string("EAL init failed: ") + rte_strerror(rte_errno) +
                " (another espgw with the same file_prefix running?)");

  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);

  int rc = 0;
  {
    dp::Gateway gw;
    std::string err;
    if (!gw.init(cfg, true, &err) || !gw.start(&err)) {
      std::fprintf(stderr, "espgw: %s\n", err.c_str());
      rc = 1;
    } else {
      std::printf("espgw: %s instance %u up: %zu port(s), %u worker(s), control socket %s\n",
                  cfg.gateway.name.c_str(), cfg.instance.index, gw.runtime().ports.size(),
                  gw.runtime().n_workers, cfg.instance.control_socket.c_str());
      std::fflush(stdout);
      gw.run(g_stop);
      std::printf("espgw: stopping\n");
    }
    gw.shutdown();
  }
  rte_eal_cleanup();
  return rc;
}
