// Diffie-Hellman groups: both sides agree; invalid peer values are rejected.
#include "control/ike/ke.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>

#include "control/ike/types.h"
#include "tests/unit/control/ike/test_util.h"

namespace espgw::ike {
namespace {

class KeTest : public ::testing::TestWithParam<uint16_t> {};

TEST_P(KeTest, BothSidesAgree) {
  uint16_t g = GetParam();
  auto a = make_ke(g);
  auto b = make_ke(g);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->group(), g);
  EXPECT_EQ(a->public_value().size(), ke_public_len(g));
  EXPECT_NE(a->public_value(), b->public_value());
  Secret sa, sb;
  ASSERT_TRUE(a->compute(b->public_value(), sa));
  ASSERT_TRUE(b->compute(a->public_value(), sb));
  EXPECT_TRUE(sa.equals(sb));
  // g^ir length: MODP = modulus length, ECP = x coordinate, X25519 = 32.
  size_t expect = g == dh::kCurve25519 ? 32
                  : g >= dh::kEcp256   ? ke_public_len(g) / 2
                                       : ke_public_len(g);
  EXPECT_EQ(sa.size(), expect);
}

TEST_P(KeTest, WrongLengthRejected) {
  uint16_t g = GetParam();
  auto a = make_ke(g);
  auto b = make_ke(g);
  ASSERT_TRUE(a && b);
  Secret s;
  Bytes v = b->public_value();
  v.push_back(0);
  EXPECT_FALSE(a->compute(v, s));
  v.resize(v.size() - 2);
  EXPECT_FALSE(a->compute(v, s));
  EXPECT_FALSE(a->compute({}, s));
  EXPECT_TRUE(s.empty());
}

INSTANTIATE_TEST_SUITE_P(Groups, KeTest,
                         ::testing::Values(dh::kModp2048, dh::kModp3072, dh::kEcp256, dh::kEcp384,
                                           dh::kEcp521, dh::kCurve25519));

TEST(Ke, UnsupportedGroup) {
  EXPECT_EQ(make_ke(2), nullptr);
  EXPECT_EQ(make_ke(0), nullptr);
  EXPECT_EQ(ke_public_len(1), 0u);
}

Bytes bn_bytes(const BIGNUM* bn, size_t len) {
  Bytes b(len);
  BN_bn2binpad(bn, b.data(), int(len));
  return b;
}

// 0, 1, p-1, p and 2^k-1 (> p) are not valid MODP public values (RFC 7296 / RFC 6989).
TEST(Ke, ModpRangeChecks) {
  struct G {
    uint16_t group;
    BIGNUM* (*prime)(BIGNUM*);
    size_t len;
  } groups[] = {{dh::kModp2048, BN_get_rfc3526_prime_2048, 256},
                {dh::kModp3072, BN_get_rfc3526_prime_3072, 384}};
  for (const auto& g : groups) {
    auto a = make_ke(g.group);
    ASSERT_TRUE(a);
    BIGNUM* p = g.prime(nullptr);
    ASSERT_NE(p, nullptr);
    BIGNUM* pm1 = BN_dup(p);
    BN_sub_word(pm1, 1);
    Secret s;
    EXPECT_FALSE(a->compute(Bytes(g.len, 0), s));
    Bytes one(g.len, 0);
    one.back() = 1;
    EXPECT_FALSE(a->compute(one, s));
    EXPECT_FALSE(a->compute(bn_bytes(pm1, g.len), s));
    EXPECT_FALSE(a->compute(bn_bytes(p, g.len), s));
    EXPECT_FALSE(a->compute(Bytes(g.len, 0xff), s));
    // 2 is in range (and the generator), so accepted.
    Bytes two(g.len, 0);
    two.back() = 2;
    EXPECT_TRUE(a->compute(two, s));
    // Our own public value is p-sized and below p.
    BIGNUM* y = BN_bin2bn(a->public_value().data(), int(g.len), nullptr);
    EXPECT_LT(BN_cmp(y, pm1), 0);
    BN_free(y);
    BN_free(pm1);
    BN_free(p);
  }
}

TEST(Ke, EcpPointNotOnCurveRejected) {
  for (uint16_t g : {dh::kEcp256, dh::kEcp384, dh::kEcp521}) {
    auto a = make_ke(g);
    auto b = make_ke(g);
    ASSERT_TRUE(a && b);
    Secret s;
    size_t half = ke_public_len(g) / 2;
    // (1, 1) is not on any of the NIST curves.
    Bytes bad(2 * half, 0);
    bad[half - 1] = 1;
    bad.back() = 1;
    EXPECT_FALSE(a->compute(bad, s)) << g;
    // A valid point with y flipped in its last bit.
    Bytes flip = b->public_value();
    flip.back() ^= 1;
    EXPECT_FALSE(a->compute(flip, s)) << g;
    // All zeros (the "point at infinity" is not encodable as x||y).
    EXPECT_FALSE(a->compute(Bytes(2 * half, 0), s)) << g;
    // Coordinates >= p.
    EXPECT_FALSE(a->compute(Bytes(2 * half, 0xff), s)) << g;
  }
}

TEST(Ke, X25519SmallOrderRejected) {
  auto a = make_ke(dh::kCurve25519);
  ASSERT_TRUE(a);
  Secret s;
  // u = 0 and u = 1 are small-order points: the shared secret is all zero (RFC 8031 section 2).
  EXPECT_FALSE(a->compute(Bytes(32, 0), s));
  Bytes one(32, 0);
  one[0] = 1;
  EXPECT_FALSE(a->compute(one, s));
  EXPECT_TRUE(s.empty());
}

}  // namespace
}  // namespace espgw::ike
