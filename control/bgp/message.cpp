// Message framing (RFC 4271 s4.1, s6.1), NOTIFICATION, KEEPALIVE, ROUTE-REFRESH, dispatch.
#include "control/bgp/message.h"

#include <algorithm>

namespace espgw::bgp {
namespace {

Bytes start(MsgType t) {
  Bytes out(16, 0xFF);
  Writer w(out);
  w.u16(0);
  w.u8(uint8_t(t));
  return out;
}

Bytes finish(Bytes out) {
  if (out.size() > kMaxMessageLen) return {};
  Writer(out).patch_u16(16, uint16_t(out.size()));
  return out;
}

// Smallest (and for KEEPALIVE / ROUTE-REFRESH, only) length of each type, header included.
size_t min_length(MsgType t) {
  switch (t) {
    case MsgType::kOpen:
      return 29;
    case MsgType::kUpdate:
      return 23;
    case MsgType::kNotification:
      return 21;
    case MsgType::kKeepalive:
      return 19;
    case MsgType::kRouteRefresh:
      return 23;
  }
  return kHeaderLen;
}

}  // namespace

HeaderResult decode_header(std::span<const uint8_t> buf) {
  HeaderResult res;
  Reader r(buf);
  const std::span<const uint8_t> marker = r.view(16);
  const uint16_t len = r.u16();
  const uint8_t type = r.u8();
  if (!r.ok()) {
    res.error = {err::kHeader, err::header::kBadLength, {}};
    return res;
  }
  // RFC 4271 s6.1: marker not all ones -> Connection Not Synchronized.
  if (!std::all_of(marker.begin(), marker.end(), [](uint8_t b) { return b == 0xFF; })) {
    res.error = {err::kHeader, err::header::kNotSynchronized, {}};
    return res;
  }
  // RFC 4271 s6.1: bad type -> Bad Message Type, data = the type octet.
  if (type < uint8_t(MsgType::kOpen) || type > uint8_t(MsgType::kRouteRefresh)) {
    res.error = {err::kHeader, err::header::kBadType, {type}};
    return res;
  }
  // RFC 4271 s6.1: length outside 19..4096, below the type's minimum, or a KEEPALIVE other
  // than 19 -> Bad Message Length, data = the length field.
  MsgType t = MsgType(type);
  if (len < min_length(t) || len > kMaxMessageLen || (t == MsgType::kKeepalive && len != 19)) {
    res.error = {err::kHeader, err::header::kBadLength, {uint8_t(len >> 8), uint8_t(len)}};
    return res;
  }
  res.ok = true;
  res.header = {len, t};
  return res;
}

MessageResult decode_message(std::span<const uint8_t> msg, const Codec& c) {
  MessageResult res;
  HeaderResult h = decode_header(msg);
  if (!h.ok) {
    res.reset(h.error.code, h.error.subcode, h.error.data, "bad message header");
    return res;
  }
  if (h.header.length != msg.size()) {
    res.reset(err::kHeader, err::header::kBadLength,
              {uint8_t(h.header.length >> 8), uint8_t(h.header.length)},
              "length field does not match the message");
    return res;
  }
  std::span<const uint8_t> body = msg.subspan(kHeaderLen);
  Reader r(body);
  switch (h.header.type) {
    case MsgType::kOpen:
      return decode_open(body);
    case MsgType::kUpdate: {
      UpdateResult u = decode_update(body, c);
      static_cast<Verdict&>(res) = std::move(static_cast<Verdict&>(u));
      res.message = std::move(u.update);
      return res;
    }
    case MsgType::kNotification: {
      Notification n;
      n.code = r.u8();
      n.subcode = r.u8();
      n.data = r.rest();
      res.message = std::move(n);
      return res;
    }
    case MsgType::kKeepalive:
      res.message = Keepalive{};
      return res;
    case MsgType::kRouteRefresh: {
      // RFC 7313 s5: a ROUTE-REFRESH whose body is not 4 octets -> ROUTE-REFRESH Message
      // Error / Invalid Message Length, data = the whole message.
      if (body.size() != 4) {
        res.reset(err::kRouteRefresh, err::route_refresh::kInvalidLength,
                  Bytes(msg.begin(), msg.end()), "ROUTE-REFRESH length is not 23");
        return res;
      }
      RouteRefresh rr;
      rr.family.afi = r.u16();
      rr.subtype = r.u8();
      rr.family.safi = r.u8();
      res.message = rr;
      return res;
    }
  }
  return res;
}

Bytes encode_notification(const Notification& n) {
  Bytes out = start(MsgType::kNotification);
  Writer w(out);
  w.u8(n.code);
  w.u8(n.subcode);
  // Data beyond the message size limit is cut rather than losing the whole NOTIFICATION.
  size_t room = kMaxMessageLen - out.size();
  w.bytes(std::span<const uint8_t>(n.data).first(std::min(room, n.data.size())));
  return finish(std::move(out));
}

Bytes encode_keepalive() { return finish(start(MsgType::kKeepalive)); }

Bytes encode_route_refresh(const RouteRefresh& r) {
  Bytes out = start(MsgType::kRouteRefresh);
  Writer w(out);
  w.u16(r.family.afi);
  w.u8(r.subtype);
  w.u8(r.family.safi);
  return finish(std::move(out));
}

Bytes encode(const Message& m, const Codec& c) {
  struct V {
    const Codec& c;
    Bytes operator()(const Open& o) { return encode_open(o); }
    Bytes operator()(const Update& u) { return encode_update(u, c); }
    Bytes operator()(const Notification& n) { return encode_notification(n); }
    Bytes operator()(const Keepalive&) { return encode_keepalive(); }
    Bytes operator()(const RouteRefresh& r) { return encode_route_refresh(r); }
  };
  return std::visit(V{c}, m);
}

}  // namespace espgw::bgp
