// NAT detection hashes (RFC 7296 section 2.23) and stateless cookies (section 2.6).
#include <gtest/gtest.h>
#include <openssl/sha.h>

#include "control/ike/cookie.h"
#include "control/ike/nat.h"
#include "tests/unit/control/ike/test_util.h"

namespace espgw::ike {
namespace {

using test::hex;

TEST(NatDetection, Sha1OfSpisAddressPort) {
  IpAddr a = *IpAddr::parse("192.0.2.10");
  auto h = nat_detection_hash(0x0102030405060708, 0, a, 500);
  Bytes in = hex("0102030405060708 0000000000000000 c000020a 01f4");
  uint8_t ref[20];
  SHA1(in.data(), in.size(), ref);
  EXPECT_EQ(Bytes(h.begin(), h.end()), Bytes(ref, ref + 20));
  EXPECT_TRUE(nat_detection_matches(Bytes(h.begin(), h.end()), 0x0102030405060708, 0, a, 500));
  EXPECT_FALSE(nat_detection_matches(Bytes(h.begin(), h.end()), 0x0102030405060708, 0, a, 4500));
  EXPECT_FALSE(nat_detection_matches(Bytes(19, 0), 0x0102030405060708, 0, a, 500));

  IpAddr b = *IpAddr::parse("2001:db8::1");
  auto h6 = nat_detection_hash(1, 2, b, 4500);
  Bytes in6 = hex("0000000000000001 0000000000000002 20010db8000000000000000000000001 1194");
  SHA1(in6.data(), in6.size(), ref);
  EXPECT_EQ(Bytes(h6.begin(), h6.end()), Bytes(ref, ref + 20));
}

TEST(Cookie, MakeVerifyRotate) {
  Bytes s1(32, 0x11);
  CookieJar jar(Secret(s1.data(), s1.size()));
  Bytes ni(32, 0x5a);
  IpAddr ip = *IpAddr::parse("198.51.100.7");
  uint64_t spi = 0xfeedface00000001;
  Bytes c = jar.make(ni, ip, spi);
  ASSERT_EQ(c.size(), CookieJar::kCookieLen);
  // <VersionIDofSecret> | SHA-256(Ni | IPi | SPIi | <secret>)
  Bytes in = test::cat({ni, hex("c6336407 feedface00000001"), s1});
  uint8_t ref[32];
  SHA256(in.data(), in.size(), ref);
  EXPECT_EQ(c, test::cat({hex("00000000"), Bytes(ref, ref + 32)}));
  EXPECT_TRUE(jar.verify(c, ni, ip, spi));

  EXPECT_FALSE(jar.verify(c, Bytes(32, 0x5b), ip, spi));
  EXPECT_FALSE(jar.verify(c, ni, *IpAddr::parse("198.51.100.8"), spi));
  EXPECT_FALSE(jar.verify(c, ni, ip, spi + 1));
  EXPECT_FALSE(jar.verify(ByteView(c).first(20), ni, ip, spi));
  Bytes t = c;
  t.back() ^= 1;
  EXPECT_FALSE(jar.verify(t, ni, ip, spi));

  // After one rotation the old cookie is still accepted, new ones carry version 1.
  jar.rotate();
  EXPECT_TRUE(jar.verify(c, ni, ip, spi));
  Bytes c1 = jar.make(ni, ip, spi);
  EXPECT_EQ(Bytes(c1.begin(), c1.begin() + 4), hex("00000001"));
  EXPECT_NE(c1, c);
  EXPECT_TRUE(jar.verify(c1, ni, ip, spi));
  // After a second rotation the first cookie has expired.
  jar.rotate();
  EXPECT_FALSE(jar.verify(c, ni, ip, spi));
  EXPECT_TRUE(jar.verify(c1, ni, ip, spi));
  // A version from the future is refused.
  Bytes f = c1;
  f[3] = 9;
  EXPECT_FALSE(jar.verify(f, ni, ip, spi));

  // Random-secret jars do not accept each other's cookies.
  CookieJar a, b;
  EXPECT_FALSE(b.verify(a.make(ni, ip, spi), ni, ip, spi));
}

}  // namespace
}  // namespace espgw::ike
