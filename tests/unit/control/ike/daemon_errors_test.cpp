// IKE daemon tests (fixture: daemon_pair.h): hostile and broken input. Cookies and the half-open
// cap, forged messages, INVALID_MAJOR_VERSION, unknown critical payloads, duplicate IKE_SA_INITs,
// oversized IKE_SA_INITs, refusal counters and rate-limited logging.
#include "tests/unit/control/ike/daemon_pair.h"

namespace espgw::ike::test {
namespace {

TEST_F(Pair, CookieWhenTooManyHalfOpen) {
  tun.cookie_threshold = 2;
  start_default();
  // Two half-open SAs from a flooding "initiator" at A's address (never completing).
  for (int i = 0; i < 2; ++i) {
    Message m;
    m.hdr.spi_i = 0x1111 + uint64_t(i);
    m.hdr.exchange = ExchangeType::kIkeSaInit;
    m.hdr.flags = kFlagInitiator;
    std::string err;
    auto props = *parse_proposals({"aes128gcm16-prfsha256-ecp256"}, ProtocolId::kIke, &err);
    m.payloads.push_back(make_payload(SaPayload{props}));
    m.payloads.push_back(make_payload(KePayload{19, Bytes(64, uint8_t(i + 1))}));
    m.payloads.push_back(make_payload(NoncePayload{Bytes(32, uint8_t(i))}));
    b.d->receive({b.addr, 500}, {a.addr, 500}, encode_message(m));
  }
  wire.clear();
  EXPECT_EQ(b.d->half_open(), 2u);
  connect();
  EXPECT_TRUE(a.d->connected("to-b"));
  int cookies = 0;
  for (auto& p : sent_log) {
    Message m;
    if (p.keepalive || !decode_message(p.data, m).ok()) continue;
    if (m.hdr.response() && m.notify(NotifyType::kCookie)) ++cookies;
  }
  EXPECT_EQ(cookies, 1);
  expect_keys_match();
}

TEST_F(Pair, ForgedMessagesAreDropped) {
  start_default();
  connect();
  IkeSa* sa = b.d->established_sa("to-a");
  Header h;
  h.spi_i = sa->spi_i;
  h.spi_r = sa->spi_r;
  h.exchange = ExchangeType::kInformational;
  h.flags = kFlagInitiator;
  h.message_id = 2;
  Message m;
  m.hdr = h;
  m.payloads.push_back(Payload{PayloadType::kEncrypted, EncryptedPayload{PayloadType::kDelete, Bytes(64, 7)}});
  b.d->receive({b.addr, 500}, {a.addr, 500}, encode_message(m));
  tick_both();
  EXPECT_TRUE(b.d->connected("to-a"));
}

// An IKE_SA_INIT request of the initiator, as sent.
Bytes first_init(const std::vector<Packet>& log, const Peer& from) {
  for (auto& x : log)
    if (!x.keepalive && x.from.addr == from.addr && !is_resp(x) &&
        exchange_of(x) == ExchangeType::kIkeSaInit)
      return x.data;
  return {};
}

TEST_F(Pair, HigherMajorVersionGetsInvalidMajorVersion) {
  start_default();
  a.d->tick();
  Bytes req = first_init(sent_log, a);
  ASSERT_FALSE(req.empty());
  wire.clear();
  req[17] = 0x30;  // version 3.0
  b.d->receive({b.addr, 500}, {a.addr, 500}, req);
  ASSERT_EQ(wire.size(), 1u);
  Message m;
  ASSERT_TRUE(decode_message(wire.front().data, m).ok());
  EXPECT_EQ(m.hdr.major, 2);
  EXPECT_TRUE(m.hdr.response());
  EXPECT_TRUE(m.notify(NotifyType::kInvalidMajorVersion));
  EXPECT_EQ(wire.front().to, (Endpoint{a.addr, 500}));
  EXPECT_EQ(b.d->half_open(), 0u);
  EXPECT_EQ(b.d->counter("bad_major_version"), 1u);
  // A response with a higher version is only counted.
  wire.clear();
  req[19] |= kFlagResponse;
  b.d->receive({b.addr, 500}, {a.addr, 500}, req);
  EXPECT_TRUE(wire.empty());
  EXPECT_EQ(b.d->counter("bad_major_version"), 2u);
}

// Prepends an unknown payload (type 200) with the critical bit to a message's payload chain.
Bytes with_critical_payload(const Bytes& msg) {
  Bytes out(msg.begin(), msg.begin() + kHeaderLen);
  uint8_t first = out[16];
  out[16] = 200;
  Bytes extra = {first, kCriticalBit, 0, 6, 0xab, 0xcd};
  out.insert(out.end(), extra.begin(), extra.end());
  out.insert(out.end(), msg.begin() + kHeaderLen, msg.end());
  uint32_t len = uint32_t(out.size());
  out[24] = uint8_t(len >> 24), out[25] = uint8_t(len >> 16), out[26] = uint8_t(len >> 8),
  out[27] = uint8_t(len);
  return out;
}

TEST_F(Pair, UnknownCriticalPayloadInInitGetsUnsupportedCriticalPayload) {
  start_default();
  a.d->tick();
  Bytes req = with_critical_payload(first_init(sent_log, a));
  wire.clear();
  b.d->receive({b.addr, 500}, {a.addr, 500}, req);
  ASSERT_EQ(wire.size(), 1u);
  Message m;
  ASSERT_TRUE(decode_message(wire.front().data, m).ok());
  EXPECT_TRUE(m.hdr.response());
  const NotifyPayload* n = m.notify(NotifyType::kUnsupportedCriticalPayload);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->data, Bytes{200});
  EXPECT_EQ(b.d->half_open(), 0u);
  EXPECT_EQ(b.d->counter("unsupported_critical_payload"), 1u);
}

TEST_F(Pair, UnknownCriticalPayloadInProtectedRequest) {
  start_default();
  connect();
  IkeSa* sa = a.d->established_sa("to-b");
  Header h;
  h.spi_i = sa->spi_i;
  h.spi_r = sa->spi_r;
  h.exchange = ExchangeType::kInformational;
  h.flags = kFlagInitiator;
  h.message_id = sa->tm.next_out();
  // The inner chain: the unknown critical payload only; then padding length 0.
  Bytes pt = {0, kCriticalBit, 0, 6, 0xab, 0xcd, 0};
  auto msg = sa->sk->out->seal(h, PayloadType(200), pt);
  ASSERT_TRUE(msg);
  wire.clear();
  b.d->receive({b.addr, 500}, {a.addr, 500}, *msg);
  ASSERT_EQ(wire.size(), 1u);
  Message m;
  ASSERT_TRUE(sa->sk->in->unprotect(wire.front().data, m).ok());
  EXPECT_TRUE(m.hdr.response());
  EXPECT_EQ(m.hdr.message_id, h.message_id);
  const NotifyPayload* n = m.notify(NotifyType::kUnsupportedCriticalPayload);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->data, Bytes{200});
  EXPECT_EQ(b.d->counter("unsupported_critical_payload"), 1u);
  // The exchange is complete on both sides: the next one works.
  wire.clear();
  sa->tm.set_next_out(h.message_id + 1);
  ASSERT_TRUE(a.d->rekey_child("to-b"));
  deliver();
  run_for(tun.drain_ms + 200);
  expect_keys_match();
  EXPECT_TRUE(b.d->connected("to-a"));
}

// A retransmitted IKE_SA_INIT gets the cached answer (every datagram of it, once); another
// IKE_SA_INIT with the SPI of a half-open SA is refused and counted.
TEST_F(Pair, RetransmittedInitAnsweredDuplicateInitRefused) {
  start_default();
  a.d->tick();  // a sends its IKE_SA_INIT
  ASSERT_EQ(wire.size(), 1u);
  Packet req = wire.front();
  wire.clear();
  b.d->receive(req.to, req.from, req.data);  // b answers
  ASSERT_EQ(wire.size(), 1u);
  Bytes resp = wire.front().data;
  wire.clear();
  b.d->receive(req.to, req.from, req.data);
  ASSERT_EQ(wire.size(), 1u);
  EXPECT_EQ(wire.front().data, resp);
  wire.clear();
  Bytes other = req.data;
  other.back() ^= 1;
  Message m;
  ASSERT_TRUE(decode_message(other, m).ok());
  b.d->receive(req.to, req.from, other);
  EXPECT_TRUE(wire.empty());
  EXPECT_EQ(b.d->counter("duplicate_init"), 1u);
  EXPECT_EQ(b.d->half_open(), 1u);
}

// Every refusal is counted under a name and logged, at most one line per interval.
TEST_F(Pair, RefusalsAreCountedAndLogRateLimited) {
  // b does not do IKE fragmentation: every fragment is refused before any crypto (on an IKE SA
  // with fragmentation, this one would fail its integrity check: fragment_integrity).
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  cb.fragmentation = false;
  start(std::move(ca), std::move(cb));
  connect();
  IkeSa* sa = b.d->established_sa("to-a");
  ASSERT_FALSE(sa->frag);
  Header h;
  h.spi_i = sa->spi_i;
  h.spi_r = sa->spi_r;
  h.exchange = ExchangeType::kInformational;
  h.flags = kFlagInitiator;
  h.message_id = 2;
  // An IKE fragment (SKF, RFC 7383): Fragment Number 1, Total Fragments 2, then "ciphertext".
  Bytes skf = {0, 0, 0, 40, 0, 1, 0, 2};
  skf.resize(40, 0x5a);
  Bytes frag;
  Writer w(frag);
  h.next = PayloadType::kEncryptedFragment;
  h.length = uint32_t(kHeaderLen + skf.size());
  h.encode(w);
  frag.insert(frag.end(), skf.begin(), skf.end());
  b.logs.clear();
  for (int i = 0; i < 100; ++i) b.d->receive({b.addr, 500}, {a.addr, 500}, frag);
  EXPECT_EQ(b.d->counter("fragment_unsupported"), 100u);
  EXPECT_EQ(count_lines(b, "fragment_unsupported"), 1u);
  now += tun.log_interval_ms;
  b.d->receive({b.addr, 500}, {a.addr, 500}, frag);
  EXPECT_EQ(count_lines(b, "fragment_unsupported"), 2u);
  EXPECT_EQ(count_lines(b, "99 more not logged"), 1u);
  EXPECT_EQ(b.d->status()[0].frag.drop_not_negotiated, 101u);  // `show connection` counts too
  // A forged SK message, an unknown SPI, garbage.
  Message m;
  m.hdr = h;
  m.payloads.push_back(
      Payload{PayloadType::kEncrypted, EncryptedPayload{PayloadType::kDelete, Bytes(64, 7)}});
  b.d->receive({b.addr, 500}, {a.addr, 500}, encode_message(m));
  EXPECT_EQ(b.d->counter("integrity_failed"), 1u);
  m.hdr.spi_r ^= 1;
  b.d->receive({b.addr, 500}, {a.addr, 500}, encode_message(m));
  EXPECT_EQ(b.d->counter("unknown_spi"), 1u);
  b.d->receive({b.addr, 500}, {a.addr, 500}, Bytes(10, 1));
  EXPECT_EQ(b.d->counter("malformed_header"), 1u);
  // An authentic request of an exchange type we do not know.
  IkeSa* sa_a = a.d->established_sa("to-b");
  Header x = h;
  x.next = PayloadType::kNone;
  x.exchange = ExchangeType(99);
  x.message_id = sa_a->tm.next_out();
  auto unknown = sa_a->sk->out->protect(x, {});
  ASSERT_TRUE(unknown);
  b.d->receive({b.addr, 500}, {a.addr, 500}, *unknown);
  EXPECT_EQ(b.d->counter("unsupported_exchange"), 1u);
  EXPECT_TRUE(b.d->connected("to-a"));
  for (const auto& l : b.logs) EXPECT_EQ(l.find("correct horse"), std::string::npos);
}

// 15.7: the half-open cap holds even for requests with a valid cookie; oversized IKE_SA_INITs
// create no state.
TEST_F(Pair, HalfOpenCapAndOversizedInit) {
  tun.max_half_open = 2;
  tun.cookie_threshold = 100;
  start_default();
  a.d->tick();
  Bytes req = first_init(sent_log, a);
  wire.clear();
  for (int i = 0; i < 4; ++i) {
    Bytes r = req;
    r[0] = uint8_t(0x10 + i);  // another initiator SPI: another half-open SA
    b.d->receive({b.addr, 500}, {a.addr, 500}, r);
  }
  EXPECT_EQ(b.d->half_open(), 2u);
  EXPECT_EQ(b.d->counter("half_open_limit"), 2u);
  EXPECT_EQ(wire.size(), 2u);  // no answer beyond the cap
  wire.clear();
}

TEST_F(Pair, OversizedInitIsRefused) {
  tun.max_init_bytes = 200;
  start_default();
  a.d->tick();
  Bytes req = first_init(sent_log, a);
  ASSERT_GT(req.size(), 200u);
  wire.clear();
  b.d->receive({b.addr, 500}, {a.addr, 500}, req);
  EXPECT_EQ(b.d->half_open(), 0u);
  EXPECT_TRUE(wire.empty());
  EXPECT_EQ(b.d->counter("init_too_large"), 1u);
}

}  // namespace
}  // namespace espgw::ike::test
