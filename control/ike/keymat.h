// IKEv2 key material (RFC 7296 sections 2.13-2.18): prf, prf+, SKEYSEED and the SK_* keys, Child SA
// KEYMAT, and the shared-key AUTH value (section 2.15). All keys are held in Secret (wiped).
#pragma once

#include <cstdint>
#include <initializer_list>

#include "control/ike/transforms.h"
#include "control/ike/wire.h"
#include "control/model/secret.h"
#include "crypto/algo.h"

namespace espgw::ike {

inline ByteView view(const Secret& s) { return ByteView(s.data(), s.size()); }

// prf(key, data_1 | data_2 | ...) for an HMAC-SHA2 PRF transform. False for an unknown PRF.
bool compute_prf(uint16_t prf_id, ByteView key, std::initializer_list<ByteView> data, Secret& out);
// prf+ (section 2.13): T1 | T2 | ... truncated to len octets (at most 255 iterations).
bool prf_plus(uint16_t prf_id, ByteView key, ByteView seed, size_t len, Secret& out);

struct IkeKeys {
  Secret sk_d, sk_ai, sk_ar, sk_ei, sk_er, sk_pi, sk_pr;
};

// Lengths of the SK_* keys for a suite (section 2.14): SK_d/SK_p* = PRF output length,
// SK_a* = integrity key length (0 for AEAD), SK_e* = cipher key + salt.
struct IkeKeyLengths {
  size_t d, a, e, p;
  size_t total() const { return d + 2 * a + 2 * e + 2 * p; }
};
IkeKeyLengths ike_key_lengths(const Suite& s);

// Initial IKE SA: SKEYSEED = prf(Ni | Nr, g^ir);
// {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr).
bool derive_ike_keys(const Suite& s, ByteView ni, ByteView nr, const Secret& g_ir, uint64_t spi_i,
                     uint64_t spi_r, IkeKeys& out);

// Rekeyed IKE SA (section 2.18): SKEYSEED = prf_old(SK_d (old), g^ir (new) | Ni | Nr), then the
// SK_* as above with the new suite's PRF and the new SPIs.
bool derive_rekeyed_ike_keys(const Suite& s, uint16_t old_prf, const Secret& old_sk_d, ByteView ni,
                             ByteView nr, const Secret& g_ir, uint64_t spi_i, uint64_t spi_r,
                             IkeKeys& out);

// Child SA keys (section 2.17): KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr), taken as the
// initiator->responder SA's encryption key (incl. salt) then its integrity key, then the same for
// responder->initiator. Each direction is laid out as crypto::AlgoInfo::keymat_len() describes:
// cipher key || salt || auth key. g_ir is nullptr without PFS.
struct ChildKeys {
  Secret i2r;
  Secret r2i;
};
bool derive_child_keys(uint16_t prf_id, const Secret& sk_d, const Secret* g_ir, ByteView ni,
                       ByteView nr, crypto::Algo algo, ChildKeys& out);
// Same with explicit lengths (encr_len includes the salt).
bool derive_child_keys(uint16_t prf_id, const Secret& sk_d, const Secret* g_ir, ByteView ni,
                       ByteView nr, size_t encr_len, size_t integ_len, ChildKeys& out);

// Shared-key AUTH (section 2.15), computed by or for the signer:
//   AUTH = prf(prf(PSK, "Key Pad for IKEv2"), SignedOctets)
//   SignedOctets = RealMessage | NonceData | prf(SK_p, RestOfIDPayload)
// Initiator: signer_message = its IKE_SA_INIT request, other_nonce = Nr, sk_p = SK_pi,
// id_body = IDi body (IdPayload::body()). Responder: its IKE_SA_INIT response, Ni, SK_pr, IDr body.
bool psk_auth(uint16_t prf_id, const Secret& psk, ByteView signer_message, ByteView other_nonce,
              const Secret& sk_p, ByteView id_body, Bytes& auth);
// Recomputes and compares in constant time.
bool psk_auth_verify(uint16_t prf_id, const Secret& psk, ByteView signer_message,
                     ByteView other_nonce, const Secret& sk_p, ByteView id_body, ByteView received);

}  // namespace espgw::ike
