// IKE daemon tests (fixture: daemon_pair.h): connection setup and negotiation. Child SAs with
// matching keys, narrowed and refused traffic selectors, proposals (NO_PROPOSAL_CHOSEN,
// INVALID_KE_PAYLOAD, transform order, ESN), identities, responder-only connections, DELETE, and
// the negotiated selectors reaching the data plane.
#include "tests/unit/control/ike/daemon_pair.h"

namespace espgw::ike::test {
namespace {

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

}  // namespace
}  // namespace espgw::ike::test
