// Reader for the known-answer files in tests/vectors/ (format described at the top of each file):
// `[name]` starts a record, `key = value` lines fill it, indented lines continue the last value,
// `#` starts a comment line.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace espgw::crypto::test {

struct VectorRecord {
  std::string name;
  std::map<std::string, std::string> fields;

  bool has(const std::string& k) const { return fields.count(k) != 0; }
  const std::string& str(const std::string& k) const { return fields.at(k); }
  std::vector<uint8_t> hex(const std::string& k) const;  // spaces ignored; throws on bad hex
};

// Parses tests/vectors/<file>. Throws std::runtime_error on I/O or syntax errors.
std::vector<VectorRecord> read_vectors(const std::string& file);

std::vector<uint8_t> from_hex(const std::string& s);
std::string to_hex(const uint8_t* p, size_t n);

}  // namespace espgw::crypto::test
