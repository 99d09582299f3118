// libFuzzer: the data plane's frame classifier, the ESP / UDP 4500 classifier (RFC 3948: ESP,
// NAT keepalive, IKE behind the non-ESP marker) and ICMP error builders on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "dataplane/proto/esp.h"
#include "dataplane/proto/icmp.h"
#include "dataplane/proto/pkt.h"

using namespace espgw::dp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> f(data, data + size);  // exact-size copy: ASan sees any overread
  Parsed p;
  ParseResult r = parse_frame(f.data(), uint32_t(f.size()), p);
  if (!r.is_ok() || p.l3 == L3::kArp) return 0;
  // what the worker relies on after a successful parse
  if (p.l3_off + p.l3_len > f.size() || p.l4_off > p.l3_off + p.l3_len) __builtin_trap();
  (void)may_send_icmp_error(f.data(), p);
  EspLoc loc;
  if (classify_esp(f.data(), p, loc) == EspClass::kEsp &&
      (loc.esp_off < p.l4_off || loc.esp_off + loc.esp_len > p.l3_off + p.l3_len))
    __builtin_trap();  // the ESP the worker decrypts lies inside the IP packet
  static uint8_t out[2048];
  const uint8_t src[16] = {10, 0, 0, 1};
  const uint8_t* ip = f.data() + p.l3_off;
  if (p.l3 == L3::kIpv4)
    build_icmp4_error(out, sizeof out, ip, p.l3_len, kIcmp4Unreach, kIcmp4CodeFragNeeded, 1400, src);
  else
    build_icmp6_error(out, sizeof out, ip, p.l3_len, kIcmp6TooBig, 0, 1400, src);
  return 0;
}
