// OPEN message and capabilities (RFC 4271 s4.2, RFC 5492, RFC 4760, RFC 2918, RFC 4724,
// RFC 6793).
#include "control/bgp/message.h"

namespace espgw::bgp {
namespace {

constexpr uint8_t kParamCapabilities = 2;  // RFC 5492 s4

// False when a known capability has a malformed value.
bool decode_capability(uint8_t code, Reader v, Capabilities& caps) {
  switch (code) {
    case cap::kMultiprotocol: {
      if (v.remaining() != 4) return false;
      AfiSafi f;
      f.afi = v.u16();
      v.skip(1);  // reserved
      f.safi = v.u8();
      caps.multiprotocol.push_back(f);
      return true;
    }
    case cap::kRouteRefresh:
      caps.route_refresh = true;
      return v.empty();
    case cap::kAs4: {
      if (v.remaining() != 4) return false;
      const uint32_t asn = v.u32();
      if (!caps.as4) caps.as4 = asn;
      return true;
    }
    case cap::kGracefulRestart: {
      GracefulRestart gr;
      if (v.remaining() % 4 != 2) return false;
      const uint16_t word = v.u16();
      gr.restarting = word & 0x8000;
      gr.notification = word & 0x4000;
      gr.restart_time = word & 0x0FFF;
      while (!v.empty()) {
        GracefulRestart::Family f;
        f.family.afi = v.u16();
        f.family.safi = v.u8();
        const uint8_t flags = v.u8();
        f.forwarding_preserved = flags & 0x80;
        gr.families.push_back(f);
      }
      if (!caps.graceful_restart) caps.graceful_restart = std::move(gr);
      return true;
    }
    default: {
      caps.unknown.push_back(RawCapability{code, v.rest()});
      return true;
    }
  }
}

void put_cap(Writer& w, uint8_t code, std::span<const uint8_t> value) {
  w.u8(code);
  w.u8(uint8_t(value.size()));
  w.bytes(value);
}

}  // namespace

Open Open::make(uint32_t asn, uint16_t hold_time, uint32_t bgp_id, Capabilities caps) {
  Open o;
  o.my_as = asn > 0xFFFF ? kAsTrans : uint16_t(asn);
  o.hold_time = hold_time;
  o.bgp_id = bgp_id;
  o.caps = std::move(caps);
  o.caps.as4 = asn;
  return o;
}

MessageResult decode_open(std::span<const uint8_t> body) {
  MessageResult res;
  Open o;
  Reader r(body);
  o.version = r.u8();
  o.my_as = r.u16();
  o.hold_time = r.u16();
  o.bgp_id = r.u32();
  Reader params = r.sub(r.u8());
  if (!r.ok() || !r.empty()) {
    res.reset(err::kOpen, err::kUnspecific, {}, "OPEN length does not match its fields");
    return res;
  }
  // RFC 4271 s6.2: the data is the largest version we support.
  if (o.version != kVersion) {
    res.reset(err::kOpen, err::open::kUnsupportedVersion, {0, kVersion},
              "unsupported version " + std::to_string(o.version));
    return res;
  }
  if (o.hold_time == 1 || o.hold_time == 2) {
    res.reset(err::kOpen, err::open::kUnacceptableHoldTime, {}, "hold time 1 or 2");
    return res;
  }
  if (o.bgp_id == 0) {  // RFC 6286 s2.2
    res.reset(err::kOpen, err::open::kBadBgpId, {}, "BGP identifier 0");
    return res;
  }
  while (!params.empty()) {
    const uint8_t type = params.u8();
    Reader value = params.sub(params.u8());
    if (!params.ok()) {
      res.reset(err::kOpen, err::kUnspecific, {}, "optional parameter overruns");
      return res;
    }
    if (type != kParamCapabilities) {  // RFC 4271 s6.2
      res.reset(err::kOpen, err::open::kUnsupportedOptParam, {},
                "optional parameter " + std::to_string(type));
      return res;
    }
    while (!value.empty()) {
      const uint8_t code = value.u8();
      Reader cv = value.sub(value.u8());
      if (!value.ok() || !decode_capability(code, cv, o.caps)) {
        res.reset(err::kOpen, err::kUnspecific, {}, "malformed capability " + std::to_string(code));
        return res;
      }
    }
  }
  res.message = std::move(o);
  return res;
}

Bytes encode_open(const Open& o) {
  Bytes out(16, 0xFF);
  Writer w(out);
  w.u16(0);
  w.u8(uint8_t(MsgType::kOpen));
  w.u8(o.version);
  w.u16(o.my_as);
  w.u16(o.hold_time);
  w.u32(o.bgp_id);

  // All capabilities in one Capabilities parameter, in a fixed order.
  Bytes caps;
  Writer cw(caps);
  const Capabilities& c = o.caps;
  for (auto f : c.multiprotocol) {
    const uint8_t v[4] = {uint8_t(f.afi >> 8), uint8_t(f.afi), 0, f.safi};
    put_cap(cw, cap::kMultiprotocol, v);
  }
  if (c.route_refresh) put_cap(cw, cap::kRouteRefresh, {});
  if (c.graceful_restart) {
    const GracefulRestart& gr = *c.graceful_restart;
    Bytes v;
    Writer vw(v);
    vw.u16(uint16_t((gr.restarting ? 0x8000 : 0) | (gr.notification ? 0x4000 : 0) |
                    (gr.restart_time & 0x0FFF)));
    for (const auto& f : gr.families) {
      vw.u16(f.family.afi);
      vw.u8(f.family.safi);
      vw.u8(f.forwarding_preserved ? 0x80 : 0);
    }
    put_cap(cw, cap::kGracefulRestart, v);
  }
  if (c.as4) {
    const uint8_t v[4] = {uint8_t(*c.as4 >> 24), uint8_t(*c.as4 >> 16), uint8_t(*c.as4 >> 8),
                          uint8_t(*c.as4)};
    put_cap(cw, cap::kAs4, v);
  }
  for (const auto& u : c.unknown) put_cap(cw, u.code, u.value);

  if (caps.empty()) {
    w.u8(0);
  } else {
    if (caps.size() + 2 > 255) return {};  // RFC 9072 extended parameters not supported
    w.u8(uint8_t(caps.size() + 2));
    w.u8(kParamCapabilities);
    w.u8(uint8_t(caps.size()));
    w.bytes(caps);
  }
  w.patch_u16(16, uint16_t(out.size()));
  return out;
}

}  // namespace espgw::bgp
