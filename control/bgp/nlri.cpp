#include "control/bgp/nlri.h"

#include <algorithm>

namespace espgw::bgp {

NlriError decode_nlri(Reader r, uint8_t family, bool addpath, std::vector<Nlri>& out) {
  const unsigned max = family == 4 ? 32 : 128;
  while (!r.empty()) {
    Nlri n;
    if (addpath) n.path_id = r.u32();
    const uint8_t len = r.u8();
    if (!r.ok()) return NlriError::kTruncated;
    if (len > max) return NlriError::kBadLength;
    const std::span<const uint8_t> b = r.view((len + 7u) / 8u);
    if (!r.ok()) return NlriError::kTruncated;
    n.prefix.addr.family = family;
    std::copy(b.begin(), b.end(), n.prefix.addr.bytes.begin());
    n.prefix.len = len;
    n.prefix = n.prefix.normalized();
    out.push_back(n);
  }
  return NlriError::kNone;
}

void encode_nlri(const std::vector<Nlri>& v, bool addpath, Writer& w) {
  for (const auto& n : v) {
    if (addpath) w.u32(n.path_id);
    unsigned len = std::min<unsigned>(n.prefix.len, 128);
    w.u8(uint8_t(len));
    w.bytes(std::span<const uint8_t>(n.prefix.addr.bytes.data(), (len + 7u) / 8u));
  }
}

Nlri nlri(const char* prefix, uint32_t path_id) {
  Nlri n;
  if (auto p = Prefix::parse(prefix)) n.prefix = *p;
  n.path_id = path_id;
  return n;
}

}  // namespace espgw::bgp
