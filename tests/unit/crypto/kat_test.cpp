// Known-answer tests from tests/vectors/: whole ESP packets (draft-mcgrew-gcm-test-01, RFC 7634
// Appendix A) decrypted by the engine, the same packets rebuilt by the OpenSSL reference (which
// anchors the randomized cross-checks), and RFC 4868 HMAC-SHA-2 through the engine's HMAC job path.
#include <gtest/gtest.h>

#include "crypto/ipsecmb_engine.h"
#include "openssl_esp.h"
#include "test_util.h"
#include "vector_file.h"

namespace espgw::crypto::test {
namespace {

uint32_t be32(const std::vector<uint8_t>& v, size_t off) {
  return uint32_t{v[off]} << 24 | uint32_t{v[off + 1]} << 16 | uint32_t{v[off + 2]} << 8 |
         v[off + 3];
}

class EspKat : public ::testing::TestWithParam<const char*> {};

TEST_P(EspKat, EngineDecryptsAndReferenceReproduces) {
  auto engine = Engine::create();
  ASSERT_NE(engine, nullptr);
  const auto recs = read_vectors(GetParam());
  ASSERT_FALSE(recs.empty());
  for (const auto& r : recs) {
    SCOPED_TRACE(r.name);
    const auto algo = algo_by_name(r.str("algo"));
    ASSERT_TRUE(algo.has_value());
    const auto keymat = r.hex("keymat");
    const auto header = r.hex("header");
    const auto pt = r.hex("plaintext");
    const auto ct = r.hex("ciphertext");
    const bool esn = r.has("esn_hi");
    const uint32_t esn_hi = esn ? be32(r.hex("esn_hi"), 0) : 0;
    ASSERT_EQ(header.size(), 8u + info(*algo).iv_len);
    ASSERT_EQ(ct.size(), pt.size() + info(*algo).icv_len);

    std::vector<uint8_t> wire = header;
    wire.insert(wire.end(), ct.begin(), ct.end());

    // The OpenSSL reference builds exactly the published packet.
    RefEsp ref{*algo, keymat, be32(header, 0), be32(header, 4), esn_hi, esn,
               {header.begin() + 8, header.end()}};
    EXPECT_EQ(to_hex(openssl_esp_encrypt(ref, pt).data(), wire.size()),
              to_hex(wire.data(), wire.size()));

    auto sa = make_sa(*algo, keymat);
    ASSERT_NE(sa, nullptr);
    PacketBuf pkt(wire.size(), 0);
    pkt.assign(wire);
    EspOp op{sa.get(), pkt.esp(), static_cast<uint32_t>(pt.size()), esn_hi, esn};
    ASSERT_EQ(engine->decrypt_burst(&op, 1), 1u);
    EXPECT_EQ(op.status, kOk);
    auto got = pkt.bytes();
    EXPECT_EQ(to_hex(got.data() + header.size(), pt.size()), to_hex(pt.data(), pt.size()));
    EXPECT_TRUE(pkt.surroundings_intact());

    // Any flipped bit (header, IV, payload, ICV) and a wrong ESN high half must fail.
    for (size_t pos = 0; pos < wire.size(); pos += 7) {
      pkt.assign(wire);
      pkt.esp()[pos] ^= static_cast<uint8_t>(1u << (pos % 8));
      EspOp bad{sa.get(), pkt.esp(), static_cast<uint32_t>(pt.size()), esn_hi, esn};
      engine->decrypt_burst(&bad, 1);
      EXPECT_EQ(bad.status, kAuthFail) << "bit flip at byte " << pos;
    }
    if (esn) {
      pkt.assign(wire);
      EspOp bad{sa.get(), pkt.esp(), static_cast<uint32_t>(pt.size()), esn_hi + 1, true};
      engine->decrypt_burst(&bad, 1);
      EXPECT_EQ(bad.status, kAuthFail);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Vectors, EspKat,
                         ::testing::Values("esp_gcm_mcgrew.txt", "esp_chacha_rfc7634.txt"));

TEST(HmacKat, Rfc4868FullAndTruncated) {
  auto engine = Engine::create();
  ASSERT_NE(engine, nullptr);
  const auto recs = read_vectors("hmac_sha2_rfc4868.txt");
  ASSERT_GE(recs.size(), 10u);
  for (const auto& r : recs) {
    SCOPED_TRACE(r.name);
    const int bits = std::stoi(r.str("sha"));
    const Sha2 sha = bits == 256 ? Sha2::k256 : bits == 384 ? Sha2::k384 : Sha2::k512;
    const auto key = r.hex("key");
    const auto data = r.hex("data");
    const auto mac = r.hex("mac");
    HmacKey hk;
    ASSERT_TRUE(HmacKey::init(hk, sha, key.data(), key.size()));
    std::vector<uint8_t> out(mac.size());
    ASSERT_TRUE(engine->hmac(hk, data.data(), data.size(), out.data(), out.size()));
    EXPECT_EQ(to_hex(out.data(), out.size()), to_hex(mac.data(), mac.size()));
    if (r.has("icv")) {
      const size_t icv = std::stoul(r.str("icv"));
      std::vector<uint8_t> t(icv);
      ASSERT_TRUE(engine->hmac(hk, data.data(), data.size(), t.data(), t.size()));
      EXPECT_EQ(to_hex(t.data(), icv), to_hex(mac.data(), icv));
    }
    EXPECT_EQ(to_hex(openssl_hmac(bits, key, data).data(), mac.size()),
              to_hex(mac.data(), mac.size()));
  }
}

}  // namespace
}  // namespace espgw::crypto::test
