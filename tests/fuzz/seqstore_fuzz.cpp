// libFuzzer target for the sequence reservation file read at start-up: any contents are loaded
// or refused with a message, never a crash; what loads survives a write and a reload unchanged.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "control/state/seq_store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  static const std::string dir = "/tmp/espgw-seqstore-fuzz-" + std::to_string(getpid());
  const std::string path = dir + "/s.seq";
  espgw::state::SeqStore s;
  std::string err;
  if (!s.open(dir + "/init.seq", &err)) __builtin_trap();  // creates the directory
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    if (size) std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  espgw::state::SeqStore a;
  if (a.open(path, &err)) {
    if (!a.flush(&err)) __builtin_trap();
    espgw::state::SeqStore b;
    if (!b.open(path, &err) || b.size() != a.size()) __builtin_trap();
  } else if (err.empty()) {
    __builtin_trap();
  }
  std::remove(path.c_str());
  return 0;
}
