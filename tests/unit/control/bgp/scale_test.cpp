// Scale (a measurement, not a pass/fail test; disabled by default): one speaker announces
// 1,000,000 IPv4 prefixes to another in-process; time until all are in the receiver's FIB sink
// and the memory it took. Run: bgp_test --gtest_also_run_disabled_tests --gtest_filter='*Scale*'
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "tests/unit/control/bgp/bgp_sim.h"

namespace espgw::bgp {
namespace {

using testing::peer_cfg;
using testing::SimNet;
using testing::speaker_cfg;

long rss_kb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

TEST(Scale, DISABLED_OneMillionPrefixes) {
  constexpr uint32_t kN = 1'000'000;
  SimNet net;
  auto site_cfg = speaker_cfg(65050, "10.52.255.253");
  for (uint32_t i = 0; i < kN; ++i) site_cfg.originate.push_back(Prefix{IpAddr::v4(0x20000000 + (i << 8)), 24});
  long rss0 = rss_kb();
  Speaker& gw = net.add("10.12.255.4", speaker_cfg(65010, "10.12.255.4", {"10.11.0.0/16"}));
  Speaker& site = net.add("10.52.255.253", std::move(site_cfg));
  gw.add_peer(peer_cfg("site", "10.52.255.253", 65050, "10.12.255.4"));
  site.add_peer(peer_cfg("gw", "10.12.255.4", 65010, "10.52.255.253"));
  long rss1 = rss_kb();
  auto t0 = std::chrono::steady_clock::now();
  gw.start(net.now);
  site.start(net.now);
  net.pump();
  auto t1 = std::chrono::steady_clock::now();
  auto& fib = net.node("10.12.255.4").fib->routes;
  EXPECT_EQ(fib.size(), kN);
  long rss2 = rss_kb();
  double s = std::chrono::duration<double>(t1 - t0).count();
  std::printf("1M prefixes: %.2f s from session start to all in the FIB sink (%.0f prefixes/s); "
              "sender RIB %ld MB, receiver + wire %ld MB (RSS deltas)\n",
              s, kN / s, (rss1 - rss0) / 1024, (rss2 - rss1) / 1024);
}

}  // namespace
}  // namespace espgw::bgp
