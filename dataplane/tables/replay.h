// Anti-replay window (RFC 4303 3.4.3) with extended sequence numbers (RFC 4303 Appendix A2),
// kept as a ring of 64-bit blocks so the window slides without shifting bits (RFC 6479).
// One writer per inbound SA (its owning worker). Sizes from 64 to 4096 packets.
#pragma once

#include <cstdint>
#include <cstring>

namespace espgw::dp {

class ReplayWindow {
 public:
  static constexpr uint32_t kMaxSize = 4096;
  static constexpr uint32_t kBlocks = kMaxSize / 64 + 1;  // one spare block for the slide

  // size: packets (rounded up to a multiple of 64, clamped to 64..4096); 0 disables the
  // anti-replay service (RFC 4303 3.4.3 lets a receiver do so; the perf harness replays
  // pre-encrypted traffic) while still tracking the highest number for ESN inference.
  void init(uint32_t size, bool esn) {
    disabled_ = size == 0;
    size_ = size < 64 ? 64 : size > kMaxSize ? kMaxSize : (size + 63) / 64 * 64;
    nblocks_ = size_ / 64 + 1;
    esn_ = esn;
    top_ = 0;
    std::memset(bits_, 0, sizeof bits_);
  }

  uint32_t size() const { return size_; }
  uint64_t top() const { return top_; }

  // The full 64-bit sequence number for a received low half (RFC 4303 A2.2). Without ESN it is
  // the 32-bit number itself.
  uint64_t infer(uint32_t seq_lo) const {
    if (!esn_) return seq_lo;
    uint32_t th = uint32_t(top_ >> 32), tl = uint32_t(top_);
    uint32_t bottom = tl - (size_ - 1);  // may wrap
    if (tl >= size_ - 1) {               // window within one subspace
      if (seq_lo >= bottom) return uint64_t(th) << 32 | seq_lo;
      return uint64_t(th + 1) << 32 | seq_lo;
    }
    // window spans two subspaces
    if (seq_lo >= bottom) return uint64_t(th - 1) << 32 | seq_lo;
    return uint64_t(th) << 32 | seq_lo;
  }

  // Whether seq may be accepted (not too old, not seen). Does not change the window: call
  // before the ICV check; call update() after it succeeded.
  bool check(uint64_t seq) const {
    if (seq == 0 && !esn_) return false;  // sequence numbers start at 1
    if (seq > top_ || disabled_) return true;
    if (top_ - seq >= size_) return false;
    uint64_t b = (seq >> 6) % nblocks_;
    return !(bits_[b] >> (seq & 63) & 1);
  }

  // check() and, if accepted, mark seq seen and slide the window. Returns false for a replay.
  bool update(uint64_t seq) {
    if (!check(seq)) return false;
    if (disabled_) {
      if (seq > top_) top_ = seq;
      return true;
    }
    if (seq > top_) {
      uint64_t from = top_ >> 6, to = seq >> 6;
      uint64_t n = to - from;
      if (n > nblocks_) n = nblocks_;
      for (uint64_t i = 1; i <= n; ++i) bits_[(from + i) % nblocks_] = 0;
      top_ = seq;
    }
    bits_[(seq >> 6) % nblocks_] |= uint64_t(1) << (seq & 63);
    return true;
  }

 private:
  uint64_t top_ = 0;
  uint32_t size_ = 64;
  uint32_t nblocks_ = 2;
  bool esn_ = false;
  bool disabled_ = false;
  uint64_t bits_[kBlocks] = {};
};

}  // namespace espgw::dp
