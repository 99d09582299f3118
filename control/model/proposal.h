// IKE and ESP proposal strings in swanctl syntax ("aes256gcm16-prfsha384-ecp384", "aes256-sha384",
// "aes256gcm16-ecp384"), parsed into what the IKE code negotiates with. Tokens are separated by
// '-', may come in any order and are case-insensitive; each algorithm kind may appear at most once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/algo.h"

namespace espgw::model {

struct IpsecPolicy;

// IKE SA encryption (RFC 7296 transform type 1).
enum class IkeEncr : uint8_t {
  kAes128Gcm16,       // ENCR_AES_GCM_16, 128-bit key
  kAes256Gcm16,       // ENCR_AES_GCM_16, 256-bit key
  kAes128Cbc,         // ENCR_AES_CBC, 128-bit key
  kAes256Cbc,         // ENCR_AES_CBC, 256-bit key
  kChacha20Poly1305,  // ENCR_CHACHA20_POLY1305 (RFC 7634)
};

// IKE SA integrity (transform type 3); kNone for AEAD.
enum class IkeInteg : uint8_t { kNone, kHmacSha256_128, kHmacSha384_192, kHmacSha512_256 };

// Pseudo-random function (transform type 2).
enum class Prf : uint8_t { kHmacSha256, kHmacSha384, kHmacSha512 };

// Diffie-Hellman / key exchange group (transform type 4); values are the IANA numbers.
enum class DhGroup : uint16_t {
  kNone = 0,
  kModp2048 = 14,
  kModp3072 = 15,
  kEcp256 = 19,
  kEcp384 = 20,
  kEcp521 = 21,
  kCurve25519 = 31,
};

struct IkeProposal {
  IkeEncr encr = IkeEncr::kAes256Gcm16;
  IkeInteg integ = IkeInteg::kNone;
  Prf prf = Prf::kHmacSha384;
  DhGroup dh = DhGroup::kEcp384;

  bool aead() const;
  std::string str() const;  // canonical swanctl form, e.g. "aes256-sha256-prfsha256-modp2048"
  bool operator==(const IkeProposal&) const = default;
};

// Extended Sequence Numbers (transform type 5) as offered/accepted, in preference order.
enum class EspEsn : uint8_t {
  kNo,     // "noesn" or nothing: 32-bit sequence numbers only
  kYes,    // "esn": 64-bit only
  kYesNo,  // "esn-noesn": either, ESN preferred
  kNoYes,  // "noesn-esn": either, 32-bit preferred
};

struct EspProposal {
  crypto::Algo algo = crypto::Algo::kAesGcm256;
  DhGroup dh = DhGroup::kNone;  // PFS group for CREATE_CHILD_SA; kNone = no PFS
  EspEsn esn = EspEsn::kNo;

  std::string str() const;  // e.g. "aes256gcm16-ecp384", "aes256gcm16-esn-noesn"
  bool operator==(const EspProposal&) const = default;
};

// Either a value or a human-readable reason (which names the offending token).
template <class T>
struct Parsed {
  std::optional<T> value;
  std::string error;
  explicit operator bool() const { return value.has_value(); }
};

Parsed<IkeProposal> parse_ike_proposal(std::string_view s);
Parsed<EspProposal> parse_esp_proposal(std::string_view s);

// What an empty ike/esp list means.
const std::vector<IkeProposal>& default_ike_proposals();
const std::vector<EspProposal>& default_esp_proposals();

// The proposals to offer/accept for a policy: its own (already validated; unparsable entries are
// skipped) or the defaults when the list is empty.
std::vector<IkeProposal> effective_ike_proposals(const IpsecPolicy& p);
std::vector<EspProposal> effective_esp_proposals(const IpsecPolicy& p);

std::string_view dh_name(DhGroup g);

}  // namespace espgw::model
