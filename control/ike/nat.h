// NAT detection (RFC 7296 section 2.23): the NAT_DETECTION_*_IP notify data.
#pragma once

#include <array>
#include <cstdint>

#include "control/ike/wire.h"
#include "dataplane/net/ip.h"

namespace espgw::ike {

// SHA-1(SPIi | SPIr | IP address | Port). In an IKE_SA_INIT request SPIr is zero.
std::array<uint8_t, 20> nat_detection_hash(uint64_t spi_i, uint64_t spi_r, const IpAddr& addr,
                                           uint16_t port);

// True if the notify data matches the hash of the given address/port (no NAT on that side).
bool nat_detection_matches(ByteView data, uint64_t spi_i, uint64_t spi_r, const IpAddr& addr,
                           uint16_t port);

}  // namespace espgw::ike
