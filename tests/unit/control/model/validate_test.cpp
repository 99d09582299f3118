// One good and one bad case per validation rule, on the example config.
#include "control/model/validate.h"

#include <gtest/gtest.h>

#include "tests/unit/control/model/test_util.h"

namespace espgw::model {
namespace {

using testing::dump;
using testing::has_error;

using Rule = void (*)(const Config&, rules::Errors&);

class Validate : public ::testing::Test {
 protected:
  void SetUp() override { c = testing::example(); }
  // Runs one rule on the (mutated) config.
  static rules::Errors run(Rule rule, const Config& cfg) {
    rules::Errors e;
    rule(cfg, e);
    return e;
  }
  // The rule passes on the example, fails on c with an error on `field` mentioning `text`, and
  // validate() reports it too.
  void expect_bad(Rule rule, const std::string& field, const std::string& text = "") {
    EXPECT_TRUE(run(rule, testing::example()).empty());
    rules::Errors e = run(rule, c);
    EXPECT_TRUE(has_error(e, field, text)) << "want " << field << " / " << text << "\n" << dump(e);
    EXPECT_TRUE(has_error(validate(c), field, text));
    for (const auto& err : e) EXPECT_EQ(err.file, c.path);
  }
  void expect_good(Rule rule) { EXPECT_TRUE(run(rule, c).empty()) << dump(run(rule, c)); }

  static Prefix pfx(const char* s) { return *Prefix::parse(s); }
  static IpAddr ip(const char* s) { return *IpAddr::parse(s); }
  LocalNetworkGateway& site5() { return c.local_network_gateways[0]; }
  LocalNetworkGateway& site2() { return c.local_network_gateways[1]; }

  Config c;
};

TEST_F(Validate, ExampleIsValid) { EXPECT_TRUE(validate(c).empty()) << dump(validate(c)); }

TEST(AsnReserved, Table) {
  for (uint32_t a : {0u, 23456u, 64496u, 64511u, 65535u, 65551u, 4294967295u, 8074u, 8075u, 12076u,
                     65515u, 65517u, 65520u})
    EXPECT_TRUE(asn_reserved(a)) << a;
  for (uint32_t a : {1u, 64512u, 65010u, 65516u, 65521u, 65534u, 65552u, 4200000000u, 8076u})
    EXPECT_FALSE(asn_reserved(a)) << a;
}

TEST_F(Validate, BgpSettings) {
  BgpSettings& b = c.connections[0].bgp;
  for (uint32_t h : {0u, 3u, 65535u}) {
    b = {};
    b.hold_time = h;
    expect_good(rules::bgp_settings);
  }
  b = {};
  b.hold_time = 90;
  b.keepalive = 89;
  expect_good(rules::bgp_settings);
  b.keepalive = 1;
  expect_good(rules::bgp_settings);
  b.hold_time = 0;
  b.keepalive = 0;
  expect_good(rules::bgp_settings);
  b.max_prefixes = 4294967295u;
  b.max_prefix_action = MaxPrefixAction::kWarn;
  expect_good(rules::bgp_settings);

  for (uint32_t h : {1u, 2u, 65536u}) {
    c = testing::example();
    c.connections[1].bgp.hold_time = h;
    expect_bad(rules::bgp_settings, "connections[1].bgp.hold_time", "out of range");
  }
  c = testing::example();
  c.connections[0].bgp.keepalive = 90;  // hold 90 in the example
  expect_bad(rules::bgp_settings, "connections[0].bgp.keepalive", "less than hold_time (90)");
  c = testing::example();
  c.connections[0].bgp.keepalive = 0;
  expect_bad(rules::bgp_settings, "connections[0].bgp.keepalive", "at least 1");
  c = testing::example();
  c.connections[0].bgp.hold_time = 0;  // keepalive 20 in the example
  expect_bad(rules::bgp_settings, "connections[0].bgp.keepalive", "when hold_time is 0");
  // A bad hold time is reported once (not also as a keepalive problem).
  c = testing::example();
  c.connections[0].bgp.hold_time = 2;
  EXPECT_EQ(run(rules::bgp_settings, c).size(), 1u) << dump(run(rules::bgp_settings, c));
}

TEST_F(Validate, NamesValid) {
  c.gateway.name = std::string(64, 'g');
  expect_good(rules::names_valid);
  c.gateway.name = std::string(65, 'g');
  expect_bad(rules::names_valid, "gateway.name", "invalid name");
  c = testing::example();
  c.gateway.name = "gw/../x";
  expect_bad(rules::names_valid, "gateway.name");
  c = testing::example();
  c.instance.ports[1].name = "";
  expect_bad(rules::names_valid, "instance.ports[1].name");
  c = testing::example();
  c.connections[0].name = "a b";
  expect_bad(rules::names_valid, "connections[0].name");
}

TEST_F(Validate, NamesUnique) {
  c.connections[1].name = c.connections[0].name;
  expect_bad(rules::names_unique, "connections[1].name", "also connections[0]");
  c = testing::example();
  site2().name = site5().name;
  expect_bad(rules::names_unique, "local_network_gateways[1].name");
  c = testing::example();
  c.instance.ports[1].name = "wan";
  expect_bad(rules::names_unique, "instance.ports[1].name");
  c = testing::example();
  c.instance.tunnels.push_back(c.instance.tunnels[0]);
  expect_bad(rules::names_unique, "instance.tunnels[1].name");
  c = testing::example();
  c.connections[0].name = "Site2";  // different kinds may share a name
  expect_good(rules::names_unique);
}

TEST_F(Validate, GatewayAddressSpacesMustNotOverlapEachOther) {
  c.gateway.address_spaces.push_back(pfx("10.11.128.0/17"));
  expect_bad(rules::address_spaces_disjoint, "gateway.address_spaces[2]",
             "overlaps 10.11.0.0/16 (gateway.address_spaces[0])");
}

TEST_F(Validate, LngPrefixesMustNotOverlapGateway) {
  site2().address_prefixes.push_back(pfx("10.12.4.0/24"));
  expect_bad(rules::address_spaces_disjoint, "local_network_gateways[1].address_prefixes[2]",
             "overlaps 10.12.0.0/16");
}

TEST_F(Validate, LngPrefixesMustNotOverlapAcrossLngs) {
  site2().address_prefixes.push_back(pfx("10.52.0.0/16"));
  expect_bad(rules::address_spaces_disjoint, "local_network_gateways[1].address_prefixes[2]",
             "local_network_gateways[0].address_prefixes[0]");
  // Within one LNG, and across address families, overlap is not an error.
  c = testing::example();
  site2().address_prefixes.push_back(pfx("10.20.1.0/24"));
  c.gateway.address_spaces.push_back(pfx("2001:db8:11::/48"));
  expect_good(rules::address_spaces_disjoint);
}

TEST_F(Validate, OverlapFoundBehindSameOwnerPrefixes) {
  // Site2 nests its own prefixes (fine); a third site overlaps the inner one only.
  site2().address_prefixes.push_back(pfx("10.20.1.0/24"));
  site2().address_prefixes.push_back(pfx("10.20.1.128/25"));
  LocalNetworkGateway site3{"Site3", ip("198.51.100.50"), {pfx("10.20.1.200/32")}, 0, {}, {}};
  c.local_network_gateways.push_back(site3);
  expect_bad(rules::address_spaces_disjoint, "local_network_gateways[2].address_prefixes[0]",
             "overlaps 10.20.1.128/25 (local_network_gateways[1].address_prefixes[3])");
  EXPECT_EQ(run(rules::address_spaces_disjoint, c).size(), 1u)
      << dump(run(rules::address_spaces_disjoint, c));
}

TEST_F(Validate, OverlapReportedOncePerPrefix) {
  site2().address_prefixes.push_back(pfx("10.0.0.0/8"));  // covers both spaces and Site5's /32
  rules::Errors e = run(rules::address_spaces_disjoint, c);
  ASSERT_EQ(e.size(), 1u) << dump(e);
  EXPECT_EQ(e[0].field, "local_network_gateways[1].address_prefixes[2]");
  // The same prefix in two sites clashes too.
  c = testing::example();
  site2().address_prefixes.push_back(site5().address_prefixes[0]);
  expect_bad(rules::address_spaces_disjoint, "local_network_gateways[1].address_prefixes[2]",
             "10.52.255.253/32");
}

TEST_F(Validate, ManyPrefixesValidateQuickly) {
  // 100 sites x 1000 distinct prefixes: the overlap check must not be quadratic.
  c.local_network_gateways.clear();
  c.connections.clear();
  for (uint32_t s = 0; s < 100; ++s) {
    LocalNetworkGateway l{"S" + std::to_string(s), IpAddr::v4(0xC6336400 + s), {}, 0, {}, {}};
    for (uint32_t i = 0; i < 1000; ++i)
      l.address_prefixes.push_back(Prefix{IpAddr::v4(0x14000000 + (s * 1000 + i) * 256), 24});
    c.local_network_gateways.push_back(std::move(l));
  }
  expect_good(rules::address_spaces_disjoint);
  c.local_network_gateways[99].address_prefixes.push_back(pfx("20.0.0.0/8"));
  EXPECT_EQ(run(rules::address_spaces_disjoint, c).size(), 1u);
}

TEST(LoadValidate, ManyValidationErrorsAreCut) {
  testing::TempDir dir;
  dir.write("psk", "k");
  std::string y =
      "gateway: {name: gw, instances: [{public_ip: 192.0.2.1}], address_spaces: [10.0.0.0/8]}\n"
      "local_network_gateways: [{name: s, gateway_ip: 192.0.2.9, address_prefixes: [";
  for (int i = 0; i < 300; ++i)
    y += std::string(i ? "," : "") + "10." + std::to_string(i / 200) + "." +
         std::to_string(i % 200) + ".0/24";
  y += "]}]\ninstance: {ports: [{name: p, device: net_null0}]}\n";
  LoadResult r = load_config_string(y, dir.file("gw.yaml"));
  ASSERT_EQ(r.errors.size(), 101u);
  EXPECT_EQ(r.errors.back().message, "too many errors; stopping here");
  EXPECT_EQ(r.errors.front().field, "local_network_gateways[0].address_prefixes[0]");
}

TEST_F(Validate, LngGatewayIpsUnique) {
  site2().gateway_ip = site5().gateway_ip;
  expect_bad(rules::lng_gateway_ips_unique, "local_network_gateways[1].gateway_ip",
             "198.51.100.22 is already used by local_network_gateways[0] (Site5_1)");
}

TEST_F(Validate, ReservedAsns) {
  c.gateway.asn = 65515;
  expect_bad(rules::asns_not_reserved, "gateway.asn", "ASN 65515 is reserved");
  c = testing::example();
  site5().asn = 23456;
  expect_bad(rules::asns_not_reserved, "local_network_gateways[0].asn", "reserved");
  c = testing::example();
  c.gateway.asn_set = false;  // the implicit default 65515 is not the operator's choice
  c.gateway.asn = 65515;
  expect_good(rules::asns_not_reserved);
}

TEST_F(Validate, ActiveActiveNeedsTwoInstances) {
  c.gateway.instances.pop_back();
  expect_bad(rules::gateway_instances, "gateway.instances", "exactly 2");
}

TEST_F(Validate, ActiveStandbyNeedsOneInstance) {
  c.gateway.active_active = false;
  expect_bad(rules::gateway_instances, "gateway.instances", "exactly 1");
  c.gateway.instances.pop_back();
  expect_good(rules::gateway_instances);
}

TEST_F(Validate, InstanceIndexInRange) {
  c.instance.index = 1;
  expect_good(rules::gateway_instances);
  c.instance.index = 2;
  expect_bad(rules::gateway_instances, "instance.index", "not an entry");
}

TEST_F(Validate, InstancePublicIpsUnique) {
  c.gateway.instances[1].public_ip = c.gateway.instances[0].public_ip;
  expect_bad(rules::gateway_instances, "gateway.instances[1].public_ip", "203.0.113.4");
  c = testing::example();
  c.gateway.instances[1].bgp_peering_address = c.gateway.instances[0].bgp_peering_address;
  expect_bad(rules::gateway_instances, "gateway.instances[1].bgp_peering_address");
}

TEST_F(Validate, ConnectionCountBounded) {
  c.gateway.max_connections = 2;
  expect_good(rules::connections_bounded);
  c.gateway.max_connections = 1;
  expect_bad(rules::connections_bounded, "connections", "exceed gateway.max_connections (1)");
}

TEST_F(Validate, ConnectionPeerExists) {
  c.connections[1].peer = "Site3";
  expect_bad(rules::connection_peers_exist, "connections[1].peer",
             "no local network gateway named 'Site3'");
}

TEST_F(Validate, BgpNeedsGatewayAsn) {
  c.gateway.asn_set = false;
  expect_bad(rules::bgp_requirements, "connections[0].enable_bgp", "gateway.asn");
}

TEST_F(Validate, BgpNeedsLngAsnAndPeeringAddress) {
  site5().asn = 0;
  site5().bgp_peering_address = {};
  expect_bad(rules::bgp_requirements, "connections[0].enable_bgp", "asn on local network gateway");
  EXPECT_TRUE(has_error(run(rules::bgp_requirements, c), "connections[0].enable_bgp",
                        "bgp_peering_address on local network gateway 'Site5_1'"));
}

TEST_F(Validate, BgpNeedsGatewayPeeringAddresses) {
  c.gateway.instances[1].bgp_peering_address = {};
  expect_bad(rules::bgp_requirements, "gateway.instances[1].bgp_peering_address", "BGP");
  c.connections[0].enable_bgp = false;
  expect_good(rules::bgp_requirements);
}

TEST_F(Validate, EbgpAsnsDiffer) {
  site5().asn = c.gateway.asn;
  expect_bad(rules::ebgp_asns_differ, "local_network_gateways[0].asn", "eBGP");
}

TEST_F(Validate, BgpActiveActiveOnlyPeerHostPrefix) {
  site5().address_prefixes.push_back(pfx("10.52.0.0/24"));
  expect_bad(rules::bgp_active_active_prefixes, "local_network_gateways[0].address_prefixes[1]",
             "only the peer's 10.52.255.253/32");
  // Fine without active-active, without BGP, or with no prefixes at all.
  c.gateway.active_active = false;
  expect_good(rules::bgp_active_active_prefixes);
  c = testing::example();
  site5().address_prefixes.push_back(pfx("10.52.0.0/24"));
  c.connections[0].enable_bgp = false;
  expect_good(rules::bgp_active_active_prefixes);
  c = testing::example();
  site5().address_prefixes.clear();
  expect_good(rules::bgp_active_active_prefixes);
}

TEST_F(Validate, BgpActiveActiveIpv6PeerNeeds128) {
  site5().bgp_peering_address = ip("2001:db8:52::1");
  site5().address_prefixes = {pfx("2001:db8:52::1/128")};
  expect_good(rules::bgp_active_active_prefixes);
  site5().address_prefixes = {pfx("2001:db8:52::/64")};
  expect_bad(rules::bgp_active_active_prefixes, "local_network_gateways[0].address_prefixes[0]",
             "2001:db8:52::1/128");
}

TEST_F(Validate, IpsecProposalsParse) {
  c.connections[0].ipsec_policy.ike.push_back("aes256-sha1-modp2048");
  expect_bad(rules::ipsec_policies, "connections[0].ipsec_policy.ike[2]", "'sha1'");
  c = testing::example();
  c.connections[1].ipsec_policy.esp = {"aes256gcm16", "aes128-sha512"};
  expect_bad(rules::ipsec_policies, "connections[1].ipsec_policy.esp[1]",
             "unsupported combination");
  c = testing::example();
  c.connections[1].ipsec_policy.ike.clear();  // empty = defaults
  c.connections[1].ipsec_policy.esp.clear();
  expect_good(rules::ipsec_policies);
}

TEST_F(Validate, DpdTimeoutRange) {
  for (uint32_t ok : {9u, 3600u}) {
    c.connections[0].ipsec_policy.dpd_timeout_seconds = ok;
    expect_good(rules::ipsec_policies);
  }
  c.connections[0].ipsec_policy.dpd_timeout_seconds = 8;
  expect_bad(rules::ipsec_policies, "connections[0].ipsec_policy.dpd_timeout_seconds", "9..3600");
  c.connections[0].ipsec_policy.dpd_timeout_seconds = 3601;
  expect_bad(rules::ipsec_policies, "connections[0].ipsec_policy.dpd_timeout_seconds");
}

TEST_F(Validate, SaLifetimesNonZero) {
  c.connections[0].ipsec_policy.sa_lifetime_seconds = 0;
  expect_bad(rules::ipsec_policies, "connections[0].ipsec_policy.sa_lifetime_seconds");
}

TEST_F(Validate, ConnectionReplayWindowRange) {
  c.connections[0].replay_window = 64;
  expect_good(rules::connection_ranges);
  c.connections[0].replay_window = 4097;
  expect_bad(rules::connection_ranges, "connections[0].replay_window", "64..4096");
  c.connections[0].replay_window = 63;
  expect_bad(rules::connection_ranges, "connections[0].replay_window");
}

TEST_F(Validate, ConnectionMssClampRange) {
  for (uint16_t ok : {0, 536, 9000}) {
    c.connections[0].tcp_mss_clamp = ok;
    expect_good(rules::connection_ranges);
  }
  c.connections[0].tcp_mss_clamp = 535;
  expect_bad(rules::connection_ranges, "connections[0].tcp_mss_clamp", "536..9000");
  c.connections[0].tcp_mss_clamp = 9001;
  expect_bad(rules::connection_ranges, "connections[0].tcp_mss_clamp");
}

TEST_F(Validate, PortsAtLeastOne) {
  c.instance.ports.clear();
  expect_bad(rules::ports, "instance.ports", "at least one");
}

TEST_F(Validate, PortMtuRange) {
  c.instance.ports[0].mtu = 576;
  expect_good(rules::ports);
  c.instance.ports[0].mtu = 575;
  expect_bad(rules::ports, "instance.ports[0].mtu", "576..9216");
  c.instance.ports[0].mtu = 9217;
  expect_bad(rules::ports, "instance.ports[0].mtu");
}

TEST_F(Validate, PortDevicesUnique) {
  c.instance.ports[1].device = c.instance.ports[0].device;
  expect_bad(rules::ports, "instance.ports[1].device", "also used by instance.ports[0]");
}

TEST_F(Validate, PortAddressesUnique) {
  c.instance.ports[1].addresses.push_back(IfAddr{ip("203.0.113.4"), 32});
  expect_bad(rules::ports, "instance.ports[1].addresses[1]", "instance.ports[0].addresses[0]");
  c = testing::example();
  c.instance.ports[0].addresses.push_back(c.instance.ports[0].addresses[0]);
  expect_bad(rules::ports, "instance.ports[0].addresses[2]");
}

TEST_F(Validate, RouteAtMostOneTarget) {
  c.instance.routes[0].tunnel = "lab";
  expect_bad(rules::routes, "instance.routes[0]", "at most one of via, tunnel and blackhole");
  c = testing::example();
  c.instance.routes[2].blackhole = true;
  expect_bad(rules::routes, "instance.routes[2]", "at most one");
}

TEST_F(Validate, RouteNeedsATarget) {
  c.instance.routes[0].via = {};
  expect_bad(rules::routes, "instance.routes[0]", "give one of");
  c.instance.routes[0].port = "lan";  // on-link route
  expect_good(rules::routes);
}

TEST_F(Validate, RouteTunnelOrBlackholeTakesNoPort) {
  c.instance.routes[2].port = "lan";
  expect_bad(rules::routes, "instance.routes[2].port", "takes no port");
}

TEST_F(Validate, RouteViaSameFamily) {
  c.instance.routes[1].via = ip("2001:db8:ffff::1");
  expect_bad(rules::routes, "instance.routes[1].via", "not the same address family");
}

TEST_F(Validate, RouteTunnelExists) {
  c.instance.routes[2].tunnel = "lab2";
  expect_bad(rules::routes, "instance.routes[2].tunnel", "no static tunnel named 'lab2'");
}

TEST_F(Validate, RoutePortExists) {
  c.instance.routes[1].port = "dmz";
  expect_bad(rules::routes, "instance.routes[1].port", "no port named 'dmz'");
}

TEST_F(Validate, RouteViaWithoutPortMustBeConnected) {
  c.instance.routes[0].via = ip("192.0.2.1");
  expect_bad(rules::routes, "instance.routes[0].via", "not on any port's connected prefix");
  c.instance.routes[0].port = "wan";  // explicit port: operator knows best
  expect_good(rules::routes);
  c = testing::example();
  c.instance.routes.push_back(
      Route{pfx("2001:db8:1::/48"), ip("2001:db8:ffff::1"), "", "", false, {}});
  expect_good(rules::routes);
}

TEST_F(Validate, TunnelLocalIsOurs) {
  c.instance.tunnels[0].local = ip("203.0.113.9");
  expect_bad(rules::tunnel_endpoints, "instance.tunnels[0].local", "not an address of any port");
}

TEST_F(Validate, TunnelEndpointsSameFamily) {
  c.instance.tunnels[0].remote = ip("2001:db8::99");
  expect_bad(rules::tunnel_endpoints, "instance.tunnels[0].remote", "not the same address family");
  c.instance.tunnels[0].local = ip("2001:db8:ffff::4");
  expect_good(rules::tunnel_endpoints);
}

TEST_F(Validate, TunnelSpiReserved) {
  c.instance.tunnels[0].outbound.spi = 255;
  expect_bad(rules::tunnel_sas, "instance.tunnels[0].outbound.spi", "reserved");
  c.instance.tunnels[0].outbound.spi = 256;
  expect_good(rules::tunnel_sas);
}

TEST_F(Validate, TunnelInboundSpisUnique) {
  StaticTunnel t = c.instance.tunnels[0];
  t.name = "lab2";
  t.outbound.spi = 9999;
  c.instance.tunnels.push_back(t);
  expect_bad(rules::tunnel_sas, "instance.tunnels[1].inbound.spi",
             "also used by instance.tunnels[0]");
  c.instance.tunnels[1].inbound.spi = c.instance.tunnels[0].outbound.spi;  // outbound may repeat
  expect_good(rules::tunnel_sas);
}

TEST_F(Validate, TunnelKeyLengthMatchesAlgo) {
  c.instance.tunnels[0].inbound.algo = crypto::Algo::kAesCbc256Sha512;  // 32 + 64 bytes
  expect_bad(rules::tunnel_sas, "instance.tunnels[0].inbound.key_file",
             "key is 64 bytes; aes256-sha512 needs 96 (32-byte key + 64-byte auth key)");
  c.instance.tunnels[0].inbound.algo = crypto::Algo::kAesCbc256Sha256;
  expect_good(rules::tunnel_sas);
}

TEST_F(Validate, TunnelReplayAndMss) {
  c.instance.tunnels[0].replay_window = 8192;
  expect_bad(rules::tunnel_settings, "instance.tunnels[0].replay_window", "64..4096");
  c = testing::example();
  c.instance.tunnels[0].tcp_mss_clamp = 100;
  expect_bad(rules::tunnel_settings, "instance.tunnels[0].tcp_mss_clamp");
}

TEST_F(Validate, TunnelReplayWindowZeroNeedsAntiReplayOff) {
  c.instance.tunnels[0].replay_window = 0;
  expect_bad(rules::tunnel_settings, "instance.tunnels[0].replay_window", "anti_replay: false");
  c.instance.tunnels[0].anti_replay = false;  // said explicitly: accepted (warned at start)
  expect_good(rules::tunnel_settings);
}

TEST_F(Validate, TunnelDirectionsNeedTheirOwnKeys) {
  StaticTunnel& t = c.instance.tunnels[0];
  t.inbound.algo = t.outbound.algo;
  t.inbound.key = t.outbound.key;
  expect_bad(rules::tunnel_sas, "instance.tunnels[0].inbound.key_file",
             "same as the outbound key");
}

TEST_F(Validate, TunnelSoftLifetimeBelowHard) {
  c.instance.tunnels[0].soft_lifetime.seconds = 3600;
  expect_bad(rules::tunnel_settings, "instance.tunnels[0].soft_lifetime.seconds", "below");
  c = testing::example();
  c.instance.tunnels[0].soft_lifetime.packets = 100;  // no hard packet limit: fine
  expect_good(rules::tunnel_settings);
}

TEST_F(Validate, InstanceSettings) {
  c.instance.exception_iface = "a-very-long-ifname";
  expect_bad(rules::instance_settings, "instance.exception_iface", "1 to 15");
  c = testing::example();
  c.instance.exception_iface = "tap/0";
  expect_bad(rules::instance_settings, "instance.exception_iface");
  c = testing::example();
  c.instance.control_socket = "/" + std::string(120, 's');
  expect_bad(rules::instance_settings, "instance.control_socket", "too long");
  c = testing::example();
  c.instance.file_prefix = "a/b";
  expect_bad(rules::instance_settings, "instance.file_prefix");
}

TEST_F(Validate, DataplaneRanges) {
  c.instance.dataplane.workers = 64;
  c.instance.dataplane.burst = 256;
  c.instance.dataplane.mbufs = 1024;
  expect_good(rules::dataplane_ranges);
  c.instance.dataplane.workers = 0;
  expect_bad(rules::dataplane_ranges, "instance.dataplane.workers", "1..64");
  c.instance.dataplane.workers = 65;
  expect_bad(rules::dataplane_ranges, "instance.dataplane.workers");
  c = testing::example();
  c.instance.dataplane.burst = 0;
  expect_bad(rules::dataplane_ranges, "instance.dataplane.burst", "1..256");
  c = testing::example();
  c.instance.dataplane.mbufs = 1023;
  expect_bad(rules::dataplane_ranges, "instance.dataplane.mbufs", "1024");
}

TEST_F(Validate, ErrorsCarryEntryMarksAndStr) {
  c.connections[1].peer = "Site3";
  rules::Errors e = run(rules::connection_peers_exist, c);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_GT(e[0].mark.line, 0);
  EXPECT_EQ(e[0].str(), c.path + ":" + std::to_string(e[0].mark.line) + ":" +
                            std::to_string(e[0].mark.column) +
                            ": connections[1].peer: no local network gateway named 'Site3'");
  ConfigError bare{"", {}, "", "just a message"};
  EXPECT_EQ(bare.str(), "just a message");
  ConfigError no_line{"f.yaml", {}, "gateway", "m"};
  EXPECT_EQ(no_line.str(), "f.yaml: gateway: m");
}

TEST_F(Validate, SaLifetimePackets) {
  expect_good(rules::ipsec_policies);  // unset: no packet limit
  c.connections[0].ipsec_policy.sa_lifetime_packets = 1000;
  expect_good(rules::ipsec_policies);
  c.connections[0].ipsec_policy.sa_lifetime_packets = 999;
  expect_bad(rules::ipsec_policies, "connections[0].ipsec_policy.sa_lifetime_packets",
             "at least 1000");
  c.connections[0].ipsec_policy.sa_lifetime_packets = 0;
  expect_bad(rules::ipsec_policies, "connections[0].ipsec_policy.sa_lifetime_packets");
  c.connections[0].ipsec_policy.sa_lifetime_packets = uint64_t(1) << 62;
  expect_good(rules::ipsec_policies);
  c.connections[0].ipsec_policy.sa_lifetime_packets = (uint64_t(1) << 62) + 1;
  expect_bad(rules::ipsec_policies, "connections[0].ipsec_policy.sa_lifetime_packets",
             "at most 2^62");
}

TEST_F(Validate, SaDataSizeKb) {
  c.connections[0].ipsec_policy.sa_data_size_kb = uint64_t(1) << 53;
  expect_good(rules::ipsec_policies);
  c.connections[0].ipsec_policy.sa_data_size_kb = (uint64_t(1) << 53) + 1;
  expect_bad(rules::ipsec_policies, "connections[0].ipsec_policy.sa_data_size_kb", "at most 2^53");
  c.connections[0].ipsec_policy.sa_data_size_kb = ~uint64_t(0);
  expect_bad(rules::ipsec_policies, "connections[0].ipsec_policy.sa_data_size_kb");
}

TEST_F(Validate, ConnectionIdentities) {
  for (const char* ok : {"192.0.2.7", "2001:db8::1", "gw1.example.net", "site-5", ""}) {
    c.connections[0].local_id = ok;
    c.connections[0].remote_id = ok;
    expect_good(rules::connection_ranges);
  }
  c.connections[0].local_id = "";
  for (const char* bad : {"a..b", "-x.example", "x-.example", "has space", "a_b", "."}) {
    c.connections[0].remote_id = bad;
    expect_bad(rules::connection_ranges, "connections[0].remote_id", "neither an IP address nor");
  }
  c.connections[0].remote_id = std::string(64, 'a') + ".example";
  expect_bad(rules::connection_ranges, "connections[0].remote_id");
}

}  // namespace
}  // namespace espgw::model
