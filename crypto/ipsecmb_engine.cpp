#include "crypto/ipsecmb_engine.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "crypto/ct.h"
#include "crypto/internal/esp_jobs.h"

namespace espgw::crypto {

namespace {

const char* arch_name(uint32_t arch) {
  switch (arch) {
    case IMB_ARCH_NOAESNI: return "NOAESNI";
    case IMB_ARCH_SSE: return "SSE";
    case IMB_ARCH_AVX: return "AVX";
    case IMB_ARCH_AVX2: return "AVX2";
    case IMB_ARCH_AVX512: return "AVX512";
    default: return "unknown";
  }
}


}  // namespace

std::unique_ptr<Engine> Engine::create(bool check_jobs) {
  IMB_MGR* km = internal::key_mgr();
  if (km == nullptr) return nullptr;
  IMB_MGR* m = alloc_mb_mgr(0);
  if (m == nullptr) return nullptr;
  init_mb_mgr_auto(m, nullptr);
  if (imb_get_errno(m) != 0 || m->used_arch != km->used_arch) {
    free_mb_mgr(m);
    return nullptr;
  }
  void* mem = std::aligned_alloc(alignof(Scratch), sizeof(Scratch) * kMaxChunk);
  if (mem == nullptr) {
    free_mb_mgr(m);
    return nullptr;
  }
  std::unique_ptr<Engine> e(new (std::nothrow) Engine);
  if (!e) {
    std::free(mem);
    free_mb_mgr(m);
    return nullptr;
  }
  e->mgr_ = m;
  e->scratch_ = static_cast<Scratch*>(mem);
  std::memset(e->scratch_, 0, sizeof(Scratch) * kMaxChunk);
  e->check_jobs_ = check_jobs;
  e->submit_ = check_jobs ? m->submit_burst : m->submit_burst_nocheck;
  return e;
}

Engine::~Engine() {
  if (scratch_ != nullptr) {
    secure_wipe(scratch_, sizeof(Scratch) * kMaxChunk);  // may hold a copy of a received ICV
    std::free(scratch_);
  }
  if (mgr_ != nullptr) free_mb_mgr(mgr_);
}

const char* Engine::version() { return imb_get_version_str(); }

const char* Engine::arch() const { return arch_name(mgr_->used_arch); }

unsigned Engine::encrypt_burst(EspOp* ops, unsigned n) { return run<true>(ops, n); }
unsigned Engine::decrypt_burst(EspOp* ops, unsigned n) { return run<false>(ops, n); }

template <bool kEncrypt>
unsigned Engine::run(EspOp* ops, unsigned n) {
  unsigned ok = 0;
  while (n > 0) {
    const unsigned c = n < kMaxChunk ? n : kMaxChunk;
    ok += run_chunk<kEncrypt>(ops, c);
    ops += c;
    n -= c;
  }
  return ok;
}

// One pass over the chunk: validate and build a job per op, one burst submission, then drain with
// flush calls (the queue is always empty between chunks, so IMB_GET_NEXT_BURST yields every slot).
template <bool kEncrypt>
unsigned Engine::run_chunk(EspOp* ops, unsigned n) {
  IMB_JOB* jobs[kMaxChunk];
  const unsigned avail = IMB_GET_NEXT_BURST(mgr_, n, jobs);
  unsigned m = 0;
  for (unsigned i = 0; i < n; ++i) {
    EspOp& op = ops[i];
    const SaCrypto* sa = op.sa;
    if (m == avail || sa == nullptr || sa->impl == nullptr || op.esp == nullptr ||
        op.payload_len > kMaxPayload || (op.payload_len & (sa->cipher_block - 1u)) != 0) {
      op.status = kError;
      continue;
    }
    IMB_JOB* job = jobs[m];
    Scratch& s = scratch_[m];
    const bool built = kEncrypt ? sa->impl->prep_encrypt(mgr_, job, op, s)
                                : sa->impl->prep_decrypt(mgr_, job, op, s);
    if (!built) {
      op.status = kError;
      continue;
    }
    job->user_data = &op;
    job->user_data2 = &s;
    ++m;
  }
  if (m == 0) return 0;

  unsigned ok = 0;
  auto complete = [&ok](IMB_JOB* const* done, unsigned k) {
    for (unsigned j = 0; j < k; ++j) {
      const IMB_JOB* job = done[j];
      EspOp& op = *static_cast<EspOp*>(job->user_data);
      Scratch& s = *static_cast<Scratch*>(job->user_data2);
      uint8_t st = kEncrypt ? op.sa->impl->finish_encrypt(op, s) : op.sa->impl->finish_decrypt(op, s);
      if (job->status != IMB_STATUS_COMPLETED) st = kError;
      op.status = st;
      ok += st == kOk;
    }
  };

  unsigned done = submit_(mgr_, m, jobs);
  if (done == 0 && check_jobs_ && imb_get_errno(mgr_) != 0) {
    // The validating entry point rejected the burst before processing anything: undo the
    // temporary packet edits of every prepared job and fail them all.
    IMB_JOB* prepared[kMaxChunk];
    std::memcpy(prepared, jobs, sizeof(IMB_JOB*) * m);
    for (unsigned j = 0; j < m; ++j) prepared[j]->status = IMB_STATUS_INVALID_ARGS;
    complete(prepared, m);
    return 0;
  }
  complete(jobs, done);
  unsigned total = done;
  while (total < m) {
    done = IMB_FLUSH_BURST(mgr_, m - total, jobs);
    if (done == 0) break;  // cannot happen with a consistent queue; avoid spinning forever
    complete(jobs, done);
    total += done;
  }
  return ok;
}

bool Engine::hmac(const HmacKey& key, const uint8_t* data, size_t len, uint8_t* out,
                  size_t out_len) {
  static const uint8_t kEmpty[1] = {};
  if (data == nullptr) data = kEmpty;
  IMB_JOB* job = IMB_GET_NEXT_JOB(mgr_);
  job->cipher_mode = IMB_CIPHER_NULL;
  job->cipher_direction = IMB_DIR_ENCRYPT;
  job->chain_order = IMB_ORDER_HASH_CIPHER;
  job->hash_alg = key.sha == Sha2::k256   ? IMB_AUTH_HMAC_SHA_256
                  : key.sha == Sha2::k384 ? IMB_AUTH_HMAC_SHA_384
                                          : IMB_AUTH_HMAC_SHA_512;
  job->src = data;
  job->dst = const_cast<uint8_t*>(data);
  job->cipher_start_src_offset_in_bytes = 0;
  job->msg_len_to_cipher_in_bytes = 0;
  job->hash_start_src_offset_in_bytes = 0;
  job->msg_len_to_hash_in_bytes = len;
  job->auth_tag_output = out;
  job->auth_tag_output_len_in_bytes = out_len;
  job->u.HMAC._hashed_auth_key_xor_ipad = key.ipad;
  job->u.HMAC._hashed_auth_key_xor_opad = key.opad;
  job->user_data = nullptr;
  // The queue is empty between calls, so the job that comes back is the one just submitted.
  IMB_JOB* r = IMB_SUBMIT_JOB(mgr_);
  if (r == nullptr) r = IMB_FLUSH_JOB(mgr_);
  return r != nullptr && r->status == IMB_STATUS_COMPLETED;
}

}  // namespace espgw::crypto
