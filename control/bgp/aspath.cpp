#include "control/bgp/aspath.h"

#include <algorithm>

#include "control/bgp/constants.h"

namespace espgw::bgp {
namespace {

constexpr size_t kMaxSegment = 255;

bool is_confed(SegType t) { return t == SegType::kConfedSequence || t == SegType::kConfedSet; }
bool is_set(SegType t) { return t == SegType::kSet || t == SegType::kConfedSet; }

}  // namespace

size_t AsPath::length() const {
  size_t n = 0;
  for (const auto& s : segments) {
    if (is_confed(s.type)) continue;
    n += s.type == SegType::kSet ? 1 : s.asns.size();
  }
  return n;
}

bool AsPath::contains(uint32_t asn) const {
  for (const auto& s : segments)
    if (std::find(s.asns.begin(), s.asns.end(), asn) != s.asns.end()) return true;
  return false;
}

void AsPath::prepend(uint32_t asn) {
  if (!segments.empty() && segments.front().type == SegType::kSequence &&
      segments.front().asns.size() < kMaxSegment) {
    auto& v = segments.front().asns;
    v.insert(v.begin(), asn);
    return;
  }
  segments.insert(segments.begin(), AsSegment{SegType::kSequence, {asn}});
}

bool AsPath::has_confed() const {
  return std::any_of(segments.begin(), segments.end(),
                     [](const AsSegment& s) { return is_confed(s.type); });
}

bool AsPath::has_asn_above(uint32_t limit) const {
  for (const auto& s : segments)
    for (uint32_t a : s.asns)
      if (a > limit) return true;
  return false;
}

std::string AsPath::str() const {
  std::string out;
  for (const auto& s : segments) {
    if (!out.empty()) out += ' ';
    bool set = is_set(s.type);
    bool confed = is_confed(s.type);
    if (confed) out += '(';
    if (set) out += '{';
    for (size_t i = 0; i < s.asns.size(); ++i) {
      if (i) out += set ? "," : " ";
      out += std::to_string(s.asns[i]);
    }
    if (set) out += '}';
    if (confed) out += ')';
  }
  return out;
}

AsPath AsPath::sequence(std::vector<uint32_t> asns) {
  AsPath p;
  for (size_t i = 0; i < asns.size(); i += kMaxSegment) {
    size_t end = std::min(asns.size(), i + kMaxSegment);
    p.segments.push_back({SegType::kSequence, {asns.begin() + long(i), asns.begin() + long(end)}});
  }
  return p;
}

bool decode_as_path(Reader r, bool four_octet, AsPath& out) {
  out.segments.clear();
  while (!r.empty()) {
    const uint8_t type = r.u8();
    const uint8_t count = r.u8();
    if (!r.ok()) return false;
    if (type < uint8_t(SegType::kSet) || type > uint8_t(SegType::kConfedSet)) return false;
    if (count == 0) return false;  // RFC 7606 s7.2: zero segment length is malformed
    AsSegment seg{SegType(type), {}};
    seg.asns.reserve(count);
    for (unsigned i = 0; i < count; ++i) {
      const uint32_t asn = four_octet ? r.u32() : r.u16();
      if (!r.ok()) return false;
      seg.asns.push_back(asn);
    }
    out.segments.push_back(std::move(seg));
  }
  return true;
}

void encode_as_path(const AsPath& p, bool four_octet, Writer& w) {
  for (const auto& s : p.segments) {
    for (size_t i = 0; i < s.asns.size(); i += kMaxSegment) {
      size_t n = std::min(kMaxSegment, s.asns.size() - i);
      w.u8(uint8_t(s.type));
      w.u8(uint8_t(n));
      for (size_t j = i; j < i + n; ++j) {
        uint32_t a = s.asns[j];
        if (four_octet)
          w.u32(a);
        else
          w.u16(a > 0xFFFF ? kAsTrans : uint16_t(a));
      }
    }
  }
}

AsPath merge_as4_path(const AsPath& as_path, const AsPath& as4_path) {
  size_t n = as_path.length();
  size_t m = as4_path.length();
  if (n < m) return as_path;  // RFC 6793 s4.2.3: AS4_PATH is ignored
  // Keep the leading n - m ASes of AS_PATH (an AS_SET counts 1, confederation segments 0),
  // then append AS4_PATH.
  size_t need = n - m;
  AsPath out;
  // A confederation segment is kept when leading or adjacent to a kept segment.
  for (const auto& s : as_path.segments) {
    if (is_confed(s.type)) {
      out.segments.push_back(s);
      continue;
    }
    if (need == 0) break;
    if (s.type == SegType::kSet) {
      out.segments.push_back(s);
      --need;
      continue;
    }
    size_t take = std::min(need, s.asns.size());
    out.segments.push_back({s.type, {s.asns.begin(), s.asns.begin() + long(take)}});
    need -= take;
  }
  for (const auto& s : as4_path.segments) {
    // Join a trailing leading-part AS_SEQUENCE with a first AS4_PATH AS_SEQUENCE.
    if (!out.segments.empty() && s.type == SegType::kSequence &&
        out.segments.back().type == SegType::kSequence &&
        out.segments.back().asns.size() + s.asns.size() <= kMaxSegment) {
      auto& v = out.segments.back().asns;
      v.insert(v.end(), s.asns.begin(), s.asns.end());
      continue;
    }
    out.segments.push_back(s);
  }
  return out;
}

AsPath as4_path_for(const AsPath& p) {
  AsPath out;
  for (const auto& s : p.segments)
    if (!is_confed(s.type)) out.segments.push_back(s);
  return out;
}

}  // namespace espgw::bgp
