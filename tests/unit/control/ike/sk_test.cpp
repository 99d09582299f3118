// SK payload protection: round trips per cipher, independent decryption of what we produce with
// plain OpenSSL, tampering, padding and length errors.
#include "control/ike/sk.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tests/unit/control/ike/test_util.h"

namespace espgw::ike {
namespace {

using test::hex;

struct Keys {
  Suite suite;
  Secret ke, ka;
};

Keys keys_for(const char* proposal) {
  Keys k;
  auto p = parse_proposal(proposal, ProtocolId::kIke);
  EXPECT_TRUE(p) << proposal;
  k.suite = *suite_of(*p);
  Bytes e(k.suite.encr_key_len());
  for (size_t i = 0; i < e.size(); ++i) e[i] = uint8_t(0x40 + i);
  Bytes a(k.suite.integ_key_len());
  for (size_t i = 0; i < a.size(); ++i) a[i] = uint8_t(0x80 + i);
  k.ke = Secret(e.data(), e.size());
  k.ka = Secret(a.data(), a.size());
  return k;
}

Header auth_header() {
  Header h;
  h.spi_i = 0x0011223344556677;
  h.spi_r = 0x8899aabbccddeeff;
  h.exchange = ExchangeType::kIkeAuth;
  h.flags = kFlagInitiator;
  h.message_id = 1;
  return h;
}

std::vector<Payload> auth_payloads() {
  auto esp = parse_proposal("aes256gcm16-noesn", ProtocolId::kEsp);
  esp->spi = {0xc1, 0xc2, 0xc3, 0xc4};
  return {make_idi(IdPayload::fqdn("left.example")),
          make_payload(NotifyPayload::make(NotifyType::kInitialContact)),
          make_payload(AuthPayload{AuthMethod::kSharedKeyMic, Bytes(32, 0xab)}),
          make_payload(SaPayload{{*esp}}),
          make_tsi(TsPayload{{TrafficSelector::from_prefix(*Prefix::parse("10.1.0.0/16"))}}),
          make_tsr(TsPayload{{TrafficSelector::from_prefix(*Prefix::parse("10.2.0.0/16"))}})};
}

class SkTest : public ::testing::TestWithParam<const char*> {};

TEST_P(SkTest, RoundTrip) {
  Keys k = keys_for(GetParam());
  auto sender = SkCrypter::make(k.suite, k.ke, k.ka);
  auto receiver = SkCrypter::make(k.suite, k.ke, k.ka);
  ASSERT_TRUE(sender && receiver);
  auto wire = sender->protect(auth_header(), auth_payloads());
  ASSERT_TRUE(wire);
  EXPECT_EQ(wire->size() % (k.suite.aead() ? 1 : 16),
            (28 + 4 + sender->icv_len()) % (k.suite.aead() ? 1 : 16));
  Message m;
  SkResult r = receiver->unprotect(*wire, m);
  ASSERT_TRUE(r.ok()) << to_string(r.error);
  EXPECT_EQ(m.payloads, auth_payloads());
  EXPECT_EQ(m.hdr.exchange, ExchangeType::kIkeAuth);
  EXPECT_EQ(m.hdr.length, wire->size());
  // Two messages get different IVs.
  auto wire2 = sender->protect(auth_header(), auth_payloads());
  ASSERT_TRUE(wire2);
  EXPECT_NE(*wire, *wire2);
  // An empty SK payload (e.g. a DPD request) round-trips as well.
  auto empty = sender->protect(auth_header(), {});
  ASSERT_TRUE(empty);
  ASSERT_TRUE(receiver->unprotect(*empty, m).ok());
  EXPECT_TRUE(m.payloads.empty());
}

TEST_P(SkTest, TamperedIcvOrCiphertextFails) {
  Keys k = keys_for(GetParam());
  auto c = SkCrypter::make(k.suite, k.ke, k.ka);
  ASSERT_TRUE(c);
  auto wire = c->protect(auth_header(), auth_payloads());
  ASSERT_TRUE(wire);
  Message m;
  for (size_t pos : {wire->size() - 1, wire->size() - c->icv_len(), size_t(28 + 4),
                     size_t(28 + 4 + c->iv_len() + 3), size_t(8) /* SPIr in header */}) {
    Bytes t = *wire;
    t[pos] ^= 0x01;
    EXPECT_EQ(c->unprotect(t, m).error, SkError::kIntegrity) << pos;
  }
  // Wrong key.
  Keys other = keys_for(GetParam());
  Bytes e(other.ke.size(), 0x01);
  other.ke = Secret(e.data(), e.size());
  auto wrong = SkCrypter::make(other.suite, other.ke, other.ka);
  if (!k.suite.aead()) {  // for CBC the ICV is checked first: use a wrong integrity key
    Bytes a(other.ka.size(), 0x02);
    wrong = SkCrypter::make(other.suite, k.ke, Secret(a.data(), a.size()));
  }
  EXPECT_EQ(wrong->unprotect(*wire, m).error, SkError::kIntegrity);
}

TEST_P(SkTest, WrongPaddingFails) {
  Keys k = keys_for(GetParam());
  auto c = SkCrypter::make(k.suite, k.ke, k.ka);
  ASSERT_TRUE(c);
  // Plaintext whose Pad Length claims more padding than there is plaintext.
  Bytes pt(c->block_len() == 16 ? 32 : 7, 0);
  pt.back() = uint8_t(pt.size());  // pad length = size: needs size + 1 octets
  auto wire = c->seal(auth_header(), PayloadType::kNone, pt);
  ASSERT_TRUE(wire);
  Message m;
  EXPECT_EQ(c->unprotect(*wire, m).error, SkError::kBadPadding);
  // Largest valid padding: everything is padding, no payloads.
  pt.back() = uint8_t(pt.size() - 1);
  wire = c->seal(auth_header(), PayloadType::kNone, pt);
  ASSERT_TRUE(wire);
  EXPECT_TRUE(c->unprotect(*wire, m).ok());
  // Padding that cuts into the payload chain -> the inner chain no longer decodes.
  Bytes inner;
  Writer w(inner);
  PayloadType first = encode_payloads(auth_payloads(), w);
  Bytes padded = inner;
  size_t extra = (c->block_len() - (padded.size() + 1) % c->block_len()) % c->block_len();
  padded.insert(padded.end(), extra, 0);
  padded.push_back(uint8_t(extra + (c->block_len() == 16 ? 16 : 3)));
  wire = c->seal(auth_header(), first, padded);
  ASSERT_TRUE(wire);
  SkResult r = c->unprotect(*wire, m);
  EXPECT_EQ(r.error, SkError::kInnerDecode);
  EXPECT_EQ(r.decode.notify(), NotifyType::kInvalidSyntax);
}

TEST_P(SkTest, LengthErrors) {
  Keys k = keys_for(GetParam());
  auto c = SkCrypter::make(k.suite, k.ke, k.ka);
  ASSERT_TRUE(c);
  // SK payload with only an IV and part of an ICV.
  Message m;
  m.hdr = auth_header();
  m.payloads.push_back(
      {PayloadType::kEncrypted, EncryptedPayload{PayloadType::kNone, Bytes(c->iv_len() + 4, 0)}});
  Message out;
  EXPECT_EQ(c->unprotect(encode_message(m), out).error, SkError::kBadLength);
  // No SK payload at all.
  m.payloads = {make_payload(NoncePayload{Bytes(16, 1)})};
  EXPECT_EQ(c->unprotect(encode_message(m), out).error, SkError::kNoSk);
  // Not a message.
  EXPECT_EQ(c->unprotect(Bytes(10, 0), out).error, SkError::kDecode);
  if (c->block_len() == 16) {
    // Ciphertext not a multiple of the block size.
    m.payloads = {{PayloadType::kEncrypted,
                   EncryptedPayload{PayloadType::kNone, Bytes(16 + 17 + c->icv_len(), 0)}}};
    EXPECT_EQ(c->unprotect(encode_message(m), out).error, SkError::kBadLength);
    EXPECT_FALSE(c->seal(auth_header(), PayloadType::kNone, Bytes(17, 0)));
  }
}

INSTANTIATE_TEST_SUITE_P(Ciphers, SkTest,
                         ::testing::Values("aes128gcm16-prfsha256-ecp256",
                                           "aes256gcm16-prfsha384-ecp384", "aes128-sha256-modp2048",
                                           "aes256-sha256-modp2048", "aes256-sha384-modp3072",
                                           "aes256-sha512-ecp521",
                                           "chacha20poly1305-prfsha256-x25519"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

// Independent check of the AEAD layout: decrypt with plain EVP, nonce = salt | IV,
// AAD = IKE header .. SK payload header.
TEST(Sk, AeadLayoutMatchesRfc5282And7634) {
  for (const char* name : {"aes256gcm16-prfsha384-ecp384", "chacha20poly1305-prfsha256-x25519"}) {
    Keys k = keys_for(name);
    auto c = SkCrypter::make(k.suite, k.ke, k.ka);
    ASSERT_TRUE(c);
    Bytes iv = hex("0001020304050607");
    Bytes pt = hex("2900000c 01000000 c0000201 00000008 00004000 00");  // IDi, N, Pad Length 0
    auto wire = c->seal(auth_header(), PayloadType::kIdi, pt, iv);
    ASSERT_TRUE(wire);
    ASSERT_EQ(wire->size(), 28 + 4 + 8 + pt.size() + 16);
    EXPECT_EQ(Bytes(wire->begin() + 32, wire->begin() + 40), iv);
    EXPECT_EQ((*wire)[16], uint8_t(PayloadType::kEncrypted));
    EXPECT_EQ((*wire)[28], uint8_t(PayloadType::kIdi));

    const EVP_CIPHER* cipher =
        k.suite.encr == encr::kAesGcm16 ? EVP_aes_256_gcm() : EVP_chacha20_poly1305();
    Bytes key(k.ke.data(), k.ke.data() + k.ke.size() - 4);
    Bytes nonce(k.ke.data() + k.ke.size() - 4, k.ke.data() + k.ke.size());
    nonce.insert(nonce.end(), iv.begin(), iv.end());
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    ASSERT_EQ(EVP_DecryptInit_ex(ctx, cipher, nullptr, nullptr, nullptr), 1);
    ASSERT_EQ(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, nullptr), 1);
    ASSERT_EQ(EVP_DecryptInit_ex(ctx, nullptr, nullptr, key.data(), nonce.data()), 1);
    int len = 0;
    ASSERT_EQ(EVP_DecryptUpdate(ctx, nullptr, &len, wire->data(), 32), 1);  // AAD
    Bytes out(pt.size());
    ASSERT_EQ(EVP_DecryptUpdate(ctx, out.data(), &len, wire->data() + 40, int(pt.size())), 1);
    ASSERT_EQ(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, wire->data() + wire->size() - 16),
              1);
    int fin = 0;
    EXPECT_EQ(EVP_DecryptFinal_ex(ctx, out.data() + len, &fin), 1) << name;
    EVP_CIPHER_CTX_free(ctx);
    EXPECT_EQ(out, pt) << name;
  }
}

// Independent check of the CBC layout: ICV = HMAC over everything before it, truncated.
TEST(Sk, CbcLayoutMatchesRfc7296) {
  Keys k = keys_for("aes256-sha384-modp2048");
  auto c = SkCrypter::make(k.suite, k.ke, k.ka);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->icv_len(), 24u);
  Bytes iv = hex("00112233445566778899aabbccddeeff");
  Bytes pt = hex("0000000c 01000000 c0000201 000000 03");  // IDi, 3 octets padding, Pad Length 3
  ASSERT_EQ(pt.size(), 16u);
  auto wire = c->seal(auth_header(), PayloadType::kIdi, pt, iv);
  ASSERT_TRUE(wire);
  ASSERT_EQ(wire->size(), 28 + 4 + 16 + 16 + 24u);
  uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned mlen = 0;
  HMAC(EVP_sha384(), k.ka.data(), int(k.ka.size()), wire->data(), wire->size() - 24, mac, &mlen);
  EXPECT_EQ(Bytes(mac, mac + 24), Bytes(wire->end() - 24, wire->end()));
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ASSERT_EQ(EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), nullptr, k.ke.data(), iv.data()), 1);
  EVP_CIPHER_CTX_set_padding(ctx, 0);
  Bytes out(16);
  int len = 0, fin = 0;
  ASSERT_EQ(EVP_DecryptUpdate(ctx, out.data(), &len, wire->data() + 48, 16), 1);
  ASSERT_EQ(EVP_DecryptFinal_ex(ctx, out.data() + len, &fin), 1);
  EVP_CIPHER_CTX_free(ctx);
  EXPECT_EQ(out, pt);
  Message m;
  ASSERT_TRUE(c->unprotect(*wire, m).ok());
  ASSERT_NE(m.idi(), nullptr);
  EXPECT_EQ(m.idi()->str(), "192.0.2.1");
}

TEST(Sk, MakeRejectsBadKeys) {
  Keys k = keys_for("aes128gcm16-prfsha256-ecp256");
  Bytes short_key(19, 1);
  EXPECT_FALSE(SkCrypter::make(k.suite, Secret(short_key.data(), short_key.size()), k.ka));
  Keys cbc = keys_for("aes256-sha256-modp2048");
  EXPECT_FALSE(SkCrypter::make(cbc.suite, cbc.ke, Secret()));
  Suite esp_gmac = *suite_of(*parse_proposal("aes128gmac", ProtocolId::kEsp));
  EXPECT_FALSE(SkCrypter::make(esp_gmac, k.ke, Secret()));
}

TEST(Sk, PairForBothRoles) {
  auto suite = *suite_of(*parse_proposal("aes256-sha256-modp2048", ProtocolId::kIke));
  IkeKeys keys;
  Bytes gir_b(256, 7);
  ASSERT_TRUE(derive_ike_keys(suite, Bytes(32, 1), Bytes(32, 2), Secret(gir_b.data(), gir_b.size()),
                              1, 2, keys));
  auto i = make_sk_pair(suite, keys, true);
  auto r = make_sk_pair(suite, keys, false);
  ASSERT_TRUE(i && r);
  auto req = i->out->protect(auth_header(), auth_payloads());
  ASSERT_TRUE(req);
  Message m;
  EXPECT_TRUE(r->in->unprotect(*req, m).ok());
  EXPECT_EQ(r->out->unprotect(*req, m).error, SkError::kIntegrity);  // wrong direction's keys
  Header rh = auth_header();
  rh.flags = kFlagResponse;
  auto resp =
      r->out->protect(rh, {make_payload(AuthPayload{AuthMethod::kSharedKeyMic, Bytes(32, 1)})});
  ASSERT_TRUE(resp);
  ASSERT_TRUE(i->in->unprotect(*resp, m).ok());
  EXPECT_TRUE(m.hdr.response());
  ASSERT_NE(m.auth(), nullptr);
}

}  // namespace
}  // namespace espgw::ike
