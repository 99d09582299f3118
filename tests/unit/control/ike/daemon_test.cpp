// Two IKE daemons in one process: mocked clock, nonces/SPIs (a seeded generator), key exchange
// (a symmetric fake) and network (a queue we can drop from); the kernel is a map of SAs whose keys
// are compared across the peers after every scenario.
#include "control/ike/daemon.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <set>

#include "control/ike/frag.h"
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

// We reject the responder's AUTH: an INFORMATIONAL with AUTHENTICATION_FAILED tells it (2.21.2),
// and both sides drop the IKE SA.
TEST_F(Pair, InitiatorRejectsResponderAuth) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  ca.remote_id = IdPayload::fqdn("someone.else");
  start(std::move(ca), std::move(cb));
  connect();
  tick_both();
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_NE(a.d->status()[0].last_error.find("AUTHENTICATION_FAILED"), std::string::npos);
  EXPECT_NE(b.d->status()[0].last_error.find("AUTHENTICATION_FAILED"), std::string::npos);
  EXPECT_TRUE(a.d->ike_sas("to-b").empty());
  EXPECT_TRUE(b.d->ike_sas("to-a").empty());
  EXPECT_FALSE(a.kernel.up);
  EXPECT_FALSE(b.kernel.up);
  EXPECT_GE(b.kernel.downs, 1);  // B had installed the Child SA, and withdrew it
  EXPECT_TRUE(a.kernel.in.empty() && b.kernel.in.empty());
  EXPECT_TRUE(a.kernel.out.empty() && b.kernel.out.empty());
  int infos = 0;
  for (auto& p : sent_log)
    infos += !p.keepalive && p.from.addr == a.addr && !is_response(p) &&
             ex_of(p) == ExchangeType::kInformational;
  EXPECT_EQ(infos, 1);
  bool ev_a = false, ev_b = false;
  for (auto& [c, e] : a.events) ev_a |= e == ConnEvent::kAuthFailed;
  for (auto& [c, e] : b.events) ev_b |= e == ConnEvent::kAuthFailed;
  EXPECT_TRUE(ev_a);
  EXPECT_TRUE(ev_b);
}

// The INFORMATIONAL is lost for good: we still drop the SA after the retransmission budget.
TEST_F(Pair, InitiatorRejectsResponderAuthNotifyLost) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  ca.initiate = false;
  ca.remote_id = IdPayload::fqdn("someone.else");
  start(std::move(ca), std::move(cb));
  drop = [&](const Packet& p) { return ex_of(p) == ExchangeType::kInformational; };
  ASSERT_TRUE(a.d->initiate("to-b"));
  deliver();
  EXPECT_EQ(a.d->ike_sas("to-b").size(), 1u);  // waiting for the answer, not established
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_FALSE(a.kernel.up);
  run_for(30000, 500);
  EXPECT_TRUE(a.d->ike_sas("to-b").empty());
  EXPECT_NE(a.d->status()[0].last_error.find("AUTHENTICATION_FAILED"), std::string::npos);
}

// AUTHENTICATION_FAILED on an SA with working Child SAs, long after IKE_AUTH, is only recorded.
TEST_F(Pair, LateAuthenticationFailedNotifyIsIgnored) {
  start_default();
  connect();
  IkeSa* sa = a.d->established_sa("to-b");
  sa->tm.queue(make_dpd());  // message ID 2
  sa->tm.initiate(*a.d, *sa);
  deliver();
  sa->tm.queue(make_auth_failed());  // message ID 3
  sa->tm.initiate(*a.d, *sa);
  deliver();
  tick_both();
  EXPECT_TRUE(b.d->connected("to-a"));
  EXPECT_EQ(b.d->ike_sas("to-a").size(), 1u);
}

// An established IKE SA without a Child SA (the peer deleted it; we re-create it) is not torn
// down by a late AUTHENTICATION_FAILED (2.21.2 covers only the INFORMATIONAL after IKE_AUTH).
TEST_F(Pair, LateAuthenticationFailedWithoutChildIsOnlyRecorded) {
  start_default();
  connect();
  IkeSa* sb = b.d->established_sa("to-a");
  ASSERT_NE(sb, nullptr);
  sb->tm.queue(make_child_delete({sb->children[0].spi_in}));  // B's message ID 0
  sb->tm.initiate(*b.d, *sb);
  deliver();
  IkeSa* sa = a.d->established_sa("to-b");
  ASSERT_NE(sa, nullptr);
  EXPECT_FALSE(sa->has_live_child());
  sb->tm.queue(make_auth_failed());  // B's message ID 1
  sb->tm.initiate(*b.d, *sb);
  deliver();
  ASSERT_EQ(a.d->ike_sas("to-b").size(), 1u);
  EXPECT_EQ(a.d->established_sa("to-b"), sa);
  EXPECT_NE(a.d->status()[0].last_error.find("AUTHENTICATION_FAILED"), std::string::npos);
  a.d->tick();
  EXPECT_TRUE(sa->creating_child);  // and goes on re-creating its Child SA
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

// The peer deletes the only Child SA: the connection goes down, and the initiating side creates
// a new Child SA over the same IKE SA (no REKEY_SA), routes and kernel SAs come back.
TEST_F(Pair, PeerDeletesChildSa) {
  start_default();
  connect();
  uint64_t ike_spi = a.d->established_sa("to-b")->spi_i;
  uint32_t old_in = a.d->established_sa("to-b")->children[0].spi_in;
  IkeSa* sb = b.d->established_sa("to-a");
  sb->tm.queue(make_child_delete({sb->children[0].spi_in}));
  sb->tm.initiate(*b.d, *sb);
  deliver();
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_FALSE(b.d->connected("to-a"));
  EXPECT_FALSE(a.kernel.up);  // routes withdrawn
  EXPECT_FALSE(b.kernel.up);
  EXPECT_TRUE(a.kernel.out.empty() && b.kernel.out.empty());
  run_for(tun.drain_ms + 200);
  ASSERT_TRUE(a.d->connected("to-b"));
  EXPECT_TRUE(b.d->connected("to-a"));
  EXPECT_TRUE(a.kernel.up && b.kernel.up);
  EXPECT_EQ(a.kernel.ups, 2);
  EXPECT_EQ(a.kernel.in.size(), 1u);
  EXPECT_EQ(b.kernel.in.size(), 1u);
  EXPECT_EQ(a.kernel.out.size(), 1u);
  EXPECT_EQ(b.kernel.out.size(), 1u);
  EXPECT_FALSE(a.kernel.in.count(old_in));
  expect_keys_match();
  ASSERT_EQ(a.d->ike_sas("to-b").size(), 1u);  // the same IKE SA
  EXPECT_EQ(a.d->ike_sas("to-b")[0]->spi_i, ike_spi);
  EXPECT_EQ(b.d->ike_sas("to-a").size(), 1u);
  // The new Child SA rekeys like any other.
  ASSERT_TRUE(a.d->rekey_child("to-b"));
  deliver();
  run_for(tun.drain_ms + 200);
  expect_keys_match();
  EXPECT_EQ(a.kernel.in.size(), 1u);
}

// A responder-only side does not re-create the Child SA; its peer (which initiates) does.
TEST_F(Pair, InitiatorDeletesChildSaResponderOnlyWaits) {
  start_default();
  connect();
  IkeSa* sa = a.d->established_sa("to-b");
  sa->tm.queue(make_child_delete({sa->children[0].spi_in}));
  sa->tm.initiate(*a.d, *sa);
  deliver();
  EXPECT_FALSE(b.kernel.up);
  run_for(tun.drain_ms + 200);
  // A initiates the connection: A re-creates it.
  EXPECT_TRUE(a.d->connected("to-b"));
  EXPECT_TRUE(b.d->connected("to-a"));
  expect_keys_match();
}

// Both sides initiate the connection and re-create the Child SA at the same time: one survives.
TEST_F(Pair, BothSidesRecreateChildSaAtOnce) {
  start_default(/*b_initiates=*/true);
  a.d->tick();  // only A initiates the IKE SA; B then has one and does not start another
  deliver();
  ASSERT_TRUE(b.d->connected("to-a"));
  ASSERT_EQ(b.d->ike_sas("to-a").size(), 1u);
  IkeSa* sb = b.d->established_sa("to-a");
  sb->tm.queue(make_child_delete({sb->children[0].spi_in}));
  sb->tm.initiate(*b.d, *sb);
  deliver();
  EXPECT_FALSE(a.kernel.up || b.kernel.up);
  size_t before = sent_log.size();
  run_for(tun.drain_ms + 1000);
  int creates = 0;
  for (size_t i = before; i < sent_log.size(); ++i)
    creates += !sent_log[i].keepalive && !is_response(sent_log[i]) &&
               ex_of(sent_log[i]) == ExchangeType::kCreateChildSa;
  EXPECT_EQ(creates, 2);  // both tried, both succeeded
  EXPECT_EQ(a.d->status()[0].last_error.find("not created"), std::string::npos);
  EXPECT_EQ(b.d->status()[0].last_error.find("not created"), std::string::npos);
  EXPECT_TRUE(a.d->connected("to-b"));
  EXPECT_TRUE(b.d->connected("to-a"));
  EXPECT_EQ(a.kernel.in.size(), 1u);
  EXPECT_EQ(b.kernel.in.size(), 1u);
  EXPECT_EQ(a.kernel.out.size(), 1u);
  EXPECT_EQ(b.kernel.out.size(), 1u);
  expect_keys_match();
}

// The Child SA hits its hard lifetime without a rekey: it is deleted and a new one created.
TEST_F(Pair, ChildSaExpiryCreatesNewChild) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  ca.child_lifetime_s = 20;
  start(std::move(ca), std::move(cb));
  connect();
  IkeSa* sa = a.d->established_sa("to-b");
  uint32_t first = a.kernel.current_out;
  sa->children[0].rekey_ms = sa->children[0].expire_ms + 100000;  // "rekeying kept failing"
  run_for(20000);
  EXPECT_FALSE(a.kernel.out.count(first));
  EXPECT_NE(a.d->status()[0].last_error.find("expired"), std::string::npos);
  run_for(tun.drain_ms + 1000);
  ASSERT_TRUE(a.d->connected("to-b"));
  EXPECT_TRUE(b.kernel.up);
  EXPECT_NE(a.kernel.current_out, first);
  EXPECT_EQ(a.kernel.in.size(), 1u);
  EXPECT_EQ(b.kernel.in.size(), 1u);
  expect_keys_match();
}

// The peer refuses the new Child SA: retried with a back-off, the IKE SA stays.
TEST_F(Pair, ChildCreateRefusedIsRetried) {
  start_default();
  connect();
  IkeSa* sb = b.d->established_sa("to-a");
  sb->tm.queue(make_child_delete({sb->children[0].spi_in}));
  sb->tm.initiate(*b.d, *sb);
  deliver();
  b.kernel.fail_add = true;  // B cannot install: NO_PROPOSAL_CHOSEN
  run_for(3000);
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_NE(a.d->status()[0].last_error.find("Child SA not created"), std::string::npos);
  EXPECT_EQ(a.d->ike_sas("to-b").size(), 1u);
  // Every refused attempt gave its SPI back, on both sides (the old Child SA has drained).
  EXPECT_GE(a.kernel.next_spi - 0x1000, 3u);  // IKE_AUTH's SPI and several attempts
  EXPECT_EQ(a.kernel.leaked_spis(), 0u);
  EXPECT_EQ(b.kernel.leaked_spis(), 0u);
  EXPECT_TRUE(a.kernel.reserved.empty());
  b.kernel.fail_add = false;
  run_for(20000, 500);
  EXPECT_TRUE(a.d->connected("to-b"));
  expect_keys_match();
  EXPECT_EQ(a.kernel.reserved.size(), a.kernel.in.size());
  EXPECT_EQ(b.kernel.reserved.size(), b.kernel.in.size());
}

// No key exchange for the PFS group when re-creating the Child SA: the same back-off as a
// refusal, not a new attempt every tick.
TEST_F(Pair, ChildCreateKeyExchangeFailureBacksOff) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  std::string err;
  ca.esp = *parse_proposals({"aes128gcm16-ecp256"}, ProtocolId::kEsp, &err);
  cb.esp = ca.esp;
  start(std::move(ca), std::move(cb));
  connect();
  ASSERT_TRUE(a.d->connected("to-b"));
  IkeSa* sb = b.d->established_sa("to-a");
  sb->tm.queue(make_child_delete({sb->children[0].spi_in}));
  sb->tm.initiate(*b.d, *sb);
  a.ke_fail = true;
  deliver();
  run_for(3000);
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_NE(a.d->status()[0].last_error.find("Child SA not created"), std::string::npos);
  EXPECT_GE(a.ke_refused, 1);
  EXPECT_LE(a.ke_refused, 3);  // 1 s, 2 s back-off: not one per 100 ms tick
  EXPECT_EQ(a.kernel.leaked_spis(), 0u);
  a.ke_fail = false;
  run_for(20000, 500);
  EXPECT_TRUE(a.d->connected("to-b"));
  expect_keys_match();
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

// ---- error notifies on CREATE_CHILD_SA ----

bool is_resp(const Packet& p) {
  Header h;
  decode_header(p.data, h);
  return h.response();
}
ExchangeType exchange_of(const Packet& p) {
  Header h;
  decode_header(p.data, h);
  return h.exchange;
}
int requests_from(const std::vector<Packet>& log, const Peer& p, ExchangeType ex) {
  int n = 0;
  for (auto& x : log)
    n += !x.keepalive && x.from.addr == p.addr && !is_resp(x) && exchange_of(x) == ex;
  return n;
}

// PFS group mismatch on a child rekey: INVALID_KE_PAYLOAD, retried with the requested group.
TEST_F(Pair, ChildRekeyInvalidKeRetriesWithRequestedGroup) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  std::string err;
  ca.esp = *parse_proposals({"aes128gcm16-ecp384", "aes128gcm16-ecp256"}, ProtocolId::kEsp, &err);
  cb.esp = *parse_proposals({"aes128gcm16-ecp256"}, ProtocolId::kEsp, &err);
  start(std::move(ca), std::move(cb));
  connect();
  ASSERT_TRUE(a.d->connected("to-b"));
  uint32_t old_out = a.kernel.current_out;
  size_t before = sent_log.size();
  ASSERT_TRUE(a.d->rekey_child("to-b"));
  deliver();
  std::vector<Packet> since(sent_log.begin() + long(before), sent_log.end());
  EXPECT_EQ(requests_from(since, a, ExchangeType::kCreateChildSa), 2);  // ecp384, then ecp256
  run_for(tun.drain_ms + 200);
  EXPECT_NE(a.kernel.current_out, old_out);
  IkeSa* sa = a.d->established_sa("to-b");
  ASSERT_EQ(sa->children.size(), 1u);
  EXPECT_EQ(sa->children[0].suite.dh, dh::kEcp256);
  EXPECT_EQ(b.d->established_sa("to-a")->children[0].suite.dh, dh::kEcp256);
  EXPECT_EQ(a.kernel.in.size(), 1u);
  expect_keys_match();
  EXPECT_TRUE(a.d->status()[0].last_error.empty());
}

// The peer refuses the rekey (we want PFS, it has none): the old Child SA keeps working until its
// lifetime ends, the error is recorded on both sides, the rekey is retried.
TEST_F(Pair, ChildRekeyNoProposalChosenKeepsOldChild) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  std::string err;
  ca.esp = *parse_proposals({"aes128gcm16-modp2048"}, ProtocolId::kEsp, &err);
  cb.esp = *parse_proposals({"aes128gcm16"}, ProtocolId::kEsp, &err);
  ca.child_lifetime_s = 60;
  start(std::move(ca), std::move(cb));
  connect();
  ASSERT_TRUE(a.d->connected("to-b"));
  uint32_t out_a = a.kernel.current_out, out_b = b.kernel.current_out;
  ASSERT_TRUE(a.d->rekey_child("to-b"));
  deliver();
  EXPECT_NE(a.d->status()[0].last_error.find("NO_PROPOSAL_CHOSEN"), std::string::npos);
  EXPECT_NE(b.d->status()[0].last_error.find("NO_PROPOSAL_CHOSEN"), std::string::npos);
  EXPECT_TRUE(a.d->connected("to-b"));
  EXPECT_EQ(a.kernel.current_out, out_a);
  EXPECT_EQ(b.kernel.current_out, out_b);
  EXPECT_EQ(a.kernel.in.size(), 1u);
  EXPECT_EQ(b.kernel.in.size(), 1u);
  expect_keys_match();
  size_t before = sent_log.size();
  run_for(50000, 500);  // before the hard lifetime: still the old SA, rekeys retried
  EXPECT_TRUE(a.d->connected("to-b"));
  EXPECT_EQ(a.kernel.current_out, out_a);
  std::vector<Packet> since(sent_log.begin() + long(before), sent_log.end());
  EXPECT_GE(requests_from(since, a, ExchangeType::kCreateChildSa), 2);
  run_for(12000, 500);  // past it: the SA is gone
  EXPECT_FALSE(a.kernel.out.count(out_a));
  EXPECT_FALSE(b.kernel.out.count(out_b));
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_FALSE(a.kernel.up);
  EXPECT_EQ(a.d->ike_sas("to-b").size(), 1u);  // the IKE SA stays; creating a child is retried
}

// IKE rekey with a DH group the peer does not prefer: INVALID_KE_PAYLOAD, retried.
TEST_F(Pair, IkeRekeyInvalidKeRetriesWithRequestedGroup) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  std::string err;
  // IKE_SA_INIT from A picks ecp256 (A's first); B's own preference is modp2048.
  cb.ike = *parse_proposals({"aes256-sha256-modp2048", "aes128gcm16-prfsha256-ecp256"},
                            ProtocolId::kIke, &err);
  start(std::move(ca), std::move(cb));
  connect();
  ASSERT_TRUE(a.d->connected("to-b"));
  ASSERT_EQ(b.d->established_sa("to-a")->suite.dh, dh::kEcp256);
  uint32_t child = a.kernel.current_out;
  size_t before = sent_log.size();
  ASSERT_TRUE(b.d->rekey_ike("to-a"));  // B offers modp2048 first, with an ecp256 KE
  deliver();
  run_for(500);
  std::vector<Packet> since(sent_log.begin() + long(before), sent_log.end());
  EXPECT_EQ(requests_from(since, b, ExchangeType::kCreateChildSa), 2);
  auto sa_a = a.d->ike_sas("to-b");
  auto sa_b = b.d->ike_sas("to-a");
  ASSERT_EQ(sa_a.size(), 1u);
  ASSERT_EQ(sa_b.size(), 1u);
  EXPECT_EQ(sa_b[0]->suite.dh, dh::kModp2048);
  EXPECT_EQ(sa_a[0]->spi_r, sa_b[0]->spi_r);
  EXPECT_EQ(a.kernel.current_out, child);
  EXPECT_TRUE(b.d->status()[0].last_error.empty());
  ASSERT_TRUE(a.d->rekey_child("to-b"));  // the new IKE SA works
  deliver();
  run_for(tun.drain_ms + 200);
  expect_keys_match();
}

// A CREATE_CHILD_SA response whose selectors are not within what we offered is refused: no new
// SA is installed, the one the responder created is deleted, the old SA stays.
TEST_F(Pair, ChildRekeyResponseWithForeignSelectorsIsRejected) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  ca.local_ts = cb.remote_ts = {*Prefix::parse("10.1.0.0/16")};
  ca.remote_ts = cb.local_ts = {*Prefix::parse("10.2.0.0/16")};
  start(std::move(ca), std::move(cb));
  connect();
  ASSERT_TRUE(a.d->connected("to-b"));
  IkeSa* sa = a.d->established_sa("to-b");
  uint32_t old_in = sa->children[0].spi_in;
  uint32_t out_a = a.kernel.current_out;
  size_t n_in = a.kernel.in.size();
  auto task = make_child_rekey(old_in);
  std::vector<Payload> req;
  ASSERT_TRUE(task->build(*a.d, *sa, req));
  // A crafted response: the selectors name 10.3.0.0/16 instead of 10.2.0.0/16.
  std::string err;
  Message m;
  m.hdr.exchange = ExchangeType::kCreateChildSa;
  m.hdr.flags = kFlagResponse;
  m.payloads.push_back(make_payload(SaPayload{
      {with_spi(parse_proposals({"aes128gcm16"}, ProtocolId::kEsp, &err)->front(), 0x9999)}}));
  m.payloads.push_back(make_payload(NoncePayload{Bytes(32, 7)}));
  m.payloads.push_back(
      make_tsi(TsPayload{{TrafficSelector::from_prefix(*Prefix::parse("10.1.0.0/16"))}}));
  m.payloads.push_back(
      make_tsr(TsPayload{{TrafficSelector::from_prefix(*Prefix::parse("10.3.0.0/16"))}}));
  EXPECT_EQ(task->process(*a.d, *sa, m), Task::Result::kDone);
  EXPECT_NE(a.d->status()[0].last_error.find("TS_UNACCEPTABLE"), std::string::npos);
  EXPECT_EQ(a.kernel.in.size(), n_in);  // nothing new installed
  EXPECT_EQ(a.kernel.current_out, out_a);
  EXPECT_FALSE(a.kernel.out.count(0x9999));
  // The DELETE for the responder's SA goes out; the old SA keeps carrying traffic.
  size_t before = sent_log.size();
  sa->tm.initiate(*a.d, *sa);
  deliver();
  std::vector<Packet> since(sent_log.begin() + long(before), sent_log.end());
  EXPECT_EQ(requests_from(since, a, ExchangeType::kInformational), 1);
  run_for(1500);
  EXPECT_TRUE(a.d->connected("to-b"));
  EXPECT_EQ(a.kernel.current_out, out_a);
  ASSERT_NE(sa->child_by_in(old_in), nullptr);
  expect_keys_match();
  run_for(tun.drain_ms + 1000);  // the rekey is tried again (now with an honest responder)
  EXPECT_NE(a.kernel.current_out, out_a);
  EXPECT_EQ(a.kernel.in.size(), 1u);
  expect_keys_match();
}

// The CHILD_CREATE initiator checks the selectors the same way.
TEST_F(Pair, ChildCreateResponseWithForeignSelectorsIsRejected) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  ca.local_ts = cb.remote_ts = {*Prefix::parse("10.1.0.0/16")};
  ca.remote_ts = cb.local_ts = {*Prefix::parse("10.2.0.0/16")};
  start(std::move(ca), std::move(cb));
  connect();
  IkeSa* sa = a.d->established_sa("to-b");
  sa->creating_child = true;  // keep the daemon's own CHILD_CREATE out of this
  auto task = make_child_create();
  std::vector<Payload> req;
  EXPECT_FALSE(task->build(*a.d, *sa, req));  // a live Child SA: nothing to do
  for (auto& c : sa->children) a.d->remove_out(*sa, c), c.state = ChildState::kRekeyed;
  ASSERT_TRUE(task->build(*a.d, *sa, req));
  std::string err;
  Message m;
  m.hdr.exchange = ExchangeType::kCreateChildSa;
  m.hdr.flags = kFlagResponse;
  m.payloads.push_back(make_payload(SaPayload{
      {with_spi(parse_proposals({"aes128gcm16"}, ProtocolId::kEsp, &err)->front(), 0x9999)}}));
  m.payloads.push_back(make_payload(NoncePayload{Bytes(32, 7)}));
  m.payloads.push_back(
      make_tsi(TsPayload{{TrafficSelector::from_prefix(*Prefix::parse("0.0.0.0/0"))}}));
  m.payloads.push_back(
      make_tsr(TsPayload{{TrafficSelector::from_prefix(*Prefix::parse("10.2.0.0/16"))}}));
  size_t outs = a.kernel.out.size();
  EXPECT_EQ(task->process(*a.d, *sa, m), Task::Result::kDone);
  EXPECT_NE(a.d->status()[0].last_error.find("TS_UNACCEPTABLE"), std::string::npos);
  EXPECT_EQ(a.kernel.out.size(), outs);
  EXPECT_FALSE(a.kernel.out.count(0x9999));
  EXPECT_FALSE(sa->has_live_child());
}

// ---- rekey collision with a lost DELETE ----

// Both rekey the same Child SA; the loser's DELETE of its redundant SA is lost. The winner must
// never install the outbound half of the peer's redundant SA (the loser has no inbound for it).
TEST_F(Pair, SimultaneousChildRekeyLoserDeleteLost) {
  start_default();
  connect();
  auto loser_of = [&](Peer& p) {
    IkeSa* sa = p.d->established_sa(p.name == "a" ? "to-b" : "to-a");
    if (!sa) return false;
    for (auto& c : sa->children)
      if (c.created_by_us && c.state == ChildState::kDeleting && !c.in_installed) return true;
    return false;
  };
  int dropped = 0;
  drop = [&](const Packet& p) {
    Peer& from = p.from.addr == a.addr ? a : b;
    if (!dropped && ex_of(p) == ExchangeType::kInformational && !is_response(p) && loser_of(from)) {
      ++dropped;
      return true;
    }
    return false;
  };
  uint32_t old_a = a.kernel.current_out;
  ASSERT_TRUE(a.d->rekey_child("to-b"));
  ASSERT_TRUE(b.d->rekey_child("to-a"));
  deliver();
  ASSERT_EQ(dropped, 1);
  expect_keys_match();  // before the loser's retransmission
  // Until the pending timer and after it: still no black hole.
  for (int i = 0; i < 3; ++i) {
    run_for(500);
    expect_keys_match();
  }
  drop = [](const Packet&) { return true; };  // the DELETE never arrives
  run_for(tun.out_pending_ms + 500);
  expect_keys_match();
  drop = nullptr;
  run_for(tun.drain_ms + 500);
  expect_keys_match();
  EXPECT_NE(a.kernel.current_out, old_a);
  EXPECT_EQ(a.kernel.in.size(), 1u);
  EXPECT_EQ(b.kernel.in.size(), 1u);
  EXPECT_EQ(a.kernel.out.size(), 1u);
  EXPECT_EQ(b.kernel.out.size(), 1u);
  EXPECT_EQ(a.kernel.downs, 0);
  EXPECT_EQ(b.kernel.downs, 0);
}

// ---- packet lifetime ----

TEST_F(Pair, ChildRekeyOnPacketLifetime) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  ca.child_lifetime_packets = 100000;
  start(std::move(ca), std::move(cb));
  connect();
  uint32_t first = a.kernel.current_out;
  EXPECT_EQ(a.kernel.out[first].hard_packets, 100000u);            // the data plane's hard limit
  EXPECT_EQ(a.kernel.out[first].soft_packets, 90000u);             // and its soft limit (90%)
  EXPECT_EQ(a.kernel.in.begin()->second.soft_packets, 90000u);      // inbound packets count too
  EXPECT_EQ(b.kernel.out[b.kernel.current_out].hard_packets, 0u);  // B: no packet limit
  EXPECT_EQ(b.kernel.out[b.kernel.current_out].soft_packets, 0u);
  run_for(2000);  // no event from the data plane: nothing happens
  EXPECT_EQ(a.kernel.current_out, first);
  a.d->on_child_lifetime("to-b", first, false, false);  // the data plane: soft limit reached
  run_for(tun.drain_ms + 500);
  EXPECT_NE(a.kernel.current_out, first);
  EXPECT_EQ(a.kernel.in.size(), 1u);
  expect_keys_match();
  // An inbound SA's soft event rekeys too.
  uint32_t second_in = a.kernel.in.begin()->first, second_out = a.kernel.current_out;
  a.d->on_child_lifetime("to-b", second_in, true, false);
  run_for(tun.drain_ms + 500);
  EXPECT_NE(a.kernel.current_out, second_out);
  expect_keys_match();
  // A hard event for an SA that is not rekeying: it is deleted (and, wanted, made again).
  uint32_t third_in = a.kernel.in.begin()->first;
  a.d->on_child_lifetime("to-b", third_in, true, true);
  run_for(tun.drain_ms + 3000);
  EXPECT_EQ(a.kernel.in.count(third_in), 0u);
}

// The largest valid byte limit (2^53 kB = 2^63 bytes): the soft limit must not overflow.
TEST_F(Pair, ChildRekeyOnHugeByteLifetime) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  ca.child_lifetime_bytes = uint64_t(1) << 63;
  start(std::move(ca), std::move(cb));
  connect();
  uint32_t first = a.kernel.current_out;
  EXPECT_EQ(a.kernel.out[first].hard_bytes, uint64_t(1) << 63);
  // 90% of 2^63 computed without overflowing (2^63 * 90 would wrap): 2^63 / 100 * 90 + 8 * 90 / 100
  EXPECT_EQ(a.kernel.out[first].soft_bytes, (uint64_t(1) << 63) / 100 * 90 + 7);
  a.d->on_child_lifetime("to-b", first, false, false);
  run_for(tun.drain_ms + 500);
  EXPECT_NE(a.kernel.current_out, first);
  expect_keys_match();
}

TEST(ConnFromModel, LifetimePacketsMapped) {
  model::Config cfg;
  model::GatewayInstance gi;
  gi.public_ip = *IpAddr::parse("192.0.2.1");
  cfg.gateway.instances.push_back(gi);
  model::LocalNetworkGateway lng;
  lng.name = "site";
  lng.gateway_ip = *IpAddr::parse("198.51.100.1");
  cfg.local_network_gateways.push_back(lng);
  model::Connection c;
  c.name = "c1";
  c.peer = "site";
  std::string err;
  auto cc = conn_from_model(cfg, c, &err);
  ASSERT_TRUE(cc) << err;
  EXPECT_EQ(cc->child_lifetime_packets, 0u);  // unset: no packet limit
  c.ipsec_policy.sa_lifetime_packets = 5000000;
  cc = conn_from_model(cfg, c, &err);
  ASSERT_TRUE(cc) << err;
  EXPECT_EQ(cc->child_lifetime_packets, 5000000u);
  // Identities: default our address / any peer; else an address or an FQDN.
  EXPECT_EQ(cc->local_id, IdPayload::from_addr(*IpAddr::parse("192.0.2.1")));
  EXPECT_FALSE(cc->remote_id);
  c.local_id = "gw1.example.net";
  c.remote_id = "2001:db8::5";
  cc = conn_from_model(cfg, c, &err);
  ASSERT_TRUE(cc) << err;
  EXPECT_EQ(cc->local_id, IdPayload::fqdn("gw1.example.net"));
  ASSERT_TRUE(cc->remote_id);
  EXPECT_EQ(cc->remote_id->type, IdType::kIpv6Addr);
  EXPECT_EQ(cc->remote_id->str(), "2001:db8::5");
  c.remote_id = "198.51.100.1";
  cc = conn_from_model(cfg, c, &err);
  ASSERT_TRUE(cc && cc->remote_id);
  EXPECT_EQ(cc->remote_id->type, IdType::kIpv4Addr);
}

// ---- ESN (RFC 4303 2.2.1, RFC 7296 3.3.2 transform type 5) ----

TEST_F(Pair, EsnNegotiatedWhenBothOfferIt) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  std::string err;
  ca.esp = *parse_proposals({"aes128gcm16-esn-noesn"}, ProtocolId::kEsp, &err);
  cb.esp = *parse_proposals({"aes128gcm16-esn"}, ProtocolId::kEsp, &err);
  cb.initiate = false;
  start(std::move(ca), std::move(cb));
  connect();
  ASSERT_TRUE(a.d->connected("to-b"));
  expect_keys_match();
  for (Peer* p : {&a, &b}) {
    for (auto* m : {&p->kernel.in, &p->kernel.out}) {
      ASSERT_EQ(m->size(), 1u);
      EXPECT_TRUE(m->begin()->second.esn) << p->name;
    }
    EXPECT_EQ(p->d->status()[0].children[0].proposal, "aes128gcm16-esn");
  }
}

TEST_F(Pair, EsnFallsBackToNoEsnWithAPeerWithout) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  std::string err;
  ca.esp = *parse_proposals({"aes128gcm16-esn-noesn"}, ProtocolId::kEsp, &err);
  cb.esp = *parse_proposals({"aes128gcm16-noesn"}, ProtocolId::kEsp, &err);
  cb.initiate = false;
  start(std::move(ca), std::move(cb));
  connect();
  ASSERT_TRUE(a.d->connected("to-b"));
  EXPECT_FALSE(a.kernel.in.begin()->second.esn);
  EXPECT_FALSE(b.kernel.out.begin()->second.esn);
  EXPECT_EQ(a.d->status()[0].children[0].proposal, "aes128gcm16-noesn");
}

TEST_F(Pair, DefaultProposalsFromTheModelOfferEsnFirst) {
  model::Config cfg;
  cfg.gateway.instances.resize(1);
  cfg.gateway.instances[0].public_ip = a.addr;
  model::LocalNetworkGateway lng;
  lng.name = "peer";
  lng.gateway_ip = b.addr;
  cfg.local_network_gateways.push_back(lng);
  model::Connection mc;
  mc.name = "to-b";
  mc.peer = "peer";
  std::string err;
  auto c = conn_from_model(cfg, mc, &err);
  ASSERT_TRUE(c) << err;
  ASSERT_FALSE(c->esp.empty());
  for (const auto& p : c->esp) {
    std::vector<uint16_t> esn;
    for (const auto& t : p.transforms)
      if (t.type == TransformType::kEsn) esn.push_back(t.id);
    EXPECT_EQ(esn, (std::vector<uint16_t>{esn::kYes, esn::kNo}));
  }
  // Against a peer that offers ESN (strongSwan "-esn") the Child SA uses it.
  ConnConfig cb = conn(b, a);
  cb.esp = *parse_proposals({"aes256gcm16-esn"}, ProtocolId::kEsp, &err);
  cb.initiate = false;
  c->local_id = IdPayload::from_addr(a.addr);
  c->psk = Secret("correct horse battery staple");
  start(std::move(*c), std::move(cb));
  connect();
  ASSERT_TRUE(a.d->connected("to-b"));
  EXPECT_TRUE(a.kernel.in.begin()->second.esn);
  EXPECT_TRUE(b.kernel.in.begin()->second.esn);
}

// ---- negotiated traffic selectors reach the data plane (RFC 4301 5.2) ----

TEST_F(Pair, InboundSasCarryTheNegotiatedRemoteSelectors) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  ca.local_ts = {*Prefix::parse("10.1.0.0/24"), *Prefix::parse("fd00:1::/64")};
  ca.remote_ts = {*Prefix::parse("10.2.0.0/16")};
  // b is route based (0/0): what it accepts from a is what a's TSi says.
  start(std::move(ca), std::move(cb));
  connect();
  ASSERT_TRUE(b.d->connected("to-a"));
  ASSERT_EQ(b.kernel.in.size(), 1u);
  EXPECT_EQ(b.kernel.in.begin()->second.remote_ts,
            (std::vector<Prefix>{*Prefix::parse("10.1.0.0/24"), *Prefix::parse("fd00:1::/64")}));
  ASSERT_EQ(a.kernel.in.size(), 1u);
  EXPECT_EQ(a.kernel.in.begin()->second.remote_ts,
            (std::vector<Prefix>{*Prefix::parse("10.2.0.0/16")}));
  // A rekeyed Child SA keeps them.
  ASSERT_TRUE(a.d->rekey_child("to-b"));
  deliver();
  for (const auto& [spi, sa] : b.kernel.in) EXPECT_EQ(sa.remote_ts.size(), 2u) << spi;
}

TEST(TsPrefixes, RangesBecomeMinimalPrefixSets) {
  auto r = [](const char* lo, const char* hi) {
    TrafficSelector t;
    t.start = *IpAddr::parse(lo);
    t.end = *IpAddr::parse(hi);
    t.type = t.start.is_v4() ? TsType::kIpv4AddrRange : TsType::kIpv6AddrRange;
    return t;
  };
  auto strs = [](const std::vector<Prefix>& v) {
    std::vector<std::string> s;
    for (const auto& p : v) s.push_back(p.str());
    return s;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(strs(ts_prefixes({r("0.0.0.0", "255.255.255.255")})), V{"0.0.0.0/0"});
  EXPECT_EQ(strs(ts_prefixes({r("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")})), V{"::/0"});
  EXPECT_EQ(strs(ts_prefixes({r("10.0.0.5", "10.0.0.5")})), V{"10.0.0.5/32"});
  EXPECT_EQ(strs(ts_prefixes({r("10.0.0.1", "10.0.0.6")})),
            (V{"10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"}));
  EXPECT_EQ(strs(ts_prefixes({r("255.255.255.254", "255.255.255.255")})), V{"255.255.255.254/31"});
  EXPECT_EQ(strs(ts_prefixes({r("0.0.0.1", "255.255.255.255")})).size(), 32u);
  EXPECT_EQ(strs(ts_prefixes({r("::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")})).size(), 254u);
  EXPECT_TRUE(ts_prefixes({r("10.0.0.9", "10.0.0.1")}).empty());  // empty range
}

// ---- IKE fragmentation (RFC 7383) ----

size_t count_lines(const Peer& p, const std::string& what) {
  size_t n = 0;
  for (const auto& l : p.logs) n += l.find(what) != std::string::npos;
  return n;
}

static bool is_skf(const Packet& p) {
  Header h;
  return !p.keepalive && decode_header(p.data, h).ok() && h.next == PayloadType::kEncryptedFragment;
}

TEST_F(Pair, FragmentedIkeAuthBringsTheTunnelUp) {
  tun.frag_mtu_v4 = 200;  // IP datagram: every IKE_AUTH message needs several fragments
  start_default();
  connect();
  ASSERT_TRUE(a.d->connected("to-b"));
  ASSERT_TRUE(b.d->connected("to-a"));
  expect_keys_match();
  int skf_a = 0, skf_b = 0;
  for (const auto& p : sent_log) {
    if (p.keepalive || ex_of(p) == ExchangeType::kIkeSaInit) continue;  // never fragmented
    EXPECT_LE(p.data.size() + 28, 200u);                                // + IPv4 and UDP headers
    if (is_skf(p)) (p.from.addr == a.addr ? skf_a : skf_b)++;
  }
  EXPECT_GE(skf_a, 2);
  EXPECT_GE(skf_b, 2);
  for (Peer* p : {&a, &b}) {
    auto st = p->d->status()[0];
    EXPECT_TRUE(st.fragmentation);
    EXPECT_EQ(st.frag.messages_reassembled, 1u) << p->name;
    EXPECT_EQ(st.frag.messages_fragmented, 1u) << p->name;
    for (const auto& [name, v] : st.frag.named())
      if (std::string(name).starts_with("drop_")) {
        EXPECT_EQ(v, 0u) << p->name << " " << name;
      }
  }
  // Later exchanges (a Child SA rekey) too, and the IKE SA that replaces this one keeps it.
  ASSERT_TRUE(a.d->rekey_child("to-b"));
  deliver();
  expect_keys_match();
  ASSERT_TRUE(a.d->rekey_ike("to-b"));
  deliver();
  run_for(1000);
  ASSERT_TRUE(a.d->established_sa("to-b")->frag);
  EXPECT_TRUE(b.d->established_sa("to-a")->frag);
  EXPECT_GE(a.d->status()[0].frag.messages_reassembled, 3u);
}

TEST_F(Pair, NoFragmentsUnlessBothAnnounce) {
  tun.frag_mtu_v4 = 200;
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  cb.fragmentation = false;
  start(std::move(ca), std::move(cb));
  connect();
  ASSERT_TRUE(a.d->connected("to-b"));  // whole messages, larger than the "MTU"
  for (const auto& p : sent_log) EXPECT_FALSE(is_skf(p));
  EXPECT_FALSE(a.d->status()[0].fragmentation);
  // Fragments anyway (properly protected by the peer) are refused and counted.
  IkeSa* sa = a.d->established_sa("to-b");
  Header h;
  h.spi_i = sa->spi_i;
  h.spi_r = sa->spi_r;
  h.exchange = ExchangeType::kInformational;
  h.flags = kFlagInitiator;
  h.message_id = sa->tm.next_out();
  auto frags = sa->sk->out->protect_fragments(h, {}, 100);
  ASSERT_TRUE(frags);
  b.d->receive({b.addr, 500}, {a.addr, 500}, frags->front());
  EXPECT_EQ(b.d->status()[0].frag.drop_not_negotiated, 1u);
  EXPECT_EQ(b.d->counter("fragment_unsupported"), 1u);
  EXPECT_EQ(b.d->status()[0].frag.fragments_in, 0u);
}

// Fragments sent "by a" straight to b with a's keys, for the request ID b expects (+ offset).
struct Injector {
  std::vector<Bytes> frags(IkeSa& sa, const std::vector<Payload>& pl, size_t mtu,
                           int id_offset = 0) {
    Header h;
    h.spi_i = sa.spi_i;
    h.spi_r = sa.spi_r;
    h.exchange = ExchangeType::kInformational;
    h.flags = kFlagInitiator;
    h.message_id = sa.tm.next_out() + id_offset;
    return sa.sk->out->protect_fragments(h, pl, mtu).value();
  }
};

TEST_F(Pair, FragmentReassemblyRefusalsAreCounted) {
  start_default();
  connect();
  ASSERT_TRUE(b.d->connected("to-a"));
  IkeSa& sa = *a.d->established_sa("to-b");
  auto st = [&] { return b.d->status()[0].frag; };
  std::vector<Payload> big{
      make_payload(NotifyPayload::make(NotifyType::kSignatureHashAlgorithms, Bytes(600, 7)))};
  Injector inj;
  // Not the message ID b waits for.
  auto f = inj.frags(sa, big, 200, 3);
  b.d->receive({b.addr, 500}, {a.addr, 500}, f[0]);
  EXPECT_EQ(st().drop_unexpected_id, 1u);
  // Tampered.
  f = inj.frags(sa, big, 200);
  Bytes bad = f[0];
  bad.back() ^= 1;
  b.d->receive({b.addr, 500}, {a.addr, 500}, bad);
  EXPECT_EQ(st().drop_integrity, 1u);
  // Incomplete: dropped after the timeout, by tick.
  b.d->receive({b.addr, 500}, {a.addr, 500}, f[0]);
  b.d->receive({b.addr, 500}, {a.addr, 500}, f[0]);
  EXPECT_EQ(st().drop_duplicate, 1u);
  EXPECT_EQ(st().fragments_in, 1u);
  now += tun.frag.timeout_ms;
  b.d->tick();
  EXPECT_EQ(st().drop_timeout, 1u);
  EXPECT_FALSE(b.d->established_sa("to-a")->frag_req.active());
  // Out of order, a good one is answered (an empty INFORMATIONAL response).
  wire.clear();
  f = inj.frags(sa, big, 200);
  ASSERT_GE(f.size(), 3u);
  for (auto it = f.rbegin(); it != f.rend(); ++it) b.d->receive({b.addr, 500}, {a.addr, 500}, *it);
  EXPECT_EQ(st().messages_reassembled, 1u);
  ASSERT_EQ(wire.size(), 1u);
  EXPECT_TRUE(is_response(wire.front()));
  wire.clear();
  // Too large once reassembled (the next ID): everything of it goes, nothing is answered.
  std::vector<Payload> huge;
  for (int i = 0; i < 20; ++i)
    huge.push_back(make_payload(
        NotifyPayload::make(NotifyType::kSignatureHashAlgorithms, Bytes(4000, uint8_t(i)))));
  f = inj.frags(sa, huge, 1400, 1);
  ASSERT_LE(f.size(), tun.frag.max_fragments);
  for (const auto& x : f) b.d->receive({b.addr, 500}, {a.addr, 500}, x);
  EXPECT_GT(st().drop_oversize, 0u);
  EXPECT_FALSE(b.d->established_sa("to-a")->frag_req.active());
  EXPECT_TRUE(wire.empty());
  // Too many fragments.
  f = inj.frags(sa, {huge[0]}, 80, 1);
  ASSERT_GT(f.size(), tun.frag.max_fragments);
  b.d->receive({b.addr, 500}, {a.addr, 500}, f[0]);
  EXPECT_EQ(st().drop_too_many, 1u);
  EXPECT_TRUE(wire.empty());
  EXPECT_TRUE(b.d->connected("to-a"));
  // Every refusal is a named refusal too (`show ike counters`), one name per reason, as many.
  for (const auto& [name, v] : st().named()) {
    std::string n = name;
    if (!n.starts_with("drop_") || n == "drop_not_negotiated") continue;
    EXPECT_EQ(b.d->counter("fragment_" + n.substr(5)), v) << n;
  }
  EXPECT_EQ(b.d->counter("fragment_integrity"), 1u);
  EXPECT_EQ(b.d->counter("fragment_timeout"), 1u);
  EXPECT_GT(b.d->counter("fragment_oversize"), 0u);
  EXPECT_EQ(count_lines(b, "refused (fragment_too_many)"), 1u);
}

TEST_F(Pair, LostFragmentIsRecoveredByRetransmission) {
  tun.frag_mtu_v4 = 200;
  start_default();
  connect();
  ASSERT_TRUE(a.d->connected("to-b"));
  uint32_t old_out = a.kernel.current_out;
  // The second fragment of the rekey request is lost once; its response once entirely.
  int req_lost = 0, resp_lost = 0, skf_seen = 0;
  size_t resp_frags = 0;
  drop = [&](const Packet& p) {
    if (!is_skf(p) || ex_of(p) != ExchangeType::kCreateChildSa) return false;
    if (!is_response(p)) return ++skf_seen == 2 && !req_lost++;
    if (req_lost && resp_lost < 1) {
      ++resp_frags;
      FragHeader fh;
      parse_fragment(p.data, fh);
      if (fh.number == fh.total) ++resp_lost;
      return true;
    }
    return false;
  };
  ASSERT_TRUE(a.d->rekey_child("to-b"));
  deliver();
  EXPECT_EQ(a.kernel.current_out, old_out);  // incomplete at b: nothing answered yet
  size_t sent_before = sent_log.size();
  run_for(tun.retransmit_base_ms + 100);      // retransmission: b completes it and answers
  run_for(2 * tun.retransmit_base_ms + 100);  // the response was lost: b answers again, once
  EXPECT_NE(a.kernel.current_out, old_out);
  expect_keys_match();
  size_t b_resp = 0;
  for (size_t i = sent_before; i < sent_log.size(); ++i)
    if (sent_log[i].from.addr == b.addr && is_skf(sent_log[i]) && is_response(sent_log[i]) &&
        ex_of(sent_log[i]) == ExchangeType::kCreateChildSa)
      ++b_resp;
  EXPECT_EQ(b_resp, 2 * resp_frags);  // the response twice, not once per request fragment
  EXPECT_GE(b.d->status()[0].frag.drop_duplicate, 1u);  // fragment 1 came twice
}

// ---- issue 16.7 / 15.6 / 15.7: edge cases and hardening ----

// The Child SA is refused inside IKE_AUTH: the initiator backs off like after any other failure
// (1, 2, 4, 8, 16 s) instead of a full handshake every second, the responder keeps no child-less
// IKE SA, and neither side leaks the SPI it reserved for the Child SA.
class ChildRefused : public Pair, public ::testing::WithParamInterface<const char*> {};
TEST_P(ChildRefused, InIkeAuthBacksOffAndResponderDropsIkeSa) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  std::string err;
  std::string why = GetParam();
  if (why == "NO_PROPOSAL_CHOSEN") {
    cb.esp = *parse_proposals({"aes256-sha256"}, ProtocolId::kEsp, &err);
  } else {
    ca.remote_ts = {*Prefix::parse("10.9.0.0/16")};
    cb.local_ts = {*Prefix::parse("10.2.0.0/16")};
  }
  start(std::move(ca), std::move(cb));
  connect();
  EXPECT_FALSE(a.d->connected("to-b"));
  EXPECT_TRUE(b.d->ike_sas("to-a").empty()) << "the responder keeps a child-less IKE SA";
  EXPECT_TRUE(a.d->ike_sas("to-b").empty());
  EXPECT_EQ(a.kernel.leaked_spis(), 0u);
  EXPECT_EQ(b.kernel.leaked_spis(), 0u);
  run_for(30000);
  int inits = 0;
  for (auto& x : sent_log)
    inits += !x.keepalive && x.from.addr == a.addr && !is_response(x) &&
             ex_of(x) == ExchangeType::kIkeSaInit;
  EXPECT_GE(inits, 4);  // it does keep trying ...
  EXPECT_LE(inits, 6);  // ... with the back-off: t = 0, 1, 3, 7, 15 s (before: 27-29)
  EXPECT_GE(a.d->status()[0].failures, 4u);
  EXPECT_NE(a.d->status()[0].last_error.find(why), std::string::npos);
  EXPECT_EQ(a.kernel.leaked_spis(), 0u);
  EXPECT_EQ(b.kernel.leaked_spis(), 0u);
  EXPECT_EQ(a.kernel.ups, 0);
}
INSTANTIATE_TEST_SUITE_P(Pair, ChildRefused,
                         ::testing::Values("NO_PROPOSAL_CHOSEN", "TS_UNACCEPTABLE"));

// The responder deletes the child-less IKE SA itself, also when the initiator keeps it (as
// strongSwan does; here a's DELETE is lost).
TEST_F(Pair, ResponderDeletesChildlessIkeSa) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  std::string err;
  cb.esp = *parse_proposals({"aes256-sha256"}, ProtocolId::kEsp, &err);
  start(std::move(ca), std::move(cb));
  drop = [&](const Packet& p) {
    return p.from.addr == a.addr && ex_of(p) == ExchangeType::kInformational && !is_response(p);
  };
  connect();
  EXPECT_TRUE(b.d->ike_sas("to-a").empty()) << "the responder keeps a child-less IKE SA";
  EXPECT_TRUE(a.d->ike_sas("to-b").empty());  // deleted by b
  EXPECT_EQ(b.kernel.leaked_spis(), 0u);
}

// After a working connection, the back-off starts afresh (the count is reset by a Child SA).
TEST_F(Pair, BackOffResetOnlyByAChildSa) {
  start_default();
  connect();
  ASSERT_TRUE(a.d->connected("to-b"));
  EXPECT_EQ(a.d->status()[0].failures, 0u);
}

// Both sides initiate at once and the side that should delete its duplicate does not (strongSwan
// never does; here its DELETEs are lost): the other side deletes it, whatever the address order.
class Duplicates : public Pair, public ::testing::WithParamInterface<bool> {};
TEST_P(Duplicates, ResolvedByEitherSide) {
  bool mute_b = GetParam();  // b has the higher address
  start_default(/*b_initiates=*/true);
  const Peer& mute = mute_b ? b : a;
  drop = [&](const Packet& p) {
    return p.from.addr == mute.addr && ex_of(p) == ExchangeType::kInformational && !is_response(p);
  };
  tick_both();  // both send IKE_SA_INIT before seeing the other's
  deliver();
  run_for(3000);
  drop = nullptr;
  ASSERT_EQ(a.d->ike_sas("to-b").size(), 1u);
  ASSERT_EQ(b.d->ike_sas("to-a").size(), 1u);
  EXPECT_EQ(a.d->ike_sas("to-b")[0]->spi_i, b.d->ike_sas("to-a")[0]->spi_i);
  EXPECT_TRUE(a.d->ike_sas("to-b")[0]->initiator);  // the one the lower address initiated stays
  EXPECT_TRUE(a.d->connected("to-b"));
  EXPECT_TRUE(b.d->connected("to-a"));
  EXPECT_EQ(a.kernel.in.size(), 1u);
  EXPECT_EQ(b.kernel.in.size(), 1u);
  expect_keys_match();
  EXPECT_EQ(a.kernel.downs, 0);
  EXPECT_EQ(b.kernel.downs, 0);
  run_for(60000);  // liveness checks on the survivor only: nobody is declared dead
  for (Peer* p : {&a, &b})
    for (auto& [c, e] : p->events) EXPECT_NE(e, ConnEvent::kDeadPeer) << p->name;
  EXPECT_TRUE(a.d->connected("to-b"));
}
INSTANTIATE_TEST_SUITE_P(Pair, Duplicates, ::testing::Bool());

// A duplicate IKE SA that dies of a failed liveness check while the other one carries the
// connection is not a dead peer.
TEST_F(Pair, DuplicateLostByDpdIsNoDeadPeer) {
  start_default(/*b_initiates=*/true);
  drop = [&](const Packet& p) { return ex_of(p) == ExchangeType::kInformational; };
  tick_both();
  deliver();
  auto sas = a.d->ike_sas("to-b");
  ASSERT_EQ(sas.size(), 2u);
  IkeSa* dup = sas[0]->initiator ? sas[1] : sas[0];  // the one b initiated (its DELETE is lost)
  a.events.clear();
  a.d->fail(*dup, "DPD: peer did not answer", /*dead_peer=*/true);
  EXPECT_TRUE(a.d->connected("to-b"));
  for (auto& [c, e] : a.events) EXPECT_NE(e, ConnEvent::kDeadPeer);
  EXPECT_EQ(count_lines(a, "peer is dead"), 0u);
}

// INITIAL_CONTACT in the IKE_AUTH of a simultaneous initiation does not make the responder drop
// the IKE SA it initiated itself and the peer holds (that would orphan the peer's half).
TEST_F(Pair, InitialContactDoesNotOrphanSimultaneousSa) {
  start_default(/*b_initiates=*/true);
  tick_both();
  deliver();
  run_for(3000);
  // Every IKE SA either side ever had was deleted with a DELETE both sides saw, or is alive on
  // both.
  EXPECT_EQ(count_lines(a, "replaced (INITIAL_CONTACT)"), 0u);
  EXPECT_EQ(count_lines(b, "replaced (INITIAL_CONTACT)"), 0u);
  ASSERT_EQ(a.d->ike_sas("to-b").size(), 1u);
  ASSERT_EQ(b.d->ike_sas("to-a").size(), 1u);
}

// Simultaneous start where one IKE SA completes on both sides before the other's IKE_AUTH is
// processed: that IKE_AUTH carries no INITIAL_CONTACT (we had another IKE SA with the peer in the
// making), and one that does (a peer deciding otherwise) does not make the receiver drop the
// completed SA quietly, which would orphan the peer's half.
TEST_F(Pair, InitialContactInSimultaneousStartKeepsPeersSa) {
  start_default(/*b_initiates=*/true);
  auto step = [&](const Peer& from, ExchangeType ex, bool resp) {
    for (auto it = wire.begin(); it != wire.end(); ++it)
      if (it->from.addr == from.addr && ex_of(*it) == ex && is_response(*it) == resp) {
        Packet p = *it;
        wire.erase(it);
        return p;
      }
    ADD_FAILURE() << "no such packet";
    return Packet{};
  };
  auto to_peer = [&](const Packet& p) {
    Peer& to = p.to.addr == a.addr ? a : b;
    to.d->receive(p.to, p.from, p.data);
  };
  tick_both();
  to_peer(step(a, ExchangeType::kIkeSaInit, false));  // A: a -> b
  to_peer(step(b, ExchangeType::kIkeSaInit, false));  // B: b -> a
  to_peer(step(b, ExchangeType::kIkeSaInit, true));   // A answered: a sends IKE_AUTH(A)
  to_peer(step(a, ExchangeType::kIkeSaInit, true));   // B answered: b sends IKE_AUTH(B)
  to_peer(step(a, ExchangeType::kIkeAuth, false));    // A established on b
  to_peer(step(b, ExchangeType::kIkeAuth, true));     // A established on a
  Packet auth_b = step(b, ExchangeType::kIkeAuth, false);
  IkeSa *a_resp = nullptr, *b_init = nullptr;
  for (IkeSa* x : a.d->ike_sas("to-b"))
    if (!x->initiator) a_resp = x;
  for (IkeSa* x : b.d->ike_sas("to-a"))
    if (x->initiator) b_init = x;
  ASSERT_TRUE(a_resp && b_init);
  Message m;
  ASSERT_TRUE(a_resp->sk->in->unprotect(auth_b.data, m).ok());
  EXPECT_FALSE(m.notify(NotifyType::kInitialContact));
  // As if the peer had sent INITIAL_CONTACT anyway (the AUTH payload does not cover it).
  std::vector<Payload> inner = m.payloads;
  inner.insert(inner.begin() + 1, make_payload(NotifyPayload::make(NotifyType::kInitialContact)));
  auto forged = b_init->sk->out->protect(m.hdr, inner);
  ASSERT_TRUE(forged);
  auth_b.data = *forged;
  to_peer(auth_b);
  deliver();
  run_for(3000);
  EXPECT_EQ(count_lines(a, "replaced (INITIAL_CONTACT)"), 0u);
  ASSERT_EQ(a.d->ike_sas("to-b").size(), 1u);
  ASSERT_EQ(b.d->ike_sas("to-a").size(), 1u);
  EXPECT_EQ(a.d->ike_sas("to-b")[0]->spi_i, b.d->ike_sas("to-a")[0]->spi_i);
  EXPECT_TRUE(a.d->connected("to-b"));
  EXPECT_TRUE(b.d->connected("to-a"));
  expect_keys_match();
}

// A rebooted peer (INITIAL_CONTACT on a new IKE SA long after ours) still replaces the old SA.
TEST_F(Pair, InitialContactAfterPeerRestartReplacesOldSa) {
  start_default();
  connect();
  uint64_t old = b.d->established_sa("to-a")->spi_r;
  now += 5000;
  // a "reboots": a fresh daemon with the same configuration initiates again.
  a.kernel = FakeKernel(0x5000);
  a.d = std::make_unique<Daemon>(env_for(a), a.kernel, tun);
  a.d->add_connection(conn(a, b));
  connect();
  run_for(1000);
  ASSERT_EQ(b.d->ike_sas("to-a").size(), 1u);
  EXPECT_NE(b.d->ike_sas("to-a")[0]->spi_r, old);
  EXPECT_TRUE(a.d->connected("to-b"));
  expect_keys_match();
}

// An IKE_SA_INIT request of the initiator, as sent.
Bytes first_init(const std::vector<Packet>& log, const Peer& from) {
  for (auto& x : log)
    if (!x.keepalive && x.from.addr == from.addr && !is_resp(x) &&
        exchange_of(x) == ExchangeType::kIkeSaInit)
      return x.data;
  return {};
}

TEST_F(Pair, HigherMajorVersionGetsInvalidMajorVersion) {
  start_default();
  a.d->tick();
  Bytes req = first_init(sent_log, a);
  ASSERT_FALSE(req.empty());
  wire.clear();
  req[17] = 0x30;  // version 3.0
  b.d->receive({b.addr, 500}, {a.addr, 500}, req);
  ASSERT_EQ(wire.size(), 1u);
  Message m;
  ASSERT_TRUE(decode_message(wire.front().data, m).ok());
  EXPECT_EQ(m.hdr.major, 2);
  EXPECT_TRUE(m.hdr.response());
  EXPECT_TRUE(m.notify(NotifyType::kInvalidMajorVersion));
  EXPECT_EQ(wire.front().to, (Endpoint{a.addr, 500}));
  EXPECT_EQ(b.d->half_open(), 0u);
  EXPECT_EQ(b.d->counter("bad_major_version"), 1u);
  // A response with a higher version is only counted.
  wire.clear();
  req[19] |= kFlagResponse;
  b.d->receive({b.addr, 500}, {a.addr, 500}, req);
  EXPECT_TRUE(wire.empty());
  EXPECT_EQ(b.d->counter("bad_major_version"), 2u);
}

// Prepends an unknown payload (type 200) with the critical bit to a message's payload chain.
Bytes with_critical_payload(const Bytes& msg) {
  Bytes out(msg.begin(), msg.begin() + kHeaderLen);
  uint8_t first = out[16];
  out[16] = 200;
  Bytes extra = {first, kCriticalBit, 0, 6, 0xab, 0xcd};
  out.insert(out.end(), extra.begin(), extra.end());
  out.insert(out.end(), msg.begin() + kHeaderLen, msg.end());
  uint32_t len = uint32_t(out.size());
  out[24] = uint8_t(len >> 24), out[25] = uint8_t(len >> 16), out[26] = uint8_t(len >> 8),
  out[27] = uint8_t(len);
  return out;
}

TEST_F(Pair, UnknownCriticalPayloadInInitGetsUnsupportedCriticalPayload) {
  start_default();
  a.d->tick();
  Bytes req = with_critical_payload(first_init(sent_log, a));
  wire.clear();
  b.d->receive({b.addr, 500}, {a.addr, 500}, req);
  ASSERT_EQ(wire.size(), 1u);
  Message m;
  ASSERT_TRUE(decode_message(wire.front().data, m).ok());
  EXPECT_TRUE(m.hdr.response());
  const NotifyPayload* n = m.notify(NotifyType::kUnsupportedCriticalPayload);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->data, Bytes{200});
  EXPECT_EQ(b.d->half_open(), 0u);
  EXPECT_EQ(b.d->counter("unsupported_critical_payload"), 1u);
}

TEST_F(Pair, UnknownCriticalPayloadInProtectedRequest) {
  start_default();
  connect();
  IkeSa* sa = a.d->established_sa("to-b");
  Header h;
  h.spi_i = sa->spi_i;
  h.spi_r = sa->spi_r;
  h.exchange = ExchangeType::kInformational;
  h.flags = kFlagInitiator;
  h.message_id = sa->tm.next_out();
  // The inner chain: the unknown critical payload only; then padding length 0.
  Bytes pt = {0, kCriticalBit, 0, 6, 0xab, 0xcd, 0};
  auto msg = sa->sk->out->seal(h, PayloadType(200), pt);
  ASSERT_TRUE(msg);
  wire.clear();
  b.d->receive({b.addr, 500}, {a.addr, 500}, *msg);
  ASSERT_EQ(wire.size(), 1u);
  Message m;
  ASSERT_TRUE(sa->sk->in->unprotect(wire.front().data, m).ok());
  EXPECT_TRUE(m.hdr.response());
  EXPECT_EQ(m.hdr.message_id, h.message_id);
  const NotifyPayload* n = m.notify(NotifyType::kUnsupportedCriticalPayload);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->data, Bytes{200});
  EXPECT_EQ(b.d->counter("unsupported_critical_payload"), 1u);
  // The exchange is complete on both sides: the next one works.
  wire.clear();
  sa->tm.set_next_out(h.message_id + 1);
  ASSERT_TRUE(a.d->rekey_child("to-b"));
  deliver();
  run_for(tun.drain_ms + 200);
  expect_keys_match();
  EXPECT_TRUE(b.d->connected("to-a"));
}

// A retransmitted IKE_SA_INIT gets the cached answer (every datagram of it, once); another
// IKE_SA_INIT with the SPI of a half-open SA is refused and counted.
TEST_F(Pair, RetransmittedInitAnsweredDuplicateInitRefused) {
  start_default();
  a.d->tick();  // a sends its IKE_SA_INIT
  ASSERT_EQ(wire.size(), 1u);
  Packet req = wire.front();
  wire.clear();
  b.d->receive(req.to, req.from, req.data);  // b answers
  ASSERT_EQ(wire.size(), 1u);
  Bytes resp = wire.front().data;
  wire.clear();
  b.d->receive(req.to, req.from, req.data);
  ASSERT_EQ(wire.size(), 1u);
  EXPECT_EQ(wire.front().data, resp);
  wire.clear();
  Bytes other = req.data;
  other.back() ^= 1;
  Message m;
  ASSERT_TRUE(decode_message(other, m).ok());
  b.d->receive(req.to, req.from, other);
  EXPECT_TRUE(wire.empty());
  EXPECT_EQ(b.d->counter("duplicate_init"), 1u);
  EXPECT_EQ(b.d->half_open(), 1u);
}

// Every refusal is counted under a name and logged, at most one line per interval.
TEST_F(Pair, RefusalsAreCountedAndLogRateLimited) {
  // b does not do IKE fragmentation: every fragment is refused before any crypto (on an IKE SA
  // with fragmentation, this one would fail its integrity check: fragment_integrity).
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  cb.fragmentation = false;
  start(std::move(ca), std::move(cb));
  connect();
  IkeSa* sa = b.d->established_sa("to-a");
  ASSERT_FALSE(sa->frag);
  Header h;
  h.spi_i = sa->spi_i;
  h.spi_r = sa->spi_r;
  h.exchange = ExchangeType::kInformational;
  h.flags = kFlagInitiator;
  h.message_id = 2;
  // An IKE fragment (SKF, RFC 7383): Fragment Number 1, Total Fragments 2, then "ciphertext".
  Bytes skf = {0, 0, 0, 40, 0, 1, 0, 2};
  skf.resize(40, 0x5a);
  Bytes frag;
  Writer w(frag);
  h.next = PayloadType::kEncryptedFragment;
  h.length = uint32_t(kHeaderLen + skf.size());
  h.encode(w);
  frag.insert(frag.end(), skf.begin(), skf.end());
  b.logs.clear();
  for (int i = 0; i < 100; ++i) b.d->receive({b.addr, 500}, {a.addr, 500}, frag);
  EXPECT_EQ(b.d->counter("fragment_unsupported"), 100u);
  EXPECT_EQ(count_lines(b, "fragment_unsupported"), 1u);
  now += tun.log_interval_ms;
  b.d->receive({b.addr, 500}, {a.addr, 500}, frag);
  EXPECT_EQ(count_lines(b, "fragment_unsupported"), 2u);
  EXPECT_EQ(count_lines(b, "99 more not logged"), 1u);
  EXPECT_EQ(b.d->status()[0].frag.drop_not_negotiated, 101u);  // `show connection` counts too
  // A forged SK message, an unknown SPI, garbage.
  Message m;
  m.hdr = h;
  m.payloads.push_back(
      Payload{PayloadType::kEncrypted, EncryptedPayload{PayloadType::kDelete, Bytes(64, 7)}});
  b.d->receive({b.addr, 500}, {a.addr, 500}, encode_message(m));
  EXPECT_EQ(b.d->counter("integrity_failed"), 1u);
  m.hdr.spi_r ^= 1;
  b.d->receive({b.addr, 500}, {a.addr, 500}, encode_message(m));
  EXPECT_EQ(b.d->counter("unknown_spi"), 1u);
  b.d->receive({b.addr, 500}, {a.addr, 500}, Bytes(10, 1));
  EXPECT_EQ(b.d->counter("malformed_header"), 1u);
  // An authentic request of an exchange type we do not know.
  IkeSa* sa_a = a.d->established_sa("to-b");
  Header x = h;
  x.next = PayloadType::kNone;
  x.exchange = ExchangeType(99);
  x.message_id = sa_a->tm.next_out();
  auto unknown = sa_a->sk->out->protect(x, {});
  ASSERT_TRUE(unknown);
  b.d->receive({b.addr, 500}, {a.addr, 500}, *unknown);
  EXPECT_EQ(b.d->counter("unsupported_exchange"), 1u);
  EXPECT_TRUE(b.d->connected("to-a"));
  for (const auto& l : b.logs) EXPECT_EQ(l.find("correct horse"), std::string::npos);
}

// 15.6: a replayed request from another address does not redirect the IKE SA (the message ID
// check comes first); a new authenticated request from a new NAT mapping does, and the Child SA's
// outbound SA follows it.
TEST_F(Pair, NatUpdateOnlyOnNewAuthenticatedRequest) {
  ConnConfig ca = conn(a, b), cb = conn(b, a);
  cb.initiate = false;
  ca.force_encap = true;  // b sees a as behind a NAT
  start(std::move(ca), std::move(cb));
  connect();
  IkeSa* sb = b.d->established_sa("to-a");
  ASSERT_TRUE(sb && sb->nat_remote);
  Endpoint orig = sb->remote;
  ASSERT_EQ(orig.port, 4500);
  IkeSa* sa = a.d->established_sa("to-b");
  // a liveness check a -> b, recorded, then replayed from a spoofed address and port.
  sa->tm.queue(make_dpd());
  sa->tm.initiate(*a.d, *sa);
  ASSERT_EQ(wire.size(), 1u);
  Packet req = wire.front();
  deliver();
  Endpoint spoofed{*IpAddr::parse("203.0.113.66"), 31337};
  b.d->receive(req.to, spoofed, req.data);
  wire.clear();
  EXPECT_EQ(sb->remote, orig) << "a replayed request redirected the IKE SA";
  for (auto& [spi, s] : b.kernel.out) EXPECT_EQ(s.dport, 4500);
  // A new request from a's new mapping (port 4501).
  sa->tm.queue(make_dpd());
  sa->tm.initiate(*a.d, *sa);
  ASSERT_EQ(wire.size(), 1u);
  Packet next = wire.front();
  wire.clear();
  Endpoint moved{a.addr, 4501};
  b.d->receive(next.to, moved, next.data);
  EXPECT_EQ(sb->remote, moved);
  ASSERT_EQ(wire.size(), 1u);
  EXPECT_EQ(wire.front().to, moved);  // the response goes to the new mapping
  ASSERT_EQ(b.kernel.out.size(), 1u);
  EXPECT_EQ(b.kernel.out.begin()->second.dport, 4501) << "the Child SA did not follow";
  EXPECT_EQ(b.kernel.moves, 1);
  wire.clear();
}

// Without a NAT, a new authenticated request from another address does not move the IKE SA.
TEST_F(Pair, NoNatNoAddressUpdate) {
  start_default();
  connect();
  IkeSa* sb = b.d->established_sa("to-a");
  Endpoint orig = sb->remote;
  IkeSa* sa = a.d->established_sa("to-b");
  sa->tm.queue(make_dpd());
  sa->tm.initiate(*a.d, *sa);
  Packet req = wire.front();
  wire.clear();
  b.d->receive(req.to, {a.addr, 4501}, req.data);
  EXPECT_EQ(sb->remote, orig);
  EXPECT_EQ(b.kernel.moves, 0);
  wire.clear();
}

// 15.7: the half-open cap holds even for requests with a valid cookie; oversized IKE_SA_INITs
// create no state.
TEST_F(Pair, HalfOpenCapAndOversizedInit) {
  tun.max_half_open = 2;
  tun.cookie_threshold = 100;
  start_default();
  a.d->tick();
  Bytes req = first_init(sent_log, a);
  wire.clear();
  for (int i = 0; i < 4; ++i) {
    Bytes r = req;
    r[0] = uint8_t(0x10 + i);  // another initiator SPI: another half-open SA
    b.d->receive({b.addr, 500}, {a.addr, 500}, r);
  }
  EXPECT_EQ(b.d->half_open(), 2u);
  EXPECT_EQ(b.d->counter("half_open_limit"), 2u);
  EXPECT_EQ(wire.size(), 2u);  // no answer beyond the cap
  wire.clear();
}

TEST_F(Pair, OversizedInitIsRefused) {
  tun.max_init_bytes = 200;
  start_default();
  a.d->tick();
  Bytes req = first_init(sent_log, a);
  ASSERT_GT(req.size(), 200u);
  wire.clear();
  b.d->receive({b.addr, 500}, {a.addr, 500}, req);
  EXPECT_EQ(b.d->half_open(), 0u);
  EXPECT_TRUE(wire.empty());
  EXPECT_EQ(b.d->counter("init_too_large"), 1u);
}

// The Child SA cap: a CREATE_CHILD_SA beyond it gets NO_ADDITIONAL_SAS; the initiator's reserved
// SPI is released and the old Child SA keeps working.
TEST_F(Pair, ChildSaCapAndFailedRekeyReleasesSpi) {
  tun.max_children = 1;
  start_default();
  connect();
  uint32_t out = a.kernel.current_out;
  ASSERT_TRUE(a.d->rekey_child("to-b"));
  deliver();
  EXPECT_EQ(b.d->counter("child_sa_limit"), 1u);
  EXPECT_NE(a.d->status()[0].last_error.find("NO_ADDITIONAL_SAS"), std::string::npos);
  EXPECT_EQ(a.kernel.leaked_spis(), 0u);
  EXPECT_EQ(b.kernel.leaked_spis(), 0u);
  EXPECT_EQ(a.kernel.current_out, out);
  EXPECT_TRUE(a.d->connected("to-b"));
}

// A CHILD_CREATE whose IKE SA goes away mid-exchange releases its SPI.
TEST_F(Pair, ChildCreateAbortedWithIkeSaReleasesSpi) {
  start_default();
  connect();
  IkeSa* sb = b.d->established_sa("to-a");
  sb->tm.queue(make_child_delete({sb->children[0].spi_in}));
  sb->tm.initiate(*b.d, *sb);
  deliver();
  drop = [&](const Packet&) { return true; };  // the peer is gone
  run_for(tun.drain_ms + 500);
  IkeSa* sa = a.d->established_sa("to-b");
  ASSERT_TRUE(sa && sa->creating_child);
  EXPECT_EQ(a.kernel.reserved.size(), 1u);  // the CHILD_CREATE's SPI
  run_for(30000);                           // no answer: the IKE SA fails
  EXPECT_EQ(a.kernel.leaked_spis(), 0u);
  EXPECT_TRUE(a.kernel.in.empty());
}

// A rekeyed IKE SA the peer never deletes is deleted by us after rekeyed_timeout_ms.
TEST_F(Pair, RekeyedIkeSaThePeerNeverDeletesGoes) {
  start_default();
  connect();
  uint64_t old_spi = a.d->established_sa("to-b")->spi_i;
  // b rekeys; its DELETE of the old IKE SA never arrives.
  drop = [&](const Packet& p) {
    Header h;
    decode_header(p.data, h);
    return p.from.addr == b.addr && h.spi_i == old_spi && ex_of(p) == ExchangeType::kInformational;
  };
  ASSERT_TRUE(b.d->rekey_ike("to-a"));
  deliver();
  run_for(1000);
  EXPECT_EQ(a.d->ike_sas("to-b").size(), 2u);  // the old one waits for the peer's DELETE
  run_for(tun.rekeyed_timeout_ms + 25000);
  ASSERT_EQ(a.d->ike_sas("to-b").size(), 1u);
  EXPECT_NE(a.d->ike_sas("to-b")[0]->spi_i, old_spi);
  EXPECT_EQ(a.d->counter("rekeyed_sa_timeout"), 1u);
  EXPECT_TRUE(a.d->connected("to-b"));
  EXPECT_EQ(a.kernel.downs, 0);
}

}  // namespace
}  // namespace espgw::ike
