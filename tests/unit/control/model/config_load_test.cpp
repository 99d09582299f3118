// Parsing: the example config, YAML and type errors with file:line:col, unknown keys, key files.
#include <gtest/gtest.h>

#include "control/model/config.h"
#include "tests/unit/control/model/test_util.h"

namespace espgw::model {
namespace {

using testing::dump;
using testing::has_error;
using testing::TempDir;

constexpr const char* kPsk = "correct-horse-battery-staple";

// A small valid config: one instance, one site, one connection, one port.
const std::string kMinimal = R"(gateway:
  name: gw
  instances:
    - public_ip: 192.0.2.1
local_network_gateways:
  - name: site
    gateway_ip: 198.51.100.1
    address_prefixes: [10.2.0.0/16]
connections:
  - name: c1
    peer: site
    shared_key_file: psk
instance:
  ports:
    - {name: wan, device: net_tap0, addresses: [192.0.2.1/24]}
)";

class Load : public ::testing::Test {
 protected:
  void SetUp() override { dir.write("psk", std::string(kPsk) + "\n"); }
  LoadResult load(const std::string& yaml) { return load_config_string(yaml, dir.file("gw.yaml")); }
  // kMinimal with `from` replaced by `to` (which must occur).
  LoadResult load_edit(const std::string& from, const std::string& to) {
    std::string y = kMinimal;
    auto at = y.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) y.replace(at, from.size(), to);
    return load(y);
  }
  TempDir dir;
};

TEST(Example, LoadsWithAllValues) {
  LoadResult r = load_config(testing::data_path("gateway.yaml"));
  ASSERT_TRUE(r.errors.empty()) << dump(r.errors);
  ASSERT_TRUE(r.config);
  const Config& c = *r.config;
  EXPECT_EQ(c.gateway.name, "VNet1GW");
  EXPECT_EQ(c.gateway.asn, 65010u);
  EXPECT_TRUE(c.gateway.asn_set);
  EXPECT_TRUE(c.gateway.active_active);
  EXPECT_EQ(c.gateway.max_connections, 10u);
  ASSERT_EQ(c.gateway.instances.size(), 2u);
  EXPECT_EQ(c.gateway.instances[1].public_ip.str(), "203.0.113.5");
  const BgpSettings& bgp = c.connections[0].bgp;
  EXPECT_EQ(bgp.hold_time, 90u);
  EXPECT_EQ(bgp.keepalive_or_default(), 20u);
  EXPECT_EQ(bgp.max_prefixes, 1000u);
  EXPECT_EQ(bgp.max_prefix_action, MaxPrefixAction::kDiscard);
  EXPECT_TRUE(bgp.advertise_default);
  EXPECT_EQ(c.connections[1].bgp.hold_time, 180u);  // defaults where not given
  EXPECT_EQ(c.gateway.instances[1].bgp_peering_address.str(), "10.12.255.5");
  ASSERT_EQ(c.gateway.address_spaces.size(), 2u);
  EXPECT_EQ(c.gateway.address_spaces[1].str(), "10.12.0.0/16");

  ASSERT_EQ(c.local_network_gateways.size(), 2u);
  const LocalNetworkGateway* site2 = c.find_lng("Site2");
  ASSERT_NE(site2, nullptr);
  EXPECT_EQ(site2->asn, 0u);
  ASSERT_EQ(site2->address_prefixes.size(), 2u);
  EXPECT_EQ(site2->address_prefixes[1].str(), "2001:db8:20::/48");
  EXPECT_EQ(c.find_lng("nope"), nullptr);

  ASSERT_EQ(c.connections.size(), 2u);
  const Connection& c0 = c.connections[0];
  EXPECT_EQ(c0.peer, "Site5_1");  // via the local_network_gateway alias
  EXPECT_TRUE(c0.shared_key.equals(Secret("site5-very-secret-psk")));
  EXPECT_TRUE(c0.enable_bgp);
  EXPECT_EQ(c0.ipsec_policy.ike.size(), 2u);
  EXPECT_EQ(c0.ipsec_policy.esp[1], "aes256-sha384-ecp384");
  EXPECT_EQ(c0.ipsec_policy.sa_lifetime_seconds, 3600u);
  EXPECT_EQ(c0.ipsec_policy.ike_lifetime_seconds, 28800u);  // default kept
  const Connection& c1 = c.connections[1];
  EXPECT_TRUE(c1.shared_key.equals(Secret("site2-other-secret")));  // "\r\n\n" stripped
  EXPECT_EQ(c1.type, ConnectionType::kIpsec);
  EXPECT_EQ(c1.mode, ConnectionMode::kResponderOnly);
  EXPECT_TRUE(c1.force_udp_encap);
  EXPECT_EQ(c1.tcp_mss_clamp, 1360);
  EXPECT_EQ(c1.replay_window, 2048u);

  const Instance& in = c.instance;
  ASSERT_EQ(in.ports.size(), 2u);
  EXPECT_TRUE(in.ports[0].is_vdev);
  EXPECT_FALSE(in.ports[1].is_vdev);
  EXPECT_EQ(c.find_port("lan"), &in.ports[1]);
  EXPECT_EQ(c.find_port("nope"), nullptr);
  ASSERT_EQ(in.ports[0].addresses.size(), 2u);
  EXPECT_EQ(in.ports[0].addresses[0].str(), "203.0.113.4/24");  // host bits kept
  EXPECT_EQ(in.ports[0].addresses[0].connected().str(), "203.0.113.0/24");
  EXPECT_EQ(in.ports[1].mtu, 9000);
  ASSERT_EQ(in.routes.size(), 4u);
  EXPECT_EQ(in.routes[1].port, "lan");
  EXPECT_EQ(in.routes[2].tunnel, "lab");
  EXPECT_TRUE(in.routes[3].blackhole);

  ASSERT_EQ(in.tunnels.size(), 1u);
  const StaticTunnel& t = in.tunnels[0];
  EXPECT_TRUE(t.udp_encap);
  EXPECT_TRUE(t.esn);
  EXPECT_EQ(t.outbound.spi, 0x1001u);
  EXPECT_EQ(t.outbound.algo, crypto::Algo::kAesGcm128);
  ASSERT_EQ(t.outbound.key.size(), 20u);
  EXPECT_EQ(t.outbound.key.data()[0], 0x00);
  EXPECT_EQ(t.outbound.key.data()[15], 0xff);
  EXPECT_EQ(t.outbound.key.data()[19], 0x04);
  EXPECT_EQ(t.inbound.spi, 4098u);
  ASSERT_EQ(t.inbound.key.size(), 64u);
  for (size_t i = 0; i < 64; ++i) EXPECT_EQ(t.inbound.key.data()[i], i);
  EXPECT_EQ(t.soft_lifetime.seconds, 3000u);
  EXPECT_EQ(t.hard_lifetime.bytes, 1000000000u);
  EXPECT_EQ(t.hard_lifetime.packets, 0u);

  EXPECT_EQ(in.dataplane.workers, 2u);
  EXPECT_FALSE(in.dataplane.hugepages);
  EXPECT_EQ(in.dataplane.lcores, "0-2");  // derived
  EXPECT_EQ(in.control_socket, "/run/espgw/VNet1GW-0.sock");
  EXPECT_EQ(in.file_prefix, "espgw-VNet1GW-0");
}

TEST_F(Load, MinimalConfigAndDefaults) {
  LoadResult r = load(kMinimal);
  ASSERT_TRUE(r.errors.empty()) << dump(r.errors);
  const Config& c = *r.config;
  EXPECT_EQ(c.path, dir.file("gw.yaml"));
  EXPECT_FALSE(c.gateway.asn_set);
  EXPECT_EQ(c.gateway.max_connections, 30u);
  EXPECT_EQ(c.connections[0].mode, ConnectionMode::kDefault);
  EXPECT_EQ(c.connections[0].replay_window, 1024u);
  EXPECT_EQ(c.instance.ports[0].mtu, 1500);
  EXPECT_EQ(c.instance.dataplane.lcores, "0-1");
  EXPECT_EQ(c.instance.exception_iface, "espgw0");
}

TEST_F(Load, ExplicitInstanceSettingsAreKept) {
  LoadResult r = load(kMinimal +
                      "  control_socket: /tmp/x.sock\n  file_prefix: fp\n"
                      "  dataplane: {workers: 3, lcores: 2-5}\n");
  ASSERT_TRUE(r.errors.empty()) << dump(r.errors);
  EXPECT_EQ(r.config->instance.control_socket, "/tmp/x.sock");
  EXPECT_EQ(r.config->instance.file_prefix, "fp");
  EXPECT_EQ(r.config->instance.dataplane.lcores, "2-5");
}

TEST_F(Load, SyntaxErrorHasFileLineColumn) {
  LoadResult r = load("gateway:\n  name: gw\n  instances: [ {public_ip: 192.0.2.1}\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_FALSE(r.config);
  EXPECT_GT(r.errors[0].mark.line, 0);
  EXPECT_NE(r.errors[0].str().find(dir.file("gw.yaml") + ":"), std::string::npos);
  EXPECT_NE(r.errors[0].message.find("YAML syntax error"), std::string::npos);
}

TEST_F(Load, SyntaxErrorBadIndentation) {
  LoadResult r = load("gateway:\n  name: gw\n bad: [\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].mark.line, 3) << r.errors[0].str();
}

TEST_F(Load, EmptyAndMultiDocumentAndNonMapping) {
  EXPECT_TRUE(has_error(load("").errors, "", "empty"));
  EXPECT_TRUE(has_error(load("# only a comment\n").errors, "", "empty"));
  EXPECT_TRUE(
      has_error(load(kMinimal + "---\n" + kMinimal).errors, "", "more than one YAML document"));
  EXPECT_TRUE(has_error(load("- a\n- b\n").errors, "", "must be a mapping"));
  EXPECT_TRUE(has_error(load("just text").errors, "", "must be a mapping"));
}

TEST_F(Load, InputsThatHangYamlCppLoadAllTerminate) {
  // yaml-cpp 0.7's LoadAll() never returns on these (found by fuzzing).
  for (const char* y : {",", " , ", "---\n,", "[a]\n...\n,"}) {
    LoadResult r = load(y);
    EXPECT_FALSE(r.config) << y;
    EXPECT_FALSE(r.errors.empty()) << y;
  }
  LoadResult r = load(kMinimal + "...\n,\n");
  EXPECT_TRUE(has_error(r.errors, "", "stray text")) << dump(r.errors);
}

TEST_F(Load, UnknownKeyIsAnErrorWithPathAndHint) {
  LoadResult r = load_edit("  name: gw\n", "  name: gw\n  nmae: x\n");
  EXPECT_FALSE(r.config);
  ASSERT_EQ(r.errors.size(), 1u) << dump(r.errors);
  EXPECT_EQ(r.errors[0].field, "gateway.nmae");
  EXPECT_EQ(r.errors[0].mark.line, 3);
  EXPECT_EQ(r.errors[0].mark.column, 3);
  EXPECT_NE(r.errors[0].message.find("did you mean 'name'"), std::string::npos);
  EXPECT_EQ(r.errors[0].str(),
            dir.file("gw.yaml") + ":3:3: gateway.nmae: unknown key 'nmae' (did you mean 'name'?)");
}

TEST_F(Load, UnknownKeysEverywhere) {
  EXPECT_TRUE(has_error(load(kMinimal + "extra: 1\n").errors, "extra", "unknown key"));
  EXPECT_TRUE(has_error(load_edit("peer: site", "peer: site\n    shared_key: hunter2").errors,
                        "connections[0].shared_key", "unknown key"));
  EXPECT_TRUE(has_error(load_edit("device: net_tap0", "device: net_tap0, speed: 10").errors,
                        "instance.ports[0].speed", "unknown key"));
  // The value of an unknown key is never echoed (it might be a secret pasted in the wrong place).
  for (const auto& e : load_edit("peer: site", "peer: site\n    shared_key: hunter2").errors)
    EXPECT_EQ(e.str().find("hunter2"), std::string::npos);
}

TEST_F(Load, DuplicateKey) {
  LoadResult r = load_edit("  name: gw\n", "  name: gw\n  name: gw2\n");
  EXPECT_TRUE(has_error(r.errors, "gateway.name", "duplicate key")) << dump(r.errors);
}

TEST_F(Load, MissingRequiredKeys) {
  LoadResult r = load("gateway: {}\ninstance: {}\n");
  EXPECT_TRUE(has_error(r.errors, "gateway", "'name'")) << dump(r.errors);
  EXPECT_TRUE(has_error(r.errors, "gateway", "'instances'"));
  EXPECT_TRUE(has_error(r.errors, "instance", "'ports'"));
  EXPECT_TRUE(has_error(load("gateway: {name: gw, instances: []}\n").errors, "", "'instance'"));
}

TEST_F(Load, TypeErrorsNameTheFieldAndCollectAll) {
  std::string y = kMinimal;
  y.replace(y.find("  name: gw\n"), 11, "  name: gw\n  asn: abc\n  active_active: maybe\n");
  y.replace(y.find("gateway_ip: 198.51.100.1"), 24, "gateway_ip: 198.51.100.300");
  y.replace(y.find("[10.2.0.0/16]"), 13, "[10.2.0.1/16, 10.3.0.0/33]");
  LoadResult r = load(y);
  EXPECT_FALSE(r.config);
  EXPECT_TRUE(has_error(r.errors, "gateway.asn", "non-negative integer")) << dump(r.errors);
  EXPECT_TRUE(has_error(r.errors, "gateway.active_active", "true or false"));
  EXPECT_TRUE(has_error(r.errors, "local_network_gateways[0].gateway_ip", "invalid IP address"));
  EXPECT_TRUE(has_error(r.errors, "local_network_gateways[0].address_prefixes[0]",
                        "host bits set (did you mean 10.2.0.0/16?)"));
  EXPECT_TRUE(
      has_error(r.errors, "local_network_gateways[0].address_prefixes[1]", "invalid prefix"));
  EXPECT_EQ(r.errors.size(), 5u) << dump(r.errors);
  for (const auto& e : r.errors) EXPECT_GT(e.mark.line, 0) << e.str();
}

TEST_F(Load, IntegerLimits) {
  EXPECT_TRUE(has_error(load_edit("  name: gw\n", "  name: gw\n  asn: 4294967296\n").errors,
                        "gateway.asn", "too large"));
  EXPECT_TRUE(has_error(load_edit("  name: gw\n", "  name: gw\n  asn: -1\n").errors, "gateway.asn",
                        "non-negative"));
  EXPECT_TRUE(has_error(load_edit("  name: gw\n", "  name: gw\n  asn: 0\n").errors, "gateway.asn",
                        "reserved"));
  EXPECT_TRUE(has_error(load_edit("addresses:", "mtu: 70000, addresses:").errors,
                        "instance.ports[0].mtu", "too large"));
  EXPECT_TRUE(has_error(load_edit("  name: gw\n", "  name: gw\n  asn: 0x10\n").errors,
                        "gateway.asn",
                        "non-negative"));  // hex only where documented (SPIs)
}

TEST_F(Load, WrongShapes) {
  EXPECT_TRUE(
      has_error(load_edit("  name: gw\n", "  name: [gw]\n").errors, "gateway.name", "not a list"));
  EXPECT_TRUE(has_error(load_edit("  name: gw\n", "  name: {a: b}\n").errors, "gateway.name",
                        "not a mapping"));
  EXPECT_TRUE(
      has_error(load_edit("  name: gw\n", "  name:\n").errors, "gateway.name", "missing value"));
  EXPECT_TRUE(has_error(load_edit("connections:\n", "connections: 5\nx:\n").errors, "connections",
                        "expected a list"));
  EXPECT_TRUE(has_error(load_edit("  - name: c1\n", "  - 7\n  - name: c1\n").errors,
                        "connections[0]", "expected a mapping"));
  EXPECT_TRUE(has_error(load_edit("  name: gw\n", "  ? [a]\n  : b\n  name: gw\n").errors, "gateway",
                        "plain names"));
}

TEST_F(Load, EnumValues) {
  LoadResult r = load_edit("peer: site", "peer: site\n    connection_mode: passive");
  EXPECT_TRUE(has_error(r.errors, "connections[0].connection_mode",
                        "expected one of: default, initiator_only, responder_only"))
      << dump(r.errors);
  r = load_edit("peer: site", "peer: site\n    type: gre");
  EXPECT_TRUE(has_error(r.errors, "connections[0].type", "ipsec, vnet2vnet"));
  r = load_edit("peer: site", "peer: site\n    type: vnet2vnet");
  ASSERT_TRUE(r.config) << dump(r.errors);
  EXPECT_EQ(r.config->connections[0].type, ConnectionType::kVnet2Vnet);
}

TEST_F(Load, BgpSettings) {
  LoadResult r = load(kMinimal);
  ASSERT_TRUE(r.config) << dump(r.errors);
  const BgpSettings& d = r.config->connections[0].bgp;  // defaults: RFC 4271's, no limit
  EXPECT_EQ(d.hold_time, 180u);
  EXPECT_FALSE(d.keepalive);
  EXPECT_EQ(d.keepalive_or_default(), 60u);
  EXPECT_EQ(d.max_prefixes, 0u);
  EXPECT_EQ(d.max_prefix_action, MaxPrefixAction::kReset);
  EXPECT_FALSE(d.advertise_default);

  r = load_edit("peer: site",
                "peer: site\n    bgp:\n      hold_time: 30\n      max_prefixes: 50\n"
                "      max_prefix_action: warn");
  ASSERT_TRUE(r.config) << dump(r.errors);
  const BgpSettings& b = r.config->connections[0].bgp;
  EXPECT_EQ(b.hold_time, 30u);
  EXPECT_EQ(b.keepalive_or_default(), 10u);
  EXPECT_EQ(b.max_prefixes, 50u);
  EXPECT_EQ(b.max_prefix_action, MaxPrefixAction::kWarn);
  EXPECT_EQ(b.mark.line, 13);

  r = load_edit("peer: site", "peer: site\n    bgp: {max_prefix_action: reset}");
  ASSERT_TRUE(r.config) << dump(r.errors);
  EXPECT_EQ(r.config->connections[0].bgp.max_prefix_action, MaxPrefixAction::kReset);
  r = load_edit("peer: site", "peer: site\n    bgp: {hold_time: 0}");
  ASSERT_TRUE(r.config) << dump(r.errors);
  EXPECT_EQ(r.config->connections[0].bgp.keepalive_or_default(), 0u);
}

TEST_F(Load, BgpSettingsErrorsNameTheFieldAndLine) {
  // Line 12 is "    bgp: {...}"; each error points at the line and column of `at`.
  struct Case {
    const char* bgp;
    const char* field;
    const char* text;
    const char* at;
  } cases[] = {
      {"{max_prefix_action: drop}", "connections[0].bgp.max_prefix_action",
       "expected one of: reset, discard, warn", "drop"},
      {"{hold_time: 2}", "connections[0].bgp.hold_time", "0 = no keepalives, or 3..65535", "2"},
      {"{hold_time: 70000}", "connections[0].bgp.hold_time", "out of range", "70000"},
      {"{hold_time: 90, keepalive: 90}", "connections[0].bgp.keepalive", "less than hold_time (90)",
       "90}"},
      {"{keepalive: 0}", "connections[0].bgp.keepalive", "at least 1", "0"},
      {"{hold_time: 0, keepalive: 10}", "connections[0].bgp.keepalive", "when hold_time is 0",
       "10"},
      {"{max_prefixes: -5}", "connections[0].bgp.max_prefixes", "non-negative", "-5"},
      {"{advertise_default: maybe}", "connections[0].bgp.advertise_default", "", "maybe"},
      {"{hold: 90}", "connections[0].bgp.hold", "unknown key", "hold"},
  };
  for (const auto& tc : cases) {
    LoadResult r = load_edit("peer: site", std::string("peer: site\n    bgp: ") + tc.bgp);
    EXPECT_FALSE(r.config) << tc.bgp;
    ASSERT_EQ(r.errors.size(), 1u) << tc.bgp << "\n" << dump(r.errors);
    const ConfigError& e = r.errors[0];
    EXPECT_EQ(e.field, tc.field) << tc.bgp;
    EXPECT_NE(e.message.find(tc.text), std::string::npos) << tc.bgp << ": " << e.message;
    EXPECT_EQ(e.mark.line, 12) << tc.bgp;
    EXPECT_EQ(e.mark.column,
              int(std::string("    bgp: ").size() + std::string(tc.bgp).find(tc.at) + 1))
        << tc.bgp;
    EXPECT_EQ(e.str().rfind(dir.file("gw.yaml") + ":12:", 0), 0u) << e.str();
  }
}

TEST_F(Load, PeerAndAliasExactlyOne) {
  EXPECT_TRUE(has_error(load_edit("    peer: site\n", "").errors, "connections[0]", "'peer'"));
  EXPECT_TRUE(
      has_error(load_edit("peer: site", "peer: site\n    local_network_gateway: site").errors,
                "connections[0].peer", "not both"));
}

TEST_F(Load, SemanticErrorPointsAtTheField) {
  // connections[0].ipsec_policy.ike[1] starts on line 12, column 56 of this text.
  LoadResult r = load_edit("peer: site",
                           "peer: site\n    ipsec_policy: {ike: [aes256gcm16-prfsha256-ecp256, "
                           "aes256-md5-modp2048]}");
  ASSERT_EQ(r.errors.size(), 1u) << dump(r.errors);
  const ConfigError& e = r.errors[0];
  EXPECT_EQ(e.field, "connections[0].ipsec_policy.ike[1]");
  EXPECT_EQ(e.mark.line, 12);
  EXPECT_EQ(e.mark.column, 56);
  EXPECT_NE(e.message.find("'md5'"), std::string::npos);
}

TEST_F(Load, AnErrorYieldsNoConfig) {
  LoadResult r = load_edit("[10.2.0.0/16]", "[10.2.0.0/16, 192.0.2.0/25]");  // overlaps nothing
  EXPECT_TRUE(r.config) << dump(r.errors);
  r = load_edit("  name: gw\n", "  name: gw\n  address_spaces: [10.2.0.0/24]\n");  // overlaps site
  EXPECT_FALSE(r.config);
  EXPECT_TRUE(has_error(r.errors, "local_network_gateways[0].address_prefixes[0]", "overlaps"))
      << dump(r.errors);
}

TEST_F(Load, AliasBombIsBounded) {
  // Each use of an alias counts: 400 sites x 1000 aliased prefixes would be 400k values.
  std::string y =
      "gateway: {name: gw, instances: [{public_ip: 192.0.2.1}]}\n"
      "x: &p [";
  for (int i = 0; i < 1000; ++i) y += std::string(i ? "," : "") + "10.0.0.0/8";
  y += "]\nlocal_network_gateways: [";
  for (int i = 0; i < 400; ++i)
    y += std::string(i ? "," : "") + "{name: s, gateway_ip: 192.0.2.9, address_prefixes: *p}";
  y += "]\n";
  LoadResult r = load(y);
  EXPECT_FALSE(r.config);
  EXPECT_TRUE(
      has_error(r.errors, "local_network_gateways[99].address_prefixes", "more than 100000 values"))
      << dump(r.errors);
  EXPECT_LE(r.errors.size(), 102u);
}

TEST_F(Load, TooManyErrorsAreCut) {
  std::string y = "gateway: {name: gw, instances: [{public_ip: 192.0.2.1}]}\nconnections: [";
  for (int i = 0; i < 500; ++i) y += std::string(i ? "," : "") + "{bad: 1}";
  y += "]\n";
  LoadResult r = load(y);
  EXPECT_EQ(r.errors.size(), 101u);
  EXPECT_EQ(r.errors.back().message, "too many errors; stopping here");
}

TEST_F(Load, MissingConfigFile) {
  LoadResult r = load_config(dir.file("nope.yaml"));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].str().find("nope.yaml: cannot open"), std::string::npos)
      << r.errors[0].str();
}

// ---- key files ----

void expect_no_secret(const LoadResult& r, const std::string& secret) {
  for (const auto& e : r.errors) EXPECT_EQ(e.str().find(secret), std::string::npos) << e.str();
}

TEST_F(Load, PskFileErrors) {
  auto r = load_edit("shared_key_file: psk", "shared_key_file: missing.psk");
  EXPECT_TRUE(has_error(r.errors, "connections[0].shared_key_file", "cannot open"))
      << dump(r.errors);
  EXPECT_NE(r.errors[0].message.find("missing.psk"), std::string::npos);

  dir.write("empty.psk", "\n\r\n");
  r = load_edit("shared_key_file: psk", "shared_key_file: empty.psk");
  EXPECT_TRUE(has_error(r.errors, "connections[0].shared_key_file", "is empty")) << dump(r.errors);

  dir.write("sub/x", "");
  r = load_edit("shared_key_file: psk", "shared_key_file: sub");
  EXPECT_TRUE(has_error(r.errors, "connections[0].shared_key_file", "not a regular file"))
      << dump(r.errors);

  r = load_edit("shared_key_file: psk", "shared_key_file: ''");
  EXPECT_TRUE(has_error(r.errors, "connections[0].shared_key_file", "empty file name"));

  r = load_edit("    shared_key_file: psk\n", "");
  EXPECT_TRUE(has_error(r.errors, "connections[0]", "'shared_key_file'"));
}

TEST_F(Load, KeyFilesOthersCanReadAreRefused) {
  dir.write("open.psk", "site5-very-secret-psk\n");
  std::filesystem::permissions(dir.file("open.psk"), std::filesystem::perms::others_read,
                               std::filesystem::perm_options::add);
  auto r = load_edit("shared_key_file: psk", "shared_key_file: open.psk");
  EXPECT_TRUE(has_error(r.errors, "connections[0].shared_key_file",
                        "accessible by group or others (mode 0604)"))
      << dump(r.errors);
  EXPECT_TRUE(has_error(r.errors, "connections[0].shared_key_file", "chmod 600"));
  expect_no_secret(r, "site5-very-secret-psk");
  std::filesystem::permissions(dir.file("open.psk"), std::filesystem::perms::group_read,
                               std::filesystem::perm_options::replace);
  std::filesystem::permissions(dir.file("open.psk"), std::filesystem::perms::owner_read,
                               std::filesystem::perm_options::add);
  r = load_edit("shared_key_file: psk", "shared_key_file: open.psk");
  EXPECT_TRUE(has_error(r.errors, "connections[0].shared_key_file", "mode 0440"));
}

TEST_F(Load, PskKeepsInnerWhitespaceAndAbsolutePathsWork) {
  dir.write("sub/k.psk", " two words \n");
  auto r = load_edit("shared_key_file: psk", "shared_key_file: " + dir.file("sub/k.psk"));
  ASSERT_TRUE(r.config) << dump(r.errors);
  EXPECT_TRUE(r.config->connections[0].shared_key.equals(Secret(" two words ")));
  // Relative paths resolve against the config file's directory, not the working directory.
  r = load_edit("shared_key_file: psk", "shared_key_file: sub/k.psk");
  ASSERT_TRUE(r.config) << dump(r.errors);
}

TEST_F(Load, PskContentNeverInMessages) {
  // Errors elsewhere in the config must not leak the (successfully read) key.
  auto r = load_edit("  name: gw\n", "  name: gw\n  asn: 23456\n  bogus: 1\n");
  EXPECT_FALSE(r.errors.empty());
  expect_no_secret(r, kPsk);
}

const std::string kTunnel = R"(  tunnels:
    - name: t1
      local: 192.0.2.1
      remote: 198.51.100.7
      outbound: {spi: 0x200, algo: aes128gcm16, key_file: out.hex}
      inbound: {spi: 513, algo: aes128gcm16, key_file: in.hex}
)";
const std::string kKeyHex = "7365637265746b65795f3031323334353637383961";  // 21 bytes: too long

TEST_F(Load, StaticKeyFiles) {
  const std::string good = "0X00112233445566778899aabbccddeeff 01020304\n";
  dir.write("out.hex", good);
  dir.write("in.hex", "  00112233445566778899AABBCCDDEEFF\n\t01020305  \n\n");
  auto r = load(kMinimal + kTunnel);
  ASSERT_TRUE(r.config) << dump(r.errors);
  EXPECT_EQ(r.config->instance.tunnels[0].outbound.spi, 512u);
  const uint8_t in_key[20] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99,
                              0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01, 0x02, 0x03, 0x05};
  EXPECT_TRUE(r.config->instance.tunnels[0].inbound.key.equals(Secret(in_key, sizeof in_key)));
  // the same key for both directions is refused
  dir.write("in.hex", good);
  r = load(kMinimal + kTunnel);
  EXPECT_TRUE(has_error(r.errors, "instance.tunnels[0].inbound.key_file",
                        "same as the outbound key"))
      << dump(r.errors);

  dir.write("in.hex", kKeyHex);
  r = load(kMinimal + kTunnel);
  EXPECT_TRUE(has_error(r.errors, "instance.tunnels[0].inbound.key_file",
                        "key is 21 bytes; aes128gcm16 needs 20 (16-byte key + 4-byte salt)"))
      << dump(r.errors);
  expect_no_secret(r, kKeyHex);
  expect_no_secret(r, "secretkey");

  dir.write("in.hex", "00112233445566778899aabbccddeeff0102030z");
  r = load(kMinimal + kTunnel);
  EXPECT_TRUE(has_error(r.errors, "instance.tunnels[0].inbound.key_file", "not hex text"))
      << dump(r.errors);
  expect_no_secret(r, "0102030z");
  expect_no_secret(r, "00112233");

  dir.write("in.hex", "0011223");
  r = load(kMinimal + kTunnel);
  EXPECT_TRUE(has_error(r.errors, "instance.tunnels[0].inbound.key_file", "odd number"));

  dir.write("in.hex", "0x\n");
  r = load(kMinimal + kTunnel);
  EXPECT_TRUE(has_error(r.errors, "instance.tunnels[0].inbound.key_file", "is empty"));

  std::remove(dir.file("in.hex").c_str());
  r = load(kMinimal + kTunnel);
  EXPECT_TRUE(has_error(r.errors, "instance.tunnels[0].inbound.key_file", "cannot open"));
}

TEST_F(Load, StaticSaFields) {
  dir.write("out.hex", std::string(40, 'a'));
  dir.write("in.hex", std::string(40, 'b'));
  std::string y = kMinimal + kTunnel;
  auto edit = [&](const std::string& from, const std::string& to) {
    std::string s = y;
    s.replace(s.find(from), from.size(), to);
    return load(s);
  };
  EXPECT_TRUE(has_error(edit("algo: aes128gcm16, key_file: in", "algo: des, key_file: in").errors,
                        "instance.tunnels[0].inbound.algo", "aes256gcm16"));
  EXPECT_TRUE(has_error(edit("spi: 513", "spi: 0xfffffffff").errors,
                        "instance.tunnels[0].inbound.spi", "too large"));
  EXPECT_TRUE(
      has_error(edit("spi: 513", "spi: 0x").errors, "instance.tunnels[0].inbound.spi", "0x-hex"));
  EXPECT_TRUE(has_error(edit("spi: 513, ", "").errors, "instance.tunnels[0].inbound", "'spi'"));
}

TEST_F(Load, SaLifetimePackets) {
  LoadResult r = load(kMinimal);
  ASSERT_TRUE(r.errors.empty()) << dump(r.errors);
  EXPECT_FALSE(r.config->connections[0].ipsec_policy.sa_lifetime_packets);
  r = load_edit("shared_key_file: psk\n",
                "shared_key_file: psk\n    ipsec_policy: {sa_lifetime_packets: 5000000}\n");
  ASSERT_TRUE(r.errors.empty()) << dump(r.errors);
  EXPECT_EQ(r.config->connections[0].ipsec_policy.sa_lifetime_packets, 5000000u);
  EXPECT_TRUE(
      has_error(load_edit("shared_key_file: psk\n",
                          "shared_key_file: psk\n    ipsec_policy: {sa_lifetime_packets: -1}\n")
                    .errors,
                "connections[0].ipsec_policy.sa_lifetime_packets", "non-negative"));
  EXPECT_TRUE(
      has_error(load_edit("shared_key_file: psk\n",
                          "shared_key_file: psk\n    ipsec_policy: {sa_lifetime_packets: 10}\n")
                    .errors,
                "connections[0].ipsec_policy.sa_lifetime_packets", "at least 1000"));
}

TEST_F(Load, ConnectionIdentities) {
  LoadResult r =
      load_edit("shared_key_file: psk\n",
                "shared_key_file: psk\n    local_id: gw.example\n    remote_id: 198.51.100.1\n");
  ASSERT_TRUE(r.errors.empty()) << dump(r.errors);
  EXPECT_EQ(r.config->connections[0].local_id, "gw.example");
  EXPECT_EQ(r.config->connections[0].remote_id, "198.51.100.1");
  EXPECT_TRUE(has_error(
      load_edit("shared_key_file: psk\n", "shared_key_file: psk\n    remote_id: 'a b'\n").errors,
      "connections[0].remote_id", "neither an IP address nor an FQDN"));
}

}  // namespace
}  // namespace espgw::model
