#include "control/ike/payloads.h"

#include <cstdio>

namespace espgw::ike {

NotifyType notify_for(DecodeError e) {
  switch (e) {
    case DecodeError::kUnsupportedVersion:
      return NotifyType::kInvalidMajorVersion;
    case DecodeError::kUnsupportedCritical:
      return NotifyType::kUnsupportedCriticalPayload;
    default:
      return NotifyType::kInvalidSyntax;
  }
}

const char* to_string(DecodeError e) {
  switch (e) {
    case DecodeError::kOk:
      return "ok";
    case DecodeError::kTruncated:
      return "truncated";
    case DecodeError::kBadLength:
      return "bad length";
    case DecodeError::kInvalidSyntax:
      return "invalid syntax";
    case DecodeError::kUnsupportedVersion:
      return "unsupported major version";
    case DecodeError::kUnsupportedCritical:
      return "unsupported critical payload";
  }
  return "?";
}

namespace {

constexpr uint8_t kLastSubstruc = 0;
constexpr uint8_t kMoreProposals = 2;
constexpr uint8_t kMoreTransforms = 3;
constexpr uint16_t kAttrTv = 0x8000;

DecodeError decode_transform(Reader r, Transform& t, bool& unknown_attr) {
  t.type = TransformType(r.u8());
  r.skip(1);
  t.id = r.u16();
  if (!r.ok()) return DecodeError::kTruncated;
  while (!r.empty()) {
    uint16_t at = r.u16();
    if (at & kAttrTv) {
      uint16_t v = r.u16();
      if (!r.ok()) return DecodeError::kTruncated;
      if ((at & 0x7fff) == kAttrKeyLength) {
        if (v == 0) return DecodeError::kInvalidSyntax;
        t.key_length = v;
      } else {
        unknown_attr = true;
      }
    } else {
      uint16_t len = r.u16();
      r.skip(len);
      if (!r.ok()) return DecodeError::kTruncated;
      unknown_attr = true;  // Key Length must be TV; every TLV attribute is unknown to us
    }
  }
  return DecodeError::kOk;
}

DecodeError decode_proposal(Reader r, Proposal& p) {
  p.number = r.u8();
  p.protocol = ProtocolId(r.u8());
  uint8_t spi_size = r.u8();
  uint8_t num_transforms = r.u8();
  p.spi = r.bytes(spi_size);
  if (!r.ok()) return DecodeError::kTruncated;
  uint8_t last = kMoreTransforms;
  while (!r.empty()) {
    if (last != kMoreTransforms) return DecodeError::kInvalidSyntax;
    last = r.u8();
    r.skip(1);
    uint16_t len = r.u16();
    if (!r.ok()) return DecodeError::kTruncated;
    if (len < 8) return DecodeError::kBadLength;
    if (len - 4u > r.remaining()) return DecodeError::kTruncated;
    Transform t;
    DecodeError e = decode_transform(r.sub(len - 4u), t, p.unknown_attribute);
    if (e != DecodeError::kOk) return e;
    p.transforms.push_back(t);
    if (last != kLastSubstruc && last != kMoreTransforms) return DecodeError::kInvalidSyntax;
  }
  if (last != kLastSubstruc) return DecodeError::kInvalidSyntax;
  if (p.transforms.size() != num_transforms) return DecodeError::kInvalidSyntax;
  return DecodeError::kOk;
}

void encode_transform(const Transform& t, bool last, Writer& w) {
  size_t start = w.size();
  w.u8(last ? kLastSubstruc : kMoreTransforms);
  w.u8(0);
  w.u16(0);  // length, patched
  w.u8(uint8_t(t.type));
  w.u8(0);
  w.u16(t.id);
  if (t.key_length != 0) {
    w.u16(kAttrTv | kAttrKeyLength);
    w.u16(t.key_length);
  }
  w.patch_u16(start + 2, uint16_t(w.size() - start));
}

void encode_proposal(const Proposal& p, bool last, Writer& w) {
  size_t start = w.size();
  w.u8(last ? kLastSubstruc : kMoreProposals);
  w.u8(0);
  w.u16(0);
  w.u8(p.number);
  w.u8(uint8_t(p.protocol));
  w.u8(uint8_t(p.spi.size()));
  w.u8(uint8_t(p.transforms.size()));
  w.bytes(p.spi);
  for (size_t i = 0; i < p.transforms.size(); ++i)
    encode_transform(p.transforms[i], i + 1 == p.transforms.size(), w);
  w.patch_u16(start + 2, uint16_t(w.size() - start));
}

uint32_t be32(ByteView b) {
  return uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3];
}

void put_be32(Bytes& b, uint32_t v) {
  b.push_back(uint8_t(v >> 24));
  b.push_back(uint8_t(v >> 16));
  b.push_back(uint8_t(v >> 8));
  b.push_back(uint8_t(v));
}

}  // namespace

// ---- SA ----

DecodeError SaPayload::decode(Reader r, SaPayload& out) {
  out = {};
  uint8_t last = kMoreProposals;
  while (!r.empty()) {
    if (last != kMoreProposals) return DecodeError::kInvalidSyntax;
    last = r.u8();
    r.skip(1);
    uint16_t len = r.u16();
    if (!r.ok()) return DecodeError::kTruncated;
    if (len < 8) return DecodeError::kBadLength;
    if (len - 4u > r.remaining()) return DecodeError::kTruncated;
    Proposal p;
    DecodeError e = decode_proposal(r.sub(len - 4u), p);
    if (e != DecodeError::kOk) return e;
    out.proposals.push_back(std::move(p));
    if (last != kLastSubstruc && last != kMoreProposals) return DecodeError::kInvalidSyntax;
  }
  if (out.proposals.empty() || last != kLastSubstruc) return DecodeError::kInvalidSyntax;
  return DecodeError::kOk;
}

void SaPayload::encode(Writer& w) const {
  for (size_t i = 0; i < proposals.size(); ++i)
    encode_proposal(proposals[i], i + 1 == proposals.size(), w);
}

// ---- KE ----

DecodeError KePayload::decode(Reader r, KePayload& out) {
  out.group = r.u16();
  r.skip(2);
  if (!r.ok()) return DecodeError::kTruncated;
  out.data = r.rest();
  if (out.data.empty()) return DecodeError::kInvalidSyntax;
  return DecodeError::kOk;
}

void KePayload::encode(Writer& w) const {
  w.u16(group);
  w.u16(0);
  w.bytes(data);
}

// ---- ID ----

IdPayload IdPayload::from_addr(const IpAddr& a) {
  IdPayload id;
  if (a.is_v4()) {
    id.type = IdType::kIpv4Addr;
    id.data.assign(a.bytes.begin(), a.bytes.begin() + 4);
  } else {
    id.type = IdType::kIpv6Addr;
    id.data.assign(a.bytes.begin(), a.bytes.end());
  }
  return id;
}

IdPayload IdPayload::fqdn(std::string_view name) {
  IdPayload id;
  id.type = IdType::kFqdn;
  id.data.assign(name.begin(), name.end());
  return id;
}

IdPayload IdPayload::key_id(ByteView key) {
  IdPayload id;
  id.type = IdType::kKeyId;
  id.data.assign(key.begin(), key.end());
  return id;
}

Bytes IdPayload::body() const {
  Bytes b;
  Writer w(b);
  encode(w);
  return b;
}

std::optional<IpAddr> IdPayload::addr() const {
  if (type == IdType::kIpv4Addr && data.size() == 4) {
    IpAddr a;
    a.family = 4;
    std::copy(data.begin(), data.end(), a.bytes.begin());
    return a;
  }
  if (type == IdType::kIpv6Addr && data.size() == 16) return IpAddr::v6(data.data());
  return std::nullopt;
}

std::string IdPayload::str() const {
  if (auto a = addr()) return a->str();
  if (type == IdType::kFqdn || type == IdType::kRfc822Addr) {
    std::string s;
    for (uint8_t c : data) s.push_back(c >= 0x20 && c < 0x7f ? char(c) : '?');
    return s;
  }
  std::string s = type == IdType::kKeyId ? "keyid:" : "id" + std::to_string(int(type)) + ":";
  char hex[3];
  for (uint8_t c : data) {
    std::snprintf(hex, sizeof hex, "%02x", c);
    s += hex;
  }
  return s;
}

DecodeError IdPayload::decode(Reader r, IdPayload& out) {
  out.type = IdType(r.u8());
  r.skip(3);
  if (!r.ok()) return DecodeError::kTruncated;
  out.data = r.rest();
  switch (out.type) {
    case IdType::kIpv4Addr:
      if (out.data.size() != 4) return DecodeError::kInvalidSyntax;
      break;
    case IdType::kIpv6Addr:
      if (out.data.size() != 16) return DecodeError::kInvalidSyntax;
      break;
    default:
      if (out.data.empty()) return DecodeError::kInvalidSyntax;
  }
  return DecodeError::kOk;
}

void IdPayload::encode(Writer& w) const {
  w.u8(uint8_t(type));
  w.zeros(3);
  w.bytes(data);
}

// ---- AUTH ----

DecodeError AuthPayload::decode(Reader r, AuthPayload& out) {
  out.method = AuthMethod(r.u8());
  r.skip(3);
  if (!r.ok()) return DecodeError::kTruncated;
  out.data = r.rest();
  if (out.data.empty()) return DecodeError::kInvalidSyntax;
  return DecodeError::kOk;
}

void AuthPayload::encode(Writer& w) const {
  w.u8(uint8_t(method));
  w.zeros(3);
  w.bytes(data);
}

// ---- Nonce ----

DecodeError NoncePayload::decode(Reader r, NoncePayload& out) {
  out.data = r.rest();
  if (out.data.size() < kNonceMin || out.data.size() > kNonceMax)
    return DecodeError::kInvalidSyntax;
  return DecodeError::kOk;
}

void NoncePayload::encode(Writer& w) const { w.bytes(data); }

// ---- Notify ----

NotifyPayload NotifyPayload::make(NotifyType t, Bytes data) {
  NotifyPayload n;
  n.type = t;
  n.data = std::move(data);
  return n;
}

NotifyPayload NotifyPayload::make_child(NotifyType t, ProtocolId p, uint32_t spi, Bytes data) {
  NotifyPayload n = make(t, std::move(data));
  n.protocol = p;
  put_be32(n.spi, spi);
  return n;
}

NotifyPayload NotifyPayload::invalid_ke(uint16_t group) {
  return make(NotifyType::kInvalidKePayload, Bytes{uint8_t(group >> 8), uint8_t(group)});
}

NotifyPayload NotifyPayload::unsupported_critical(uint8_t payload_type) {
  return make(NotifyType::kUnsupportedCriticalPayload, Bytes{payload_type});
}

std::optional<uint16_t> NotifyPayload::ke_group() const {
  if (type != NotifyType::kInvalidKePayload || data.size() != 2) return std::nullopt;
  return uint16_t(data[0] << 8 | data[1]);
}

std::optional<uint32_t> NotifyPayload::spi32() const {
  if (spi.size() != 4) return std::nullopt;
  return be32(spi);
}

DecodeError NotifyPayload::decode(Reader r, NotifyPayload& out) {
  out.protocol = ProtocolId(r.u8());
  uint8_t spi_size = r.u8();
  out.type = NotifyType(r.u16());
  out.spi = r.bytes(spi_size);
  if (!r.ok()) return DecodeError::kTruncated;
  out.data = r.rest();
  // Some types have a fixed data size we rely on.
  switch (out.type) {
    case NotifyType::kInvalidKePayload:
      if (out.data.size() != 2) return DecodeError::kInvalidSyntax;
      break;
    case NotifyType::kNatDetectionSourceIp:
    case NotifyType::kNatDetectionDestinationIp:
      if (out.data.size() != 20) return DecodeError::kInvalidSyntax;
      break;
    case NotifyType::kCookie:
      if (out.data.empty() || out.data.size() > 64) return DecodeError::kInvalidSyntax;
      break;
    case NotifyType::kRekeySa:
      if (out.spi.size() != 4) return DecodeError::kInvalidSyntax;
      break;
    default:
      break;
  }
  return DecodeError::kOk;
}

void NotifyPayload::encode(Writer& w) const {
  w.u8(uint8_t(protocol));
  w.u8(uint8_t(spi.size()));
  w.u16(uint16_t(type));
  w.bytes(spi);
  w.bytes(data);
}

// ---- Delete ----

DecodeError DeletePayload::decode(Reader r, DeletePayload& out) {
  out = {};
  out.protocol = ProtocolId(r.u8());
  uint8_t spi_size = r.u8();
  uint16_t num = r.u16();
  if (!r.ok()) return DecodeError::kTruncated;
  if (out.protocol == ProtocolId::kIke) {
    if (spi_size != 0 || num != 0 || !r.empty()) return DecodeError::kInvalidSyntax;
    return DecodeError::kOk;
  }
  if (out.protocol != ProtocolId::kEsp && out.protocol != ProtocolId::kAh)
    return DecodeError::kInvalidSyntax;
  if (spi_size != 4) return DecodeError::kInvalidSyntax;
  if (r.remaining() != size_t(num) * 4) return DecodeError::kBadLength;
  out.spis.reserve(num);
  for (uint16_t i = 0; i < num; ++i) out.spis.push_back(r.u32());
  return DecodeError::kOk;
}

void DeletePayload::encode(Writer& w) const {
  w.u8(uint8_t(protocol));
  bool ike = protocol == ProtocolId::kIke;
  w.u8(ike ? 0 : 4);
  w.u16(ike ? 0 : uint16_t(spis.size()));
  if (!ike)
    for (uint32_t s : spis) w.u32(s);
}

// ---- Vendor ID ----

DecodeError VendorIdPayload::decode(Reader r, VendorIdPayload& out) {
  out.data = r.rest();
  return DecodeError::kOk;
}

void VendorIdPayload::encode(Writer& w) const { w.bytes(data); }

// ---- TS ----

TrafficSelector TrafficSelector::from_prefix(const Prefix& p, uint8_t ip_protocol,
                                             uint16_t start_port, uint16_t end_port) {
  TrafficSelector ts;
  Prefix n = p.normalized();
  ts.type = n.addr.is_v4() ? TsType::kIpv4AddrRange : TsType::kIpv6AddrRange;
  ts.ip_protocol = ip_protocol;
  ts.start_port = start_port;
  ts.end_port = end_port;
  ts.start = n.addr;
  ts.end = n.addr;
  unsigned nbytes = n.addr.is_v4() ? 4 : 16;
  for (unsigned i = 0; i < nbytes; ++i) {
    int bits = int(n.len) - int(i * 8);
    uint8_t host = bits >= 8 ? 0 : bits <= 0 ? 0xff : uint8_t(0xff >> bits);
    ts.end.bytes[i] |= host;
  }
  return ts;
}

std::optional<Prefix> TrafficSelector::to_prefix() const {
  if (start.family != end.family || !start.is_set()) return std::nullopt;
  unsigned nbytes = start.is_v4() ? 4 : 16;
  // The range is a prefix iff start and end share a common leading part, then start has all zero
  // bits and end all one bits.
  unsigned len = 0;
  while (len < nbytes * 8) {
    unsigned byte = len / 8;
    uint8_t bit = uint8_t(0x80 >> (len % 8));
    if ((start.bytes[byte] & bit) != (end.bytes[byte] & bit)) break;
    ++len;
  }
  Prefix p{start, uint8_t(len)};
  if (from_prefix(p).start != start || from_prefix(p).end != end) return std::nullopt;
  return p;
}

std::string TrafficSelector::str() const {
  std::string s;
  if (auto p = to_prefix())
    s = p->str();
  else
    s = start.str() + ".." + end.str();
  if (ip_protocol != 0 || !any_port()) {
    s += "[" + std::to_string(ip_protocol);
    if (!any_port()) {
      s += "/" + std::to_string(start_port);
      if (end_port != start_port) s += "-" + std::to_string(end_port);
    }
    s += "]";
  }
  return s;
}

DecodeError TsPayload::decode(Reader r, TsPayload& out) {
  out = {};
  uint8_t num = r.u8();
  r.skip(3);
  if (!r.ok()) return DecodeError::kTruncated;
  if (num == 0) return DecodeError::kInvalidSyntax;
  for (unsigned i = 0; i < num; ++i) {
    uint8_t type = r.u8();
    uint8_t proto = r.u8();
    uint16_t len = r.u16();
    if (!r.ok()) return DecodeError::kTruncated;
    if (len < 4 || len - 4u > r.remaining()) return DecodeError::kBadLength;
    Reader s = r.sub(len - 4u);
    if (type != uint8_t(TsType::kIpv4AddrRange) && type != uint8_t(TsType::kIpv6AddrRange))
      continue;  // a selector type we do not know: ignored (section 3.13.1)
    bool v4 = type == uint8_t(TsType::kIpv4AddrRange);
    if (len != (v4 ? 16 : 40)) return DecodeError::kBadLength;
    TrafficSelector ts;
    ts.type = TsType(type);
    ts.ip_protocol = proto;
    ts.start_port = s.u16();
    ts.end_port = s.u16();
    size_t alen = v4 ? 4 : 16;
    ByteView a = s.view(alen);
    ByteView b = s.view(alen);
    if (!s.ok()) return DecodeError::kTruncated;
    ts.start.family = ts.end.family = v4 ? 4 : 6;
    std::copy(a.begin(), a.end(), ts.start.bytes.begin());
    std::copy(b.begin(), b.end(), ts.end.bytes.begin());
    out.selectors.push_back(ts);
  }
  if (!r.empty()) return DecodeError::kBadLength;
  if (out.selectors.empty()) return DecodeError::kInvalidSyntax;  // only unknown selector types
  return DecodeError::kOk;
}

void TsPayload::encode(Writer& w) const {
  w.u8(uint8_t(selectors.size()));
  w.zeros(3);
  for (const auto& ts : selectors) {
    bool v4 = ts.type == TsType::kIpv4AddrRange;
    size_t alen = v4 ? 4 : 16;
    w.u8(uint8_t(ts.type));
    w.u8(ts.ip_protocol);
    w.u16(uint16_t(8 + 2 * alen));
    w.u16(ts.start_port);
    w.u16(ts.end_port);
    w.bytes(ByteView(ts.start.bytes.data(), alen));
    w.bytes(ByteView(ts.end.bytes.data(), alen));
  }
}

// ---- Encrypted / raw ----

DecodeError EncryptedPayload::decode(Reader r, EncryptedPayload& out) {
  out.data = r.rest();
  return DecodeError::kOk;
}

void EncryptedPayload::encode(Writer& w) const { w.bytes(data); }

DecodeError RawPayload::decode(Reader r, RawPayload& out) {
  out.data = r.rest();
  return DecodeError::kOk;
}

void RawPayload::encode(Writer& w) const { w.bytes(data); }

// ---- dispatch ----

Payload make_payload(SaPayload p) { return {PayloadType::kSa, std::move(p)}; }
Payload make_payload(KePayload p) { return {PayloadType::kKe, std::move(p)}; }
Payload make_payload(AuthPayload p) { return {PayloadType::kAuth, std::move(p)}; }
Payload make_payload(NoncePayload p) { return {PayloadType::kNonce, std::move(p)}; }
Payload make_payload(NotifyPayload p) { return {PayloadType::kNotify, std::move(p)}; }
Payload make_payload(DeletePayload p) { return {PayloadType::kDelete, std::move(p)}; }
Payload make_payload(VendorIdPayload p) { return {PayloadType::kVendorId, std::move(p)}; }
Payload make_idi(IdPayload p) { return {PayloadType::kIdi, std::move(p)}; }
Payload make_idr(IdPayload p) { return {PayloadType::kIdr, std::move(p)}; }
Payload make_tsi(TsPayload p) { return {PayloadType::kTsi, std::move(p)}; }
Payload make_tsr(TsPayload p) { return {PayloadType::kTsr, std::move(p)}; }

bool is_known_payload(uint8_t type) {
  return (type >= uint8_t(PayloadType::kSa) && type <= uint8_t(PayloadType::kEap)) ||
         type == uint8_t(PayloadType::kEncryptedFragment);
}

namespace {
template <class T>
DecodeError decode_as(Reader r, PayloadBody& out) {
  T v;
  DecodeError e = T::decode(r, v);
  if (e == DecodeError::kOk) out = std::move(v);
  return e;
}
}  // namespace

DecodeError decode_body(PayloadType type, Reader r, PayloadBody& out) {
  if (!r.ok()) return DecodeError::kTruncated;
  switch (type) {
    case PayloadType::kSa:
      return decode_as<SaPayload>(r, out);
    case PayloadType::kKe:
      return decode_as<KePayload>(r, out);
    case PayloadType::kIdi:
    case PayloadType::kIdr:
      return decode_as<IdPayload>(r, out);
    case PayloadType::kAuth:
      return decode_as<AuthPayload>(r, out);
    case PayloadType::kNonce:
      return decode_as<NoncePayload>(r, out);
    case PayloadType::kNotify:
      return decode_as<NotifyPayload>(r, out);
    case PayloadType::kDelete:
      return decode_as<DeletePayload>(r, out);
    case PayloadType::kVendorId:
      return decode_as<VendorIdPayload>(r, out);
    case PayloadType::kTsi:
    case PayloadType::kTsr:
      return decode_as<TsPayload>(r, out);
    case PayloadType::kEncrypted:
      return decode_as<EncryptedPayload>(r, out);
    case PayloadType::kCert:
    case PayloadType::kCertReq:
    case PayloadType::kConfig:
    case PayloadType::kEap:
    case PayloadType::kEncryptedFragment:
      return decode_as<RawPayload>(r, out);
    case PayloadType::kNone:
      break;
  }
  return DecodeError::kInvalidSyntax;
}

void encode_body(const PayloadBody& body, Writer& w) {
  std::visit([&w](const auto& p) { p.encode(w); }, body);
}

}  // namespace espgw::ike
