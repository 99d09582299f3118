// Helpers for the config-model tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "control/model/config.h"

namespace espgw::model::testing {

// The example's key files are private (espgw refuses group/world-readable key files); a git
// checkout makes them 0644, so the tests set 0600 first (git does not track that difference).
inline void make_example_keys_private() {
  static bool done = [] {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const auto& f : fs::directory_iterator(std::string(TEST_DATA_DIR) + "/keys", ec))
      fs::permissions(f.path(), fs::perms::owner_read | fs::perms::owner_write,
                      fs::perm_options::replace, ec);
    return true;
  }();
  (void)done;
}

inline std::string data_path(const std::string& name) {
  make_example_keys_private();
  return std::string(TEST_DATA_DIR) + "/" + name;
}

inline std::string dump(const std::vector<ConfigError>& errors) {
  std::string s;
  for (const auto& e : errors) s += "  " + e.str() + "\n";
  return s;
}

// True if some error is about exactly `field` and its message contains `text`.
inline bool has_error(const std::vector<ConfigError>& errors, std::string_view field,
                      std::string_view text = "") {
  for (const auto& e : errors)
    if (e.field == field && e.message.find(text) != std::string::npos) return true;
  return false;
}

// The full valid example under data/ (asserts that it loads).
inline Config example() {
  LoadResult r = load_config(data_path("gateway.yaml"));
  EXPECT_TRUE(r.errors.empty()) << dump(r.errors);
  return r.config ? *r.config : Config{};
}

// A scratch directory for configs with key files; removed when done.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "espgw-model-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  void write(const std::string& name, const std::string& content) const {
    std::filesystem::create_directories(std::filesystem::path(file(name)).parent_path());
    std::ofstream(file(name), std::ios::binary) << content;
    std::filesystem::permissions(file(name),
                                 std::filesystem::perms::owner_read |
                                     std::filesystem::perms::owner_write,
                                 std::filesystem::perm_options::replace);
  }

 private:
  std::string path_;
};

}  // namespace espgw::model::testing
