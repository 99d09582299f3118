// IKE daemon tests (fixture: daemon_pair.h): liveness and retransmission. Dead peer detection
// and re-initiation, inbound ESP as proof of life, retransmitted requests and their back-off.
#include "tests/unit/control/ike/daemon_pair.h"

namespace espgw::ike::test {
namespace {

TEST_F(Pair, DeadPeerDetectionWithdrawsAndReinitiates) {
  start_default();
  connect();
  bool b_dead = true;
  drop = [&](const Packet& p) { return b_dead && (p.to.addr == b.addr || p.from.addr == b.addr); };
  uint64_t t0 = now;
  while (a.d->connected("to-b") && now - t0 < 60000) run_for(100);
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_LE(now - t0, uint64_t(30000));  // within the DPD timeout
  EXPECT_FALSE(a.kernel.up);
  EXPECT_TRUE(a.kernel.in.empty());
  bool dead_event = false;
  for (auto& [c, e] : a.events) dead_event |= e == ConnEvent::kDeadPeer;
  EXPECT_TRUE(dead_event);
  // Inbound ESP is proof of life: with counters moving there is no DPD exchange.
  // The peer comes back (fresh state): A re-initiates and the tunnel returns.
  b_dead = false;
  b.d = std::make_unique<Daemon>(env_for(b), b.kernel, tun);
  b.kernel.in.clear();
  b.kernel.out.clear();
  ConnConfig cb = conn(b, a);
  cb.initiate = false;
  b.d->add_connection(std::move(cb));
  run_for(40000, 500);
  EXPECT_TRUE(a.d->connected("to-b"));
  expect_keys_match();
}

TEST_F(Pair, InboundTrafficCountsAsLiveness) {
  start_default();
  connect();
  size_t before = sent_log.size();
  for (int i = 0; i < 200; ++i) {
    a.kernel.stats[{a.kernel.in.begin()->first, true}].packets += 1;
    run_for(100);
  }
  size_t infos = 0;
  for (size_t i = before; i < sent_log.size(); ++i)
    infos += !sent_log[i].keepalive && sent_log[i].from.addr == a.addr &&
             ex_of(sent_log[i]) == ExchangeType::kInformational && !is_response(sent_log[i]);
  EXPECT_EQ(infos, 0u);
}

TEST_F(Pair, RetransmitAndDuplicateRequest) {
  start_default();
  // Lose B's first IKE_AUTH response: A retransmits, B answers from its cache.
  int lost = 0;
  drop = [&](const Packet& p) {
    if (p.from.addr == b.addr && ex_of(p) == ExchangeType::kIkeAuth && is_response(p) && !lost) {
      ++lost;
      return true;
    }
    return false;
  };
  connect();
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_TRUE(b.d->connected("to-a"));
  int b_adds = b.kernel.adds;
  run_for(tun.retransmit_base_ms + 100);
  EXPECT_TRUE(a.d->connected("to-b"));
  EXPECT_EQ(b.kernel.adds, b_adds);  // the duplicate did not create a second Child SA
  EXPECT_EQ(a.d->established_sa("to-b")->tm.retransmits(), 1u);
  expect_keys_match();
  // A duplicate IKE_SA_INIT request is answered with the same bytes, no new SA.
  Bytes init_req;
  for (auto& p : sent_log)
    if (!p.keepalive && p.from.addr == a.addr && ex_of(p) == ExchangeType::kIkeSaInit) init_req = p.data;
  size_t n_sas = b.d->ike_sas("to-a").size();
  b.d->receive({b.addr, 500}, {a.addr, 500}, init_req);
  EXPECT_EQ(b.d->ike_sas("to-a").size(), n_sas);
}

TEST_F(Pair, RetransmitBackoffIsExponential) {
  start_default();
  drop = [&](const Packet& p) { return p.to.addr == b.addr; };
  tick_both();
  deliver();
  std::vector<uint64_t> at;
  size_t seen = sent_log.size();
  for (int i = 0; i < 200; ++i) {
    run_for(100);
    for (; seen < sent_log.size(); ++seen) at.push_back(now);
  }
  ASSERT_GE(at.size(), 3u);
  EXPECT_GE(at[1] - at[0], (at[0] > 0 ? 1900u : 0u));  // 1 s, 2 s, 4 s ...
  EXPECT_GE(at[2] - at[1], 3900u);
}

}  // namespace
}  // namespace espgw::ike::test
