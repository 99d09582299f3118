// Independent ESP packet builder on OpenSSL 3 EVP, used to cross-check the IPsec-MB engine.
#pragma once

#include <cstdint>
#include <vector>

#include "crypto/algo.h"

namespace espgw::crypto::test {

struct RefEsp {
  Algo algo;
  std::vector<uint8_t> keymat;  // as for SaCrypto::init
  uint32_t spi = 0;
  uint32_t seq_lo = 0;
  uint32_t esn_hi = 0;
  bool esn = false;
  std::vector<uint8_t> iv;  // explicit IV (8 bytes AEAD/GMAC, 16 bytes CBC)
};

// Returns SPI | seq | IV | ciphertext (or plaintext for GMAC) | ICV.
std::vector<uint8_t> openssl_esp_encrypt(const RefEsp& p, const std::vector<uint8_t>& payload);

// Raw HMAC-SHA-2 (bits = 256/384/512) through EVP_MAC.
std::vector<uint8_t> openssl_hmac(int bits, const std::vector<uint8_t>& key,
                                  const std::vector<uint8_t>& data);

}  // namespace espgw::crypto::test
