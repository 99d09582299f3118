#include "control/bgp/update.h"

#include "control/bgp/constants.h"

namespace espgw::bgp {
namespace {

// RFC 6793 s4.2.3: rebuild the real AGGREGATOR and AS_PATH from a 2-octet peer's attributes.
void merge_as4(PathAttrs& a, Verdict& v) {
  // AS4_* are rebuilt from the merged values on encode; their Partial bits go with them.
  a.partial &= ~(1u << attr::kAs4Path | 1u << attr::kAs4Aggregator);
  if (a.aggregator && a.aggregator->asn != kAsTrans) {
    // AGGREGATOR was set by a 2-octet speaker after AS4_* were added: ignore both AS4 attrs.
    if (a.as4_aggregator)
      v.discard(attr::kAs4Aggregator,
                "AS4_AGGREGATOR ignored: AGGREGATOR "
                "is not AS_TRANS (RFC 6793 s4.2.3)");
    if (a.as4_path) v.discard(attr::kAs4Path, "AS4_PATH ignored: AGGREGATOR is not AS_TRANS");
    a.as4_aggregator.reset();
    a.as4_path.reset();
    return;
  }
  if (a.as4_aggregator) {
    if (a.aggregator)
      a.aggregator = a.as4_aggregator;
    else
      v.discard(attr::kAs4Aggregator, "AS4_AGGREGATOR without AGGREGATOR");
    a.as4_aggregator.reset();
  }
  if (a.as4_path) {
    if (a.as_path) a.as_path = merge_as4_path(*a.as_path, *a.as4_path);
    a.as4_path.reset();
  }
}

bool has_routes(const Update& u) {
  return !u.nlri.empty() || (u.attrs.mp_reach && !u.attrs.mp_reach->nlri.empty());
}

}  // namespace

UpdateResult decode_update(std::span<const uint8_t> body, const Codec& c) {
  UpdateResult res;
  Update& u = res.update;
  Reader r(body);
  // RFC 4271 s6.3 / RFC 7606 s4: when the Withdrawn Routes Length or Total Attribute Length
  // overruns the message the NLRI cannot be located -> session reset (Malformed Attribute List).
  Reader withdrawn = r.sub(r.u16());
  Reader attrs = r.sub(r.u16());
  if (!r.ok()) {
    res.reset(err::kUpdate, err::update::kMalformedAttrList, {},
              "withdrawn routes or path attributes length overruns the message");
    return res;
  }
  // RFC 7606 s5.3: a prefix length over 32 or a field ending inside a prefix -> session reset.
  if (decode_nlri(withdrawn, 4, c.addpath, u.withdrawn) != NlriError::kNone) {
    res.reset(err::kUpdate, err::update::kInvalidNetwork, {}, "withdrawn routes malformed");
    return res;
  }
  if (decode_nlri(r, 4, c.addpath, u.nlri) != NlriError::kNone) {
    res.reset(err::kUpdate, err::update::kInvalidNetwork, {}, "NLRI malformed");
    return res;
  }
  decode_attrs(attrs, c, u.attrs, res);
  if (!res.ok()) return res;

  if (!c.as4) merge_as4(u.attrs, res);

  if (has_routes(u)) {
    // RFC 7606 s3: a missing well-known mandatory attribute -> treat-as-withdraw. NEXT_HOP
    // is only needed for the classic NLRI field (RFC 4760 s3).
    std::string missing;
    if (!u.attrs.origin) missing += " ORIGIN";
    if (!u.attrs.as_path) missing += " AS_PATH";
    if (!u.nlri.empty() && !u.attrs.next_hop) missing += " NEXT_HOP";
    if (!missing.empty())
      res.raise(Outcome::kTreatAsWithdraw, "missing well-known attribute" + missing);
  }
  return res;
}

Bytes encode_update(const Update& u, const Codec& c) {
  Bytes out(16, 0xFF);
  Writer w(out);
  w.u16(0);
  w.u8(uint8_t(MsgType::kUpdate));
  size_t wpos = w.size();
  w.u16(0);
  encode_nlri(u.withdrawn, c.addpath, w);
  w.patch_u16(wpos, uint16_t(w.size() - wpos - 2));
  size_t apos = w.size();
  w.u16(0);
  encode_attrs(u.attrs, c, w);
  size_t alen = w.size() - apos - 2;
  w.patch_u16(apos, uint16_t(alen));
  encode_nlri(u.nlri, c.addpath, w);
  if (out.size() > kMaxMessageLen) return {};
  w.patch_u16(16, uint16_t(out.size()));
  return out;
}

std::optional<AfiSafi> end_of_rib(const Update& u) {
  const PathAttrs& a = u.attrs;
  if (!u.withdrawn.empty() || !u.nlri.empty()) return std::nullopt;
  if (a == PathAttrs{}) return kIpv4Unicast;
  PathAttrs only_unreach;
  only_unreach.mp_unreach = a.mp_unreach;
  if (a.mp_unreach && a.mp_unreach->withdrawn.empty() && a == only_unreach)
    return a.mp_unreach->family;
  return std::nullopt;
}

Update end_of_rib_marker(AfiSafi f) {
  Update u;
  if (f != kIpv4Unicast) u.attrs.mp_unreach = MpUnreach{f, {}};
  return u;
}

std::vector<Nlri> all_prefixes(const Update& u, AfiSafi f) {
  std::vector<Nlri> out;
  auto add = [&out](const std::vector<Nlri>& v) { out.insert(out.end(), v.begin(), v.end()); };
  if (f == kIpv4Unicast) {
    add(u.withdrawn);
    add(u.nlri);
  }
  if (u.attrs.mp_reach && u.attrs.mp_reach->family == f) add(u.attrs.mp_reach->nlri);
  if (u.attrs.mp_unreach && u.attrs.mp_unreach->family == f) add(u.attrs.mp_unreach->withdrawn);
  return out;
}

}  // namespace espgw::bgp
