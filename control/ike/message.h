// IKEv2 message: header (RFC 7296 section 3.1) and the generic payload header chain (section 3.2).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "control/ike/payloads.h"
#include "control/ike/types.h"
#include "control/ike/wire.h"

namespace espgw::ike {

inline constexpr size_t kHeaderLen = 28;
inline constexpr size_t kGenericHeaderLen = 4;
inline constexpr uint8_t kCriticalBit = 0x80;

struct Header {
  uint64_t spi_i = 0;
  uint64_t spi_r = 0;
  PayloadType next = PayloadType::kNone;
  uint8_t major = 2;
  uint8_t minor = 0;
  ExchangeType exchange = ExchangeType::kIkeSaInit;
  uint8_t flags = 0;
  uint32_t message_id = 0;
  uint32_t length = 0;  // filled by decode and by encode

  bool initiator() const { return flags & kFlagInitiator; }
  bool response() const { return flags & kFlagResponse; }

  void encode(Writer& w) const;  // writes `length` as is
  bool operator==(const Header&) const = default;
};

struct DecodeStatus {
  DecodeError error = DecodeError::kOk;
  // For kUnsupportedCritical: the payload type to report in UNSUPPORTED_CRITICAL_PAYLOAD.
  // Otherwise the type of the payload where decoding failed (0 = header).
  uint8_t payload_type = 0;

  bool ok() const { return error == DecodeError::kOk; }
  NotifyType notify() const { return notify_for(error); }
};

struct Message {
  Header hdr;
  std::vector<Payload> payloads;

  // First payload of the given type with body T, or nullptr.
  template <class T>
  const T* get(PayloadType t) const {
    for (const auto& p : payloads)
      if (p.type == t)
        if (const T* b = std::get_if<T>(&p.body)) return b;
    return nullptr;
  }
  const SaPayload* sa() const { return get<SaPayload>(PayloadType::kSa); }
  const KePayload* ke() const { return get<KePayload>(PayloadType::kKe); }
  const NoncePayload* nonce() const { return get<NoncePayload>(PayloadType::kNonce); }
  const IdPayload* idi() const { return get<IdPayload>(PayloadType::kIdi); }
  const IdPayload* idr() const { return get<IdPayload>(PayloadType::kIdr); }
  const AuthPayload* auth() const { return get<AuthPayload>(PayloadType::kAuth); }
  const TsPayload* tsi() const { return get<TsPayload>(PayloadType::kTsi); }
  const TsPayload* tsr() const { return get<TsPayload>(PayloadType::kTsr); }
  const EncryptedPayload* encrypted() const {
    return get<EncryptedPayload>(PayloadType::kEncrypted);
  }
  const NotifyPayload* notify(NotifyType t) const;
  std::vector<const NotifyPayload*> notifies() const;
  std::vector<const DeletePayload*> deletes() const;

  // One line for logs, e.g. "IKE_SA_INIT request 0 [ SA KE No N(NAT_DETECTION_SOURCE_IP) ]".
  // Never prints payload contents.
  std::string describe() const;

  bool operator==(const Message&) const = default;
};

// Decodes only the fixed header (lets a caller find the IKE SA before parsing further).
DecodeStatus decode_header(ByteView msg, Header& out);

// Decodes header and payload chain. An Encrypted payload ends the chain (it must be the last one);
// its contents stay raw until sk.h decrypts them. Unknown non-critical payloads are skipped.
DecodeStatus decode_message(ByteView msg, Message& out);

// Decodes a payload chain starting with `first` that fills `chain` exactly (e.g. SK plaintext).
DecodeStatus decode_payloads(PayloadType first, ByteView chain, std::vector<Payload>& out);

// Appends the payload chain (generic headers + bodies); returns the type of the first payload.
// An Encrypted payload's Next Payload field is its inner_next.
PayloadType encode_payloads(const std::vector<Payload>& payloads, Writer& w);

// Encodes header + payloads; hdr.next and hdr.length are computed.
Bytes encode_message(const Message& m);

}  // namespace espgw::ike
