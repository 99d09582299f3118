// IKE daemon tests (fixture: daemon_pair.h): rekeying. Child SA and IKE SA rekeys (make before
// break, PFS, simultaneous, on time, packet and byte lifetimes), error notifies on CREATE_CHILD_SA,
// rekey collisions with a lost DELETE, and a rekeyed IKE SA the peer never deletes.
#include "tests/unit/control/ike/daemon_pair.h"

namespace espgw::ike::test {
namespace {

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

// ---- error notifies on CREATE_CHILD_SA ----

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
}  // namespace espgw::ike::test
