// Schema-driven reading of yaml-cpp nodes into the model. Private to control/model.
//
// Every value is read through a Field (node + dotted path + 1-based mark). Problems become
// ConfigErrors naming the path; reading continues so one pass reports everything it can. Values are
// quoted in messages only where they are not secret (key files are read elsewhere and never
// echoed).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/model/config.h"

namespace espgw::model::internal {

struct Field {
  YAML::Node node;
  std::string path;  // "connections[1].ipsec_policy.ike[0]"
  Mark mark;
};

Mark mark_of(const YAML::Node& n);  // 1-based; {0,0} when unknown
Mark mark_of_yaml(const YAML::Mark& m);
// A config value for a message: quoted, non-printables replaced, long values cut.
std::string quote(std::string_view s);

class Reader {
 public:
  static constexpr size_t kMaxErrors = 100;
  // Bound on values read (a YAML alias counts every time it is used), so that a small file full of
  // aliases cannot make loading and validation take unbounded time and memory.
  static constexpr size_t kMaxValues = 100000;

  explicit Reader(std::string file) : file_(std::move(file)) {}

  // A key of a mapping: its reader, and whether it must be present.
  struct Key {
    std::string_view name;
    std::function<void(const Field&)> read;
    bool required = false;
  };

  // Reads a mapping: each known key goes to its reader; unknown, duplicate and missing required
  // keys are errors. A null node counts as an empty mapping. False if the node is not a mapping.
  bool map(const Field& f, std::initializer_list<Key> keys);
  // Calls fn for each item of a sequence as "path[i]". A null node is an empty list.
  void list(const Field& f, const std::function<void(const Field&)>& fn);

  // Scalars. Each returns false (after recording an error) when the value is missing or invalid,
  // leaving *out unchanged.
  bool read(const Field& f, std::string* out);
  bool read(const Field& f, bool* out);
  bool read(const Field& f, IpAddr* out);
  bool read(const Field& f, Prefix* out);
  bool read(const Field& f, IfAddr* out);
  bool read(const Field& f, std::vector<Prefix>* out);
  bool read_u64(const Field& f, uint64_t* out, uint64_t max, bool allow_hex = false);
  template <class T>
  bool read_uint(const Field& f, T* out, bool allow_hex = false) {
    uint64_t v = 0;
    if (!read_u64(f, &v, std::numeric_limits<T>::max(), allow_hex)) return false;
    *out = static_cast<T>(v);
    return true;
  }
  // One of a fixed set of names.
  template <class E>
  bool read_enum(const Field& f, E* out,
                 std::initializer_list<std::pair<std::string_view, E>> names) {
    std::string s;
    if (!read(f, &s)) return false;
    std::string allowed;
    for (const auto& [name, value] : names) {
      if (name == s) {
        *out = value;
        return true;
      }
      allowed += (allowed.empty() ? "" : ", ") + std::string(name);
    }
    error(f, "unknown value '" + s + "' (expected one of: " + allowed + ")");
    return false;
  }

  void error(const Field& f, std::string message) { error(f.mark, f.path, std::move(message)); }
  void error(Mark m, std::string field, std::string message);

  const std::string& file() const { return file_; }
  std::vector<ConfigError>& errors() { return errors_; }
  // The mark of every field path that was read, so later (semantic) errors can point at the line.
  const std::map<std::string, Mark>& marks() const { return marks_; }

  static Field child(const Field& parent, std::string_view key, const YAML::Node& key_node,
                     const YAML::Node& value);

 private:
  bool scalar(const Field& f, std::string* out);
  bool spend(const Field& f);  // false once kMaxValues is used up (reported once)

  std::string file_;
  std::vector<ConfigError> errors_;
  std::map<std::string, Mark> marks_;
  size_t values_ = 0;
};

}  // namespace espgw::model::internal
