// The process's one logger: levels, a sink the process installs (control/agent/main.cpp writes
// to stdout/stderr; nothing else in the tree writes there), and rate limiting by key so that no
// remote party can flood the log. The data plane and the agent log through it; the IKE and BGP
// libraries get a log function injected by the agent. Control thread and start-up code only:
// never from a worker's loop.
#pragma once

#include <cstdarg>
#include <cstdint>
#include <functional>
#include <string>

namespace espgw::logging {

enum class Level : uint8_t { kDebug, kInfo, kWarning, kError };
const char* level_name(Level l);

// Receives every line at or above the threshold. Unset: lines go nowhere.
using Sink = std::function<void(Level, const std::string& line)>;
void set_sink(Sink s);
void set_threshold(Level l);

void log(Level l, const std::string& line);
void logf(Level l, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
inline void info(const std::string& line) { log(Level::kInfo, line); }
inline void warning(const std::string& line) { log(Level::kWarning, line); }
inline void error(const std::string& line) { log(Level::kError, line); }

// A line under a rate limit: at most `burst` lines per key per `window_ms`; the lines left out
// are counted and the next line let through says how many. Returns true if it was logged.
bool limited(const std::string& key, uint64_t now_ms, Level l, const std::string& line,
             unsigned burst = 5, uint64_t window_ms = 10000);

}  // namespace espgw::logging
