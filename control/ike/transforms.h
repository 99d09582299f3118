// Transform tables and proposal selection (RFC 7296 sections 2.7, 3.3).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/ike/payloads.h"
#include "control/ike/types.h"
#include "crypto/algo.h"

namespace espgw::ike {

// Properties of the algorithms espgw implements; nullopt/0 for unknown IDs.
struct EncrInfo {
  uint16_t id;
  bool aead;
  bool needs_key_length;  // Key Length attribute is mandatory (AES)
  uint8_t salt_len;       // implicit nonce octets appended to the key (RFC 5282, 7634)
  uint8_t iv_len;         // IV octets in the SK payload
  uint8_t icv_len;        // AEAD tag octets (0 for non-AEAD)
  uint8_t block_len;      // padding alignment inside SK
};
std::optional<EncrInfo> encr_info(uint16_t id);
bool encr_key_length_ok(uint16_t id, uint16_t bits);  // key_length is 0 when the ID has a fixed key

size_t prf_len(uint16_t prf_id);          // output (and preferred key) octets; 0 if unknown
size_t integ_key_len(uint16_t integ_id);  // 0 for NONE/unknown
size_t integ_icv_len(uint16_t integ_id);  // truncated ICV octets
bool dh_supported(uint16_t group);

// One negotiated set: exactly one transform of each type (missing types are 0 / NONE).
struct Suite {
  ProtocolId protocol = ProtocolId::kIke;
  uint16_t encr = 0;
  uint16_t encr_key_bits = 0;  // key length attribute (0 if the ID has a fixed key length)
  uint16_t prf = 0;            // IKE only
  uint16_t integ = 0;          // 0 with AEAD
  uint16_t dh = 0;             // 0 = none (ESP without PFS)
  uint16_t esn = 0;            // ESP only

  // Octets of the encryption key including any salt, of the integrity key.
  size_t encr_key_len() const;
  size_t integ_key_len() const { return ike::integ_key_len(integ); }
  bool aead() const;
  std::string str() const;  // swanctl-style, e.g. "aes128gcm16-prfsha256-ecp256"
  bool operator==(const Suite&) const = default;
};

// The suite described by a proposal with at most one transform of each type; nullopt if it has
// several of a type or an unsupported transform.
std::optional<Suite> suite_of(const Proposal& p);
// A proposal with exactly the transforms of the suite (number 1, no SPI).
Proposal proposal_of(const Suite& s);

// Parses a swanctl proposal string ("aes256-sha256-modp2048", "aes128gcm16-prfsha256-ecp256",
// "aes256gcm16-esn-noesn", "chacha20poly1305-prfsha256-x25519") into one proposal for the
// protocol. For IKE a missing PRF is derived from the integrity algorithm. For ESP "noesn" is
// the default and a DH group means PFS. nullopt on an unknown token or an incomplete proposal.
std::optional<Proposal> parse_proposal(std::string_view s, ProtocolId protocol);

// Selects, from the peer's proposals in their order, the first one that is acceptable to one of
// ours (same protocol, for every transform type a transform both offer, no unknown attribute,
// complete per section 3.3.3). Within a type the peer's preference order wins. The result has the
// peer's proposal number and SPI and exactly one transform of each type the peer offered.
std::optional<Proposal> select_proposal(const std::vector<Proposal>& ours,
                                        const std::vector<Proposal>& theirs);

// The proposals with every Diffie-Hellman transform removed: Child SAs created in IKE_AUTH have no
// key exchange of their own (section 1.2), whatever the peer or the configuration says about PFS.
std::vector<Proposal> without_dh(std::vector<Proposal> proposals);

// Checks a responder's answer against what we offered: a single proposal whose transforms (one
// of each type) are all in the proposal of ours with the same number.
std::optional<Suite> accept_reply(const std::vector<Proposal>& offered, const SaPayload& reply);

// The data-plane algorithm for a negotiated ESP suite.
std::optional<crypto::Algo> esp_algo(const Suite& s);

}  // namespace espgw::ike
