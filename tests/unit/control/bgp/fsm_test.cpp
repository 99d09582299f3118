// The RFC 4271 FSM of one peer, driven by hand: a recording transport and an integer clock.
#include "control/bgp/fsm.h"

#include <gtest/gtest.h>

#include "tests/unit/control/bgp/bgp_sim.h"

namespace espgw::bgp {
namespace {

using testing::ip;
using testing::RecordingOwner;
using testing::RecordingTransport;

class FsmTest : public ::testing::Test {
 protected:
  FsmTest() {
    local.asn = 65010;
    local.router_id = ip("10.12.255.4").v4_host();
    cfg = testing::peer_cfg("site5", "10.52.255.253", 65050, "10.12.255.4");
    cfg.hold_time = 90;
    cfg.keepalive = 30;
  }
  void make() { peer = std::make_unique<Peer>(1, cfg, local, t, owner); }

  Bytes open_from_peer(uint32_t asn = 65050, uint16_t hold = 180, const char* id = "10.52.255.253") {
    Capabilities caps;
    caps.multiprotocol = {kIpv4Unicast, kIpv6Unicast};
    caps.route_refresh = true;
    return encode_open(Open::make(asn, hold, ip(id).v4_host(), caps));
  }
  // Drives an active open to Established on connection c.
  ConnId establish() {
    make();
    peer->start(now);
    EXPECT_EQ(peer->state(), State::kConnect);
    ConnId c = t.connects.back();
    peer->connected(c, now);
    EXPECT_EQ(peer->state(), State::kOpenSent);
    peer->data(c, open_from_peer(), now);
    EXPECT_EQ(peer->state(), State::kOpenConfirm);
    peer->data(c, encode_keepalive(), now);
    EXPECT_EQ(peer->state(), State::kEstablished);
    return c;
  }
  static std::optional<Notification> notification(const std::vector<Message>& v) {
    for (const auto& m : v)
      if (auto* n = std::get_if<Notification>(&m)) return *n;
    return std::nullopt;
  }

  LocalSpeaker local;
  PeerConfig cfg;
  RecordingTransport t;
  RecordingOwner owner;
  std::unique_ptr<Peer> peer;
  uint64_t now = 1'000'000;
};

TEST_F(FsmTest, ActiveOpenReachesEstablished) {
  ConnId c = establish();
  auto sent = t.take(c);
  ASSERT_EQ(sent.size(), 2u);  // OPEN, KEEPALIVE
  const auto& o = std::get<Open>(sent[0]);
  EXPECT_EQ(o.asn(), 65010u);
  EXPECT_EQ(o.hold_time, 90);
  EXPECT_EQ(o.bgp_id, local.router_id);
  EXPECT_EQ(o.caps.multiprotocol, (std::vector<AfiSafi>{kIpv4Unicast, kIpv6Unicast}));
  EXPECT_TRUE(o.caps.route_refresh);
  EXPECT_TRUE(o.caps.graceful_restart.has_value());
  EXPECT_TRUE(std::holds_alternative<Keepalive>(sent[1]));
  EXPECT_EQ(owner.established, 1);
  EXPECT_EQ(peer->negotiated_hold(), 90);  // min(90, 180)
  EXPECT_TRUE(peer->codec().as4);
  EXPECT_TRUE(peer->family_enabled(kIpv6Unicast));
}

TEST_F(FsmTest, PassiveOpenAcceptsIncoming) {
  cfg.passive = true;
  make();
  peer->start(now);
  EXPECT_EQ(peer->state(), State::kActive);
  EXPECT_TRUE(t.connects.empty());
  EXPECT_TRUE(peer->accept(7, now));
  EXPECT_EQ(peer->state(), State::kOpenSent);
  peer->data(7, open_from_peer(), now);
  peer->data(7, encode_keepalive(), now);
  EXPECT_EQ(peer->state(), State::kEstablished);
}

TEST_F(FsmTest, IdleRefusesConnections) {
  make();
  EXPECT_FALSE(peer->accept(7, now));
  EXPECT_TRUE(t.closed.count(7));
}

TEST_F(FsmTest, KeepalivesAndHoldTimerExpiry) {
  ConnId c = establish();
  t.take(c);
  // Keepalive every 30 s (hold 90): no real time passes, only the injected clock.
  now += 30'000;
  peer->tick(now);
  auto sent = t.take(c);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<Keepalive>(sent[0]));
  // A KEEPALIVE from the peer restarts the hold timer.
  now += 50'000;
  peer->data(c, encode_keepalive(), now);
  EXPECT_EQ(peer->hold_deadline(), now + 90'000);
  now += 89'999;
  peer->tick(now);
  EXPECT_EQ(peer->state(), State::kEstablished);
  now += 1;
  peer->tick(now);
  EXPECT_EQ(peer->state(), State::kIdle);
  auto n = notification(t.take(c));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->code, err::kHoldTimer);
  EXPECT_EQ(owner.down, 1);
  EXPECT_FALSE(owner.last_graceful);
  EXPECT_TRUE(t.closed.count(c));
  EXPECT_NE(peer->stats().last_error.find("Hold Timer"), std::string::npos)
      << peer->stats().last_error;
}

TEST_F(FsmTest, HoldTimeZeroMeansNoKeepalives) {
  cfg.hold_time = 0;
  make();
  peer->start(now);
  ConnId c = t.connects.back();
  peer->connected(c, now);
  peer->data(c, open_from_peer(), now);
  peer->data(c, encode_keepalive(), now);
  EXPECT_EQ(peer->state(), State::kEstablished);
  EXPECT_EQ(peer->hold_deadline(), 0u);
  EXPECT_EQ(peer->keepalive_deadline(), 0u);
}

TEST_F(FsmTest, BadPeerAsIsRefused) {
  make();
  peer->start(now);
  ConnId c = t.connects.back();
  peer->connected(c, now);
  t.take(c);
  peer->data(c, open_from_peer(65099), now);
  EXPECT_EQ(peer->state(), State::kIdle);
  auto n = notification(t.take(c));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->code, err::kOpen);
  EXPECT_EQ(n->subcode, err::open::kBadPeerAs);
}

TEST_F(FsmTest, UnacceptableHoldTime) {
  make();
  peer->start(now);
  ConnId c = t.connects.back();
  peer->connected(c, now);
  t.take(c);
  peer->data(c, open_from_peer(65050, 2), now);
  auto n = notification(t.take(c));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->subcode, err::open::kUnacceptableHoldTime);
}

TEST_F(FsmTest, UpdateInOpenSentIsAnFsmError) {
  make();
  peer->start(now);
  ConnId c = t.connects.back();
  peer->connected(c, now);
  t.take(c);
  peer->data(c, encode_update(end_of_rib_marker(kIpv4Unicast), {}), now);
  auto n = notification(t.take(c));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->code, err::kFsm);
  EXPECT_EQ(n->subcode, err::fsm::kUnexpectedInOpenSent);
  EXPECT_EQ(peer->state(), State::kIdle);
}

TEST_F(FsmTest, OpenInEstablishedIsAnFsmError) {
  ConnId c = establish();
  t.take(c);
  peer->data(c, open_from_peer(), now);
  auto n = notification(t.take(c));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->subcode, err::fsm::kUnexpectedInEstablished);
}

TEST_F(FsmTest, BadHeaderSendsHeaderError) {
  ConnId c = establish();
  t.take(c);
  Bytes junk(19, 0);  // marker not all ones
  peer->data(c, junk, now);
  auto n = notification(t.take(c));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->code, err::kHeader);
  EXPECT_EQ(peer->state(), State::kIdle);
}

TEST_F(FsmTest, MessagesSplitAcrossReadsAreReassembled) {
  make();
  peer->start(now);
  ConnId c = t.connects.back();
  peer->connected(c, now);
  Bytes both = open_from_peer();
  Bytes ka = encode_keepalive();
  both.insert(both.end(), ka.begin(), ka.end());
  for (uint8_t b : both) peer->data(c, std::span<const uint8_t>(&b, 1), now);
  EXPECT_EQ(peer->state(), State::kEstablished);
  EXPECT_EQ(peer->stats().msgs_in, 2u);
}

TEST_F(FsmTest, NotificationReceivedGoesIdleAndRestartsAfterIdleHold) {
  ConnId c = establish();
  peer->data(c, encode_notification({err::kCease, err::cease::kAdminReset, {}}), now);
  EXPECT_EQ(peer->state(), State::kIdle);
  EXPECT_EQ(owner.down, 1);
  EXPECT_NE(peer->stats().last_error.find("received"), std::string::npos);
  // Automatic restart after the (jittered) idle hold time, 1 s at first.
  uint64_t at = peer->idle_hold_deadline();
  EXPECT_GE(at, now + 750);
  EXPECT_LE(at, now + 1000);
  size_t attempts = t.connects.size();
  peer->tick(at - 1);
  EXPECT_EQ(t.connects.size(), attempts);
  peer->tick(at);
  EXPECT_EQ(peer->state(), State::kConnect);
  EXPECT_EQ(t.connects.size(), attempts + 1);
}

TEST_F(FsmTest, IdleHoldBacksOffOnRepeatedFailures) {
  make();
  peer->start(now);
  uint64_t prev = 0;
  for (int i = 0; i < 4; ++i) {
    ConnId c = t.connects.back();
    peer->connected(c, now);
    peer->data(c, open_from_peer(65099), now);  // refused -> Idle
    ASSERT_EQ(peer->state(), State::kIdle);
    uint64_t wait = peer->idle_hold_deadline() - now;
    EXPECT_GT(wait, prev) << "attempt " << i;
    prev = wait;
    now = peer->idle_hold_deadline();
    peer->tick(now);
  }
  EXPECT_GT(prev, 4000u);  // 1, 2, 4, 8 s (jitter 75..100%)
}

TEST_F(FsmTest, ConnectRetryWithBackOff) {
  make();
  peer->start(now);
  ConnId c1 = t.connects.back();
  peer->connect_failed(c1, now);
  EXPECT_EQ(peer->state(), State::kActive);
  uint64_t first = peer->connect_retry_deadline() - now;
  EXPECT_GE(first, 3750u);
  EXPECT_LE(first, 5000u);
  now = peer->connect_retry_deadline();
  peer->tick(now);
  EXPECT_EQ(peer->state(), State::kConnect);
  EXPECT_EQ(t.connects.size(), 2u);
  uint64_t second = peer->connect_retry_deadline() - now;
  EXPECT_GE(second, 7500u);  // doubled
  EXPECT_LE(second, 10000u);
  // A connect that never completes is abandoned when the timer fires again.
  now = peer->connect_retry_deadline();
  peer->tick(now);
  EXPECT_TRUE(t.closed.count(t.connects[1]));
  EXPECT_EQ(t.connects.size(), 3u);
}

TEST_F(FsmTest, IncomingWhileConnectingReplacesTheAttempt) {
  make();
  peer->start(now);
  ConnId out = t.connects.back();
  EXPECT_TRUE(peer->accept(9, now));
  EXPECT_TRUE(t.closed.count(out));
  EXPECT_EQ(peer->state(), State::kOpenSent);
  EXPECT_TRUE(std::holds_alternative<Open>(t.take(9).at(0)));
}

// RFC 4271 s6.8: two connections, the BGP Identifiers decide which one stays.
TEST_F(FsmTest, CollisionRemoteHigherIdKeepsTheRemotesConnection) {
  make();
  peer->start(now);
  ConnId out = t.connects.back();
  peer->connected(out, now);  // OpenSent on our connection
  EXPECT_TRUE(peer->accept(9, now));  // theirs
  EXPECT_TRUE(std::holds_alternative<Open>(t.take(9).at(0)));
  t.take(out);
  peer->data(9, open_from_peer(65050, 180, "10.200.0.1"), now);  // higher than 10.12.255.4
  EXPECT_EQ(peer->state(), State::kOpenConfirm);
  auto n = notification(t.take(out));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->code, err::kCease);
  EXPECT_EQ(n->subcode, err::cease::kCollisionResolution);
  EXPECT_TRUE(t.closed.count(out));
  EXPECT_FALSE(t.closed.count(9));
  peer->data(9, encode_keepalive(), now);
  EXPECT_EQ(peer->state(), State::kEstablished);
}

TEST_F(FsmTest, CollisionLocalHigherIdKeepsOurConnection) {
  make();
  peer->start(now);
  ConnId out = t.connects.back();
  peer->connected(out, now);
  EXPECT_TRUE(peer->accept(9, now));
  t.take(9);
  peer->data(9, open_from_peer(65050, 180, "10.1.0.1"), now);  // lower than ours
  auto n = notification(t.take(9));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->subcode, err::cease::kCollisionResolution);
  EXPECT_TRUE(t.closed.count(9));
  EXPECT_FALSE(t.closed.count(out));
  EXPECT_EQ(peer->state(), State::kOpenSent);
  peer->data(out, open_from_peer(65050, 180, "10.1.0.1"), now);
  peer->data(out, encode_keepalive(), now);
  EXPECT_EQ(peer->state(), State::kEstablished);
}

TEST_F(FsmTest, IncomingInEstablishedIsRejected) {
  establish();
  EXPECT_FALSE(peer->accept(9, now));
  auto n = notification(t.take(9));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->subcode, err::cease::kConnectionRejected);
  EXPECT_EQ(peer->state(), State::kEstablished);
}

TEST_F(FsmTest, TransportLossWithGracefulRestartIsGraceful) {
  make();
  peer->start(now);
  ConnId c = t.connects.back();
  peer->connected(c, now);
  Capabilities caps;
  caps.multiprotocol = {kIpv4Unicast};
  caps.graceful_restart = GracefulRestart{false, false, 120, {}};
  peer->data(c, encode_open(Open::make(65050, 180, 1, caps)), now);
  peer->data(c, encode_keepalive(), now);
  ASSERT_EQ(peer->state(), State::kEstablished);
  peer->closed(c, now);
  EXPECT_EQ(peer->state(), State::kIdle);
  EXPECT_EQ(owner.down, 1);
  EXPECT_TRUE(owner.last_graceful);
}

TEST_F(FsmTest, StopSendsCeaseAndStaysIdle) {
  ConnId c = establish();
  t.take(c);
  peer->stop(now);
  auto n = notification(t.take(c));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->code, err::kCease);
  EXPECT_EQ(n->subcode, err::cease::kAdminShutdown);
  now += 600'000;
  peer->tick(now);
  EXPECT_EQ(peer->state(), State::kIdle);
}

TEST_F(FsmTest, UpdatesReachTheOwnerOnlyInEstablished) {
  ConnId c = establish();
  Update u;
  u.attrs.origin = Origin::kIgp;
  u.attrs.as_path = AsPath::sequence({65050});
  u.attrs.next_hop = ip("10.52.255.253");
  u.nlri = {nlri("10.52.0.0/16")};
  peer->data(c, encode_update(u, peer->codec()), now);
  ASSERT_EQ(owner.updates.size(), 1u);
  EXPECT_EQ(owner.updates[0].nlri, u.nlri);
  EXPECT_EQ(peer->stats().updates_in, 1u);
}

}  // namespace
}  // namespace espgw::bgp
