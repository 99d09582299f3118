// BGP's names for the shared bounds-checked reader and writer (control/wire/).
#pragma once

#include "control/wire/reader.h"
#include "control/wire/writer.h"

namespace espgw::bgp {

using Bytes = wire::Bytes;
using wire::Reader;
using wire::Writer;

}  // namespace espgw::bgp
