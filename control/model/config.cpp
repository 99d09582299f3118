#include "control/model/config.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>

#include "control/model/parse.h"
#include "control/model/yaml_reader.h"

namespace espgw::model {
namespace {

constexpr size_t kMaxConfigBytes = 4 << 20;

ConfigError yaml_error(const std::string& file, const YAML::Exception& ex) {
  Mark m = internal::mark_of_yaml(ex.mark);
  return {file, m, "",
          "YAML syntax error: " + (ex.msg.empty() ? std::string("invalid YAML") : ex.msg)};
}

// Ignores the events of a document; remembers where it started.
class SkipDocument : public YAML::EventHandler {
 public:
  YAML::Mark start = YAML::Mark::null_mark();
  void OnDocumentStart(const YAML::Mark& m) override { start = m; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// Parses the first document. YAML::LoadAll() is not used: yaml-cpp 0.7 loops forever producing
// empty documents on input like "," (found by tests/fuzz/config_fuzz.cpp). Anything after the first
// document is found by a second, event-only pass that stops after two documents.
YAML::Node load_one_document(const std::string& yaml, Mark* trailing) {
  YAML::Node root = YAML::Load(yaml);
  std::istringstream in(yaml);
  YAML::Parser parser(in);
  SkipDocument skip;
  if (parser.HandleNextDocument(skip) && parser.HandleNextDocument(skip)) {
    *trailing = internal::mark_of_yaml(skip.start);
    if (trailing->line == 0) *trailing = {1, 1};
  }
  return root;
}

// Semantic errors carry the mark of the entry they are about; where the parser saw the exact field
// (or the closest enclosing one), point there instead.
void refine_marks(std::vector<ConfigError>& errors, const std::map<std::string, Mark>& marks) {
  for (auto& e : errors) {
    std::string f = e.field;
    while (!f.empty()) {
      if (auto it = marks.find(f); it != marks.end() && it->second.line != 0) {
        e.mark = it->second;
        break;
      }
      auto cut = f.find_last_of(".[");
      if (cut == std::string::npos) break;
      f.resize(cut);
    }
  }
}

LoadResult load(const std::string& yaml, const std::string& path) {
  LoadResult res;
  YAML::Node root;
  Mark trailing;
  try {
    root = load_one_document(yaml, &trailing);
  } catch (const YAML::Exception& ex) {
    res.errors.push_back(yaml_error(path, ex));
    return res;
  }
  if (!root.IsDefined() || root.IsNull()) {
    res.errors.push_back({path, {}, "", "the config is empty"});
    return res;
  }
  if (trailing.line != 0) {
    res.errors.push_back({path, trailing, "",
                          "more than one YAML document (or stray text after the first one); put "
                          "the whole config in one document"});
    return res;
  }
  internal::Reader reader(path);
  Config c;
  c.path = path;
  internal::parse_config(reader, root, &c);
  if (!reader.errors().empty()) {
    res.errors = std::move(reader.errors());
    return res;
  }
  res.errors = validate(c);
  if (!res.errors.empty()) {
    refine_marks(res.errors, reader.marks());
    // File order reads best; errors without a position come first.
    std::stable_sort(res.errors.begin(), res.errors.end(), [](const auto& a, const auto& b) {
      return std::pair(a.mark.line, a.mark.column) < std::pair(b.mark.line, b.mark.column);
    });
    if (res.errors.size() > internal::Reader::kMaxErrors) {
      res.errors.resize(internal::Reader::kMaxErrors);
      res.errors.push_back({path, {}, "", "too many errors; stopping here"});
    }
    return res;
  }
  res.config = std::move(c);
  return res;
}

}  // namespace

std::string ConfigError::str() const {
  std::string s;
  if (!file.empty()) {
    s = file;
    if (mark.line > 0) s += ":" + std::to_string(mark.line) + ":" + std::to_string(mark.column);
    s += ": ";
  }
  if (!field.empty()) s += field + ": ";
  return s + message;
}

const LocalNetworkGateway* Config::find_lng(const std::string& name) const {
  for (const auto& l : local_network_gateways)
    if (l.name == name) return &l;
  return nullptr;
}

const Port* Config::find_port(const std::string& name) const {
  for (const auto& p : instance.ports)
    if (p.name == name) return &p;
  return nullptr;
}

bool asn_reserved(uint32_t asn) {
  return asn == 0 || asn == 23456 || (asn >= 64496 && asn <= 64511) ||
         (asn >= 65535 && asn <= 65551) || asn == 4294967295u ||
         // reserved by the cloud provider for its own use
         asn == 8074 || asn == 8075 || asn == 12076 || asn == 65515 ||
         (asn >= 65517 && asn <= 65520);
}

LoadResult load_config_string(const std::string& yaml, const std::string& path) {
  try {
    return load(yaml, path);
  } catch (const std::exception& ex) {
    LoadResult res;
    res.errors.push_back({path, {}, "", std::string("cannot load config: ") + ex.what()});
    return res;
  } catch (...) {
    LoadResult res;
    res.errors.push_back({path, {}, "", "cannot load config: unknown error"});
    return res;
  }
}

LoadResult load_config(const std::string& path) {
  LoadResult res;
  try {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      res.errors.push_back({path, {}, "", std::string("cannot open: ") + std::strerror(errno)});
      return res;
    }
    std::string text;
    char buf[65536];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
      text.append(buf, size_t(in.gcount()));
      if (text.size() > kMaxConfigBytes) {
        res.errors.push_back({path, {}, "", "the config is too large (more than 4 MiB)"});
        return res;
      }
    }
    if (in.bad()) {
      res.errors.push_back({path, {}, "", "cannot read the file"});
      return res;
    }
    return load_config_string(text, path);
  } catch (const std::exception& ex) {
    res.errors.push_back({path, {}, "", std::string("cannot load config: ") + ex.what()});
    return res;
  }
}

}  // namespace espgw::model
