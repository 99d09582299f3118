// ESP algorithm table: the single list of what espgw can key, named as strongSwan/swanctl name them.
// The per-SA choice is made once, when the SA is created; nothing branches on the name per packet.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace espgw::crypto {

enum class Algo : uint8_t {
  kAesGcm128,          // RFC 4106, 16-byte ICV
  kAesGcm256,          // RFC 4106, 16-byte ICV
  kAesCbc128Sha256,    // RFC 3602 + RFC 4868 HMAC-SHA-256-128
  kAesCbc256Sha256,    // RFC 3602 + RFC 4868 HMAC-SHA-256-128
  kAesCbc256Sha384,    // RFC 3602 + RFC 4868 HMAC-SHA-384-192
  kAesCbc256Sha512,    // RFC 3602 + RFC 4868 HMAC-SHA-512-256
  kChacha20Poly1305,   // RFC 7634
  kAesGmac128,         // RFC 4543, integrity only
  kAesGmac256,         // RFC 4543, integrity only
};

struct AlgoInfo {
  Algo algo;
  std::string_view name;  // swanctl esp_proposals token
  uint8_t enc_key_len;    // cipher key bytes (without salt)
  uint8_t salt_len;       // implicit nonce bytes appended to the key material (RFC 4106/4543/7634)
  uint8_t auth_key_len;   // HMAC key bytes (0 for AEAD)
  uint8_t iv_len;         // explicit IV bytes carried in each packet
  uint8_t icv_len;        // integrity check value bytes
  uint8_t block;          // padding block (ESP payload + trailer is a multiple of this, min 4)
  bool aead;              // combined mode (GCM, ChaCha20-Poly1305, GMAC)
  bool encrypts;          // false for GMAC (integrity only)

  constexpr uint32_t keymat_len() const { return enc_key_len + salt_len + auth_key_len; }
};

inline constexpr std::array<AlgoInfo, 9> kAlgos{{
    {Algo::kAesGcm128, "aes128gcm16", 16, 4, 0, 8, 16, 4, true, true},
    {Algo::kAesGcm256, "aes256gcm16", 32, 4, 0, 8, 16, 4, true, true},
    {Algo::kAesCbc128Sha256, "aes128-sha256", 16, 0, 32, 16, 16, 16, false, true},
    {Algo::kAesCbc256Sha256, "aes256-sha256", 32, 0, 32, 16, 16, 16, false, true},
    {Algo::kAesCbc256Sha384, "aes256-sha384", 32, 0, 48, 16, 24, 16, false, true},
    {Algo::kAesCbc256Sha512, "aes256-sha512", 32, 0, 64, 16, 32, 16, false, true},
    {Algo::kChacha20Poly1305, "chacha20poly1305", 32, 4, 0, 8, 16, 4, true, true},
    {Algo::kAesGmac128, "aes128gmac", 16, 4, 0, 8, 16, 4, true, false},
    {Algo::kAesGmac256, "aes256gmac", 32, 4, 0, 8, 16, 4, true, false},
}};

constexpr const AlgoInfo& info(Algo a) { return kAlgos[static_cast<size_t>(a)]; }

constexpr std::optional<Algo> algo_by_name(std::string_view name) {
  for (const auto& a : kAlgos)
    if (a.name == name) return a.algo;
  return std::nullopt;
}

}  // namespace espgw::crypto
