// Prefix encoding shared by the UPDATE withdrawn/NLRI fields and MP_(UN)REACH_NLRI
// (RFC 4271 s4.3, RFC 4760 s5, RFC 7911 path identifiers).
#pragma once

#include <compare>
#include <cstdint>
#include <vector>

#include "control/bgp/wire.h"
#include "dataplane/net/ip.h"

namespace espgw::bgp {

struct Nlri {
  Prefix prefix;
  uint32_t path_id = 0;  // RFC 7911; 0 when ADD-PATH is not in use
  auto operator<=>(const Nlri&) const = default;
};

enum class NlriError { kNone, kBadLength, kTruncated };

// Decodes a whole NLRI field of one family (4 or 6). Host bits after the prefix length are
// cleared. Stops at the first error: a prefix length above 32/128 or a field that ends early.
NlriError decode_nlri(Reader r, uint8_t family, bool addpath, std::vector<Nlri>& out);
void encode_nlri(const std::vector<Nlri>& v, bool addpath, Writer& w);

// Convenience for tests and callers without path identifiers.
Nlri nlri(const char* prefix, uint32_t path_id = 0);

}  // namespace espgw::bgp
