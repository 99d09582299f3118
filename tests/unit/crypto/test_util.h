// Shared helpers for the crypto tests: packet buffers with headroom and chosen misalignment, SA
// construction, deterministic random bytes.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "crypto/ipsecmb_engine.h"
#include "crypto/sa_crypto.h"

namespace espgw::crypto::test {

inline std::vector<uint8_t> random_bytes(std::mt19937& rng, size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

inline std::unique_ptr<SaCrypto> make_sa(Algo a, const std::vector<uint8_t>& keymat) {
  auto sa = std::make_unique<SaCrypto>();
  if (!SaCrypto::init(*sa, a, keymat.data(), keymat.size())) return nullptr;
  return sa;
}

inline void put_be32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// One ESP packet in a heap buffer with kHeadroom bytes (filled with a marker) before the SPI and
// `misalign` extra bytes so the SPI sits at an odd address when asked.
class PacketBuf {
 public:
  static constexpr size_t kHeadroom = 32;
  static constexpr uint8_t kMarker = 0xa5;

  PacketBuf(size_t esp_len, size_t misalign)
      : buf_(kHeadroom + misalign + esp_len + 16, kMarker), off_(kHeadroom + misalign), len_(esp_len) {}

  uint8_t* esp() { return buf_.data() + off_; }
  size_t len() const { return len_; }
  std::vector<uint8_t> bytes() const {
    return {buf_.begin() + static_cast<long>(off_), buf_.begin() + static_cast<long>(off_ + len_)};
  }
  void assign(const std::vector<uint8_t>& v) { std::memcpy(esp(), v.data(), v.size()); }
  // Bytes around the packet were left alone (headroom and tail slack).
  bool surroundings_intact() const {
    for (size_t i = 0; i < off_; ++i)
      if (buf_[i] != kMarker) return false;
    for (size_t i = off_ + len_; i < buf_.size(); ++i)
      if (buf_[i] != kMarker) return false;
    return true;
  }

 private:
  std::vector<uint8_t> buf_;
  size_t off_;
  size_t len_;
};

}  // namespace espgw::crypto::test
