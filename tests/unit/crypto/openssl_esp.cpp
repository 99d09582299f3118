#include "openssl_esp.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace espgw::crypto::test {

namespace {

void put32(std::vector<uint8_t>& v, uint32_t x) {
  v.push_back(static_cast<uint8_t>(x >> 24));
  v.push_back(static_cast<uint8_t>(x >> 16));
  v.push_back(static_cast<uint8_t>(x >> 8));
  v.push_back(static_cast<uint8_t>(x));
}

void check(int ok, const char* what) {
  if (ok != 1) throw std::runtime_error(std::string("OpenSSL: ") + what);
}

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

// AEAD seal: returns ciphertext | tag.
std::vector<uint8_t> aead_seal(const EVP_CIPHER* c, const uint8_t* key, const uint8_t* nonce,
                               const std::vector<uint8_t>& aad, const std::vector<uint8_t>& pt) {
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  check(EVP_EncryptInit_ex(ctx.get(), c, nullptr, nullptr, nullptr), "init");
  check(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_IVLEN, 12, nullptr), "ivlen");
  check(EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key, nonce), "key");
  int n = 0;
  if (!aad.empty())
    check(EVP_EncryptUpdate(ctx.get(), nullptr, &n, aad.data(), static_cast<int>(aad.size())),
          "aad");
  std::vector<uint8_t> out(pt.size() + 16);
  int len = 0;
  if (!pt.empty())
    check(EVP_EncryptUpdate(ctx.get(), out.data(), &len, pt.data(), static_cast<int>(pt.size())),
          "update");
  check(EVP_EncryptFinal_ex(ctx.get(), out.data() + len, &n), "final");
  check(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, 16, out.data() + pt.size()), "tag");
  return out;
}

std::vector<uint8_t> cbc_encrypt(const EVP_CIPHER* c, const uint8_t* key, const uint8_t* iv,
                                 const std::vector<uint8_t>& pt) {
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  check(EVP_EncryptInit_ex(ctx.get(), c, nullptr, key, iv), "cbc init");
  EVP_CIPHER_CTX_set_padding(ctx.get(), 0);
  std::vector<uint8_t> out(pt.size() + 16);
  int len = 0, fin = 0;
  check(EVP_EncryptUpdate(ctx.get(), out.data(), &len, pt.data(), static_cast<int>(pt.size())),
        "cbc update");
  check(EVP_EncryptFinal_ex(ctx.get(), out.data() + len, &fin), "cbc final");
  out.resize(static_cast<size_t>(len + fin));
  return out;
}

}  // namespace

std::vector<uint8_t> openssl_hmac(int bits, const std::vector<uint8_t>& key,
                                  const std::vector<uint8_t>& data) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  std::string dg = "SHA2-" + std::to_string(bits);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, dg.data(), 0),
      OSSL_PARAM_construct_end()};
  static const uint8_t kNoKey[1] = {};
  check(EVP_MAC_init(ctx, key.empty() ? kNoKey : key.data(), key.size(), params), "hmac init");
  check(EVP_MAC_update(ctx, data.data(), data.size()), "hmac update");
  std::vector<uint8_t> out(64);
  size_t n = 0;
  check(EVP_MAC_final(ctx, out.data(), &n, out.size()), "hmac final");
  out.resize(n);
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  return out;
}

std::vector<uint8_t> openssl_esp_encrypt(const RefEsp& p, const std::vector<uint8_t>& payload) {
  const AlgoInfo& ai = info(p.algo);
  if (p.keymat.size() != ai.keymat_len() || p.iv.size() != ai.iv_len)
    throw std::runtime_error("bad reference parameters");
  std::vector<uint8_t> pkt;
  put32(pkt, p.spi);
  put32(pkt, p.seq_lo);
  pkt.insert(pkt.end(), p.iv.begin(), p.iv.end());

  std::vector<uint8_t> aad;  // SPI | [seq_hi] | seq_lo
  put32(aad, p.spi);
  if (p.esn) put32(aad, p.esn_hi);
  put32(aad, p.seq_lo);

  const uint8_t* key = p.keymat.data();
  uint8_t nonce[12];
  if (ai.salt_len == 4) {
    std::copy(key + ai.enc_key_len, key + ai.enc_key_len + 4, nonce);
    std::copy(p.iv.begin(), p.iv.end(), nonce + 4);
  }
  const bool k128 = ai.enc_key_len == 16;
  switch (p.algo) {
    case Algo::kAesGcm128:
    case Algo::kAesGcm256: {
      auto ct = aead_seal(k128 ? EVP_aes_128_gcm() : EVP_aes_256_gcm(), key, nonce, aad, payload);
      pkt.insert(pkt.end(), ct.begin(), ct.end());
      break;
    }
    case Algo::kChacha20Poly1305: {
      auto ct = aead_seal(EVP_chacha20_poly1305(), key, nonce, aad, payload);
      pkt.insert(pkt.end(), ct.begin(), ct.end());
      break;
    }
    case Algo::kAesGmac128:
    case Algo::kAesGmac256: {
      // RFC 4543: AAD = SPI | seq (64-bit with ESN) | IV | payload; nothing encrypted.
      std::vector<uint8_t> a = aad;
      a.insert(a.end(), p.iv.begin(), p.iv.end());
      a.insert(a.end(), payload.begin(), payload.end());
      auto tag = aead_seal(k128 ? EVP_aes_128_gcm() : EVP_aes_256_gcm(), key, nonce, a, {});
      pkt.insert(pkt.end(), payload.begin(), payload.end());
      pkt.insert(pkt.end(), tag.begin(), tag.end());
      break;
    }
    default: {  // AES-CBC + HMAC-SHA-2: encrypt-then-MAC over SPI | seq | IV | ct [| seq_hi]
      auto ct = cbc_encrypt(k128 ? EVP_aes_128_cbc() : EVP_aes_256_cbc(), key, p.iv.data(), payload);
      pkt.insert(pkt.end(), ct.begin(), ct.end());
      std::vector<uint8_t> hashed = pkt;
      if (p.esn) put32(hashed, p.esn_hi);
      const int bits = ai.icv_len == 16 ? 256 : ai.icv_len == 24 ? 384 : 512;
      std::vector<uint8_t> ikey(key + ai.enc_key_len, key + ai.enc_key_len + ai.auth_key_len);
      auto mac = openssl_hmac(bits, ikey, hashed);
      pkt.insert(pkt.end(), mac.begin(), mac.begin() + ai.icv_len);
      break;
    }
  }
  return pkt;
}

}  // namespace espgw::crypto::test
