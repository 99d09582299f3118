// libFuzzer target for the BGP wire layer. The input is decoded as a whole message and as an
// UPDATE body, with 4-octet and 2-octet AS sessions. Whatever decodes must re-encode to bytes
// that decode to the same value and re-encode to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "control/bgp/message.h"

namespace {

using namespace espgw::bgp;

void check(bool ok) {
  if (!ok) std::abort();
}

// RFC 6793 s4.2.3: a 2-octet AS receiver ignores AS4_PATH when AGGREGATOR is not AS_TRANS. An
// UPDATE with such an aggregator and a path holding 4-octet ASNs therefore cannot reach a 2-octet
// peer whole (any NEW speaker has the same loss): its ASNs above 65535 arrive as AS_TRANS.
bool as4_path_lost(const Update& u, const Codec& c) {
  return !c.as4 && u.attrs.aggregator && u.attrs.aggregator->asn != kAsTrans &&
         u.attrs.aggregator->asn <= 0xffff && u.attrs.as_path &&
         u.attrs.as_path->has_asn_above(0xffff);
}

bool as4_path_lost(const Message& m, const Codec& c) {
  const auto* u = std::get_if<Update>(&m);
  return u && as4_path_lost(*u, c);
}

void message_round_trip(std::span<const uint8_t> in, const Codec& c) {
  MessageResult r = decode_message(in, c);
  if (!r.ok()) {
    check(r.notification.code != 0);
    return;
  }
  (void)to_string(r.message);
  Bytes b = encode(r.message, c);
  if (b.empty()) return;  // grew past 4096 (e.g. AS4_PATH added for a 2-octet peer)
  MessageResult r2 = decode_message(b, c);
  check(r2.ok());
  if (as4_path_lost(r.message, c)) {  // from the reduced message on, the round trip holds
    check(!as4_path_lost(r2.message, c));
    Bytes b2 = encode(r2.message, c);
    MessageResult r3 = decode_message(b2, c);
    check(r3.ok() && r3.message == r2.message && encode(r3.message, c) == b2);
    return;
  }
  check(r2.message == r.message);
  check(encode(r2.message, c) == b);
}

void update_round_trip(std::span<const uint8_t> body, const Codec& c) {
  UpdateResult r = decode_update(body, c);
  if (!r.ok()) return;
  (void)to_string(r.update);
  Bytes b = encode_update(r.update, c);
  if (b.empty()) return;
  UpdateResult r2 = decode_update(std::span<const uint8_t>(b).subspan(kHeaderLen), c);
  check(r2.ok());
  if (as4_path_lost(r.update, c)) {  // as in message_round_trip
    check(!as4_path_lost(r2.update, c));
    Bytes b2 = encode_update(r2.update, c);
    UpdateResult r3 = decode_update(std::span<const uint8_t>(b2).subspan(kHeaderLen), c);
    check(r3.ok() && r3.update == r2.update && encode_update(r3.update, c) == b2);
    return;
  }
  check(r2.update == r.update);
  check(encode_update(r2.update, c) == b);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  for (bool as4 : {true, false}) {
    Codec c{.as4 = as4, .addpath = (size & 1) != 0, .ebgp = (size & 2) != 0};
    message_round_trip(in, c);
    update_round_trip(in, c);
  }
  return 0;
}
