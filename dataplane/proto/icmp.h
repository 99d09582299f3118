// ICMP / ICMPv6 error construction on raw bytes (RFC 792, RFC 1812 4.3.2.3, RFC 4443).
// Pure functions: no mbuf, no EAL, so they are unit-tested and fuzzed directly.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "dataplane/proto/pkt.h"

namespace espgw::dp {

inline constexpr uint8_t kIcmp4Unreach = 3, kIcmp4TimeExceeded = 11;
inline constexpr uint8_t kIcmp4CodeNet = 0, kIcmp4CodeFragNeeded = 4;
inline constexpr uint8_t kIcmp6Unreach = 1, kIcmp6TooBig = 2, kIcmp6TimeExceeded = 3;

// Whether an ICMP error may be sent about this packet (RFC 1812 4.3.2.7, RFC 4443 2.4(e)):
// never about an ICMP error, nor about a non-first fragment.
inline bool may_send_icmp_error(const uint8_t* frame, const Parsed& p) {
  const uint8_t* ip = frame + p.l3_off;
  if (p.l3 == L3::kIpv4) {
    if ((load_be16(ip + 6) & 0x1fff) != 0) return false;  // not the first fragment
    if (p.l4_proto == 1) {
      if (p.l4_off + 1u > p.l3_off + p.l3_len) return false;
      uint8_t t = frame[p.l4_off];
      return t == 0 || t == 8 || t == 13 || t == 14;  // informational only
    }
    return true;
  }
  if (p.l4_proto == 58) {
    if (p.l4_off + 1u > p.l3_off + p.l3_len) return false;
    return frame[p.l4_off] >= 128;  // informational messages only
  }
  return true;
}

// Writes IPv4 header + ICMP error at `out` (capacity cap) quoting the original IP packet.
// src/dst in network byte order (4 bytes each). Returns the IP length, 0 if cap is too small.
inline uint32_t build_icmp4_error(uint8_t* out, uint32_t cap, const uint8_t* orig_ip,
                                  uint32_t orig_len, uint8_t type, uint8_t code, uint16_t mtu,
                                  const uint8_t* src) {
  uint32_t quote = std::min<uint32_t>(orig_len, 576 - 28);
  uint32_t total = 28 + quote;
  if (cap < total) return 0;
  std::memset(out, 0, 28);
  out[0] = 0x45;
  out[1] = 0xc0;  // internetwork control
  store_be16(out + 2, uint16_t(total));
  out[8] = 64;
  out[9] = 1;
  std::memcpy(out + 12, src, 4);
  std::memcpy(out + 16, orig_ip + 12, 4);  // back to the original source
  store_be16(out + 10, uint16_t(~csum_fold(csum_add(0, out, 20))));
  uint8_t* icmp = out + 20;
  icmp[0] = type;
  icmp[1] = code;
  if (type == kIcmp4Unreach && code == kIcmp4CodeFragNeeded) store_be16(icmp + 6, mtu);
  std::memcpy(icmp + 8, orig_ip, quote);
  store_be16(icmp + 2, uint16_t(~csum_fold(csum_add(0, icmp, 8 + quote))));
  return total;
}

inline uint16_t icmp6_checksum(const uint8_t* ip6, const uint8_t* l4, uint32_t l4_len,
                               uint8_t proto) {
  uint32_t sum = csum_add(0, ip6 + 8, 32);
  sum += l4_len >> 16;
  sum += l4_len & 0xffff;
  sum += proto;
  sum = csum_add(sum, l4, l4_len);
  uint16_t c = uint16_t(~csum_fold(sum));
  return c;
}

// IPv6 header + ICMPv6 error, the whole message at most 1280 bytes (RFC 4443 2.4(c)).
inline uint32_t build_icmp6_error(uint8_t* out, uint32_t cap, const uint8_t* orig_ip,
                                  uint32_t orig_len, uint8_t type, uint8_t code, uint32_t param,
                                  const uint8_t* src) {
  uint32_t quote = std::min<uint32_t>(orig_len, 1280 - 48);
  uint32_t total = 48 + quote;
  if (cap < total) return 0;
  std::memset(out, 0, 48);
  out[0] = 0x60;
  store_be16(out + 4, uint16_t(8 + quote));
  out[6] = 58;
  out[7] = 64;
  std::memcpy(out + 8, src, 16);
  std::memcpy(out + 24, orig_ip + 8, 16);
  uint8_t* icmp = out + 40;
  icmp[0] = type;
  icmp[1] = code;
  store_be32(icmp + 4, param);  // MTU for packet-too-big, else unused (0)
  std::memcpy(icmp + 8, orig_ip, quote);
  store_be16(icmp + 2, icmp6_checksum(out, icmp, 8 + quote, 58));
  return total;
}

// RFC 1624 incremental checksum update for a TTL decrement (TTL is the high byte of a 16-bit word).
inline void ipv4_dec_ttl(uint8_t* ip) {
  ip[8]--;
  uint32_t sum = uint32_t(load_be16(ip + 10)) + 0x0100;
  sum = (sum & 0xffff) + (sum >> 16);
  store_be16(ip + 10, uint16_t(sum));
}

}  // namespace espgw::dp
