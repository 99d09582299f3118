// IKE daemon tests (fixture: daemon_pair.h): both sides initiating at once. Duplicate IKE SAs
// resolved by either side, a duplicate lost to DPD, and INITIAL_CONTACT (simultaneous start vs
// a restarted peer).
#include "tests/unit/control/ike/daemon_pair.h"

namespace espgw::ike::test {
namespace {

TEST_F(Pair, BothInitiateAtOnceLeavesOneIkeSa) {
  start_default(/*b_initiates=*/true);
  tick_both();  // both send IKE_SA_INIT before seeing the other's
  deliver();
  run_for(2000);
  EXPECT_TRUE(a.d->connected("to-b"));
  EXPECT_TRUE(b.d->connected("to-a"));
  ASSERT_EQ(a.d->ike_sas("to-b").size(), 1u);
  ASSERT_EQ(b.d->ike_sas("to-a").size(), 1u);
  EXPECT_TRUE(a.d->ike_sas("to-b")[0]->initiator);  // the one the lower address initiated stays
  EXPECT_FALSE(b.d->ike_sas("to-a")[0]->initiator);
  EXPECT_EQ(a.kernel.in.size(), 1u);
  EXPECT_EQ(b.kernel.in.size(), 1u);
  expect_keys_match();
  EXPECT_EQ(a.kernel.downs, 0);
  EXPECT_TRUE(a.d->status()[0].last_error.empty());
}

// Both sides initiate at once and the side that should delete its duplicate does not (strongSwan
// never does; here its DELETEs are lost): the other side deletes it, whatever the address order.
class Duplicates : public Pair, public ::testing::WithParamInterface<bool> {};
TEST_P(Duplicates, ResolvedByEitherSide) {
  bool mute_b = GetParam();  // b has the higher address
  start_default(/*b_initiates=*/true);
  const Peer& mute = mute_b ? b : a;
  drop = [&](const Packet& p) {
    return p.from.addr == mute.addr && ex_of(p) == ExchangeType::kInformational && !is_response(p);
  };
  tick_both();  // both send IKE_SA_INIT before seeing the other's
  deliver();
  run_for(3000);
  drop = nullptr;
  ASSERT_EQ(a.d->ike_sas("to-b").size(), 1u);
  ASSERT_EQ(b.d->ike_sas("to-a").size(), 1u);
  EXPECT_EQ(a.d->ike_sas("to-b")[0]->spi_i, b.d->ike_sas("to-a")[0]->spi_i);
  EXPECT_TRUE(a.d->ike_sas("to-b")[0]->initiator);  // the one the lower address initiated stays
  EXPECT_TRUE(a.d->connected("to-b"));
  EXPECT_TRUE(b.d->connected("to-a"));
  EXPECT_EQ(a.kernel.in.size(), 1u);
  EXPECT_EQ(b.kernel.in.size(), 1u);
  expect_keys_match();
  EXPECT_EQ(a.kernel.downs, 0);
  EXPECT_EQ(b.kernel.downs, 0);
  run_for(60000);  // liveness checks on the survivor only: nobody is declared dead
  for (Peer* p : {&a, &b})
    for (auto& [c, e] : p->events) EXPECT_NE(e, ConnEvent::kDeadPeer) << p->name;
  EXPECT_TRUE(a.d->connected("to-b"));
}
INSTANTIATE_TEST_SUITE_P(Pair, Duplicates, ::testing::Bool());

// A duplicate IKE SA that dies of a failed liveness check while the other one carries the
// connection is not a dead peer.
TEST_F(Pair, DuplicateLostByDpdIsNoDeadPeer) {
  start_default(/*b_initiates=*/true);
  drop = [&](const Packet& p) { return ex_of(p) == ExchangeType::kInformational; };
  tick_both();
  deliver();
  auto sas = a.d->ike_sas("to-b");
  ASSERT_EQ(sas.size(), 2u);
  IkeSa* dup = sas[0]->initiator ? sas[1] : sas[0];  // the one b initiated (its DELETE is lost)
  a.events.clear();
  a.d->fail(*dup, "DPD: peer did not answer", /*dead_peer=*/true);
  EXPECT_TRUE(a.d->connected("to-b"));
  for (auto& [c, e] : a.events) EXPECT_NE(e, ConnEvent::kDeadPeer);
  EXPECT_EQ(count_lines(a, "peer is dead"), 0u);
}

// INITIAL_CONTACT in the IKE_AUTH of a simultaneous initiation does not make the responder drop
// the IKE SA it initiated itself and the peer holds (that would orphan the peer's half).
TEST_F(Pair, InitialContactDoesNotOrphanSimultaneousSa) {
  start_default(/*b_initiates=*/true);
  tick_both();
  deliver();
  run_for(3000);
  // Every IKE SA either side ever had was deleted with a DELETE both sides saw, or is alive on
  // both.
  EXPECT_EQ(count_lines(a, "replaced (INITIAL_CONTACT)"), 0u);
  EXPECT_EQ(count_lines(b, "replaced (INITIAL_CONTACT)"), 0u);
  ASSERT_EQ(a.d->ike_sas("to-b").size(), 1u);
  ASSERT_EQ(b.d->ike_sas("to-a").size(), 1u);
}

// Simultaneous start where one IKE SA completes on both sides before the other's IKE_AUTH is
// processed: that IKE_AUTH carries no INITIAL_CONTACT (we had another IKE SA with the peer in the
// making), and one that does (a peer deciding otherwise) does not make the receiver drop the
// completed SA quietly, which would orphan the peer's half.
TEST_F(Pair, InitialContactInSimultaneousStartKeepsPeersSa) {
  start_default(/*b_initiates=*/true);
  auto step = [&](const Peer& from, ExchangeType ex, bool resp) {
    for (auto it = wire.begin(); it != wire.end(); ++it)
      if (it->from.addr == from.addr && ex_of(*it) == ex && is_response(*it) == resp) {
        Packet p = *it;
        wire.erase(it);
        return p;
      }
    ADD_FAILURE() << "no such packet";
    return Packet{};
  };
  auto to_peer = [&](const Packet& p) {
    Peer& to = p.to.addr == a.addr ? a : b;
    to.d->receive(p.to, p.from, p.data);
  };
  tick_both();
  to_peer(step(a, ExchangeType::kIkeSaInit, false));  // A: a -> b
  to_peer(step(b, ExchangeType::kIkeSaInit, false));  // B: b -> a
  to_peer(step(b, ExchangeType::kIkeSaInit, true));   // A answered: a sends IKE_AUTH(A)
  to_peer(step(a, ExchangeType::kIkeSaInit, true));   // B answered: b sends IKE_AUTH(B)
  to_peer(step(a, ExchangeType::kIkeAuth, false));    // A established on b
  to_peer(step(b, ExchangeType::kIkeAuth, true));     // A established on a
  Packet auth_b = step(b, ExchangeType::kIkeAuth, false);
  IkeSa *a_resp = nullptr, *b_init = nullptr;
  for (IkeSa* x : a.d->ike_sas("to-b"))
    if (!x->initiator) a_resp = x;
  for (IkeSa* x : b.d->ike_sas("to-a"))
    if (x->initiator) b_init = x;
  ASSERT_TRUE(a_resp && b_init);
  Message m;
  ASSERT_TRUE(a_resp->sk->in->unprotect(auth_b.data, m).ok());
  EXPECT_FALSE(m.notify(NotifyType::kInitialContact));
  // As if the peer had sent INITIAL_CONTACT anyway (the AUTH payload does not cover it).
  std::vector<Payload> inner = m.payloads;
  inner.insert(inner.begin() + 1, make_payload(NotifyPayload::make(NotifyType::kInitialContact)));
  auto forged = b_init->sk->out->protect(m.hdr, inner);
  ASSERT_TRUE(forged);
  auth_b.data = *forged;
  to_peer(auth_b);
  deliver();
  run_for(3000);
  EXPECT_EQ(count_lines(a, "replaced (INITIAL_CONTACT)"), 0u);
  ASSERT_EQ(a.d->ike_sas("to-b").size(), 1u);
  ASSERT_EQ(b.d->ike_sas("to-a").size(), 1u);
  EXPECT_EQ(a.d->ike_sas("to-b")[0]->spi_i, b.d->ike_sas("to-a")[0]->spi_i);
  EXPECT_TRUE(a.d->connected("to-b"));
  EXPECT_TRUE(b.d->connected("to-a"));
  expect_keys_match();
}

// A rebooted peer (INITIAL_CONTACT on a new IKE SA long after ours) still replaces the old SA.
TEST_F(Pair, InitialContactAfterPeerRestartReplacesOldSa) {
  start_default();
  connect();
  uint64_t old = b.d->established_sa("to-a")->spi_r;
  now += 5000;
  // a "reboots": a fresh daemon with the same configuration initiates again.
  a.kernel = FakeKernel(0x5000);
  a.d = std::make_unique<Daemon>(env_for(a), a.kernel, tun);
  a.d->add_connection(conn(a, b));
  connect();
  run_for(1000);
  ASSERT_EQ(b.d->ike_sas("to-a").size(), 1u);
  EXPECT_NE(b.d->ike_sas("to-a")[0]->spi_r, old);
  EXPECT_TRUE(a.d->connected("to-b"));
  expect_keys_match();
}

}  // namespace
}  // namespace espgw::ike::test
