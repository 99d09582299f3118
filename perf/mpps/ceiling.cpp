#include "perf/mpps/ceiling.h"

#include <intel-ipsec-mb.h>
#include <rte_cycles.h>
#include <rte_launch.h>
#include <time.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "crypto/sa_crypto.h"
#include "dataplane/proto/esp.h"

namespace espgw::perf {
namespace {

constexpr unsigned kBurst = 32;
constexpr unsigned kWindowBursts = 256;
constexpr uint32_t kHdr = 8;  // SPI + sequence number

struct Args {
  crypto::Algo algo;
  bool encrypt;
  const std::vector<uint32_t>* ip_lens;
  double seconds;
  CeilingResult out;
};

// One job as the ESP engine builds it for a packet at `esp` (esp_jobs.cpp), minus the ESP framing
// work: the nonce/IV and AAD are fixed buffers, nothing is compared afterwards.
void fill_job(IMB_JOB* j, const crypto::SaCrypto& sa, bool enc, uint8_t* esp, uint32_t payload,
              const uint8_t* nonce, uint8_t* tag) {
  const uint32_t off = kHdr + sa.iv_len;
  j->cipher_direction = enc ? IMB_DIR_ENCRYPT : IMB_DIR_DECRYPT;
  j->chain_order = enc ? IMB_ORDER_CIPHER_HASH : IMB_ORDER_HASH_CIPHER;
  j->key_len_in_bytes = sa.key_len;
  j->src = esp;
  j->dst = esp + off;
  j->cipher_start_src_offset_in_bytes = off;
  j->msg_len_to_cipher_in_bytes = payload;
  j->hash_start_src_offset_in_bytes = off;
  j->msg_len_to_hash_in_bytes = payload;
  j->auth_tag_output = tag;
  j->auth_tag_output_len_in_bytes = sa.icv_len;
  j->user_data = nullptr;
  switch (sa.algo) {
    case crypto::Algo::kAesGcm128:
    case crypto::Algo::kAesGcm256:
      j->cipher_mode = IMB_CIPHER_GCM;
      j->hash_alg = IMB_AUTH_AES_GMAC;
      j->enc_keys = j->dec_keys = sa.keys.gcm.key_data;
      j->iv = nonce;
      j->iv_len_in_bytes = 12;
      j->u.GCM.aad = esp;  // SPI | seq, straight from the packet
      j->u.GCM.aad_len_in_bytes = 8;
      break;
    case crypto::Algo::kChacha20Poly1305:
      j->cipher_mode = IMB_CIPHER_CHACHA20_POLY1305;
      j->hash_alg = IMB_AUTH_CHACHA20_POLY1305;
      j->enc_keys = j->dec_keys = sa.keys.chacha.key;
      j->iv = nonce;
      j->iv_len_in_bytes = 12;
      j->u.CHACHA20_POLY1305.aad = esp;
      j->u.CHACHA20_POLY1305.aad_len_in_bytes = 8;
      j->u.CHACHA20_POLY1305.ctx = nullptr;
      break;
    default:  // AES-CBC + HMAC-SHA-2: HMAC over SPI | seq | IV | ciphertext
      j->cipher_mode = IMB_CIPHER_CBC;
      j->hash_alg = static_cast<IMB_HASH_ALG>(sa.hash_alg);
      j->enc_keys = sa.keys.cbc.enc;
      j->dec_keys = sa.keys.cbc.dec;
      j->iv = esp + kHdr;
      j->iv_len_in_bytes = 16;
      j->hash_start_src_offset_in_bytes = 0;
      j->msg_len_to_hash_in_bytes = kHdr + sa.iv_len + payload;
      j->u.HMAC._hashed_auth_key_xor_ipad = sa.keys.cbc.hmac.ipad;
      j->u.HMAC._hashed_auth_key_xor_opad = sa.keys.cbc.hmac.opad;
      break;
  }
}

int run(void* arg) {
  auto* a = static_cast<Args*>(arg);
  const auto& ai = crypto::info(a->algo);
  std::vector<uint8_t> km(ai.keymat_len());
  for (size_t i = 0; i < km.size(); ++i) km[i] = uint8_t(i * 37 + 11);
  auto sa = std::make_unique<crypto::SaCrypto>();
  if (!crypto::SaCrypto::init(*sa, a->algo, km.data(), km.size())) return -1;
  IMB_MGR* mgr = alloc_mb_mgr(0);
  if (!mgr) return -1;
  init_mb_mgr_auto(mgr, nullptr);

  const std::vector<uint32_t>& lens = *a->ip_lens;
  std::vector<uint32_t> payloads;
  uint32_t maxp = 0;
  for (uint32_t l : lens) {
    payloads.push_back(esp_payload_len(a->algo, l));
    maxp = std::max(maxp, payloads.back());
  }
  const size_t stride = (kHdr + 16 + maxp + 32 + 63) / 64 * 64;
  auto* mem = static_cast<uint8_t*>(std::aligned_alloc(64, stride * kBurst));
  std::memset(mem, 0x3c, stride * kBurst);
  for (unsigned i = 0; i < kBurst; ++i) mem[i * stride + 3] = 1;  // SPI
  alignas(16) uint8_t nonce[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  alignas(64) static thread_local uint8_t tags[kBurst][64];

  std::vector<double> windows;
  uint64_t total_cyc = 0, total_pkts = 0;
  size_t pos = 0;
  const uint64_t hz = rte_get_tsc_hz();
  const uint64_t end = rte_rdtsc() + uint64_t(a->seconds * double(hz));
  IMB_JOB* jobs[kBurst];
  auto thread_ns = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
  };
  while (rte_rdtsc() < end || windows.empty()) {
    const double cpu0 = thread_ns();
    const uint64_t t0 = rte_rdtsc();
    for (unsigned b = 0; b < kWindowBursts; ++b) {
      const unsigned n = IMB_GET_NEXT_BURST(mgr, kBurst, jobs);
      for (unsigned i = 0; i < n; ++i) {
        fill_job(jobs[i], *sa, a->encrypt, mem + i * stride, payloads[pos], nonce, tags[i]);
        if (++pos == payloads.size()) pos = 0;
      }
      unsigned done = IMB_SUBMIT_BURST_NOCHECK(mgr, n, jobs);
      while (done < n) done += IMB_FLUSH_BURST(mgr, n - done, jobs);
    }
    uint64_t c = rte_rdtsc() - t0;
    // On a shared core the window may include time this thread was preempted: count only the
    // share of it spent on the CPU (thread CPU clock), so the ceiling is the undisturbed cost.
    const double wall_ns = double(c) * 1e9 / double(hz);
    const double share = std::min(1.0, (thread_ns() - cpu0) / wall_ns);
    if (share > 0) c = uint64_t(double(c) * share);
    total_cyc += c;
    total_pkts += uint64_t(kWindowBursts) * kBurst;
    windows.push_back(double(c) / (kWindowBursts * kBurst));
  }
  std::sort(windows.begin(), windows.end());
  a->out.cyc_per_pkt_median = windows[windows.size() / 2];
  a->out.cyc_per_pkt_mean = double(total_cyc) / double(total_pkts);
  a->out.packets = total_pkts;
  a->out.ok = true;
  std::free(mem);
  free_mb_mgr(mgr);
  return 0;
}

}  // namespace

uint32_t esp_payload_len(crypto::Algo algo, uint32_t ip_len) {
  return ip_len + dp::esp_pad_len(ip_len, crypto::info(algo).block) + 2;
}

CeilingResult measure_ceiling(unsigned lcore, crypto::Algo algo, bool encrypt,
                              const std::vector<uint32_t>& ip_lens, double seconds) {
  Args a{algo, encrypt, &ip_lens, seconds, {}};
  if (rte_eal_remote_launch(run, &a, lcore) != 0) return {};
  rte_eal_wait_lcore(lcore);
  return a.out;
}

}  // namespace espgw::perf
