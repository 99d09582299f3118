#include "crypto/sa_crypto.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "crypto/ct.h"
#include "crypto/internal/esp_jobs.h"

namespace espgw::crypto {

namespace {
// The kernel's CSPRNG (getrandom(2), blocking until it is seeded); SA set-up only.
bool random_bytes(uint8_t* p, size_t n) {
  while (n) {
    ssize_t r = getrandom(p, n, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += r;
    n -= size_t(r);
  }
  return true;
}
}  // namespace

namespace internal {

namespace {
struct KeyMgr {
  KeyMgr() {
    mgr = alloc_mb_mgr(0);
    if (mgr == nullptr) return;
    init_mb_mgr_auto(mgr, nullptr);
    if (imb_get_errno(mgr) != 0) {
      free_mb_mgr(mgr);
      mgr = nullptr;
    }
  }
  ~KeyMgr() {
    if (mgr != nullptr) free_mb_mgr(mgr);
  }
  IMB_MGR* mgr = nullptr;
};
}  // namespace

IMB_MGR* key_mgr() {
  static KeyMgr km;
  return km.mgr;
}

}  // namespace internal

namespace {

constexpr size_t kMaxShaBlock = 128;

size_t sha_block(Sha2 sha) { return sha == Sha2::k256 ? 64 : 128; }

// Full digest of `data`, used to shorten HMAC keys longer than the block (RFC 2104 2).
void sha_digest(IMB_MGR* m, Sha2 sha, const uint8_t* data, size_t len, uint8_t* out) {
  switch (sha) {
    case Sha2::k256: IMB_SHA256(m, data, len, out); break;
    case Sha2::k384: IMB_SHA384(m, data, len, out); break;
    case Sha2::k512: IMB_SHA512(m, data, len, out); break;
  }
}

// SHA state after compressing exactly one block, in the form IPsec-MB's HMAC lanes resume from.
void sha_one_block(IMB_MGR* m, Sha2 sha, const uint8_t* block, uint8_t* state) {
  switch (sha) {
    case Sha2::k256: IMB_SHA256_ONE_BLOCK(m, block, state); break;
    case Sha2::k384: IMB_SHA384_ONE_BLOCK(m, block, state); break;
    case Sha2::k512: IMB_SHA512_ONE_BLOCK(m, block, state); break;
  }
}

enum class Family { kGcm, kGmac, kChacha, kCbcHmac };

Family family(Algo a) {
  switch (a) {
    case Algo::kAesGcm128:
    case Algo::kAesGcm256: return Family::kGcm;
    case Algo::kAesGmac128:
    case Algo::kAesGmac256: return Family::kGmac;
    case Algo::kChacha20Poly1305: return Family::kChacha;
    case Algo::kAesCbc128Sha256:
    case Algo::kAesCbc256Sha256:
    case Algo::kAesCbc256Sha384:
    case Algo::kAesCbc256Sha512: return Family::kCbcHmac;
  }
  return Family::kGcm;
}

Sha2 hmac_sha(Algo a) {
  switch (a) {
    case Algo::kAesCbc256Sha384: return Sha2::k384;
    case Algo::kAesCbc256Sha512: return Sha2::k512;
    default: return Sha2::k256;
  }
}

uint8_t imb_hmac_alg(Sha2 sha) {
  switch (sha) {
    case Sha2::k256: return IMB_AUTH_HMAC_SHA_256;
    case Sha2::k384: return IMB_AUTH_HMAC_SHA_384;
    case Sha2::k512: return IMB_AUTH_HMAC_SHA_512;
  }
  return IMB_AUTH_HMAC_SHA_256;
}

}  // namespace

bool HmacKey::init(HmacKey& out, Sha2 sha, const uint8_t* key, size_t len) {
  out.wipe();
  IMB_MGR* m = internal::key_mgr();
  if (m == nullptr || (key == nullptr && len != 0)) return false;
  const size_t bs = sha_block(sha);
  alignas(16) uint8_t k[kMaxShaBlock] = {};
  alignas(16) uint8_t pad[kMaxShaBlock];
  if (len > bs) {
    sha_digest(m, sha, key, len, k);
  } else if (len != 0) {
    std::memcpy(k, key, len);
  }
  for (size_t i = 0; i < bs; ++i) pad[i] = k[i] ^ 0x36;
  sha_one_block(m, sha, pad, out.ipad);
  for (size_t i = 0; i < bs; ++i) pad[i] = k[i] ^ 0x5c;
  sha_one_block(m, sha, pad, out.opad);
  out.sha = sha;
  secure_wipe(k, sizeof k);
  secure_wipe(pad, sizeof pad);
  return true;
}

void HmacKey::wipe() {
  secure_wipe(ipad, sizeof ipad);
  secure_wipe(opad, sizeof opad);
}

bool SaCrypto::init(SaCrypto& out, Algo algo, const uint8_t* keymat, size_t len) {
  out.wipe();
  const AlgoInfo& ai = info(algo);
  IMB_MGR* m = internal::key_mgr();
  if (m == nullptr || keymat == nullptr || len != ai.keymat_len()) return false;

  out.algo = algo;
  out.key_len = ai.enc_key_len;
  out.iv_len = ai.iv_len;
  out.icv_len = ai.icv_len;
  out.cipher_block = 1;
  if (ai.salt_len == sizeof out.salt) std::memcpy(out.salt, keymat + ai.enc_key_len, sizeof out.salt);

  const Family f = family(algo);
  const internal::AlgoImpl* impl = nullptr;
  switch (f) {
    case Family::kGcm:
    case Family::kGmac: {
      auto* kd = reinterpret_cast<gcm_key_data*>(out.keys.gcm.key_data);
      if (ai.enc_key_len == 16) {
        IMB_AES128_GCM_PRE(m, keymat, kd);
      } else {
        IMB_AES256_GCM_PRE(m, keymat, kd);
      }
      if (f == Family::kGcm) {
        out.hash_alg = IMB_AUTH_AES_GMAC;
        impl = &internal::kGcmImpl;
      } else {
        out.hash_alg = ai.enc_key_len == 16 ? IMB_AUTH_AES_GMAC_128 : IMB_AUTH_AES_GMAC_256;
        impl = &internal::kGmacImpl;
      }
      break;
    }
    case Family::kChacha:
      std::memcpy(out.keys.chacha.key, keymat, sizeof out.keys.chacha.key);
      out.hash_alg = IMB_AUTH_CHACHA20_POLY1305;
      impl = &internal::kChachaPolyImpl;
      break;
    case Family::kCbcHmac: {
      auto& c = out.keys.cbc;
      if (ai.enc_key_len == 16) {
        IMB_AES_KEYEXP_128(m, keymat, c.enc, c.dec);
      } else {
        IMB_AES_KEYEXP_256(m, keymat, c.enc, c.dec);
      }
      const Sha2 sha = hmac_sha(algo);
      if (!HmacKey::init(c.hmac, sha, keymat + ai.enc_key_len, ai.auth_key_len)) break;
      alignas(16) uint8_t kiv[16];
      alignas(16) uint8_t kiv_dec[16 * 11];
      if (!random_bytes(kiv, sizeof kiv)) break;
      IMB_AES_KEYEXP_128(m, kiv, c.iv_key, kiv_dec);
      secure_wipe(kiv, sizeof kiv);
      secure_wipe(kiv_dec, sizeof kiv_dec);
      out.hash_alg = imb_hmac_alg(sha);
      out.cipher_block = 16;
      impl = &internal::kCbcHmacImpl;
      break;
    }
  }
  if (impl == nullptr) {
    out.wipe();
    return false;
  }
  out.impl = impl;
  return true;
}

void SaCrypto::wipe() {
  impl = nullptr;
  secure_wipe(&keys, sizeof keys);
  secure_wipe(salt, sizeof salt);
}

static_assert(sizeof(gcm_key_data) <= sizeof(SaCrypto::Keys::Gcm::key_data));
static_assert(alignof(gcm_key_data) <= alignof(SaCrypto::Keys::Gcm));

}  // namespace espgw::crypto
