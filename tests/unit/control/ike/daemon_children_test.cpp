// IKE daemon tests (fixture: daemon_pair.h): Child SA life cycle. Re-creating a deleted or
// expired Child SA, refusals and back-off (also inside IKE_AUTH), child-less IKE SAs, the Child SA
// cap, and reserved SPIs released on every failure path.
#include "tests/unit/control/ike/daemon_pair.h"

namespace espgw::ike::test {
namespace {

// The peer deletes the only Child SA: the connection goes down, and the initiating side creates
// a new Child SA over the same IKE SA (no REKEY_SA), routes and kernel SAs come back.
TEST_F(Pair, PeerDeletesChildSa) {
  start_default();
  connect();
  uint64_t ike_spi = a.d->established_sa("to-b")->spi_i;
  uint32_t old_in = a.d->established_sa("to-b")->children[0].spi_in;
  IkeSa* sb = b.d->established_sa("to-a");
  sb->tm.queue(make_child_delete({sb->children[0].spi_in}));
  sb->tm.initiate(*b.d, *sb);
  deliver();
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_FALSE(b.d->connected("to-a"));
  EXPECT_FALSE(a.kernel.up);  // routes withdrawn
  EXPECT_FALSE(b.kernel.up);
  EXPECT_TRUE(a.kernel.out.empty() && b.kernel.out.empty());
  run_for(tun.drain_ms + 200);
  ASSERT_TRUE(a.d->connected("to-b"));
  EXPECT_TRUE(b.d->connected("to-a"));
  EXPECT_TRUE(a.kernel.up && b.kernel.up);
  EXPECT_EQ(a.kernel.ups, 2);
  EXPECT_EQ(a.kernel.in.size(), 1u);
  EXPECT_EQ(b.kernel.in.size(), 1u);
  EXPECT_EQ(a.kernel.out.size(), 1u);
  EXPECT_EQ(b.kernel.out.size(), 1u);
  EXPECT_FALSE(a.kernel.in.count(old_in));
  expect_keys_match();
  ASSERT_EQ(a.d->ike_sas("to-b").size(), 1u);  // the same IKE SA
  EXPECT_EQ(a.d->ike_sas("to-b")[0]->spi_i, ike_spi);
  EXPECT_EQ(b.d->ike_sas("to-a").size(), 1u);
  // The new Child SA rekeys like any other.
  ASSERT_TRUE(a.d->rekey_child("to-b"));
  deliver();
  run_for(tun.drain_ms + 200);
  expect_keys_match();
  EXPECT_EQ(a.kernel.in.size(), 1u);
}

// A responder-only side does not re-create the Child SA; its peer (which initiates) does.
TEST_F(Pair, InitiatorDeletesChildSaResponderOnlyWaits) {
  start_default();
  connect();
  IkeSa* sa = a.d->established_sa("to-b");
  sa->tm.queue(make_child_delete({sa->children[0].spi_in}));
  sa->tm.initiate(*a.d, *sa);
  deliver();
  EXPECT_FALSE(b.kernel.up);
  run_for(tun.drain_ms + 200);
  // A initiates the connection: A re-creates it.
  EXPECT_TRUE(a.d->connected("to-b"));
  EXPECT_TRUE(b.d->connected("to-a"));
  expect_keys_match();
}

// Both sides initiate the connection and re-create the Child SA at the same time: one survives.
TEST_F(Pair, BothSidesRecreateChildSaAtOnce) {
  start_default(/*b_initiates=*/true);
  a.d->tick();  // only A initiates the IKE SA; B then has one and does not start another
  deliver();
  ASSERT_TRUE(b.d->connected("to-a"));
  ASSERT_EQ(b.d->ike_sas("to-a").size(), 1u);
  IkeSa* sb = b.d->established_sa("to-a");
  sb->tm.queue(make_child_delete({sb->children[0].spi_in}));
  sb->tm.initiate(*b.d, *sb);
  deliver();
  EXPECT_FALSE(a.kernel.up || b.kernel.up);
  size_t before = sent_log.size();
  run_for(tun.drain_ms + 1000);
  int creates = 0;
  for (size_t i = before; i < sent_log.size(); ++i)
    creates += !sent_log[i].keepalive && !is_response(sent_log[i]) &&
               ex_of(sent_log[i]) == ExchangeType::kCreateChildSa;
  EXPECT_EQ(creates, 2);  // both tried, both succeeded
  EXPECT_EQ(a.d->status()[0].last_error.find("not created"), std::string::npos);
  EXPECT_EQ(b.d->status()[0].last_error.find("not created"), std::string::npos);
  EXPECT_TRUE(a.d->connected("to-b"));
  EXPECT_TRUE(b.d->connected("to-a"));
  EXPECT_EQ(a.kernel.in.size(), 1u);
  EXPECT_EQ(b.kernel.in.size(), 1u);
  EXPECT_EQ(a.kernel.out.size(), 1u);
  EXPECT_EQ(b.kernel.out.size(), 1u);
  expect_keys_match();
}

// The Child SA hits its hard lifetime without a rekey: it is deleted and a new one created.
TEST_F(Pair, ChildSaExpiryCreatesNewChild) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  ca.child_lifetime_s = 20;
  start(std::move(ca), std::move(cb));
  connect();
  IkeSa* sa = a.d->established_sa("to-b");
  uint32_t first = a.kernel.current_out;
  sa->children[0].rekey_ms = sa->children[0].expire_ms + 100000;  // "rekeying kept failing"
  run_for(20000);
  EXPECT_FALSE(a.kernel.out.count(first));
  EXPECT_NE(a.d->status()[0].last_error.find("expired"), std::string::npos);
  run_for(tun.drain_ms + 1000);
  ASSERT_TRUE(a.d->connected("to-b"));
  EXPECT_TRUE(b.kernel.up);
  EXPECT_NE(a.kernel.current_out, first);
  EXPECT_EQ(a.kernel.in.size(), 1u);
  EXPECT_EQ(b.kernel.in.size(), 1u);
  expect_keys_match();
}

// The peer refuses the new Child SA: retried with a back-off, the IKE SA stays.
TEST_F(Pair, ChildCreateRefusedIsRetried) {
  start_default();
  connect();
  IkeSa* sb = b.d->established_sa("to-a");
  sb->tm.queue(make_child_delete({sb->children[0].spi_in}));
  sb->tm.initiate(*b.d, *sb);
  deliver();
  b.kernel.fail_add = true;  // B cannot install: NO_PROPOSAL_CHOSEN
  run_for(3000);
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_NE(a.d->status()[0].last_error.find("Child SA not created"), std::string::npos);
  EXPECT_EQ(a.d->ike_sas("to-b").size(), 1u);
  // Every refused attempt gave its SPI back, on both sides (the old Child SA has drained).
  EXPECT_GE(a.kernel.next_spi - 0x1000, 3u);  // IKE_AUTH's SPI and several attempts
  EXPECT_EQ(a.kernel.leaked_spis(), 0u);
  EXPECT_EQ(b.kernel.leaked_spis(), 0u);
  EXPECT_TRUE(a.kernel.reserved.empty());
  b.kernel.fail_add = false;
  run_for(20000, 500);
  EXPECT_TRUE(a.d->connected("to-b"));
  expect_keys_match();
  EXPECT_EQ(a.kernel.reserved.size(), a.kernel.in.size());
  EXPECT_EQ(b.kernel.reserved.size(), b.kernel.in.size());
}

// No key exchange for the PFS group when re-creating the Child SA: the same back-off as a
// refusal, not a new attempt every tick.
TEST_F(Pair, ChildCreateKeyExchangeFailureBacksOff) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  std::string err;
  ca.esp = *parse_proposals({"aes128gcm16-ecp256"}, ProtocolId::kEsp, &err);
  cb.esp = ca.esp;
  start(std::move(ca), std::move(cb));
  connect();
  ASSERT_TRUE(a.d->connected("to-b"));
  IkeSa* sb = b.d->established_sa("to-a");
  sb->tm.queue(make_child_delete({sb->children[0].spi_in}));
  sb->tm.initiate(*b.d, *sb);
  a.ke_fail = true;
  deliver();
  run_for(3000);
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_NE(a.d->status()[0].last_error.find("Child SA not created"), std::string::npos);
  EXPECT_GE(a.ke_refused, 1);
  EXPECT_LE(a.ke_refused, 3);  // 1 s, 2 s back-off: not one per 100 ms tick
  EXPECT_EQ(a.kernel.leaked_spis(), 0u);
  a.ke_fail = false;
  run_for(20000, 500);
  EXPECT_TRUE(a.d->connected("to-b"));
  expect_keys_match();
}

// The Child SA is refused inside IKE_AUTH: the initiator backs off like after any other failure
// (1, 2, 4, 8, 16 s) instead of a full handshake every second, the responder keeps no child-less
// IKE SA, and neither side leaks the SPI it reserved for the Child SA.
class ChildRefused : public Pair, public ::testing::WithParamInterface<const char*> {};
TEST_P(ChildRefused, InIkeAuthBacksOffAndResponderDropsIkeSa) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  std::string err;
  std::string why = GetParam();
  if (why == "NO_PROPOSAL_CHOSEN") {
    cb.esp = *parse_proposals({"aes256-sha256"}, ProtocolId::kEsp, &err);
  } else {
    ca.remote_ts = {*Prefix::parse("10.9.0.0/16")};
    cb.local_ts = {*Prefix::parse("10.2.0.0/16")};
  }
  start(std::move(ca), std::move(cb));
  connect();
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_TRUE(b.d->ike_sas("to-a").empty()) << "the responder keeps a child-less IKE SA";
  EXPECT_TRUE(a.d->ike_sas("to-b").empty());
  EXPECT_EQ(a.kernel.leaked_spis(), 0u);
  EXPECT_EQ(b.kernel.leaked_spis(), 0u);
  run_for(30000);
  int inits = 0;
  for (auto& x : sent_log)
    inits += !x.keepalive && x.from.addr == a.addr && !is_response(x) &&
             ex_of(x) == ExchangeType::kIkeSaInit;
  EXPECT_GE(inits, 4);  // it does keep trying ...
  EXPECT_LE(inits, 6);  // ... with the back-off: t = 0, 1, 3, 7, 15 s (before: 27-29)
  EXPECT_GE(a.d->status()[0].failures, 4u);
  EXPECT_NE(a.d->status()[0].last_error.find(why), std::string::npos);
  EXPECT_EQ(a.kernel.leaked_spis(), 0u);
  EXPECT_EQ(b.kernel.leaked_spis(), 0u);
  EXPECT_EQ(a.kernel.ups, 0);
}
INSTANTIATE_TEST_SUITE_P(Pair, ChildRefused,
                         ::testing::Values("NO_PROPOSAL_CHOSEN", "TS_UNACCEPTABLE"));

// The responder deletes the child-less IKE SA itself, also when the initiator keeps it (as
// strongSwan does; here a's DELETE is lost).
TEST_F(Pair, ResponderDeletesChildlessIkeSa) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  std::string err;
  cb.esp = *parse_proposals({"aes256-sha256"}, ProtocolId::kEsp, &err);
  start(std::move(ca), std::move(cb));
  drop = [&](const Packet& p) {
    return p.from.addr == a.addr && ex_of(p) == ExchangeType::kInformational && !is_response(p);
  };
  connect();
  EXPECT_TRUE(b.d->ike_sas("to-a").empty()) << "the responder keeps a child-less IKE SA";
  EXPECT_TRUE(a.d->ike_sas("to-b").empty());  // deleted by b
  EXPECT_EQ(b.kernel.leaked_spis(), 0u);
}

// After a working connection, the back-off starts afresh (the count is reset by a Child SA).
TEST_F(Pair, BackOffResetOnlyByAChildSa) {
  start_default();
  connect();
  ASSERT_TRUE(a.d->connected("to-b"));
  EXPECT_EQ(a.d->status()[0].failures, 0u);
}

// The Child SA cap: a CREATE_CHILD_SA beyond it gets NO_ADDITIONAL_SAS; the initiator's reserved
// SPI is released and the old Child SA keeps working.
TEST_F(Pair, ChildSaCapAndFailedRekeyReleasesSpi) {
  tun.max_children = 1;
  start_default();
  connect();
  uint32_t out = a.kernel.current_out;
  ASSERT_TRUE(a.d->rekey_child("to-b"));
  deliver();
  EXPECT_EQ(b.d->counter("child_sa_limit"), 1u);
  EXPECT_NE(a.d->status()[0].last_error.find("NO_ADDITIONAL_SAS"), std::string::npos);
  EXPECT_EQ(a.kernel.leaked_spis(), 0u);
  EXPECT_EQ(b.kernel.leaked_spis(), 0u);
  EXPECT_EQ(a.kernel.current_out, out);
  EXPECT_TRUE(a.d->connected("to-b"));
}

// A CHILD_CREATE whose IKE SA goes away mid-exchange releases its SPI.
TEST_F(Pair, ChildCreateAbortedWithIkeSaReleasesSpi) {
  start_default();
  connect();
  IkeSa* sb = b.d->established_sa("to-a");
  sb->tm.queue(make_child_delete({sb->children[0].spi_in}));
  sb->tm.initiate(*b.d, *sb);
  deliver();
  drop = [&](const Packet&) { return true; };  // the peer is gone
  run_for(tun.drain_ms + 500);
  IkeSa* sa = a.d->established_sa("to-b");
  ASSERT_TRUE(sa && sa->creating_child);
  EXPECT_EQ(a.kernel.reserved.size(), 1u);  // the CHILD_CREATE's SPI
  run_for(30000);                           // no answer: the IKE SA fails
  EXPECT_EQ(a.kernel.leaked_spis(), 0u);
  EXPECT_TRUE(a.kernel.in.empty());
}

}  // namespace
}  // namespace espgw::ike::test
