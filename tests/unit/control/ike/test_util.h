// Helpers shared by the IKE unit tests.
#pragma once

#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "control/ike/wire.h"
#include "control/model/secret.h"

namespace espgw::ike::test {

// Hex to bytes; spaces, newlines and '|' separators are ignored.
inline Bytes hex(std::string_view s) {
  Bytes out;
  int hi = -1;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == '|') continue;
    int v = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::tolower(c) - 'a' + 10;
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(uint8_t(hi << 4 | v));
      hi = -1;
    }
  }
  return out;
}

inline std::string to_hex(ByteView b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (uint8_t c : b) {
    s.push_back(d[c >> 4]);
    s.push_back(d[c & 15]);
  }
  return s;
}

inline std::string to_hex(const Secret& s) { return to_hex(ByteView(s.data(), s.size())); }

// n copies of one byte, as hex.
inline std::string rep(uint8_t b, size_t n) {
  std::string one = to_hex(ByteView(&b, 1));
  std::string s;
  for (size_t i = 0; i < n; ++i) s += one;
  return s;
}

inline Bytes fill(uint8_t b, size_t n) { return Bytes(n, b); }

inline Bytes cat(std::initializer_list<ByteView> parts) {
  Bytes out;
  for (auto p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace espgw::ike::test
