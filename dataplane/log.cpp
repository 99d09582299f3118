#include "dataplane/log.h"

#include <cstdio>
#include <map>

namespace espgw::logging {

namespace {
Sink g_sink;
Level g_threshold = Level::kInfo;
struct Gate {
  uint64_t window_start = 0;
  unsigned lines = 0;
  uint64_t suppressed = 0;
};
// Keys are chosen by the code (counter names, peer names), not by what a remote party sends;
// the map is still capped so it cannot grow without bound.
std::map<std::string, Gate> g_gates;
constexpr size_t kMaxGates = 4096;
}  // namespace

const char* level_name(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarning: return "warning";
    case Level::kError: return "error";
  }
  return "?";
}

void set_sink(Sink s) { g_sink = std::move(s); }
void set_threshold(Level l) { g_threshold = l; }

void log(Level l, const std::string& line) {
  if (l < g_threshold || !g_sink) return;
  g_sink(l, line);
}

void logf(Level l, const char* fmt, ...) {
  if (l < g_threshold || !g_sink) return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  g_sink(l, buf);
}

bool limited(const std::string& key, uint64_t now_ms, Level l, const std::string& line,
             unsigned burst, uint64_t window_ms) {
  auto it = g_gates.find(key);
  if (it == g_gates.end()) {
    if (g_gates.size() >= kMaxGates) g_gates.clear();
    it = g_gates.emplace(key, Gate{now_ms, 0, 0}).first;
  }
  Gate& g = it->second;
  if (now_ms - g.window_start >= window_ms) {
    g.window_start = now_ms;
    g.lines = 0;
  }
  if (g.lines >= burst) {
    ++g.suppressed;
    return false;
  }
  ++g.lines;
  if (g.suppressed) {
    log(l, line + " (" + std::to_string(g.suppressed) + " similar lines left out)");
    g.suppressed = 0;
  } else {
    log(l, line);
  }
  return true;
}

}  // namespace espgw::logging
