// BGP-4 protocol numbers: message types, address families, capability and attribute codes,
// NOTIFICATION codes and subcodes (RFC 4271 s4.5/s6, RFC 4486, RFC 5492, RFC 6608, RFC 7313,
// RFC 8538), and the Notification value itself.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <string>

#include "control/bgp/wire.h"

namespace espgw::bgp {

inline constexpr size_t kHeaderLen = 19;
inline constexpr size_t kMaxMessageLen = 4096;
inline constexpr uint8_t kVersion = 4;
inline constexpr uint16_t kAsTrans = 23456;  // RFC 6793 s2

enum class MsgType : uint8_t {
  kOpen = 1,
  kUpdate = 2,
  kNotification = 3,
  kKeepalive = 4,
  kRouteRefresh = 5,  // RFC 2918
};

inline constexpr uint16_t kAfiIpv4 = 1;
inline constexpr uint16_t kAfiIpv6 = 2;
inline constexpr uint8_t kSafiUnicast = 1;

struct AfiSafi {
  uint16_t afi = kAfiIpv4;
  uint8_t safi = kSafiUnicast;
  auto operator<=>(const AfiSafi&) const = default;
};
inline constexpr AfiSafi kIpv4Unicast{kAfiIpv4, kSafiUnicast};
inline constexpr AfiSafi kIpv6Unicast{kAfiIpv6, kSafiUnicast};

namespace cap {
inline constexpr uint8_t kMultiprotocol = 1;     // RFC 4760
inline constexpr uint8_t kRouteRefresh = 2;      // RFC 2918
inline constexpr uint8_t kGracefulRestart = 64;  // RFC 4724
inline constexpr uint8_t kAs4 = 65;              // RFC 6793
}  // namespace cap

namespace attr {
// Type codes.
inline constexpr uint8_t kOrigin = 1;
inline constexpr uint8_t kAsPath = 2;
inline constexpr uint8_t kNextHop = 3;
inline constexpr uint8_t kMed = 4;
inline constexpr uint8_t kLocalPref = 5;
inline constexpr uint8_t kAtomicAggregate = 6;
inline constexpr uint8_t kAggregator = 7;
inline constexpr uint8_t kCommunities = 8;     // RFC 1997
inline constexpr uint8_t kMpReach = 14;        // RFC 4760
inline constexpr uint8_t kMpUnreach = 15;      // RFC 4760
inline constexpr uint8_t kAs4Path = 17;        // RFC 6793
inline constexpr uint8_t kAs4Aggregator = 18;  // RFC 6793
// Flag bits (RFC 4271 s4.3).
inline constexpr uint8_t kOptional = 0x80;
inline constexpr uint8_t kTransitive = 0x40;
inline constexpr uint8_t kPartial = 0x20;
inline constexpr uint8_t kExtendedLength = 0x10;
}  // namespace attr

// NOTIFICATION error codes and subcodes.
namespace err {
inline constexpr uint8_t kHeader = 1;
inline constexpr uint8_t kOpen = 2;
inline constexpr uint8_t kUpdate = 3;
inline constexpr uint8_t kHoldTimer = 4;
inline constexpr uint8_t kFsm = 5;
inline constexpr uint8_t kCease = 6;
inline constexpr uint8_t kRouteRefresh = 7;  // RFC 7313

inline constexpr uint8_t kUnspecific = 0;

namespace header {  // RFC 4271 s6.1
inline constexpr uint8_t kNotSynchronized = 1;
inline constexpr uint8_t kBadLength = 2;
inline constexpr uint8_t kBadType = 3;
}  // namespace header

namespace open {  // RFC 4271 s6.2, RFC 5492
inline constexpr uint8_t kUnsupportedVersion = 1;
inline constexpr uint8_t kBadPeerAs = 2;
inline constexpr uint8_t kBadBgpId = 3;
inline constexpr uint8_t kUnsupportedOptParam = 4;
// 5 (Authentication Failure) is deprecated.
inline constexpr uint8_t kUnacceptableHoldTime = 6;
inline constexpr uint8_t kUnsupportedCapability = 7;  // RFC 5492
}  // namespace open

namespace update {  // RFC 4271 s6.3
inline constexpr uint8_t kMalformedAttrList = 1;
inline constexpr uint8_t kUnrecognizedWellKnown = 2;
inline constexpr uint8_t kMissingWellKnown = 3;
inline constexpr uint8_t kAttrFlags = 4;
inline constexpr uint8_t kAttrLength = 5;
inline constexpr uint8_t kInvalidOrigin = 6;
// 7 (AS Routing Loop) is deprecated.
inline constexpr uint8_t kInvalidNextHop = 8;
inline constexpr uint8_t kOptionalAttr = 9;
inline constexpr uint8_t kInvalidNetwork = 10;
inline constexpr uint8_t kMalformedAsPath = 11;
}  // namespace update

namespace fsm {  // RFC 6608
inline constexpr uint8_t kUnexpectedInOpenSent = 1;
inline constexpr uint8_t kUnexpectedInOpenConfirm = 2;
inline constexpr uint8_t kUnexpectedInEstablished = 3;
}  // namespace fsm

namespace cease {  // RFC 4486, RFC 8538
inline constexpr uint8_t kMaxPrefixes = 1;
inline constexpr uint8_t kAdminShutdown = 2;
inline constexpr uint8_t kPeerDeconfigured = 3;
inline constexpr uint8_t kAdminReset = 4;
inline constexpr uint8_t kConnectionRejected = 5;
inline constexpr uint8_t kOtherConfigChange = 6;
inline constexpr uint8_t kCollisionResolution = 7;
inline constexpr uint8_t kOutOfResources = 8;
inline constexpr uint8_t kHardReset = 9;  // RFC 8538
}  // namespace cease

namespace route_refresh {  // RFC 7313
inline constexpr uint8_t kInvalidLength = 1;
}  // namespace route_refresh
}  // namespace err

struct Notification {
  uint8_t code = 0;
  uint8_t subcode = 0;
  Bytes data;
  bool operator==(const Notification&) const = default;
};

// "UPDATE Message Error / Malformed AS_PATH" for logs.
std::string error_name(uint8_t code, uint8_t subcode);

}  // namespace espgw::bgp
