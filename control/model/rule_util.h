// Small helpers shared by the validation rules. Private to control/model.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "control/model/validate.h"

namespace espgw::model::rules::util {

inline void add(Errors& e, const Config& c, Mark m, std::string field, std::string message) {
  e.push_back({c.path, m, std::move(field), std::move(message)});
}

// "connections" + 2 -> "connections[2]"
inline std::string at(std::string_view list, size_t i) {
  return std::string(list) + "[" + std::to_string(i) + "]";
}

// Appends "must be lo..hi" when v is outside [lo, hi].
inline void range(Errors& e, const Config& c, Mark m, const std::string& field, uint64_t v,
                  uint64_t lo, uint64_t hi) {
  if (v < lo || v > hi)
    add(e, c, m, field,
        std::to_string(v) + " is out of range (" + std::to_string(lo) + ".." + std::to_string(hi) +
            ")");
}

inline void mss_clamp(Errors& e, const Config& c, Mark m, const std::string& field, uint64_t v) {
  if (v != 0 && (v < 536 || v > 9000))
    add(e, c, m, field, std::to_string(v) + " is out of range (0 = off, or 536..9000)");
}

}  // namespace espgw::model::rules::util
