// Bounds-checked big-endian reader and writer used by every BGP parser and encoder.
// A read either succeeds completely or fails without moving, so a parser can never touch memory
// outside the buffer it was given; errors are returned, never thrown.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace espgw::bgp {

using Bytes = std::vector<uint8_t>;

class Reader {
 public:
  Reader() = default;
  explicit Reader(std::span<const uint8_t> buf) : buf_(buf) {}

  size_t left() const { return buf_.size() - pos_; }
  bool empty() const { return pos_ == buf_.size(); }
  size_t pos() const { return pos_; }

  bool u8(uint8_t& v) {
    if (left() < 1) return false;
    v = buf_[pos_++];
    return true;
  }
  bool u16(uint16_t& v) {
    if (left() < 2) return false;
    v = uint16_t(buf_[pos_] << 8 | buf_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  bool u32(uint32_t& v) {
    if (left() < 4) return false;
    v = uint32_t(buf_[pos_]) << 24 | uint32_t(buf_[pos_ + 1]) << 16 |
        uint32_t(buf_[pos_ + 2]) << 8 | uint32_t(buf_[pos_ + 3]);
    pos_ += 4;
    return true;
  }
  // The next n bytes as a view into the buffer.
  bool bytes(size_t n, std::span<const uint8_t>& out) {
    if (left() < n) return false;
    out = buf_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  // The next n bytes as a reader of their own (for length-delimited fields).
  bool sub(size_t n, Reader& out) {
    std::span<const uint8_t> s;
    if (!bytes(n, s)) return false;
    out = Reader(s);
    return true;
  }
  bool skip(size_t n) {
    if (left() < n) return false;
    pos_ += n;
    return true;
  }
  std::span<const uint8_t> rest() const { return buf_.subspan(pos_); }

 private:
  std::span<const uint8_t> buf_;
  size_t pos_ = 0;
};

class Writer {
 public:
  explicit Writer(Bytes& out) : out_(out) {}

  size_t pos() const { return out_.size(); }
  void u8(uint8_t v) { out_.push_back(v); }
  void u16(uint16_t v) {
    out_.push_back(uint8_t(v >> 8));
    out_.push_back(uint8_t(v));
  }
  void u32(uint32_t v) {
    u16(uint16_t(v >> 16));
    u16(uint16_t(v));
  }
  void bytes(std::span<const uint8_t> b) { out_.insert(out_.end(), b.begin(), b.end()); }
  // Overwrites a length field reserved earlier at offset `at`.
  void patch_u8(size_t at, uint8_t v) { out_[at] = v; }
  void patch_u16(size_t at, uint16_t v) {
    out_[at] = uint8_t(v >> 8);
    out_[at + 1] = uint8_t(v);
  }

 private:
  Bytes& out_;
};

}  // namespace espgw::bgp
