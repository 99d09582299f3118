// Constant-time helpers for comparing authentication tags.
#pragma once

#include <cstddef>
#include <cstdint>

namespace espgw::crypto {

// True when a[0..n) == b[0..n). Runs in time that depends only on n (n itself is not secret): every
// byte is read, no early exit, and the accumulator is hidden from the optimiser so it cannot turn
// the loop back into a short-circuiting compare.
inline bool ct_equal(const uint8_t* a, const uint8_t* b, size_t n) {
  uint32_t acc = 0;
  for (size_t i = 0; i < n; ++i) {
    acc |= static_cast<uint32_t>(a[i] ^ b[i]);
    __asm__("" : "+r"(acc));
  }
  return acc == 0;
}

// Overwrite memory so the compiler cannot elide it (key material on destruction).
inline void secure_wipe(void* p, size_t n) {
  volatile uint8_t* v = static_cast<volatile uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) v[i] = 0;
  __asm__ __volatile__("" : : "r"(p) : "memory");
}

}  // namespace espgw::crypto
