// ESP engine cost per packet versus the raw IPsec-MB ceiling, bursts of 32 packets.
//
//   engine/<algo>/<enc|dec>/<payload>  Engine::encrypt_burst / decrypt_burst on ESP packets
//   raw/<algo>/<enc|dec>/<payload>     the same cipher+auth jobs submitted straight to IPsec-MB
//                                      (same key schedules, one get/submit/flush burst, no ESP
//                                      framing: no IV/nonce/AAD construction, no ICV compare)
// Counters: cyc/pkt = mean TSC cycles per packet (rdtsc around each burst call; on a shared machine
// this includes preemption), cyc/pkt_min = the fastest burst / 32, a robust estimate of the
// undisturbed cost. The engine/raw ratio is the ESP framing overhead. CBC payloads are rounded up to the AES block (1420 -> 1424).
// Decrypt iterations reuse the same buffers, so after the first pass the ICV no longer matches;
// the work done (hash + decrypt + compare) is the same either way.
#include <benchmark/benchmark.h>
#include <intel-ipsec-mb.h>
#include <x86intrin.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "crypto/ipsecmb_engine.h"
#include "crypto/sa_crypto.h"

namespace espgw::crypto {
namespace {

constexpr unsigned kBurst = 32;

uint32_t payload_for(Algo a, uint32_t size) {
  return info(a).aead ? size : (size + 15) / 16 * 16;
}

std::unique_ptr<SaCrypto> bench_sa(Algo a) {
  std::vector<uint8_t> km(info(a).keymat_len());
  for (size_t i = 0; i < km.size(); ++i) km[i] = static_cast<uint8_t>(i * 37 + 11);
  auto sa = std::make_unique<SaCrypto>();
  if (!SaCrypto::init(*sa, a, km.data(), km.size())) return nullptr;
  return sa;
}

struct Packets {
  Packets(const SaCrypto& sa, uint32_t payload) {
    const size_t len = 8 + sa.iv_len + payload + sa.icv_len;
    for (unsigned i = 0; i < kBurst; ++i) {
      bufs.emplace_back(len + 64, static_cast<uint8_t>(i));
      uint8_t* esp = bufs.back().data() + 32;
      esp[3] = 1;
      ops[i] = EspOp{&sa, esp, payload, 0, false};
    }
  }
  std::vector<std::vector<uint8_t>> bufs;
  EspOp ops[kBurst];
};

struct Cycles {
  void add(uint64_t c) {
    total += c;
    if (c < min) min = c;
  }
  uint64_t total = 0;
  uint64_t min = ~uint64_t{0};
};

void report(benchmark::State& state, const Cycles& cycles, uint32_t payload) {
  const double pkts = static_cast<double>(state.iterations()) * kBurst;
  state.counters["cyc/pkt"] = benchmark::Counter(static_cast<double>(cycles.total) / pkts);
  state.counters["cyc/pkt_min"] = benchmark::Counter(static_cast<double>(cycles.min) / kBurst);
  state.SetBytesProcessed(static_cast<int64_t>(pkts) * payload);
  state.SetItemsProcessed(static_cast<int64_t>(pkts));
}

void bm_engine(benchmark::State& state, Algo algo, bool enc, uint32_t size) {
  auto engine = Engine::create(false);
  auto sa = bench_sa(algo);
  if (!engine || !sa) {
    state.SkipWithError("engine/SA setup failed");
    return;
  }
  const uint32_t payload = payload_for(algo, size);
  Packets p(*sa, payload);
  engine->encrypt_burst(p.ops, kBurst);  // valid packets for the first decrypt pass
  Cycles cycles;
  uint32_t seq = 1;
  for (auto _ : state) {
    if (enc) {
      for (auto& op : p.ops) {  // fresh sequence numbers, as the data plane would write them
        op.esp[7] = static_cast<uint8_t>(seq);
        op.esp[6] = static_cast<uint8_t>(seq >> 8);
        ++seq;
      }
    }
    const uint64_t t0 = __rdtsc();
    const unsigned ok = enc ? engine->encrypt_burst(p.ops, kBurst) : engine->decrypt_burst(p.ops, kBurst);
    cycles.add(__rdtsc() - t0);
    benchmark::DoNotOptimize(ok);
  }
  report(state, cycles, payload);
}

// --- raw IPsec-MB ceiling -------------------------------------------------------------------------

struct RawMgr {
  RawMgr() {
    mgr = alloc_mb_mgr(0);
    if (mgr != nullptr) init_mb_mgr_auto(mgr, nullptr);
  }
  ~RawMgr() {
    if (mgr != nullptr) free_mb_mgr(mgr);
  }
  IMB_MGR* mgr;
};

void fill_raw_job(IMB_JOB* j, const SaCrypto& sa, bool enc, uint8_t* buf, uint32_t len,
                  const uint8_t* iv, const uint8_t* aad, uint8_t* tag) {
  j->cipher_direction = enc ? IMB_DIR_ENCRYPT : IMB_DIR_DECRYPT;
  j->chain_order = enc ? IMB_ORDER_CIPHER_HASH : IMB_ORDER_HASH_CIPHER;
  j->key_len_in_bytes = sa.key_len;
  j->src = buf;
  j->dst = buf;
  j->cipher_start_src_offset_in_bytes = 0;
  j->msg_len_to_cipher_in_bytes = len;
  j->hash_start_src_offset_in_bytes = 0;
  j->msg_len_to_hash_in_bytes = len;
  j->iv = iv;
  j->iv_len_in_bytes = 12;
  j->auth_tag_output = tag;
  j->auth_tag_output_len_in_bytes = sa.icv_len;
  switch (sa.algo) {
    case Algo::kAesGcm128:
    case Algo::kAesGcm256:
      j->cipher_mode = IMB_CIPHER_GCM;
      j->hash_alg = IMB_AUTH_AES_GMAC;
      j->enc_keys = j->dec_keys = sa.keys.gcm.key_data;
      j->u.GCM.aad = aad;
      j->u.GCM.aad_len_in_bytes = 8;
      break;
    case Algo::kChacha20Poly1305:
      j->cipher_mode = IMB_CIPHER_CHACHA20_POLY1305;
      j->hash_alg = IMB_AUTH_CHACHA20_POLY1305;
      j->enc_keys = j->dec_keys = sa.keys.chacha.key;
      j->u.CHACHA20_POLY1305.aad = aad;
      j->u.CHACHA20_POLY1305.aad_len_in_bytes = 8;
      j->u.CHACHA20_POLY1305.ctx = nullptr;
      break;
    case Algo::kAesGmac128:
    case Algo::kAesGmac256:
      j->cipher_mode = IMB_CIPHER_NULL;
      j->hash_alg = static_cast<IMB_HASH_ALG>(sa.hash_alg);
      j->msg_len_to_cipher_in_bytes = 0;
      j->u.GMAC._key = reinterpret_cast<const gcm_key_data*>(sa.keys.gcm.key_data);
      j->u.GMAC._iv = iv;
      j->u.GMAC.iv_len_in_bytes = 12;
      break;
    default:
      j->cipher_mode = IMB_CIPHER_CBC;
      j->hash_alg = static_cast<IMB_HASH_ALG>(sa.hash_alg);
      j->enc_keys = sa.keys.cbc.enc;
      j->dec_keys = sa.keys.cbc.dec;
      j->iv_len_in_bytes = 16;
      j->u.HMAC._hashed_auth_key_xor_ipad = sa.keys.cbc.hmac.ipad;
      j->u.HMAC._hashed_auth_key_xor_opad = sa.keys.cbc.hmac.opad;
      break;
  }
}

void bm_raw(benchmark::State& state, Algo algo, bool enc, uint32_t size) {
  RawMgr m;
  auto sa = bench_sa(algo);
  if (m.mgr == nullptr || !sa) {
    state.SkipWithError("IPsec-MB setup failed");
    return;
  }
  const uint32_t len = payload_for(algo, size);
  std::vector<std::vector<uint8_t>> bufs(kBurst, std::vector<uint8_t>(len + 64, 0x3c));
  alignas(16) uint8_t iv[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  alignas(16) uint8_t aad[8] = {0, 0, 0, 1, 0, 0, 0, 2};
  alignas(64) uint8_t tags[kBurst][64];
  IMB_JOB* jobs[kBurst];
  Cycles cycles;
  for (auto _ : state) {
    const uint64_t t0 = __rdtsc();
    const unsigned n = IMB_GET_NEXT_BURST(m.mgr, kBurst, jobs);
    for (unsigned i = 0; i < n; ++i)
      fill_raw_job(jobs[i], *sa, enc, bufs[i].data(), len, iv, aad, tags[i]);
    unsigned done = IMB_SUBMIT_BURST_NOCHECK(m.mgr, n, jobs);
    while (done < n) done += IMB_FLUSH_BURST(m.mgr, n - done, jobs);
    cycles.add(__rdtsc() - t0);
    benchmark::DoNotOptimize(tags);
  }
  report(state, cycles, len);
}

}  // namespace
}  // namespace espgw::crypto

int main(int argc, char** argv) {
  using namespace espgw::crypto;
  for (const auto& ai : kAlgos) {
    for (bool enc : {true, false}) {
      for (uint32_t size : {64u, 512u, 1420u}) {
        const std::string suffix = std::string(ai.name) + (enc ? "/enc/" : "/dec/") + std::to_string(size);
        const Algo a = ai.algo;
        benchmark::RegisterBenchmark(("engine/" + suffix).c_str(),
                                     [a, enc, size](benchmark::State& s) { bm_engine(s, a, enc, size); });
        benchmark::RegisterBenchmark(("raw/" + suffix).c_str(),
                                     [a, enc, size](benchmark::State& s) { bm_raw(s, a, enc, size); });
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
