// Proposal parsing, selection (RFC 7296 sections 2.7, 3.3.6) and the ESP algorithm mapping.
#include "control/ike/transforms.h"

#include <gtest/gtest.h>

namespace espgw::ike {
namespace {

Proposal ike(const char* s) {
  auto p = parse_proposal(s, ProtocolId::kIke);
  EXPECT_TRUE(p) << s;
  return p.value_or(Proposal{});
}

Proposal esp(const char* s, uint32_t spi = 0x01020304) {
  auto p = parse_proposal(s, ProtocolId::kEsp);
  EXPECT_TRUE(p) << s;
  Proposal r = p.value_or(Proposal{});
  r.spi = {uint8_t(spi >> 24), uint8_t(spi >> 16), uint8_t(spi >> 8), uint8_t(spi)};
  return r;
}

TEST(Transforms, ParseProposal) {
  Proposal p = ike("aes128gcm16-prfsha256-ecp256");
  ASSERT_EQ(p.transforms.size(), 3u);
  EXPECT_EQ(p.transforms[0], (Transform{TransformType::kEncr, encr::kAesGcm16, 128}));
  EXPECT_EQ(p.transforms[1], (Transform{TransformType::kPrf, prf::kHmacSha256, 0}));
  EXPECT_EQ(p.transforms[2], (Transform{TransformType::kDh, dh::kEcp256, 0}));

  // PRF derived from the integrity algorithm when not given.
  p = ike("aes256-sha256-modp2048");
  auto s = suite_of(p);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->prf, prf::kHmacSha256);
  EXPECT_EQ(s->integ, integ::kHmacSha256_128);
  EXPECT_EQ(s->str(), "aes256-sha256-prfsha256-modp2048");
  EXPECT_EQ(s->encr_key_len(), 32u);

  s = suite_of(ike("chacha20poly1305-prfsha256-x25519"));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->encr_key_len(), 36u);
  EXPECT_TRUE(s->aead());

  // Several algorithms of a type in one proposal.
  p = ike("aes256gcm16-aes128gcm16-prfsha384-prfsha256-ecp384-ecp256");
  EXPECT_EQ(p.transforms.size(), 6u);
  EXPECT_FALSE(suite_of(p));

  // ESP: noesn by default, DH only with PFS.
  p = esp("aes256gcm16");
  s = suite_of(p);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->dh, 0);
  EXPECT_EQ(s->esn, 0);
  EXPECT_EQ(s->str(), "aes256gcm16-noesn");
  s = suite_of(esp("aes128-sha256-modp3072-esn"));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->dh, dh::kModp3072);
  EXPECT_EQ(s->esn, 1);

  for (const char* bad : {"", "aes128", "aes128gcm16-sha256-prfsha256-ecp256",
                          "aes128gcm16-prfsha256", "aes128-aes128gcm16-sha256-ecp256",
                          "aes128-sha256-ecp256-esn", "3des-sha1-modp1024", "aes128--sha256"})
    EXPECT_FALSE(parse_proposal(bad, ProtocolId::kIke)) << bad;
  EXPECT_FALSE(parse_proposal("aes128gcm16-prfsha256", ProtocolId::kEsp));
  EXPECT_FALSE(parse_proposal("aes128", ProtocolId::kEsp));
}

TEST(Transforms, SelectFirstOfPeersAcceptable) {
  std::vector<Proposal> ours = {ike("aes256gcm16-prfsha384-ecp384"),
                                ike("aes128gcm16-prfsha256-ecp256")};
  std::vector<Proposal> theirs = {ike("aes256-sha512-modp3072"),
                                  ike("aes128gcm16-prfsha256-ecp256"),
                                  ike("aes256gcm16-prfsha384-ecp384")};
  for (size_t i = 0; i < theirs.size(); ++i) theirs[i].number = uint8_t(i + 1);
  auto sel = select_proposal(ours, theirs);
  ASSERT_TRUE(sel);
  EXPECT_EQ(sel->number, 2);  // the peer's order wins
  auto s = suite_of(*sel);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->str(), "aes128gcm16-prfsha256-ecp256");
}

TEST(Transforms, SelectPicksOneTransformPerType) {
  std::vector<Proposal> ours = {ike("aes128gcm16-aes256gcm16-prfsha256-prfsha384-ecp256-x25519")};
  std::vector<Proposal> theirs = {ike("aes256gcm16-aes128gcm16-prfsha512-prfsha384-x25519-ecp256")};
  auto sel = select_proposal(ours, theirs);
  ASSERT_TRUE(sel);
  auto s = suite_of(*sel);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->encr_key_bits, 256);
  EXPECT_EQ(s->prf, prf::kHmacSha384);
  EXPECT_EQ(s->dh, dh::kCurve25519);
}

TEST(Transforms, SelectRejects) {
  std::vector<Proposal> ours = {ike("aes128gcm16-prfsha256-ecp256")};
  // Different key length.
  EXPECT_FALSE(select_proposal(ours, {ike("aes256gcm16-prfsha256-ecp256")}));
  // Missing DH.
  Proposal nodh = ike("aes128gcm16-prfsha256-ecp256");
  nodh.transforms.pop_back();
  EXPECT_FALSE(select_proposal(ours, {nodh}));
  // Unknown attribute.
  Proposal attr = ike("aes128gcm16-prfsha256-ecp256");
  attr.unknown_attribute = true;
  EXPECT_FALSE(select_proposal(ours, {attr}));
  // Unknown transform type 6.
  Proposal extra = ike("aes128gcm16-prfsha256-ecp256");
  extra.transforms.push_back({TransformType(6), 1, 0});
  EXPECT_FALSE(select_proposal(ours, {extra}));
  // Wrong protocol.
  EXPECT_FALSE(select_proposal(ours, {esp("aes128gcm16")}));
  // AEAD with an integrity algorithm we both "have" is still incomplete.
  Proposal mixed = ike("aes128gcm16-prfsha256-ecp256");
  mixed.transforms.push_back({TransformType::kInteg, integ::kHmacSha256_128, 0});
  EXPECT_FALSE(select_proposal({mixed}, {mixed}));
  // ESP SPI of the wrong size.
  Proposal e = esp("aes128gcm16");
  e.spi.clear();
  EXPECT_FALSE(select_proposal({esp("aes128gcm16")}, {e}));
}

TEST(Transforms, SelectEsp) {
  std::vector<Proposal> ours = {esp("aes256gcm16-aes128gcm16"), esp("aes256-sha256")};
  // The peer offers INTEG NONE explicitly with GCM, and both ESN values.
  Proposal theirs = esp("aes128gcm16-esn-noesn", 0xcafe0001);
  theirs.transforms.push_back({TransformType::kInteg, integ::kNone, 0});
  auto sel = select_proposal(ours, {theirs});
  ASSERT_TRUE(sel);
  EXPECT_EQ(sel->spi, (Bytes{0xca, 0xfe, 0x00, 0x01}));
  auto s = suite_of(*sel);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->esn, esn::kNo);
  EXPECT_EQ(s->integ, 0);
  EXPECT_EQ(esp_algo(*s), crypto::Algo::kAesGcm128);
  // The explicit NONE is echoed.
  EXPECT_EQ(sel->transforms.size(), 3u);

  // PFS: we require a group, the peer offers none -> no match; with the group -> match.
  std::vector<Proposal> pfs = {esp("aes256gcm16-ecp256")};
  EXPECT_FALSE(select_proposal(pfs, {esp("aes256gcm16")}));
  sel = select_proposal(pfs, {esp("aes256gcm16-modp2048-ecp256")});
  ASSERT_TRUE(sel);
  EXPECT_EQ(suite_of(*sel)->dh, dh::kEcp256);
  // Without PFS we accept a peer that offers "none" among its groups.
  Proposal opt = esp("aes256gcm16-ecp256");
  opt.transforms.push_back({TransformType::kDh, dh::kNone, 0});
  sel = select_proposal({esp("aes256gcm16")}, {opt});
  ASSERT_TRUE(sel);
  EXPECT_EQ(suite_of(*sel)->dh, dh::kNone);
  // IKE_AUTH: DH transforms are ignored on both sides.
  sel = select_proposal(without_dh(pfs), without_dh({esp("aes256gcm16-x25519")}));
  ASSERT_TRUE(sel);
}

TEST(Transforms, AcceptReply) {
  std::vector<Proposal> offered = {ike("aes256gcm16-aes128gcm16-prfsha256-ecp256-x25519")};
  SaPayload reply{{ike("aes128gcm16-prfsha256-x25519")}};
  auto s = accept_reply(offered, reply);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->dh, dh::kCurve25519);
  // Something we did not offer.
  EXPECT_FALSE(accept_reply(offered, SaPayload{{ike("aes128gcm16-prfsha384-x25519")}}));
  // Two transforms of one type.
  EXPECT_FALSE(accept_reply(offered, SaPayload{{ike("aes128gcm16-prfsha256-x25519-ecp256")}}));
  // Two proposals.
  EXPECT_FALSE(accept_reply(offered, SaPayload{{ike("aes128gcm16-prfsha256-x25519"),
                                                ike("aes128gcm16-prfsha256-x25519")}}));
}

TEST(Transforms, AcceptReplyInAnyTransformOrder) {
  // strongSwan lists ENCR, INTEG, PRF, DH; the transforms of a proposal are a set
  std::vector<Proposal> offered = {ike("aes256-sha256-modp2048")};
  Proposal r = ike("aes256-sha256-modp2048");
  std::reverse(r.transforms.begin(), r.transforms.end());
  auto s = accept_reply(offered, SaPayload{{r}});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->dh, 14);
  r.transforms.back().id ^= 1;  // a transform we did not offer, wherever it stands
  EXPECT_FALSE(accept_reply(offered, SaPayload{{r}}));
}

TEST(Transforms, EspAlgoMapping) {
  struct Case {
    const char* proposal;
    crypto::Algo algo;
  } cases[] = {
      {"aes128gcm16", crypto::Algo::kAesGcm128},
      {"aes256gcm16", crypto::Algo::kAesGcm256},
      {"aes128-sha256", crypto::Algo::kAesCbc128Sha256},
      {"aes256-sha256", crypto::Algo::kAesCbc256Sha256},
      {"aes256-sha384", crypto::Algo::kAesCbc256Sha384},
      {"aes256-sha512", crypto::Algo::kAesCbc256Sha512},
      {"chacha20poly1305", crypto::Algo::kChacha20Poly1305},
      {"aes128gmac", crypto::Algo::kAesGmac128},
      {"aes256gmac", crypto::Algo::kAesGmac256},
  };
  for (const auto& c : cases) {
    auto s = suite_of(esp(c.proposal));
    ASSERT_TRUE(s) << c.proposal;
    EXPECT_EQ(esp_algo(*s), c.algo) << c.proposal;
    EXPECT_EQ(s->encr_key_len() + s->integ_key_len(), crypto::info(c.algo).keymat_len())
        << c.proposal;
    EXPECT_EQ(crypto::info(c.algo).name, s->str().substr(0, s->str().size() - 6)) << c.proposal;
  }
  EXPECT_FALSE(esp_algo(*suite_of(esp("aes128-sha384"))));  // not in the data-plane table
  EXPECT_FALSE(esp_algo(*suite_of(ike("aes128gcm16-prfsha256-ecp256"))));
}

}  // namespace
}  // namespace espgw::ike
