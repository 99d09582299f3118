// libFuzzer: the inbound ESP path on arbitrary bytes, the way a worker runs it.
//   byte 0 even: the rest is a frame: classify -> ESP header -> replay -> decrypt (ICV check)
//   byte 0 odd:  the rest is a decrypted payload chosen by a peer that holds the keys: it is
//                encrypted with a valid SA, then decrypted and run through the trailer checks and
//                the inner packet parser (what an authenticated but hostile peer can reach).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "crypto/ipsecmb_engine.h"
#include "dataplane/proto/esp.h"
#include "dataplane/tables/replay.h"

using namespace espgw;
using namespace espgw::dp;

namespace {
struct Fixture {
  crypto::SaCrypto sa[2];
  std::unique_ptr<crypto::Engine> engine;
  Fixture() {
    uint8_t k[64];
    for (int i = 0; i < 64; ++i) k[i] = uint8_t(i * 7 + 1);
    crypto::SaCrypto::init(sa[0], crypto::Algo::kAesGcm128, k, 20);
    crypto::SaCrypto::init(sa[1], crypto::Algo::kAesCbc256Sha256, k, 64);
    engine = crypto::Engine::create(true);
  }
};
Fixture& fx() {
  static Fixture f;
  return f;
}

void after_decrypt(uint8_t* payload, uint32_t len) {
  uint32_t inner_len;
  uint8_t nh;
  if (esp_check_trailer(payload, len, inner_len, nh) != TrailerResult::kOk) return;
  std::vector<uint8_t> inner(payload, payload + inner_len);  // exact size for ASan
  Parsed p;
  p.l3_off = 0;
  if (nh == kNextIpv4) parse_ipv4(inner.data(), inner_len, p);
  else parse_ipv6(inner.data(), inner_len, p);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2 || size > 4096) return 0;
  Fixture& f = fx();
  const crypto::SaCrypto& sa = f.sa[data[0] >> 1 & 1];
  if (!(data[0] & 1)) {
    std::vector<uint8_t> frame(data + 1, data + size);
    Parsed p;
    if (!parse_frame(frame.data(), uint32_t(frame.size()), p).is_ok() || p.l3 == L3::kArp)
      return 0;
    EspLoc loc;
    if (classify_esp(frame.data(), p, loc) != EspClass::kEsp) return 0;
    uint32_t overhead = 8u + sa.iv_len + sa.icv_len;
    if (loc.esp_len < overhead + 4 || (loc.esp_len - overhead) % sa.cipher_block) return 0;
    ReplayWindow w;
    w.init(1024, true);
    uint64_t seq = w.infer(load_be32(frame.data() + loc.esp_off + 4));
    if (!w.check(seq)) return 0;
    crypto::EspOp op{&sa, frame.data() + loc.esp_off, loc.esp_len - overhead,
                     uint32_t(seq >> 32), true, 0};
    f.engine->decrypt_burst(&op, 1);
    if (op.status == crypto::kOk) {
      w.update(seq);
      after_decrypt(op.esp + 8 + sa.iv_len, op.payload_len);
    }
    return 0;
  }
  // a valid SA's peer sends arbitrary plaintext
  uint32_t len = uint32_t(size - 1);
  len -= len % sa.cipher_block;
  if (len < 2) return 0;
  std::vector<uint8_t> buf(4 + 8 + sa.iv_len + len + sa.icv_len);
  uint8_t* esp = buf.data() + 4;  // 4 writable bytes before ESP (engine contract for GMAC+ESN)
  store_be32(esp, 0x1001);
  store_be32(esp + 4, 7);
  std::memcpy(esp + 8 + sa.iv_len, data + 1, len);
  crypto::EspOp op{&sa, esp, len, 0, true, 0};
  f.engine->encrypt_burst(&op, 1);
  if (op.status != crypto::kOk) __builtin_trap();
  op.status = 0;
  f.engine->decrypt_burst(&op, 1);
  if (op.status != crypto::kOk) __builtin_trap();  // what we sealed must open
  if (std::memcmp(esp + 8 + sa.iv_len, data + 1, len) != 0) __builtin_trap();
  after_decrypt(esp + 8 + sa.iv_len, len);
  return 0;
}
