// Two IKE daemons in one process: mocked clock, nonces/SPIs (a seeded generator), key exchange
// (a symmetric fake) and network (a queue we can drop from); the kernel is a map of SAs whose keys
// are compared across the peers after every scenario.
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <set>

#include "control/ike/daemon.h"
#include "control/ike/tasks/tasks.h"

namespace espgw::ike {
namespace {

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
};

class FakeKernel : public Kernel {
 public:
  uint32_t next_spi;
  explicit FakeKernel(uint32_t base) : next_spi(base) {}
  uint32_t alloc_spi() override { return next_spi++; }
  bool add_sa(const std::string&, const ChildSaSpec& s, std::string* err) override {
    if (fail_add) return *err = "injected", false;
    auto& m = s.inbound ? in : out;
    m[s.spi] = {s.inbound, s.algo, Bytes(s.key->data(), s.key->data() + s.key->size()), s.udp_encap,
                s.local.port, s.remote.port};
    if (!s.inbound) current_out = s.spi, outs.push_back(s.spi);
    ++adds;
    return true;
  }
  void del_sa(const std::string&, uint32_t spi, bool inbound) override {
    (inbound ? in : out).erase(spi);
    if (inbound) return;
    std::erase(outs, spi);
    if (current_out == spi) current_out = outs.empty() ? 0 : outs.back();  // like IkeService
  }
  SaStats sa_stats(const std::string&, uint32_t spi, bool inbound) override {
    auto it = stats.find({spi, inbound});
    return it == stats.end() ? SaStats{} : it->second;
  }
  void connection_up(const std::string&) override { up = true, ++ups; }
  void connection_down(const std::string&) override { up = false, ++downs; }

  std::map<uint32_t, Installed> in, out;
  std::map<std::pair<uint32_t, bool>, SaStats> stats;
  uint32_t current_out = 0;
  std::vector<uint32_t> outs;
  bool up = false, fail_add = false;
  int ups = 0, downs = 0, adds = 0;
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

TEST_F(Pair, SetupInstallsMatchingChildSas) {
  start_default();
  connect();
  EXPECT_TRUE(a.d->connected("to-b"));
  EXPECT_TRUE(b.d->connected("to-a"));
  expect_keys_match();
  EXPECT_EQ(a.kernel.in.size(), 1u);
  EXPECT_EQ(b.kernel.in.size(), 1u);
  EXPECT_TRUE(a.kernel.up);
  EXPECT_TRUE(b.kernel.up);
  IkeSa* sa = a.d->established_sa("to-b");
  ASSERT_NE(sa, nullptr);
  EXPECT_TRUE(sa->initiator);
  EXPECT_EQ(sa->suite.str(), "aes128gcm16-prfsha256-ecp256");
  EXPECT_FALSE(sa->nat_local || sa->nat_remote);
  EXPECT_FALSE(a.kernel.out.begin()->second.udp_encap);
  auto st = a.d->status();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].state, "Connected");
  ASSERT_EQ(st[0].children.size(), 1u);
  EXPECT_EQ(st[0].children[0].ts_local.size(), 2u);  // route based: 0/0 and ::/0
  ASSERT_FALSE(a.events.empty());
  EXPECT_EQ(a.events.back().second, ConnEvent::kUp);
}

TEST_F(Pair, NarrowedTrafficSelectors) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  ca.local_ts = {*Prefix::parse("10.1.0.0/16")};
  ca.remote_ts = {*Prefix::parse("10.2.0.0/16")};
  cb.local_ts = {*Prefix::parse("10.2.0.0/24")};  // narrower: the responder narrows
  start(std::move(ca), std::move(cb));
  connect();
  ASSERT_TRUE(a.d->connected("to-b"));
  auto st = a.d->status()[0];
  ASSERT_EQ(st.children[0].ts_remote.size(), 1u);
  EXPECT_EQ(st.children[0].ts_remote[0],
            TrafficSelector::from_prefix(*Prefix::parse("10.2.0.0/24")).str());
}

TEST_F(Pair, ChildRekeyMakeBeforeBreak) {
  start_default();
  connect();
  uint32_t old_a = a.kernel.current_out, old_b = b.kernel.current_out;
  ASSERT_TRUE(a.d->rekey_child("to-b"));
  // Request reaches B: B installs only the new inbound SA.
  deliver(1);
  EXPECT_EQ(b.kernel.in.size(), 2u);
  EXPECT_EQ(b.kernel.current_out, old_b);
  // Response reaches A: A installs both, switches outbound, sends DELETE for the old SA.
  deliver(1);
  EXPECT_NE(a.kernel.current_out, old_a);
  EXPECT_EQ(a.kernel.in.size(), 2u);  // old inbound still drains
  deliver();
  EXPECT_NE(b.kernel.current_out, old_b);
  expect_keys_match();
  run_for(tun.drain_ms + 200);
  EXPECT_EQ(a.kernel.in.size(), 1u);
  EXPECT_EQ(b.kernel.in.size(), 1u);
  EXPECT_EQ(a.kernel.out.size(), 1u);
  EXPECT_EQ(b.kernel.out.size(), 1u);
  EXPECT_TRUE(a.kernel.up && b.kernel.up);
  EXPECT_EQ(a.kernel.downs, 0);
  expect_keys_match();
}

TEST_F(Pair, ChildRekeyWithPfs) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  std::string err;
  ca.esp = *parse_proposals({"aes256gcm16-ecp384"}, ProtocolId::kEsp, &err);
  cb.esp = *parse_proposals({"aes256gcm16-ecp384"}, ProtocolId::kEsp, &err);
  start(std::move(ca), std::move(cb));
  connect();
  int ke_before = a.ke_made;
  ASSERT_TRUE(b.d->rekey_child("to-a"));  // the responder rekeys too
  deliver();
  EXPECT_EQ(a.ke_made, ke_before + 1);  // a fresh DH for the new Child SA
  run_for(tun.drain_ms + 200);
  EXPECT_EQ(a.kernel.in.size(), 1u);
  EXPECT_EQ(b.kernel.in.size(), 1u);
  expect_keys_match();
}

TEST_F(Pair, ChildRekeyOnLifetime) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  ca.child_lifetime_s = 20;
  cb.child_lifetime_s = 3600;
  start(std::move(ca), std::move(cb));
  connect();
  uint32_t first = a.kernel.current_out;
  run_for(19000);
  EXPECT_NE(a.kernel.current_out, first);
  expect_keys_match();
  EXPECT_EQ(a.kernel.downs, 0);
}

TEST_F(Pair, SimultaneousChildRekey) {
  start_default();
  connect();
  uint32_t old_a = a.kernel.current_out;
  ASSERT_TRUE(a.d->rekey_child("to-b"));
  ASSERT_TRUE(b.d->rekey_child("to-a"));
  deliver();
  run_for(tun.drain_ms + 500);
  // Exactly one surviving pair, the same on both sides; the old and the redundant SAs are gone.
  EXPECT_EQ(a.kernel.in.size(), 1u);
  EXPECT_EQ(b.kernel.in.size(), 1u);
  EXPECT_EQ(a.kernel.out.size(), 1u);
  EXPECT_EQ(b.kernel.out.size(), 1u);
  EXPECT_NE(a.kernel.current_out, old_a);
  expect_keys_match();
  EXPECT_EQ(a.kernel.downs, 0);
  EXPECT_EQ(b.kernel.downs, 0);
}

TEST_F(Pair, IkeRekeyKeepsChildren) {
  start_default();
  connect();
  IkeSa* old = a.d->established_sa("to-b");
  uint64_t old_spi = old->spi_i;
  uint32_t child = a.kernel.current_out;
  ASSERT_TRUE(a.d->rekey_ike("to-b"));
  deliver();
  run_for(500);
  auto sas = a.d->ike_sas("to-b");
  ASSERT_EQ(sas.size(), 1u);
  EXPECT_NE(sas[0]->spi_i, old_spi);
  EXPECT_EQ(b.d->ike_sas("to-a").size(), 1u);
  EXPECT_EQ(a.kernel.current_out, child);  // Child SAs survive
  EXPECT_EQ(sas[0]->children.size(), 1u);
  // The new IKE SA works: rekey the child over it.
  ASSERT_TRUE(b.d->rekey_child("to-a"));
  deliver();
  run_for(tun.drain_ms + 200);
  expect_keys_match();
  EXPECT_EQ(a.kernel.downs, 0);
}

TEST_F(Pair, SimultaneousIkeRekey) {
  start_default();
  connect();
  ASSERT_TRUE(a.d->rekey_ike("to-b"));
  ASSERT_TRUE(b.d->rekey_ike("to-a"));
  deliver();
  run_for(1000);
  auto sa_a = a.d->ike_sas("to-b");
  auto sa_b = b.d->ike_sas("to-a");
  ASSERT_EQ(sa_a.size(), 1u);
  ASSERT_EQ(sa_b.size(), 1u);
  EXPECT_EQ(sa_a[0]->spi_i, sa_b[0]->spi_i);
  EXPECT_EQ(sa_a[0]->spi_r, sa_b[0]->spi_r);
  EXPECT_EQ(sa_a[0]->children.size(), 1u);
  EXPECT_EQ(sa_b[0]->children.size(), 1u);
  ASSERT_TRUE(a.d->rekey_child("to-b"));
  deliver();
  run_for(tun.drain_ms + 200);
  expect_keys_match();
  EXPECT_EQ(a.kernel.downs, 0);
}

TEST_F(Pair, DeleteTearsDownBothSides) {
  start_default();
  connect();
  ASSERT_TRUE(a.d->terminate("to-b"));
  deliver();
  tick_both();
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_FALSE(b.d->connected("to-a"));
  EXPECT_TRUE(a.kernel.in.empty() && a.kernel.out.empty());
  EXPECT_TRUE(b.kernel.in.empty() && b.kernel.out.empty());
  EXPECT_TRUE(a.d->ike_sas("to-b").empty());
  EXPECT_TRUE(b.d->ike_sas("to-a").empty());
  EXPECT_FALSE(a.kernel.up);
  run_for(5000);  // terminated: no re-initiation
  EXPECT_TRUE(a.d->ike_sas("to-b").empty());
}

TEST_F(Pair, DeadPeerDetectionWithdrawsAndReinitiates) {
  start_default();
  connect();
  bool b_dead = true;
  drop = [&](const Packet& p) { return b_dead && (p.to.addr == b.addr || p.from.addr == b.addr); };
  uint64_t t0 = now;
  while (a.d->connected("to-b") && now - t0 < 60000) run_for(100);
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_LE(now - t0, uint64_t(30000));  // within the DPD timeout
  EXPECT_FALSE(a.kernel.up);
  EXPECT_TRUE(a.kernel.in.empty());
  bool dead_event = false;
  for (auto& [c, e] : a.events) dead_event |= e == ConnEvent::kDeadPeer;
  EXPECT_TRUE(dead_event);
  // Inbound ESP is proof of life: with counters moving there is no DPD exchange.
  // The peer comes back (fresh state): A re-initiates and the tunnel returns.
  b_dead = false;
  b.d = std::make_unique<Daemon>(env_for(b), b.kernel, tun);
  b.kernel.in.clear();
  b.kernel.out.clear();
  ConnConfig cb = conn(b, a);
  cb.initiate = false;
  b.d->add_connection(std::move(cb));
  run_for(40000, 500);
  EXPECT_TRUE(a.d->connected("to-b"));
  expect_keys_match();
}

TEST_F(Pair, InboundTrafficCountsAsLiveness) {
  start_default();
  connect();
  size_t before = sent_log.size();
  for (int i = 0; i < 200; ++i) {
    a.kernel.stats[{a.kernel.in.begin()->first, true}].packets += 1;
    run_for(100);
  }
  size_t infos = 0;
  for (size_t i = before; i < sent_log.size(); ++i)
    infos += !sent_log[i].keepalive && sent_log[i].from.addr == a.addr &&
             ex_of(sent_log[i]) == ExchangeType::kInformational && !is_response(sent_log[i]);
  EXPECT_EQ(infos, 0u);
}

TEST_F(Pair, NoProposalChosen) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  std::string err;
  cb.ike = *parse_proposals({"aes256gcm16-prfsha384-ecp384"}, ProtocolId::kIke, &err);
  start(std::move(ca), std::move(cb));
  connect();
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_NE(a.d->status()[0].last_error.find("NO_PROPOSAL_CHOSEN"), std::string::npos);
  EXPECT_NE(b.d->status()[0].last_error.find("NO_PROPOSAL_CHOSEN"), std::string::npos);
}

TEST_F(Pair, ChildNoProposalChosen) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  std::string err;
  cb.esp = *parse_proposals({"aes256-sha256"}, ProtocolId::kEsp, &err);
  start(std::move(ca), std::move(cb));
  connect();
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_NE(a.d->status()[0].last_error.find("NO_PROPOSAL_CHOSEN"), std::string::npos);
  EXPECT_TRUE(a.kernel.in.empty());
}

TEST_F(Pair, InvalidKePayloadRetriesWithRequestedGroup) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  std::string err;
  cb.ike = *parse_proposals({"aes256-sha256-modp2048"}, ProtocolId::kIke, &err);
  start(std::move(ca), std::move(cb));
  connect();
  ASSERT_TRUE(a.d->connected("to-b"));
  EXPECT_EQ(a.d->established_sa("to-b")->suite.dh, dh::kModp2048);
  int invalid_ke = 0;
  for (auto& p : sent_log) {
    Message m;
    if (p.keepalive || !decode_message(p.data, m).ok()) continue;
    if (m.notify(NotifyType::kInvalidKePayload)) ++invalid_ke;
  }
  EXPECT_EQ(invalid_ke, 1);
  expect_keys_match();
}

TEST_F(Pair, AuthenticationFailed) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  cb.psk = Secret("another key");
  start(std::move(ca), std::move(cb));
  connect();
  tick_both();
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_NE(a.d->status()[0].last_error.find("AUTHENTICATION_FAILED"), std::string::npos);
  EXPECT_NE(b.d->status()[0].last_error.find("AUTHENTICATION_FAILED"), std::string::npos);
  EXPECT_TRUE(a.kernel.in.empty() && b.kernel.in.empty());
  EXPECT_TRUE(b.d->ike_sas("to-a").empty());
}

TEST_F(Pair, InitiatorRejectsResponderAuth) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  ca.remote_id = IdPayload::fqdn("someone.else");
  start(std::move(ca), std::move(cb));
  connect();
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_NE(a.d->status()[0].last_error.find("AUTHENTICATION_FAILED"), std::string::npos);
}

TEST_F(Pair, TsUnacceptable) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  ca.remote_ts = {*Prefix::parse("10.9.0.0/16")};
  cb.local_ts = {*Prefix::parse("10.2.0.0/16")};
  start(std::move(ca), std::move(cb));
  connect();
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_NE(a.d->status()[0].last_error.find("TS_UNACCEPTABLE"), std::string::npos);
  EXPECT_NE(b.d->status()[0].last_error.find("TS_UNACCEPTABLE"), std::string::npos);
  EXPECT_TRUE(b.kernel.in.empty());
}

TEST_F(Pair, RetransmitAndDuplicateRequest) {
  start_default();
  // Lose B's first IKE_AUTH response: A retransmits, B answers from its cache.
  int lost = 0;
  drop = [&](const Packet& p) {
    if (p.from.addr == b.addr && ex_of(p) == ExchangeType::kIkeAuth && is_response(p) && !lost) {
      ++lost;
      return true;
    }
    return false;
  };
  connect();
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_TRUE(b.d->connected("to-a"));
  int b_adds = b.kernel.adds;
  run_for(tun.retransmit_base_ms + 100);
  EXPECT_TRUE(a.d->connected("to-b"));
  EXPECT_EQ(b.kernel.adds, b_adds);  // the duplicate did not create a second Child SA
  EXPECT_EQ(a.d->established_sa("to-b")->tm.retransmits(), 1u);
  expect_keys_match();
  // A duplicate IKE_SA_INIT request is answered with the same bytes, no new SA.
  Bytes init_req;
  for (auto& p : sent_log)
    if (!p.keepalive && p.from.addr == a.addr && ex_of(p) == ExchangeType::kIkeSaInit) init_req = p.data;
  size_t n_sas = b.d->ike_sas("to-a").size();
  b.d->receive({b.addr, 500}, {a.addr, 500}, init_req);
  EXPECT_EQ(b.d->ike_sas("to-a").size(), n_sas);
}

TEST_F(Pair, RetransmitBackoffIsExponential) {
  start_default();
  drop = [&](const Packet& p) { return p.to.addr == b.addr; };
  tick_both();
  deliver();
  std::vector<uint64_t> at;
  size_t seen = sent_log.size();
  for (int i = 0; i < 200; ++i) {
    run_for(100);
    for (; seen < sent_log.size(); ++seen) at.push_back(now);
  }
  ASSERT_GE(at.size(), 3u);
  EXPECT_GE(at[1] - at[0], (at[0] > 0 ? 1900u : 0u));  // 1 s, 2 s, 4 s ...
  EXPECT_GE(at[2] - at[1], 3900u);
}

TEST_F(Pair, CookieWhenTooManyHalfOpen) {
  tun.cookie_threshold = 2;
  start_default();
  // Two half-open SAs from a flooding "initiator" at A's address (never completing).
  for (int i = 0; i < 2; ++i) {
    Message m;
    m.hdr.spi_i = 0x1111 + uint64_t(i);
    m.hdr.exchange = ExchangeType::kIkeSaInit;
    m.hdr.flags = kFlagInitiator;
    std::string err;
    auto props = *parse_proposals({"aes128gcm16-prfsha256-ecp256"}, ProtocolId::kIke, &err);
    m.payloads.push_back(make_payload(SaPayload{props}));
    m.payloads.push_back(make_payload(KePayload{19, Bytes(64, uint8_t(i + 1))}));
    m.payloads.push_back(make_payload(NoncePayload{Bytes(32, uint8_t(i))}));
    b.d->receive({b.addr, 500}, {a.addr, 500}, encode_message(m));
  }
  wire.clear();
  EXPECT_EQ(b.d->half_open(), 2u);
  connect();
  EXPECT_TRUE(a.d->connected("to-b"));
  int cookies = 0;
  for (auto& p : sent_log) {
    Message m;
    if (p.keepalive || !decode_message(p.data, m).ok()) continue;
    if (m.hdr.response() && m.notify(NotifyType::kCookie)) ++cookies;
  }
  EXPECT_EQ(cookies, 1);
  expect_keys_match();
}

TEST_F(Pair, ForcedUdpEncapsulationFloatsTo4500) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  ca.force_encap = true;
  start(std::move(ca), std::move(cb));
  connect();
  ASSERT_TRUE(a.d->connected("to-b"));
  IkeSa* sa = a.d->established_sa("to-b");
  EXPECT_EQ(sa->local.port, 4500);
  EXPECT_EQ(sa->remote.port, 4500);
  EXPECT_TRUE(b.d->established_sa("to-a")->nat_remote);
  for (auto* k : {&a.kernel, &b.kernel})
    for (auto& [spi, s] : k->out) {
      EXPECT_TRUE(s.udp_encap);
      EXPECT_EQ(s.sport, 4500);
      EXPECT_EQ(s.dport, 4500);
    }
  size_t ka = 0;
  run_for(tun.keepalive_ms + 200, 200);
  for (auto& p : sent_log) ka += p.keepalive;
  EXPECT_GE(ka, 1u);
  expect_keys_match();
}

TEST_F(Pair, ResponderOnlyDoesNotInitiate) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  ca.initiate = false;
  cb.initiate = false;
  start(std::move(ca), std::move(cb));
  run_for(3000);
  EXPECT_TRUE(sent_log.empty());
  ASSERT_TRUE(b.d->initiate("to-a"));
  deliver();
  EXPECT_TRUE(a.d->connected("to-b"));
}

TEST_F(Pair, ForgedMessagesAreDropped) {
  start_default();
  connect();
  IkeSa* sa = b.d->established_sa("to-a");
  Header h;
  h.spi_i = sa->spi_i;
  h.spi_r = sa->spi_r;
  h.exchange = ExchangeType::kInformational;
  h.flags = kFlagInitiator;
  h.message_id = 2;
  Message m;
  m.hdr = h;
  m.payloads.push_back(Payload{PayloadType::kEncrypted, EncryptedPayload{PayloadType::kDelete, Bytes(64, 7)}});
  b.d->receive({b.addr, 500}, {a.addr, 500}, encode_message(m));
  tick_both();
  EXPECT_TRUE(b.d->connected("to-a"));
}


TEST_F(Pair, PeerDeletesChildSa) {
  start_default();
  connect();
  IkeSa* sa = a.d->established_sa("to-b");
  sa->tm.queue(make_child_delete({sa->children[0].spi_in}));
  sa->tm.initiate(*a.d, *sa);
  deliver();
  run_for(tun.drain_ms + 200);
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_FALSE(b.d->connected("to-a"));
  EXPECT_FALSE(b.kernel.up);  // routes withdrawn
  EXPECT_TRUE(a.kernel.in.empty() && b.kernel.in.empty());
  EXPECT_TRUE(a.kernel.out.empty() && b.kernel.out.empty());
  EXPECT_EQ(b.d->ike_sas("to-a").size(), 1u);  // the IKE SA stays
}

TEST_F(Pair, AuthFailedEventAndNoSecretsInStatus) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  cb.psk = Secret("wrong");
  start(std::move(ca), std::move(cb));
  connect();
  bool ev = false;
  for (auto& [c, e] : b.events) ev |= e == ConnEvent::kAuthFailed;
  EXPECT_TRUE(ev);
  for (const auto& st : a.d->status()) {
    EXPECT_EQ(st.last_error.find("correct horse"), std::string::npos);
    EXPECT_EQ(st.state, "Connecting");  // re-initiation pending / in progress
  }
}

// strongSwan lists a response's transforms as ENCR, INTEG, PRF, DH; match() lists them by type.
TEST(AcceptResponse, PeerTransformOrder) {
  std::string err;
  auto offered = *parse_proposals({"aes256-sha256-modp2048"}, ProtocolId::kIke, &err);
  SaPayload reply;
  Proposal p;
  p.number = 1;
  p.protocol = ProtocolId::kIke;
  p.transforms = {{TransformType::kEncr, encr::kAesCbc, 256},
                  {TransformType::kInteg, integ::kHmacSha256_128, 0},
                  {TransformType::kPrf, prf::kHmacSha256, 0},
                  {TransformType::kDh, dh::kModp2048, 0}};
  reply.proposals.push_back(p);
  auto s = accept_response(offered, reply);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->dh, dh::kModp2048);
  EXPECT_EQ(s->integ, integ::kHmacSha256_128);
}

TEST(TrafficSelectors, NarrowAndSubset) {
  auto ts = [](const char* p) { return TrafficSelector::from_prefix(*Prefix::parse(p)); };
  auto n = narrow_ts({ts("0.0.0.0/0"), ts("::/0")}, {ts("10.2.0.0/16")});
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0], ts("10.2.0.0/16"));
  EXPECT_TRUE(narrow_ts({ts("10.1.0.0/16")}, {ts("10.2.0.0/16")}).empty());
  EXPECT_TRUE(ts_subset({ts("10.2.1.0/24")}, {ts("10.2.0.0/16")}));
  EXPECT_FALSE(ts_subset({ts("10.3.0.0/24")}, {ts("10.2.0.0/16")}));
}


TEST_F(Pair, FqdnAndIpv6Identities) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  ca.local_id = IdPayload::fqdn("left.example");
  cb.remote_id = IdPayload::fqdn("left.example");
  cb.local_id = IdPayload::from_addr(*IpAddr::parse("2001:db8::2"));
  ca.remote_id = IdPayload::from_addr(*IpAddr::parse("2001:db8::2"));
  start(std::move(ca), std::move(cb));
  connect();
  ASSERT_TRUE(a.d->connected("to-b"));
  EXPECT_EQ(b.d->established_sa("to-a")->peer_id.str(), "left.example");
  EXPECT_EQ(a.d->established_sa("to-b")->peer_id.type, IdType::kIpv6Addr);
  expect_keys_match();
}


TEST_F(Pair, BothInitiateAtOnceLeavesOneIkeSa) {
  start_default(/*b_initiates=*/true);
  tick_both();  // both send IKE_SA_INIT before seeing the other's
  deliver();
  run_for(2000);
  EXPECT_TRUE(a.d->connected("to-b"));
  EXPECT_TRUE(b.d->connected("to-a"));
  ASSERT_EQ(a.d->ike_sas("to-b").size(), 1u);
  ASSERT_EQ(b.d->ike_sas("to-a").size(), 1u);
  EXPECT_TRUE(a.d->ike_sas("to-b")[0]->initiator);  // the one the lower address initiated stays
  EXPECT_FALSE(b.d->ike_sas("to-a")[0]->initiator);
  EXPECT_EQ(a.kernel.in.size(), 1u);
  EXPECT_EQ(b.kernel.in.size(), 1u);
  expect_keys_match();
  EXPECT_EQ(a.kernel.downs, 0);
  EXPECT_TRUE(a.d->status()[0].last_error.empty());
}

}  // namespace
}  // namespace espgw::ike
