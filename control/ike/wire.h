// Bounds-checked big-endian reader and writer for IKEv2 wire encoding. The reader never throws and
// never reads past its window: a short read sets a sticky failure flag and returns zeros/empty.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace espgw::ike {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

class Reader {
 public:
  Reader() = default;
  explicit Reader(ByteView b) : p_(b.data()), n_(b.size()) {}

  bool ok() const { return ok_; }
  size_t remaining() const { return n_ - off_; }
  size_t offset() const { return off_; }
  bool empty() const { return remaining() == 0; }

  uint8_t u8() {
    if (!need(1)) return 0;
    return p_[off_++];
  }
  uint16_t u16() {
    if (!need(2)) return 0;
    uint16_t v = uint16_t(uint16_t(p_[off_]) << 8 | p_[off_ + 1]);
    off_ += 2;
    return v;
  }
  uint32_t u32() {
    if (!need(4)) return 0;
    uint32_t v = uint32_t(p_[off_]) << 24 | uint32_t(p_[off_ + 1]) << 16 |
                 uint32_t(p_[off_ + 2]) << 8 | uint32_t(p_[off_ + 3]);
    off_ += 4;
    return v;
  }
  uint64_t u64() {
    uint64_t hi = u32();
    uint64_t lo = u32();
    return ok_ ? (hi << 32 | lo) : 0;
  }
  // A view of the next n bytes (empty and failed if fewer remain).
  ByteView view(size_t n) {
    if (!need(n)) return {};
    ByteView v(p_ + off_, n);
    off_ += n;
    return v;
  }
  Bytes bytes(size_t n) {
    ByteView v = view(n);
    return Bytes(v.begin(), v.end());
  }
  // Everything left, as a copy.
  Bytes rest() { return bytes(remaining()); }
  // A sub-reader over the next n bytes; this reader skips past them.
  Reader sub(size_t n) {
    ByteView v = view(n);
    Reader r(v);
    if (!ok_) r.ok_ = false;
    return r;
  }
  void skip(size_t n) { (void)view(n); }

 private:
  bool need(size_t n) {
    if (!ok_ || n > n_ - off_) {
      ok_ = false;
      return false;
    }
    return true;
  }
  const uint8_t* p_ = nullptr;
  size_t n_ = 0;
  size_t off_ = 0;
  bool ok_ = true;
};

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
  // Overwrites a 16/32-bit field written earlier (lengths known only after the body).
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

}  // namespace espgw::ike
