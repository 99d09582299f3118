#include "dataplane/proto/icmp.h"

#include <gtest/gtest.h>

#include <vector>

namespace espgw::dp {
namespace {

std::vector<uint8_t> v4_packet(uint16_t len) {
  std::vector<uint8_t> ip(len, 0xab);
  ip[0] = 0x45;
  store_be16(ip.data() + 2, len);
  store_be32(ip.data() + 12, 0x0a010002);
  store_be32(ip.data() + 16, 0x0a020002);
  ip[6] = ip[7] = 0;  // not a fragment
  ip[9] = 6;
  return ip;
}

TEST(Icmp4, FragNeededQuotesHeaderAndCarriesMtu) {
  auto orig = v4_packet(1500);
  uint8_t out[1600];
  const uint8_t src[4] = {10, 1, 0, 1};
  uint32_t n = build_icmp4_error(out, sizeof out, orig.data(), 1500, kIcmp4Unreach,
                                 kIcmp4CodeFragNeeded, 1400, src);
  ASSERT_EQ(n, 576u);  // RFC 1812: at most 576 bytes
  EXPECT_EQ(out[0], 0x45);
  EXPECT_EQ(load_be16(out + 2), 576);
  EXPECT_EQ(csum_fold(csum_add(0, out, 20)), 0xffff);  // header checksum valid
  EXPECT_EQ(load_be32(out + 16), 0x0a010002u);         // to the original source
  EXPECT_EQ(out[20], 3);
  EXPECT_EQ(out[21], 4);
  EXPECT_EQ(load_be16(out + 26), 1400);
  EXPECT_EQ(csum_fold(csum_add(0, out + 20, n - 20)), 0xffff);  // ICMP checksum valid
  EXPECT_EQ(0, std::memcmp(out + 28, orig.data(), 20));
}

TEST(Icmp4, SmallPacketQuotedWhole) {
  auto orig = v4_packet(60);
  uint8_t out[200];
  const uint8_t src[4] = {10, 1, 0, 1};
  EXPECT_EQ(build_icmp4_error(out, sizeof out, orig.data(), 60, kIcmp4TimeExceeded, 0, 0, src),
            88u);
  EXPECT_EQ(build_icmp4_error(out, 50, orig.data(), 60, kIcmp4TimeExceeded, 0, 0, src), 0u);
}

TEST(Icmp6, TooBigWithinMinimumMtu) {
  std::vector<uint8_t> orig(1500, 0xcd);
  orig[0] = 0x60;
  uint8_t out[1600];
  uint8_t src[16] = {0xfd, 0, 0, 0xa, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  uint32_t n = build_icmp6_error(out, sizeof out, orig.data(), 1500, kIcmp6TooBig, 0, 1400, src);
  ASSERT_EQ(n, 1280u);
  EXPECT_EQ(load_be16(out + 4), 1240);
  EXPECT_EQ(out[40], 2);
  EXPECT_EQ(load_be32(out + 44), 1400u);
  EXPECT_EQ(icmp6_checksum(out, out + 40, n - 40, 58), 0);  // verifies to zero
}

TEST(Icmp, NeverAboutIcmpErrorsOrLaterFragments) {
  auto pkt = v4_packet(48);
  std::vector<uint8_t> f(14, 0);
  f.insert(f.end(), pkt.begin(), pkt.end());
  Parsed p;
  p.l3 = L3::kIpv4;
  p.l3_len = 48;
  p.l4_off = 34;
  p.l4_proto = 1;
  f[34] = 3;  // an ICMP error
  EXPECT_FALSE(may_send_icmp_error(f.data(), p));
  f[34] = 8;  // echo request
  EXPECT_TRUE(may_send_icmp_error(f.data(), p));
  p.l4_proto = 6;
  store_be16(f.data() + 14 + 6, 0x0010);  // fragment offset != 0
  EXPECT_FALSE(may_send_icmp_error(f.data(), p));
}

TEST(Icmp, TtlDecrementKeepsChecksumValid) {
  for (int ttl = 2; ttl < 256; ttl += 17) {
    auto ip = v4_packet(40);
    ip[8] = uint8_t(ttl);
    store_be16(ip.data() + 10, 0);
    store_be16(ip.data() + 10, uint16_t(~csum_fold(csum_add(0, ip.data(), 20))));
    ipv4_dec_ttl(ip.data());
    EXPECT_EQ(ip[8], ttl - 1);
    EXPECT_EQ(csum_fold(csum_add(0, ip.data(), 20)), 0xffff) << ttl;
  }
}

}  // namespace
}  // namespace espgw::dp
