// The big-endian writer used by every BGP and IKE encoder: appends to a caller-owned buffer;
// length fields known only after the body are reserved and patched.
#pragma once

#include <cstddef>
#include <cstdint>

#include "control/wire/bytes.h"

namespace espgw::wire {

class Writer {
 public:
  explicit Writer(Bytes& out) : b_(out) {}

  size_t size() const { return b_.size(); }
  void u8(uint8_t v) { b_.push_back(v); }
  void u16(uint16_t v) {
    b_.push_back(uint8_t(v >> 8));
    b_.push_back(uint8_t(v));
  }
  void u32(uint32_t v) {
    u16(uint16_t(v >> 16));
    u16(uint16_t(v));
  }
  void u64(uint64_t v) {
    u32(uint32_t(v >> 32));
    u32(uint32_t(v));
  }
  void bytes(ByteView v) { b_.insert(b_.end(), v.begin(), v.end()); }
  void zeros(size_t n) { b_.insert(b_.end(), n, 0); }
  // Overwrites a 16/32-bit field written earlier at offset `at`.
  void patch_u16(size_t at, uint16_t v) {
    b_[at] = uint8_t(v >> 8);
    b_[at + 1] = uint8_t(v);
  }
  void patch_u32(size_t at, uint32_t v) {
    patch_u16(at, uint16_t(v >> 16));
    patch_u16(at + 2, uint16_t(v));
  }

 private:
  Bytes& b_;
};

}  // namespace espgw::wire
