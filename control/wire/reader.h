// The bounds-checked big-endian reader used by every BGP and IKE parser. It never throws and never
// reads outside its window. One behaviour: a read that does not fit fails WITHOUT moving, returns
// zero/empty and sets a sticky failure flag; once failed, every later read fails too. A parser
// reads a run of fields and checks ok() once before it uses them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "control/wire/bytes.h"

namespace espgw::wire {

class Reader {
 public:
  Reader() = default;
  explicit Reader(ByteView b) : p_(b.data()), n_(b.size()) {}

  // False once any read did not fit.
  bool ok() const { return ok_; }
  size_t remaining() const { return n_ - off_; }
  size_t offset() const { return off_; }
  bool empty() const { return remaining() == 0; }

  [[nodiscard]] uint8_t u8() {
    if (!need(1)) return 0;
    return p_[off_++];
  }
  [[nodiscard]] uint16_t u16() {
    if (!need(2)) return 0;
    uint16_t v = uint16_t(uint16_t(p_[off_]) << 8 | p_[off_ + 1]);
    off_ += 2;
    return v;
  }
  [[nodiscard]] uint32_t u32() {
    if (!need(4)) return 0;
    uint32_t v = uint32_t(p_[off_]) << 24 | uint32_t(p_[off_ + 1]) << 16 |
                 uint32_t(p_[off_ + 2]) << 8 | uint32_t(p_[off_ + 3]);
    off_ += 4;
    return v;
  }
  [[nodiscard]] uint64_t u64() {
    if (!need(8)) return 0;
    uint64_t hi = u32();
    return hi << 32 | u32();
  }
  // A view of the next n bytes (empty if fewer remain).
  [[nodiscard]] ByteView view(size_t n) {
    if (!need(n)) return {};
    ByteView v(p_ + off_, n);
    off_ += n;
    return v;
  }
  // The next n bytes as a copy.
  [[nodiscard]] Bytes bytes(size_t n) {
    ByteView v = view(n);
    return Bytes(v.begin(), v.end());
  }
  // Everything left, as a copy.
  [[nodiscard]] Bytes rest() { return bytes(remaining()); }
  // A reader of its own over the next n bytes (for length-delimited fields); this reader skips
  // past them. If they do not fit, both readers have failed.
  [[nodiscard]] Reader sub(size_t n) {
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

}  // namespace espgw::wire
