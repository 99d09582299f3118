// Engine-private: IPsec-MB job builders per algorithm family. Each SaCrypto points at one AlgoImpl,
// chosen at SA creation; the engine calls through it per packet without looking at the algorithm.
#pragma once

#include <intel-ipsec-mb.h>

#include <cstdint>

#include "crypto/ipsecmb_engine.h"

namespace espgw::crypto {

// Per-job scratch owned by the engine: everything an IPsec-MB job points at besides the packet must
// stay valid until the job completes, so it lives here rather than on the stack of a prepare step.
struct alignas(64) Engine::Scratch {
  uint8_t nonce[16];  // salt | explicit IV (AEAD/GMAC J0 input); CBC: IV-generation counter block
  uint8_t aad[16];    // SPI | seq_hi | seq_lo when ESN is in use
  uint8_t tag[64];    // ICV computed on decrypt
  uint8_t saved[32];  // bytes temporarily overwritten in the packet (received ICV / GMAC prefix)
};

namespace internal {

struct AlgoImpl {
  // Fill `job` for `op` (all fields the job type reads). False: op is invalid, job left unused.
  bool (*prep_encrypt)(IMB_MGR* mgr, IMB_JOB* job, const EspOp& op, Engine::Scratch& s);
  bool (*prep_decrypt)(IMB_MGR* mgr, IMB_JOB* job, const EspOp& op, Engine::Scratch& s);
  // After the job completed: undo temporary writes; on decrypt compare the ICV. Returns status.
  uint8_t (*finish_encrypt)(const EspOp& op, Engine::Scratch& s);
  uint8_t (*finish_decrypt)(const EspOp& op, Engine::Scratch& s);
};

extern const AlgoImpl kGcmImpl;
extern const AlgoImpl kCbcHmacImpl;
extern const AlgoImpl kChachaPolyImpl;
extern const AlgoImpl kGmacImpl;

// Process-wide manager used only for key expansion (its key-expansion entry points are stateless),
// initialised with the same automatic CPU detection as every Engine so GCM key layouts match.
IMB_MGR* key_mgr();

}  // namespace internal
}  // namespace espgw::crypto
