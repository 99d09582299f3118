// IKE fragmentation (RFC 7383): SKF encoding and decryption per cipher, the fragment parser, and
// the bounded reassembly (order, duplicates, bad counts, size, timeout).
#include "control/ike/frag.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "control/ike/sk.h"
#include "control/ike/transforms.h"

namespace espgw::ike {
namespace {

std::unique_ptr<SkCrypter> crypter(const char* proposal) {
  Suite s = *suite_of(*parse_proposal(proposal, ProtocolId::kIke));
  Bytes e(s.encr_key_len(), 0x42), a(s.integ_key_len(), 0x24);
  return SkCrypter::make(s, Secret(e.data(), e.size()), Secret(a.data(), a.size()));
}

Header hdr(uint32_t id = 1) {
  Header h;
  h.spi_i = 0x0102030405060708;
  h.spi_r = 0x1112131415161718;
  h.exchange = ExchangeType::kIkeAuth;
  h.flags = kFlagInitiator;
  h.message_id = id;
  return h;
}

std::vector<Payload> big_payloads() {
  return {make_idi(IdPayload::fqdn("left.example")),
          make_payload(AuthPayload{AuthMethod::kSharedKeyMic, Bytes(32, 0xab)}),
          make_payload(NotifyPayload::make(NotifyType::kInitialContact)),
          make_payload(NotifyPayload::make(NotifyType::kSignatureHashAlgorithms, Bytes(700, 0x5a))),
          make_tsi(TsPayload{{TrafficSelector::from_prefix(*Prefix::parse("10.1.0.0/16"))}})};
}

// Decrypts and reassembles `frags` (in the given order) with `rx`; the message, or nullopt.
std::optional<Message> reassemble(SkCrypter& rx, const std::vector<Bytes>& frags) {
  Reassembly r;
  FragLimits lim;
  FragCounters c;
  for (const auto& f : frags) {
    FragHeader fh;
    if (parse_fragment(f, fh) != DecodeError::kOk) return std::nullopt;
    Bytes pt;
    if (rx.open_fragment(f, pt) != SkError::kOk) return std::nullopt;
    if (r.add(fh, pt, 0, lim, c) == Reassembly::Result::kComplete) {
      Message m;
      m.hdr = fh.hdr;
      PayloadType first = r.first();
      Bytes chain = r.take();
      if (!decode_payloads(first, chain, m.payloads).ok()) return std::nullopt;
      return m;
    }
  }
  return std::nullopt;
}

class FragCrypto : public ::testing::TestWithParam<const char*> {};

TEST_P(FragCrypto, FragmentsFitAndReassembleInAnyOrder) {
  auto tx = crypter(GetParam()), rx = crypter(GetParam());
  ASSERT_TRUE(tx && rx);
  const size_t max = 300;
  auto frags = tx->protect_fragments(hdr(), big_payloads(), max);
  ASSERT_TRUE(frags);
  ASSERT_GE(frags->size(), 3u);
  for (size_t i = 0; i < frags->size(); ++i) {
    const Bytes& f = (*frags)[i];
    EXPECT_LE(f.size(), max);
    FragHeader fh;
    ASSERT_EQ(parse_fragment(f, fh), DecodeError::kOk);
    EXPECT_EQ(fh.number, i + 1);
    EXPECT_EQ(fh.total, frags->size());
    EXPECT_EQ(fh.hdr.message_id, 1u);
    EXPECT_EQ(fh.inner_next, i == 0 ? PayloadType::kIdi : PayloadType::kNone);
  }
  auto m = reassemble(*rx, *frags);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payloads, big_payloads());
  std::vector<Bytes> rev(frags->rbegin(), frags->rend());
  m = reassemble(*rx, rev);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payloads, big_payloads());
}

TEST_P(FragCrypto, FragmentFieldsAreAuthenticated) {
  auto tx = crypter(GetParam()), rx = crypter(GetParam());
  auto frags = tx->protect_fragments(hdr(), big_payloads(), 300);
  ASSERT_TRUE(frags);
  Bytes f = (*frags)[1];
  f[kHeaderLen + 5] ^= 1;  // Fragment Number
  Bytes pt;
  EXPECT_EQ(rx->open_fragment(f, pt), SkError::kIntegrity);
  f = (*frags)[1];
  f.back() ^= 1;  // ICV
  EXPECT_EQ(rx->open_fragment(f, pt), SkError::kIntegrity);
  // The whole-message decryption does not take an SKF message.
  Message m;
  EXPECT_FALSE(rx->unprotect((*frags)[0], m).ok());
}

INSTANTIATE_TEST_SUITE_P(Ciphers, FragCrypto,
                         ::testing::Values("aes128gcm16-prfsha256-ecp256", "aes256-sha256-modp2048",
                                           "chacha20poly1305-prfsha256-x25519"));

TEST(FragCrypto, TooSmallForAnyContent) {
  auto tx = crypter("aes256-sha256-modp2048");
  EXPECT_FALSE(tx->protect_fragments(hdr(), big_payloads(), 28 + 8 + 16 + 16 + 16));
}

TEST(FragParse, RejectsWhatIsNotOneSkfPayload) {
  auto tx = crypter("aes128gcm16-prfsha256-ecp256");
  auto frags = tx->protect_fragments(hdr(), big_payloads(), 400);
  ASSERT_TRUE(frags);
  FragHeader fh;
  Bytes f = (*frags)[0];
  EXPECT_EQ(parse_fragment(ByteView(f).first(kHeaderLen + 6), fh), DecodeError::kBadLength);
  Bytes shortlen = f;
  shortlen[kHeaderLen + 3] -= 1;  // SKF length no longer reaches the end of the message
  EXPECT_EQ(parse_fragment(shortlen, fh), DecodeError::kBadLength);
  Bytes notskf = f;
  notskf[16] = uint8_t(PayloadType::kEncrypted);
  EXPECT_EQ(parse_fragment(notskf, fh), DecodeError::kInvalidSyntax);
  // Only a header and a truncated SKF header.
  Bytes tiny(f.begin(), f.begin() + kHeaderLen + 4);
  tiny[24] = tiny[25] = tiny[26] = 0;
  tiny[27] = uint8_t(tiny.size());
  EXPECT_EQ(parse_fragment(tiny, fh), DecodeError::kTruncated);
}

// ---- reassembly bounds ----

FragHeader fh(uint16_t number, uint16_t total, uint32_t id = 1) {
  FragHeader f;
  f.hdr = hdr(id);
  f.number = number;
  f.total = total;
  f.inner_next = number == 1 ? PayloadType::kNonce : PayloadType::kNone;
  return f;
}

using R = Reassembly::Result;

TEST(Reassembly, OutOfOrderWithDuplicates) {
  Reassembly r;
  FragLimits lim;
  FragCounters c;
  EXPECT_EQ(r.add(fh(3, 3), {3, 3}, 0, lim, c), R::kStored);
  EXPECT_EQ(r.add(fh(1, 3), {1}, 0, lim, c), R::kStored);
  EXPECT_EQ(r.add(fh(3, 3), {9, 9}, 0, lim, c), R::kDropped);
  EXPECT_EQ(c.drop_duplicate, 1u);
  EXPECT_EQ(r.add(fh(2, 3), {2, 2}, 0, lim, c), R::kComplete);
  EXPECT_EQ(r.first(), PayloadType::kNonce);
  EXPECT_EQ(r.take(), (Bytes{1, 2, 2, 3, 3}));
  EXPECT_FALSE(r.active());
}

TEST(Reassembly, BadCounts) {
  Reassembly r;
  FragLimits lim;
  lim.max_fragments = 8;
  FragCounters c;
  EXPECT_EQ(r.add(fh(0, 3), {1}, 0, lim, c), R::kDropped);
  EXPECT_EQ(r.add(fh(4, 3), {1}, 0, lim, c), R::kDropped);
  EXPECT_EQ(r.add(fh(1, 0), {1}, 0, lim, c), R::kDropped);
  EXPECT_EQ(c.drop_bad_number, 3u);
  EXPECT_EQ(r.add(fh(1, 9), {1}, 0, lim, c), R::kDropped);
  EXPECT_EQ(r.add(fh(1, 65535), {1}, 0, lim, c), R::kDropped);
  EXPECT_EQ(c.drop_too_many, 2u);
  EXPECT_FALSE(r.active());
  // A larger total restarts (the sender re-fragmented smaller); a smaller one is stale.
  EXPECT_EQ(r.add(fh(1, 2), {1}, 0, lim, c), R::kStored);
  EXPECT_EQ(r.add(fh(1, 4), {1}, 0, lim, c), R::kStored);
  EXPECT_EQ(c.drop_superseded, 1u);
  EXPECT_EQ(r.add(fh(2, 2), {2}, 0, lim, c), R::kDropped);
  EXPECT_EQ(c.drop_bad_number, 4u);
  for (uint16_t i = 2; i <= 3; ++i) EXPECT_EQ(r.add(fh(i, 4), {uint8_t(i)}, 0, lim, c), R::kStored);
  EXPECT_EQ(r.add(fh(4, 4), {4}, 0, lim, c), R::kComplete);
  EXPECT_EQ(r.take(), (Bytes{1, 2, 3, 4}));
}

TEST(Reassembly, OversizeDropsTheWholeMessage) {
  Reassembly r;
  FragLimits lim;
  lim.max_bytes = 1000;
  FragCounters c;
  EXPECT_EQ(r.add(fh(1, 3), Bytes(400), 0, lim, c), R::kStored);
  EXPECT_EQ(r.add(fh(2, 3), Bytes(400), 0, lim, c), R::kStored);
  EXPECT_EQ(r.add(fh(3, 3), Bytes(201), 0, lim, c), R::kDropped);
  EXPECT_EQ(c.drop_oversize, 3u);
  EXPECT_FALSE(r.active());
  // Its retransmission does not start over; nothing of it is kept.
  EXPECT_EQ(r.add(fh(1, 3), Bytes(400), 0, lim, c), R::kDropped);
  EXPECT_EQ(c.drop_oversize, 4u);
  EXPECT_FALSE(r.active());
  // The next message ID is fine.
  EXPECT_EQ(r.add(fh(1, 2, 2), Bytes(10, 1), 0, lim, c), R::kStored);
  EXPECT_EQ(r.add(fh(2, 2, 2), Bytes(10, 2), 0, lim, c), R::kComplete);
  EXPECT_EQ(r.take().size(), 20u);
}

TEST(Reassembly, Timeout) {
  Reassembly r;
  FragLimits lim;
  lim.timeout_ms = 5000;
  FragCounters c;
  EXPECT_EQ(r.add(fh(1, 3), {1}, 1000, lim, c), R::kStored);
  EXPECT_EQ(r.add(fh(2, 3), {2}, 2000, lim, c), R::kStored);
  r.expire(5999, lim, c);
  EXPECT_TRUE(r.active());
  r.expire(6000, lim, c);
  EXPECT_FALSE(r.active());
  EXPECT_EQ(c.drop_timeout, 2u);
  // The last fragment alone does not complete anything.
  EXPECT_EQ(r.add(fh(3, 3), {3}, 6001, lim, c), R::kStored);
}

TEST(Reassembly, ANewMessageIdReplacesTheOldOne) {
  Reassembly r;
  FragLimits lim;
  FragCounters c;
  EXPECT_EQ(r.add(fh(1, 2, 5), {1}, 0, lim, c), R::kStored);
  EXPECT_EQ(r.add(fh(2, 2, 6), {2}, 0, lim, c), R::kStored);
  EXPECT_EQ(r.add(fh(1, 2, 6), {1}, 0, lim, c), R::kComplete);
  EXPECT_EQ(r.take(), (Bytes{1, 2}));
}

TEST(FragCounters, AllNamed) {
  FragCounters c;
  c.drop_timeout = 7;
  auto n = c.named();
  EXPECT_EQ(n.size(), 14u);
  EXPECT_TRUE(std::any_of(n.begin(), n.end(), [](auto& p) {
    return std::string(p.first) == "drop_timeout" && p.second == 7;
  }));
}

}  // namespace
}  // namespace espgw::ike
