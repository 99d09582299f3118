// ESP crypto engine over Intel IPsec-MB (1.3 burst API). One Engine per worker lcore.
//
// Usage per burst (ARCHITECTURE.md, "Data flow"): the worker prepares every packet (ESP header + sequence number
// written, trailer/padding appended, room for the ICV), makes ONE encrypt_burst/decrypt_burst call,
// then finishes every packet according to op.status.
//
// Hot-path guarantees of encrypt_burst/decrypt_burst: no locks, no heap allocation, no syscalls, no
// exceptions; the per-SA code path was chosen in SaCrypto::init. Bursts of any size are accepted and
// handed to IPsec-MB in chunks of kMaxChunk jobs (one get-burst/submit-burst/flush pass per chunk).
#pragma once

#include <cstdint>
#include <memory>

#include "crypto/sa_crypto.h"

struct IMB_MGR;
struct IMB_JOB;

namespace espgw::crypto {

enum EspStatus : uint8_t {
  kOk = 0,
  kAuthFail = 1,  // ICV mismatch (decrypt only): drop, do not touch the replay window
  kError = 2,     // bad op (invalid SA, length not a multiple of the block, too long) or library error
};

// One ESP packet laid out in memory as RFC 4303 2:
//   esp -> [SPI(4) | Seq(4) | IV(sa->iv_len) | payload (payload_len) | ICV(sa->icv_len)]
// `payload` is everything between IV and ICV: the inner packet, padding, pad length and next header.
//
// encrypt: SPI and the low 32 bits of the sequence number must already be in place; the engine
//   writes the IV, encrypts the payload in place and writes the ICV. For CBC payload_len must be a
//   multiple of 16.
// decrypt: verifies the ICV in constant time and decrypts in place; status tells the outcome. The
//   payload bytes are unspecified when status != kOk. The ICV area may be used as scratch and is
//   restored.
// ESN (RFC 4303 2.2.1): with esn set, the high 32 bits are authenticated but not sent: in the AAD
//   (SPI | seq_hi | seq_lo) for GCM/ChaCha20-Poly1305 (RFC 4106 5, RFC 7634 2.1), inside the GMAC AAD
//   (RFC 4543 3.3), and hashed after the payload for HMAC (RFC 4303 3.3.2.1).
//   GMAC with ESN needs the 4 bytes just before `esp` to be writable (the outer IP/UDP header or mbuf
//   headroom): the AAD is built in place there and those bytes are restored before the call returns.
struct EspOp {
  const SaCrypto* sa = nullptr;
  uint8_t* esp = nullptr;
  uint32_t payload_len = 0;
  uint32_t esn_hi = 0;  // high 32 bits of the 64-bit sequence number (part of the IV even without ESN)
  bool esn = false;
  uint8_t status = kError;  // out; an op the engine never completes must not pass as kOk
};

class Engine {
 public:
  static constexpr unsigned kMaxChunk = 64;         // jobs handed to IPsec-MB per submission
  static constexpr uint32_t kMaxPayload = 65535;    // larger ops fail with kError

#ifdef NDEBUG
  static constexpr bool kCheckJobsDefault = false;
#else
  static constexpr bool kCheckJobsDefault = true;
#endif
  // Allocates and initialises this lcore's IMB_MGR with the best code path for the CPU (logged once
  // per process). Returns nullptr if the manager cannot be set up or picks a code path different from
  // the one SaCrypto key schedules were expanded for. Control thread / lcore start-up only.
  // check_jobs: submit through IPsec-MB's validating burst entry point (debug builds) instead of the
  // no-check one; every op is validated by the engine before it becomes a job either way.
  static std::unique_ptr<Engine> create(bool check_jobs = kCheckJobsDefault);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const char* arch() const;  // "AVX512", "AVX2", "AVX", "SSE", "NOAESNI"
  static const char* version();  // the IPsec-MB library version

  // Return the number of ops with status kOk. Ops are not reordered.
  unsigned encrypt_burst(EspOp* ops, unsigned n);
  unsigned decrypt_burst(EspOp* ops, unsigned n);

  // Cold path (tests, control plane): one HMAC over data, output truncated to out_len bytes
  // (16/32 for SHA-256, 24/48 for SHA-384, 32/64 for SHA-512). Same job path as ESP uses.
  bool hmac(const HmacKey& key, const uint8_t* data, size_t len, uint8_t* out, size_t out_len);

  struct Scratch;  // per-job nonce/AAD/tag space, engine-private

 private:
  Engine() = default;
  template <bool kEncrypt>
  unsigned run(EspOp* ops, unsigned n);
  template <bool kEncrypt>
  unsigned run_chunk(EspOp* ops, unsigned n);

  IMB_MGR* mgr_ = nullptr;
  uint32_t (*submit_)(IMB_MGR*, uint32_t, IMB_JOB**) = nullptr;  // chosen once in create()
  bool check_jobs_ = false;
  Scratch* scratch_ = nullptr;  // kMaxChunk entries, cache-aligned, allocated in create()
};

}  // namespace espgw::crypto
