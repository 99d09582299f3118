// One entry per known path attribute: flags, RFC 7606 approach, decode/validate/encode/format.
#include <array>
#include <string>

#include "control/bgp/attrs.h"
#include "control/bgp/format.h"

namespace espgw::bgp {
namespace {

constexpr uint8_t kWellKnown = attr::kTransitive;  // well-known attributes are transitive
constexpr uint8_t kOptTrans = attr::kOptional | attr::kTransitive;
constexpr uint8_t kOptNonTrans = attr::kOptional;

Check ok() { return Check::kOk; }
Check bad(std::string& why, const char* what) {
  why = what;
  return Check::kMalformed;
}
Check no_validate(const PathAttrs&, const Codec&, std::string&) { return Check::kOk; }

bool read_exact_u32(Reader& r, uint32_t& v) {
  if (r.remaining() != 4) return false;
  v = r.u32();
  return r.ok();
}
IpAddr read_v4(Reader& r) { return IpAddr::v4(r.u32()); }
void write_v4(const IpAddr& a, Writer& w) { w.bytes(std::span<const uint8_t>(a.bytes.data(), 4)); }

// ORIGIN (1). RFC 7606 s7.1: length not 1 or undefined value -> treat-as-withdraw.
Check origin_decode(Reader r, const Codec&, PathAttrs& a, std::string& why) {
  if (r.remaining() != 1) return bad(why, "length is not 1");
  a.origin = Origin(r.u8());
  return ok();
}
Check origin_validate(const PathAttrs& a, const Codec&, std::string& why) {
  return uint8_t(*a.origin) <= uint8_t(Origin::kIncomplete) ? ok() : bad(why, "undefined value");
}
bool origin_encode(const PathAttrs& a, const Codec&, Writer& w) {
  if (!a.origin) return false;
  w.u8(uint8_t(*a.origin));
  return true;
}
std::string origin_format(const PathAttrs& a) {
  return a.origin ? "origin " + origin_str(*a.origin) : "";
}

// AS_PATH (2). RFC 7606 s7.2: a malformed segment -> treat-as-withdraw.
Check as_path_decode(Reader r, const Codec& c, PathAttrs& a, std::string& why) {
  AsPath p;
  if (!decode_as_path(r, c.as4, p)) return bad(why, "malformed segment");
  a.as_path = std::move(p);
  return ok();
}
// RFC 5065 s5: confederation segments are added and removed only at the front of the path.
bool confed_after_other(const AsPath& p) {
  bool other = false;
  for (const auto& s : p.segments) {
    bool confed = s.type == SegType::kConfedSequence || s.type == SegType::kConfedSet;
    if (confed && other) return true;
    other = other || !confed;
  }
  return false;
}

Check as_path_validate(const PathAttrs& a, const Codec& c, std::string& why) {
  // RFC 7607 s2: AS 0 in AS_PATH is an error handled as a malformed AS_PATH.
  if (a.as_path->contains(0)) return bad(why, "contains AS 0");
  // RFC 7606 s7.2 / RFC 5065: confederation segments from an external peer are malformed.
  if (c.ebgp && a.as_path->has_confed()) return bad(why, "confederation segment from eBGP peer");
  if (confed_after_other(*a.as_path))
    return bad(why, "confederation segment after AS_SEQUENCE/SET");
  return ok();
}
bool as_path_encode(const PathAttrs& a, const Codec& c, Writer& w) {
  if (!a.as_path) return false;
  encode_as_path(*a.as_path, c.as4, w);
  return true;
}
std::string as_path_format(const PathAttrs& a) {
  if (!a.as_path) return "";
  std::string s = a.as_path->str();
  return s.empty() ? "as-path" : "as-path " + s;
}

// NEXT_HOP (3). RFC 7606 s7.3: length not 4 or not a usable host address -> treat-as-withdraw.
Check next_hop_decode(Reader r, const Codec&, PathAttrs& a, std::string& why) {
  if (r.remaining() != 4) return bad(why, "length is not 4");
  a.next_hop = read_v4(r);
  return ok();
}
Check next_hop_validate(const PathAttrs& a, const Codec&, std::string& why) {
  // RFC 4271 s6.3: a syntactically incorrect NEXT_HOP. 0/8, 127/8, multicast, class E.
  uint8_t first = a.next_hop->bytes[0];
  if (first == 0 || first == 127 || first >= 224) return bad(why, "not a host address");
  return ok();
}
bool next_hop_encode(const PathAttrs& a, const Codec&, Writer& w) {
  if (!a.next_hop || !a.next_hop->is_v4()) return false;
  write_v4(*a.next_hop, w);
  return true;
}
std::string next_hop_format(const PathAttrs& a) {
  return a.next_hop ? "next-hop " + a.next_hop->str() : "";
}

// MULTI_EXIT_DISC (4). RFC 7606 s7.4: length not 4 -> treat-as-withdraw.
Check med_decode(Reader r, const Codec&, PathAttrs& a, std::string& why) {
  uint32_t v = 0;
  if (!read_exact_u32(r, v)) return bad(why, "length is not 4");
  a.med = v;
  return ok();
}
bool med_encode(const PathAttrs& a, const Codec&, Writer& w) {
  if (!a.med) return false;
  w.u32(*a.med);
  return true;
}
std::string med_format(const PathAttrs& a) { return a.med ? "med " + std::to_string(*a.med) : ""; }

// LOCAL_PREF (5). RFC 7606 s7.5: length not 4 -> treat-as-withdraw; from an external peer the
// attribute SHALL be discarded.
Check local_pref_decode(Reader r, const Codec&, PathAttrs& a, std::string& why) {
  uint32_t v = 0;
  if (!read_exact_u32(r, v)) return bad(why, "length is not 4");
  a.local_pref = v;
  return ok();
}
Check local_pref_validate(const PathAttrs&, const Codec& c, std::string& why) {
  if (!c.ebgp) return ok();
  why = "LOCAL_PREF from an external peer";
  return Check::kIgnore;
}
bool local_pref_encode(const PathAttrs& a, const Codec&, Writer& w) {
  if (!a.local_pref) return false;
  w.u32(*a.local_pref);
  return true;
}
std::string local_pref_format(const PathAttrs& a) {
  return a.local_pref ? "local-pref " + std::to_string(*a.local_pref) : "";
}

// ATOMIC_AGGREGATE (6). RFC 7606 s7.6: length not 0 -> attribute discard.
Check atomic_decode(Reader r, const Codec&, PathAttrs& a, std::string& why) {
  if (!r.empty()) return bad(why, "length is not 0");
  a.atomic_aggregate = true;
  return ok();
}
bool atomic_encode(const PathAttrs& a, const Codec&, Writer&) { return a.atomic_aggregate; }
std::string atomic_format(const PathAttrs& a) {
  return a.atomic_aggregate ? "atomic-aggregate" : "";
}

// AGGREGATOR (7). RFC 7606 s7.7: length not 6 (2-octet session) / 8 (4-octet) -> discard.
Check decode_aggregator(Reader r, bool four, std::optional<Aggregator>& out, std::string& why) {
  Aggregator ag;
  if (r.remaining() != (four ? 8u : 6u))
    return bad(why, four ? "length is not 8" : "length is not 6");
  ag.asn = four ? r.u32() : r.u16();
  ag.addr = read_v4(r);
  out = ag;
  return ok();
}
Check aggregator_decode(Reader r, const Codec& c, PathAttrs& a, std::string& why) {
  return decode_aggregator(r, c.as4, a.aggregator, why);
}
Check aggregator_validate(const PathAttrs& a, const Codec&, std::string& why) {
  // RFC 7607 s2: AS 0 in AGGREGATOR -> attribute discard.
  return a.aggregator->asn != 0 ? ok() : bad(why, "AS 0");
}
bool aggregator_encode(const PathAttrs& a, const Codec& c, Writer& w) {
  if (!a.aggregator) return false;
  uint32_t asn = a.aggregator->asn;
  if (c.as4)
    w.u32(asn);
  else
    w.u16(asn > 0xFFFF ? kAsTrans : uint16_t(asn));  // RFC 6793 s4.2.2
  write_v4(a.aggregator->addr, w);
  return true;
}
std::string aggregator_str(const char* name, const std::optional<Aggregator>& ag) {
  return ag ? std::string(name) + " " + std::to_string(ag->asn) + " " + ag->addr.str() : "";
}
std::string aggregator_format(const PathAttrs& a) {
  return aggregator_str("aggregator", a.aggregator);
}

// COMMUNITIES (8). RFC 7606 s7.8: length 0 or not a multiple of 4 -> treat-as-withdraw.
Check communities_decode(Reader r, const Codec&, PathAttrs& a, std::string& why) {
  if (r.empty() || r.remaining() % 4 != 0) return bad(why, "length is 0 or not a multiple of 4");
  std::vector<uint32_t> v;
  v.reserve(r.remaining() / 4);
  while (!r.empty()) v.push_back(r.u32());
  a.communities = std::move(v);
  return ok();
}
bool communities_encode(const PathAttrs& a, const Codec&, Writer& w) {
  if (!a.communities || a.communities->empty()) return false;
  for (uint32_t x : *a.communities) w.u32(x);
  return true;
}
std::string communities_format(const PathAttrs& a) {
  if (!a.communities) return "";
  std::string s = "communities";
  for (uint32_t x : *a.communities) s += " " + community_str(x);
  return s;
}

// MP_REACH_NLRI (14). RFC 7606 s7.11: a next hop length that does not fit the AFI, or NLRI that
// cannot be parsed (s5.3) -> session reset. A family we do not run is ignored.
bool supported(AfiSafi f) { return f == kIpv4Unicast || f == kIpv6Unicast; }
AfiSafi read_family(Reader& r) {
  AfiSafi f;
  f.afi = r.u16();
  f.safi = r.u8();
  return f;
}

Check mp_reach_decode(Reader r, const Codec& c, PathAttrs& a, std::string& why) {
  MpReach m;
  m.family = read_family(r);
  const uint8_t nh_len = r.u8();
  if (!r.ok()) return bad(why, "truncated header");
  if (!supported(m.family)) {
    why = "unsupported family " + family_str(m.family);
    return Check::kIgnore;
  }
  bool v4 = m.family.afi == kAfiIpv4;
  const std::span<const uint8_t> nh = r.view(nh_len);
  if (!r.ok()) return bad(why, "next hop overruns the attribute");
  if (v4) {
    if (nh_len != 4) return bad(why, "IPv4 next hop length is not 4");
    m.next_hop =
        IpAddr::v4(uint32_t(nh[0]) << 24 | uint32_t(nh[1]) << 16 | uint32_t(nh[2]) << 8 | nh[3]);
  } else {
    if (nh_len != 16 && nh_len != 32) return bad(why, "IPv6 next hop length is not 16 or 32");
    m.next_hop = IpAddr::v6(nh.data());
    if (nh_len == 32) m.link_local = IpAddr::v6(nh.data() + 16);
  }
  r.skip(1);  // reserved
  if (!r.ok()) return bad(why, "truncated before NLRI");
  if (decode_nlri(r, v4 ? 4 : 6, c.addpath, m.nlri) != NlriError::kNone)
    return bad(why, "NLRI cannot be parsed");
  a.mp_reach = std::move(m);
  return ok();
}
bool mp_reach_encode(const PathAttrs& a, const Codec& c, Writer& w) {
  if (!a.mp_reach) return false;
  const MpReach& m = *a.mp_reach;
  w.u16(m.family.afi);
  w.u8(m.family.safi);
  if (m.next_hop.is_v4()) {
    w.u8(4);
    write_v4(m.next_hop, w);
  } else {
    w.u8(m.link_local ? 32 : 16);
    w.bytes(m.next_hop.bytes);
    if (m.link_local) w.bytes(m.link_local->bytes);
  }
  w.u8(0);
  encode_nlri(m.nlri, c.addpath, w);
  return true;
}
std::string mp_reach_format(const PathAttrs& a) {
  if (!a.mp_reach) return "";
  const MpReach& m = *a.mp_reach;
  std::string s = "mp-reach " + family_str(m.family) + " next-hop " + m.next_hop.str();
  if (m.link_local) s += " " + m.link_local->str();
  return s + " nlri" + nlri_list_str(m.nlri);
}

// MP_UNREACH_NLRI (15). RFC 7606 s7.12 / s5.3: withdrawn routes that cannot be parsed -> reset.
Check mp_unreach_decode(Reader r, const Codec& c, PathAttrs& a, std::string& why) {
  MpUnreach m;
  m.family = read_family(r);
  if (!r.ok()) return bad(why, "truncated header");
  if (!supported(m.family)) {
    why = "unsupported family " + family_str(m.family);
    return Check::kIgnore;
  }
  uint8_t family = m.family.afi == kAfiIpv4 ? 4 : 6;
  if (decode_nlri(r, family, c.addpath, m.withdrawn) != NlriError::kNone)
    return bad(why, "withdrawn routes cannot be parsed");
  a.mp_unreach = std::move(m);
  return ok();
}
bool mp_unreach_encode(const PathAttrs& a, const Codec& c, Writer& w) {
  if (!a.mp_unreach) return false;
  w.u16(a.mp_unreach->family.afi);
  w.u8(a.mp_unreach->family.safi);
  encode_nlri(a.mp_unreach->withdrawn, c.addpath, w);
  return true;
}
std::string mp_unreach_format(const PathAttrs& a) {
  if (!a.mp_unreach) return "";
  return "mp-unreach " + family_str(a.mp_unreach->family) + nlri_list_str(a.mp_unreach->withdrawn);
}

// AS4_PATH (17). RFC 6793 s6: a malformed AS4_PATH is discarded; AS4 attributes between two
// 4-octet speakers are discarded too (RFC 6793 s4.1).
Check as4_path_decode(Reader r, const Codec& c, PathAttrs& a, std::string& why) {
  if (c.as4) {
    why = "AS4_PATH from a 4-octet AS peer";
    return Check::kIgnore;
  }
  AsPath p;
  if (!decode_as_path(r, true, p)) return bad(why, "malformed segment");
  a.as4_path = std::move(p);
  return ok();
}
Check as4_path_validate(const PathAttrs& a, const Codec&, std::string& why) {
  if (a.as4_path->has_confed()) return bad(why, "confederation segment");  // RFC 6793 s6
  if (a.as4_path->contains(0)) return bad(why, "contains AS 0");           // RFC 7607 s2
  return ok();
}
bool as4_path_encode(const PathAttrs& a, const Codec& c, Writer& w) {
  // RFC 6793 s4.2.2: sent to a 2-octet peer only when the path holds a 4-octet-only ASN.
  if (c.as4 || !a.as_path || !a.as_path->has_asn_above(0xFFFF)) return false;
  encode_as_path(as4_path_for(*a.as_path), true, w);
  return true;
}
std::string as4_path_format(const PathAttrs& a) {
  return a.as4_path ? "as4-path " + a.as4_path->str() : "";
}

// AS4_AGGREGATOR (18). RFC 6793 s6: length not 8 -> discard; RFC 7607: AS 0 -> discard.
Check as4_aggregator_decode(Reader r, const Codec& c, PathAttrs& a, std::string& why) {
  if (c.as4) {
    why = "AS4_AGGREGATOR from a 4-octet AS peer";
    return Check::kIgnore;
  }
  return decode_aggregator(r, true, a.as4_aggregator, why);
}
Check as4_aggregator_validate(const PathAttrs& a, const Codec&, std::string& why) {
  return a.as4_aggregator->asn != 0 ? ok() : bad(why, "AS 0");
}
bool as4_aggregator_encode(const PathAttrs& a, const Codec& c, Writer& w) {
  if (c.as4 || !a.aggregator || a.aggregator->asn <= 0xFFFF) return false;
  w.u32(a.aggregator->asn);
  write_v4(a.aggregator->addr, w);
  return true;
}
std::string as4_aggregator_format(const PathAttrs& a) {
  return aggregator_str("as4-aggregator", a.as4_aggregator);
}

constexpr Outcome kDiscard = Outcome::kAttributeDiscard;
constexpr Outcome kWithdraw = Outcome::kTreatAsWithdraw;
constexpr Outcome kReset = Outcome::kSessionReset;

// clang-format off
const std::array<AttrSpec, 12> kTable = {{
  {attr::kOrigin, "ORIGIN", kWellKnown, kWithdraw, origin_decode, origin_validate,
   origin_encode, origin_format, [](PathAttrs& a) { a.origin.reset(); }},
  {attr::kAsPath, "AS_PATH", kWellKnown, kWithdraw, as_path_decode, as_path_validate,
   as_path_encode, as_path_format, [](PathAttrs& a) { a.as_path.reset(); }},
  {attr::kNextHop, "NEXT_HOP", kWellKnown, kWithdraw, next_hop_decode, next_hop_validate,
   next_hop_encode, next_hop_format, [](PathAttrs& a) { a.next_hop.reset(); }},
  {attr::kMed, "MULTI_EXIT_DISC", kOptNonTrans, kWithdraw, med_decode, no_validate,
   med_encode, med_format, [](PathAttrs& a) { a.med.reset(); }},
  {attr::kLocalPref, "LOCAL_PREF", kWellKnown, kWithdraw, local_pref_decode, local_pref_validate,
   local_pref_encode, local_pref_format, [](PathAttrs& a) { a.local_pref.reset(); }},
  {attr::kAtomicAggregate, "ATOMIC_AGGREGATE", kWellKnown, kDiscard, atomic_decode, no_validate,
   atomic_encode, atomic_format, [](PathAttrs& a) { a.atomic_aggregate = false; }},
  {attr::kAggregator, "AGGREGATOR", kOptTrans, kDiscard, aggregator_decode, aggregator_validate,
   aggregator_encode, aggregator_format, [](PathAttrs& a) { a.aggregator.reset(); }},
  {attr::kCommunities, "COMMUNITIES", kOptTrans, kWithdraw, communities_decode, no_validate,
   communities_encode, communities_format, [](PathAttrs& a) { a.communities.reset(); }},
  {attr::kMpReach, "MP_REACH_NLRI", kOptNonTrans, kReset, mp_reach_decode, no_validate,
   mp_reach_encode, mp_reach_format, [](PathAttrs& a) { a.mp_reach.reset(); }},
  {attr::kMpUnreach, "MP_UNREACH_NLRI", kOptNonTrans, kReset, mp_unreach_decode, no_validate,
   mp_unreach_encode, mp_unreach_format, [](PathAttrs& a) { a.mp_unreach.reset(); }},
  {attr::kAs4Path, "AS4_PATH", kOptTrans, kDiscard, as4_path_decode, as4_path_validate,
   as4_path_encode, as4_path_format, [](PathAttrs& a) { a.as4_path.reset(); }},
  {attr::kAs4Aggregator, "AS4_AGGREGATOR", kOptTrans, kDiscard, as4_aggregator_decode,
   as4_aggregator_validate, as4_aggregator_encode, as4_aggregator_format,
   [](PathAttrs& a) { a.as4_aggregator.reset(); }},
}};
// clang-format on

}  // namespace

std::span<const AttrSpec> attr_table() { return kTable; }

const AttrSpec* find_attr(uint8_t code) {
  for (const auto& s : kTable)
    if (s.code == code) return &s;
  return nullptr;
}

}  // namespace espgw::bgp
