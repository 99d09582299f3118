// The double-buffered FIB with a real EAL (no hugepages, no devices) and a real RCU QSBR.
#include "dataplane/tables/fib.h"

#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_fib.h>
#include <rte_fib6.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace espgw::dp {
namespace {

class FibTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string prefix = "--file-prefix=espgw-fibtest-" + std::to_string(getpid());
    const char* argv[] = {"fib_test", "--no-huge", "-m", "768", "--no-pci", "-l", "0",
                          prefix.c_str(), "--log-level=error"};
    ASSERT_GE(rte_eal_init(9, const_cast<char**>(argv)), 0);
    size_t sz = rte_rcu_qsbr_get_memsize(RTE_MAX_LCORE);
    qs = static_cast<rte_rcu_qsbr*>(rte_zmalloc(nullptr, sz, 64));
    ASSERT_EQ(rte_rcu_qsbr_init(qs, RTE_MAX_LCORE), 0);
  }
  static uint64_t look4(Fib& f, const char* ip) {
    uint32_t a = IpAddr::parse(ip)->v4_host();
    uint64_t nh = 99;
    rte_fib_lookup_bulk(f.active()->v4, &a, &nh, 1);
    return nh;
  }
  static uint64_t look6(Fib& f, const char* ip) {
    uint8_t a[1][16];
    auto p = IpAddr::parse(ip);
    std::copy(p->bytes.begin(), p->bytes.end(), a[0]);
    uint64_t nh = 99;
    rte_fib6_lookup_bulk(f.active()->v6, a, &nh, 1);
    return nh;
  }
  static rte_rcu_qsbr* qs;
};
rte_rcu_qsbr* FibTest::qs = nullptr;

FibChange add(const char* p, uint32_t nh) { return {*Prefix::parse(p), nh, false}; }
FibChange del(const char* p) { return {*Prefix::parse(p), 0, true}; }

TEST_F(FibTest, BatchIsVisibleWholeAndBothCopiesAgree) {
  Fib f;
  std::string err;
  std::vector<FibFailure> failed;
  ASSERT_TRUE(f.init("t1", 0, 1024, 1024, qs, &err)) << err;
  EXPECT_EQ(look4(f, "10.9.1.1"), 0u);  // default: unreachable
  FibChange b1[] = {add("10.9.0.0/16", 1), add("fd00:9::/64", 2)};
  ASSERT_TRUE(f.apply(b1, &failed));
  EXPECT_EQ(look4(f, "10.9.1.1"), 1u);
  EXPECT_EQ(look6(f, "fd00:9::1"), 2u);
  // replace a /16 by two /17s in one batch
  FibChange b2[] = {del("10.9.0.0/16"), add("10.9.0.0/17", 3), add("10.9.128.0/17", 4)};
  ASSERT_TRUE(f.apply(b2, &failed));
  EXPECT_EQ(look4(f, "10.9.1.1"), 3u);
  EXPECT_EQ(look4(f, "10.9.200.1"), 4u);
  // the next batch goes to the other copy: it must hold the same state
  FibChange b3[] = {add("10.10.0.0/16", 5)};
  ASSERT_TRUE(f.apply(b3, &failed));
  EXPECT_EQ(look4(f, "10.9.1.1"), 3u);
  EXPECT_EQ(look4(f, "10.9.200.1"), 4u);
  EXPECT_EQ(look4(f, "10.10.0.1"), 5u);
  EXPECT_EQ(f.generation(), 3u);
}

// A change that does not fit is left out and reported; the rest of its batch applies, in both
// copies.
TEST_F(FibTest, RefusedChangeDoesNotBlockTheRest) {
  Fib f;
  std::string err;
  std::vector<FibFailure> failed;
  ASSERT_TRUE(f.init("t2", 0, 8, 8, qs, &err)) << err;  // room for 8 routes only
  FibChange ok[] = {add("10.1.0.0/16", 1)};
  ASSERT_TRUE(f.apply(ok, &failed));
  std::vector<FibChange> big;
  big.push_back(add("10.1.0.0/16", 7));  // replaces an existing route
  for (int i = 0; i < 20; ++i)
    big.push_back({*Prefix::parse("10.2." + std::to_string(i) + ".0/24"), 2, false});
  big.push_back(del("10.9.9.0/24"));  // removing an absent route is fine
  EXPECT_FALSE(f.apply(big, &failed));
  ASSERT_FALSE(failed.empty());
  EXPECT_EQ(look4(f, "10.1.0.1"), 7u);  // the replacement applied
  size_t fi = 0;
  for (size_t i = 1; i <= 20; ++i) {
    const bool refused = fi < failed.size() && failed[fi].index == i;
    std::string host = "10.2." + std::to_string(i - 1) + ".1";
    EXPECT_EQ(look4(f, host.c_str()), refused ? 0u : 2u) << host;
    if (refused) {
      EXPECT_NE(failed[fi++].why.find("FIB full (max_routes_v4"), std::string::npos);
    }
  }
  EXPECT_EQ(fi, failed.size());  // only additions fail
  EXPECT_GT(failed.front().index, 1u);  // some of the /24s fit
  // The other copy got exactly the same: the next batch publishes it.
  FibChange b[] = {del("10.2.0.0/24")};
  ASSERT_TRUE(f.apply(b, &failed));
  EXPECT_EQ(look4(f, "10.1.0.1"), 7u);
  EXPECT_EQ(look4(f, "10.2.0.1"), 0u);
  EXPECT_EQ(look4(f, "10.2.1.1"), 2u);
  EXPECT_EQ(look4(f, ("10.2." + std::to_string(failed.back().index - 1) + ".1").c_str()), 0u);
}

}  // namespace
}  // namespace espgw::dp
