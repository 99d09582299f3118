#include "control/ike/nat.h"

#include <openssl/evp.h>

#include <algorithm>

namespace espgw::ike {

std::array<uint8_t, 20> nat_detection_hash(uint64_t spi_i, uint64_t spi_r, const IpAddr& addr,
                                           uint16_t port) {
  Bytes in;
  Writer w(in);
  w.u64(spi_i);
  w.u64(spi_r);
  w.bytes(ByteView(addr.bytes.data(), addr.is_v4() ? 4 : 16));
  w.u16(port);
  std::array<uint8_t, 20> out{};
  unsigned len = 0;
  EVP_Digest(in.data(), in.size(), out.data(), &len, EVP_sha1(), nullptr);
  return out;
}

bool nat_detection_matches(ByteView data, uint64_t spi_i, uint64_t spi_r, const IpAddr& addr,
                           uint16_t port) {
  auto h = nat_detection_hash(spi_i, spi_r, addr, port);
  return data.size() == h.size() && std::equal(h.begin(), h.end(), data.begin());
}

}  // namespace espgw::ike
