// IKE's names for the shared bounds-checked reader and writer (control/wire/).
#pragma once

#include "control/wire/reader.h"
#include "control/wire/writer.h"

namespace espgw::ike {

using Bytes = wire::Bytes;
using ByteView = wire::ByteView;
using wire::Reader;
using wire::Writer;

}  // namespace espgw::ike
