// Randomized cross-checks of every algorithm against OpenSSL 3: the engine encrypts a burst of
// packets of many lengths (0..9000 bytes, unaligned, ESN on and off), OpenSSL builds the same packets
// from the same IVs and they must match byte for byte; the engine then decrypts them back, and a
// single flipped bit anywhere makes verification fail.
#include <gtest/gtest.h>

#include "crypto/ipsecmb_engine.h"
#include "openssl_esp.h"
#include "test_util.h"
#include "vector_file.h"

namespace espgw::crypto::test {
namespace {

const size_t kLengths[] = {0,   1,   2,   3,   4,   7,   8,   15,   16,   17,   31,   32,
                           33,  48,  63,  64,  65,  127, 128, 129,  255,  256,  257,  511,
                           512, 513, 1000, 1420, 1500, 2048, 4095, 4096, 8191, 8192, 9000};

std::vector<size_t> lengths_for(Algo a) {
  std::vector<size_t> out;
  const size_t blk = info(a).aead ? 1 : 16;
  for (size_t l : kLengths) {
    size_t r = (l + blk - 1) / blk * blk;
    if (!info(a).aead && r == 0) r = 16;
    if (out.empty() || out.back() != r) out.push_back(r);
  }
  return out;
}

class CrossCheck : public ::testing::TestWithParam<Algo> {};

TEST_P(CrossCheck, MatchesOpenSslAndRoundTrips) {
  const Algo algo = GetParam();
  const AlgoInfo& ai = info(algo);
  auto engine = Engine::create();
  ASSERT_NE(engine, nullptr);
  std::mt19937 rng(static_cast<uint32_t>(algo) * 7919u + 1u);

  for (int round = 0; round < 2; ++round) {
    const auto keymat = random_bytes(rng, ai.keymat_len());
    auto sa = make_sa(algo, keymat);
    ASSERT_NE(sa, nullptr);
    for (bool esn : {false, true}) {
      for (size_t misalign : {size_t{0}, size_t{1}, size_t{3}}) {
        SCOPED_TRACE(::testing::Message() << ai.name << " round " << round << " esn " << esn
                                          << " misalign " << misalign);
        const auto lens = lengths_for(algo);
        std::vector<PacketBuf> bufs;
        std::vector<std::vector<uint8_t>> pts;
        std::vector<EspOp> ops;
        const uint32_t spi = static_cast<uint32_t>(rng());
        const uint32_t hi = esn ? static_cast<uint32_t>(rng()) : static_cast<uint32_t>(rng() & 1);
        uint32_t seq = static_cast<uint32_t>(rng());
        bufs.reserve(lens.size());
        for (size_t l : lens) {
          bufs.emplace_back(8 + ai.iv_len + l + ai.icv_len, misalign);
          pts.push_back(random_bytes(rng, l));
          uint8_t* e = bufs.back().esp();
          put_be32(e, spi);
          put_be32(e + 4, seq++);
          std::memcpy(e + 8 + ai.iv_len, pts.back().data(), l);
          ops.push_back({sa.get(), e, static_cast<uint32_t>(l), hi, esn});
        }
        ASSERT_EQ(engine->encrypt_burst(ops.data(), static_cast<unsigned>(ops.size())), ops.size());

        for (size_t i = 0; i < ops.size(); ++i) {
          SCOPED_TRACE(::testing::Message() << "payload_len " << lens[i]);
          EXPECT_EQ(ops[i].status, kOk);
          const auto wire = bufs[i].bytes();
          const uint32_t seq_i = uint32_t{wire[4]} << 24 | uint32_t{wire[5]} << 16 |
                                 uint32_t{wire[6]} << 8 | wire[7];
          RefEsp ref{algo, keymat, spi, seq_i, hi, esn,
                     {wire.begin() + 8, wire.begin() + 8 + ai.iv_len}};
          if (ai.aead) {  // explicit IV is the 64-bit sequence number
            uint8_t want[8];
            put_be32(want, hi);
            put_be32(want + 4, seq_i);
            EXPECT_EQ(to_hex(ref.iv.data(), 8), to_hex(want, 8));
          }
          const auto expect = openssl_esp_encrypt(ref, pts[i]);
          ASSERT_EQ(expect.size(), wire.size());
          EXPECT_EQ(to_hex(wire.data(), wire.size()), to_hex(expect.data(), expect.size()));
          EXPECT_TRUE(bufs[i].surroundings_intact());
        }

        // Decrypt the whole burst back.
        std::vector<std::vector<uint8_t>> wires;
        for (auto& b : bufs) wires.push_back(b.bytes());
        ASSERT_EQ(engine->decrypt_burst(ops.data(), static_cast<unsigned>(ops.size())), ops.size());
        for (size_t i = 0; i < ops.size(); ++i) {
          SCOPED_TRACE(::testing::Message() << "payload_len " << lens[i]);
          EXPECT_EQ(ops[i].status, kOk);
          const auto got = bufs[i].bytes();
          EXPECT_EQ(to_hex(got.data() + 8 + ai.iv_len, lens[i]), to_hex(pts[i].data(), lens[i]));
          // ICV area and header are left as received.
          EXPECT_EQ(to_hex(got.data(), 8 + ai.iv_len), to_hex(wires[i].data(), 8 + ai.iv_len));
          EXPECT_EQ(to_hex(got.data() + got.size() - ai.icv_len, ai.icv_len),
                    to_hex(wires[i].data() + got.size() - ai.icv_len, ai.icv_len));
          EXPECT_TRUE(bufs[i].surroundings_intact());
        }

        // One flipped bit anywhere in the packet -> authentication failure, for the whole burst.
        for (size_t i = 0; i < ops.size(); ++i) {
          bufs[i].assign(wires[i]);
          const size_t pos = rng() % wires[i].size();
          bufs[i].esp()[pos] ^= static_cast<uint8_t>(1u << (rng() % 8));
        }
        EXPECT_EQ(engine->decrypt_burst(ops.data(), static_cast<unsigned>(ops.size())), 0u);
        for (size_t i = 0; i < ops.size(); ++i) {
          EXPECT_EQ(ops[i].status, kAuthFail) << "payload_len " << lens[i];
          EXPECT_TRUE(bufs[i].surroundings_intact());
        }
        // With ESN, the unsent high half is authenticated too.
        if (esn) {
          for (size_t i = 0; i < ops.size(); ++i) {
            bufs[i].assign(wires[i]);
            ops[i].esn_hi = hi ^ 0x80000000u;
          }
          EXPECT_EQ(engine->decrypt_burst(ops.data(), static_cast<unsigned>(ops.size())), 0u);
          for (auto& op : ops) EXPECT_EQ(op.status, kAuthFail);
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllAlgorithms, CrossCheck,
                         ::testing::Values(Algo::kAesGcm128, Algo::kAesGcm256,
                                           Algo::kAesCbc128Sha256, Algo::kAesCbc256Sha256,
                                           Algo::kAesCbc256Sha384, Algo::kAesCbc256Sha512,
                                           Algo::kChacha20Poly1305, Algo::kAesGmac128,
                                           Algo::kAesGmac256),
                         [](const ::testing::TestParamInfo<Algo>& p) {
                           std::string n(espgw::crypto::info(p.param).name);
                           for (auto& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace espgw::crypto::test
