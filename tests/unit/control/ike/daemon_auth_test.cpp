// IKE daemon tests (fixture: daemon_pair.h): authentication. AUTHENTICATION_FAILED in either
// direction, lost and late notifies, the auth-failed event, no secrets in the status view.
#include "tests/unit/control/ike/daemon_pair.h"

namespace espgw::ike::test {
namespace {

TEST_F(Pair, AuthenticationFailed) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  cb.psk = Secret("another key");
  start(std::move(ca), std::move(cb));
  connect();
  tick_both();
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_NE(a.d->status()[0].last_error.find("AUTHENTICATION_FAILED"), std::string::npos);
  EXPECT_NE(b.d->status()[0].last_error.find("AUTHENTICATION_FAILED"), std::string::npos);
  EXPECT_TRUE(a.kernel.in.empty() && b.kernel.in.empty());
  EXPECT_TRUE(b.d->ike_sas("to-a").empty());
}

// We reject the responder's AUTH: an INFORMATIONAL with AUTHENTICATION_FAILED tells it (2.21.2),
// and both sides drop the IKE SA.
TEST_F(Pair, InitiatorRejectsResponderAuth) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  ca.remote_id = IdPayload::fqdn("someone.else");
  start(std::move(ca), std::move(cb));
  connect();
  tick_both();
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_NE(a.d->status()[0].last_error.find("AUTHENTICATION_FAILED"), std::string::npos);
  EXPECT_NE(b.d->status()[0].last_error.find("AUTHENTICATION_FAILED"), std::string::npos);
  EXPECT_TRUE(a.d->ike_sas("to-b").empty());
  EXPECT_TRUE(b.d->ike_sas("to-a").empty());
  EXPECT_FALSE(a.kernel.up);
  EXPECT_FALSE(b.kernel.up);
  EXPECT_GE(b.kernel.downs, 1);  // B had installed the Child SA, and withdrew it
  EXPECT_TRUE(a.kernel.in.empty() && b.kernel.in.empty());
  EXPECT_TRUE(a.kernel.out.empty() && b.kernel.out.empty());
  int infos = 0;
  for (auto& p : sent_log)
    infos += !p.keepalive && p.from.addr == a.addr && !is_response(p) &&
             ex_of(p) == ExchangeType::kInformational;
  EXPECT_EQ(infos, 1);
  bool ev_a = false, ev_b = false;
  for (auto& [c, e] : a.events) ev_a |= e == ConnEvent::kAuthFailed;
  for (auto& [c, e] : b.events) ev_b |= e == ConnEvent::kAuthFailed;
  EXPECT_TRUE(ev_a);
  EXPECT_TRUE(ev_b);
}

// The INFORMATIONAL is lost for good: we still drop the SA after the retransmission budget.
TEST_F(Pair, InitiatorRejectsResponderAuthNotifyLost) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  ca.initiate = false;
  ca.remote_id = IdPayload::fqdn("someone.else");
  start(std::move(ca), std::move(cb));
  drop = [&](const Packet& p) { return ex_of(p) == ExchangeType::kInformational; };
  ASSERT_TRUE(a.d->initiate("to-b"));
  deliver();
  EXPECT_EQ(a.d->ike_sas("to-b").size(), 1u);  // waiting for the answer, not established
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_FALSE(a.kernel.up);
  run_for(30000, 500);
  EXPECT_TRUE(a.d->ike_sas("to-b").empty());
  EXPECT_NE(a.d->status()[0].last_error.find("AUTHENTICATION_FAILED"), std::string::npos);
}

// AUTHENTICATION_FAILED on an SA with working Child SAs, long after IKE_AUTH, is only recorded.
TEST_F(Pair, LateAuthenticationFailedNotifyIsIgnored) {
  start_default();
  connect();
  IkeSa* sa = a.d->established_sa("to-b");
  sa->tm.queue(make_dpd());  // message ID 2
  sa->tm.initiate(*a.d, *sa);
  deliver();
  sa->tm.queue(make_auth_failed());  // message ID 3
  sa->tm.initiate(*a.d, *sa);
  deliver();
  tick_both();
  EXPECT_TRUE(b.d->connected("to-a"));
  EXPECT_EQ(b.d->ike_sas("to-a").size(), 1u);
}

// An established IKE SA without a Child SA (the peer deleted it; we re-create it) is not torn
// down by a late AUTHENTICATION_FAILED (2.21.2 covers only the INFORMATIONAL after IKE_AUTH).
TEST_F(Pair, LateAuthenticationFailedWithoutChildIsOnlyRecorded) {
  start_default();
  connect();
  IkeSa* sb = b.d->established_sa("to-a");
  ASSERT_NE(sb, nullptr);
  sb->tm.queue(make_child_delete({sb->children[0].spi_in}));  // B's message ID 0
  sb->tm.initiate(*b.d, *sb);
  deliver();
  IkeSa* sa = a.d->established_sa("to-b");
  ASSERT_NE(sa, nullptr);
  EXPECT_FALSE(sa->has_live_child());
  sb->tm.queue(make_auth_failed());  // B's message ID 1
  sb->tm.initiate(*b.d, *sb);
  deliver();
  ASSERT_EQ(a.d->ike_sas("to-b").size(), 1u);
  EXPECT_EQ(a.d->established_sa("to-b"), sa);
  EXPECT_NE(a.d->status()[0].last_error.find("AUTHENTICATION_FAILED"), std::string::npos);
  a.d->tick();
  EXPECT_TRUE(sa->creating_child);  // and goes on re-creating its Child SA
}

TEST_F(Pair, AuthFailedEventAndNoSecretsInStatus) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  cb.psk = Secret("wrong");
  start(std::move(ca), std::move(cb));
  connect();
  bool ev = false;
  for (auto& [c, e] : b.events) ev |= e == ConnEvent::kAuthFailed;
  EXPECT_TRUE(ev);
  for (const auto& st : a.d->status()) {
    EXPECT_EQ(st.last_error.find("correct horse"), std::string::npos);
    EXPECT_EQ(st.state, "Connecting");  // re-initiation pending / in progress
  }
}

}  // namespace
}  // namespace espgw::ike::test
