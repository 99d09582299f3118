// The Daemon (daemon.h), part 2: IKE messages out and in. Encoding (SK-protected, split into
// RFC 7383 fragments above the MTU), sending, unauthenticated error responses, and reassembly
// of fragmented messages with their refusal counters.
#include "control/ike/daemon.h"

#include <openssl/crypto.h>

#include <string>
#include <string_view>

namespace espgw::ike {

std::optional<Bytes> Daemon::encode(IkeSa& sa, ExchangeType ex, bool response, uint32_t id,
                                    const std::vector<Payload>& payloads) {
  Header h;
  h.spi_i = sa.spi_i;
  h.spi_r = ex == ExchangeType::kIkeSaInit && !response ? 0 : sa.spi_r;
  h.exchange = ex;
  h.flags = uint8_t((sa.initiator ? kFlagInitiator : 0) | (response ? kFlagResponse : 0));
  h.message_id = id;
  if (ex == ExchangeType::kIkeSaInit) {
    Message m;
    m.hdr = h;
    m.payloads = payloads;
    return encode_message(m);
  }
  if (!sa.sk) return std::nullopt;
  return sa.sk->out->protect(h, payloads);
}

std::optional<std::vector<Bytes>> Daemon::encode_packets(IkeSa& sa, ExchangeType ex, bool response,
                                                         uint32_t id,
                                                         const std::vector<Payload>& payloads) {
  auto whole = encode(sa, ex, response, id, payloads);
  if (!whole) return std::nullopt;
  if (ex == ExchangeType::kIkeSaInit || !sa.frag || !sa.sk) return std::vector<Bytes>{*whole};
  // IP + UDP headers, and the non-ESP marker on port 4500.
  size_t outer = (sa.remote.addr.is_v6() ? 40 : 20) + 8 + (sa.remote.port == kNattPort ? 4 : 0);
  size_t mtu = sa.remote.addr.is_v6() ? tun_.frag_mtu_v6 : tun_.frag_mtu_v4;
  if (whole->size() + outer <= mtu) return std::vector<Bytes>{*whole};
  Header h;
  decode_header(*whole, h);
  auto frags = mtu > outer ? sa.sk->out->protect_fragments(h, payloads, mtu - outer) : std::nullopt;
  if (!frags) return std::vector<Bytes>{*whole};  // an MTU too small for fragments: try whole
  if (ConnState* cs = conn_state(sa.conn->name)) {
    ++cs->frag.messages_fragmented;
    cs->frag.fragments_out += frags->size();
  }
  return frags;
}

void Daemon::send(IkeSa& sa, const Bytes& msg) { env_.send(sa.local, sa.remote, msg); }

void Daemon::send(IkeSa& sa, const std::vector<Bytes>& packets) {
  for (const Bytes& p : packets) env_.send(sa.local, sa.remote, p);
}

bool Daemon::reassemble(IkeSa& sa, ByteView raw, Message& m) {
  ConnState* cs = conn_state(sa.conn->name);
  if (!cs) return false;
  FragCounters before = cs->frag;
  bool complete = add_fragment(sa, raw, m, cs->frag);
  refuse_fragments(before, cs->frag, sa.label() + ": IKE fragment");
  return complete;
}

// Every refusal the frag counters (`show connection`) record is also a named refusal
// (`show ike counters`, rate-limited log): "fragment_" and the reason, "fragment_unsupported" for
// an SKF on an IKE SA that did not negotiate fragmentation. Counted per fragment, as there.
void Daemon::refuse_fragments(const FragCounters& before, const FragCounters& after,
                              const std::string& what) {
  auto b = before.named(), a = after.named();
  for (size_t i = 0; i < a.size(); ++i) {
    std::string_view reason = a[i].first;
    if (!reason.starts_with("drop_") || a[i].second == b[i].second) continue;
    reason.remove_prefix(5);
    std::string name =
        reason == "not_negotiated" ? "fragment_unsupported" : "fragment_" + std::string(reason);
    for (uint64_t k = b[i].second; k < a[i].second; ++k) refuse(name, what + " dropped");
  }
}

bool Daemon::add_fragment(IkeSa& sa, ByteView raw, Message& m, FragCounters& c) {
  FragHeader f;
  if (parse_fragment(raw, f) != DecodeError::kOk) return ++c.drop_malformed, false;
  // RFC 7383 2.5: fragments only on IKE SAs where both announced support.
  if (!sa.frag || !sa.sk) return ++c.drop_not_negotiated, false;
  Bytes plain;
  if (sa.sk->in->open_fragment(raw, plain) != SkError::kOk) return ++c.drop_integrity, false;
  const bool resp = f.hdr.response();
  const uint32_t id = f.hdr.message_id;
  if (resp ? !(sa.tm.busy() && id == sa.tm.next_out()) : id != sa.tm.next_in()) {
    // The request we answered last, retransmitted: answer once per retransmission (on its first
    // fragment), not once per fragment.
    if (!resp && id + 1 == sa.tm.next_in() && f.number == 1) {
      ++c.fragments_in;
      Message again;
      again.hdr = f.hdr;
      sa.tm.on_request(*this, sa, again);
      return false;
    }
    OPENSSL_cleanse(plain.data(), plain.size());
    return ++c.drop_unexpected_id, false;
  }
  Reassembly& r = resp ? sa.frag_resp : sa.frag_req;
  auto res = r.add(f, std::move(plain), now(), tun_.frag, c);
  if (res == Reassembly::Result::kDropped) return false;
  ++c.fragments_in;
  if (res != Reassembly::Result::kComplete) return false;
  PayloadType first = r.first();
  Bytes chain = r.take();
  m = {};
  m.hdr = f.hdr;
  m.hdr.next = first;
  DecodeStatus st = decode_payloads(first, chain, m.payloads);
  OPENSSL_cleanse(chain.data(), chain.size());
  if (!st.ok()) return ++c.drop_malformed, false;
  ++c.messages_reassembled;
  return true;
}

void Daemon::send_plain_error(const Endpoint& local, const Endpoint& remote, const Header& req,
                              NotifyPayload n) {
  Message m;
  m.hdr = req;
  m.hdr.spi_r = 0;
  m.hdr.flags = kFlagResponse;
  m.payloads.push_back(make_payload(std::move(n)));
  env_.send(local, remote, encode_message(m));
}

// A request with a higher major version: INVALID_MAJOR_VERSION, unauthenticated, in a header
// with the version we support (RFC 7296 2.5).
void Daemon::send_version_error(const Endpoint& local, const Endpoint& remote, const Header& req) {
  Message m;
  m.hdr = req;
  m.hdr.major = 2;
  m.hdr.minor = 0;
  m.hdr.flags = uint8_t(kFlagResponse | (req.initiator() ? 0 : kFlagInitiator));
  m.payloads.push_back(make_payload(NotifyPayload::make(NotifyType::kInvalidMajorVersion)));
  env_.send(local, remote, encode_message(m));
}

}  // namespace espgw::ike
