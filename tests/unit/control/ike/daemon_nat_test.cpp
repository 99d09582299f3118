// IKE daemon tests (fixture: daemon_pair.h): NAT traversal. Forced UDP encapsulation (port
// 4500), and following a new NAT mapping only on a new authenticated request.
#include "tests/unit/control/ike/daemon_pair.h"

namespace espgw::ike::test {
namespace {

TEST_F(Pair, ForcedUdpEncapsulationFloatsTo4500) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  ca.force_encap = true;
  start(std::move(ca), std::move(cb));
  connect();
  ASSERT_TRUE(a.d->connected("to-b"));
  IkeSa* sa = a.d->established_sa("to-b");
  EXPECT_EQ(sa->local.port, 4500);
  EXPECT_EQ(sa->remote.port, 4500);
  EXPECT_TRUE(b.d->established_sa("to-a")->nat_remote);
  for (auto* k : {&a.kernel, &b.kernel})
    for (auto& [spi, s] : k->out) {
      EXPECT_TRUE(s.udp_encap);
      EXPECT_EQ(s.sport, 4500);
      EXPECT_EQ(s.dport, 4500);
    }
  size_t ka = 0;
  run_for(tun.keepalive_ms + 200, 200);
  for (auto& p : sent_log) ka += p.keepalive;
  EXPECT_GE(ka, 1u);
  expect_keys_match();
}

// 15.6: a replayed request from another address does not redirect the IKE SA (the message ID
// check comes first); a new authenticated request from a new NAT mapping does, and the Child SA's
// outbound SA follows it.
TEST_F(Pair, NatUpdateOnlyOnNewAuthenticatedRequest) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  ca.force_encap = true;  // b sees a as behind a NAT
  start(std::move(ca), std::move(cb));
  connect();
  IkeSa* sb = b.d->established_sa("to-a");
  ASSERT_TRUE(sb && sb->nat_remote);
  Endpoint orig = sb->remote;
  ASSERT_EQ(orig.port, 4500);
  IkeSa* sa = a.d->established_sa("to-b");
  // a liveness check a -> b, recorded, then replayed from a spoofed address and port.
  sa->tm.queue(make_dpd());
  sa->tm.initiate(*a.d, *sa);
  ASSERT_EQ(wire.size(), 1u);
  Packet req = wire.front();
  deliver();
  Endpoint spoofed{*IpAddr::parse("203.0.113.66"), 31337};
  b.d->receive(req.to, spoofed, req.data);
  wire.clear();
  EXPECT_EQ(sb->remote, orig) << "a replayed request redirected the IKE SA";
  for (auto& [spi, s] : b.kernel.out) EXPECT_EQ(s.dport, 4500);
  // A new request from a's new mapping (port 4501).
  sa->tm.queue(make_dpd());
  sa->tm.initiate(*a.d, *sa);
  ASSERT_EQ(wire.size(), 1u);
  Packet next = wire.front();
  wire.clear();
  Endpoint moved{a.addr, 4501};
  b.d->receive(next.to, moved, next.data);
  EXPECT_EQ(sb->remote, moved);
  ASSERT_EQ(wire.size(), 1u);
  EXPECT_EQ(wire.front().to, moved);  // the response goes to the new mapping
  ASSERT_EQ(b.kernel.out.size(), 1u);
  EXPECT_EQ(b.kernel.out.begin()->second.dport, 4501) << "the Child SA did not follow";
  EXPECT_EQ(b.kernel.moves, 1);
  wire.clear();
}

// Without a NAT, a new authenticated request from another address does not move the IKE SA.
TEST_F(Pair, NoNatNoAddressUpdate) {
  start_default();
  connect();
  IkeSa* sb = b.d->established_sa("to-a");
  Endpoint orig = sb->remote;
  IkeSa* sa = a.d->established_sa("to-b");
  sa->tm.queue(make_dpd());
  sa->tm.initiate(*a.d, *sa);
  Packet req = wire.front();
  wire.clear();
  b.d->receive(req.to, {a.addr, 4501}, req.data);
  EXPECT_EQ(sb->remote, orig);
  EXPECT_EQ(b.kernel.moves, 0);
  wire.clear();
}

}  // namespace
}  // namespace espgw::ike::test
