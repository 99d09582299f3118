#include "control/ike/ke.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/dh.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <array>

#include "control/ike/types.h"

namespace espgw::ike {

namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct CtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct BldFree {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Ctx = std::unique_ptr<EVP_PKEY_CTX, CtxFree>;
using Bn = std::unique_ptr<BIGNUM, BnFree>;
using Bld = std::unique_ptr<OSSL_PARAM_BLD, BldFree>;
using Params = std::unique_ptr<OSSL_PARAM, ParamFree>;

enum class Kind { kModp, kEcp, kX25519 };

struct GroupInfo {
  uint16_t group;
  Kind kind;
  const char* name;  // OpenSSL group name
  size_t pub_len;    // KE payload data length
};

constexpr std::array<GroupInfo, 6> kGroups{{
    {dh::kModp2048, Kind::kModp, "modp_2048", 256},
    {dh::kModp3072, Kind::kModp, "modp_3072", 384},
    {dh::kEcp256, Kind::kEcp, "P-256", 64},
    {dh::kEcp384, Kind::kEcp, "P-384", 96},
    {dh::kEcp521, Kind::kEcp, "P-521", 132},
    {dh::kCurve25519, Kind::kX25519, "X25519", 32},
}};

const GroupInfo* group_info(uint16_t g) {
  for (const auto& i : kGroups)
    if (i.group == g) return &i;
  return nullptr;
}

// Derives the shared secret from our key and a validated peer key.
bool derive(EVP_PKEY* ours, EVP_PKEY* peer, bool pad, Secret& shared) {
  Ctx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, ours, nullptr));
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) <= 0) return false;
  if (pad && EVP_PKEY_CTX_set_dh_pad(ctx.get(), 1) <= 0) return false;
  if (EVP_PKEY_derive_set_peer_ex(ctx.get(), peer, 1) <= 0) return false;
  size_t len = 0;
  if (EVP_PKEY_derive(ctx.get(), nullptr, &len) <= 0 || len == 0 || len > 512) return false;
  std::array<uint8_t, 512> buf;
  bool ok = EVP_PKEY_derive(ctx.get(), buf.data(), &len) > 0;
  if (ok) shared = Secret(buf.data(), len);
  OPENSSL_cleanse(buf.data(), buf.size());
  return ok;
}

class EvpKe : public KeyExchange {
 public:
  explicit EvpKe(const GroupInfo& g) : g_(g) {}
  uint16_t group() const override { return g_.group; }
  const Bytes& public_value() const override { return pub_; }

  bool init() {
    switch (g_.kind) {
      case Kind::kModp:
        return init_modp();
      case Kind::kEcp:
        return init_ecp();
      case Kind::kX25519:
        return init_x25519();
    }
    return false;
  }

  bool compute(ByteView peer, Secret& shared) override {
    if (peer.size() != g_.pub_len) return false;
    switch (g_.kind) {
      case Kind::kModp:
        return compute_modp(peer, shared);
      case Kind::kEcp:
        return compute_ecp(peer, shared);
      case Kind::kX25519:
        return compute_x25519(peer, shared);
    }
    return false;
  }

 private:
  bool init_modp() {
    Ctx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "DH", nullptr));
    EVP_PKEY* k = nullptr;
    if (!ctx || EVP_PKEY_keygen_init(ctx.get()) <= 0 ||
        EVP_PKEY_CTX_set_group_name(ctx.get(), g_.name) <= 0 || EVP_PKEY_keygen(ctx.get(), &k) <= 0)
      return false;
    key_.reset(k);
    BIGNUM* pub = nullptr;
    BIGNUM* p = nullptr;
    if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PUB_KEY, &pub) <= 0) return false;
    Bn pub_owner(pub);
    if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_FFC_P, &p) <= 0) return false;
    p_.reset(p);
    pub_.resize(g_.pub_len);
    return BN_bn2binpad(pub, pub_.data(), int(pub_.size())) == int(pub_.size());
  }

  bool compute_modp(ByteView peer, Secret& shared) {
    Bn y(BN_bin2bn(peer.data(), int(peer.size()), nullptr));
    Bn pm1(BN_dup(p_.get()));
    if (!y || !pm1 || !BN_sub_word(pm1.get(), 1)) return false;
    // Section 2.x / RFC 6989: 1 < y < p-1.
    if (BN_cmp(y.get(), BN_value_one()) <= 0 || BN_cmp(y.get(), pm1.get()) >= 0) return false;
    Bld bld(OSSL_PARAM_BLD_new());
    if (!bld ||
        !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, g_.name, 0) ||
        !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, y.get()))
      return false;
    Params params(OSSL_PARAM_BLD_to_param(bld.get()));
    Pkey peer_key = from_data("DH", params.get());
    return peer_key && derive(key_.get(), peer_key.get(), true, shared);
  }

  bool init_ecp() {
    key_.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", g_.name));
    if (!key_) return false;
    std::array<uint8_t, 1 + 132> buf;
    size_t len = 0;
    if (EVP_PKEY_get_octet_string_param(key_.get(), OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf.data(),
                                        buf.size(), &len) <= 0)
      return false;
    if (len != 1 + g_.pub_len || buf[0] != 0x04) return false;  // uncompressed point
    pub_.assign(buf.begin() + 1, buf.begin() + ptrdiff_t(len));
    return true;
  }

  bool compute_ecp(ByteView peer, Secret& shared) {
    Bytes point(1 + peer.size());
    point[0] = 0x04;
    std::copy(peer.begin(), peer.end(), point.begin() + 1);
    Bld bld(OSSL_PARAM_BLD_new());
    if (!bld ||
        !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, g_.name, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                          point.size()))
      return false;
    Params params(OSSL_PARAM_BLD_to_param(bld.get()));
    // Import rejects points not on the curve; derive_set_peer_ex checks the key again.
    Pkey peer_key = from_data("EC", params.get());
    return peer_key && derive(key_.get(), peer_key.get(), false, shared);
  }

  bool init_x25519() {
    key_.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
    if (!key_) return false;
    pub_.resize(32);
    size_t len = pub_.size();
    return EVP_PKEY_get_raw_public_key(key_.get(), pub_.data(), &len) > 0 && len == 32;
  }

  bool compute_x25519(ByteView peer, Secret& shared) {
    Pkey peer_key(
        EVP_PKEY_new_raw_public_key_ex(nullptr, "X25519", nullptr, peer.data(), peer.size()));
    if (!peer_key || !derive(key_.get(), peer_key.get(), false, shared)) return false;
    // RFC 8031 section 2: an all-zero result (small-order peer point) must be rejected.
    uint8_t acc = 0;
    for (size_t i = 0; i < shared.size(); ++i) acc |= shared.data()[i];
    if (acc == 0) {
      shared = Secret();
      return false;
    }
    return true;
  }

  static Pkey from_data(const char* type, OSSL_PARAM* params) {
    if (!params) return nullptr;
    Ctx ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
    EVP_PKEY* k = nullptr;
    if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
        EVP_PKEY_fromdata(ctx.get(), &k, EVP_PKEY_PUBLIC_KEY, params) <= 0)
      return nullptr;
    return Pkey(k);
  }

  const GroupInfo& g_;
  Pkey key_;
  Bn p_;
  Bytes pub_;
};

}  // namespace

std::unique_ptr<KeyExchange> make_ke(uint16_t group) {
  const GroupInfo* g = group_info(group);
  if (!g) return nullptr;
  auto ke = std::make_unique<EvpKe>(*g);
  if (!ke->init()) return nullptr;
  return ke;
}

size_t ke_public_len(uint16_t group) {
  const GroupInfo* g = group_info(group);
  return g ? g->pub_len : 0;
}

}  // namespace espgw::ike
