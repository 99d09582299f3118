// BGP-4 messages (RFC 4271 s4): header, OPEN with capabilities (RFC 5492), UPDATE (update.h),
// NOTIFICATION, KEEPALIVE and ROUTE-REFRESH (RFC 2918).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "control/bgp/codec.h"
#include "control/bgp/constants.h"
#include "control/bgp/update.h"
#include "control/bgp/wire.h"

namespace espgw::bgp {

struct Header {
  uint16_t length = 0;  // whole message, header included
  MsgType type = MsgType::kKeepalive;
};

// RFC 4724 s3.
struct GracefulRestart {
  struct Family {
    AfiSafi family;
    bool forwarding_preserved = false;  // F bit
    bool operator==(const Family&) const = default;
  };
  bool restarting = false;    // R bit
  bool notification = false;  // N bit (RFC 8538)
  uint16_t restart_time = 0;  // seconds, 12 bits
  std::vector<Family> families;
  bool operator==(const GracefulRestart&) const = default;
};

struct RawCapability {
  uint8_t code = 0;
  Bytes value;
  bool operator==(const RawCapability&) const = default;
};

struct Capabilities {
  std::vector<AfiSafi> multiprotocol;  // RFC 4760, one entry per AFI/SAFI
  bool route_refresh = false;          // RFC 2918
  std::optional<GracefulRestart> graceful_restart;
  std::optional<uint32_t> as4;         // RFC 6793: the speaker's 4-octet AS number
  std::vector<RawCapability> unknown;  // kept as received
  bool operator==(const Capabilities&) const = default;
};

struct Open {
  uint8_t version = kVersion;
  uint16_t my_as = 0;  // as on the wire: AS_TRANS when the real AS needs 4 octets
  uint16_t hold_time = 0;
  uint32_t bgp_id = 0;  // host order
  Capabilities caps;

  uint32_t asn() const { return caps.as4 ? *caps.as4 : my_as; }
  // An OPEN for `asn`: my_as is AS_TRANS when asn > 65535, caps.as4 is set to asn.
  static Open make(uint32_t asn, uint16_t hold_time, uint32_t bgp_id, Capabilities caps = {});
  bool operator==(const Open&) const = default;
};

struct Keepalive {
  bool operator==(const Keepalive&) const = default;
};

struct RouteRefresh {
  AfiSafi family;
  uint8_t subtype = 0;  // RFC 7313: 0 normal, 1 BoRR, 2 EoRR
  bool operator==(const RouteRefresh&) const = default;
};

using Message = std::variant<Open, Update, Notification, Keepalive, RouteRefresh>;

// RFC 4271 s6.1 checks on the first 19 bytes (marker, length range and per-type minimum,
// type). `buf` must hold at least kHeaderLen bytes, else the result is a Bad Message Length.
struct HeaderResult {
  bool ok = false;
  Header header;
  Notification error;  // when !ok
};
HeaderResult decode_header(std::span<const uint8_t> buf);

struct MessageResult : Verdict {
  Message message;  // valid unless outcome == kSessionReset
};
// Decodes one whole message (header included; its length must equal msg.size()).
MessageResult decode_message(std::span<const uint8_t> msg, const Codec& c);

// Complete messages, header included. Empty if the message would exceed 4096 bytes.
Bytes encode(const Message& m, const Codec& c);
Bytes encode_open(const Open& o);
Bytes encode_notification(const Notification& n);
Bytes encode_keepalive();
Bytes encode_route_refresh(const RouteRefresh& r);

// Body decoders (after the header), also used by decode_message.
MessageResult decode_open(std::span<const uint8_t> body);

std::string to_string(const Open& o);
std::string to_string(const Notification& n);
std::string to_string(const Message& m);

}  // namespace espgw::bgp
