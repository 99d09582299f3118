// Reading secrets referenced by the config: pre-shared keys and static SA keys. The contents never
// reach an error message; buffers that held them are wiped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "control/model/secret.h"

namespace espgw::model::internal {

struct SecretResult {
  Secret secret;
  std::string error;  // empty on success; never contains file contents
};

// The directory relative key files are resolved against: the config file's directory, or ".".
std::string base_dir(const std::string& config_path);
std::string resolve(const std::string& base, const std::string& file);

// A pre-shared key: the whole file, trailing "\n"/"\r\n" stripped; must not be empty.
SecretResult read_psk_file(const std::string& path);
// A static SA key: hex text (whitespace and one optional leading 0x ignored), decoded.
SecretResult read_hex_key_file(const std::string& path);
// The same from bytes already read (path only names the file in messages).
SecretResult parse_hex_key(const uint8_t* data, size_t size, const std::string& path);

}  // namespace espgw::model::internal
