#include "vector_file.h"

#include <fstream>
#include <stdexcept>

#ifndef ESPGW_VECTORS_DIR
#error "ESPGW_VECTORS_DIR must point at tests/vectors"
#endif

namespace espgw::crypto::test {

namespace {
std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}
}  // namespace

std::vector<uint8_t> from_hex(const std::string& s) {
  std::vector<uint8_t> out;
  int hi = -1;
  for (char c : s) {
    int v;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    else if (c == ' ' || c == '\t') continue;
    else throw std::runtime_error("bad hex character in: " + s);
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<uint8_t>(hi << 4 | v));
      hi = -1;
    }
  }
  if (hi >= 0) throw std::runtime_error("odd number of hex digits in: " + s);
  return out;
}

std::string to_hex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += d[p[i] >> 4];
    s += d[p[i] & 15];
  }
  return s;
}

std::vector<uint8_t> VectorRecord::hex(const std::string& k) const { return from_hex(str(k)); }

std::vector<VectorRecord> read_vectors(const std::string& file) {
  const std::string path = std::string(ESPGW_VECTORS_DIR) + "/" + file;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<VectorRecord> recs;
  std::string line, last;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    const std::string where = path + ":" + std::to_string(lineno);
    if (t[0] == '[') {
      if (t.back() != ']') throw std::runtime_error(where + ": unterminated [name]");
      recs.push_back({t.substr(1, t.size() - 2), {}});
      last.clear();
      continue;
    }
    if (recs.empty()) throw std::runtime_error(where + ": field before the first [name]");
    if (line[0] == ' ' || line[0] == '\t') {
      if (last.empty()) throw std::runtime_error(where + ": continuation without a field");
      recs.back().fields[last] += " " + t;
      continue;
    }
    const auto eq = t.find('=');
    if (eq == std::string::npos) throw std::runtime_error(where + ": expected key = value");
    last = trim(t.substr(0, eq));
    recs.back().fields[last] = trim(t.substr(eq + 1));
  }
  return recs;
}

}  // namespace espgw::crypto::test
