// The Path Attributes field: the decode loop with RFC 7606 handling, and the encoder.
#include "control/bgp/attrs.h"

#include <algorithm>
#include <bitset>

#include "control/bgp/format.h"

namespace espgw::bgp {
namespace {

constexpr uint8_t kTypeBits = attr::kOptional | attr::kTransitive;

void apply_malformed(const AttrSpec& s, Outcome how, uint8_t subcode,
                     std::span<const uint8_t> whole, const std::string& why, PathAttrs& out,
                     Verdict& v) {
  s.clear(out);
  std::string msg = std::string(s.name) + ": " + why;
  switch (how) {
    case Outcome::kOk:
    case Outcome::kAttributeDiscard:
      v.discard(s.code, msg);
      break;
    case Outcome::kTreatAsWithdraw:
      v.raise(Outcome::kTreatAsWithdraw, msg);
      break;
    case Outcome::kSessionReset:
      v.reset(err::kUpdate, subcode, Bytes(whole.begin(), whole.end()), msg);
      break;
  }
}

void decode_list(Reader r, const Codec& c, PathAttrs& out, Verdict& v) {
  std::bitset<256> seen;
  while (!r.empty() && v.ok()) {
    Reader at = r;  // where this attribute starts
    const uint8_t flags = r.u8();
    const uint8_t code = r.u8();
    const uint16_t len = (flags & attr::kExtendedLength) ? r.u16() : r.u8();
    const bool hdr = r.ok();
    Reader value = r.sub(len);
    if (!r.ok()) {
      // RFC 7606 s4: fewer octets than an attribute header, or an attribute length exceeding
      // the Total Attribute Length -> treat-as-withdraw; the Total Attribute Length still
      // locates the NLRI field.
      v.raise(Outcome::kTreatAsWithdraw,
              hdr ? "attribute " + std::to_string(code) + " overruns the path attributes field"
                  : "truncated attribute header");
      return;
    }
    const std::span<const uint8_t> whole = at.view(r.offset() - at.offset());

    if (seen.test(code)) {
      // RFC 7606 s3: MP_REACH/MP_UNREACH more than once -> Malformed Attribute List; any
      // other repeated attribute: all but the first occurrence are discarded.
      if (code == attr::kMpReach || code == attr::kMpUnreach) {
        v.reset(err::kUpdate, err::update::kMalformedAttrList, {},
                "duplicate attribute " + std::to_string(code));
        return;
      }
      v.discard(code, "duplicate attribute " + std::to_string(code));
      continue;
    }
    seen.set(code);

    const AttrSpec* spec = find_attr(code);
    if (!spec) {
      if (!(flags & attr::kOptional)) {
        // RFC 4271 s6.3 (not relaxed by RFC 7606): unrecognized well-known attribute.
        v.reset(err::kUpdate, err::update::kUnrecognizedWellKnown,
                Bytes(whole.begin(), whole.end()),
                "unrecognized well-known attribute " + std::to_string(code));
        return;
      }
      // RFC 4271 s5: unknown optional transitive attributes are passed on with Partial set;
      // unknown optional non-transitive ones are quietly ignored.
      if (flags & attr::kTransitive) {
        out.unknown.push_back(RawAttr{uint8_t((flags | attr::kPartial) & 0xE0), code, value.rest()});
      }
      continue;
    }

    // RFC 7606 s3 (c): Optional/Transitive bits in conflict with the type code -> the
    // attribute is malformed and "treat-as-withdraw" is used, unless the attribute's own
    // specification says otherwise: not RFC 7606 s7 for ATOMIC_AGGREGATE or AGGREGATOR (their
    // attribute discard covers only a bad length), but RFC 6793 s6 for the AS4 attributes
    // (discard, whatever is malformed) and RFC 7606 s5.3 / s7.11 for MP_REACH / MP_UNREACH
    // (session reset: the NLRI they carry cannot be trusted).
    if ((flags & kTypeBits) != spec->flags) {
      const bool own_rule = spec->on_malformed == Outcome::kSessionReset ||
                            code == attr::kAs4Path || code == attr::kAs4Aggregator;
      apply_malformed(*spec, own_rule ? spec->on_malformed : Outcome::kTreatAsWithdraw,
                      err::update::kAttrFlags, whole, "attribute flags conflict", out, v);
      continue;
    }
    std::string why;
    Check st = spec->decode(value, c, out, why);
    if (st == Check::kOk) st = spec->validate(out, c, why);
    if (st == Check::kIgnore) {
      spec->clear(out);
      v.discard(code, std::string(spec->name) + ": " + why);
    } else if (st == Check::kMalformed) {
      apply_malformed(*spec, spec->on_malformed, err::update::kOptionalAttr, whole, why, out, v);
    } else if ((flags & attr::kPartial) && spec->flags == kTypeBits && code < 32) {
      out.partial |= 1u << code;
    }
  }
}

}  // namespace

void decode_attrs(Reader r, const Codec& c, PathAttrs& out, Verdict& v) {
  decode_list(r, c, out, v);
  // Codes are unique (duplicates were dropped); keep them in encoding order.
  std::sort(out.unknown.begin(), out.unknown.end(),
            [](const RawAttr& x, const RawAttr& y) { return x.code < y.code; });
}

void encode_attr(uint8_t flags, uint8_t code, std::span<const uint8_t> value, Writer& w) {
  flags &= uint8_t(~attr::kExtendedLength & 0xF0);
  if (value.size() > 255) flags |= attr::kExtendedLength;
  w.u8(flags);
  w.u8(code);
  if (flags & attr::kExtendedLength)
    w.u16(uint16_t(value.size()));
  else
    w.u8(uint8_t(value.size()));
  w.bytes(value);
}

namespace {

void encode_known(const AttrSpec& s, const PathAttrs& a, const Codec& c, Writer& w) {
  Bytes val;
  Writer vw(val);
  if (!s.encode(a, c, vw)) return;
  uint8_t flags = s.flags;
  if (s.flags == kTypeBits && s.code < 32 && (a.partial >> s.code & 1)) flags |= attr::kPartial;
  encode_attr(flags, s.code, val, w);
}

}  // namespace

void encode_attrs(const PathAttrs& a, const Codec& c, Writer& w) {
  encode_known(*find_attr(attr::kMpReach), a, c, w);
  encode_known(*find_attr(attr::kMpUnreach), a, c, w);
  for (unsigned code = 0; code < 256; ++code) {
    if (code == attr::kMpReach || code == attr::kMpUnreach) continue;
    if (const AttrSpec* s = find_attr(uint8_t(code))) encode_known(*s, a, c, w);
    for (const auto& raw : a.unknown)
      if (raw.code == code) encode_attr(raw.flags, raw.code, raw.value, w);
  }
}

std::string format_attrs(const PathAttrs& a) {
  std::string out;
  auto add = [&out](const std::string& s) {
    if (s.empty()) return;
    if (!out.empty()) out += "; ";
    out += s;
  };
  for (const auto& s : attr_table())
    if (s.code != attr::kMpReach && s.code != attr::kMpUnreach) add(s.format(a));
  for (const auto& raw : a.unknown) add(raw_attr_str(raw));
  add(find_attr(attr::kMpReach)->format(a));
  add(find_attr(attr::kMpUnreach)->format(a));
  return out;
}

}  // namespace espgw::bgp
