// IKEv2 protocol numbers (RFC 7296 section 3 and the IANA IKEv2 registries) used by espgw.
#pragma once

#include <cstdint>
#include <string>

namespace espgw::ike {

enum class ExchangeType : uint8_t {
  kIkeSaInit = 34,
  kIkeAuth = 35,
  kCreateChildSa = 36,
  kInformational = 37,
};

// Header flags (section 3.1).
inline constexpr uint8_t kFlagInitiator = 0x08;
inline constexpr uint8_t kFlagVersion = 0x10;
inline constexpr uint8_t kFlagResponse = 0x20;

enum class PayloadType : uint8_t {
  kNone = 0,
  kSa = 33,
  kKe = 34,
  kIdi = 35,
  kIdr = 36,
  kCert = 37,
  kCertReq = 38,
  kAuth = 39,
  kNonce = 40,
  kNotify = 41,
  kDelete = 42,
  kVendorId = 43,
  kTsi = 44,
  kTsr = 45,
  kEncrypted = 46,
  kConfig = 47,
  kEap = 48,
  kEncryptedFragment = 53,  // RFC 7383
};

// Protocol ID in proposals, notifies and deletes.
enum class ProtocolId : uint8_t {
  kNone = 0,
  kIke = 1,
  kAh = 2,
  kEsp = 3,
};

enum class IdType : uint8_t {
  kIpv4Addr = 1,
  kFqdn = 2,
  kRfc822Addr = 3,
  kIpv6Addr = 5,
  kDerAsn1Dn = 9,
  kDerAsn1Gn = 10,
  kKeyId = 11,
};

enum class AuthMethod : uint8_t {
  kRsaSig = 1,
  kSharedKeyMic = 2,
  kDssSig = 3,
  kDigitalSignature = 14,  // RFC 7427
};

enum class TsType : uint8_t {
  kIpv4AddrRange = 7,
  kIpv6AddrRange = 8,
};

enum class NotifyType : uint16_t {
  // Errors (section 3.10.1).
  kUnsupportedCriticalPayload = 1,
  kInvalidIkeSpi = 4,
  kInvalidMajorVersion = 5,
  kInvalidSyntax = 7,
  kInvalidMessageId = 9,
  kInvalidSpi = 11,
  kNoProposalChosen = 14,
  kInvalidKePayload = 17,
  kAuthenticationFailed = 24,
  kSinglePairRequired = 34,
  kNoAdditionalSas = 35,
  kInternalAddressFailure = 36,
  kFailedCpRequired = 37,
  kTsUnacceptable = 38,
  kInvalidSelectors = 39,
  kTemporaryFailure = 43,
  kChildSaNotFound = 44,
  // Status types.
  kInitialContact = 16384,
  kSetWindowSize = 16385,
  kAdditionalTsPossible = 16386,
  kIpcompSupported = 16387,
  kNatDetectionSourceIp = 16388,
  kNatDetectionDestinationIp = 16389,
  kCookie = 16390,
  kUseTransportMode = 16391,
  kHttpCertLookupSupported = 16392,
  kRekeySa = 16393,
  kEspTfcPaddingNotSupported = 16394,
  kNonFirstFragmentsAlso = 16395,
  kMobikeSupported = 16396,
  kFragmentationSupported = 16430,   // RFC 7383
  kSignatureHashAlgorithms = 16431,  // RFC 7427, kept raw
};

inline constexpr bool is_error(NotifyType t) { return uint16_t(t) < 16384; }

// Transform types (section 3.3.2).
enum class TransformType : uint8_t {
  kEncr = 1,
  kPrf = 2,
  kInteg = 3,
  kDh = 4,
  kEsn = 5,
};

// Transform IDs used by espgw.
namespace encr {
inline constexpr uint16_t kAesCbc = 12;
inline constexpr uint16_t kAesGcm16 = 20;
inline constexpr uint16_t kNullAuthAesGmac = 21;
inline constexpr uint16_t kChacha20Poly1305 = 28;
}  // namespace encr
namespace prf {
inline constexpr uint16_t kHmacSha256 = 5;
inline constexpr uint16_t kHmacSha384 = 6;
inline constexpr uint16_t kHmacSha512 = 7;
}  // namespace prf
namespace integ {
inline constexpr uint16_t kNone = 0;
inline constexpr uint16_t kHmacSha256_128 = 12;
inline constexpr uint16_t kHmacSha384_192 = 13;
inline constexpr uint16_t kHmacSha512_256 = 14;
}  // namespace integ
namespace dh {
inline constexpr uint16_t kNone = 0;
inline constexpr uint16_t kModp2048 = 14;
inline constexpr uint16_t kModp3072 = 15;
inline constexpr uint16_t kEcp256 = 19;
inline constexpr uint16_t kEcp384 = 20;
inline constexpr uint16_t kEcp521 = 21;
inline constexpr uint16_t kCurve25519 = 31;
}  // namespace dh
namespace esn {
inline constexpr uint16_t kNo = 0;
inline constexpr uint16_t kYes = 1;
}  // namespace esn

// Transform attribute type for Key Length (TV format, section 3.3.5).
inline constexpr uint16_t kAttrKeyLength = 14;

// Names for logs (never contain key material).
std::string to_string(ExchangeType t);
std::string to_string(PayloadType t);
std::string to_string(NotifyType t);
std::string to_string(ProtocolId p);

}  // namespace espgw::ike
