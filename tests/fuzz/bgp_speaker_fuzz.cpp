// libFuzzer target for the speaker and its RIB: three Established eBGP peers (transit between
// them) receive UPDATE, NOTIFICATION, ROUTE-REFRESH and KEEPALIVE streams, lose and re-establish
// their sessions (with and without graceful restart) and let time pass. The peers' prefix limits
// are small and use the three actions (reset, discard, warn). Asserts (bgp_harness.h) after every
// step: the RIB is consistent (one path per peer and prefix, valid selections, per-peer counts),
// the FIB mirror holds exactly the selected learned routes, a peer that is not Established has no
// fresh routes and nothing in its Adj-RIB-Out, no peer holds more than its hard limit, and every
// UPDATE the speaker sends to the others decodes.
//
// Input: a flags byte (bit i: peer i announces graceful restart; bit 3: peer 0 is a 2-octet AS
// session), then operations; (op >> 3) % 3 picks the peer:
//   op % 8 = 0..3: a framed UPDATE: body length u16 % 4096, the body
//            4:    a ROUTE-REFRESH for IPv4 (IPv6 if op & 0x80) unicast
//            5:    raw bytes on the session: length u8, the bytes
//            6:    the session drops: a NOTIFICATION (Cease) if op & 0x80, else the TCP
//                  connection closes; then the peer comes back (new connection, OPEN, KEEPALIVE)
//            7:    time passes: u8 * 1000 ms, then tick
#include <array>

#include "tests/fuzz/bgp_harness.h"

namespace {

using namespace espgw::bgp;
using espgw::IpAddr;
using espgw::Prefix;
using namespace espgw::bgp::fuzz;

constexpr unsigned kPeers = 3;
constexpr uint32_t kMaxPrefixes[kPeers] = {40, 60, 30};
constexpr MaxPrefixAction kActions[kPeers] = {MaxPrefixAction::kReset,
                                              MaxPrefixAction::kDiscard,
                                              MaxPrefixAction::kWarn};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Ops in(data, size);
  const uint8_t flags = in.u8();
  CheckingTransport t;
  MirrorFib fib;
  SpeakerConfig sc;
  sc.local.asn = 65000;
  sc.local.router_id = 0x0a000001;
  sc.originate = {*Prefix::parse("10.1.0.0/16"), *Prefix::parse("fd00:1::/48")};
  sc.max_paths = 2;
  Speaker s(sc, t, &fib);
  std::array<PeerConfig, kPeers> pcs;
  std::array<Bytes, kPeers> opens;
  std::array<ConnId, kPeers> conn{};
  for (unsigned i = 0; i < kPeers; ++i) {
    PeerConfig& pc = pcs[i];
    pc.name = "site" + std::to_string(i);
    pc.address = *IpAddr::parse(("10.0.0." + std::to_string(i + 2)).c_str());
    pc.local_address = *IpAddr::parse("10.0.0.1");
    pc.asn = 65001 + i;
    pc.passive = true;  // the harness opens every session
    pc.max_prefixes = kMaxPrefixes[i];
    pc.max_prefix_action = kActions[i];
    pc.max_prefix_restart_ms = 1;
    pc.idle_hold_ms = 1;
    pc.advertise_default = i == 2;
    s.add_peer(pc);
    opens[i] = peer_open(pc.asn, 0x0a000002 + i, 90, flags & (1u << i), !(i == 0 && flags & 8));
  }
  t.codec = [&s](ConnId c) -> const Codec* {
    Peer* p = s.peer_by_conn(c);
    return p && p->state() >= State::kOpenConfirm ? &p->codec() : nullptr;
  };
  uint64_t now = 1000;
  s.start(now);
  // (Re)opens peer i's session if it is down: a new connection, its OPEN, a KEEPALIVE.
  auto bring_up = [&](unsigned i) {
    Peer& p = *s.peer(i + 1);
    if (p.state() == State::kEstablished) return;
    if (p.state() == State::kIdle) {
      now += 2000;  // past the idle hold
      s.tick(now);
    }
    ConnId c = t.fresh();
    if (!s.on_accept(c, pcs[i].address, now)) return t.close(c);
    conn[i] = c;
    s.on_data(c, opens[i], now);
    s.on_data(c, encode_keepalive(), now);
  };
  for (unsigned i = 0; i < kPeers; ++i) bring_up(i);
  check_speaker(s, &fib);
  for (unsigned steps = 0; !in.done() && steps < 4096; ++steps) {
    const uint8_t op = in.u8();
    const unsigned i = (op >> 3) % kPeers;
    const ConnId c = conn[i];
    switch (op % 8) {
      case 0:
      case 1:
      case 2:
      case 3: {
        auto body = in.take(in.u16() % 4096);
        s.on_data(c, frame(MsgType::kUpdate, body), now);
        break;
      }
      case 4: {
        RouteRefresh r{op & 0x80 ? kIpv6Unicast : kIpv4Unicast, 0};
        s.on_data(c, encode_route_refresh(r), now);
        break;
      }
      case 5:
        s.on_data(c, in.take(in.u8()), now);
        break;
      case 6:
        if (op & 0x80) {
          s.on_data(c, encode_notification({err::kCease, err::cease::kAdminReset, {}}), now);
        } else {
          t.close(c);
          s.on_closed(c, now);
        }
        check_speaker(s, &fib);
        bring_up(i);
        break;
      case 7:
        now += uint64_t(in.u8()) * 1000;
        s.tick(now);
        break;
    }
    check_speaker(s, &fib);
  }
  s.stop(now);
  check_speaker(s, &fib);
  return 0;
}
