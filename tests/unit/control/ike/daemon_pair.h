// The fixture shared by the IKE daemon tests (daemon_*_test.cpp): two IKE daemons in one process
// with a mocked clock, nonces/SPIs (a seeded generator), key exchange (a symmetric fake) and
// network (a queue we can drop from); the kernel is a map of SAs whose keys are compared across
// the peers after every scenario. Also the packet/log helpers more than one test file uses.
// Not in an anonymous namespace: gtest needs one Pair type for the suite across all files.
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "control/ike/daemon.h"
#include "control/ike/frag.h"
#include "control/ike/tasks/tasks.h"

namespace espgw::ike::test {

// Deterministic fake DH: the public value is random, the shared secret the XOR of both.
class FakeKe : public KeyExchange {
 public:
  FakeKe(uint16_t g, Bytes pub) : g_(g), pub_(std::move(pub)) {}
  uint16_t group() const override { return g_; }
  const Bytes& public_value() const override { return pub_; }
  bool compute(ByteView peer, Secret& shared) override {
    if (peer.size() != pub_.size()) return false;
    Bytes s(pub_.size());
    for (size_t i = 0; i < s.size(); ++i) s[i] = pub_[i] ^ peer[i];
    shared = Secret(s.data(), s.size());
    return true;
  }

 private:
  uint16_t g_;
  Bytes pub_;
};

struct Installed {
  bool inbound;
  crypto::Algo algo;
  Bytes key;
  bool udp_encap;
  uint16_t sport, dport;
  uint64_t hard_bytes, hard_packets;
  bool esn = false;
  std::vector<Prefix> remote_ts;
  IpAddr remote;
  uint64_t soft_bytes = 0, soft_packets = 0;
};

class FakeKernel : public Kernel {
 public:
  uint32_t next_spi;
  explicit FakeKernel(uint32_t base) : next_spi(base) {}
  uint32_t alloc_spi() override {
    reserved.insert(next_spi);
    return next_spi++;
  }
  bool add_sa(const std::string&, const ChildSaSpec& s, std::string* err) override {
    if (fail_add) return *err = "injected", false;
    auto& m = s.inbound ? in : out;
    m[s.spi] = {s.inbound,    s.algo,         Bytes(s.key->data(), s.key->data() + s.key->size()),
                s.udp_encap,  s.local.port,   s.remote.port,
                s.hard_bytes, s.hard_packets, s.esn,
                s.remote_ts,  s.remote.addr, s.soft_bytes, s.soft_packets};
    if (!s.inbound) current_out = s.spi, outs.push_back(s.spi);
    ++adds;
    return true;
  }
  void del_sa(const std::string&, uint32_t spi, bool inbound) override {
    (inbound ? in : out).erase(spi);
    if (inbound) {
      reserved.erase(spi);  // like IkeService: releases the SPI, installed or not
      return;
    }
    std::erase(outs, spi);
    if (current_out == spi) current_out = outs.empty() ? 0 : outs.back();  // like IkeService
  }
  bool move_sa(const std::string&, uint32_t spi, const Endpoint& local, const Endpoint& remote,
               std::string* err) override {
    auto it = out.find(spi);
    if (it == out.end()) return *err = "no such SA", false;
    it->second.sport = local.port;
    it->second.dport = remote.port;
    it->second.remote = remote.addr;
    ++moves;
    return true;
  }
  SaStats sa_stats(const std::string&, uint32_t spi, bool inbound) override {
    auto it = stats.find({spi, inbound});
    return it == stats.end() ? SaStats{} : it->second;
  }
  void connection_up(const std::string&) override { up = true, ++ups; }
  void connection_down(const std::string&) override { up = false, ++downs; }

  // Allocated inbound SPIs with no installed SA (an allocation no failure path released).
  size_t leaked_spis() const {
    size_t n = 0;
    for (uint32_t spi : reserved) n += !in.count(spi);
    return n;
  }

  std::map<uint32_t, Installed> in, out;
  std::set<uint32_t> reserved;  // allocated and not yet released by del_sa
  std::map<std::pair<uint32_t, bool>, SaStats> stats;
  uint32_t current_out = 0;
  std::vector<uint32_t> outs;
  bool up = false, fail_add = false;
  int ups = 0, downs = 0, adds = 0, moves = 0;
};

struct Packet {
  Endpoint from, to;
  Bytes data;
  bool keepalive = false;
};

struct Peer {
  std::string name;
  IpAddr addr;
  uint64_t rng;
  FakeKernel kernel;
  std::unique_ptr<Daemon> d;
  std::vector<std::pair<std::string, ConnEvent>> events;
  int ke_made = 0;
  bool ke_fail = false;  // make_ke refuses (counted in ke_refused)
  int ke_refused = 0;
  std::vector<std::string> logs;
  Peer(std::string n, const char* ip, uint64_t seed, uint32_t spi_base)
      : name(std::move(n)), addr(*IpAddr::parse(ip)), rng(seed), kernel(spi_base) {}
};

class Pair : public ::testing::Test {
 protected:
  uint64_t now = 1000000;
  std::deque<Packet> wire;
  std::function<bool(const Packet&)> drop;  // true = lose this packet
  std::vector<Packet> sent_log;
  Peer a{"a", "198.51.100.1", 0x1234567, 0x1000};
  Peer b{"b", "198.51.100.2", 0x7654321, 0x2000};
  Tunables tun;

  Env env_for(Peer& p) {
    Env e;
    e.now_ms = [this] { return now; };
    e.random = [&p](uint8_t* out, size_t n) {
      for (size_t i = 0; i < n; ++i) {
        p.rng ^= p.rng << 13, p.rng ^= p.rng >> 7, p.rng ^= p.rng << 17;
        out[i] = uint8_t(p.rng);
      }
    };
    e.make_ke = [&p, e](uint16_t g) -> std::unique_ptr<KeyExchange> {
      size_t n = ke_public_len(g);
      if (!n) return nullptr;
      if (p.ke_fail) return ++p.ke_refused, nullptr;
      ++p.ke_made;
      Bytes pub(n);
      e.random(pub.data(), n);
      return std::make_unique<FakeKe>(g, pub);
    };
    e.send = [this](const Endpoint& f, const Endpoint& t, const Bytes& m) {
      wire.push_back({f, t, m});
      sent_log.push_back({f, t, m});
    };
    e.send_keepalive = [this](const Endpoint& f, const Endpoint& t) {
      sent_log.push_back({f, t, {}, true});
    };
    e.log = [&p](const std::string& line) { p.logs.push_back(line); };
    return e;
  }

  ConnConfig conn(const Peer& me, const Peer& other) {
    ConnConfig c;
    c.name = "to-" + other.name;
    c.local = me.addr;
    c.remote = other.addr;
    c.local_id = IdPayload::from_addr(me.addr);
    c.psk = Secret("correct horse battery staple");
    std::string err;
    c.ike = *parse_proposals({"aes128gcm16-prfsha256-ecp256", "aes256-sha256-modp2048"},
                             ProtocolId::kIke, &err);
    c.esp = *parse_proposals({"aes128gcm16"}, ProtocolId::kEsp, &err);
    c.dpd_timeout_s = 30;
    c.child_lifetime_s = 3600;
    c.ike_lifetime_s = 28800;
    return c;
  }

  void start(ConnConfig ca, ConnConfig cb) {
    for (Peer* p : {&a, &b}) {
      p->d = std::make_unique<Daemon>(env_for(*p), p->kernel, tun);
      p->d->on_event = [p](const std::string& c, ConnEvent e) { p->events.push_back({c, e}); };
    }
    a.d->add_connection(std::move(ca));
    b.d->add_connection(std::move(cb));
  }
  void start_default(bool b_initiates = false) {
    ConnConfig ca = conn(a, b), cb = conn(b, a);
    cb.initiate = b_initiates;
    start(std::move(ca), std::move(cb));
  }

  // Delivers packets until the wire is empty; returns how many were delivered.
  int deliver(int max = 1000) {
    int n = 0;
    while (!wire.empty() && n < max) {
      Packet p = std::move(wire.front());
      wire.pop_front();
      if (drop && drop(p)) continue;
      Peer& to = p.to.addr == a.addr ? a : b;
      to.d->receive(p.to, p.from, p.data);
      ++n;
    }
    return n;
  }
  void tick_both() {
    a.d->tick();
    b.d->tick();
  }
  // Advances the clock in steps, ticking and delivering.
  void run_for(uint64_t ms, uint64_t step = 100) {
    for (uint64_t t = 0; t < ms; t += step) {
      now += step;
      tick_both();
      deliver();
    }
  }
  void connect() {
    tick_both();
    deliver();
  }
  // Every outbound SA of one side is an inbound SA of the other with the same key.
  void expect_keys_match() {
    ASSERT_NE(a.kernel.current_out, 0u);
    ASSERT_NE(b.kernel.current_out, 0u);
    for (auto [x, y] : {std::pair<Peer*, Peer*>{&a, &b}, {&b, &a}}) {
      uint32_t spi = x->kernel.current_out;
      ASSERT_TRUE(y->kernel.in.count(spi)) << x->name << " sends on an SPI the peer lacks";
      EXPECT_EQ(x->kernel.out[spi].key, y->kernel.in[spi].key);
      EXPECT_EQ(x->kernel.out[spi].algo, y->kernel.in[spi].algo);
    }
  }
  static ExchangeType ex_of(const Packet& p) {
    Header h;
    decode_header(p.data, h);
    return h.exchange;
  }
  static bool is_response(const Packet& p) {
    Header h;
    decode_header(p.data, h);
    return h.response();
  }
};

inline bool is_resp(const Packet& p) {
  Header h;
  decode_header(p.data, h);
  return h.response();
}
inline ExchangeType exchange_of(const Packet& p) {
  Header h;
  decode_header(p.data, h);
  return h.exchange;
}

inline size_t count_lines(const Peer& p, const std::string& what) {
  size_t n = 0;
  for (const auto& l : p.logs) n += l.find(what) != std::string::npos;
  return n;
}

}  // namespace espgw::ike::test
