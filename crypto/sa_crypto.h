// Per-SA crypto state for the ESP engine: key schedules expanded once on the control thread, then
// read-only for every worker lcore (no locks, no per-packet key setup, no branching on algorithm
// names: `impl` points at the per-family operation table chosen here, once).
#pragma once

#include <cstddef>
#include <cstdint>

#include "crypto/algo.h"

namespace espgw::crypto {

namespace internal {
struct AlgoImpl;  // per-family job builders (GCM, CBC+HMAC, ChaCha20-Poly1305, GMAC); engine-private
}

// Expanded HMAC-SHA-2 key: SHA state after one block of (key ^ ipad) and of (key ^ opad), as
// IPsec-MB's HMAC jobs consume it. Keys longer than the hash block are hashed first (RFC 2104).
enum class Sha2 : uint8_t { k256, k384, k512 };

struct HmacKey {
  alignas(16) uint8_t ipad[64];
  alignas(16) uint8_t opad[64];
  Sha2 sha = Sha2::k256;

  static bool init(HmacKey& out, Sha2 sha, const uint8_t* key, size_t len);
  void wipe();
};

// Key material layout (`keymat`, `keymat_len()` bytes, as IKEv2 RFC 7296 2.17 hands it out):
//   AEAD / GMAC : cipher key | 4-byte salt   (RFC 4106 8.1, RFC 4543 3.2, RFC 7634 4)
//   CBC + HMAC  : AES key | HMAC key          (encryption key first, then integrity key)
//
// IVs (no mutable state here, so one SaCrypto may be read by any number of lcores):
//   GCM, GMAC, ChaCha20-Poly1305: the 8-byte explicit IV is the packet's 64-bit sequence number
//     (esn_hi:seq), so it never repeats under one key as long as the caller never reuses a sequence
//     number (which anti-replay already forbids).
//   AES-CBC: IV = AES-128_{K_iv}(esn_hi | seq | 0^8) with K_iv drawn from the OpenSSL CSPRNG at init.
//     A block cipher under a secret key maps unique inputs to unique, unpredictable outputs, which is
//     what RFC 3602 3 asks ("MUST be unpredictable"); no syscall or RNG state on the hot path.
struct alignas(64) SaCrypto {
  SaCrypto() = default;
  SaCrypto(const SaCrypto&) = delete;
  SaCrypto& operator=(const SaCrypto&) = delete;
  ~SaCrypto() { wipe(); }

  // Expands keys for `algo`. `len` must equal info(algo).keymat_len(). Control thread only (may call
  // getrandom). Returns false on bad length or RNG failure; `out` is then wiped and !valid().
  static bool init(SaCrypto& out, Algo algo, const uint8_t* keymat, size_t len);
  void wipe();
  bool valid() const { return impl != nullptr; }

  // --- hot fields (first cache line) ---
  const internal::AlgoImpl* impl = nullptr;
  Algo algo = Algo::kAesGcm128;
  uint8_t key_len = 0;   // cipher key bytes (16 or 32)
  uint8_t iv_len = 0;    // explicit IV bytes in the packet
  uint8_t icv_len = 0;   // ICV bytes in the packet
  uint8_t cipher_block = 1;  // payload_len must be a multiple of this (CBC: 16, others: 1)
  uint8_t hash_alg = 0;  // IMB_HASH_ALG for the job (GMAC key size, HMAC variant)
  uint8_t salt[4] = {};

  // --- key schedules (only the member for this SA's family is used) ---
  union Keys {
    struct Gcm {  // GCM and GMAC: IPsec-MB gcm_key_data (layout depends on the CPU code path)
      alignas(64) uint8_t key_data[1024];
    } gcm;
    struct CbcHmac {
      alignas(16) uint8_t enc[16 * 15];  // AES encryption round keys
      alignas(16) uint8_t dec[16 * 15];  // AES decryption round keys
      alignas(16) uint8_t iv_key[16 * 11];  // AES-128 round keys of K_iv (IV generation)
      HmacKey hmac;
    } cbc;
    struct Chacha {
      alignas(16) uint8_t key[32];
    } chacha;
    Keys() : gcm{} {}
  } keys;
};

}  // namespace espgw::crypto
