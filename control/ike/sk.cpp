#include "control/ike/sk.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>

#include "control/ike/frag.h"

namespace espgw::ike {

const char* to_string(SkError e) {
  switch (e) {
    case SkError::kOk:
      return "ok";
    case SkError::kDecode:
      return "message does not decode";
    case SkError::kNoSk:
      return "no encrypted payload";
    case SkError::kBadLength:
      return "bad encrypted payload length";
    case SkError::kIntegrity:
      return "integrity check failed";
    case SkError::kBadPadding:
      return "bad padding";
    case SkError::kInnerDecode:
      return "encrypted payloads do not decode";
    case SkError::kInternal:
      return "internal error";
  }
  return "?";
}

namespace {

struct CipherFree {
  void operator()(EVP_CIPHER* c) const { EVP_CIPHER_free(c); }
};
struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Cipher = std::unique_ptr<EVP_CIPHER, CipherFree>;
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

const char* cipher_name(uint16_t encr_id, uint16_t bits) {
  switch (encr_id) {
    case encr::kAesCbc:
      return bits == 128 ? "AES-128-CBC" : bits == 192 ? "AES-192-CBC" : "AES-256-CBC";
    case encr::kAesGcm16:
      return bits == 128 ? "AES-128-GCM" : bits == 192 ? "AES-192-GCM" : "AES-256-GCM";
    case encr::kChacha20Poly1305:
      return "ChaCha20-Poly1305";
    default:
      return nullptr;
  }
}

uint16_t integ_prf(uint16_t integ_id) {
  switch (integ_id) {
    case integ::kHmacSha256_128:
      return prf::kHmacSha256;
    case integ::kHmacSha384_192:
      return prf::kHmacSha384;
    case integ::kHmacSha512_256:
      return prf::kHmacSha512;
    default:
      return 0;
  }
}

// AES-CBC + HMAC-SHA2 (truncated ICV).
class CbcCrypter : public SkCrypter {
 public:
  CbcCrypter(Cipher c, const Secret& ke, const Secret& ka, uint16_t mac_prf, size_t icv)
      : cipher_(std::move(c)), ke_(ke), ka_(ka), mac_prf_(mac_prf), icv_(icv) {}
  size_t iv_len() const override { return 16; }
  size_t icv_len() const override { return icv_; }
  size_t block_len() const override { return 16; }

 protected:
  void next_iv(uint8_t* iv) override {
    if (RAND_bytes(iv, 16) != 1) std::abort();  // never send a predictable CBC IV
  }

  bool seal_impl(Bytes& msg, size_t sk_hdr_end, size_t pt_off) override {
    size_t n = msg.size() - pt_off;
    if (!crypt(true, msg.data() + sk_hdr_end, msg.data() + pt_off, n, msg.data() + pt_off))
      return false;
    Secret mac;
    if (!compute_prf(mac_prf_, view(ka_), {ByteView(msg)}, mac)) return false;
    msg.insert(msg.end(), mac.data(), mac.data() + icv_);
    return true;
  }

  SkError open_impl(ByteView msg, size_t sk_hdr_end, Bytes& pt) override {
    size_t data_len = msg.size() - sk_hdr_end;
    if (data_len < 16 + icv_ + 16) return SkError::kBadLength;
    size_t ct_len = data_len - 16 - icv_;
    if (ct_len % 16 != 0) return SkError::kBadLength;
    ByteView signed_part = msg.first(msg.size() - icv_);
    Secret mac;
    if (!compute_prf(mac_prf_, view(ka_), {signed_part}, mac)) return SkError::kInternal;
    if (CRYPTO_memcmp(mac.data(), msg.data() + msg.size() - icv_, icv_) != 0)
      return SkError::kIntegrity;
    pt.resize(ct_len);
    if (!crypt(false, msg.data() + sk_hdr_end, msg.data() + sk_hdr_end + 16, ct_len, pt.data()))
      return SkError::kInternal;
    return SkError::kOk;
  }

 private:
  bool crypt(bool enc, const uint8_t* iv, const uint8_t* in, size_t n, uint8_t* out) {
    CipherCtx ctx(EVP_CIPHER_CTX_new());
    int len = 0, fin = 0;
    return ctx &&
           EVP_CipherInit_ex2(ctx.get(), cipher_.get(), ke_.data(), iv, enc ? 1 : 0, nullptr) > 0 &&
           EVP_CIPHER_CTX_set_padding(ctx.get(), 0) > 0 &&
           EVP_CipherUpdate(ctx.get(), out, &len, in, int(n)) > 0 &&
           EVP_CipherFinal_ex(ctx.get(), out + len, &fin) > 0 && size_t(len + fin) == n;
  }

  Cipher cipher_;
  Secret ke_;
  Secret ka_;
  uint16_t mac_prf_;
  size_t icv_;
};

// AES-GCM-16 (RFC 5282) and ChaCha20-Poly1305 (RFC 7634): key || 4-octet salt.
class AeadCrypter : public SkCrypter {
 public:
  AeadCrypter(Cipher c, const Secret& ke) : cipher_(std::move(c)) {
    key_ = Secret(ke.data(), ke.size() - 4);
    std::copy(ke.data() + ke.size() - 4, ke.data() + ke.size(), salt_.begin());
    // A random starting point for the IV counter: unique per key even if a crypter is re-made.
    if (RAND_bytes(reinterpret_cast<uint8_t*>(&counter_), sizeof counter_) != 1) std::abort();
  }
  ~AeadCrypter() override { OPENSSL_cleanse(salt_.data(), salt_.size()); }
  size_t iv_len() const override { return 8; }
  size_t icv_len() const override { return 16; }
  size_t block_len() const override { return 1; }

 protected:
  void next_iv(uint8_t* iv) override {
    uint64_t c = counter_++;
    for (int i = 7; i >= 0; --i, c >>= 8) iv[i] = uint8_t(c);
  }

  bool seal_impl(Bytes& msg, size_t sk_hdr_end, size_t pt_off) override {
    size_t n = msg.size() - pt_off;
    std::array<uint8_t, 16> tag;
    if (!run(true, msg.data(), sk_hdr_end, msg.data() + sk_hdr_end, msg.data() + pt_off, n,
             msg.data() + pt_off, tag.data()))
      return false;
    msg.insert(msg.end(), tag.begin(), tag.end());
    return true;
  }

  SkError open_impl(ByteView msg, size_t sk_hdr_end, Bytes& pt) override {
    size_t data_len = msg.size() - sk_hdr_end;
    if (data_len < 8 + 16 + 1) return SkError::kBadLength;  // at least the Pad Length octet
    size_t ct_len = data_len - 8 - 16;
    pt.resize(ct_len);
    std::array<uint8_t, 16> tag;
    std::copy(msg.end() - 16, msg.end(), tag.begin());
    if (!run(false, msg.data(), sk_hdr_end, msg.data() + sk_hdr_end, msg.data() + sk_hdr_end + 8,
             ct_len, pt.data(), tag.data())) {
      OPENSSL_cleanse(pt.data(), pt.size());
      pt.clear();
      return SkError::kIntegrity;
    }
    return SkError::kOk;
  }

 private:
  bool run(bool enc, const uint8_t* aad, size_t aad_len, const uint8_t* iv8, const uint8_t* in,
           size_t n, uint8_t* out, uint8_t* tag) {
    std::array<uint8_t, 12> nonce;
    std::copy(salt_.begin(), salt_.end(), nonce.begin());
    std::copy(iv8, iv8 + 8, nonce.begin() + 4);
    CipherCtx ctx(EVP_CIPHER_CTX_new());
    int len = 0;
    size_t ivlen = nonce.size();
    OSSL_PARAM ivp[] = {OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &ivlen),
                        OSSL_PARAM_construct_end()};
    if (!ctx ||
        EVP_CipherInit_ex2(ctx.get(), cipher_.get(), nullptr, nullptr, enc ? 1 : 0, ivp) <= 0 ||
        EVP_CipherInit_ex2(ctx.get(), nullptr, key_.data(), nonce.data(), enc ? 1 : 0, nullptr) <=
            0)
      return false;
    if (EVP_CipherUpdate(ctx.get(), nullptr, &len, aad, int(aad_len)) <= 0) return false;
    if (n > 0 && EVP_CipherUpdate(ctx.get(), out, &len, in, int(n)) <= 0) return false;
    if (!enc) {
      OSSL_PARAM tp[] = {OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, 16),
                         OSSL_PARAM_construct_end()};
      if (EVP_CIPHER_CTX_set_params(ctx.get(), tp) <= 0) return false;
    }
    int fin = 0;
    if (EVP_CipherFinal_ex(ctx.get(), out + (n > 0 ? len : 0), &fin) <= 0) return false;
    if (enc) {
      OSSL_PARAM tp[] = {OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, 16),
                         OSSL_PARAM_construct_end()};
      if (EVP_CIPHER_CTX_get_params(ctx.get(), tp) <= 0) return false;
    }
    return true;
  }

  Cipher cipher_;
  Secret key_;
  std::array<uint8_t, 4> salt_{};
  uint64_t counter_ = 0;
};

}  // namespace

std::unique_ptr<SkCrypter> SkCrypter::make(const Suite& s, const Secret& sk_e, const Secret& sk_a) {
  auto e = encr_info(s.encr);
  const char* name = cipher_name(s.encr, s.encr_key_bits);
  if (!e || !name || !encr_key_length_ok(s.encr, s.encr_key_bits)) return nullptr;
  if (sk_e.size() != s.encr_key_len()) return nullptr;
  Cipher c(EVP_CIPHER_fetch(nullptr, name, nullptr));
  if (!c) return nullptr;
  if (e->aead) {
    if (s.integ != integ::kNone) return nullptr;
    return std::make_unique<AeadCrypter>(std::move(c), sk_e);
  }
  uint16_t mac_prf = integ_prf(s.integ);
  if (mac_prf == 0 || sk_a.size() != integ_key_len(s.integ)) return nullptr;
  return std::make_unique<CbcCrypter>(std::move(c), sk_e, sk_a, mac_prf, integ_icv_len(s.integ));
}

std::optional<Bytes> SkCrypter::protect(const Header& hdr, const std::vector<Payload>& inner) {
  Bytes pt;
  Writer w(pt);
  PayloadType first = encode_payloads(inner, w);
  // Pad so that payloads | Padding | Pad Length fills whole blocks (no extra padding).
  size_t blk = block_len();
  size_t pad = (blk - (pt.size() + 1) % blk) % blk;
  w.zeros(pad);
  w.u8(uint8_t(pad));
  auto out = seal(hdr, first, pt);
  OPENSSL_cleanse(pt.data(), pt.size());
  return out;
}

std::optional<Bytes> SkCrypter::seal(const Header& hdr, PayloadType inner_next,
                                     ByteView padded_plaintext, ByteView iv) {
  return seal_as(hdr, PayloadType::kEncrypted, inner_next, {}, padded_plaintext, iv);
}

// SK, or SKF with the fragment fields as `extra` (they are part of the AAD / signed octets).
std::optional<Bytes> SkCrypter::seal_as(const Header& hdr, PayloadType type, PayloadType inner_next,
                                        ByteView extra, ByteView padded_plaintext, ByteView iv) {
  if (padded_plaintext.empty() || padded_plaintext.size() % block_len() != 0) return std::nullopt;
  if (!iv.empty() && iv.size() != iv_len()) return std::nullopt;
  size_t sk_len = kGenericHeaderLen + extra.size() + iv_len() + padded_plaintext.size() + icv_len();
  if (sk_len > 0xffff) return std::nullopt;
  Bytes msg;
  msg.reserve(kHeaderLen + sk_len);
  Writer w(msg);
  Header h = hdr;
  h.next = type;
  h.length = uint32_t(kHeaderLen + sk_len);
  h.encode(w);
  w.u8(uint8_t(inner_next));
  w.u8(0);
  w.u16(uint16_t(sk_len));
  w.bytes(extra);
  size_t sk_hdr_end = msg.size();
  if (iv.empty()) {
    std::array<uint8_t, 16> fresh;
    next_iv(fresh.data());
    w.bytes(ByteView(fresh.data(), iv_len()));
  } else {
    w.bytes(iv);
  }
  size_t pt_off = msg.size();
  w.bytes(padded_plaintext);
  if (!seal_impl(msg, sk_hdr_end, pt_off)) return std::nullopt;
  return msg;
}

SkError SkCrypter::open(ByteView msg, PayloadType& inner_next, Bytes& plaintext) {
  Message m;
  if (!decode_message(msg, m).ok()) return SkError::kDecode;
  if (m.payloads.empty() || m.payloads.back().type != PayloadType::kEncrypted)
    return SkError::kNoSk;
  const auto& sk = std::get<EncryptedPayload>(m.payloads.back().body);
  // SK is the last payload, so it ends the message.
  size_t sk_hdr_end = msg.size() - sk.data.size();
  SkError e = open_impl(msg, sk_hdr_end, plaintext);
  if (e != SkError::kOk) return e;
  uint8_t pad = plaintext.back();
  if (size_t(pad) + 1 > plaintext.size()) {
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    plaintext.clear();
    return SkError::kBadPadding;
  }
  plaintext.resize(plaintext.size() - 1 - pad);
  inner_next = sk.inner_next;
  return SkError::kOk;
}

std::optional<std::vector<Bytes>> SkCrypter::protect_fragments(const Header& hdr,
                                                               const std::vector<Payload>& inner,
                                                               size_t max_msg) {
  size_t overhead = kHeaderLen + kSkfHeaderLen + iv_len() + icv_len();
  size_t blk = block_len();
  if (max_msg < overhead + 2 * blk) return std::nullopt;
  // Content | Padding | Pad Length fills whole blocks: at most this much content per fragment.
  size_t chunk = (max_msg - overhead) / blk * blk - 1;
  Bytes pt;
  Writer w(pt);
  PayloadType first = encode_payloads(inner, w);
  size_t n = pt.empty() ? 1 : (pt.size() + chunk - 1) / chunk;
  if (n > 0xffff) return std::nullopt;
  std::vector<Bytes> out;
  for (size_t i = 0; i < n; ++i) {
    size_t off = i * chunk, len = std::min(chunk, pt.size() - std::min(off, pt.size()));
    Bytes part(pt.begin() + off, pt.begin() + off + len);
    size_t pad = (blk - (len + 1) % blk) % blk;
    part.insert(part.end(), pad, 0);
    part.push_back(uint8_t(pad));
    uint8_t extra[4] = {uint8_t((i + 1) >> 8), uint8_t(i + 1), uint8_t(n >> 8), uint8_t(n)};
    // Only the first fragment names the first inner payload (RFC 7383 2.5).
    auto f = seal_as(hdr, PayloadType::kEncryptedFragment, i == 0 ? first : PayloadType::kNone,
                     ByteView(extra, 4), part);
    OPENSSL_cleanse(part.data(), part.size());
    if (!f) {
      OPENSSL_cleanse(pt.data(), pt.size());
      return std::nullopt;
    }
    out.push_back(std::move(*f));
  }
  OPENSSL_cleanse(pt.data(), pt.size());
  return out;
}

SkError SkCrypter::open_fragment(ByteView msg, Bytes& plaintext) {
  FragHeader f;
  if (parse_fragment(msg, f) != DecodeError::kOk) return SkError::kDecode;
  SkError e = open_impl(msg, kHeaderLen + kSkfHeaderLen, plaintext);
  if (e != SkError::kOk) return e;
  uint8_t pad = plaintext.back();
  if (size_t(pad) + 1 > plaintext.size()) {
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    plaintext.clear();
    return SkError::kBadPadding;
  }
  plaintext.resize(plaintext.size() - 1 - pad);
  return SkError::kOk;
}

SkResult SkCrypter::unprotect(ByteView msg, Message& out) {
  SkResult r;
  out = {};
  r.decode = decode_message(msg, out);
  if (!r.decode.ok()) {
    r.error = SkError::kDecode;
    return r;
  }
  PayloadType inner_next = PayloadType::kNone;
  Bytes pt;
  r.error = open(msg, inner_next, pt);
  if (r.error != SkError::kOk) return r;
  out.payloads.pop_back();  // the SK payload, replaced by its contents
  r.decode = decode_payloads(inner_next, pt, out.payloads);
  OPENSSL_cleanse(pt.data(), pt.size());
  if (!r.decode.ok()) r.error = SkError::kInnerDecode;
  return r;
}

std::optional<SkPair> make_sk_pair(const Suite& s, const IkeKeys& keys, bool we_are_initiator) {
  SkPair p;
  const IkeKeys& k = keys;
  p.out = SkCrypter::make(s, we_are_initiator ? k.sk_ei : k.sk_er,
                          we_are_initiator ? k.sk_ai : k.sk_ar);
  p.in = SkCrypter::make(s, we_are_initiator ? k.sk_er : k.sk_ei,
                         we_are_initiator ? k.sk_ar : k.sk_ai);
  if (!p.out || !p.in) return std::nullopt;
  return p;
}

}  // namespace espgw::ike
