#include "control/ike/ike_sa.h"

#include <algorithm>
#include <cstdio>

namespace espgw::ike {

const char* to_string(IkeState s) {
  switch (s) {
    case IkeState::kCreated: return "CONNECTING";
    case IkeState::kHalfOpen: return "HALF_OPEN";
    case IkeState::kAuthSent: return "AUTHENTICATING";
    case IkeState::kEstablished: return "ESTABLISHED";
    case IkeState::kRekeyed: return "REKEYED";
    case IkeState::kDeleting: return "DELETING";
    case IkeState::kDead: return "DEAD";
  }
  return "?";
}

ChildSa* IkeSa::child_by_in(uint32_t spi) {
  for (auto& c : children)
    if (c.spi_in == spi) return &c;
  return nullptr;
}

bool IkeSa::has_live_child() const {
  return std::any_of(children.begin(), children.end(), [](const ChildSa& c) {
    return c.state == ChildState::kInstalled ||
           (c.state == ChildState::kOutPending && !c.redundant);
  });
}

ChildSa* IkeSa::child_by_out(uint32_t spi) {
  for (auto& c : children)
    if (c.spi_out == spi) return &c;
  return nullptr;
}

std::string IkeSa::label() const {
  char b[64];
  std::snprintf(b, sizeof b, "[%016llx_i %016llx_r]", (unsigned long long)spi_i,
                (unsigned long long)spi_r);
  return (conn ? conn->name : std::string("?")) + b;
}

bool nonce_less(ByteView a, ByteView b) {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end());
}

ByteView min_nonce(const Bytes& a, const Bytes& b) {
  return nonce_less(a, b) ? ByteView(a) : ByteView(b);
}

}  // namespace espgw::ike
