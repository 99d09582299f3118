// Speakers exchanging routes in one process over the simulated network: export/import policy,
// transit, ECMP, withdrawals, max-prefix, route refresh, graceful restart (helper).
#include "control/bgp/speaker.h"

#include <gtest/gtest.h>

#include "tests/unit/bgp/bgp_sim.h"

namespace espgw::bgp {
namespace {

using testing::ip;
using testing::peer_cfg;
using testing::pfx;
using testing::SimNet;
using testing::speaker_cfg;

const Path* best(Speaker& s, const char* p) { return s.rib().best(pfx(p)); }
std::string as_path(Speaker& s, const char* p) {
  const Path* b = best(s, p);
  return b && b->attrs->as_path ? b->attrs->as_path->str() : "<none>";
}

// gw (65010, 10.12.255.4) <-> site (65050, 10.52.255.253)
class PairTest : public ::testing::Test {
 protected:
  PairTest()
      : gw(net.add("10.12.255.4", speaker_cfg(65010, "10.12.255.4", {"10.11.0.0/16", "fd00:11::/48"}))),
        site(net.add("10.52.255.253", speaker_cfg(65050, "10.52.255.253", {"10.52.0.0/16", "fd00:52::/48"}))) {
    gw_peer = gw.add_peer(peer_cfg("site", "10.52.255.253", 65050, "10.12.255.4"));
    site_peer = site.add_peer(peer_cfg("gw", "10.12.255.4", 65010, "10.52.255.253"));
  }
  void up() {
    gw.start(net.now);
    site.start(net.now);
    net.pump();
    net.run_for(1000);
    ASSERT_EQ(gw.peer(gw_peer)->state(), State::kEstablished);
    ASSERT_EQ(site.peer(site_peer)->state(), State::kEstablished);
  }
  SimNet net;
  Speaker& gw;
  Speaker& site;
  PeerId gw_peer, site_peer;
};

TEST_F(PairTest, SimultaneousOpenConvergesToOneSession) {
  up();
  EXPECT_EQ(gw.peer(gw_peer)->stats().established_transitions, 1u);
  net.run_for(300'000, 1000);  // keepalives keep it up; nothing flaps
  EXPECT_EQ(gw.peer(gw_peer)->state(), State::kEstablished);
  EXPECT_EQ(gw.peer(gw_peer)->stats().established_transitions, 1u);
}

TEST_F(PairTest, ExchangesIpv4AndIpv6BothWays) {
  up();
  const Path* b = best(gw, "10.52.0.0/16");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->peer, gw_peer);
  EXPECT_EQ(b->next_hop, ip("10.52.255.253"));
  EXPECT_EQ(as_path(gw, "10.52.0.0/16"), "65050");
  const Path* b6 = best(gw, "fd00:52::/48");
  ASSERT_NE(b6, nullptr);
  EXPECT_EQ(b6->next_hop, ip("::ffff:10.52.255.253"));  // IPv4-mapped next hop on a v4 session
  EXPECT_EQ(as_path(site, "10.11.0.0/16"), "65010");
  EXPECT_NE(best(site, "fd00:11::/48"), nullptr);
  // The FIB gets learned routes only, not our own address spaces.
  auto& fib = net.node("10.12.255.4").fib->routes;
  EXPECT_EQ(fib.size(), 2u);
  EXPECT_EQ(fib.at(pfx("10.52.0.0/16")), std::vector<PeerId>{gw_peer});
  EXPECT_EQ(gw.adj_out_count(gw_peer), 2u);
  EXPECT_EQ(gw.rib().adj_in_count(gw_peer), 2u);
}

TEST_F(PairTest, WithdrawalRemovesTheRoute) {
  up();
  site.withdraw_originated(pfx("10.52.0.0/16"), net.now);
  net.pump();
  EXPECT_EQ(best(gw, "10.52.0.0/16"), nullptr);
  EXPECT_FALSE(net.node("10.12.255.4").fib->routes.count(pfx("10.52.0.0/16")));
  site.originate(pfx("10.53.0.0/16"), net.now);
  net.pump();
  EXPECT_NE(best(gw, "10.53.0.0/16"), nullptr);
}

TEST_F(PairTest, SessionDownRemovesRoutesAndRecovers) {
  up();
  site.reset_peer(site_peer, net.now);
  net.pump();
  EXPECT_EQ(best(gw, "10.52.0.0/16"), nullptr);  // Cease sent: no graceful restart
  EXPECT_TRUE(net.node("10.12.255.4").fib->routes.empty());
  net.run_for(5000);
  EXPECT_EQ(gw.peer(gw_peer)->state(), State::kEstablished);
  EXPECT_NE(best(gw, "10.52.0.0/16"), nullptr);
}

TEST_F(PairTest, HoldTimerExpiresWhenThePeerGoesSilent) {
  up();
  net.node("10.52.255.253").down = true;
  // Drop everything site sends from now on by stopping to tick it and discarding its data.
  for (auto& [id, end] : net.ends)
    if (end.node == 1) end.closed = true;  // its side of the connection: silently dead
  for (int i = 0; i < 200 && gw.peer(gw_peer)->state() == State::kEstablished; ++i) {
    net.now += 1000;
    gw.tick(net.now);
    net.pump();
  }
  EXPECT_NE(gw.peer(gw_peer)->state(), State::kEstablished);
  EXPECT_NE(gw.peer(gw_peer)->stats().last_error.find("Hold Timer"), std::string::npos);
  EXPECT_EQ(best(gw, "10.52.0.0/16"), nullptr);
}

TEST_F(PairTest, RefusesOwnAddressSpaceAndLoops) {
  up();
  site.originate(pfx("10.11.5.0/24"), net.now);  // inside the gateway's 10.11.0.0/16
  net.pump();
  EXPECT_EQ(gw.rib().find(pfx("10.11.5.0/24")), nullptr);
  EXPECT_EQ(gw.counters(gw_peer).refused_own_space, 1u);
  // The gateway's own routes come back in the site's table but never return to the gateway
  // (sender side) and would be refused by it (receiver side).
  EXPECT_EQ(gw.counters(gw_peer).refused_loop, 0u);
  EXPECT_EQ(site.adj_out_count(site_peer), 3u);  // 10.52/16, fd00:52::/48, 10.11.5.0/24
}

TEST_F(PairTest, RouteRefreshResendsEverything) {
  up();
  uint64_t before = site.peer(site_peer)->stats().updates_out;
  Bytes rr = encode_route_refresh({kIpv4Unicast, 0});
  // The gateway asks; the site answers with its IPv4 routes and an End-of-RIB.
  ConnId c = 0;
  for (auto& [id, end] : net.ends)
    if (end.node == 0 && !end.closed && end.peer) c = id;
  ASSERT_NE(c, 0u);
  net.nodes[0]->transport->send(c, rr);
  net.pump();
  EXPECT_EQ(site.peer(site_peer)->stats().updates_out, before + 2);  // routes + EoR
}

TEST(Speaker, TransitReannouncesWithPrependAndNeverBack) {
  // onprem (65050) <-> vnet1 (65010) <-> vnet2 (65020)
  SimNet net;
  Speaker& onprem = net.add("10.0.0.1", speaker_cfg(65050, "10.0.0.1", {"10.50.0.0/16"}));
  Speaker& vnet1 = net.add("10.0.0.2", speaker_cfg(65010, "10.0.0.2", {"10.1.0.0/16"}));
  Speaker& vnet2 = net.add("10.0.0.3", speaker_cfg(65020, "10.0.0.3", {"10.2.0.0/16"}));
  PeerId op = onprem.add_peer(peer_cfg("vnet1", "10.0.0.2", 65010, "10.0.0.1"));
  PeerId v1_op = vnet1.add_peer(peer_cfg("onprem", "10.0.0.1", 65050, "10.0.0.2"));
  PeerId v1_v2 = vnet1.add_peer(peer_cfg("vnet2", "10.0.0.3", 65020, "10.0.0.2"));
  vnet2.add_peer(peer_cfg("vnet1", "10.0.0.2", 65010, "10.0.0.3"));
  for (auto& n : net.nodes) n->speaker->start(net.now);
  net.run_for(2000);
  // On-prem learns VNet2's prefix through VNet1.
  EXPECT_EQ(as_path(onprem, "10.2.0.0/16"), "65010 65020");
  EXPECT_EQ(best(onprem, "10.2.0.0/16")->next_hop, ip("10.0.0.2"));  // next hop self
  EXPECT_EQ(best(onprem, "10.2.0.0/16")->peer, op);
  EXPECT_EQ(as_path(vnet2, "10.50.0.0/16"), "65010 65050");
  // VNet1 does not send on-prem's routes back to on-prem.
  EXPECT_EQ(vnet1.adj_out_count(v1_op), 2u);  // 10.1/16, 10.2/16
  EXPECT_EQ(vnet1.adj_out_count(v1_v2), 2u);  // 10.1/16, 10.50/16
  // Withdrawal propagates through the transit hop.
  vnet2.withdraw_originated(pfx("10.2.0.0/16"), net.now);
  net.pump();
  EXPECT_EQ(best(onprem, "10.2.0.0/16"), nullptr);
  // A session going down withdraws what was learned over it, everywhere.
  vnet2.stop(net.now);
  net.pump();
  EXPECT_EQ(best(onprem, "10.1.0.0/16")->peer, op);
  EXPECT_EQ(vnet1.rib().adj_in_count(v1_v2), 0u);
}

TEST(Speaker, DefaultRouteIsNotExportedUnlessConfigured) {
  SimNet net;
  Speaker& a = net.add("10.0.0.1", speaker_cfg(65050, "10.0.0.1", {"0.0.0.0/0"}));
  Speaker& b = net.add("10.0.0.2", speaker_cfg(65010, "10.0.0.2"));
  auto ccfg = speaker_cfg(65020, "10.0.0.3");
  Speaker& c = net.add("10.0.0.3", ccfg);
  a.add_peer(peer_cfg("b", "10.0.0.2", 65010, "10.0.0.1"));
  b.add_peer(peer_cfg("a", "10.0.0.1", 65050, "10.0.0.2"));
  b.add_peer(peer_cfg("c", "10.0.0.3", 65020, "10.0.0.2"));
  c.add_peer(peer_cfg("b", "10.0.0.2", 65010, "10.0.0.3"));
  for (auto& n : net.nodes) n->speaker->start(net.now);
  net.run_for(2000);
  EXPECT_NE(best(b, "0.0.0.0/0"), nullptr);   // imported
  EXPECT_EQ(best(c, "0.0.0.0/0"), nullptr);   // but not passed on
}

TEST(Speaker, EqualPathsFromTwoPeersAreBothInstalled) {
  // Two tunnels to one site (two on-prem devices in AS 65050) announcing the same prefix.
  SimNet net;
  Speaker& gw = net.add("10.12.255.4", speaker_cfg(65010, "10.12.255.4", {"10.11.0.0/16"}));
  Speaker& d1 = net.add("10.52.255.1", speaker_cfg(65050, "10.52.255.1", {"10.52.0.0/16"}));
  Speaker& d2 = net.add("10.52.255.2", speaker_cfg(65050, "10.52.255.2", {"10.52.0.0/16"}));
  PeerId p1 = gw.add_peer(peer_cfg("d1", "10.52.255.1", 65050, "10.12.255.4"));
  PeerId p2 = gw.add_peer(peer_cfg("d2", "10.52.255.2", 65050, "10.12.255.4"));
  d1.add_peer(peer_cfg("gw", "10.12.255.4", 65010, "10.52.255.1"));
  d2.add_peer(peer_cfg("gw", "10.12.255.4", 65010, "10.52.255.2"));
  for (auto& n : net.nodes) n->speaker->start(net.now);
  net.run_for(2000);
  auto& fib = net.node("10.12.255.4").fib->routes;
  EXPECT_EQ(fib.at(pfx("10.52.0.0/16")), (std::vector<PeerId>{p1, p2}));
  d1.stop(net.now);
  net.pump();
  EXPECT_EQ(fib.at(pfx("10.52.0.0/16")), std::vector<PeerId>{p2});
  d2.stop(net.now);
  net.pump();
  EXPECT_FALSE(fib.count(pfx("10.52.0.0/16")));
}

TEST(Speaker, MaxPrefixResetAndDiscard) {
  for (auto action : {MaxPrefixAction::kReset, MaxPrefixAction::kDiscard}) {
    SimNet net;
    Speaker& gw = net.add("10.12.255.4", speaker_cfg(65010, "10.12.255.4"));
    Speaker& site = net.add("10.52.255.253",
                            speaker_cfg(65050, "10.52.255.253", {"10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16"}));
    auto pc = peer_cfg("site", "10.52.255.253", 65050, "10.12.255.4");
    pc.max_prefixes = 2;
    pc.max_prefix_action = action;
    PeerId p = gw.add_peer(pc);
    PeerId sp = site.add_peer(peer_cfg("gw", "10.12.255.4", 65010, "10.52.255.253"));
    gw.start(net.now);
    site.start(net.now);
    net.run_for(2000);
    if (action == MaxPrefixAction::kReset) {
      EXPECT_NE(gw.peer(p)->state(), State::kEstablished);
      EXPECT_EQ(gw.rib().adj_in_count(p), 0u);
      EXPECT_NE(site.peer(sp)->stats().last_error.find("Maximum Number of Prefixes"),
                std::string::npos)
          << site.peer(sp)->stats().last_error;
      EXPECT_GT(gw.peer(p)->idle_hold_deadline(), net.now + 20'000);  // max_prefix_restart_ms
    } else {
      EXPECT_EQ(gw.peer(p)->state(), State::kEstablished);
      EXPECT_EQ(gw.rib().adj_in_count(p), 2u);
      EXPECT_EQ(gw.counters(p).refused_max_prefix, 1u);
    }
  }
}

TEST(Speaker, GracefulRestartHelperKeepsStaleRoutes) {
  SimNet net;
  Speaker& gw = net.add("10.12.255.4", speaker_cfg(65010, "10.12.255.4"));
  Speaker& site = net.add("10.52.255.253", speaker_cfg(65050, "10.52.255.253", {"10.52.0.0/16"}));
  PeerId p = gw.add_peer(peer_cfg("site", "10.52.255.253", 65050, "10.12.255.4"));
  site.add_peer(peer_cfg("gw", "10.12.255.4", 65010, "10.52.255.253"));
  gw.start(net.now);
  site.start(net.now);
  net.run_for(1000);
  ASSERT_NE(best(gw, "10.52.0.0/16"), nullptr);
  // The connection drops without a NOTIFICATION (the site's process died).
  for (auto& [id, end] : net.ends)
    if (end.node == 0 && !end.closed) gw.on_closed(id, net.now), end.closed = true;
  for (auto& [id, end] : net.ends) end.closed = true;
  ASSERT_NE(best(gw, "10.52.0.0/16"), nullptr);
  EXPECT_TRUE(best(gw, "10.52.0.0/16")->stale);
  EXPECT_TRUE(net.node("10.12.255.4").fib->routes.count(pfx("10.52.0.0/16")));
  // Nobody comes back within the restart time (120 s): the stale routes go.
  net.node("10.52.255.253").down = true;
  net.run_for(121'000, 1000);
  EXPECT_EQ(best(gw, "10.52.0.0/16"), nullptr);
  EXPECT_EQ(gw.rib().adj_in_count(p), 0u);
}

}  // namespace
}  // namespace espgw::bgp
