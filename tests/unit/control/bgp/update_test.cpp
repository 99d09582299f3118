// UPDATE messages against hand-written bytes: IPv4 with the classic attributes, IPv6 via
// MP_REACH_NLRI, MP_UNREACH_NLRI, withdrawals, End-of-RIB, ADD-PATH.
#include "control/bgp/update.h"

#include <gtest/gtest.h>

#include "control/bgp/message.h"
#include "tests/unit/control/bgp/bgp_test_util.h"

namespace espgw::bgp {
namespace {

using testing::H;
using testing::Hex;
using testing::Ip;
using testing::kMarker;

const Codec kAs4{.as4 = true};

// Decodes a whole message, expects kOk and an UPDATE, and checks the re-encoding is identical.
Update RoundTrip(const Bytes& wire, const Codec& c = kAs4) {
  MessageResult r = decode_message(wire, c);
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.reason;
  EXPECT_TRUE(std::holds_alternative<Update>(r.message));
  if (!std::holds_alternative<Update>(r.message)) return {};
  EXPECT_EQ(Hex(encode(r.message, c)), Hex(wire));
  return std::get<Update>(r.message);
}

TEST(BgpUpdate, Ipv4AllClassicAttributesKnownBytes) {
  Bytes wire = H(kMarker +
                 "004f 02"
                 "0000"                              // no withdrawn routes
                 "0031"                              // path attributes: 49 bytes
                 "40 01 01 00"                       // ORIGIN igp
                 "40 02 0a 02 02 0000fde9 0000fdea"  // AS_PATH 65001 65002
                 "40 03 04 c0000201"                 // NEXT_HOP 192.0.2.1
                 "80 04 04 00000064"                 // MED 100
                 "40 05 04 000000c8"                 // LOCAL_PREF 200
                 "c0 08 08 fde90064 ffffff01"        // COMMUNITIES 65001:100 no-export
                 "10 0a01"                           // 10.1.0.0/16
                 "18 c63364");                       // 198.51.100.0/24
  Update u;
  u.attrs.origin = Origin::kIgp;
  u.attrs.as_path = AsPath::sequence({65001, 65002});
  u.attrs.next_hop = Ip("192.0.2.1");
  u.attrs.med = 100;
  u.attrs.local_pref = 200;
  u.attrs.communities = std::vector<uint32_t>{0xFDE90064, kNoExport};
  u.nlri = {nlri("10.1.0.0/16"), nlri("198.51.100.0/24")};
  EXPECT_EQ(Hex(encode_update(u, kAs4)), Hex(wire));
  EXPECT_EQ(RoundTrip(wire), u);
  EXPECT_EQ(to_string(u),
            "origin igp; as-path 65001 65002; next-hop 192.0.2.1; med 100; local-pref 200; "
            "communities 65001:100 no-export; nlri 10.1.0.0/16 198.51.100.0/24");
}

TEST(BgpUpdate, Ipv6ViaMpReachKnownBytes) {
  Bytes wire = H(kMarker +
                 "0058 02 0000 0041"
                 "80 0e 31 0002 01 20"               // MP_REACH ipv6 unicast, NH 32 bytes
                 "20010db8000000000000000000000001"  // 2001:db8::1
                 "fe800000000000000000000000000001"  // fe80::1
                 "00"                                // reserved
                 "20 20010db8"                       // 2001:db8::/32
                 "30 20010db80001"                   // 2001:db8:1::/48
                 "40 01 01 00"                       // ORIGIN igp
                 "40 02 06 02 01 0000fde9");         // AS_PATH 65001
  Update u;
  u.attrs.mp_reach = MpReach{kIpv6Unicast,
                             Ip("2001:db8::1"),
                             Ip("fe80::1"),
                             {nlri("2001:db8::/32"), nlri("2001:db8:1::/48")}};
  u.attrs.origin = Origin::kIgp;
  u.attrs.as_path = AsPath::sequence({65001});
  EXPECT_EQ(Hex(encode_update(u, kAs4)), Hex(wire));
  EXPECT_EQ(RoundTrip(wire), u);
  EXPECT_EQ(to_string(u),
            "origin igp; as-path 65001; mp-reach ipv6-unicast next-hop 2001:db8::1 fe80::1 "
            "nlri 2001:db8::/32 2001:db8:1::/48");
}

TEST(BgpUpdate, Ipv6GlobalNextHopOnly) {
  Bytes wire = H(kMarker +
                 "0043 02 0000 002c"
                 "80 0e 1c 0002 01 10 20010db8000000000000000000000001 00 30 20010db80001"
                 "40 01 01 02 40 02 06 02 01 0000fde9");
  Update u = RoundTrip(wire);
  ASSERT_TRUE(u.attrs.mp_reach);
  EXPECT_FALSE(u.attrs.mp_reach->link_local);
  EXPECT_EQ(u.attrs.origin, Origin::kIncomplete);
}

TEST(BgpUpdate, Ipv4ViaMpReach) {
  Bytes wire = H(kMarker +
                 "0034 02 0000 001d"
                 "80 0e 0d 0001 01 04 c0000201 00 18 c63364"
                 "40 01 01 00 40 02 06 02 01 0000fde9");
  Update u = RoundTrip(wire);
  ASSERT_TRUE(u.attrs.mp_reach);
  EXPECT_EQ(u.attrs.mp_reach->family, kIpv4Unicast);
  EXPECT_EQ(u.attrs.mp_reach->next_hop, Ip("192.0.2.1"));
  EXPECT_EQ(u.attrs.mp_reach->nlri, std::vector<Nlri>{nlri("198.51.100.0/24")});
}

TEST(BgpUpdate, MpUnreachKnownBytes) {
  Bytes wire = H(kMarker + "0024 02 0000 000d 80 0f 0a 0002 01 30 20010db80001");
  Update u;
  u.attrs.mp_unreach = MpUnreach{kIpv6Unicast, {nlri("2001:db8:1::/48")}};
  EXPECT_EQ(Hex(encode_update(u, kAs4)), Hex(wire));
  EXPECT_EQ(RoundTrip(wire), u);
  EXPECT_EQ(to_string(u), "mp-unreach ipv6-unicast 2001:db8:1::/48");
  EXPECT_FALSE(end_of_rib(u));
}

TEST(BgpUpdate, Ipv4WithdrawalKnownBytes) {
  Bytes wire = H(kMarker + "001e 02 0007 18 c63364 10 0a01 0000");
  Update u;
  u.withdrawn = {nlri("198.51.100.0/24"), nlri("10.1.0.0/16")};
  EXPECT_EQ(Hex(encode_update(u, kAs4)), Hex(wire));
  EXPECT_EQ(RoundTrip(wire), u);
  EXPECT_EQ(to_string(u), "withdrawn 198.51.100.0/24 10.1.0.0/16");
}

TEST(BgpUpdate, EndOfRibIpv4) {
  Bytes wire = H(kMarker + "0017 02 0000 0000");
  EXPECT_EQ(encode_update(end_of_rib_marker(kIpv4Unicast), kAs4), wire);
  Update u = RoundTrip(wire);
  EXPECT_EQ(end_of_rib(u), kIpv4Unicast);
  EXPECT_EQ(to_string(u), "end-of-rib ipv4-unicast");
}

TEST(BgpUpdate, EndOfRibIpv6) {
  Bytes wire = H(kMarker + "001d 02 0000 0006 80 0f 03 0002 01");
  EXPECT_EQ(encode_update(end_of_rib_marker(kIpv6Unicast), kAs4), wire);
  Update u = RoundTrip(wire);
  EXPECT_EQ(end_of_rib(u), kIpv6Unicast);
  EXPECT_EQ(to_string(u), "end-of-rib ipv6-unicast");
}

TEST(BgpUpdate, AddPathIdentifiers) {
  Codec c{.as4 = true, .addpath = true};
  Bytes wire = H(kMarker +
                 "003a 02"
                 "0007 00000007 10 0a02"  // withdraw 10.2.0.0/16 path 7
                 "0014" +
                 testing::kMandatory4 + "00000001 18 c63364");  // 198.51.100.0/24 path 1
  Update u = RoundTrip(wire, c);
  EXPECT_EQ(u.withdrawn, std::vector<Nlri>{nlri("10.2.0.0/16", 7)});
  EXPECT_EQ(u.nlri, std::vector<Nlri>{nlri("198.51.100.0/24", 1)});
  EXPECT_EQ(to_string(u),
            "withdrawn 10.2.0.0/16#7; origin igp; as-path 65001; next-hop 192.0.2.1; "
            "nlri 198.51.100.0/24#1");
}

TEST(BgpUpdate, HostBitsInPrefixAreCleared) {
  UpdateResult r = decode_update(H("0000 0000 10 0a01"), kAs4);  // no attrs: nothing to check
  ASSERT_TRUE(r.ok());
  r = decode_update(H("0003 0f 0a01 0000"), kAs4);  // 10.1.0.0/15 -> 10.0.0.0/15
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.update.withdrawn, std::vector<Nlri>{nlri("10.0.0.0/15")});
}

TEST(BgpUpdate, DefaultRouteAndHostRoutes) {
  Update u;
  u.withdrawn = {nlri("0.0.0.0/0"), nlri("192.0.2.255/32")};
  Bytes wire = encode_update(u, kAs4);
  EXPECT_EQ(Hex(wire), Hex(H(kMarker + "001d 02 0006 00 20 c00002ff 0000")));
  EXPECT_EQ(RoundTrip(wire), u);
}

TEST(BgpUpdate, TooLargeUpdateEncodesEmpty) {
  Update u;
  for (uint32_t i = 0; i < 1100; ++i) u.withdrawn.push_back(Nlri{Prefix{IpAddr::v4(i << 8), 24}});
  EXPECT_TRUE(encode_update(u, kAs4).empty());
}

TEST(BgpUpdate, AllPrefixesForTreatAsWithdraw) {
  Update u;
  u.withdrawn = {nlri("10.0.0.0/8")};
  u.nlri = {nlri("10.1.0.0/16")};
  u.attrs.mp_reach = MpReach{kIpv6Unicast, Ip("2001:db8::1"), {}, {nlri("2001:db8::/32")}};
  EXPECT_EQ(all_prefixes(u, kIpv4Unicast).size(), 2u);
  EXPECT_EQ(all_prefixes(u, kIpv6Unicast), std::vector<Nlri>{nlri("2001:db8::/32")});
}

}  // namespace
}  // namespace espgw::bgp
