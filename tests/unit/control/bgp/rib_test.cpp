// The RFC 4271 s9.1.2.2 decision process and multipath selection.
#include "control/bgp/rib.h"

#include <gtest/gtest.h>

#include "tests/unit/control/bgp/bgp_sim.h"

namespace espgw::bgp {
namespace {

using testing::ip;
using testing::pfx;

Path path(PeerId peer, std::vector<uint32_t> as_path, const char* router_id = "1.1.1.1",
          Origin origin = Origin::kIgp, std::optional<uint32_t> med = {},
          std::optional<uint32_t> local_pref = {}) {
  auto a = std::make_shared<PathAttrs>();
  a->origin = origin;
  a->as_path = AsPath::sequence(std::move(as_path));
  a->med = med;
  a->local_pref = local_pref;
  Path p;
  p.peer = peer;
  p.attrs = a;
  p.peer_router_id = ip(router_id).v4_host();
  p.peer_addr = ip(("10.0.0." + std::to_string(peer)).c_str());
  return p;
}

TEST(DecisionProcess, HigherLocalPrefWins) {
  EXPECT_LT(compare_paths(path(1, {1, 2, 3}, "1.1.1.1", Origin::kIgp, {}, 200),
                          path(2, {1}, "1.1.1.1", Origin::kIgp, {}, 100)),
            0);
}

TEST(DecisionProcess, ShorterAsPathWins) {
  EXPECT_LT(compare_paths(path(2, {7}), path(1, {7, 8})), 0);
  // An AS_SET counts as one.
  Path set = path(1, {7});
  auto a = std::make_shared<PathAttrs>(*set.attrs);
  a->as_path->segments.push_back({SegType::kSet, {1, 2, 3, 4}});
  set.attrs = a;
  EXPECT_EQ(set.attrs->as_path->length(), 2u);
  EXPECT_LT(compare_paths(set, path(2, {7, 8, 9})), 0);
}

TEST(DecisionProcess, LowerOriginWins) {
  EXPECT_LT(compare_paths(path(2, {7}, "9.9.9.9", Origin::kIgp),
                          path(1, {7}, "1.1.1.1", Origin::kIncomplete)),
            0);
  EXPECT_LT(compare_paths(path(2, {7}, "9.9.9.9", Origin::kEgp),
                          path(1, {7}, "1.1.1.1", Origin::kIncomplete)),
            0);
}

TEST(DecisionProcess, MedComparedOnlyWithinOneNeighbourAs) {
  // Same neighbour AS 7: lower MED wins despite the higher router id.
  EXPECT_LT(compare_paths(path(2, {7}, "9.9.9.9", Origin::kIgp, 10),
                          path(1, {7}, "1.1.1.1", Origin::kIgp, 50)),
            0);
  // Different neighbour ASes: MED ignored, lowest BGP Identifier decides.
  EXPECT_GT(compare_paths(path(2, {8}, "9.9.9.9", Origin::kIgp, 10),
                          path(1, {7}, "1.1.1.1", Origin::kIgp, 50)),
            0);
}

TEST(DecisionProcess, LowestRouterIdThenLowestPeerAddress) {
  EXPECT_LT(compare_paths(path(2, {7}, "1.1.1.1"), path(1, {7}, "2.2.2.2")), 0);
  EXPECT_LT(compare_paths(path(1, {7}, "1.1.1.1"), path(2, {7}, "1.1.1.1")), 0);  // 10.0.0.1
}

TEST(DecisionProcess, LocalRoutesWin) {
  Path local;
  local.attrs = std::make_shared<PathAttrs>();
  EXPECT_LT(compare_paths(local, path(1, {})), 0);
}

TEST(DecisionProcess, MultipathEqualityIgnoresTieBreakers) {
  EXPECT_EQ(compare_paths(path(1, {7, 9}, "1.1.1.1"), path(2, {7, 10}, "2.2.2.2"), true), 0);
  EXPECT_NE(compare_paths(path(1, {7}), path(2, {8}), true), 0);        // other neighbour AS
  EXPECT_NE(compare_paths(path(1, {7}), path(2, {7, 7}), true), 0);     // longer path
  EXPECT_NE(compare_paths(path(1, {7}, "1.1.1.1", Origin::kIgp, 1),
                          path(2, {7}, "1.1.1.1", Origin::kIgp, 2), true),
            0);  // MED
}

TEST(Rib, SelectsBestAndEqualCostPaths) {
  Rib rib;
  Prefix p = pfx("10.50.0.0/16");
  EXPECT_TRUE(rib.update(p, path(1, {65050}, "3.3.3.3")));
  EXPECT_TRUE(rib.update(p, path(2, {65050}, "2.2.2.2")));  // ECMP member, and new best
  EXPECT_FALSE(rib.update(p, path(3, {65060, 65050})));    // longer: not selected
  const auto* e = rib.find(p);
  ASSERT_NE(e, nullptr);
  ASSERT_EQ(e->selected.size(), 2u);
  EXPECT_EQ(e->paths[e->selected[0]].peer, 2u);  // lower router id first
  EXPECT_EQ(e->paths[e->selected[1]].peer, 1u);
  EXPECT_EQ(rib.best(p)->peer, 2u);
  // Withdrawing a selected path changes the selection; a non-selected one does not.
  EXPECT_FALSE(rib.withdraw(p, 3));
  EXPECT_TRUE(rib.withdraw(p, 2));
  EXPECT_EQ(rib.find(p)->selected.size(), 1u);
  EXPECT_EQ(rib.best(p)->peer, 1u);
  EXPECT_TRUE(rib.withdraw(p, 1));
  EXPECT_EQ(rib.find(p), nullptr);
}

TEST(Rib, MaxPathsBoundsTheSet) {
  Rib rib(2);
  Prefix p = pfx("10.50.0.0/16");
  for (PeerId i = 1; i <= 4; ++i) rib.update(p, path(i, {65050}, "1.1.1.1"));
  EXPECT_EQ(rib.find(p)->selected.size(), 2u);
}

TEST(Rib, ReplacingAPathWithNewAttributesIsAChange) {
  Rib rib;
  Prefix p = pfx("10.50.0.0/16");
  rib.update(p, path(1, {65050}));
  EXPECT_FALSE(rib.update(p, path(1, {65050})));  // identical
  EXPECT_TRUE(rib.update(p, path(1, {65050, 65051})));
  EXPECT_EQ(rib.adj_in_count(1), 1u);
}

TEST(Rib, DropPeerAndStalePaths) {
  Rib rib;
  rib.update(pfx("10.1.0.0/16"), path(1, {1}));
  rib.update(pfx("10.2.0.0/16"), path(1, {1}));
  rib.update(pfx("10.2.0.0/16"), path(2, {2, 3}));
  rib.mark_stale(1);
  rib.update(pfx("10.1.0.0/16"), path(1, {1}));  // refreshed after the restart
  auto changed = rib.drop_peer(1, true);
  EXPECT_EQ(changed, std::vector<Prefix>{pfx("10.2.0.0/16")});
  EXPECT_EQ(rib.best(pfx("10.2.0.0/16"))->peer, 2u);
  EXPECT_EQ(rib.adj_in_count(1), 1u);
  changed = rib.drop_peer(1);
  EXPECT_EQ(changed, std::vector<Prefix>{pfx("10.1.0.0/16")});
  EXPECT_EQ(rib.size(), 1u);
}

}  // namespace
}  // namespace espgw::bgp
