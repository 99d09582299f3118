// libFuzzer target for the BGP session: the byte stream of one peer cut into arbitrary chunks,
// interleaved with connection events (accepts, outgoing connects completing or failing, closes,
// second connections for collisions and graceful restart) and timer ticks, before and after the
// session is Established. Asserts (bgp_harness.h) that nothing crashes or hangs, that at most one
// partial message per connection stays buffered, that everything sent back decodes, and that
// the RIB and its FIB mirror stay consistent with the session state.
//
// Input: a flags byte (bit 0: start Established, bit 1: over an accepted connection rather than
// our connect, bit 2: the peer announces graceful restart, bit 3: 2-octet AS session, bit 4:
// passive), then operations of one byte each, some followed by a length and bytes:
//   op % 8 = 0..2: bytes on a connection: length u8 (u16 % 8192 if op & 0x80), then the bytes
//            3:    time passes: u8 * 500 ms, then tick
//            4:    a new incoming connection from the peer
//            5:    the peer closes a connection
//            6:    our pending connect completes (fails if op & 0x80)
//            7:    a framed message on a connection: type u8 % 6 (0 = the peer's valid OPEN and a
//                  KEEPALIVE), body length u16 % 4096, the body
// (op >> 3) & 7 picks the connection among the open ones.
#include <algorithm>
#include <vector>

#include "tests/fuzz/bgp_harness.h"

namespace {

using namespace espgw::bgp;
using espgw::IpAddr;
using espgw::Prefix;
using namespace espgw::bgp::fuzz;

constexpr uint32_t kPeerAs = 65001;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Ops in(data, size);
  const uint8_t flags = in.u8();
  const bool gr = flags & 4, as4 = !(flags & 8);
  CheckingTransport t;
  MirrorFib fib;
  SpeakerConfig sc;
  sc.local.asn = 65000;
  sc.local.router_id = 0x0a000001;
  sc.originate = {*Prefix::parse("10.1.0.0/16"), *Prefix::parse("fd00:1::/48")};
  Speaker s(sc, t, &fib);
  PeerConfig pc;
  pc.name = "site";
  pc.address = *IpAddr::parse("10.0.0.2");
  pc.local_address = *IpAddr::parse("10.0.0.1");
  pc.asn = kPeerAs;
  pc.hold_time = 90;
  pc.passive = flags & 16;
  pc.max_prefixes = 1000;
  const PeerId id = s.add_peer(pc);
  t.codec = [&s](ConnId c) -> const Codec* {
    Peer* p = s.peer_by_conn(c);
    return p && p->state() >= State::kOpenConfirm ? &p->codec() : nullptr;
  };
  uint64_t now = 1000;
  s.start(now);
  std::vector<ConnId> conns;
  auto accept = [&] {
    ConnId c = t.fresh();
    if (s.on_accept(c, pc.address, now)) conns.push_back(c);
    else t.close(c);
  };
  auto complete_connect = [&](bool ok) {
    if (t.connecting.empty()) return;
    ConnId c = *t.connecting.begin();
    t.connecting.erase(c);
    if (ok) {
      conns.push_back(c);
      s.on_connected(c, now);
    } else {
      s.on_connect_failed(c, now);
    }
  };
  const Bytes open = peer_open(kPeerAs, 0x0a000002, 90, gr, as4);
  const Bytes keepalive = encode_keepalive();
  if (flags & 1) {
    if (flags & 2 || pc.passive) accept();
    else complete_connect(true);
    if (!conns.empty()) {
      s.on_data(conns.back(), open, now);
      s.on_data(conns.back(), keepalive, now);
    }
  }
  check_speaker(s, &fib);
  for (unsigned steps = 0; !in.done() && steps < 4096; ++steps) {
    const uint8_t op = in.u8();
    ConnId c = conns.empty() ? 0 : conns[((op >> 3) & 7) % conns.size()];
    switch (op % 8) {
      case 0:
      case 1:
      case 2: {
        size_t n = op & 0x80 ? in.u16() % 8192 : in.u8();
        auto b = in.take(n);
        if (c) s.on_data(c, b, now);
        break;
      }
      case 3:
        now += uint64_t(in.u8()) * 500;
        s.tick(now);
        break;
      case 4: accept(); break;
      case 5:
        if (c) {
          t.close(c);
          s.on_closed(c, now);
        }
        break;
      case 6: complete_connect(!(op & 0x80)); break;
      case 7: {
        const uint8_t type = in.u8() % 6;
        auto body = in.take(in.u16() % 4096);
        if (!c) break;
        if (type == 0) {
          s.on_data(c, open, now);
          s.on_data(c, keepalive, now);
        } else {
          s.on_data(c, frame(MsgType(type), body), now);
        }
        break;
      }
    }
    std::erase_if(conns, [&](ConnId x) { return t.closed.count(x) != 0; });
    check_speaker(s, &fib);
    check(s.peer(id)->state() != State::kEstablished || !conns.empty());
  }
  s.stop(now);
  check_speaker(s, &fib);
  return 0;
}
