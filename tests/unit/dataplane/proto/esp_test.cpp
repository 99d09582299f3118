#include "dataplane/proto/esp.h"

#include <gtest/gtest.h>

#include <vector>

namespace espgw::dp {
namespace {

TEST(Esp, PaddingAlignsPayloadAndTrailer) {
  for (uint32_t block : {4u, 16u})
    for (uint32_t len = 0; len < 100; ++len) {
      uint32_t pad = esp_pad_len(len, block);
      EXPECT_LT(pad, block);
      EXPECT_EQ((len + pad + 2) % block, 0u);
    }
}

TEST(Esp, TrailerRoundTripAndErrors) {
  std::vector<uint8_t> b(40, 0xaa);
  uint32_t pad = esp_pad_len(30, 16);
  esp_write_trailer(b.data() + 30, pad, kNextIpv4);
  uint32_t inner;
  uint8_t nh;
  ASSERT_EQ(esp_check_trailer(b.data(), 30 + pad + 2, inner, nh), TrailerResult::kOk);
  EXPECT_EQ(inner, 30u);
  EXPECT_EQ(nh, kNextIpv4);
  auto bad = b;
  bad[30] = 7;  // pad byte must be 1
  EXPECT_EQ(esp_check_trailer(bad.data(), 30 + pad + 2, inner, nh), TrailerResult::kBadPad);
  bad = b;
  bad[30 + pad] = 200;  // pad length beyond the payload
  EXPECT_EQ(esp_check_trailer(bad.data(), 30 + pad + 2, inner, nh), TrailerResult::kBadPad);
  bad = b;
  bad[30 + pad + 1] = 17;
  EXPECT_EQ(esp_check_trailer(bad.data(), 30 + pad + 2, inner, nh),
            TrailerResult::kBadNextHeader);
  bad[30 + pad + 1] = kNextNone;
  EXPECT_EQ(esp_check_trailer(bad.data(), 30 + pad + 2, inner, nh), TrailerResult::kDummy);
  EXPECT_EQ(esp_check_trailer(b.data(), 1, inner, nh), TrailerResult::kBadPad);
}

// An Ethernet + IPv4 + UDP frame to port 4500 carrying `payload`.
std::vector<uint8_t> udp4500(const std::vector<uint8_t>& payload, int len_delta = 0) {
  std::vector<uint8_t> f(14 + 28 + payload.size(), 0);
  store_be16(f.data() + 12, kEtherTypeIpv4);
  f[14] = 0x45;
  store_be16(f.data() + 16, uint16_t(28 + payload.size()));
  f[22] = 64;
  f[23] = kProtoUdp;
  store_be32(f.data() + 26, 0x0a000001);
  store_be32(f.data() + 30, 0x0a000002);
  store_be16(f.data() + 24, uint16_t(~csum_fold(csum_add(0, f.data() + 14, 20))));
  store_be16(f.data() + 34, 4500);
  store_be16(f.data() + 36, 4500);
  store_be16(f.data() + 38, uint16_t(8 + payload.size() + len_delta));
  for (size_t i = 0; i < payload.size(); ++i) f[42 + i] = payload[i];
  return f;
}

EspClass classify(const std::vector<uint8_t>& f, EspLoc& loc) {
  Parsed p;
  EXPECT_TRUE(parse_frame(f.data(), uint32_t(f.size()), p).is_ok());
  return classify_esp(f.data(), p, loc);
}

TEST(Esp, ClassifiesUdp4500) {
  EspLoc loc;
  EXPECT_EQ(classify(udp4500({0xff}), loc), EspClass::kNatKeepalive);
  EXPECT_EQ(classify(udp4500({0, 0, 0, 0, 1, 2, 3, 4}), loc), EspClass::kIke);
  EXPECT_EQ(classify(udp4500({0, 0, 0x10, 1, 0, 0, 0, 1, 9, 9}), loc), EspClass::kEsp);
  EXPECT_EQ(loc.esp_off, 42u);
  EXPECT_EQ(loc.esp_len, 10u);
  EXPECT_EQ(classify(udp4500({0, 0, 0x10, 1, 0, 0, 0, 1}, 5), loc), EspClass::kMalformed);
  EXPECT_EQ(classify(udp4500({1, 2, 3}), loc), EspClass::kMalformed);  // too short for ESP
}

TEST(Esp, MssClampRewritesOnlyLargerMssAndKeepsChecksum) {
  // TCP SYN with options: MSS 1460, NOP, NOP, SACK-permitted
  std::vector<uint8_t> tcp(28, 0);
  tcp[12] = 7 << 4;
  tcp[13] = 0x02;
  tcp[20] = 2;
  tcp[21] = 4;
  store_be16(tcp.data() + 22, 1460);
  tcp[24] = 1;
  tcp[25] = 1;
  tcp[26] = 4;
  tcp[27] = 2;
  uint32_t sum = csum_add(0x1234, tcp.data(), 28);  // any pseudo-header contribution
  store_be16(tcp.data() + 16, uint16_t(~csum_fold(sum)));
  ASSERT_TRUE(tcp_clamp_mss(tcp.data(), 28, 1350));
  EXPECT_EQ(load_be16(tcp.data() + 22), 1350);
  EXPECT_EQ(csum_fold(csum_add(0x1234, tcp.data(), 28)), 0xffff);
  EXPECT_FALSE(tcp_clamp_mss(tcp.data(), 28, 1400));  // already smaller
  tcp[13] = 0x10;                                      // not a SYN
  EXPECT_FALSE(tcp_clamp_mss(tcp.data(), 28, 1000));
  tcp[13] = 0x02;
  tcp[21] = 40;  // option running past the header
  EXPECT_FALSE(tcp_clamp_mss(tcp.data(), 28, 1000));
}

}  // namespace
}  // namespace espgw::dp
