// IKE daemon tests (fixture: daemon_pair.h): IKE fragmentation (RFC 7383). Fragmented IKE_AUTH,
// negotiation, reassembly refusals and their counters, a lost fragment recovered by
// retransmission.
#include "tests/unit/control/ike/daemon_pair.h"

namespace espgw::ike::test {
namespace {

// ---- IKE fragmentation (RFC 7383) ----

static bool is_skf(const Packet& p) {
  Header h;
  return !p.keepalive && decode_header(p.data, h).ok() && h.next == PayloadType::kEncryptedFragment;
}

TEST_F(Pair, FragmentedIkeAuthBringsTheTunnelUp) {
  tun.frag_mtu_v4 = 200;  // IP datagram: every IKE_AUTH message needs several fragments
  start_default();
  connect();
  ASSERT_TRUE(a.d->connected("to-b"));
  ASSERT_TRUE(b.d->connected("to-a"));
  expect_keys_match();
  int skf_a = 0, skf_b = 0;
  for (const auto& p : sent_log) {
    if (p.keepalive || ex_of(p) == ExchangeType::kIkeSaInit) continue;  // never fragmented
    EXPECT_LE(p.data.size() + 28, 200u);                                // + IPv4 and UDP headers
    if (is_skf(p)) (p.from.addr == a.addr ? skf_a : skf_b)++;
  }
  EXPECT_GE(skf_a, 2);
  EXPECT_GE(skf_b, 2);
  for (Peer* p : {&a, &b}) {
    auto st = p->d->status()[0];
    EXPECT_TRUE(st.fragmentation);
    EXPECT_EQ(st.frag.messages_reassembled, 1u) << p->name;
    EXPECT_EQ(st.frag.messages_fragmented, 1u) << p->name;
    for (const auto& [name, v] : st.frag.named())
      if (std::string(name).starts_with("drop_")) {
        EXPECT_EQ(v, 0u) << p->name << " " << name;
      }
  }
  // Later exchanges (a Child SA rekey) too, and the IKE SA that replaces this one keeps it.
  ASSERT_TRUE(a.d->rekey_child("to-b"));
  deliver();
  expect_keys_match();
  ASSERT_TRUE(a.d->rekey_ike("to-b"));
  deliver();
  run_for(1000);
  ASSERT_TRUE(a.d->established_sa("to-b")->frag);
  EXPECT_TRUE(b.d->established_sa("to-a")->frag);
  EXPECT_GE(a.d->status()[0].frag.messages_reassembled, 3u);
}

TEST_F(Pair, NoFragmentsUnlessBothAnnounce) {
  tun.frag_mtu_v4 = 200;
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  cb.fragmentation = false;
  start(std::move(ca), std::move(cb));
  connect();
  ASSERT_TRUE(a.d->connected("to-b"));  // whole messages, larger than the "MTU"
  for (const auto& p : sent_log) EXPECT_FALSE(is_skf(p));
  EXPECT_FALSE(a.d->status()[0].fragmentation);
  // Fragments anyway (properly protected by the peer) are refused and counted.
  IkeSa* sa = a.d->established_sa("to-b");
  Header h;
  h.spi_i = sa->spi_i;
  h.spi_r = sa->spi_r;
  h.exchange = ExchangeType::kInformational;
  h.flags = kFlagInitiator;
  h.message_id = sa->tm.next_out();
  auto frags = sa->sk->out->protect_fragments(h, {}, 100);
  ASSERT_TRUE(frags);
  b.d->receive({b.addr, 500}, {a.addr, 500}, frags->front());
  EXPECT_EQ(b.d->status()[0].frag.drop_not_negotiated, 1u);
  EXPECT_EQ(b.d->counter("fragment_unsupported"), 1u);
  EXPECT_EQ(b.d->status()[0].frag.fragments_in, 0u);
}

// Fragments sent "by a" straight to b with a's keys, for the request ID b expects (+ offset).
struct Injector {
  std::vector<Bytes> frags(IkeSa& sa, const std::vector<Payload>& pl, size_t mtu,
                           int id_offset = 0) {
    Header h;
    h.spi_i = sa.spi_i;
    h.spi_r = sa.spi_r;
    h.exchange = ExchangeType::kInformational;
    h.flags = kFlagInitiator;
    h.message_id = sa.tm.next_out() + id_offset;
    return sa.sk->out->protect_fragments(h, pl, mtu).value();
  }
};

TEST_F(Pair, FragmentReassemblyRefusalsAreCounted) {
  start_default();
  connect();
  ASSERT_TRUE(b.d->connected("to-a"));
  IkeSa& sa = *a.d->established_sa("to-b");
  auto st = [&] { return b.d->status()[0].frag; };
  std::vector<Payload> big{
      make_payload(NotifyPayload::make(NotifyType::kSignatureHashAlgorithms, Bytes(600, 7)))};
  Injector inj;
  // Not the message ID b waits for.
  auto f = inj.frags(sa, big, 200, 3);
  b.d->receive({b.addr, 500}, {a.addr, 500}, f[0]);
  EXPECT_EQ(st().drop_unexpected_id, 1u);
  // Tampered.
  f = inj.frags(sa, big, 200);
  Bytes bad = f[0];
  bad.back() ^= 1;
  b.d->receive({b.addr, 500}, {a.addr, 500}, bad);
  EXPECT_EQ(st().drop_integrity, 1u);
  // Incomplete: dropped after the timeout, by tick.
  b.d->receive({b.addr, 500}, {a.addr, 500}, f[0]);
  b.d->receive({b.addr, 500}, {a.addr, 500}, f[0]);
  EXPECT_EQ(st().drop_duplicate, 1u);
  EXPECT_EQ(st().fragments_in, 1u);
  now += tun.frag.timeout_ms;
  b.d->tick();
  EXPECT_EQ(st().drop_timeout, 1u);
  EXPECT_FALSE(b.d->established_sa("to-a")->frag_req.active());
  // Out of order, a good one is answered (an empty INFORMATIONAL response).
  wire.clear();
  f = inj.frags(sa, big, 200);
  ASSERT_GE(f.size(), 3u);
  for (auto it = f.rbegin(); it != f.rend(); ++it) b.d->receive({b.addr, 500}, {a.addr, 500}, *it);
  EXPECT_EQ(st().messages_reassembled, 1u);
  ASSERT_EQ(wire.size(), 1u);
  EXPECT_TRUE(is_response(wire.front()));
  wire.clear();
  // Too large once reassembled (the next ID): everything of it goes, nothing is answered.
  std::vector<Payload> huge;
  for (int i = 0; i < 20; ++i)
    huge.push_back(make_payload(
        NotifyPayload::make(NotifyType::kSignatureHashAlgorithms, Bytes(4000, uint8_t(i)))));
  f = inj.frags(sa, huge, 1400, 1);
  ASSERT_LE(f.size(), tun.frag.max_fragments);
  for (const auto& x : f) b.d->receive({b.addr, 500}, {a.addr, 500}, x);
  EXPECT_GT(st().drop_oversize, 0u);
  EXPECT_FALSE(b.d->established_sa("to-a")->frag_req.active());
  EXPECT_TRUE(wire.empty());
  // Too many fragments.
  f = inj.frags(sa, {huge[0]}, 80, 1);
  ASSERT_GT(f.size(), tun.frag.max_fragments);
  b.d->receive({b.addr, 500}, {a.addr, 500}, f[0]);
  EXPECT_EQ(st().drop_too_many, 1u);
  EXPECT_TRUE(wire.empty());
  EXPECT_TRUE(b.d->connected("to-a"));
  // Every refusal is a named refusal too (`show ike counters`), one name per reason, as many.
  for (const auto& [name, v] : st().named()) {
    std::string n = name;
    if (!n.starts_with("drop_") || n == "drop_not_negotiated") continue;
    EXPECT_EQ(b.d->counter("fragment_" + n.substr(5)), v) << n;
  }
  EXPECT_EQ(b.d->counter("fragment_integrity"), 1u);
  EXPECT_EQ(b.d->counter("fragment_timeout"), 1u);
  EXPECT_GT(b.d->counter("fragment_oversize"), 0u);
  EXPECT_EQ(count_lines(b, "refused (fragment_too_many)"), 1u);
}

TEST_F(Pair, LostFragmentIsRecoveredByRetransmission) {
  tun.frag_mtu_v4 = 200;
  start_default();
  connect();
  ASSERT_TRUE(a.d->connected("to-b"));
  uint32_t old_out = a.kernel.current_out;
  // The second fragment of the rekey request is lost once; its response once entirely.
  int req_lost = 0, resp_lost = 0, skf_seen = 0;
  size_t resp_frags = 0;
  drop = [&](const Packet& p) {
    if (!is_skf(p) || ex_of(p) != ExchangeType::kCreateChildSa) return false;
    if (!is_response(p)) return ++skf_seen == 2 && !req_lost++;
    if (req_lost && resp_lost < 1) {
      ++resp_frags;
      FragHeader fh;
      parse_fragment(p.data, fh);
      if (fh.number == fh.total) ++resp_lost;
      return true;
    }
    return false;
  };
  ASSERT_TRUE(a.d->rekey_child("to-b"));
  deliver();
  EXPECT_EQ(a.kernel.current_out, old_out);  // incomplete at b: nothing answered yet
  size_t sent_before = sent_log.size();
  run_for(tun.retransmit_base_ms + 100);      // retransmission: b completes it and answers
  run_for(2 * tun.retransmit_base_ms + 100);  // the response was lost: b answers again, once
  EXPECT_NE(a.kernel.current_out, old_out);
  expect_keys_match();
  size_t b_resp = 0;
  for (size_t i = sent_before; i < sent_log.size(); ++i)
    if (sent_log[i].from.addr == b.addr && is_skf(sent_log[i]) && is_response(sent_log[i]) &&
        ex_of(sent_log[i]) == ExchangeType::kCreateChildSa)
      ++b_resp;
  EXPECT_EQ(b_resp, 2 * resp_frags);  // the response twice, not once per request fragment
  EXPECT_GE(b.d->status()[0].frag.drop_duplicate, 1u);  // fragment 1 came twice
}

}  // namespace
}  // namespace espgw::ike::test
