// IP addresses and prefixes shared by the config model, the control plane and the data plane.
#pragma once

#include <arpa/inet.h>

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace espgw {

struct IpAddr {
  uint8_t family = 0;                 // 4 or 6 (0 = unset)
  std::array<uint8_t, 16> bytes{};    // network order; IPv4 uses the first 4 bytes

  bool is_v4() const { return family == 4; }
  bool is_v6() const { return family == 6; }
  bool is_set() const { return family != 0; }
  uint32_t v4_host() const {  // IPv4 in host byte order
    return uint32_t(bytes[0]) << 24 | uint32_t(bytes[1]) << 16 | uint32_t(bytes[2]) << 8 | bytes[3];
  }
  static IpAddr v4(uint32_t host_order) {
    IpAddr a;
    a.family = 4;
    a.bytes[0] = host_order >> 24;
    a.bytes[1] = host_order >> 16;
    a.bytes[2] = host_order >> 8;
    a.bytes[3] = host_order;
    return a;
  }
  static IpAddr v6(const uint8_t* b) {
    IpAddr a;
    a.family = 6;
    std::memcpy(a.bytes.data(), b, 16);
    return a;
  }
  static std::optional<IpAddr> parse(std::string_view s) {
    std::string str(s);
    IpAddr a;
    if (inet_pton(AF_INET, str.c_str(), a.bytes.data()) == 1) {
      a.family = 4;
      return a;
    }
    if (inet_pton(AF_INET6, str.c_str(), a.bytes.data()) == 1) {
      a.family = 6;
      return a;
    }
    return std::nullopt;
  }
  std::string str() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (family == 4) inet_ntop(AF_INET, bytes.data(), buf, sizeof buf);
    else if (family == 6) inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
    return buf;
  }
  auto operator<=>(const IpAddr&) const = default;
};

struct Prefix {
  IpAddr addr;      // host bits are zero after parse() (normalized)
  uint8_t len = 0;

  uint8_t max_len() const { return addr.is_v4() ? 32 : 128; }
  // Parses "a.b.c.d/n" or "x::y/n"; a bare address is a host prefix. Host bits must be zero
  // unless allow_host_bits (then they are cleared).
  static std::optional<Prefix> parse(std::string_view s, bool allow_host_bits = false) {
    Prefix p;
    auto slash = s.find('/');
    auto a = IpAddr::parse(s.substr(0, slash));
    if (!a) return std::nullopt;
    p.addr = *a;
    unsigned max = a->is_v4() ? 32 : 128;
    if (slash == std::string_view::npos) {
      p.len = max;
      return p;
    }
    auto lenstr = s.substr(slash + 1);
    if (lenstr.empty() || lenstr.size() > 3) return std::nullopt;
    unsigned len = 0;
    for (char c : lenstr) {
      if (c < '0' || c > '9') return std::nullopt;
      len = len * 10 + unsigned(c - '0');
    }
    if (len > max) return std::nullopt;
    p.len = uint8_t(len);
    Prefix n = p.normalized();
    if (n.addr != p.addr && !allow_host_bits) return std::nullopt;
    return n;
  }
  Prefix normalized() const {
    Prefix p = *this;
    unsigned nbytes = addr.is_v4() ? 4 : 16;
    for (unsigned i = 0; i < nbytes; ++i) {
      int bits = int(len) - int(i * 8);
      uint8_t mask = bits >= 8 ? 0xff : bits <= 0 ? 0 : uint8_t(0xff << (8 - bits));
      p.addr.bytes[i] &= mask;
    }
    return p;
  }
  bool contains(const IpAddr& a) const {
    if (a.family != addr.family) return false;
    Prefix p{a, len};
    return p.normalized().addr == addr;
  }
  bool overlaps(const Prefix& o) const {
    if (o.addr.family != addr.family) return false;
    return len <= o.len ? contains(o.addr) : o.contains(addr);
  }
  std::string str() const { return addr.str() + "/" + std::to_string(len); }
  auto operator<=>(const Prefix&) const = default;
};

// An interface address: the address itself plus the length of its connected prefix.
struct IfAddr {
  IpAddr addr;
  uint8_t len = 0;
  Prefix connected() const { return Prefix{addr, len}.normalized(); }
  std::string str() const { return addr.str() + "/" + std::to_string(len); }
};

}  // namespace espgw
