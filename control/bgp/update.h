// UPDATE messages (RFC 4271 s4.3) with RFC 7606 revised error handling.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "control/bgp/attrs.h"
#include "control/bgp/codec.h"
#include "control/bgp/nlri.h"
#include "control/bgp/wire.h"

namespace espgw::bgp {

struct Update {
  std::vector<Nlri> withdrawn;  // IPv4 unicast, the classic Withdrawn Routes field
  PathAttrs attrs;              // MP_REACH / MP_UNREACH (IPv6, or IPv4 via MP) live here
  std::vector<Nlri> nlri;       // IPv4 unicast, the classic NLRI field
  bool operator==(const Update&) const = default;
};

struct UpdateResult : Verdict {
  // Valid unless outcome == kSessionReset. With kTreatAsWithdraw every prefix it carries
  // (withdrawn, nlri, mp_reach->nlri, mp_unreach->withdrawn) is to be withdrawn.
  Update update;
};

// Decodes the UPDATE body (the bytes after the 19-byte header). Never throws, never reads
// outside `body`.
UpdateResult decode_update(std::span<const uint8_t> body, const Codec& c);

// The complete message, header included. Empty if it would exceed 4096 bytes.
Bytes encode_update(const Update& u, const Codec& c);

// End-of-RIB (RFC 4724 s2): an empty UPDATE for IPv4 unicast, an UPDATE holding only an empty
// MP_UNREACH_NLRI for other families.
std::optional<AfiSafi> end_of_rib(const Update& u);
Update end_of_rib_marker(AfiSafi f);

// Every prefix the UPDATE withdraws or announces, by family, for treat-as-withdraw.
std::vector<Nlri> all_prefixes(const Update& u, AfiSafi f);

// "withdrawn 10.0.0.0/8; origin igp; as-path 65001; next-hop 192.0.2.1; nlri 10.1.0.0/16"
std::string to_string(const Update& u);

}  // namespace espgw::bgp
