// AS_PATH values (RFC 4271 s5.1.2), their 2-/4-octet wire forms, and the RFC 6793 AS4 helpers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "control/bgp/wire.h"

namespace espgw::bgp {

enum class SegType : uint8_t {
  kSet = 1,
  kSequence = 2,
  kConfedSequence = 3,  // RFC 5065
  kConfedSet = 4,       // RFC 5065
};

struct AsSegment {
  SegType type = SegType::kSequence;
  std::vector<uint32_t> asns;
  bool operator==(const AsSegment&) const = default;
};

struct AsPath {
  std::vector<AsSegment> segments;

  // Path length for the decision process (RFC 4271 s9.1.2.2): each AS in a sequence counts 1,
  // an AS_SET counts 1 whatever its size, confederation segments count 0 (RFC 5065 s5.3).
  size_t length() const;
  // Loop detection: is asn anywhere in the path (sets included)?
  bool contains(uint32_t asn) const;
  // Puts asn in front, into the leading AS_SEQUENCE or a new one when that is full (255).
  void prepend(uint32_t asn);
  bool has_confed() const;
  bool has_asn_above(uint32_t limit) const;  // any ASN > limit
  // "65001 65002 {65003,65004} (65010)" style; "" for the empty path.
  std::string str() const;

  static AsPath sequence(std::vector<uint32_t> asns);
  bool operator==(const AsPath&) const = default;
};

// Wire format of the AS_PATH / AS4_PATH value. Decoding fails (returns false) on an unknown
// segment type, a zero-length segment or a segment overrunning the value (RFC 7606 s7.2).
bool decode_as_path(Reader r, bool four_octet, AsPath& out);
// Segments longer than 255 ASNs are split. With !four_octet, ASNs > 65535 become AS_TRANS.
void encode_as_path(const AsPath& p, bool four_octet, Writer& w);

// RFC 6793 s4.2.3: the real path from a 2-octet peer's AS_PATH and AS4_PATH. When AS_PATH holds
// fewer ASNs than AS4_PATH, AS4_PATH is ignored and AS_PATH returned.
AsPath merge_as4_path(const AsPath& as_path, const AsPath& as4_path);
// RFC 6793 s4.2.2: AS4_PATH sent to a 2-octet peer: the path without confederation segments.
AsPath as4_path_for(const AsPath& p);

}  // namespace espgw::bgp
