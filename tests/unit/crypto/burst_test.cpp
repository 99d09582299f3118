// Bursts that mix SAs and algorithms in one engine call, longer than one IPsec-MB chunk, with
// invalid ops interleaved: every valid op must come out right and invalid ones flagged kError.
#include <gtest/gtest.h>

#include "crypto/ipsecmb_engine.h"
#include "openssl_esp.h"
#include "test_util.h"
#include "vector_file.h"

namespace espgw::crypto::test {
namespace {

TEST(MixedBurst, ManySasAndAlgorithmsInOneCall) {
  auto engine = Engine::create();
  ASSERT_NE(engine, nullptr);
  std::mt19937 rng(4242);
  std::vector<std::unique_ptr<SaCrypto>> sas;
  std::vector<std::vector<uint8_t>> keymats;
  for (const auto& ai : kAlgos) {
    keymats.push_back(random_bytes(rng, ai.keymat_len()));
    sas.push_back(make_sa(ai.algo, keymats.back()));
    ASSERT_NE(sas.back(), nullptr);
  }

  const unsigned n = Engine::kMaxChunk * 2 + 37;  // crosses chunk boundaries
  std::vector<PacketBuf> bufs;
  std::vector<std::vector<uint8_t>> pts;
  std::vector<EspOp> ops;
  std::vector<size_t> which;
  std::vector<bool> valid;
  bufs.reserve(n);
  for (unsigned i = 0; i < n; ++i) {
    const size_t k = rng() % sas.size();
    const AlgoInfo& ai = kAlgos[k];
    size_t len = rng() % 1600;
    if (!ai.aead) len = (len / 16 + 1) * 16;
    bool ok = true;
    if (i % 29 == 5 && !ai.aead) {  // CBC payload not a multiple of the block: rejected
      len += 3;
      ok = false;
    }
    bufs.emplace_back(8 + ai.iv_len + len + ai.icv_len, i % 4);
    pts.push_back(random_bytes(rng, len));
    uint8_t* e = bufs.back().esp();
    put_be32(e, 0x1000u + static_cast<uint32_t>(k));
    put_be32(e + 4, i + 1);
    std::memcpy(e + 8 + ai.iv_len, pts.back().data(), len);
    const bool esn = (i & 1) != 0;
    ops.push_back({sas[k].get(), e, static_cast<uint32_t>(len), esn ? 7u : 0u, esn});
    if (i % 31 == 17) {  // op without an SA
      ops.back().sa = nullptr;
      ok = false;
    }
    which.push_back(k);
    valid.push_back(ok);
  }
  const unsigned want = static_cast<unsigned>(std::count(valid.begin(), valid.end(), true));
  ASSERT_LT(want, n);

  EXPECT_EQ(engine->encrypt_burst(ops.data(), n), want);
  std::vector<std::vector<uint8_t>> wires;
  for (unsigned i = 0; i < n; ++i) {
    SCOPED_TRACE(i);
    wires.push_back(bufs[i].bytes());
    if (!valid[i]) {
      EXPECT_EQ(ops[i].status, kError);
      continue;
    }
    ASSERT_EQ(ops[i].status, kOk);
    const AlgoInfo& ai = kAlgos[which[i]];
    RefEsp ref{ai.algo, keymats[which[i]], 0x1000u + static_cast<uint32_t>(which[i]), i + 1,
               ops[i].esn_hi, ops[i].esn,
               {wires[i].begin() + 8, wires[i].begin() + 8 + ai.iv_len}};
    const auto expect = openssl_esp_encrypt(ref, pts[i]);
    EXPECT_EQ(to_hex(wires[i].data(), wires[i].size()), to_hex(expect.data(), expect.size()));
  }

  // Tamper with every third valid packet, then decrypt the whole mixed burst at once.
  unsigned tampered = 0;
  for (unsigned i = 0; i < n; ++i) {
    if (valid[i] && i % 3 == 0) {
      bufs[i].esp()[rng() % wires[i].size()] ^= 0x10;
      ++tampered;
    }
  }
  EXPECT_EQ(engine->decrypt_burst(ops.data(), n), want - tampered);
  for (unsigned i = 0; i < n; ++i) {
    SCOPED_TRACE(i);
    if (!valid[i]) {
      EXPECT_EQ(ops[i].status, kError);
    } else if (i % 3 == 0) {
      EXPECT_EQ(ops[i].status, kAuthFail);
    } else {
      ASSERT_EQ(ops[i].status, kOk);
      const size_t off = 8 + kAlgos[which[i]].iv_len;
      EXPECT_EQ(to_hex(bufs[i].esp() + off, pts[i].size()), to_hex(pts[i].data(), pts[i].size()));
    }
    EXPECT_TRUE(bufs[i].surroundings_intact());
  }
}

// An op the engine never gets to finish (e.g. a flush that returns early) must not count as done.
TEST(MixedBurst, OpStatusDefaultsToError) {
  EspOp op;
  EXPECT_EQ(op.status, kError);
}

TEST(MixedBurst, EmptyBurstAndRepeatedUse) {
  auto engine = Engine::create();
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->encrypt_burst(nullptr, 0), 0u);
  EXPECT_EQ(engine->decrypt_burst(nullptr, 0), 0u);
  std::mt19937 rng(1);
  auto keymat = random_bytes(rng, info(Algo::kAesGcm128).keymat_len());
  auto sa = make_sa(Algo::kAesGcm128, keymat);
  for (int i = 0; i < 1000; ++i) {  // the manager's queue must be drained after every call
    PacketBuf b(8 + 8 + 64 + 16, 0);
    put_be32(b.esp(), 1);
    put_be32(b.esp() + 4, static_cast<uint32_t>(i));
    EspOp op{sa.get(), b.esp(), 64, 0, false};
    ASSERT_EQ(engine->encrypt_burst(&op, 1), 1u);
    ASSERT_EQ(engine->decrypt_burst(&op, 1), 1u);
  }
}

}  // namespace
}  // namespace espgw::crypto::test
