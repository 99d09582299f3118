// Key derivation against the RFC 7296 formulas, computed independently here with plain OpenSSL
// HMAC() calls, plus the published HMAC-SHA2 PRF vectors (RFC 4868 section 2.7.1 / RFC 4231).
#include "control/ike/keymat.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tests/unit/control/ike/test_util.h"

namespace espgw::ike {
namespace {

using test::cat;
using test::hex;
using test::to_hex;

// ---- independent reference implementation (straight OpenSSL HMAC) ----

const EVP_MD* md_of(uint16_t prf_id) {
  return prf_id == prf::kHmacSha256   ? EVP_sha256()
         : prf_id == prf::kHmacSha384 ? EVP_sha384()
                                      : EVP_sha512();
}

Bytes ref_hmac(uint16_t prf_id, ByteView key, ByteView data) {
  uint8_t out[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  HMAC(md_of(prf_id), key.data(), int(key.size()), data.data(), data.size(), out, &len);
  return Bytes(out, out + len);
}

// prf+ written out: T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n).
Bytes ref_prf_plus(uint16_t prf_id, ByteView key, ByteView seed, size_t len) {
  Bytes out, t;
  for (uint8_t n = 1; out.size() < len; ++n) {
    Bytes in = cat({t, seed, Bytes{n}});
    t = ref_hmac(prf_id, key, in);
    out.insert(out.end(), t.begin(), t.end());
  }
  out.resize(len);
  return out;
}

Bytes b64(uint64_t v) {
  Bytes b;
  Writer w(b);
  w.u64(v);
  return b;
}

Bytes bytes_of(const Secret& s) { return Bytes(s.data(), s.data() + s.size()); }

// ---- PRF known answers ----

struct PrfVector {
  uint16_t prf;
  std::string key, data, out;
};

TEST(Prf, Rfc4868KnownAnswers) {
  const std::string hi_there = to_hex(Bytes{'H', 'i', ' ', 'T', 'h', 'e', 'r', 'e'});
  const std::string jefe = to_hex(Bytes{'J', 'e', 'f', 'e'});
  std::string what;
  for (char c : std::string("what do ya want for nothing?")) what += to_hex(Bytes{uint8_t(c)});
  std::string big;
  for (char c : std::string("Test Using Larger Than Block-Size Key - Hash Key First"))
    big += to_hex(Bytes{uint8_t(c)});
  const PrfVector vectors[] = {
      {prf::kHmacSha256, test::rep(0x0b, 20), hi_there,
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {prf::kHmacSha256, jefe, what,
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {prf::kHmacSha256, test::rep(0xaa, 20), test::rep(0xdd, 50),
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {prf::kHmacSha256, test::rep(0xaa, 131), big,
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {prf::kHmacSha384, test::rep(0x0b, 20), hi_there,
       "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
       "faea9ea9076ede7f4af152e8b2fa9cb6"},
      {prf::kHmacSha512, test::rep(0x0b, 20), hi_there,
       "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
       "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"},
  };
  for (const auto& v : vectors) {
    Secret out;
    Bytes key = hex(v.key), data = hex(v.data);
    ASSERT_TRUE(compute_prf(v.prf, key, {data}, out));
    EXPECT_EQ(to_hex(out), v.out);
    // Data split in pieces gives the same result.
    ByteView d(data);
    ASSERT_TRUE(compute_prf(v.prf, key, {d.first(3), d.subspan(3)}, out));
    EXPECT_EQ(to_hex(out), v.out);
  }
  Secret out;
  EXPECT_FALSE(compute_prf(2, hex("00"), {hex("00")}, out));  // HMAC-SHA1 PRF not supported
}

TEST(Prf, PrfPlus) {
  Bytes key = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  Bytes seed = hex("f0f1f2f3f4f5f6f7f8f9");
  for (uint16_t id : {prf::kHmacSha256, prf::kHmacSha384, prf::kHmacSha512}) {
    for (size_t len : {size_t(1), prf_len(id), prf_len(id) + 1, size_t(200)}) {
      Secret out;
      ASSERT_TRUE(prf_plus(id, key, seed, len, out));
      EXPECT_EQ(bytes_of(out), ref_prf_plus(id, key, seed, len)) << id << " " << len;
    }
  }
  // First block is prf(K, S | 0x01), second prf(K, T1 | S | 0x02).
  Secret out;
  ASSERT_TRUE(prf_plus(prf::kHmacSha256, key, seed, 64, out));
  Bytes t1 = ref_hmac(prf::kHmacSha256, key, cat({seed, Bytes{1}}));
  Bytes t2 = ref_hmac(prf::kHmacSha256, key, cat({t1, seed, Bytes{2}}));
  EXPECT_EQ(bytes_of(out), cat({t1, t2}));
  // At most 255 blocks.
  EXPECT_TRUE(prf_plus(prf::kHmacSha256, key, seed, 255 * 32, out));
  EXPECT_FALSE(prf_plus(prf::kHmacSha256, key, seed, 255 * 32 + 1, out));
}

// ---- IKE SA keys for the four reference suites ----

struct SuiteCase {
  const char* name;
  size_t d, a, e, p;  // expected SK_* lengths
};

class IkeKeysTest : public ::testing::TestWithParam<SuiteCase> {};

TEST_P(IkeKeysTest, DerivationMatchesRfcFormulas) {
  const SuiteCase& c = GetParam();
  auto prop = parse_proposal(c.name, ProtocolId::kIke);
  ASSERT_TRUE(prop);
  auto suite = suite_of(*prop);
  ASSERT_TRUE(suite);
  IkeKeyLengths l = ike_key_lengths(*suite);
  EXPECT_EQ(l.d, c.d);
  EXPECT_EQ(l.a, c.a);
  EXPECT_EQ(l.e, c.e);
  EXPECT_EQ(l.p, c.p);

  Bytes ni = test::fill(0x4e, 32), nr = test::fill(0x52, 48);
  Bytes gir_bytes = hex("8f2a9b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8");
  Secret gir(gir_bytes.data(), gir_bytes.size());
  uint64_t spi_i = 0x1122334455667788, spi_r = 0x99aabbccddeeff00;
  IkeKeys k;
  ASSERT_TRUE(derive_ike_keys(*suite, ni, nr, gir, spi_i, spi_r, k));

  // SKEYSEED = prf(Ni | Nr, g^ir)
  Bytes skeyseed = ref_hmac(suite->prf, cat({ni, nr}), gir_bytes);
  // {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)
  Bytes stream = ref_prf_plus(suite->prf, skeyseed, cat({ni, nr, b64(spi_i), b64(spi_r)}),
                              c.d + 2 * c.a + 2 * c.e + 2 * c.p);
  size_t off = 0;
  auto next = [&](size_t n) {
    Bytes b(stream.begin() + ptrdiff_t(off), stream.begin() + ptrdiff_t(off + n));
    off += n;
    return b;
  };
  EXPECT_EQ(bytes_of(k.sk_d), next(c.d));
  EXPECT_EQ(bytes_of(k.sk_ai), next(c.a));
  EXPECT_EQ(bytes_of(k.sk_ar), next(c.a));
  EXPECT_EQ(bytes_of(k.sk_ei), next(c.e));
  EXPECT_EQ(bytes_of(k.sk_er), next(c.e));
  EXPECT_EQ(bytes_of(k.sk_pi), next(c.p));
  EXPECT_EQ(bytes_of(k.sk_pr), next(c.p));

  // Rekeyed IKE SA: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) with the old PRF.
  Bytes gir2_bytes = test::fill(0x77, 64);
  Secret gir2(gir2_bytes.data(), gir2_bytes.size());
  Bytes ni2 = test::fill(0x01, 16), nr2 = test::fill(0x02, 16);
  IkeKeys k2;
  ASSERT_TRUE(derive_rekeyed_ike_keys(*suite, prf::kHmacSha512, k.sk_d, ni2, nr2, gir2, 5, 6, k2));
  Bytes skeyseed2 = ref_hmac(prf::kHmacSha512, bytes_of(k.sk_d), cat({gir2_bytes, ni2, nr2}));
  Bytes stream2 = ref_prf_plus(suite->prf, skeyseed2, cat({ni2, nr2, b64(5), b64(6)}), c.d);
  EXPECT_EQ(bytes_of(k2.sk_d), stream2);
  EXPECT_EQ(k2.sk_pr.size(), c.p);
}

INSTANTIATE_TEST_SUITE_P(Suites, IkeKeysTest,
                         ::testing::Values(SuiteCase{"aes128gcm16-prfsha256-ecp256", 32, 0, 20, 32},
                                           SuiteCase{"aes256gcm16-prfsha384-ecp384", 48, 0, 36, 48},
                                           SuiteCase{"aes256-sha256-modp2048", 32, 32, 32, 32},
                                           SuiteCase{"chacha20poly1305-prfsha256-x25519", 32, 0, 36,
                                                     32}),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

// ---- Child SA keys ----

TEST(ChildKeys, OrderAndLayout) {
  Bytes skd_b = test::fill(0xd0, 32);
  Secret sk_d(skd_b.data(), skd_b.size());
  Bytes ni = test::fill(0xa1, 32), nr = test::fill(0xb2, 32);
  for (const auto& info : crypto::kAlgos) {
    ChildKeys ck;
    ASSERT_TRUE(derive_child_keys(prf::kHmacSha256, sk_d, nullptr, ni, nr, info.algo, ck));
    size_t n = info.keymat_len();
    ASSERT_EQ(ck.i2r.size(), n) << info.name;
    ASSERT_EQ(ck.r2i.size(), n) << info.name;
    // KEYMAT = prf+(SK_d, Ni | Nr): initiator->responder (encr incl. salt, then integ) first.
    Bytes km = ref_prf_plus(prf::kHmacSha256, skd_b, cat({ni, nr}), 2 * n);
    EXPECT_EQ(bytes_of(ck.i2r), Bytes(km.begin(), km.begin() + ptrdiff_t(n))) << info.name;
    EXPECT_EQ(bytes_of(ck.r2i), Bytes(km.begin() + ptrdiff_t(n), km.end())) << info.name;
  }
  // With PFS: KEYMAT = prf+(SK_d, g^ir (new) | Ni | Nr).
  Bytes gir_b = test::fill(0x99, 256);
  Secret gir(gir_b.data(), gir_b.size());
  ChildKeys ck;
  ASSERT_TRUE(
      derive_child_keys(prf::kHmacSha384, sk_d, &gir, ni, nr, crypto::Algo::kAesCbc256Sha512, ck));
  Bytes km = ref_prf_plus(prf::kHmacSha384, skd_b, cat({gir_b, ni, nr}), 2 * 96);
  EXPECT_EQ(bytes_of(ck.i2r), Bytes(km.begin(), km.begin() + 96));
  EXPECT_EQ(bytes_of(ck.r2i), Bytes(km.begin() + 96, km.end()));
}

// ---- Shared-key AUTH (section 2.15) ----

TEST(PskAuth, MatchesFormula) {
  Secret psk("correct horse battery staple");
  Bytes skp_b = test::fill(0x5a, 32);
  Secret sk_pi(skp_b.data(), skp_b.size());
  Bytes msg1 = test::fill(0x10, 300);  // stands for the initiator's IKE_SA_INIT request
  Bytes nr = test::fill(0x20, 32);
  IdPayload idi = IdPayload::fqdn("left.example");
  Bytes auth;
  ASSERT_TRUE(psk_auth(prf::kHmacSha256, psk, msg1, nr, sk_pi, idi.body(), auth));

  // AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), RealMessage1 | NonceRData | MACedIDForI)
  const std::string pad = "Key Pad for IKEv2";
  Bytes psk_b(psk.data(), psk.data() + psk.size());
  Bytes key = ref_hmac(prf::kHmacSha256, psk_b, Bytes(pad.begin(), pad.end()));
  Bytes maced = ref_hmac(prf::kHmacSha256, skp_b,
                         cat({Bytes{uint8_t(IdType::kFqdn), 0, 0, 0},
                              Bytes{'l', 'e', 'f', 't', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e'}}));
  EXPECT_EQ(auth, ref_hmac(prf::kHmacSha256, key, cat({msg1, nr, maced})));

  EXPECT_TRUE(psk_auth_verify(prf::kHmacSha256, psk, msg1, nr, sk_pi, idi.body(), auth));
  Bytes bad = auth;
  bad[5] ^= 1;
  EXPECT_FALSE(psk_auth_verify(prf::kHmacSha256, psk, msg1, nr, sk_pi, idi.body(), bad));
  EXPECT_FALSE(
      psk_auth_verify(prf::kHmacSha256, Secret("wrong"), msg1, nr, sk_pi, idi.body(), auth));
  EXPECT_FALSE(psk_auth_verify(prf::kHmacSha256, psk, msg1, nr, sk_pi,
                               IdPayload::fqdn("right.example").body(), auth));
  EXPECT_FALSE(psk_auth_verify(prf::kHmacSha256, psk, msg1, nr, sk_pi, idi.body(),
                               ByteView(auth).first(16)));
}

// Two peers derive the same keys and authenticate each other (initiator and responder roles).
TEST(PskAuth, TwoPeers) {
  auto suite = suite_of(*parse_proposal("aes256gcm16-prfsha384-ecp384", ProtocolId::kIke));
  Bytes ni = test::fill(1, 32), nr = test::fill(2, 32);
  Bytes gir_b = test::fill(3, 48);
  Secret gir(gir_b.data(), gir_b.size());
  IkeKeys i, r;
  ASSERT_TRUE(derive_ike_keys(*suite, ni, nr, gir, 1, 2, i));
  ASSERT_TRUE(derive_ike_keys(*suite, ni, nr, gir, 1, 2, r));
  Secret psk("s3cret");
  Bytes m1 = test::fill(0xaa, 200), m2 = test::fill(0xbb, 180);
  Bytes idi = IdPayload::from_addr(*IpAddr::parse("192.0.2.1")).body();
  Bytes idr = IdPayload::from_addr(*IpAddr::parse("198.51.100.1")).body();
  Bytes auth_i, auth_r;
  ASSERT_TRUE(psk_auth(suite->prf, psk, m1, nr, i.sk_pi, idi, auth_i));
  ASSERT_TRUE(psk_auth(suite->prf, psk, m2, ni, r.sk_pr, idr, auth_r));
  EXPECT_EQ(auth_i.size(), 48u);
  EXPECT_TRUE(psk_auth_verify(suite->prf, psk, m1, nr, r.sk_pi, idi, auth_i));
  EXPECT_TRUE(psk_auth_verify(suite->prf, psk, m2, ni, i.sk_pr, idr, auth_r));
  EXPECT_NE(auth_i, auth_r);
}

}  // namespace
}  // namespace espgw::ike
