// libFuzzer target for the IKE daemon's message path (control/ike/daemon.h): two daemons with a
// fake clock/network/kernel establish an IKE SA once; every input is then delivered to the
// responder (1) raw, (2) with the IKE SA's SPIs patched in (integrity check path), and (3) as a
// payload chain properly SK-protected by the peer, as the next request of an exchange chosen by
// the input, so the responder tasks see arbitrary payloads. Then both daemons tick. Nothing may
// crash, leak or trip a sanitizer; a pair that got torn down is rebuilt.
//
// Input: byte 0 = first payload type, byte 1 = exchange selector, rest = payload chain.
// Build: scripts/fuzz.sh 60 ike_daemon
#include <cstdint>
#include <deque>
#include <memory>

#include "control/ike/daemon.h"

using namespace espgw;
using namespace espgw::ike;

namespace {

struct Fake : Kernel {
  uint32_t spi = 0x1000;
  uint32_t alloc_spi() override { return spi++; }
  bool add_sa(const std::string&, const ChildSaSpec&, std::string*) override { return true; }
  void del_sa(const std::string&, uint32_t, bool) override {}
  SaStats sa_stats(const std::string&, uint32_t, bool) override { return {}; }
  void connection_up(const std::string&) override {}
  void connection_down(const std::string&) override {}
};

struct Packet {
  Endpoint from, to;
  Bytes data;
};

uint64_t g_now = 1000;
std::deque<Packet> g_wire;
IpAddr g_a = *IpAddr::parse("192.0.2.1"), g_b = *IpAddr::parse("192.0.2.2");

struct World {
  Fake ka, kb;
  std::unique_ptr<Daemon> a, b;
  uint64_t rng = 42;

  Env env() {
    Env e;
    e.now_ms = [] { return g_now; };
    e.random = [this](uint8_t* p, size_t n) {
      for (size_t i = 0; i < n; ++i) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        p[i] = uint8_t(rng);
      }
    };
    e.send = [](const Endpoint& f, const Endpoint& t, const Bytes& m) {
      if (g_wire.size() < 64) g_wire.push_back({f, t, m});
    };
    return e;
  }
  ConnConfig conn(const IpAddr& me, const IpAddr& peer) {
    ConnConfig c;
    c.name = "c";
    c.local = me;
    c.remote = peer;
    c.local_id = IdPayload::from_addr(me);
    c.psk = Secret("fuzz");
    std::string err;
    c.ike = *parse_proposals({"aes128gcm16-prfsha256-x25519"}, ProtocolId::kIke, &err);
    c.esp = *parse_proposals({"aes128gcm16", "aes256gcm16-x25519"}, ProtocolId::kEsp, &err);
    return c;
  }
  void deliver() {
    for (int n = 0; !g_wire.empty() && n < 64; ++n) {
      Packet p = std::move(g_wire.front());
      g_wire.pop_front();
      (p.to.addr == g_a ? a : b)->receive(p.to, p.from, p.data);
    }
    g_wire.clear();
  }
  void build() {
    a = std::make_unique<Daemon>(env(), ka);
    b = std::make_unique<Daemon>(env(), kb);
    a->add_connection(conn(g_a, g_b));
    ConnConfig cb = conn(g_b, g_a);
    cb.initiate = false;
    b->add_connection(std::move(cb));
    a->tick();
    deliver();
  }
};

World* world() {
  static World* w = [] {
    auto* x = new World;
    x->build();
    return x;
  }();
  return w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = *world();
  if (!w.a->connected("c") || !w.b->established_sa("c") || !w.a->established_sa("c")) w.build();
  IkeSa* sa_a = w.a->established_sa("c");
  IkeSa* sa_b = w.b->established_sa("c");
  if (!sa_a || !sa_b) return 0;
  ByteView in(data, size);
  Endpoint ea{g_a, 500}, eb{g_b, 500};
  // (1) raw
  w.b->receive(eb, ea, in);
  // (2) the established SA's SPIs
  if (size >= 28) {
    Bytes m(data, data + size);
    for (int i = 0; i < 8; ++i) {
      m[i] = uint8_t(sa_b->spi_i >> (56 - 8 * i));
      m[8 + i] = uint8_t(sa_b->spi_r >> (56 - 8 * i));
    }
    w.b->receive(eb, ea, m);
  }
  // (3) a properly protected request with the fuzzed payloads
  if (size >= 2 && sa_a->sk) {
    std::vector<Payload> payloads;
    if (decode_payloads(PayloadType(data[0]), in.subspan(2), payloads).ok()) {
      static const ExchangeType kEx[] = {ExchangeType::kInformational, ExchangeType::kCreateChildSa,
                                         ExchangeType::kIkeAuth};
      Header h;
      h.spi_i = sa_a->spi_i;
      h.spi_r = sa_a->spi_r;
      h.exchange = kEx[data[1] % 3];
      h.flags = sa_a->initiator ? kFlagInitiator : 0;
      h.message_id = sa_b->tm.next_in();
      if (auto m = sa_a->sk->out->protect(h, payloads)) w.b->receive(eb, ea, *m);
    }
  }
  w.deliver();
  g_now += 500;
  w.a->tick();
  w.b->tick();
  w.deliver();
  return 0;
}
