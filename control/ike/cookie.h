// Stateless cookies (RFC 7296 section 2.6):
//   Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)
// with a 4-octet version and SHA-256. The secret rotates (the caller decides when, from its
// injected clock); cookies made with the previous secret stay valid until the next rotation.
#pragma once

#include <cstdint>

#include "control/ike/wire.h"
#include "dataplane/net/ip.h"
#include "control/model/secret.h"

namespace espgw::ike {

class CookieJar {
 public:
  static constexpr size_t kSecretLen = 32;
  static constexpr size_t kCookieLen = 4 + 32;

  CookieJar();  // a random first secret
  explicit CookieJar(const Secret& first_secret);

  // A new secret (random, or given for deterministic tests); the current one becomes previous.
  void rotate();
  void rotate(const Secret& next_secret);
  uint32_t version() const { return version_; }

  Bytes make(ByteView ni, const IpAddr& ip_i, uint64_t spi_i) const;
  // Accepts cookies of the current and the previous secret (constant-time comparison).
  bool verify(ByteView cookie, ByteView ni, const IpAddr& ip_i, uint64_t spi_i) const;

 private:
  Bytes compute(uint32_t version, const Secret& secret, ByteView ni, const IpAddr& ip_i,
                uint64_t spi_i) const;
  uint32_t version_ = 0;
  Secret current_;
  Secret previous_;
};

}  // namespace espgw::ike
