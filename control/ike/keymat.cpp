#include "control/ike/keymat.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <memory>

namespace espgw::ike {

namespace {

const char* prf_digest(uint16_t id) {
  switch (id) {
    case prf::kHmacSha256:
      return "SHA256";
    case prf::kHmacSha384:
      return "SHA384";
    case prf::kHmacSha512:
      return "SHA512";
    default:
      return nullptr;
  }
}

EVP_MAC* hmac_algo() {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

struct MacCtxFree {
  void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
};

// HMAC into a caller buffer of at least 64 octets; returns the output length (0 on failure).
size_t hmac(uint16_t prf_id, ByteView key, std::initializer_list<ByteView> data, uint8_t* out) {
  const char* md = prf_digest(prf_id);
  if (!md || !hmac_algo()) return 0;
  std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx(EVP_MAC_CTX_new(hmac_algo()));
  if (!ctx) return 0;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(md), 0),
      OSSL_PARAM_construct_end()};
  // An empty key is legal for HMAC; OpenSSL wants a non-null pointer for it.
  static const uint8_t kEmpty = 0;
  if (EVP_MAC_init(ctx.get(), key.empty() ? &kEmpty : key.data(), key.size(), params) <= 0)
    return 0;
  for (ByteView d : data)
    if (!d.empty() && EVP_MAC_update(ctx.get(), d.data(), d.size()) <= 0) return 0;
  size_t len = 0;
  if (EVP_MAC_final(ctx.get(), out, &len, 64) <= 0) return 0;
  return len;
}

Bytes spis(uint64_t spi_i, uint64_t spi_r) {
  Bytes b;
  Writer w(b);
  w.u64(spi_i);
  w.u64(spi_r);
  return b;
}

// Splits key material into consecutive Secrets of the given lengths.
class Splitter {
 public:
  explicit Splitter(const Secret& s) : s_(s) {}
  Secret take(size_t n) {
    Secret out(s_.data() + off_, n);
    off_ += n;
    return out;
  }

 private:
  const Secret& s_;
  size_t off_ = 0;
};

bool expand_ike_keys(const Suite& s, const Secret& skeyseed, ByteView ni, ByteView nr,
                     uint64_t spi_i, uint64_t spi_r, IkeKeys& out) {
  IkeKeyLengths l = ike_key_lengths(s);
  if (l.d == 0 || l.e == 0) return false;
  Bytes seed(ni.begin(), ni.end());
  seed.insert(seed.end(), nr.begin(), nr.end());
  Bytes sp = spis(spi_i, spi_r);
  seed.insert(seed.end(), sp.begin(), sp.end());
  Secret km;
  if (!prf_plus(s.prf, view(skeyseed), seed, l.total(), km)) return false;
  Splitter sp2(km);
  out.sk_d = sp2.take(l.d);
  out.sk_ai = sp2.take(l.a);
  out.sk_ar = sp2.take(l.a);
  out.sk_ei = sp2.take(l.e);
  out.sk_er = sp2.take(l.e);
  out.sk_pi = sp2.take(l.p);
  out.sk_pr = sp2.take(l.p);
  return true;
}

}  // namespace

bool compute_prf(uint16_t prf_id, ByteView key, std::initializer_list<ByteView> data, Secret& out) {
  std::array<uint8_t, 64> buf;
  size_t n = hmac(prf_id, key, data, buf.data());
  if (n) out = Secret(buf.data(), n);
  OPENSSL_cleanse(buf.data(), buf.size());
  return n != 0;
}

bool prf_plus(uint16_t prf_id, ByteView key, ByteView seed, size_t len, Secret& out) {
  size_t hlen = prf_len(prf_id);
  if (hlen == 0 || len > 255 * hlen) return false;
  std::vector<uint8_t> acc(len);
  std::array<uint8_t, 64> t;
  size_t tlen = 0;
  bool ok = true;
  for (size_t off = 0, i = 1; off < len; ++i) {
    uint8_t counter = uint8_t(i);
    // T(i) = prf(K, T(i-1) | S | i), T(0) empty.
    tlen = hmac(prf_id, key, {ByteView(t.data(), tlen), seed, ByteView(&counter, 1)}, t.data());
    if (tlen == 0) {
      ok = false;
      break;
    }
    size_t n = std::min(tlen, len - off);
    std::copy(t.begin(), t.begin() + ptrdiff_t(n), acc.begin() + ptrdiff_t(off));
    off += n;
  }
  if (ok) out = Secret(acc.data(), acc.size());
  OPENSSL_cleanse(acc.data(), acc.size());
  OPENSSL_cleanse(t.data(), t.size());
  return ok;
}

IkeKeyLengths ike_key_lengths(const Suite& s) {
  size_t p = prf_len(s.prf);
  return {p, s.integ_key_len(), s.encr_key_len(), p};
}

bool derive_ike_keys(const Suite& s, ByteView ni, ByteView nr, const Secret& g_ir, uint64_t spi_i,
                     uint64_t spi_r, IkeKeys& out) {
  Bytes nonces(ni.begin(), ni.end());
  nonces.insert(nonces.end(), nr.begin(), nr.end());
  Secret skeyseed;
  if (!compute_prf(s.prf, nonces, {view(g_ir)}, skeyseed)) return false;
  return expand_ike_keys(s, skeyseed, ni, nr, spi_i, spi_r, out);
}

bool derive_rekeyed_ike_keys(const Suite& s, uint16_t old_prf, const Secret& old_sk_d, ByteView ni,
                             ByteView nr, const Secret& g_ir, uint64_t spi_i, uint64_t spi_r,
                             IkeKeys& out) {
  Secret skeyseed;
  if (!compute_prf(old_prf, view(old_sk_d), {view(g_ir), ni, nr}, skeyseed)) return false;
  return expand_ike_keys(s, skeyseed, ni, nr, spi_i, spi_r, out);
}

bool derive_child_keys(uint16_t prf_id, const Secret& sk_d, const Secret* g_ir, ByteView ni,
                       ByteView nr, size_t encr_len, size_t integ_len, ChildKeys& out) {
  size_t each = encr_len + integ_len;
  if (each == 0) return false;
  std::vector<uint8_t> seed;
  if (g_ir) seed.insert(seed.end(), g_ir->data(), g_ir->data() + g_ir->size());
  seed.insert(seed.end(), ni.begin(), ni.end());
  seed.insert(seed.end(), nr.begin(), nr.end());
  Secret km;
  bool ok = prf_plus(prf_id, view(sk_d), seed, 2 * each, km);
  OPENSSL_cleanse(seed.data(), seed.size());
  if (!ok) return false;
  // The RFC order (encryption key, then integrity key, per direction) equals the data plane's
  // layout (cipher key || salt || auth key), so each direction is one contiguous slice.
  Splitter sp(km);
  out.i2r = sp.take(each);
  out.r2i = sp.take(each);
  return true;
}

bool derive_child_keys(uint16_t prf_id, const Secret& sk_d, const Secret* g_ir, ByteView ni,
                       ByteView nr, crypto::Algo algo, ChildKeys& out) {
  const auto& i = crypto::info(algo);
  return derive_child_keys(prf_id, sk_d, g_ir, ni, nr, size_t(i.enc_key_len) + i.salt_len,
                           i.auth_key_len, out);
}

bool psk_auth(uint16_t prf_id, const Secret& psk, ByteView signer_message, ByteView other_nonce,
              const Secret& sk_p, ByteView id_body, Bytes& auth) {
  static constexpr char kPad[] = "Key Pad for IKEv2";
  Secret maced_id, key, value;
  if (!compute_prf(prf_id, view(sk_p), {id_body}, maced_id)) return false;
  if (!compute_prf(prf_id, view(psk),
                   {ByteView(reinterpret_cast<const uint8_t*>(kPad), sizeof kPad - 1)}, key))
    return false;
  if (!compute_prf(prf_id, view(key), {signer_message, other_nonce, view(maced_id)}, value))
    return false;
  auth.assign(value.data(), value.data() + value.size());
  return true;
}

bool psk_auth_verify(uint16_t prf_id, const Secret& psk, ByteView signer_message,
                     ByteView other_nonce, const Secret& sk_p, ByteView id_body,
                     ByteView received) {
  Bytes expected;
  if (!psk_auth(prf_id, psk, signer_message, other_nonce, sk_p, id_body, expected)) return false;
  return received.size() == expected.size() &&
         CRYPTO_memcmp(received.data(), expected.data(), expected.size()) == 0;
}

}  // namespace espgw::ike
