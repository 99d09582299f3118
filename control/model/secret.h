// Key material and pre-shared keys: wiped when freed, never printable.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include <openssl/crypto.h>

namespace espgw {

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string_view s) : b_(s.begin(), s.end()) {}
  Secret(const uint8_t* p, size_t n) : b_(p, p + n) {}
  Secret(const Secret& o) : b_(o.b_) {}
  Secret(Secret&& o) noexcept : b_(std::move(o.b_)) { o.b_.clear(); }
  Secret& operator=(const Secret& o) {
    if (this != &o) { wipe(); b_ = o.b_; }
    return *this;
  }
  Secret& operator=(Secret&& o) noexcept {
    if (this != &o) { wipe(); b_ = std::move(o.b_); o.b_.clear(); }
    return *this;
  }
  ~Secret() { wipe(); }

  const uint8_t* data() const { return b_.data(); }
  size_t size() const { return b_.size(); }
  bool empty() const { return b_.empty(); }
  // Constant-time equality (length is not secret).
  bool equals(const Secret& o) const {
    return b_.size() == o.b_.size() && CRYPTO_memcmp(b_.data(), o.b_.data(), b_.size()) == 0;
  }

 private:
  void wipe() {
    if (!b_.empty()) OPENSSL_cleanse(b_.data(), b_.size());
    b_.clear();
  }
  std::vector<uint8_t> b_;
};

}  // namespace espgw
