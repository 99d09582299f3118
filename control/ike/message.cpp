#include "control/ike/message.h"

namespace espgw::ike {

void Header::encode(Writer& w) const {
  w.u64(spi_i);
  w.u64(spi_r);
  w.u8(uint8_t(next));
  w.u8(uint8_t(major << 4 | (minor & 0x0f)));
  w.u8(uint8_t(exchange));
  w.u8(flags);
  w.u32(message_id);
  w.u32(length);
}

const NotifyPayload* Message::notify(NotifyType t) const {
  for (const auto& p : payloads)
    if (const auto* n = std::get_if<NotifyPayload>(&p.body))
      if (n->type == t) return n;
  return nullptr;
}

std::vector<const NotifyPayload*> Message::notifies() const {
  std::vector<const NotifyPayload*> v;
  for (const auto& p : payloads)
    if (const auto* n = std::get_if<NotifyPayload>(&p.body)) v.push_back(n);
  return v;
}

std::vector<const DeletePayload*> Message::deletes() const {
  std::vector<const DeletePayload*> v;
  for (const auto& p : payloads)
    if (const auto* d = std::get_if<DeletePayload>(&p.body)) v.push_back(d);
  return v;
}

std::string Message::describe() const {
  std::string s = to_string(hdr.exchange);
  s += hdr.response() ? " response " : " request ";
  s += std::to_string(hdr.message_id);
  s += " [";
  for (const auto& p : payloads) {
    s += ' ';
    s += to_string(p.type);
    if (const auto* n = std::get_if<NotifyPayload>(&p.body)) s += "(" + to_string(n->type) + ")";
    if (const auto* d = std::get_if<DeletePayload>(&p.body))
      s += "(" + to_string(d->protocol) + ")";
  }
  s += " ]";
  return s;
}

DecodeStatus decode_header(ByteView msg, Header& h) {
  Reader r(msg);
  h.spi_i = r.u64();
  h.spi_r = r.u64();
  h.next = PayloadType(r.u8());
  uint8_t ver = r.u8();
  h.major = ver >> 4;
  h.minor = ver & 0x0f;
  h.exchange = ExchangeType(r.u8());
  h.flags = r.u8();
  h.message_id = r.u32();
  h.length = r.u32();
  if (!r.ok()) return {DecodeError::kTruncated, 0};
  if (h.major != 2) return {DecodeError::kUnsupportedVersion, 0};
  if (h.length != msg.size()) return {DecodeError::kBadLength, 0};
  return {};
}

DecodeStatus decode_payloads(PayloadType first, ByteView chain, std::vector<Payload>& out) {
  Reader r(chain);
  uint8_t type = uint8_t(first);
  while (type != uint8_t(PayloadType::kNone)) {
    uint8_t next = r.u8();
    uint8_t flags = r.u8();
    uint16_t len = r.u16();
    if (!r.ok()) return {DecodeError::kTruncated, type};
    if (len < kGenericHeaderLen) return {DecodeError::kBadLength, type};
    if (len - kGenericHeaderLen > r.remaining()) return {DecodeError::kTruncated, type};
    Reader body = r.sub(len - kGenericHeaderLen);
    if (!is_known_payload(type)) {
      if (flags & kCriticalBit) return {DecodeError::kUnsupportedCritical, type};
      type = next;  // skipped
      continue;
    }
    Payload p;
    p.type = PayloadType(type);
    DecodeError e = decode_body(p.type, body, p.body);
    if (e != DecodeError::kOk) return {e, type};
    if (p.type == PayloadType::kEncrypted) {
      std::get<EncryptedPayload>(p.body).inner_next = PayloadType(next);
      out.push_back(std::move(p));
      // SK is the last payload; its Next Payload names the first payload inside it.
      if (!r.empty()) return {DecodeError::kInvalidSyntax, type};
      return {};
    }
    out.push_back(std::move(p));
    type = next;
  }
  if (!r.empty()) return {DecodeError::kBadLength, 0};
  return {};
}

DecodeStatus decode_message(ByteView msg, Message& out) {
  out = {};
  DecodeStatus st = decode_header(msg, out.hdr);
  if (!st.ok()) return st;
  return decode_payloads(out.hdr.next, msg.subspan(kHeaderLen), out.payloads);
}

PayloadType encode_payloads(const std::vector<Payload>& payloads, Writer& w) {
  for (size_t i = 0; i < payloads.size(); ++i) {
    const Payload& p = payloads[i];
    PayloadType next = i + 1 < payloads.size() ? payloads[i + 1].type : PayloadType::kNone;
    if (const auto* sk = std::get_if<EncryptedPayload>(&p.body)) next = sk->inner_next;
    size_t start = w.size();
    w.u8(uint8_t(next));
    w.u8(0);
    w.u16(0);
    encode_body(p.body, w);
    w.patch_u16(start + 2, uint16_t(w.size() - start));
  }
  return payloads.empty() ? PayloadType::kNone : payloads.front().type;
}

Bytes encode_message(const Message& m) {
  Bytes out;
  Writer w(out);
  Header h = m.hdr;
  h.next = m.payloads.empty() ? PayloadType::kNone : m.payloads.front().type;
  h.encode(w);
  encode_payloads(m.payloads, w);
  w.patch_u32(24, uint32_t(out.size()));
  return out;
}

}  // namespace espgw::ike
