// A site's static prefixes (a local network gateway's address_prefixes, installed by its
// connection) beat the same prefix learned over BGP in the data plane's route table
// (ARCHITECTURE.md, "Routes"): the RouteTable with a real FIB under a real EAL (no hugepages, no
// devices), the way the BGP and IKE services feed it.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_fib.h>
#include <rte_fib6.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>


#include "dataplane/tables/fib.h"
#include "dataplane/tables/neighbor.h"
#include "dataplane/tables/routes.h"

namespace espgw::dp {
namespace {

class RoutePreference : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string prefix = "--file-prefix=espgw-routepref-" + std::to_string(getpid());
    const char* argv[] = {
        "route_preference_test", "--no-huge",        "-m", "768", "--no-pci", "-l", "0",
        prefix.c_str(),          "--log-level=error"};
    ASSERT_GE(rte_eal_init(9, const_cast<char**>(argv)), 0);
    size_t sz = rte_rcu_qsbr_get_memsize(RTE_MAX_LCORE);
    qs = static_cast<rte_rcu_qsbr*>(rte_zmalloc(nullptr, sz, 64));
    ASSERT_EQ(rte_rcu_qsbr_init(qs, RTE_MAX_LCORE), 0);
  }
  RoutePreference() : nexthops(kMaxNextHops), neigh(rt), routes(rt, neigh) {
    rt.nexthops = nexthops.data();
    rt.fib = &fib;
  }
  void SetUp() override {
    static int n = 0;
    std::string err;
    ASSERT_TRUE(fib.init("rp" + std::to_string(n++), 0, 1024, 1024, qs, &err)) << err;
  }
  static NhSpec tunnel(uint32_t id) { return NhSpec{NhKind::kTunnel, 0, {}, id}; }
  static Prefix pfx(const char* s) { return *Prefix::parse(s); }
  void add(const char* p, RouteSource s, uint32_t tun) {
    std::string err;
    ASSERT_TRUE(routes.add(pfx(p), s, tunnel(tun), &err)) << err;
  }
  void commit() {
    std::string err;
    ASSERT_TRUE(routes.commit(&err)) << err;
  }
  // The tunnel the data plane's FIB sends `dst` to; 0 = no route / not a tunnel.
  uint32_t fib_tunnel(const char* dst) {
    auto a = *IpAddr::parse(dst);
    uint64_t nh = 0;
    if (a.is_v4()) {
      uint32_t v4 = a.v4_host();
      rte_fib_lookup_bulk(fib.active()->v4, &v4, &nh, 1);
    } else {
      uint8_t v6[1][16];
      std::copy(a.bytes.begin(), a.bytes.end(), v6[0]);
      rte_fib6_lookup_bulk(fib.active()->v6, v6, &nh, 1);
    }
    const NextHop& x = rt.nexthops[nh];
    return nh && x.kind == NhKind::kTunnel ? x.tunnel : 0;
  }
  // The selected source of `p` in `espgwctl show routes` terms.
  std::string selected(const char* p) {
    for (const auto& r : routes.view().routes)
      if (r.prefix.str() == p && r.selected)
        return std::string(source_name(r.source)) + (r.installed ? "" : " (not installed)");
    return "<none>";
  }

  static rte_rcu_qsbr* qs;
  Runtime rt;
  std::vector<NextHop> nexthops;
  Fib fib;
  Neighbors neigh;
  RouteTable routes;
};
rte_rcu_qsbr* RoutePreference::qs = nullptr;

TEST_F(RoutePreference, ConnectionStaticPrefixBeatsBgp) {
  EXPECT_LT(admin_distance(RouteSource::kConnection), admin_distance(RouteSource::kBgp));
  for (const char* p : {"10.52.0.0/16", "fd00:52::/48"}) {
    const char* host = p[0] == '1' ? "10.52.1.1" : "fd00:52::1";
    SCOPED_TRACE(p);
    // Learned over BGP first (tunnel 7)...
    add(p, RouteSource::kBgp, 7);
    commit();
    EXPECT_EQ(fib_tunnel(host), 7u);
    EXPECT_EQ(selected(p), "bgp");
    // ... then the connection to the site comes up with the same prefix as a static route.
    add(p, RouteSource::kConnection, 3);
    commit();
    EXPECT_EQ(fib_tunnel(host), 3u);
    EXPECT_EQ(selected(p), "connection");
    // BGP changing its path does not displace it.
    add(p, RouteSource::kBgp, 8);
    commit();
    EXPECT_EQ(fib_tunnel(host), 3u);
    EXPECT_EQ(selected(p), "connection");
    // Nor does BGP withdrawing and announcing it again.
    routes.del(pfx(p), RouteSource::kBgp);
    add(p, RouteSource::kBgp, 9);
    commit();
    EXPECT_EQ(fib_tunnel(host), 3u);
    // The connection goes down: the BGP route takes over.
    routes.del(pfx(p), RouteSource::kConnection);
    commit();
    EXPECT_EQ(fib_tunnel(host), 9u);
    EXPECT_EQ(selected(p), "bgp");
  }
}

TEST_F(RoutePreference, OrderOfArrivalDoesNotMatter) {
  add("10.53.0.0/16", RouteSource::kConnection, 4);
  add("10.53.0.0/16", RouteSource::kBgp, 5);  // in the same batch
  commit();
  EXPECT_EQ(fib_tunnel("10.53.0.1"), 4u);
  EXPECT_EQ(selected("10.53.0.0/16"), "connection");
  routes.del(pfx("10.53.0.0/16"), RouteSource::kBgp);
  commit();
  EXPECT_EQ(fib_tunnel("10.53.0.1"), 4u);
}

// Issue 15.8: `show routes limit N after PREFIX` reads the table page by page (each reply holds
// at most N prefixes; `next` is the cursor), in prefix order, every route exactly once, all the
// routes of a prefix on one page; no paging words = the whole table as before.
TEST_F(RoutePreference, RouteViewIsPaged) {
  std::vector<std::string> want;
  for (int i = 0; i < 25; ++i) {
    std::string p = "10.60." + std::to_string(i) + ".0/24";
    want.push_back(p);
    add(p.c_str(), RouteSource::kBgp, 7);
  }
  add("10.60.3.0/24", RouteSource::kConnection, 3);  // two routes for one prefix
  add("fd00:60::/48", RouteSource::kBgp, 7);
  commit();
  want.push_back("fd00:60::/48");
  std::sort(want.begin(), want.end(), [](const std::string& a, const std::string& b) {
    return pfx(a.c_str()) < pfx(b.c_str());
  });
  EXPECT_EQ(routes.view().routes.size(), 27u);  // unpaged: every route
  EXPECT_FALSE(routes.view().next);
  std::vector<std::string> seen;
  size_t rows = 0, pages = 0;
  RoutePage page;
  page.limit = 4;
  for (;;) {
    RoutesView reply = routes.view(page);
    ++pages;
    std::set<std::string> prefixes;
    for (const auto& r : reply.routes) {
      prefixes.insert(r.prefix.str());
      if (seen.empty() || seen.back() != r.prefix.str()) seen.push_back(r.prefix.str());
      ++rows;
    }
    EXPECT_LE(prefixes.size(), 4u);
    if (!reply.next) break;
    EXPECT_EQ(reply.next->str(), reply.routes.back().prefix.str());
    page.after = reply.next;
    ASSERT_LT(pages, 20u);
  }
  EXPECT_EQ(seen, want);
  EXPECT_EQ(rows, 27u);
  EXPECT_EQ(pages, 7u);  // 26 prefixes, 4 a page
}

}  // namespace
}  // namespace espgw::dp
