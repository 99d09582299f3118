#include "control/model/proposal.h"

#include <gtest/gtest.h>

#include "control/model/config.h"

namespace espgw::model {
namespace {

TEST(IkeProposal, AeadWithPrf) {
  auto r = parse_ike_proposal("aes256gcm16-prfsha384-ecp384");
  ASSERT_TRUE(r) << r.error;
  EXPECT_EQ(r.value->encr, IkeEncr::kAes256Gcm16);
  EXPECT_EQ(r.value->integ, IkeInteg::kNone);
  EXPECT_EQ(r.value->prf, Prf::kHmacSha384);
  EXPECT_EQ(r.value->dh, DhGroup::kEcp384);
  EXPECT_TRUE(r.value->aead());
  EXPECT_EQ(r.value->str(), "aes256gcm16-prfsha384-ecp384");
}

TEST(IkeProposal, CbcPrfDefaultsToInteg) {
  auto r = parse_ike_proposal("aes128-sha512-modp3072");
  ASSERT_TRUE(r) << r.error;
  EXPECT_EQ(r.value->encr, IkeEncr::kAes128Cbc);
  EXPECT_EQ(r.value->integ, IkeInteg::kHmacSha512_256);
  EXPECT_EQ(r.value->prf, Prf::kHmacSha512);
  EXPECT_EQ(r.value->dh, DhGroup::kModp3072);
  EXPECT_FALSE(r.value->aead());
}

TEST(IkeProposal, ExplicitPrfAnyOrderAnyCase) {
  auto r = parse_ike_proposal("ECP521-prfsha256-SHA384-aes256");
  ASSERT_TRUE(r) << r.error;
  EXPECT_EQ(r.value->integ, IkeInteg::kHmacSha384_192);
  EXPECT_EQ(r.value->prf, Prf::kHmacSha256);
  EXPECT_EQ(r.value->dh, DhGroup::kEcp521);
}

TEST(IkeProposal, Curve25519Aliases) {
  auto a = parse_ike_proposal("chacha20poly1305-prfsha256-x25519");
  auto b = parse_ike_proposal("chacha20poly1305-prfsha256-curve25519");
  ASSERT_TRUE(a) << a.error;
  ASSERT_TRUE(b) << b.error;
  EXPECT_EQ(a.value->dh, DhGroup::kCurve25519);
  EXPECT_EQ(*a.value, *b.value);
  EXPECT_EQ(static_cast<int>(a.value->dh), 31);
}

TEST(IkeProposal, Errors) {
  struct Case {
    const char* in;
    const char* says;
  };
  for (const Case& c : {
           Case{"", "empty"},
           Case{"aes256gcm16-prfsha384", "no DH group"},
           Case{"aes256-sha256", "no DH group"},
           Case{"sha256-modp2048", "no encryption"},
           Case{"aes256-modp2048", "needs an integrity"},
           Case{"aes256gcm16-sha256-prfsha256-ecp256", "AEAD"},
           Case{"aes256gcm16-ecp256", "needs a prf"},
           Case{"aes256-aes128-sha256-modp2048", "more than one encryption"},
           Case{"aes256-sha256-sha384-modp2048", "more than one integrity"},
           Case{"aes256-sha256-modp2048-ecp256", "more than one DH"},
           Case{"aes256gcm16-prfsha256-prfsha384-ecp256", "more than one prf"},
           Case{"3des-sha1-modp1024", "'3des'"},
           Case{"aes256-sha256-modp1024", "'modp1024'"},
           Case{"aes256--sha256-modp2048", "empty algorithm"},
           Case{"aes256-sha256-modp2048-", "empty algorithm"},
       }) {
    auto r = parse_ike_proposal(c.in);
    EXPECT_FALSE(r) << c.in;
    EXPECT_NE(r.error.find(c.says), std::string::npos) << c.in << " -> " << r.error;
  }
}

TEST(EspProposal, AeadAndGmac) {
  auto r = parse_esp_proposal("aes256gcm16");
  ASSERT_TRUE(r) << r.error;
  EXPECT_EQ(r.value->algo, crypto::Algo::kAesGcm256);
  EXPECT_EQ(r.value->dh, DhGroup::kNone);
  r = parse_esp_proposal("aes128gmac");
  ASSERT_TRUE(r) << r.error;
  EXPECT_EQ(r.value->algo, crypto::Algo::kAesGmac128);
  r = parse_esp_proposal("chacha20poly1305-x25519");
  ASSERT_TRUE(r) << r.error;
  EXPECT_EQ(r.value->algo, crypto::Algo::kChacha20Poly1305);
  EXPECT_EQ(r.value->dh, DhGroup::kCurve25519);
}

TEST(EspProposal, CbcHmacMapsToTable) {
  auto r = parse_esp_proposal("aes256-sha384");
  ASSERT_TRUE(r) << r.error;
  EXPECT_EQ(r.value->algo, crypto::Algo::kAesCbc256Sha384);
  r = parse_esp_proposal("aes128-sha256-modp2048");
  ASSERT_TRUE(r) << r.error;
  EXPECT_EQ(r.value->algo, crypto::Algo::kAesCbc128Sha256);
  EXPECT_EQ(r.value->dh, DhGroup::kModp2048);
  EXPECT_EQ(r.value->str(), "aes128-sha256-modp2048");
}

TEST(EspProposal, Errors) {
  struct Case {
    const char* in;
    const char* says;
  };
  for (const Case& c : {
           Case{"aes128-sha384", "unsupported combination"},
           Case{"aes256", "needs an integrity"},
           Case{"sha256", "no encryption"},
           Case{"ecp256", "no encryption"},
           Case{"aes256gcm16-sha256", "AEAD"},
           Case{"aes256gcm16-aes128gcm16", "more than one encryption"},
           Case{"aes256-aes256gcm16-sha256", "more than one encryption"},
           Case{"aes256gcm16-ecp256-ecp384", "more than one DH"},
           Case{"aes256gcm16-prfsha256", "'prfsha256'"},
           Case{"aes256gcm12", "'aes256gcm12'"},
           Case{"", "empty"},
       }) {
    auto r = parse_esp_proposal(c.in);
    EXPECT_FALSE(r) << c.in;
    EXPECT_NE(r.error.find(c.says), std::string::npos) << c.in << " -> " << r.error;
  }
}

TEST(EspProposal, Esn) {
  struct Case {
    const char* in;
    EspEsn esn;
    const char* str;
  };
  for (const Case& c : {
           Case{"aes256gcm16", EspEsn::kNo, "aes256gcm16"},
           Case{"aes256gcm16-noesn", EspEsn::kNo, "aes256gcm16"},
           Case{"aes256gcm16-esn", EspEsn::kYes, "aes256gcm16-esn"},
           Case{"aes256gcm16-esn-noesn", EspEsn::kYesNo, "aes256gcm16-esn-noesn"},
           Case{"noesn-ESN-aes256-sha256", EspEsn::kNoYes, "aes256-sha256-noesn-esn"},
           Case{"aes128gcm16-ecp256-esn", EspEsn::kYes, "aes128gcm16-ecp256-esn"},
       }) {
    auto r = parse_esp_proposal(c.in);
    ASSERT_TRUE(r) << c.in << ": " << r.error;
    EXPECT_EQ(r.value->esn, c.esn) << c.in;
    EXPECT_EQ(r.value->str(), c.str) << c.in;
    EXPECT_EQ(parse_esp_proposal(r.value->str()).value, r.value) << c.in;
  }
  for (const char* bad : {"aes256gcm16-esn-esn", "aes256gcm16-noesn-esn-noesn", "esn"})
    EXPECT_FALSE(parse_esp_proposal(bad)) << bad;
  EXPECT_FALSE(parse_ike_proposal("aes256gcm16-prfsha384-ecp384-esn"));  // ESP only
}

TEST(Proposals, DefaultsOfferEsnFirst) {
  for (const auto& d : default_esp_proposals()) EXPECT_EQ(d.esn, EspEsn::kYesNo) << d.str();
}

TEST(Proposals, EmptyListsMeanDefaults) {
  IpsecPolicy p;
  EXPECT_EQ(effective_ike_proposals(p), default_ike_proposals());
  EXPECT_EQ(effective_esp_proposals(p), default_esp_proposals());
  EXPECT_FALSE(default_ike_proposals().empty());
  for (const auto& d : default_ike_proposals()) EXPECT_TRUE(parse_ike_proposal(d.str())) << d.str();
  for (const auto& d : default_esp_proposals()) EXPECT_TRUE(parse_esp_proposal(d.str())) << d.str();
  p.ike = {"aes128-sha256-ecp256"};
  p.esp = {"aes128gcm16-ecp256"};
  ASSERT_EQ(effective_ike_proposals(p).size(), 1u);
  EXPECT_EQ(effective_ike_proposals(p)[0].dh, DhGroup::kEcp256);
  ASSERT_EQ(effective_esp_proposals(p).size(), 1u);
  EXPECT_EQ(effective_esp_proposals(p)[0].algo, crypto::Algo::kAesGcm128);
}

}  // namespace
}  // namespace espgw::model
