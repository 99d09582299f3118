// libFuzzer target for static SA key files: arbitrary bytes as hex key text must never crash,
// and an error never quotes the file's contents (it is key material).
#include <cstddef>
#include <cstdint>
#include <string>

#include "control/model/key_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  auto r = espgw::model::internal::parse_hex_key(data, size, "k.hex");
  if (r.error.empty() && r.secret.empty()) __builtin_trap();    // a success has key bytes
  if (!r.error.empty() && !r.secret.empty()) __builtin_trap();  // a failure has none
  if (!r.error.empty() && size >= 8) {
    std::string text(reinterpret_cast<const char*>(data), size);
    for (size_t i = 0; i + 8 <= text.size(); i += 8)  // no 8-byte run of the input in the message
      if (r.error.find(text.substr(i, 8)) != std::string::npos &&
          text.substr(i, 8).find_first_not_of("0123456789abcdefABCDEF") == std::string::npos)
        __builtin_trap();
  }
  return 0;
}
