#include "dataplane/proto/pkt.h"

#include <gtest/gtest.h>

#include <vector>

namespace espgw::dp {
namespace {

std::vector<uint8_t> eth(uint16_t type) {
  std::vector<uint8_t> f(14, 0);
  f[0] = 0x02;
  store_be16(f.data() + 12, type);
  return f;
}

std::vector<uint8_t> ipv4(uint8_t proto = 17, uint16_t payload = 8, uint32_t src = 0x0a010002,
                          uint32_t dst = 0x0a020002) {
  std::vector<uint8_t> f = eth(kEtherTypeIpv4);
  std::vector<uint8_t> ip(20 + payload, 0);
  ip[0] = 0x45;
  store_be16(ip.data() + 2, uint16_t(20 + payload));
  store_be16(ip.data() + 6, 0x4000);
  ip[8] = 64;
  ip[9] = proto;
  store_be32(ip.data() + 12, src);
  store_be32(ip.data() + 16, dst);
  store_be16(ip.data() + 10, uint16_t(~csum_fold(csum_add(0, ip.data(), 20))));
  f.insert(f.end(), ip.begin(), ip.end());
  return f;
}

std::vector<uint8_t> ipv6(uint8_t nh, std::vector<uint8_t> payload) {
  std::vector<uint8_t> f = eth(kEtherTypeIpv6);
  std::vector<uint8_t> ip(40, 0);
  ip[0] = 0x60;
  store_be16(ip.data() + 4, uint16_t(payload.size()));
  ip[6] = nh;
  ip[7] = 64;
  ip[8] = 0xfd;
  ip[23] = 1;
  ip[24] = 0xfd;
  ip[39] = 2;
  f.insert(f.end(), ip.begin(), ip.end());
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

Drop parse_drop(const std::vector<uint8_t>& f) {
  Parsed p;
  ParseResult r = parse_frame(f.data(), uint32_t(f.size()), p);
  return r.is_ok() ? Drop::kCount : r.reason;
}

TEST(Parse, GoodIpv4) {
  auto f = ipv4();
  Parsed p;
  ASSERT_TRUE(parse_frame(f.data(), uint32_t(f.size()), p).is_ok());
  EXPECT_EQ(p.l3, L3::kIpv4);
  EXPECT_EQ(p.l3_len, 28);
  EXPECT_EQ(p.l4_off, 34);
  EXPECT_EQ(p.l4_proto, 17);
  EXPECT_TRUE(p.df);
  EXPECT_FALSE(p.fragment);
  EXPECT_EQ(p.ttl, 64);
}

TEST(Parse, EthernetPaddingIsNotPartOfThePacket) {
  auto f = ipv4();
  f.resize(60, 0);
  Parsed p;
  ASSERT_TRUE(parse_frame(f.data(), uint32_t(f.size()), p).is_ok());
  EXPECT_EQ(p.l3_len, 28);
}

TEST(Parse, Runt) { EXPECT_EQ(parse_drop(std::vector<uint8_t>(13, 0)), Drop::runt); }

TEST(Parse, UnknownEthertype) { EXPECT_EQ(parse_drop(eth(0x88b5)), Drop::unknown_ethertype); }

TEST(Parse, Ipv4Errors) {
  auto f = ipv4();
  f.resize(14 + 19);
  EXPECT_EQ(parse_drop(f), Drop::ipv4_bad_ihl);
  f = ipv4();
  f[14] = 0x55;
  EXPECT_EQ(parse_drop(f), Drop::ipv4_bad_version);
  f = ipv4();
  f[14] = 0x44;  // IHL 4
  EXPECT_EQ(parse_drop(f), Drop::ipv4_bad_ihl);
  f = ipv4();
  f[14] = 0x4f;  // IHL 15 = 60 bytes > frame
  EXPECT_EQ(parse_drop(f), Drop::ipv4_bad_ihl);
  f = ipv4();
  store_be16(f.data() + 16, 200);  // total length beyond the frame
  EXPECT_EQ(parse_drop(f), Drop::ipv4_bad_length);
  f = ipv4();
  store_be16(f.data() + 16, 19);  // total length < header
  EXPECT_EQ(parse_drop(f), Drop::ipv4_bad_length);
  f = ipv4();
  f[24] ^= 0x55;  // checksum
  EXPECT_EQ(parse_drop(f), Drop::ipv4_bad_checksum);
}

TEST(Parse, Ipv4Martians) {
  EXPECT_EQ(parse_drop(ipv4(17, 8, 0x7f000001)), Drop::ipv4_martian);
  EXPECT_EQ(parse_drop(ipv4(17, 8, 0x00000001)), Drop::ipv4_martian);
  EXPECT_EQ(parse_drop(ipv4(17, 8, 0xe0000001)), Drop::ipv4_martian);
  EXPECT_EQ(parse_drop(ipv4(17, 8, 0x0a000001, 0x7f000001)), Drop::ipv4_martian);
}

TEST(Parse, Ipv6ExtensionChain) {
  // destination options (8 bytes) then UDP
  std::vector<uint8_t> pl = {17, 0, 0, 0, 0, 0, 0, 0};
  pl.resize(16, 0);
  auto f = ipv6(60, pl);
  Parsed p;
  ASSERT_TRUE(parse_frame(f.data(), uint32_t(f.size()), p).is_ok());
  EXPECT_EQ(p.l4_proto, 17);
  EXPECT_EQ(p.l4_off, 14 + 48);
  // fragment header
  f = ipv6(44, {58, 0, 0, 1, 0, 0, 0, 1, 128, 0, 0, 0});
  ASSERT_TRUE(parse_frame(f.data(), uint32_t(f.size()), p).is_ok());
  EXPECT_TRUE(p.fragment);
  EXPECT_EQ(p.l4_proto, 58);
}

TEST(Parse, Ipv6Errors) {
  auto f = ipv6(17, std::vector<uint8_t>(8));
  store_be16(f.data() + 18, 100);
  EXPECT_EQ(parse_drop(f), Drop::ipv6_bad_length);
  f = ipv6(60, {17, 4, 0, 0});  // claims 40 bytes of options
  EXPECT_EQ(parse_drop(f), Drop::ipv6_bad_ext);
  f = ipv6(60, {0, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0});  // hop-by-hop not first
  EXPECT_EQ(parse_drop(f), Drop::ipv6_bad_ext);
  std::vector<uint8_t> chain;  // nine destination-options headers
  for (int i = 0; i < 9; ++i) chain.insert(chain.end(), {60, 0, 0, 0, 0, 0, 0, 0});
  f = ipv6(60, chain);
  EXPECT_EQ(parse_drop(f), Drop::ipv6_bad_ext);
  f = ipv6(17, {});
  f[14 + 8] = 0xff;  // multicast source
  EXPECT_EQ(parse_drop(f), Drop::ipv6_martian);
  f = ipv6(17, {});
  f[14] = 0x40;
  EXPECT_EQ(parse_drop(f), Drop::ipv6_bad_version);
}

TEST(Parse, EveryPrefixOfAValidFrameIsSafe) {
  // Truncations must be rejected with a reason, never read past the end (ASan checks).
  auto f = ipv6(60, {17, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8});
  for (size_t n = 0; n < f.size(); ++n) {
    std::vector<uint8_t> t(f.begin(), f.begin() + long(n));
    Parsed p;
    EXPECT_FALSE(parse_frame(t.data(), uint32_t(t.size()), p).is_ok()) << n;
  }
}

}  // namespace
}  // namespace espgw::dp
