#include "control/ike/cookie.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cstdlib>

namespace espgw::ike {

namespace {
Secret random_secret() {
  std::array<uint8_t, CookieJar::kSecretLen> b;
  if (RAND_bytes(b.data(), int(b.size())) != 1) std::abort();
  Secret s(b.data(), b.size());
  OPENSSL_cleanse(b.data(), b.size());
  return s;
}
}  // namespace

CookieJar::CookieJar() : current_(random_secret()) {}
CookieJar::CookieJar(const Secret& first_secret) : current_(first_secret) {}

void CookieJar::rotate() { rotate(random_secret()); }

void CookieJar::rotate(const Secret& next_secret) {
  previous_ = std::move(current_);
  current_ = next_secret;
  ++version_;
}

Bytes CookieJar::compute(uint32_t version, const Secret& secret, ByteView ni, const IpAddr& ip_i,
                         uint64_t spi_i) const {
  Bytes out;
  Writer w(out);
  w.u32(version);
  Bytes spi;
  Writer sw(spi);
  sw.u64(spi_i);
  std::array<uint8_t, EVP_MAX_MD_SIZE> md{};
  unsigned len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) > 0 &&
            EVP_DigestUpdate(ctx, ni.data(), ni.size()) > 0 &&
            EVP_DigestUpdate(ctx, ip_i.bytes.data(), ip_i.is_v4() ? 4 : 16) > 0 &&
            EVP_DigestUpdate(ctx, spi.data(), spi.size()) > 0 &&
            EVP_DigestUpdate(ctx, secret.data(), secret.size()) > 0 &&
            EVP_DigestFinal_ex(ctx, md.data(), &len) > 0;
  EVP_MD_CTX_free(ctx);
  if (!ok) std::abort();
  w.bytes(ByteView(md.data(), len));
  return out;
}

Bytes CookieJar::make(ByteView ni, const IpAddr& ip_i, uint64_t spi_i) const {
  return compute(version_, current_, ni, ip_i, spi_i);
}

bool CookieJar::verify(ByteView cookie, ByteView ni, const IpAddr& ip_i, uint64_t spi_i) const {
  if (cookie.size() != kCookieLen) return false;
  uint32_t v =
      uint32_t(cookie[0]) << 24 | uint32_t(cookie[1]) << 16 | uint32_t(cookie[2]) << 8 | cookie[3];
  const Secret* s = v == version_                                               ? &current_
                    : (version_ > 0 && v == version_ - 1 && !previous_.empty()) ? &previous_
                                                                                : nullptr;
  if (!s) return false;
  Bytes expect = compute(v, *s, ni, ip_i, spi_i);
  return CRYPTO_memcmp(expect.data(), cookie.data(), expect.size()) == 0;
}

}  // namespace espgw::ike
