// libFuzzer target for the config loader: arbitrary bytes as YAML must never crash, hang or throw.
// Key files resolve against a directory that does not exist, so runs do not depend on the host.
#include <cstddef>
#include <cstdint>
#include <string>

#include "control/model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;  // big inputs only slow the search down
  std::string yaml(reinterpret_cast<const char*>(data), size);
  espgw::model::LoadResult r =
      espgw::model::load_config_string(yaml, "/nonexistent-espgw-fuzz/gw.yaml");
  for (const auto& e : r.errors) (void)e.str();
  if (r.config && !r.errors.empty()) __builtin_trap();  // a config is never half-valid
  return 0;
}
