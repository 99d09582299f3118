// Helpers for the BGP unit tests: hex literals and decode shortcuts.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "control/bgp/message.h"

namespace espgw::bgp::testing {

inline const std::string kMarker = "ffffffffffffffffffffffffffffffff";

// Hex digits; spaces and '|' separators are ignored.
inline Bytes H(std::string_view s) {
  Bytes out;
  int hi = -1;
  for (char ch : s) {
    int v;
    if (ch >= '0' && ch <= '9')
      v = ch - '0';
    else if (ch >= 'a' && ch <= 'f')
      v = ch - 'a' + 10;
    else if (ch >= 'A' && ch <= 'F')
      v = ch - 'A' + 10;
    else
      continue;
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(uint8_t(hi << 4 | v));
      hi = -1;
    }
  }
  EXPECT_EQ(hi, -1) << "odd number of hex digits";
  return out;
}

inline std::string Hex(const Bytes& b) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  for (uint8_t x : b) {
    s += kDigits[x >> 4];
    s += kDigits[x & 15];
  }
  return s;
}

inline IpAddr Ip(const char* s) { return *IpAddr::parse(s); }

// An UPDATE body (after the header) made of a path attributes field and an IPv4 NLRI field.
inline Bytes UpdateBody(const std::string& attrs_hex, const std::string& nlri_hex = "") {
  Bytes attrs = H(attrs_hex);
  Bytes out = {0, 0, uint8_t(attrs.size() >> 8), uint8_t(attrs.size())};
  out.insert(out.end(), attrs.begin(), attrs.end());
  Bytes nlri = H(nlri_hex);
  out.insert(out.end(), nlri.begin(), nlri.end());
  return out;
}

// Well-formed mandatory attributes for a 4-octet session: ORIGIN igp, AS_PATH 65001,
// NEXT_HOP 192.0.2.1.
inline const std::string kMandatory4 = "40010100 4002060201 0000fde9 400304c0000201";

}  // namespace espgw::bgp::testing
