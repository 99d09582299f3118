// libFuzzer target for the IKEv2 parser (control/ike): decodes the input as a whole message and as
// the body of every payload type; whatever decodes is encoded and decoded again and must be stable.
// Also feeds the input to SK decryption, proposal selection and the TS/ID helpers.
//
// Built by scripts/fuzz.sh (clang, libFuzzer) and by tests/fuzz/meson.build (replay in CI).
#include <cstdint>
#include <cstdlib>

#include "control/ike/frag.h"
#include "control/ike/message.h"
#include "control/ike/payloads.h"
#include "control/ike/sk.h"
#include "control/ike/transforms.h"

using namespace espgw::ike;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void message_round_trip(ByteView in) {
  Message m;
  DecodeStatus st = decode_message(in, m);
  if (!st.ok()) {
    (void)st.notify();
    return;
  }
  (void)m.describe();
  Bytes once = encode_message(m);
  Message m2;
  check(decode_message(once, m2).ok());
  Bytes twice = encode_message(m2);
  check(once == twice);  // (structs may differ: unknown transform attributes are not re-encoded)

  // The helpers a task would call on a decoded message.
  if (const SaPayload* sa = m.sa()) {
    static const std::vector<Proposal> ours = [] {
      std::vector<Proposal> v;
      for (const char* s : {"aes128gcm16-aes256gcm16-prfsha256-prfsha384-ecp256-x25519",
                            "aes256-sha256-modp2048-modp3072"})
        v.push_back(*parse_proposal(s, ProtocolId::kIke));
      for (const char* s : {"aes256gcm16-esn-noesn", "aes128-sha256-ecp256"})
        v.push_back(*parse_proposal(s, ProtocolId::kEsp));
      return v;
    }();
    if (auto sel = select_proposal(ours, sa->proposals)) {
      auto s = suite_of(*sel);
      check(s.has_value());
      (void)s->str();
      (void)esp_algo(*s);
    }
    (void)accept_reply(ours, *sa);
  }
  for (const auto* ts : {m.tsi(), m.tsr()})
    if (ts)
      for (const auto& sel : ts->selectors) {
        (void)sel.str();
        if (auto p = sel.to_prefix()) {
          auto back =
              TrafficSelector::from_prefix(*p, sel.ip_protocol, sel.start_port, sel.end_port);
          check(back == sel);
        }
      }
  for (const auto* id : {m.idi(), m.idr()})
    if (id) (void)id->str();
  for (const auto* n : m.notifies()) {
    (void)n->ke_group();
    (void)n->spi32();
  }
}

void body_round_trip(PayloadType type, ByteView in) {
  PayloadBody body;
  if (decode_body(type, Reader(in), body) != DecodeError::kOk) return;
  Bytes once;
  Writer w(once);
  encode_body(body, w);
  PayloadBody body2;
  check(decode_body(type, Reader(once), body2) == DecodeError::kOk);
  Bytes twice;
  Writer w2(twice);
  encode_body(body2, w2);
  check(once == twice);
}

void sk_open(ByteView in) {
  static const auto crypters = [] {
    std::vector<std::unique_ptr<SkCrypter>> v;
    for (const char* s : {"aes128gcm16-prfsha256-ecp256", "aes256-sha256-modp2048",
                          "chacha20poly1305-prfsha256-x25519"}) {
      Suite suite = *suite_of(*parse_proposal(s, ProtocolId::kIke));
      Bytes e(suite.encr_key_len(), 0x42), a(suite.integ_key_len(), 0x24);
      v.push_back(SkCrypter::make(suite, espgw::Secret(e.data(), e.size()),
                                  espgw::Secret(a.data(), a.size())));
    }
    return v;
  }();
  // RFC 7383 fragments: the SKF parser, decryption and the bounded reassembly.
  FragHeader fh;
  bool skf = parse_fragment(in, fh) == DecodeError::kOk;
  static Reassembly reasm;  // kept across inputs, like an IKE SA's
  static FragCounters counters;
  for (const auto& c : crypters) {
    Message m;
    (void)c->unprotect(in, m);
    Bytes pt;
    if (c->open_fragment(in, pt) == SkError::kOk) {
      check(skf);
      FragLimits lim;
      lim.max_fragments = 8;
      lim.max_bytes = 4096;
      static uint64_t now = 0;
      reasm.expire(++now, lim, counters);
      if (reasm.add(fh, pt, now, lim, counters) == Reassembly::Result::kComplete) {
        PayloadType first = reasm.first();
        Bytes chain = reasm.take();
        check(chain.size() <= lim.max_bytes);
        std::vector<Payload> out;
        (void)decode_payloads(first, chain, out);
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  message_round_trip(in);
  static constexpr PayloadType kTypes[] = {
      PayloadType::kSa,    PayloadType::kKe,        PayloadType::kIdi,    PayloadType::kAuth,
      PayloadType::kNonce, PayloadType::kNotify,    PayloadType::kDelete, PayloadType::kVendorId,
      PayloadType::kTsi,   PayloadType::kEncrypted, PayloadType::kConfig};
  for (PayloadType t : kTypes) body_round_trip(t, in);
  // A chain without the header, starting with the type named by the first octet.
  if (size > 0) {
    std::vector<Payload> out;
    (void)decode_payloads(PayloadType(data[0]), in.subspan(1), out);
  }
  sk_open(in);
  return 0;
}
