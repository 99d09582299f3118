// One route the FIB cannot hold must not block any other route change (espgw issue 15.4): the
// RouteTable with a real, deliberately small FIB under a real EAL (no hugepages, no devices),
// fed the way the BGP, IKE and API paths feed it. The FIB gets max_routes_v4 2048, which gives
// it the minimum of 256 tbl8 groups: every /25 in its own /24 takes one group.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_fib.h>
#include <rte_fib6.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "dataplane/tables/fib.h"
#include "dataplane/tables/neighbor.h"
#include "dataplane/tables/routes.h"

namespace espgw::dp {
namespace {

constexpr unsigned kTbl8Groups = 256;  // Fib::init: clamp(max_v4 / 8, 256, 65535)

class RouteIsolation : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string prefix = "--file-prefix=espgw-routeiso-" + std::to_string(getpid());
    const char* argv[] = {
        "route_isolation_test", "--no-huge",        "-m", "768", "--no-pci", "-l", "0",
        prefix.c_str(),         "--log-level=error"};
    ASSERT_GE(rte_eal_init(9, const_cast<char**>(argv)), 0);
    size_t sz = rte_rcu_qsbr_get_memsize(RTE_MAX_LCORE);
    qs = static_cast<rte_rcu_qsbr*>(rte_zmalloc(nullptr, sz, 64));
    ASSERT_EQ(rte_rcu_qsbr_init(qs, RTE_MAX_LCORE), 0);
  }
  RouteIsolation() : nexthops(kMaxNextHops), neigh(rt), routes(rt, neigh) {
    rt.nexthops = nexthops.data();
    rt.fib = &fib;
  }
  void init_fib(unsigned max_v4) {
    static int n = 0;
    std::string err;
    ASSERT_TRUE(fib.init("ri" + std::to_string(n++), 0, max_v4, 1024, qs, &err)) << err;
  }
  static NhSpec tunnel(uint32_t id) { return NhSpec{NhKind::kTunnel, 0, {}, id}; }
  static Prefix pfx(const std::string& s) { return *Prefix::parse(s); }
  void add(const std::string& p, RouteSource s, uint32_t tun) {
    std::string err;
    ASSERT_TRUE(routes.add(pfx(p), s, tunnel(tun), &err)) << err;
  }
  // The tunnel the data plane's FIB sends `dst` to; 0 = no route / not a tunnel.
  uint32_t fib_tunnel(const std::string& dst) {
    uint32_t a = IpAddr::parse(dst)->v4_host();
    uint64_t nh = 0;
    rte_fib_lookup_bulk(fib.active()->v4, &a, &nh, 1);
    const NextHop& x = rt.nexthops[nh];
    return nh && x.kind == NhKind::kTunnel ? x.tunnel : 0;
  }
  // `show routes` for the selected route of p: "installed" or "not installed: <reason>".
  std::string shown(const std::string& p) {
    for (const auto& r : routes.view().routes)
      if (r.prefix.str() == p && r.selected)
        return r.installed ? "installed" : "not installed: " + r.reason;
    return "<none>";
  }
  // /25s, each in its own /24 of 10.100.0.0/14: one tbl8 group apiece.
  static std::string slash25(unsigned i) {
    return "10." + std::to_string(100 + i / 256) + "." + std::to_string(i % 256) + ".0/25";
  }
  static std::string host25(unsigned i) {
    return "10." + std::to_string(100 + i / 256) + "." + std::to_string(i % 256) + ".1";
  }

  static rte_rcu_qsbr* qs;
  Runtime rt;
  std::vector<NextHop> nexthops;
  Fib fib;
  Neighbors neigh;
  RouteTable routes;
};
rte_rcu_qsbr* RouteIsolation::qs = nullptr;

TEST_F(RouteIsolation, Tbl8ExhaustionBlocksNoOtherChange) {
  init_fib(2048);
  // A peer announces more /25s than there are tbl8 groups, in one batch.
  const unsigned n = kTbl8Groups + 44;
  for (unsigned i = 0; i < n; ++i) add(slash25(i), RouteSource::kBgp, 7);
  std::string err;
  EXPECT_FALSE(routes.commit(&err));
  EXPECT_NE(err.find("tbl8"), std::string::npos) << err;
  EXPECT_NE(err.find("more not installed"), std::string::npos) << err;
  // Those that fit forward; the others are reported as not installed, with the reason.
  unsigned forwarded = 0, reported = 0;
  for (unsigned i = 0; i < n; ++i) {
    const bool fwd = fib_tunnel(host25(i)) == 7;
    forwarded += fwd;
    const std::string s = shown(slash25(i));
    if (fwd) {
      EXPECT_EQ(s, "installed") << slash25(i);
    } else {
      ++reported;
      EXPECT_NE(s.find("not installed: FIB full (max_routes_v4"), std::string::npos) << s;
    }
  }
  EXPECT_EQ(forwarded, kTbl8Groups);
  EXPECT_EQ(reported, n - kTbl8Groups);

  // An unrelated BGP /16 (no tbl8 needed) is installed: the failures do not block it.
  add("10.60.0.0/16", RouteSource::kBgp, 8);
  EXPECT_TRUE(routes.commit(&err)) << err;
  EXPECT_EQ(fib_tunnel("10.60.1.1"), 8u);
  EXPECT_EQ(shown("10.60.0.0/16"), "installed");

  // An IKE connection's route and an API route in the same way.
  add("10.61.0.0/16", RouteSource::kConnection, 9);
  EXPECT_TRUE(routes.commit(&err)) << err;
  EXPECT_EQ(fib_tunnel("10.61.0.1"), 9u);
  routes.checkpoint();  // the API's route add
  add("10.62.0.0/24", RouteSource::kApi, 10);
  EXPECT_TRUE(routes.commit(&err)) << err;
  EXPECT_EQ(fib_tunnel("10.62.0.1"), 10u);

  // A withdrawal of an installed /25 always applies ...
  unsigned gone = 0;
  while (gone < n && fib_tunnel(host25(gone)) != 7) ++gone;
  ASSERT_LT(gone, n);
  routes.del(pfx(slash25(gone)), RouteSource::kBgp);
  EXPECT_TRUE(routes.commit(&err)) << err;
  EXPECT_EQ(fib_tunnel(host25(gone)), 0u);
  EXPECT_EQ(shown(slash25(gone)), "<none>");
  // ... and the tbl8 group it gave back goes to one of the prefixes that did not fit.
  forwarded = 0;
  for (unsigned i = 0; i < n; ++i) {
    const bool fwd = fib_tunnel(host25(i)) == 7;
    forwarded += fwd;
    if (i != gone) {
      EXPECT_EQ(shown(slash25(i)) == "installed", fwd) << slash25(i);
    }
  }
  EXPECT_EQ(forwarded, kTbl8Groups);

  // Withdrawing a prefix that never made it into the FIB is no error either.
  unsigned never = 0;
  while (never < n && (never == gone || fib_tunnel(host25(never)) == 7)) ++never;
  ASSERT_LT(never, n);
  routes.del(pfx(slash25(never)), RouteSource::kBgp);
  EXPECT_TRUE(routes.commit(&err)) << err;
  EXPECT_EQ(shown(slash25(never)), "<none>");
}

TEST_F(RouteIsolation, FullRouteTableBlocksNoWithdrawal) {
  init_fib(256);  // the RIB behind the FIB holds 256 nodes
  for (unsigned i = 0; i < 400; ++i)
    add("10." + std::to_string(20 + i / 256) + "." + std::to_string(i % 256) + ".0/24",
        RouteSource::kBgp, 3);
  std::string err;
  EXPECT_FALSE(routes.commit(&err));
  EXPECT_NE(err.find("FIB full"), std::string::npos) << err;
  // Find one installed and one refused /24.
  std::string in, out;
  for (const auto& r : routes.view().routes) {
    if (r.installed && in.empty()) in = r.prefix.str();
    if (!r.installed && out.empty()) out = r.prefix.str();
  }
  ASSERT_FALSE(in.empty());
  ASSERT_FALSE(out.empty());
  auto host = [](const std::string& p) { return p.substr(0, p.size() - 4) + "1"; };
  EXPECT_EQ(fib_tunnel(host(in)), 3u);
  EXPECT_EQ(fib_tunnel(host(out)), 0u);
  // The withdrawal of the installed one applies, and the room goes to a refused one.
  routes.del(pfx(in), RouteSource::kBgp);
  EXPECT_TRUE(routes.commit(&err)) << err;
  EXPECT_EQ(fib_tunnel(host(in)), 0u);
  EXPECT_EQ(shown(in), "<none>");
  EXPECT_EQ(fib_tunnel(host(out)), 3u);
  EXPECT_EQ(shown(out), "installed");
}

TEST_F(RouteIsolation, FailedApiBatchIsUndoneInTheFib) {
  init_fib(2048);
  for (unsigned i = 0; i < kTbl8Groups; ++i) add(slash25(i), RouteSource::kBgp, 7);
  std::string err;
  ASSERT_TRUE(routes.commit(&err)) << err;  // exactly full
  // `route batch add A ; add B` where B does not fit: all or nothing.
  routes.checkpoint();
  add("10.70.0.0/16", RouteSource::kApi, 5);
  add(slash25(kTbl8Groups), RouteSource::kApi, 5);
  EXPECT_FALSE(routes.commit(&err));
  EXPECT_NE(err.find(slash25(kTbl8Groups)), std::string::npos) << err;
  EXPECT_EQ(err.find("10.70.0.0/16"), std::string::npos) << err;  // only its own failure
  routes.rollback();
  EXPECT_EQ(fib_tunnel("10.70.0.1"), 0u);
  EXPECT_EQ(shown("10.70.0.0/16"), "<none>");
  EXPECT_EQ(shown(slash25(kTbl8Groups)), "<none>");
  // The table is clean: the next change commits.
  add("10.71.0.0/16", RouteSource::kApi, 6);
  EXPECT_TRUE(routes.commit(&err)) << err;
  EXPECT_EQ(fib_tunnel("10.71.0.1"), 6u);
}

}  // namespace
}  // namespace espgw::dp
