// ESP (RFC 4303) and UDP encapsulation (RFC 3948) on raw bytes: classification of packets for
// the gateway, trailer checks after decryption, padding, TCP MSS clamping and ECN (RFC 6040).
// Pure functions, shared by the workers, unit tests and the inbound fuzz target.
#pragma once

#include <cstdint>

#include "dataplane/proto/pkt.h"

namespace espgw::dp {

inline constexpr uint16_t kNattPort = 4500;
inline constexpr uint8_t kProtoEsp = 50, kProtoUdp = 17, kProtoTcp = 6;
inline constexpr uint8_t kNextIpv4 = 4, kNextIpv6 = 41, kNextNone = 59;

enum class EspClass : uint8_t {
  kNotEsp,        // anything else for the gateway: the host kernel's business
  kEsp,           // ESP, raw or in UDP 4500: esp_off/esp_len are set
  kNatKeepalive,  // RFC 3948 2.3: one 0xFF byte in UDP 4500
  kIke,           // non-ESP marker (four zero bytes) in UDP 4500: IKE, to the kernel
  kMalformed,     // UDP 4500 with a length that does not fit
};

struct EspLoc {
  uint32_t esp_off = 0;  // from the start of the frame
  uint32_t esp_len = 0;  // SPI .. end of ICV
};

inline EspClass classify_esp(const uint8_t* f, const Parsed& p, EspLoc& loc) {
  const uint32_t end = uint32_t(p.l3_off) + p.l3_len;
  if (p.fragment) return EspClass::kNotEsp;  // reassembly is the kernel's (none for ESP here)
  if (p.l4_proto == kProtoEsp) {
    loc.esp_off = p.l4_off;
    loc.esp_len = end - p.l4_off;
    return EspClass::kEsp;
  }
  if (p.l4_proto != kProtoUdp || p.l4_off + 8u > end) return EspClass::kNotEsp;
  const uint8_t* udp = f + p.l4_off;
  if (load_be16(udp + 2) != kNattPort) return EspClass::kNotEsp;
  uint32_t ulen = load_be16(udp + 4);
  if (ulen < 8 || p.l4_off + ulen > end) return EspClass::kMalformed;
  uint32_t plen = ulen - 8;
  const uint8_t* pl = udp + 8;
  if (plen == 1 && pl[0] == 0xff) return EspClass::kNatKeepalive;
  if (plen >= 4 && load_be32(pl) == 0) return EspClass::kIke;
  if (plen < 8) return EspClass::kMalformed;
  loc.esp_off = p.l4_off + 8;
  loc.esp_len = plen;
  return EspClass::kEsp;
}

// Padding for `inner_len` bytes of payload so that payload + pad + 2 is a multiple of block
// (RFC 4303 2.4; block >= 4).
inline uint32_t esp_pad_len(uint32_t inner_len, uint32_t block) {
  return (block - (inner_len + 2) % block) % block;
}

// Writes the trailer at `t`: pad bytes 1, 2, 3, ... (RFC 4303 2.4), pad length, next header.
inline void esp_write_trailer(uint8_t* t, uint32_t pad, uint8_t next_header) {
  for (uint32_t i = 0; i < pad; ++i) t[i] = uint8_t(i + 1);
  t[pad] = uint8_t(pad);
  t[pad + 1] = next_header;
}

enum class TrailerResult : uint8_t { kOk, kBadPad, kBadNextHeader, kDummy };

// Checks a decrypted payload of len bytes; on kOk inner_len is the inner packet's length.
inline TrailerResult esp_check_trailer(const uint8_t* payload, uint32_t len, uint32_t& inner_len,
                                       uint8_t& next_header) {
  if (len < 2) return TrailerResult::kBadPad;
  uint32_t pad = payload[len - 2];
  next_header = payload[len - 1];
  if (pad + 2 > len) return TrailerResult::kBadPad;
  const uint8_t* p = payload + len - 2 - pad;
  for (uint32_t i = 0; i < pad; ++i)
    if (p[i] != uint8_t(i + 1)) return TrailerResult::kBadPad;
  inner_len = len - 2 - pad;
  if (next_header == kNextNone) return TrailerResult::kDummy;  // TFC dummy packet (2.6)
  if (next_header != kNextIpv4 && next_header != kNextIpv6) return TrailerResult::kBadNextHeader;
  return TrailerResult::kOk;
}

// Clamps the MSS option of a TCP SYN to mss (RFC 879/6691 practice for tunnels), fixing the TCP
// checksum incrementally (RFC 1624). tcp/tcp_len: the TCP header and what follows.
inline bool tcp_clamp_mss(uint8_t* tcp, uint32_t tcp_len, uint16_t mss) {
  if (tcp_len < 20 || !(tcp[13] & 0x02)) return false;  // SYN only
  uint32_t hlen = uint32_t(tcp[12] >> 4) * 4;
  if (hlen < 20 || hlen > tcp_len) return false;
  for (uint32_t o = 20; o < hlen;) {
    uint8_t kind = tcp[o];
    if (kind == 0) break;
    if (kind == 1) {
      ++o;
      continue;
    }
    if (o + 1 >= hlen) break;
    uint32_t olen = tcp[o + 1];
    if (olen < 2 || o + olen > hlen) break;
    if (kind == 2 && olen == 4) {
      uint16_t old = load_be16(tcp + o + 2);
      if (old <= mss) return false;
      store_be16(tcp + o + 2, mss);
      // HC' = ~(~HC + ~m + m')
      uint32_t sum = uint16_t(~load_be16(tcp + 16)) + uint16_t(~old) + mss;
      store_be16(tcp + 16, uint16_t(~csum_fold(sum)));
      return true;
    }
    o += olen;
  }
  return false;
}

// Traffic class / TOS byte of an IP header (ECN in the low two bits).
inline uint8_t ip_tos(const uint8_t* ip, bool v6) {
  return v6 ? uint8_t((ip[0] & 0x0f) << 4 | ip[1] >> 4) : ip[1];
}

}  // namespace espgw::dp
