// espgw --config FILE [--check] [-- EAL args]
#include <sched.h>
#include <sys/prctl.h>
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

#include "control/agent/agent.h"
#include "control/model/config.h"
#include "dataplane/dataplane.h"
#include "dataplane/log.h"
#include "dataplane/sizing.h"

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

// The lcore ids of a plain EAL list ("0-2,4"); empty if it is anything else (e.g. a --lcores
// mapping with '@' or groups).
std::vector<unsigned> plain_lcore_list(const std::string& s) {
  std::vector<unsigned> out;
  size_t i = 0;
  auto num = [&](unsigned* v) {
    size_t j = i;
    *v = 0;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9' && j - i < 4)
      *v = *v * 10 + unsigned(s[j++] - '0');
    bool ok = j > i;
    i = j;
    return ok;
  };
  while (i < s.size()) {
    unsigned a, b;
    if (!num(&a)) return {};
    b = a;
    if (i < s.size() && s[i] == '-') {
      ++i;
      if (!num(&b)) return {};
    }
    if (b < a || b - a > 1024) return {};
    for (unsigned x = a; x <= b; ++x) out.push_back(x);
    if (i < s.size() && s[i++] != ',') return {};
  }
  return out;
}

// The EAL lcore option for dataplane.lcores. A plain list ("0-2") is "-l LIST" when every lcore
// names a CPU this process may run on. In virtual mode (no hugepages) a plain list that asks for
// more lcores than there are such CPUs is mapped onto them round robin ("--lcores 0@0,1@1,2@0"),
// so a 2-CPU machine can run 2 workers; workers then share CPUs, which is for tests and demos
// (set idle_sleep_us), not for speed. A list with '@' or '(' is passed as --lcores unchanged.
std::vector<std::string> lcore_args(const espgw::model::Dataplane& d) {
  const std::string& l = d.lcores;
  if (l.find_first_of("@(") != std::string::npos) return {"--lcores", l};
  std::vector<unsigned> want = plain_lcore_list(l), cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (unsigned c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  bool fits = true;
  for (unsigned x : want)
    if (x >= CPU_SETSIZE || !CPU_ISSET(x, &set)) fits = false;
  if (fits || want.empty() || cpus.empty() || d.hugepages) return {"-l", l};
  std::string map;
  for (size_t k = 0; k < want.size(); ++k)
    map += (k ? "," : "") + std::to_string(want[k]) + "@" + std::to_string(cpus[k % cpus.size()]);
  std::printf("espgw: virtual mode: %zu lcores on %zu CPU(s): --lcores %s\n", want.size(),
              cpus.size(), map.c_str());
  return {"--lcores", map};
}

std::vector<std::string> eal_args(const espgw::model::Config& cfg,
                                  const std::vector<std::string>& extra) {
  const auto& in = cfg.instance;
  std::vector<std::string> a{"espgw"};
  for (auto& x : lcore_args(in.dataplane)) a.push_back(std::move(x));
  for (const char* x : {"--file-prefix", in.file_prefix.c_str(), "-m"}) a.push_back(x);
  a.push_back(std::to_string(in.dataplane.memory_mb));
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

// The one place that writes the log: info to stdout, warnings and errors to stderr, a line at a
// time (a supervisor or the tests read them as they come).
static void log_sink(espgw::logging::Level l, const std::string& line) {
  using espgw::logging::Level;
  FILE* f = l >= Level::kWarning ? stderr : stdout;
  std::fprintf(f, "espgw: %s%s\n", l == Level::kWarning ? "WARNING: " : "", line.c_str());
  std::fflush(f);
}

int main(int argc, char** argv) {
  using namespace espgw;
  logging::set_sink(log_sink);
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
  // Key material (PSKs, SA keys, IKE secrets) lives in this process: never in a core dump, and
  // not readable through ptrace or /proc/<pid>/mem by other users.
  if (prctl(PR_SET_DUMPABLE, 0) != 0)
    return fail("prctl(PR_SET_DUMPABLE): cannot disable core dumps");
  model::LoadResult lr = model::load_config(config_path);
  if (!lr.errors.empty()) {
    for (const auto& e : lr.errors) std::fprintf(stderr, "espgw: %s\n", e.str().c_str());
    std::fprintf(stderr, "espgw: %zu error(s) in %s; nothing started\n", lr.errors.size(),
                 config_path.c_str());
    return 2;
  }
  const model::Config& cfg = *lr.config;
  {  // the tables must fit the memory given, or rte_fib_create fails half-way through start-up
    const auto& d = cfg.instance.dataplane;
    unsigned max_mtu = 1500;
    for (const auto& p : cfg.instance.ports) max_mtu = std::max<unsigned>(max_mtu, p.mtu);
    dp::MemoryEstimate need =
        dp::estimate_memory(d.max_routes_v4, d.max_routes_v6, d.mbufs, max_mtu);
    if (dp::MemoryEstimate::mib(need.total()) > d.memory_mb) {
      model::ConfigError e{cfg.path, d.mark.line ? d.mark : cfg.instance.mark,
                           "instance.dataplane.memory_mb",
                           std::to_string(d.memory_mb) + " MiB cannot hold this instance's tables: "
                           "they need about " + need.str() + "; raise memory_mb or lower "
                           "max_routes_v4 (" + std::to_string(d.max_routes_v4) + ") / "
                           "max_routes_v6 (" + std::to_string(d.max_routes_v6) + ")"};
      std::fprintf(stderr, "espgw: %s\n", e.str().c_str());
      std::fprintf(stderr, "espgw: 1 error(s) in %s; nothing started\n", config_path.c_str());
      return 2;
    }
  }
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
    std::string err;
    std::unique_ptr<dp::Dataplane> plane =
        dp::Dataplane::create(agent::dataplane_config(cfg, true), &err);
    std::unique_ptr<agent::Agent> ag;
    if (plane) ag = std::make_unique<agent::Agent>(cfg, *plane);
    // Workers first (receiving nothing yet), then the configured state, then forwarding.
    if (!plane || !plane->start(&err) || !ag->init(&err)) {
      std::fprintf(stderr, "espgw: %s\n", err.c_str());
      rc = 1;
    } else {
      plane->enable_forwarding();
      std::printf("espgw: %s instance %u up: %zu port(s), %u worker(s), control socket %s\n",
                  cfg.gateway.name.c_str(), cfg.instance.index, plane->ports().size(),
                  plane->workers(), cfg.instance.control_socket.c_str());
      std::fflush(stdout);
      ag->run(g_stop);
      std::printf("espgw: stopping\n");
    }
    ag.reset();  // the services delete their SAs while the data plane is there
    if (plane) plane->shutdown();
  }
  rte_eal_cleanup();
  return rc;
}
