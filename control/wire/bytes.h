// The byte types of the wire layer: an owned buffer and a read-only view into one.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace espgw::wire {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

}  // namespace espgw::wire
