#include "control/state/seq_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace espgw::state {
namespace {

constexpr const char* kMagic = "espgw-seq v1";

std::string sys_err(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

bool mkdirs(const std::string& dir, std::string* err) {
  if (dir.empty()) return true;
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return true;
    return *err = dir + " exists and is not a directory", false;
  }
  size_t slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0 && !mkdirs(dir.substr(0, slash), err)) return false;
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return *err = sys_err("cannot create", dir), false;
  return true;
}

std::string dir_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

bool write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += size_t(n);
  }
  return true;
}

}  // namespace

std::string SeqStore::sa_key(uint32_t spi, const uint8_t* key, size_t key_len) {
  static const char kLabel[] = "espgw seq";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
            EVP_DigestUpdate(ctx, kLabel, sizeof kLabel - 1) == 1 &&
            EVP_DigestUpdate(ctx, key, key_len) == 1 &&
            EVP_DigestFinal_ex(ctx, md, &md_len) == 1;
  EVP_MD_CTX_free(ctx);
  char out[8 + 1 + 32 + 1];
  int n = std::snprintf(out, sizeof out, "%08x ", spi);
  for (unsigned i = 0; i < 16; ++i)
    n += std::snprintf(out + n, sizeof out - size_t(n), "%02x", ok ? md[i] : 0);
  return std::string(out, size_t(n));
}

bool SeqStore::open(const std::string& path, std::string* err) {
  path_ = path;
  recs_.clear();
  if (!mkdirs(dir_of(path), err)) return false;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return true;  // first start
    return *err = sys_err("cannot read", path), false;
  }
  std::ifstream f(path);
  if (!f) return *err = "cannot read " + path, false;
  std::string line;
  size_t n = 0;
  bool magic = false;
  while (std::getline(f, line)) {
    ++n;
    if (n == 1) {
      magic = line == kMagic;
      if (!magic) break;
      continue;
    }
    if (line.empty()) continue;
    std::istringstream ls(line);
    std::string spi, fp, extra;
    uint64_t reserved = 0;
    if (!(ls >> spi >> fp >> reserved) || (ls >> extra) || spi.size() != 8 || fp.size() != 32)
      return *err = path + ":" + std::to_string(n) +
                    ": malformed sequence reservation (refusing to start: a lost reservation "
                    "could make a static tunnel reuse nonces; restore or remove the file "
                    "only together with new keys)",
             false;
    recs_[spi + " " + fp] = reserved;
  }
  if (!magic)
    return *err = path + ": not an espgw sequence reservation file (first line '" + kMagic +
                  "' expected)",
           false;
  return true;
}

uint64_t SeqStore::reserved(const std::string& k) const {
  auto it = recs_.find(k);
  return it == recs_.end() ? 0 : it->second;
}

void SeqStore::retain(const std::set<std::string>& keep) {
  for (auto it = recs_.begin(); it != recs_.end();)
    it = keep.count(it->first) ? std::next(it) : recs_.erase(it);
}

bool SeqStore::flush(std::string* err) {
  std::string body = std::string(kMagic) + "\n";
  for (const auto& [k, v] : recs_) body += k + " " + std::to_string(v) + "\n";
  const std::string tmp = path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return *err = sys_err("cannot write", tmp), false;
  bool ok = write_all(fd, body) && ::fsync(fd) == 0;
  if (!ok) *err = sys_err("cannot write", tmp);
  ::close(fd);
  if (!ok) return false;
  if (::rename(tmp.c_str(), path_.c_str()) != 0) return *err = sys_err("cannot rename", tmp), false;
  int dfd = ::open(dir_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return true;
}

}  // namespace espgw::state
