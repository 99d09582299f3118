#include "control/model/yaml_reader.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace espgw::model::internal {

std::string quote(std::string_view s) {
  constexpr size_t kMax = 64;
  std::string q = "'";
  for (char c : s.substr(0, kMax)) q += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
  if (s.size() > kMax) q += "...";
  return q + "'";
}

namespace {

// Edit distance, for "did you mean" hints on mistyped keys (keys are short).
size_t distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

Mark mark_of_yaml(const YAML::Mark& m) {
  if (m.is_null() || m.line < 0 || m.column < 0) return {};
  return {m.line + 1, m.column + 1};
}

Mark mark_of(const YAML::Node& n) { return n.IsDefined() ? mark_of_yaml(n.Mark()) : Mark{}; }

void Reader::error(Mark m, std::string field, std::string message) {
  if (errors_.size() > kMaxErrors) return;
  if (errors_.size() == kMaxErrors) {
    errors_.push_back({file_, {}, "", "too many errors; stopping here"});
    return;
  }
  errors_.push_back({file_, m, std::move(field), std::move(message)});
}

Field Reader::child(const Field& parent, std::string_view key, const YAML::Node& key_node,
                    const YAML::Node& value) {
  Field f{value, parent.path.empty() ? std::string(key) : parent.path + "." + std::string(key), {}};
  // A null value ("asn:") has no useful position of its own: point at the key instead.
  f.mark = value.IsNull() ? mark_of(key_node) : mark_of(value);
  if (f.mark.line == 0) f.mark = mark_of(key_node);
  if (f.mark.line == 0) f.mark = parent.mark;
  return f;
}

bool Reader::spend(const Field& f) {
  if (values_ < kMaxValues) {
    ++values_;
    return true;
  }
  if (values_++ == kMaxValues)
    error(f, "the config has more than " + std::to_string(kMaxValues) +
                 " values (each use of a YAML alias counts); stopping here");
  return false;
}

bool Reader::map(const Field& f, std::initializer_list<Key> keys) {
  marks_.emplace(f.path, f.mark);
  if (!f.node.IsDefined() || f.node.IsNull()) {
    for (const auto& k : keys)
      if (k.required) error(f, "missing required key '" + std::string(k.name) + "'");
    return true;
  }
  if (!f.node.IsMap()) {
    error(f, "expected a mapping (key: value)");
    return false;
  }
  std::set<std::string_view> seen;
  for (auto it = f.node.begin(); it != f.node.end(); ++it) {
    if (!spend(f)) return false;
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    if (!key.IsScalar()) {
      error(mark_of(key).line ? mark_of(key) : f.mark, f.path, "keys must be plain names");
      continue;
    }
    const std::string& name = key.Scalar();
    auto k = std::find_if(keys.begin(), keys.end(), [&](const Key& k) { return k.name == name; });
    std::string path = f.path.empty() ? name : f.path + "." + name;
    if (k == keys.end()) {
      std::string msg = "unknown key " + quote(name);
      if (name.size() <= 64) {
        for (const auto& known : keys)
          if (distance(name, known.name) <= 2) {
            msg += " (did you mean '" + std::string(known.name) + "'?)";
            break;
          }
      }
      error(mark_of(key), path, msg);
      continue;
    }
    if (!seen.insert(k->name).second) {
      error(mark_of(key), path, "duplicate key");
      continue;
    }
    Field c = child(f, k->name, key, value);
    marks_.emplace(c.path, c.mark);
    k->read(c);
  }
  for (const auto& k : keys)
    if (k.required && !seen.count(k.name))
      error(f, "missing required key '" + std::string(k.name) + "'");
  return true;
}

void Reader::list(const Field& f, const std::function<void(const Field&)>& fn) {
  if (!f.node.IsDefined() || f.node.IsNull()) return;
  if (!f.node.IsSequence()) {
    error(f, "expected a list");
    return;
  }
  size_t i = 0;
  for (auto it = f.node.begin(); it != f.node.end(); ++it, ++i) {
    if (!spend(f)) return;
    Field item{*it, f.path + "[" + std::to_string(i) + "]", mark_of(*it)};
    if (item.mark.line == 0) item.mark = f.mark;
    marks_.emplace(item.path, item.mark);
    fn(item);
  }
}

bool Reader::scalar(const Field& f, std::string* out) {
  if (!f.node.IsDefined() || f.node.IsNull()) {
    error(f, "missing value");
    return false;
  }
  if (!f.node.IsScalar()) {
    error(f, f.node.IsSequence() ? "expected a single value, not a list"
                                 : "expected a single value, not a mapping");
    return false;
  }
  *out = f.node.Scalar();
  return true;
}

bool Reader::read(const Field& f, std::string* out) { return scalar(f, out); }

bool Reader::read(const Field& f, bool* out) {
  std::string s;
  if (!scalar(f, &s)) return false;
  std::string l;
  for (char c : s) l += char(std::tolower(static_cast<unsigned char>(c)));
  if (l == "true" || l == "yes" || l == "on") {
    *out = true;
    return true;
  }
  if (l == "false" || l == "no" || l == "off") {
    *out = false;
    return true;
  }
  error(f, "expected true or false, got " + quote(s));
  return false;
}

bool Reader::read_u64(const Field& f, uint64_t* out, uint64_t max, bool allow_hex) {
  std::string s;
  if (!scalar(f, &s)) return false;
  std::string_view digits = s;
  unsigned base = 10;
  if (allow_hex && digits.size() > 2 && digits[0] == '0' &&
      (digits[1] == 'x' || digits[1] == 'X')) {
    base = 16;
    digits.remove_prefix(2);
  }
  uint64_t v = 0;
  bool ok = !digits.empty();
  for (char c : digits) {
    unsigned d;
    if (c >= '0' && c <= '9')
      d = unsigned(c - '0');
    else if (base == 16 && c >= 'a' && c <= 'f')
      d = unsigned(c - 'a' + 10);
    else if (base == 16 && c >= 'A' && c <= 'F')
      d = unsigned(c - 'A' + 10);
    else {
      ok = false;
      break;
    }
    if (v > (max - d) / base) {
      error(f, "value " + quote(s) + " is too large (at most " + std::to_string(max) + ")");
      return false;
    }
    v = v * base + d;
  }
  if (!ok) {
    error(f, std::string("expected a non-negative integer") +
                 (allow_hex ? " (decimal or 0x-hex)" : "") + ", got " + quote(s));
    return false;
  }
  *out = v;
  return true;
}

bool Reader::read(const Field& f, IpAddr* out) {
  std::string s;
  if (!scalar(f, &s)) return false;
  auto a = IpAddr::parse(s);
  if (!a || s.find('%') != std::string::npos) {
    error(f, "invalid IP address " + quote(s));
    return false;
  }
  *out = *a;
  return true;
}

bool Reader::read(const Field& f, Prefix* out) {
  std::string s;
  if (!scalar(f, &s)) return false;
  auto p = Prefix::parse(s);
  if (!p) {
    if (Prefix::parse(s, true))
      error(f, "prefix " + quote(s) + " has host bits set (did you mean " +
                   Prefix::parse(s, true)->str() + "?)");
    else
      error(f, "invalid prefix " + quote(s) + " (expected e.g. 10.1.0.0/16 or 2001:db8::/32)");
    return false;
  }
  *out = *p;
  return true;
}

bool Reader::read(const Field& f, IfAddr* out) {
  std::string s;
  if (!scalar(f, &s)) return false;
  auto p = Prefix::parse(s, /*allow_host_bits=*/true);
  auto a = IpAddr::parse(std::string_view(s).substr(0, s.find('/')));
  if (!p || !a) {
    error(f, "invalid interface address " + quote(s) + " (expected e.g. 10.1.0.1/24)");
    return false;
  }
  *out = IfAddr{*a, p->len};
  return true;
}

bool Reader::read(const Field& f, std::vector<Prefix>* out) {
  std::vector<Prefix> v;
  bool ok = true;
  if (f.node.IsScalar()) {  // a single prefix where a list was expected: accept it
    Prefix p;
    if (!read(f, &p)) return false;
    *out = {p};
    return true;
  }
  list(f, [&](const Field& item) {
    Prefix p;
    if (read(item, &p))
      v.push_back(p);
    else
      ok = false;
  });
  if (f.node.IsDefined() && !f.node.IsNull() && !f.node.IsSequence()) ok = false;
  if (ok) *out = std::move(v);
  return ok;
}

}  // namespace espgw::model::internal
