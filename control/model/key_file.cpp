#include "control/model/key_file.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

namespace espgw::model::internal {
namespace {

constexpr size_t kMaxKeyFile = 64 * 1024;

// Wipes whatever it held when it goes out of scope.
struct WipedBuffer {
  std::vector<uint8_t> b;
  ~WipedBuffer() {
    if (!b.empty()) OPENSSL_cleanse(b.data(), b.size());
  }
};

// Reads a whole regular file into out (capacity reserved up front so nothing is left behind in a
// reallocated block). Returns an error message or "".
std::string read_file(const std::string& path, WipedBuffer* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return "cannot open '" + path + "': " + std::strerror(errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return "'" + path + "' is not a regular file";
  }
  // like ssh with private keys: a secret others can read is refused, not just warned about
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
    return "'" + path + "' is accessible by group or others (mode " + mode +
           "); a key file must be private: chmod 600 '" + path + "'";
  }
  if (st.st_size > off_t(kMaxKeyFile)) {
    ::close(fd);
    return "'" + path + "' is too large for a key file (more than 64 KiB)";
  }
  out->b.resize(kMaxKeyFile + 1);
  size_t n = 0;
  while (n < out->b.size()) {
    ssize_t r = ::read(fd, out->b.data() + n, out->b.size() - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      std::string why = "cannot read '" + path + "': " + std::strerror(errno);
      ::close(fd);
      return why;
    }
    if (r == 0) break;
    n += size_t(r);
  }
  ::close(fd);
  if (n > kMaxKeyFile) return "'" + path + "' is too large for a key file (more than 64 KiB)";
  OPENSSL_cleanse(out->b.data() + n, out->b.size() - n);
  out->b.resize(n);  // shrinking never reallocates
  return "";
}

int hex_value(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

std::string base_dir(const std::string& config_path) {
  auto slash = config_path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return config_path.substr(0, slash);
}

std::string resolve(const std::string& base, const std::string& file) {
  if (!file.empty() && file[0] == '/') return file;
  if (base.empty() || base == ".") return file;
  return base.back() == '/' ? base + file : base + "/" + file;
}

SecretResult read_psk_file(const std::string& path) {
  SecretResult r;
  WipedBuffer buf;
  r.error = read_file(path, &buf);
  if (!r.error.empty()) return r;
  size_t n = buf.b.size();
  while (n > 0 && (buf.b[n - 1] == '\n' || buf.b[n - 1] == '\r')) --n;
  if (n == 0) {
    r.error = "'" + path + "' is empty";
    return r;
  }
  r.secret = Secret(buf.b.data(), n);
  return r;
}

SecretResult read_hex_key_file(const std::string& path) {
  WipedBuffer text;
  std::string error = read_file(path, &text);
  if (!error.empty()) {
    SecretResult r;
    r.error = error;
    return r;
  }
  return parse_hex_key(text.b.data(), text.b.size(), path);
}

SecretResult parse_hex_key(const uint8_t* data, size_t size, const std::string& path) {
  SecretResult r;
  size_t i = 0;
  const std::basic_string_view<uint8_t> t(data, size);
  while (i < t.size() && is_space(t[i])) ++i;
  if (i + 1 < t.size() && t[i] == '0' && (t[i + 1] == 'x' || t[i + 1] == 'X')) i += 2;
  WipedBuffer key;
  key.b.reserve(t.size() / 2 + 1);
  int high = -1;
  size_t digits = 0;
  for (; i < t.size(); ++i) {
    if (is_space(t[i])) continue;
    int v = hex_value(t[i]);
    if (v < 0) {
      // Say where, never what: the file is key material.
      r.error = "'" + path + "' is not hex text (bad character at byte " + std::to_string(i) + ")";
      return r;
    }
    ++digits;
    if (high < 0) {
      high = v;
    } else {
      key.b.push_back(uint8_t(high << 4 | v));
      high = -1;
    }
  }
  if (digits == 0) {
    r.error = "'" + path + "' is empty";
    return r;
  }
  if (high >= 0) {
    r.error = "'" + path + "' has an odd number of hex digits";
    return r;
  }
  r.secret = Secret(key.b.data(), key.b.size());
  return r;
}

}  // namespace espgw::model::internal
