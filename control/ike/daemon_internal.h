// Helpers shared by the Daemon's source files (daemon.cpp, daemon_messages.cpp,
// daemon_children.cpp, daemon_tick.cpp): hex formatting of SPIs and seconds left until a
// deadline. Internal to control/ike/daemon*.cpp; not part of the Daemon's interface.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace espgw::ike {

inline std::string hex32(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", v);
  return b;
}
inline std::string hex64(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "%016llx", (unsigned long long)v);
  return b;
}
inline int64_t secs_left(uint64_t at, uint64_t now) {
  return at ? (int64_t(at) - int64_t(now)) / 1000 : -1;
}

}  // namespace espgw::ike
