// Bounds-checked header parsing on raw bytes (no mbuf, no EAL), shared by the workers, the
// control thread, unit tests and fuzz targets. Nothing here trusts the NIC's packet type.
#pragma once

#include <cstdint>
#include <cstring>

#include "dataplane/counters.h"

namespace espgw::dp {

inline constexpr uint16_t kEthHdrLen = 14;
inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeIpv6 = 0x86DD;
inline constexpr uint16_t kEtherTypeArp = 0x0806;

inline uint16_t load_be16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
inline uint32_t load_be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
inline void store_be16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
inline void store_be32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}

// Ones-complement sum over a byte range (RFC 1071), folded; caller complements.
inline uint32_t csum_add(uint32_t sum, const uint8_t* p, uint32_t len) {
  while (len > 1) {
    sum += uint32_t(p[0] << 8 | p[1]);
    p += 2;
    len -= 2;
  }
  if (len) sum += uint32_t(p[0] << 8);
  return sum;
}
inline uint16_t csum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(sum);
}

enum class L3 : uint8_t { kNone, kIpv4, kIpv6, kArp };

// What the classifier learned about one frame. Offsets are from the start of the frame.
struct Parsed {
  L3 l3 = L3::kNone;
  uint8_t l4_proto = 0;     // upper-layer protocol after IPv6 extension headers
  uint8_t ttl = 0;          // TTL / hop limit
  bool df = false;          // IPv4 DF bit
  bool fragment = false;    // IPv4 MF/offset != 0, or an IPv6 fragment header
  uint16_t l3_off = kEthHdrLen;
  uint16_t l3_hdr_len = 0;  // IPv4 IHL*4, or IPv6 40 + extension headers
  uint16_t l3_len = 0;      // IPv4 total length / IPv6 40 + payload length (padding excluded)
  uint16_t l4_off = 0;
  bool outer = false;       // built by the gateway's ESP encapsulation (must not re-enter a tunnel)
};

enum class ParseStatus : uint8_t { kOk, kDrop };
struct ParseResult {
  ParseStatus status;
  Drop reason;
  static ParseResult ok() { return {ParseStatus::kOk, Drop::kCount}; }
  static ParseResult drop(Drop d) { return {ParseStatus::kDrop, d}; }
  bool is_ok() const { return status == ParseStatus::kOk; }
};

// p: IPv4 header; avail: bytes from p to the end of the frame.
inline ParseResult parse_ipv4(const uint8_t* p, uint32_t avail, Parsed& out) {
  if (avail < 20) return ParseResult::drop(Drop::ipv4_bad_ihl);
  if ((p[0] >> 4) != 4) return ParseResult::drop(Drop::ipv4_bad_version);
  uint32_t ihl = uint32_t(p[0] & 0x0f) * 4;
  if (ihl < 20 || ihl > avail) return ParseResult::drop(Drop::ipv4_bad_ihl);
  uint32_t total = load_be16(p + 2);
  if (total < ihl || total > avail) return ParseResult::drop(Drop::ipv4_bad_length);
  if (csum_fold(csum_add(0, p, ihl)) != 0xffff) return ParseResult::drop(Drop::ipv4_bad_checksum);
  uint32_t src = load_be32(p + 12), dst = load_be32(p + 16);
  uint8_t s0 = uint8_t(src >> 24), d0 = uint8_t(dst >> 24);
  if (s0 == 0 || s0 == 127 || s0 >= 224) return ParseResult::drop(Drop::ipv4_martian);
  if (d0 == 0 || d0 == 127) return ParseResult::drop(Drop::ipv4_martian);
  uint16_t frag = load_be16(p + 6);
  out.l3 = L3::kIpv4;
  out.l3_hdr_len = uint16_t(ihl);
  out.l3_len = uint16_t(total);
  out.ttl = p[8];
  out.l4_proto = p[9];
  out.df = frag & 0x4000;
  out.fragment = (frag & 0x3fff) != 0;
  out.l4_off = uint16_t(out.l3_off + ihl);
  return ParseResult::ok();
}

inline bool ipv6_is_multicast(const uint8_t* a) { return a[0] == 0xff; }
inline bool ipv6_is_unspecified(const uint8_t* a) {
  static const uint8_t z[16] = {};
  return std::memcmp(a, z, 16) == 0;
}
inline bool ipv6_is_loopback(const uint8_t* a) {
  static const uint8_t l[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return std::memcmp(a, l, 16) == 0;
}

// p: IPv6 header; avail: bytes from p to the end of the frame. Walks extension headers
// (hop-by-hop first only, routing, fragment, destination options, AH) to find the upper layer.
inline ParseResult parse_ipv6(const uint8_t* p, uint32_t avail, Parsed& out) {
  if (avail < 40) return ParseResult::drop(Drop::ipv6_bad_length);
  if ((p[0] >> 4) != 6) return ParseResult::drop(Drop::ipv6_bad_version);
  uint32_t total = 40u + load_be16(p + 4);
  if (total > avail) return ParseResult::drop(Drop::ipv6_bad_length);
  const uint8_t* src = p + 8;
  const uint8_t* dst = p + 24;
  if (ipv6_is_multicast(src) || ipv6_is_loopback(src)) return ParseResult::drop(Drop::ipv6_martian);
  if (ipv6_is_loopback(dst) || ipv6_is_unspecified(dst)) return ParseResult::drop(Drop::ipv6_martian);
  uint8_t nh = p[6];
  uint32_t off = 40;
  bool fragment = false;
  for (int n = 0; n < 8; ++n) {
    uint32_t len;
    switch (nh) {
      case 0:  // hop-by-hop: only directly after the fixed header (RFC 8200 section 4.1)
        if (n != 0) return ParseResult::drop(Drop::ipv6_bad_ext);
        [[fallthrough]];
      case 43:  // routing
      case 60:  // destination options
        if (off + 2 > total) return ParseResult::drop(Drop::ipv6_bad_ext);
        len = (uint32_t(p[off + 1]) + 1) * 8;
        break;
      case 44:  // fragment
        if (off + 8 > total) return ParseResult::drop(Drop::ipv6_bad_ext);
        len = 8;
        fragment = true;
        break;
      case 51:  // AH: length in 4-octet units minus 2
        if (off + 2 > total) return ParseResult::drop(Drop::ipv6_bad_ext);
        len = (uint32_t(p[off + 1]) + 2) * 4;
        break;
      default:
        goto done;
    }
    if (off + len > total) return ParseResult::drop(Drop::ipv6_bad_ext);
    nh = p[off];
    off += len;
  }
  // more than 8 extension headers: refuse rather than walk an attacker's chain
  if (nh == 0 || nh == 43 || nh == 44 || nh == 51 || nh == 60) return ParseResult::drop(Drop::ipv6_bad_ext);
done:
  out.l3 = L3::kIpv6;
  out.l3_hdr_len = uint16_t(off);
  out.l3_len = uint16_t(total);
  out.ttl = p[7];
  out.l4_proto = nh;
  out.df = true;
  out.fragment = fragment;
  out.l4_off = uint16_t(out.l3_off + off);
  return ParseResult::ok();
}

// Parses an Ethernet frame of len bytes.
inline ParseResult parse_frame(const uint8_t* f, uint32_t len, Parsed& out) {
  if (len < kEthHdrLen) return ParseResult::drop(Drop::runt);
  uint16_t et = load_be16(f + 12);
  out.l3_off = kEthHdrLen;
  switch (et) {
    case kEtherTypeIpv4:
      return parse_ipv4(f + kEthHdrLen, len - kEthHdrLen, out);
    case kEtherTypeIpv6:
      return parse_ipv6(f + kEthHdrLen, len - kEthHdrLen, out);
    case kEtherTypeArp:
      out.l3 = L3::kArp;
      return ParseResult::ok();
    default:
      return ParseResult::drop(Drop::unknown_ethertype);
  }
}

}  // namespace espgw::dp
