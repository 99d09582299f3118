// Protection of the Encrypted (SK) payload (RFC 7296 section 3.14; RFC 5282 AES-GCM; RFC 7634
// ChaCha20-Poly1305) through OpenSSL EVP. Works on whole message buffers:
//   IKE header | [unencrypted payloads] | SK header | IV | Encrypted(inner | Padding | Pad Length)
//   | ICV
// AES-CBC: ICV = HMAC-SHA2 (truncated) over the message up to the end of the ciphertext.
// AEAD: nonce = salt (last 4 octets of SK_e) | 8-octet IV, AAD = message start .. SK header end.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "control/ike/keymat.h"
#include "control/ike/message.h"
#include "control/ike/transforms.h"
#include "control/model/secret.h"

namespace espgw::ike {

enum class SkError : uint8_t {
  kOk = 0,
  kDecode,       // the outer message does not decode (see DecodeStatus)
  kNoSk,         // no Encrypted payload
  kBadLength,    // SK payload too short, or ciphertext not a multiple of the block size
  kIntegrity,    // ICV / AEAD tag mismatch: drop silently (section 2.21.2)
  kBadPadding,   // Pad Length larger than the plaintext
  kInnerDecode,  // the decrypted payload chain does not decode (see DecodeStatus)
  kInternal,     // OpenSSL failure or unusable keys
};
const char* to_string(SkError e);

struct SkResult {
  SkError error = SkError::kOk;
  DecodeStatus decode;  // for kDecode / kInnerDecode
  bool ok() const { return error == SkError::kOk; }
};

// One direction's SK protection: the sender's SK_e (including the salt) and SK_a.
class SkCrypter {
 public:
  // nullptr if the suite has no SK support or the key lengths do not match it.
  static std::unique_ptr<SkCrypter> make(const Suite& s, const Secret& sk_e, const Secret& sk_a);
  virtual ~SkCrypter() = default;

  virtual size_t iv_len() const = 0;
  virtual size_t icv_len() const = 0;
  virtual size_t block_len() const = 0;  // plaintext alignment (1 for AEAD)

  // Encodes hdr (next payload and length computed) with one SK payload carrying `inner`.
  std::optional<Bytes> protect(const Header& hdr, const std::vector<Payload>& inner);

  // Lower level: seals an already padded plaintext (payloads | Padding | Pad Length) whose first
  // payload has type inner_next. An empty iv means a fresh one (random for CBC, a counter for AEAD;
  // an explicit iv is for known-answer tests).
  std::optional<Bytes> seal(const Header& hdr, PayloadType inner_next, ByteView padded_plaintext,
                            ByteView iv = {});

  // Verifies and decrypts: `out` receives the header, any unencrypted payloads and the decoded
  // inner payloads (the SK payload itself is replaced by its contents).
  SkResult unprotect(ByteView msg, Message& out);

  // Lower level: verifies and decrypts the SK payload of a whole message; `plaintext` is the inner
  // payload chain without padding, inner_next its first payload type.
  SkError open(ByteView msg, PayloadType& inner_next, Bytes& plaintext);

  // RFC 7383: the payloads as Encrypted Fragment messages of at most max_msg octets each (IKE
  // header included); hdr as for protect(). nullopt if max_msg leaves no room for content.
  std::optional<std::vector<Bytes>> protect_fragments(const Header& hdr,
                                                      const std::vector<Payload>& inner,
                                                      size_t max_msg);
  // Verifies and decrypts one fragment message (parse_fragment() must accept it): `plaintext` is
  // its part of the inner payload chain, without padding. The AAD / ICV cover the fragment fields.
  SkError open_fragment(ByteView msg, Bytes& plaintext);

 protected:
  SkCrypter() = default;
  // The encryption/ICV of one message: `msg` holds everything up to and including the IV, then the
  // plaintext; seal_impl encrypts the plaintext in place and appends the ICV.
  virtual bool seal_impl(Bytes& msg, size_t sk_hdr_end, size_t pt_off) = 0;
  // Verifies and decrypts msg's SK contents (iv, ct, icv) into pt.
  virtual SkError open_impl(ByteView msg, size_t sk_hdr_end, Bytes& pt) = 0;
  virtual void next_iv(uint8_t* iv) = 0;

 private:
  std::optional<Bytes> seal_as(const Header& hdr, PayloadType type, PayloadType inner_next,
                               ByteView extra, ByteView padded_plaintext, ByteView iv = {});
};

// The two crypters of an IKE SA for one side: outbound uses our keys, inbound the peer's.
struct SkPair {
  std::unique_ptr<SkCrypter> out;
  std::unique_ptr<SkCrypter> in;
};
std::optional<SkPair> make_sk_pair(const Suite& s, const IkeKeys& keys, bool we_are_initiator);

}  // namespace espgw::ike
