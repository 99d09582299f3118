// Path attributes (RFC 4271 s5, RFC 1997, RFC 4760, RFC 6793), table-driven: one AttrSpec per
// known type code with its flags, RFC 7606 error approach, decode, validate, encode and format.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "control/bgp/aspath.h"
#include "control/bgp/codec.h"
#include "control/bgp/constants.h"
#include "control/bgp/nlri.h"
#include "control/bgp/wire.h"
#include "dataplane/net/ip.h"

namespace espgw::bgp {

enum class Origin : uint8_t { kIgp = 0, kEgp = 1, kIncomplete = 2 };

struct Aggregator {
  uint32_t asn = 0;
  IpAddr addr;  // IPv4
  bool operator==(const Aggregator&) const = default;
};

struct MpReach {
  AfiSafi family;
  IpAddr next_hop;                   // IPv4 (4 bytes) or IPv6 global (16 bytes)
  std::optional<IpAddr> link_local;  // IPv6 only: the second half of a 32-byte next hop
  std::vector<Nlri> nlri;
  bool operator==(const MpReach&) const = default;
};

struct MpUnreach {
  AfiSafi family;
  std::vector<Nlri> withdrawn;
  bool operator==(const MpUnreach&) const = default;
};

struct RawAttr {
  uint8_t flags = 0;  // as received, Partial added for unknown optional transitive
  uint8_t code = 0;
  Bytes value;
  bool operator==(const RawAttr&) const = default;
};

// Well-known communities (RFC 1997, RFC 3765, RFC 7999, RFC 8326).
inline constexpr uint32_t kNoExport = 0xFFFFFF01;
inline constexpr uint32_t kNoAdvertise = 0xFFFFFF02;
inline constexpr uint32_t kNoExportSubconfed = 0xFFFFFF03;
inline constexpr uint32_t kNoPeer = 0xFFFFFF04;
inline constexpr uint32_t kBlackhole = 0xFFFF029A;
inline constexpr uint32_t kGracefulShutdown = 0xFFFF0000;

struct PathAttrs {
  std::optional<Origin> origin;
  std::optional<AsPath> as_path;  // always the real (4-octet) path after decode_update
  std::optional<IpAddr> next_hop;
  std::optional<uint32_t> med;
  std::optional<uint32_t> local_pref;
  bool atomic_aggregate = false;
  std::optional<Aggregator> aggregator;  // real ASN after decode_update
  std::optional<std::vector<uint32_t>> communities;
  std::optional<MpReach> mp_reach;
  std::optional<MpUnreach> mp_unreach;
  // AS4_PATH / AS4_AGGREGATOR as received. decode_update merges them into as_path/aggregator and
  // clears them; encoders ignore them and derive both from as_path/aggregator (RFC 6793).
  std::optional<AsPath> as4_path;
  std::optional<Aggregator> as4_aggregator;
  std::vector<RawAttr> unknown;  // unknown optional transitive attributes, by type code
  uint32_t partial = 0;          // bit n set: known optional transitive attr n had Partial set

  bool operator==(const PathAttrs&) const = default;
};

// Result of one attribute's decode or validate step.
enum class Check : uint8_t {
  kOk,
  kMalformed,  // apply the attribute's RFC 7606 approach (AttrSpec::on_malformed)
  kIgnore,     // drop the attribute without further consequence (e.g. LOCAL_PREF from eBGP)
};

struct AttrSpec {
  uint8_t code;
  const char* name;
  uint8_t flags;         // expected Optional|Transitive bits
  Outcome on_malformed;  // RFC 7606 s7 approach for this attribute
  // Syntax: parses `value` (the whole attribute value) into attrs.
  Check (*decode)(Reader value, const Codec& c, PathAttrs& attrs, std::string& why);
  // Semantics, after a successful decode.
  Check (*validate)(const PathAttrs& attrs, const Codec& c, std::string& why);
  // Writes the value; false when the attribute is absent or not sent on this session.
  bool (*encode)(const PathAttrs& attrs, const Codec& c, Writer& value);
  std::string (*format)(const PathAttrs& attrs);  // "" when absent
  void (*clear)(PathAttrs& attrs);
};

std::span<const AttrSpec> attr_table();
const AttrSpec* find_attr(uint8_t code);  // nullptr for unknown codes

// Decodes the Path Attributes field, applying RFC 7606 per attribute into `v`. Does not check
// for missing mandatory attributes nor merge AS4 attributes (decode_update does).
void decode_attrs(Reader r, const Codec& c, PathAttrs& out, Verdict& v);
// Encodes every present attribute: MP_REACH, MP_UNREACH first (RFC 7606 s5.1), then ascending
// type code with unknown attributes in their place. Extended Length when a value > 255 bytes.
void encode_attrs(const PathAttrs& a, const Codec& c, Writer& w);
// One attribute's header and value.
void encode_attr(uint8_t flags, uint8_t code, std::span<const uint8_t> value, Writer& w);

std::string format_attrs(const PathAttrs& a);  // "origin igp; as-path 65001; next-hop 192.0.2.1"
std::string community_str(uint32_t c);         // "65001:100" or "no-export"

}  // namespace espgw::bgp
