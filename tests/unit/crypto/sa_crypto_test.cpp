// SaCrypto set-up: key material validation, wiping, CBC IV properties, engine start-up.
#include <gtest/gtest.h>

#include <set>

#include "crypto/ct.h"
#include "crypto/ipsecmb_engine.h"
#include "test_util.h"
#include "vector_file.h"

namespace espgw::crypto::test {
namespace {

TEST(SaCrypto, RejectsWrongKeyLength) {
  for (const auto& ai : kAlgos) {
    std::vector<uint8_t> km(ai.keymat_len() + 1, 0x11);
    SaCrypto sa;
    EXPECT_FALSE(SaCrypto::init(sa, ai.algo, km.data(), km.size() - 2)) << ai.name;
    EXPECT_FALSE(SaCrypto::init(sa, ai.algo, km.data(), km.size())) << ai.name;
    EXPECT_FALSE(sa.valid());
    EXPECT_TRUE(SaCrypto::init(sa, ai.algo, km.data(), ai.keymat_len())) << ai.name;
    EXPECT_TRUE(sa.valid());
    EXPECT_EQ(sa.icv_len, ai.icv_len);
    EXPECT_EQ(sa.iv_len, ai.iv_len);
  }
}

TEST(SaCrypto, WipeClearsKeysAndDisablesSa) {
  std::vector<uint8_t> km(info(Algo::kAesCbc256Sha512).keymat_len(), 0x5a);
  SaCrypto sa;
  ASSERT_TRUE(SaCrypto::init(sa, Algo::kAesCbc256Sha512, km.data(), km.size()));
  sa.wipe();
  EXPECT_FALSE(sa.valid());
  const auto* p = reinterpret_cast<const uint8_t*>(&sa.keys);
  for (size_t i = 0; i < sizeof sa.keys; ++i) ASSERT_EQ(p[i], 0) << i;

  auto engine = Engine::create();
  ASSERT_NE(engine, nullptr);
  PacketBuf b(8 + 16 + 32 + 32, 0);
  EspOp op{&sa, b.esp(), 32, 0, false};
  EXPECT_EQ(engine->encrypt_burst(&op, 1), 0u);
  EXPECT_EQ(op.status, kError);
}

TEST(SaCrypto, CbcIvsAreDistinctAndKeyedPerSa) {
  auto engine = Engine::create();
  ASSERT_NE(engine, nullptr);
  std::vector<uint8_t> km(info(Algo::kAesCbc128Sha256).keymat_len(), 0x42);
  auto a = make_sa(Algo::kAesCbc128Sha256, km);
  auto b = make_sa(Algo::kAesCbc128Sha256, km);  // same keys, independent IV key
  std::set<std::string> seen;
  for (uint32_t seq = 1; seq <= 200; ++seq) {
    for (auto* sa : {a.get(), b.get()}) {
      PacketBuf p(8 + 16 + 16 + 16, 0);
      put_be32(p.esp(), 9);
      put_be32(p.esp() + 4, seq);
      EspOp op{sa, p.esp(), 16, 0, false};
      ASSERT_EQ(engine->encrypt_burst(&op, 1), 1u);
      EXPECT_TRUE(seen.insert(to_hex(p.esp() + 8, 16)).second) << "IV repeated";
    }
  }
}

TEST(Engine, ReportsArchitecture) {
  auto engine = Engine::create();
  ASSERT_NE(engine, nullptr);
  const std::string arch = engine->arch();
  EXPECT_TRUE(arch == "AVX512" || arch == "AVX2" || arch == "AVX" || arch == "SSE") << arch;
}

TEST(ConstantTime, Compare) {
  const uint8_t a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 5};
  EXPECT_TRUE(ct_equal(a, a, 4));
  EXPECT_FALSE(ct_equal(a, b, 4));
  EXPECT_TRUE(ct_equal(a, b, 3));
  EXPECT_TRUE(ct_equal(a, b, 0));
}

}  // namespace
}  // namespace espgw::crypto::test
