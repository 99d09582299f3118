// IKEv2 payload bodies (RFC 7296 section 3.3-3.14) as plain structs. decode() reads the payload
// body (everything after the 4-byte generic payload header) through a bounds-checked Reader and
// never throws; encode() appends the body. Generic headers and the payload chain are in message.h.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "control/ike/types.h"
#include "control/ike/wire.h"
#include "dataplane/net/ip.h"

namespace espgw::ike {

// Outcome of decoding; every failure maps to the notify to answer with (notify_for()).
enum class DecodeError : uint8_t {
  kOk = 0,
  kTruncated,            // a length points past the end of the buffer
  kBadLength,            // a length field is inconsistent with the content
  kInvalidSyntax,        // well-framed but semantically malformed
  kUnsupportedVersion,   // major version > 2
  kUnsupportedCritical,  // unknown payload with the critical bit set
};

NotifyType notify_for(DecodeError e);
const char* to_string(DecodeError e);

// ---- SA (section 3.3) ----

struct Transform {
  TransformType type = TransformType::kEncr;
  uint16_t id = 0;
  uint16_t key_length = 0;  // bits, from the Key Length attribute; 0 = attribute absent

  bool operator==(const Transform&) const = default;
};

struct Proposal {
  uint8_t number = 1;
  ProtocolId protocol = ProtocolId::kIke;
  Bytes spi;  // 0 bytes (IKE_SA_INIT), 8 (IKE rekey) or 4 (ESP/AH)
  std::vector<Transform> transforms;
  // A transform carried an attribute we do not understand; RFC 7296 3.3.6 says such a transform
  // must be rejected, so selection skips this proposal. Not re-encoded.
  bool unknown_attribute = false;

  bool operator==(const Proposal&) const = default;
};

struct SaPayload {
  std::vector<Proposal> proposals;

  static DecodeError decode(Reader r, SaPayload& out);
  void encode(Writer& w) const;
  bool operator==(const SaPayload&) const = default;
};

// ---- KE (section 3.4) ----

struct KePayload {
  uint16_t group = 0;
  Bytes data;  // public value (not secret, but never logged in full)

  static DecodeError decode(Reader r, KePayload& out);
  void encode(Writer& w) const;
  bool operator==(const KePayload&) const = default;
};

// ---- IDi / IDr (section 3.5) ----

struct IdPayload {
  IdType type = IdType::kFqdn;
  Bytes data;

  static IdPayload from_addr(const IpAddr& a);
  static IdPayload fqdn(std::string_view name);
  static IdPayload key_id(ByteView id);

  // Body as used for MACedIDFor[I|R] (section 2.15): ID Type | 3 reserved octets | data.
  Bytes body() const;
  std::optional<IpAddr> addr() const;  // for the IP address types
  std::string str() const;             // printable form for logs and config matching

  static DecodeError decode(Reader r, IdPayload& out);
  void encode(Writer& w) const;
  bool operator==(const IdPayload&) const = default;
};

// ---- AUTH (section 3.8) ----

struct AuthPayload {
  AuthMethod method = AuthMethod::kSharedKeyMic;
  Bytes data;

  static DecodeError decode(Reader r, AuthPayload& out);
  void encode(Writer& w) const;
  bool operator==(const AuthPayload&) const = default;
};

// ---- Nonce (section 3.9): 16..256 octets ----

inline constexpr size_t kNonceMin = 16;
inline constexpr size_t kNonceMax = 256;

struct NoncePayload {
  Bytes data;

  static DecodeError decode(Reader r, NoncePayload& out);
  void encode(Writer& w) const;
  bool operator==(const NoncePayload&) const = default;
};

// ---- Notify (section 3.10) ----

struct NotifyPayload {
  ProtocolId protocol = ProtocolId::kNone;
  Bytes spi;  // 0 bytes, or 4 for ESP/AH (REKEY_SA, CHILD_SA_NOT_FOUND, INVALID_SPI ...)
  NotifyType type = NotifyType::kInvalidSyntax;
  Bytes data;

  static NotifyPayload make(NotifyType t, Bytes data = {});
  static NotifyPayload make_child(NotifyType t, ProtocolId p, uint32_t spi, Bytes data = {});
  static NotifyPayload invalid_ke(uint16_t group);  // data: accepted group (2 octets)
  static NotifyPayload unsupported_critical(uint8_t payload_type);  // data: the payload type (1)

  std::optional<uint16_t> ke_group() const;  // INVALID_KE_PAYLOAD data
  std::optional<uint32_t> spi32() const;     // a 4-octet SPI

  static DecodeError decode(Reader r, NotifyPayload& out);
  void encode(Writer& w) const;
  bool operator==(const NotifyPayload&) const = default;
};

// ---- Delete (section 3.11) ----

struct DeletePayload {
  ProtocolId protocol = ProtocolId::kEsp;
  std::vector<uint32_t> spis;  // ESP/AH SPIs; empty for IKE (SPI size 0)

  static DecodeError decode(Reader r, DeletePayload& out);
  void encode(Writer& w) const;
  bool operator==(const DeletePayload&) const = default;
};

// ---- Vendor ID (section 3.12) ----

struct VendorIdPayload {
  Bytes data;

  static DecodeError decode(Reader r, VendorIdPayload& out);
  void encode(Writer& w) const;
  bool operator==(const VendorIdPayload&) const = default;
};

// ---- TSi / TSr (section 3.13) ----

struct TrafficSelector {
  TsType type = TsType::kIpv4AddrRange;
  uint8_t ip_protocol = 0;  // 0 = any
  uint16_t start_port = 0;
  uint16_t end_port = 0xffff;
  IpAddr start;
  IpAddr end;

  // The range covering exactly the prefix (addresses only; protocol/ports as given).
  static TrafficSelector from_prefix(const Prefix& p, uint8_t ip_protocol = 0,
                                     uint16_t start_port = 0, uint16_t end_port = 0xffff);
  // The prefix if the address range is exactly one prefix (ports/protocol are not considered).
  std::optional<Prefix> to_prefix() const;
  bool any_port() const { return start_port == 0 && end_port == 0xffff; }
  std::string str() const;

  bool operator==(const TrafficSelector&) const = default;
};

struct TsPayload {
  std::vector<TrafficSelector> selectors;

  static DecodeError decode(Reader r, TsPayload& out);
  void encode(Writer& w) const;
  bool operator==(const TsPayload&) const = default;
};

// ---- Encrypted (SK, section 3.14) ----
// Holds the inner next-payload type (the SK generic header's Next Payload field) and the raw
// IV | ciphertext | ICV. sk.h verifies and decrypts it.

struct EncryptedPayload {
  PayloadType inner_next = PayloadType::kNone;
  Bytes data;

  static DecodeError decode(Reader r, EncryptedPayload& out);
  void encode(Writer& w) const;
  bool operator==(const EncryptedPayload&) const = default;
};

// ---- Known payloads espgw does not interpret (CERT, CERTREQ, CP, EAP, SKF): body kept raw ----

struct RawPayload {
  Bytes data;

  static DecodeError decode(Reader r, RawPayload& out);
  void encode(Writer& w) const;
  bool operator==(const RawPayload&) const = default;
};

using PayloadBody =
    std::variant<SaPayload, KePayload, IdPayload, AuthPayload, NoncePayload, NotifyPayload,
                 DeletePayload, VendorIdPayload, TsPayload, EncryptedPayload, RawPayload>;

// One payload of a chain. The type distinguishes IDi/IDr and TSi/TSr, which share a body struct.
struct Payload {
  PayloadType type = PayloadType::kNone;
  PayloadBody body;

  bool operator==(const Payload&) const = default;
};

Payload make_payload(SaPayload p);
Payload make_payload(KePayload p);
Payload make_payload(AuthPayload p);
Payload make_payload(NoncePayload p);
Payload make_payload(NotifyPayload p);
Payload make_payload(DeletePayload p);
Payload make_payload(VendorIdPayload p);
Payload make_idi(IdPayload p);
Payload make_idr(IdPayload p);
Payload make_tsi(TsPayload p);
Payload make_tsr(TsPayload p);

// True if espgw knows the payload type (unknown types are skipped or, if critical, rejected).
bool is_known_payload(uint8_t type);

// Decodes the body of a payload of the given known type. Unknown types -> kInvalidSyntax.
DecodeError decode_body(PayloadType type, Reader r, PayloadBody& out);
void encode_body(const PayloadBody& body, Writer& w);

}  // namespace espgw::ike
