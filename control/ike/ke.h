// Diffie-Hellman key exchange for IKEv2 through OpenSSL 3 EVP: MODP 2048/3072 (RFC 3526),
// ECP 256/384/521 (RFC 5903: KE data is x || y), Curve25519 (RFC 8031).
#pragma once

#include <cstdint>
#include <memory>

#include "control/ike/wire.h"
#include "control/model/secret.h"

namespace espgw::ike {

class KeyExchange {
 public:
  virtual ~KeyExchange() = default;
  virtual uint16_t group() const = 0;
  // Our public value as carried in the KE payload.
  virtual const Bytes& public_value() const = 0;
  // Validates the peer's public value (length, range / point on the curve) and computes the
  // shared secret g^ir (MODP: padded to the modulus length; ECP: x coordinate). False if invalid.
  virtual bool compute(ByteView peer_public, Secret& shared) = 0;
};

// A fresh key pair for the IKE group number; nullptr for a group espgw does not support.
std::unique_ptr<KeyExchange> make_ke(uint16_t group);

// Length of the KE payload data for the group (0 if unsupported).
size_t ke_public_len(uint16_t group);

}  // namespace espgw::ike
