// IPsec-MB job builders for ESP, one set per algorithm family (see internal/esp_jobs.h).
//
// Offsets follow IPsec-MB conventions: `src` + cipher/hash start offsets select the input, `dst` is
// the absolute output address (in place: dst = src + cipher offset).
#include <cstring>

#include "crypto/ct.h"
#include "crypto/internal/esp_jobs.h"

namespace espgw::crypto::internal {

namespace {

constexpr uint32_t kHdr = 8;  // SPI + sequence number

inline void store_be32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

inline uint8_t* icv_of(const EspOp& op) { return op.esp + kHdr + op.sa->iv_len + op.payload_len; }

// Explicit IV for counter-based modes: the 64-bit sequence number, big endian (esn_hi | seq_lo).
inline void write_seq_iv(const EspOp& op) {
  store_be32(op.esp + kHdr, op.esn_hi);
  std::memcpy(op.esp + kHdr + 4, op.esp + 4, 4);
}

// 12-byte AEAD nonce: salt | explicit IV (RFC 4106 4, RFC 4543 3.1, RFC 7634 2).
inline void make_nonce(const EspOp& op, Engine::Scratch& s) {
  std::memcpy(s.nonce, op.sa->salt, 4);
  std::memcpy(s.nonce + 4, op.esp + kHdr, 8);
}

// AAD for GCM / ChaCha20-Poly1305: SPI | seq (8 bytes, straight from the packet) or, with ESN,
// SPI | seq_hi | seq_lo (12 bytes, built in scratch). Returns the AAD length.
inline uint32_t make_aad(const EspOp& op, Engine::Scratch& s, const void** aad) {
  if (!op.esn) {
    *aad = op.esp;
    return 8;
  }
  std::memcpy(s.aad, op.esp, 4);
  store_be32(s.aad + 4, op.esn_hi);
  std::memcpy(s.aad + 8, op.esp + 4, 4);
  *aad = s.aad;
  return 12;
}

inline void set_common(IMB_JOB* job, const EspOp& op, bool enc, uint8_t* tag) {
  const SaCrypto& sa = *op.sa;
  const uint32_t off = kHdr + sa.iv_len;
  job->cipher_direction = enc ? IMB_DIR_ENCRYPT : IMB_DIR_DECRYPT;
  job->chain_order = enc ? IMB_ORDER_CIPHER_HASH : IMB_ORDER_HASH_CIPHER;
  job->key_len_in_bytes = sa.key_len;
  job->src = op.esp;
  job->dst = op.esp + off;
  job->cipher_start_src_offset_in_bytes = off;
  job->msg_len_to_cipher_in_bytes = op.payload_len;
  job->hash_start_src_offset_in_bytes = off;
  job->msg_len_to_hash_in_bytes = op.payload_len;
  job->auth_tag_output = tag;
  job->auth_tag_output_len_in_bytes = sa.icv_len;
}

uint8_t compare_icv(const EspOp& op, Engine::Scratch& s) {
  return ct_equal(s.tag, icv_of(op), op.sa->icv_len) ? kOk : kAuthFail;
}

uint8_t finish_nothing(const EspOp&, Engine::Scratch&) { return kOk; }

// ---------------------------------------------------------------- AES-GCM (RFC 4106)

template <bool kEnc>
bool gcm_prep(IMB_MGR*, IMB_JOB* job, const EspOp& op, Engine::Scratch& s) {
  if constexpr (kEnc) write_seq_iv(op);
  make_nonce(op, s);
  set_common(job, op, kEnc, kEnc ? icv_of(op) : s.tag);
  job->cipher_mode = IMB_CIPHER_GCM;
  job->hash_alg = IMB_AUTH_AES_GMAC;
  job->enc_keys = job->dec_keys = op.sa->keys.gcm.key_data;
  job->iv = s.nonce;
  job->iv_len_in_bytes = 12;
  job->u.GCM.aad_len_in_bytes = make_aad(op, s, &job->u.GCM.aad);
  return true;
}

// ---------------------------------------------------------------- ChaCha20-Poly1305 (RFC 7634)

template <bool kEnc>
bool chacha_prep(IMB_MGR*, IMB_JOB* job, const EspOp& op, Engine::Scratch& s) {
  if constexpr (kEnc) write_seq_iv(op);
  make_nonce(op, s);
  set_common(job, op, kEnc, kEnc ? icv_of(op) : s.tag);
  job->cipher_mode = IMB_CIPHER_CHACHA20_POLY1305;
  job->hash_alg = IMB_AUTH_CHACHA20_POLY1305;
  job->enc_keys = job->dec_keys = op.sa->keys.chacha.key;
  job->iv = s.nonce;
  job->iv_len_in_bytes = 12;
  job->u.CHACHA20_POLY1305.aad_len_in_bytes = make_aad(op, s, &job->u.CHACHA20_POLY1305.aad);
  job->u.CHACHA20_POLY1305.ctx = nullptr;
  return true;
}

// ---------------------------------------------------------------- AES-GMAC (RFC 4543)
// Integrity only: the whole packet SPI | seq (| seq_hi) | IV | payload is GMAC input (GCM AAD),
// authenticated by IPsec-MB's standalone GMAC hash job. With ESN the AAD is
// SPI | seq_hi | seq_lo | ..., built in place by moving the SPI 4 bytes down (into the bytes before
// the ESP header, saved in scratch) and writing seq_hi where the SPI was.

template <bool kEnc>
bool gmac_prep(IMB_MGR*, IMB_JOB* job, const EspOp& op, Engine::Scratch& s) {
  const SaCrypto& sa = *op.sa;
  if constexpr (kEnc) write_seq_iv(op);
  make_nonce(op, s);
  uint8_t* start = op.esp;
  uint64_t len = kHdr + sa.iv_len + op.payload_len;
  if (op.esn) {
    std::memcpy(s.saved, op.esp - 4, 4);
    std::memcpy(op.esp - 4, op.esp, 4);
    store_be32(op.esp, op.esn_hi);
    start -= 4;
    len += 4;
  }
  job->cipher_mode = IMB_CIPHER_NULL;
  job->cipher_direction = kEnc ? IMB_DIR_ENCRYPT : IMB_DIR_DECRYPT;
  job->chain_order = kEnc ? IMB_ORDER_CIPHER_HASH : IMB_ORDER_HASH_CIPHER;
  job->hash_alg = static_cast<IMB_HASH_ALG>(sa.hash_alg);
  job->enc_keys = job->dec_keys = nullptr;
  job->key_len_in_bytes = sa.key_len;
  job->src = start;
  job->dst = start;
  job->cipher_start_src_offset_in_bytes = 0;
  job->msg_len_to_cipher_in_bytes = 0;
  job->hash_start_src_offset_in_bytes = 0;
  job->msg_len_to_hash_in_bytes = len;
  job->iv = nullptr;
  job->iv_len_in_bytes = 0;
  job->auth_tag_output = kEnc ? icv_of(op) : s.tag;
  job->auth_tag_output_len_in_bytes = sa.icv_len;
  job->u.GMAC._key = reinterpret_cast<const gcm_key_data*>(sa.keys.gcm.key_data);
  job->u.GMAC._iv = s.nonce;
  job->u.GMAC.iv_len_in_bytes = 12;
  return true;
}

inline void gmac_restore(const EspOp& op, Engine::Scratch& s) {
  if (op.esn) {
    std::memcpy(op.esp, op.esp - 4, 4);
    std::memcpy(op.esp - 4, s.saved, 4);
  }
}

uint8_t gmac_finish_enc(const EspOp& op, Engine::Scratch& s) {
  gmac_restore(op, s);
  return kOk;
}

uint8_t gmac_finish_dec(const EspOp& op, Engine::Scratch& s) {
  gmac_restore(op, s);
  return compare_icv(op, s);
}

// ---------------------------------------------------------------- AES-CBC + HMAC-SHA-2 (RFC 3602, 4868)
// ICV = HMAC(SPI | seq | IV | ciphertext [| seq_hi]) truncated to icv_len. With ESN seq_hi is
// placed in the ICV area for hashing (after saving the received ICV on decrypt); on encrypt the tag
// then overwrites it, on decrypt the received ICV is put back.

constexpr uint8_t kZeroBlock[16] = {};

template <bool kEnc>
bool cbc_prep(IMB_MGR* mgr, IMB_JOB* job, const EspOp& op, Engine::Scratch& s) {
  const SaCrypto& sa = *op.sa;
  if (op.payload_len == 0) return false;
  uint8_t* icv = icv_of(op);
  if constexpr (kEnc) {
    // IV = AES-128_{K_iv}(seq_hi | seq_lo | 0^8), via CFB of a zero block: E(counter) ^ 0.
    store_be32(s.nonce, op.esn_hi);
    std::memcpy(s.nonce + 4, op.esp + 4, 4);
    std::memset(s.nonce + 8, 0, 8);
    IMB_AES128_CFB_ONE(mgr, op.esp + kHdr, kZeroBlock, s.nonce, sa.keys.cbc.iv_key, 16);
  }
  uint64_t hash_len = kHdr + sa.iv_len + op.payload_len;
  if (op.esn) {
    if constexpr (!kEnc) std::memcpy(s.saved, icv, sa.icv_len);
    store_be32(icv, op.esn_hi);
    hash_len += 4;
  }
  set_common(job, op, kEnc, kEnc ? icv : s.tag);
  job->cipher_mode = IMB_CIPHER_CBC;
  job->hash_alg = static_cast<IMB_HASH_ALG>(sa.hash_alg);
  job->enc_keys = sa.keys.cbc.enc;
  job->dec_keys = sa.keys.cbc.dec;
  job->iv = op.esp + kHdr;
  job->iv_len_in_bytes = 16;
  job->hash_start_src_offset_in_bytes = 0;
  job->msg_len_to_hash_in_bytes = hash_len;
  job->u.HMAC._hashed_auth_key_xor_ipad = sa.keys.cbc.hmac.ipad;
  job->u.HMAC._hashed_auth_key_xor_opad = sa.keys.cbc.hmac.opad;
  return true;
}

uint8_t cbc_finish_dec(const EspOp& op, Engine::Scratch& s) {
  if (!op.esn) return compare_icv(op, s);
  const uint8_t n = op.sa->icv_len;
  const bool ok = ct_equal(s.tag, s.saved, n);
  std::memcpy(icv_of(op), s.saved, n);
  return ok ? kOk : kAuthFail;
}

}  // namespace

const AlgoImpl kGcmImpl{gcm_prep<true>, gcm_prep<false>, finish_nothing, compare_icv};
const AlgoImpl kChachaPolyImpl{chacha_prep<true>, chacha_prep<false>, finish_nothing, compare_icv};
const AlgoImpl kGmacImpl{gmac_prep<true>, gmac_prep<false>, gmac_finish_enc, gmac_finish_dec};
const AlgoImpl kCbcHmacImpl{cbc_prep<true>, cbc_prep<false>, finish_nothing, cbc_finish_dec};

}  // namespace espgw::crypto::internal
