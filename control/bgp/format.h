// Text forms of BGP values for logs, tests and `espgwctl show bgp`.
#pragma once

#include <string>
#include <vector>

#include "control/bgp/attrs.h"
#include "control/bgp/constants.h"
#include "control/bgp/nlri.h"

namespace espgw::bgp {

std::string origin_str(Origin o);                       // "igp", "egp", "incomplete"
std::string family_str(AfiSafi f);                      // "ipv6-unicast", "afi-25-safi-65"
std::string nlri_str(const Nlri& n);                    // "10.0.0.0/8", "10.0.0.0/8#7" (path id)
std::string nlri_list_str(const std::vector<Nlri>& v);  // " 10.0.0.0/8 10.1.0.0/16"
std::string raw_attr_str(const RawAttr& a);             // "attr-99 flags 0xe0 0a0b0c"
std::string hex(std::span<const uint8_t> b);            // "0a0b0c"

}  // namespace espgw::bgp
