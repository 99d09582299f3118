// Speakers exchanging routes in one process over the simulated network: export/import policy,
// transit, ECMP, withdrawals, max-prefix, route refresh, graceful restart (helper).
#include "control/bgp/speaker.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "tests/unit/control/bgp/bgp_sim.h"
#include "tests/unit/control/bgp/bgp_test_util.h"

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

TEST(Speaker, MaxPrefixWarnKeepsEverything) {
  SimNet net;
  Speaker& gw = net.add("10.12.255.4", speaker_cfg(65010, "10.12.255.4"));
  Speaker& site =
      net.add("10.52.255.253", speaker_cfg(65050, "10.52.255.253", {"10.1.0.0/16", "10.2.0.0/16"}));
  auto pc = peer_cfg("site", "10.52.255.253", 65050, "10.12.255.4");
  pc.max_prefixes = 2;
  pc.max_prefix_action = MaxPrefixAction::kWarn;
  PeerId p = gw.add_peer(pc);
  PeerId sp = site.add_peer(peer_cfg("gw", "10.12.255.4", 65010, "10.52.255.253"));
  gw.start(net.now);
  site.start(net.now);
  net.run_for(2000);
  EXPECT_FALSE(gw.counters(p).max_prefix_warned);  // not before the limit is passed
  site.originate(pfx("10.3.0.0/16"), net.now);
  site.originate(pfx("10.4.0.0/16"), net.now);
  net.pump();
  EXPECT_EQ(gw.peer(p)->state(), State::kEstablished);
  EXPECT_EQ(gw.peer(p)->stats().established_transitions, 1u);
  EXPECT_TRUE(site.peer(sp)->stats().last_error.empty()) << site.peer(sp)->stats().last_error;
  EXPECT_EQ(gw.rib().adj_in_count(p), 4u);  // all kept
  EXPECT_EQ(gw.counters(p).refused_max_prefix, 0u);
  EXPECT_TRUE(gw.counters(p).max_prefix_warned);
  EXPECT_EQ(net.node("10.12.255.4").fib->routes.size(), 4u);
}

TEST(Speaker, MaxPrefixWarnIsNotTriggeredAtTheLimit) {
  SimNet net;
  Speaker& gw = net.add("10.12.255.4", speaker_cfg(65010, "10.12.255.4"));
  Speaker& site =
      net.add("10.52.255.253", speaker_cfg(65050, "10.52.255.253", {"10.1.0.0/16", "10.2.0.0/16"}));
  auto pc = peer_cfg("site", "10.52.255.253", 65050, "10.12.255.4");
  pc.max_prefixes = 2;
  pc.max_prefix_action = MaxPrefixAction::kWarn;
  PeerId p = gw.add_peer(pc);
  site.add_peer(peer_cfg("gw", "10.12.255.4", 65010, "10.52.255.253"));
  gw.start(net.now);
  site.start(net.now);
  net.run_for(2000);
  // Re-announcing a known prefix at the limit is not a new prefix.
  site.withdraw_originated(pfx("10.1.0.0/16"), net.now);
  site.originate(pfx("10.1.0.0/16"), net.now);
  net.pump();
  EXPECT_EQ(gw.rib().adj_in_count(p), 2u);
  EXPECT_FALSE(gw.counters(p).max_prefix_warned);
}

// Own address space: a prefix equal to or inside it is refused (it would hijack our traffic); a
// supernet of it, such as a default route, is accepted.
TEST_F(PairTest, SupernetsAndDefaultRoutesAreLearned) {
  up();
  for (const char* p : {"0.0.0.0/0", "10.0.0.0/8", "::/0", "fd00::/8", "10.11.0.0/16",
                        "10.11.0.0/17", "fd00:11:0:1::/64"})
    site.originate(pfx(p), net.now);
  net.pump();
  for (const char* p : {"0.0.0.0/0", "10.0.0.0/8", "::/0", "fd00::/8"}) {
    const Path* b = best(gw, p);
    ASSERT_NE(b, nullptr) << p;
    EXPECT_EQ(b->peer, gw_peer) << p;
    EXPECT_TRUE(net.node("10.12.255.4").fib->routes.count(pfx(p))) << p;
  }
  // 10.11.0.0/16 is our own (local path wins and the learned one is not even kept).
  EXPECT_EQ(best(gw, "10.11.0.0/16")->peer, kLocalPeer);
  EXPECT_EQ(gw.rib().find(pfx("10.11.0.0/16"))->paths.size(), 1u);
  EXPECT_EQ(gw.rib().find(pfx("10.11.0.0/17")), nullptr);
  EXPECT_EQ(gw.rib().find(pfx("fd00:11:0:1::/64")), nullptr);
  EXPECT_EQ(gw.counters(gw_peer).refused_own_space, 3u);
  EXPECT_FALSE(net.node("10.12.255.4").fib->routes.count(pfx("10.11.0.0/17")));
}

TEST(Speaker, DefaultRouteIsExportedToPeersConfiguredForIt) {
  // a (65050) announces defaults to b (65010), which passes them on to d (advertise_default)
  // but not to c.
  SimNet net;
  Speaker& a = net.add("10.0.0.1", speaker_cfg(65050, "10.0.0.1"));
  Speaker& b = net.add("10.0.0.2", speaker_cfg(65010, "10.0.0.2", {"10.2.0.0/16"}));
  Speaker& c = net.add("10.0.0.3", speaker_cfg(65020, "10.0.0.3"));
  Speaker& d = net.add("10.0.0.4", speaker_cfg(65030, "10.0.0.4"));
  a.add_peer(peer_cfg("b", "10.0.0.2", 65010, "10.0.0.1"));
  b.add_peer(peer_cfg("a", "10.0.0.1", 65050, "10.0.0.2"));
  PeerId bc = b.add_peer(peer_cfg("c", "10.0.0.3", 65020, "10.0.0.2"));
  auto to_d = peer_cfg("d", "10.0.0.4", 65030, "10.0.0.2");
  to_d.advertise_default = true;
  PeerId bd = b.add_peer(to_d);
  c.add_peer(peer_cfg("b", "10.0.0.2", 65010, "10.0.0.3"));
  d.add_peer(peer_cfg("b", "10.0.0.2", 65010, "10.0.0.4"));
  for (auto& n : net.nodes) n->speaker->start(net.now);
  net.run_for(2000);
  a.originate(pfx("0.0.0.0/0"), net.now);
  a.originate(pfx("::/0"), net.now);
  a.originate(pfx("10.50.0.0/16"), net.now);
  net.pump();
  EXPECT_NE(best(b, "0.0.0.0/0"), nullptr);
  EXPECT_EQ(best(c, "0.0.0.0/0"), nullptr);
  EXPECT_EQ(best(c, "::/0"), nullptr);
  EXPECT_NE(best(c, "10.50.0.0/16"), nullptr);  // other transit routes still go to c
  EXPECT_EQ(b.adj_out_count(bc), 2u);           // 10.2/16, 10.50/16
  EXPECT_EQ(as_path(d, "0.0.0.0/0"), "65010 65050");
  EXPECT_NE(best(d, "::/0"), nullptr);
  EXPECT_EQ(b.adj_out_count(bd), 4u);
  // Withdrawn at the source: gone downstream too.
  a.withdraw_originated(pfx("0.0.0.0/0"), net.now);
  net.pump();
  EXPECT_EQ(best(d, "0.0.0.0/0"), nullptr);
  EXPECT_NE(best(d, "::/0"), nullptr);
}

// Our own speaker announces graceful restart as a helper only (no families): when its session
// drops without a NOTIFICATION, the peer keeps nothing (RFC 4724 s4.2).
TEST(Speaker, GracefulRestartWithoutFamiliesKeepsNothing) {
  SimNet net;
  Speaker& gw = net.add("10.12.255.4", speaker_cfg(65010, "10.12.255.4"));
  Speaker& site = net.add("10.52.255.253", speaker_cfg(65050, "10.52.255.253", {"10.52.0.0/16"}));
  PeerId p = gw.add_peer(peer_cfg("site", "10.52.255.253", 65050, "10.12.255.4"));
  site.add_peer(peer_cfg("gw", "10.12.255.4", 65010, "10.52.255.253"));
  gw.start(net.now);
  site.start(net.now);
  net.run_for(1000);
  ASSERT_NE(best(gw, "10.52.0.0/16"), nullptr);
  ASSERT_TRUE(gw.peer(p)->remote_open().caps.graceful_restart.has_value());
  // The connection drops without a NOTIFICATION (the site's process died).
  for (auto& [id, end] : net.ends)
    if (end.node == 0 && !end.closed) gw.on_closed(id, net.now), end.closed = true;
  for (auto& [id, end] : net.ends) end.closed = true;
  EXPECT_EQ(best(gw, "10.52.0.0/16"), nullptr);
  EXPECT_EQ(gw.rib().adj_in_count(p), 0u);
  EXPECT_FALSE(net.node("10.12.255.4").fib->routes.count(pfx("10.52.0.0/16")));
}

// The helper side of graceful restart against a scripted restarting peer: the test plays the
// site byte by byte (its OPEN carries the GR capability it wants), the gateway is a real
// Speaker on a recording transport and an integer clock.
class GracefulRestartTest : public ::testing::Test {
 protected:
  GracefulRestartTest() : gw(logged(speaker_cfg(65010, "10.12.255.4", {"10.11.0.0/16"})), t, &fib) {
    auto pc = peer_cfg("site", "10.52.255.253", 65050, "10.12.255.4");
    pc.passive = true;  // only the scripted site opens connections
    p = gw.add_peer(pc);
    gw.start(now);
  }
  SpeakerConfig logged(SpeakerConfig c) {
    c.log = [this](const std::string& line) { log.push_back(line); };
    return c;
  }
  // Log lines containing all of `words`.
  size_t logged_lines(std::initializer_list<const char*> words) const {
    size_t n = 0;
    for (const auto& l : log)
      n += std::all_of(words.begin(), words.end(),
                       [&](const char* w) { return l.find(w) != std::string::npos; });
    return n;
  }
  using Families = std::vector<GracefulRestart::Family>;
  static GracefulRestart::Family fam(AfiSafi f, bool forwarding) { return {f, forwarding}; }

  // A new session from the site whose OPEN carries `gr` (nullopt = no GR capability).
  void connect(std::optional<GracefulRestart> cap) {
    for (int i = 0; i < 100 && gw.peer(p)->state() != State::kActive; ++i) {
      now += 1000;  // idle hold after the previous session
      gw.tick(now);
    }
    ASSERT_EQ(gw.peer(p)->state(), State::kActive);
    conn = ++next_conn;
    ASSERT_TRUE(gw.on_accept(conn, testing::ip("10.52.255.253"), now));
    gw.on_data(conn, open_msg(cap), now);
    gw.on_data(conn, encode_keepalive(), now);
    ASSERT_EQ(gw.peer(p)->state(), State::kEstablished);
  }
  Bytes open_msg(std::optional<GracefulRestart> cap) {
    Capabilities caps;
    caps.multiprotocol = families;
    caps.route_refresh = true;
    caps.graceful_restart = cap;
    return encode_open(Open::make(65050, 90, testing::ip("10.52.255.253").v4_host(), caps));
  }
  static GracefulRestart gr(uint16_t restart_time, Families f) {
    GracefulRestart g;
    g.restart_time = restart_time;
    g.families = std::move(f);
    return g;
  }
  // The site announces prefixes (IPv4 classic or IPv6 via MP_REACH) with AS path 65050.
  void announce(std::vector<const char*> prefixes) {
    Update u;
    u.attrs.origin = Origin::kIgp;
    u.attrs.as_path = AsPath::sequence({65050});
    for (const char* s : prefixes) {
      Prefix x = pfx(s);
      if (x.addr.is_v4()) {
        u.nlri.push_back({x, 0});
        u.attrs.next_hop = testing::ip("10.52.255.253");
      } else {
        if (!u.attrs.mp_reach) {
          u.attrs.mp_reach.emplace();
          u.attrs.mp_reach->family = kIpv6Unicast;
          u.attrs.mp_reach->next_hop = testing::ip("fd00:52::1");
        }
        u.attrs.mp_reach->nlri.push_back({x, 0});
      }
    }
    gw.on_data(conn, encode_update(u, Codec{}), now);
  }
  void end_of_rib(AfiSafi f) {
    gw.on_data(conn, encode_update(end_of_rib_marker(f), Codec{}), now);
  }
  // The TCP session dies without a NOTIFICATION (the site restarts).
  void lose() {
    gw.on_closed(conn, now);
    ASSERT_NE(gw.peer(p)->state(), State::kEstablished);
  }
  bool has(const char* prefix) { return gw.rib().best(pfx(prefix)) != nullptr; }
  bool stale(const char* prefix) {
    const Path* b = gw.rib().best(pfx(prefix));
    return b && b->stale;
  }
  bool in_fib(const char* prefix) { return fib.routes.count(pfx(prefix)) != 0; }
  // Time passes while the site keeps the session up (hold time 90 s).
  void stay_up(uint64_t ms) {
    for (uint64_t t = 0; t < ms; t += 30'000) {
      gw.on_data(conn, encode_keepalive(), now);
      advance(30'000);
    }
  }
  void advance(uint64_t ms) {
    for (uint64_t t = 0; t < ms; t += 1000) {
      now += 1000;
      gw.tick(now);
    }
  }

  testing::RecordingTransport t;
  testing::RecordingFib fib;
  std::vector<AfiSafi> families = {kIpv4Unicast, kIpv6Unicast};  // the site's OPEN
  std::vector<std::string> log;
  uint64_t now = 1'000'000;
  Speaker gw;
  PeerId p = 0;
  ConnId conn = 0, next_conn = 500;
};

TEST_F(GracefulRestartTest, KeepsOnlyTheListedFamiliesForTheRestartTime) {
  connect(gr(60, {fam(kIpv4Unicast, true)}));
  announce({"10.52.0.0/16", "10.53.0.0/16", "fd00:52::/48"});
  ASSERT_TRUE(has("10.52.0.0/16") && has("fd00:52::/48"));
  lose();
  EXPECT_TRUE(stale("10.52.0.0/16"));
  EXPECT_TRUE(stale("10.53.0.0/16"));
  EXPECT_TRUE(in_fib("10.52.0.0/16"));  // still forwarded while the peer restarts
  EXPECT_FALSE(has("fd00:52::/48"));    // IPv6 was not listed: gone at once
  EXPECT_FALSE(in_fib("fd00:52::/48"));
  advance(59'000);
  EXPECT_TRUE(stale("10.52.0.0/16"));
  advance(2000);  // the restart time (60 s) passes without a new session
  EXPECT_FALSE(has("10.52.0.0/16"));
  EXPECT_FALSE(in_fib("10.53.0.0/16"));
  EXPECT_EQ(gw.rib().adj_in_count(p), 0u);
}

TEST_F(GracefulRestartTest, EndOfRibPurgesWhatWasNotAnnouncedAgainPerFamily) {
  const Families both = {fam(kIpv4Unicast, true), fam(kIpv6Unicast, true)};
  connect(gr(120, both));
  announce({"10.52.0.0/16", "10.53.0.0/16", "fd00:52::/48", "fd00:53::/48"});
  lose();
  advance(5000);
  connect(gr(120, both));
  EXPECT_TRUE(stale("10.52.0.0/16"));  // kept until the family's End-of-RIB
  announce({"10.52.0.0/16", "fd00:52::/48"});
  EXPECT_FALSE(stale("10.52.0.0/16"));  // replaced by the fresh route
  EXPECT_TRUE(stale("10.53.0.0/16"));
  end_of_rib(kIpv4Unicast);
  EXPECT_TRUE(has("10.52.0.0/16"));
  EXPECT_FALSE(has("10.53.0.0/16"));
  EXPECT_FALSE(in_fib("10.53.0.0/16"));
  EXPECT_TRUE(stale("fd00:53::/48"));  // IPv6 has not finished yet
  EXPECT_TRUE(has("fd00:52::/48"));
  end_of_rib(kIpv6Unicast);
  EXPECT_FALSE(has("fd00:53::/48"));
  EXPECT_TRUE(has("fd00:52::/48"));
  EXPECT_EQ(gw.rib().adj_in_count(p), 2u);
  stay_up(400'000);  // no timer left to fire
  EXPECT_EQ(gw.rib().adj_in_count(p), 2u);
  EXPECT_EQ(gw.peer(p)->stats().established_transitions, 2u);
}

TEST_F(GracefulRestartTest, NewOpenWithoutForwardingStateDropsThatFamily) {
  connect(gr(120, {fam(kIpv4Unicast, true), fam(kIpv6Unicast, true)}));
  announce({"10.52.0.0/16", "fd00:52::/48"});
  lose();
  EXPECT_TRUE(stale("10.52.0.0/16") && stale("fd00:52::/48"));
  // Back, but IPv4 forwarding state was lost (F = 0): those stale routes go at once.
  connect(gr(120, {fam(kIpv4Unicast, false), fam(kIpv6Unicast, true)}));
  EXPECT_FALSE(has("10.52.0.0/16"));
  EXPECT_FALSE(in_fib("10.52.0.0/16"));
  EXPECT_TRUE(stale("fd00:52::/48"));
  EXPECT_TRUE(in_fib("fd00:52::/48"));
}

TEST_F(GracefulRestartTest, NewOpenMissingAFamilyOrTheCapabilityDropsStaleRoutes) {
  connect(gr(120, {fam(kIpv4Unicast, true), fam(kIpv6Unicast, true)}));
  announce({"10.52.0.0/16", "fd00:52::/48"});
  lose();
  connect(gr(120, {fam(kIpv6Unicast, true)}));  // IPv4 no longer listed
  EXPECT_FALSE(has("10.52.0.0/16"));
  EXPECT_TRUE(stale("fd00:52::/48"));
  lose();  // again before the End-of-RIB: IPv6 stays stale, the restart time starts again
  EXPECT_TRUE(stale("fd00:52::/48"));
  connect(std::nullopt);  // no GR capability at all
  EXPECT_FALSE(has("fd00:52::/48"));
  EXPECT_EQ(gw.rib().adj_in_count(p), 0u);
}

TEST_F(GracefulRestartTest, StaleRoutesGoAfterTheStaleTimeWithoutEndOfRib) {
  connect(gr(120, {fam(kIpv4Unicast, true)}));
  announce({"10.52.0.0/16", "10.53.0.0/16"});
  lose();
  connect(gr(120, {fam(kIpv4Unicast, true)}));
  announce({"10.52.0.0/16"});
  // The restart time (120 s) no longer applies once the session is back...
  stay_up(330'000);
  EXPECT_TRUE(stale("10.53.0.0/16"));
  // ...but the stale-path time (360 s) bounds it when no End-of-RIB comes.
  stay_up(60'000);
  EXPECT_EQ(gw.peer(p)->state(), State::kEstablished);
  EXPECT_EQ(gw.peer(p)->stats().established_transitions, 2u);
  EXPECT_FALSE(has("10.53.0.0/16"));
  EXPECT_FALSE(in_fib("10.53.0.0/16"));
  EXPECT_TRUE(has("10.52.0.0/16"));
}

TEST_F(GracefulRestartTest, ANotificationEndsTheSessionWithoutKeepingRoutes) {
  connect(gr(120, {fam(kIpv4Unicast, true)}));
  announce({"10.52.0.0/16"});
  gw.on_data(conn, encode_notification({err::kCease, err::cease::kAdminReset, {}}), now);
  EXPECT_FALSE(has("10.52.0.0/16"));
}

// Issue 16.4 (a): the site restarts and reconnects while its old TCP session is silent but still
// open (its hold timer far from expiry). RFC 4724 s4.2: the old session ends as if its TCP
// connection had failed and the routes stay, stale, until the End-of-RIB (BIRD does this too);
// it used to be refused with Cease/Connection Rejected until the hold timer expired, and then
// the routes were flushed.
TEST_F(GracefulRestartTest, ReconnectWhileTheOldSessionIsOpenKeepsRoutesStale) {
  connect(gr(120, {fam(kIpv4Unicast, true)}));
  announce({"10.52.0.0/16", "10.53.0.0/16"});
  const ConnId old = conn;
  t.take(old);
  conn = ++next_conn;
  ASSERT_TRUE(gw.on_accept(conn, testing::ip("10.52.255.253"), now));
  auto sent = t.take(conn);
  ASSERT_EQ(sent.size(), 1u);  // our OPEN, no NOTIFICATION
  EXPECT_TRUE(std::holds_alternative<Open>(sent[0]));
  EXPECT_FALSE(t.closed.count(conn));
  EXPECT_EQ(gw.peer(p)->state(), State::kEstablished);  // the old session until the OPEN
  GracefulRestart back = gr(120, {fam(kIpv4Unicast, true)});
  back.restarting = true;
  Bytes both = open_msg(back);  // OPEN and KEEPALIVE in one segment
  Bytes ka = encode_keepalive();
  both.insert(both.end(), ka.begin(), ka.end());
  gw.on_data(conn, both, now);
  EXPECT_TRUE(t.closed.count(old));
  EXPECT_TRUE(t.take(old).empty());  // closed like a failed connection: no NOTIFICATION
  EXPECT_EQ(gw.peer(p)->state(), State::kEstablished);
  EXPECT_EQ(gw.peer(p)->stats().established_transitions, 2u);
  EXPECT_TRUE(stale("10.52.0.0/16"));
  EXPECT_TRUE(stale("10.53.0.0/16"));
  EXPECT_TRUE(in_fib("10.52.0.0/16"));
  announce({"10.52.0.0/16"});
  end_of_rib(kIpv4Unicast);
  EXPECT_TRUE(has("10.52.0.0/16"));
  EXPECT_FALSE(stale("10.52.0.0/16"));
  EXPECT_FALSE(has("10.53.0.0/16"));
  // The old connection's late data or close changes nothing.
  gw.on_closed(old, now);
  EXPECT_EQ(gw.peer(p)->state(), State::kEstablished);
}

// Without the capability a second connection is still refused (RFC 4271 s6.8) and the session
// stays.
TEST_F(GracefulRestartTest, SecondConnectionWithoutGracefulRestartIsRefused) {
  connect(std::nullopt);
  announce({"10.52.0.0/16"});
  const ConnId old = conn;
  const ConnId second = ++next_conn;
  EXPECT_FALSE(gw.on_accept(second, testing::ip("10.52.255.253"), now));
  auto sent = t.take(second);
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<Notification>(sent[0]));
  EXPECT_EQ(std::get<Notification>(sent[0]).code, err::kCease);
  EXPECT_EQ(std::get<Notification>(sent[0]).subcode, err::cease::kConnectionRejected);
  EXPECT_FALSE(t.closed.count(old));
  EXPECT_EQ(gw.peer(p)->state(), State::kEstablished);
  EXPECT_TRUE(has("10.52.0.0/16"));
}

// Issue 16.4 (c), RFC 2918 s4: a ROUTE-REFRESH for an AFI/SAFI the peer did not negotiate is
// ignored; it used to be answered with an End-of-RIB for that family.
TEST_F(GracefulRestartTest, RouteRefreshForAFamilyNotNegotiatedIsIgnored) {
  families = {kIpv4Unicast};
  connect(std::nullopt);
  t.take(conn);
  gw.on_data(conn, encode_route_refresh({kIpv6Unicast, 0}), now);
  EXPECT_TRUE(t.take(conn, gw.peer(p)->codec()).empty());
  EXPECT_EQ(gw.counters(p).refused_family, 1u);
  gw.on_data(conn, encode_route_refresh({kIpv4Unicast, 0}), now);
  auto m = t.take(conn, gw.peer(p)->codec());
  ASSERT_EQ(m.size(), 2u);  // 10.11.0.0/16 again, then the IPv4 End-of-RIB
  EXPECT_EQ(bgp::end_of_rib(std::get<Update>(m[1])), kIpv4Unicast);
}

// Issue 15.3: a ROUTE-REFRESH costs a 23-byte message and makes us send the family's whole table
// again. A burst of them is answered once, and a family is sent again at most once per
// kRefreshIntervalMs; the requests in between are served late, not lost.
TEST_F(GracefulRestartTest, RouteRefreshBurstIsAnsweredOnceAndRateLimited) {
  connect(std::nullopt);
  t.take(conn);
  Bytes burst;
  for (int i = 0; i < 500; ++i) {
    Bytes rr = encode_route_refresh({kIpv4Unicast, 0});
    burst.insert(burst.end(), rr.begin(), rr.end());
  }
  gw.on_data(conn, burst, now);  // one read holding 500 requests
  auto m = t.take(conn, gw.peer(p)->codec());
  ASSERT_EQ(m.size(), 2u);  // 10.11.0.0/16 again, then the IPv4 End-of-RIB: once
  EXPECT_EQ(bgp::end_of_rib(std::get<Update>(m[1])), kIpv4Unicast);
  EXPECT_EQ(gw.counters(p).route_refresh_coalesced, 499u);
  // More requests right after: nothing until the interval has passed, then one answer.
  gw.on_data(conn, encode_route_refresh({kIpv4Unicast, 0}), now);
  gw.on_data(conn, encode_route_refresh({kIpv4Unicast, 0}), now + 1);
  EXPECT_TRUE(t.take(conn, gw.peer(p)->codec()).empty());
  EXPECT_EQ(gw.counters(p).route_refresh_coalesced, 500u);
  gw.tick(now + kRefreshIntervalMs - 1);
  EXPECT_TRUE(t.take(conn, gw.peer(p)->codec()).empty());
  gw.tick(now + kRefreshIntervalMs);
  m = t.take(conn, gw.peer(p)->codec());
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(bgp::end_of_rib(std::get<Update>(m[1])), kIpv4Unicast);
  // The other family is independent.
  gw.on_data(conn, encode_route_refresh({kIpv6Unicast, 0}), now + kRefreshIntervalMs);
  m = t.take(conn, gw.peer(p)->codec());
  ASSERT_FALSE(m.empty());
  EXPECT_EQ(bgp::end_of_rib(std::get<Update>(m.back())), kIpv6Unicast);
}

// Issue 16.4 (d): why a session flapped or a route vanished shows in the log and in the peer's
// stats: transitions with their reason, NOTIFICATIONs both ways, RFC 7606 outcomes; a peer
// cannot flood the log.
TEST_F(GracefulRestartTest, TransitionsNotificationsAndRfc7606OutcomesAreVisible) {
  connect(std::nullopt);
  EXPECT_EQ(logged_lines({"peer site (10.52.255.253)", "OpenConfirm -> Established"}), 1u);
  // An UPDATE for 10.52.0.0/16 with ORIGIN, AS_PATH 65050, NEXT_HOP and then an ATOMIC_AGGREGATE
  // of the wrong flags (optional): treat-as-withdraw (RFC 7606 s3 c).
  auto update = [&](const std::string& extra) {
    Bytes body = testing::UpdateBody(
        "40010100 4002060201 0000fe1a 4003040a34fffd" + extra, "10 0a34");
    Bytes msg = testing::H(testing::kMarker);
    msg.push_back(uint8_t((body.size() + kHeaderLen) >> 8));
    msg.push_back(uint8_t(body.size() + kHeaderLen));
    msg.push_back(uint8_t(MsgType::kUpdate));
    msg.insert(msg.end(), body.begin(), body.end());
    gw.on_data(conn, msg, now);
  };
  update("");
  ASSERT_TRUE(has("10.52.0.0/16"));
  update("c00600");
  EXPECT_FALSE(has("10.52.0.0/16"));
  EXPECT_EQ(gw.counters(p).treat_as_withdraw, 1u);
  EXPECT_EQ(logged_lines({"treated as withdraw", "1 prefix", "ATOMIC_AGGREGATE", "flags"}), 1u);
  // ATOMIC_AGGREGATE of length 1: attribute discard, the route stays.
  update("40060100");
  EXPECT_TRUE(has("10.52.0.0/16"));
  EXPECT_EQ(gw.counters(p).attr_discards, 1u);
  EXPECT_EQ(logged_lines({"attribute(s) discarded", "ATOMIC_AGGREGATE"}), 1u);
  // The site resets the session.
  gw.on_data(conn, encode_notification({err::kCease, err::cease::kAdminReset, {}}), now);
  const PeerStats& st = gw.peer(p)->stats();
  EXPECT_EQ(st.last_notification_received.code, err::kCease);
  EXPECT_EQ(st.last_notification_received.subcode, err::cease::kAdminReset);
  EXPECT_EQ(st.last_notification_received.name, error_name(err::kCease, err::cease::kAdminReset));
  EXPECT_EQ(st.last_notification_received.at_ms, now);
  EXPECT_NE(st.last_transition.find("Established -> Idle: NOTIFICATION received: Cease"),
            std::string::npos)
      << st.last_transition;
  EXPECT_EQ(st.last_transition_ms, now);
  EXPECT_EQ(st.sessions_lost, 1u);
  EXPECT_EQ(logged_lines({"): NOTIFICATION received: Cease"}), 1u);
  EXPECT_EQ(logged_lines({"Established -> Idle", "NOTIFICATION received"}), 1u);
  // Back, then silent: our hold timer expires and we say so.
  connect(std::nullopt);
  advance(91'000);
  EXPECT_EQ(st.last_notification_sent.code, err::kHoldTimer);
  EXPECT_EQ(st.notifications_sent, 1u);
  EXPECT_EQ(st.sessions_lost, 2u);
  EXPECT_EQ(logged_lines({"): NOTIFICATION sent: Hold Timer"}), 1u);
  EXPECT_EQ(logged_lines({"Established -> Idle: hold timer expired"}), 1u);
  // A malformed UPDATE that resets the session is counted as an RFC 7606 session reset.
  connect(std::nullopt);
  update("800e03000201");  // MP_REACH_NLRI cut short: session reset (RFC 7606 s7.11)
  EXPECT_NE(gw.peer(p)->state(), State::kEstablished);
  EXPECT_EQ(st.update_error_resets, 1u);
  // Flapping many times within a minute: the log stays bounded, and says what it left out.
  log.clear();
  const uint64_t start = now;
  for (int i = 0; i < 50; ++i) {  // 6 transitions and a NOTIFICATION each
    connect(std::nullopt);
    gw.on_data(conn, encode_notification({err::kCease, err::cease::kAdminReset, {}}), now);
  }
  const uint64_t windows = (now - start) / kLogWindowMs + 1;
  EXPECT_LT(windows, 4u);
  EXPECT_LE(log.size(), windows * kLogBurst);
  now += kLogWindowMs;
  connect(std::nullopt);
  EXPECT_GE(logged_lines({"earlier line(s) suppressed"}), 1u);
}

}  // namespace
}  // namespace espgw::bgp
