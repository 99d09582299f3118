// Every path attribute: encode to known bytes, decode back, format; flags, extended length,
// unknown attributes and the canonical order.
#include "control/bgp/attrs.h"

#include <gtest/gtest.h>

#include <set>

#include "tests/unit/control/bgp/bgp_test_util.h"

namespace espgw::bgp {
namespace {

using testing::H;
using testing::Hex;
using testing::Ip;

const Codec kAs4{.as4 = true};
const Codec kAs2{.as4 = false};

Bytes Encode(const PathAttrs& a, const Codec& c = kAs4) {
  Bytes b;
  Writer w(b);
  encode_attrs(a, c, w);
  return b;
}

PathAttrs Decode(const Bytes& b, Verdict& v, const Codec& c = kAs4) {
  PathAttrs d;
  decode_attrs(Reader(b), c, d, v);
  return d;
}

// encode == hex, decode(hex) == a with no error, format == fmt.
void Check(const PathAttrs& a, const std::string& hex, const std::string& fmt,
           const Codec& c = kAs4) {
  Bytes wire = H(hex);
  EXPECT_EQ(Hex(Encode(a, c)), Hex(wire));
  Verdict v;
  EXPECT_EQ(Decode(wire, v, c), a);
  EXPECT_EQ(v.outcome, Outcome::kOk) << v.reason;
  EXPECT_EQ(format_attrs(a), fmt);
}

TEST(BgpAttrs, TableHasOneEntryPerCode) {
  std::set<uint8_t> codes;
  for (const auto& s : attr_table()) {
    EXPECT_TRUE(codes.insert(s.code).second) << s.name;
    EXPECT_EQ(find_attr(s.code), &s);
    EXPECT_TRUE(s.decode && s.validate && s.encode && s.format && s.clear) << s.name;
  }
  EXPECT_EQ(codes, (std::set<uint8_t>{1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 17, 18}));
  EXPECT_EQ(find_attr(99), nullptr);
}

TEST(BgpAttrs, Origin) {
  PathAttrs a;
  a.origin = Origin::kIgp;
  Check(a, "40 01 01 00", "origin igp");
  a.origin = Origin::kEgp;
  Check(a, "40 01 01 01", "origin egp");
  a.origin = Origin::kIncomplete;
  Check(a, "40 01 01 02", "origin incomplete");
}

TEST(BgpAttrs, AsPathFourOctet) {
  PathAttrs a;
  a.as_path = AsPath{{{SegType::kSequence, {65001, 65002}}, {SegType::kSet, {65003, 65004}}}};
  Check(a, "40 02 14 02 02 0000fde9 0000fdea 01 02 0000fdeb 0000fdec",
        "as-path 65001 65002 {65003,65004}");
}

TEST(BgpAttrs, AsPathTwoOctet) {
  PathAttrs a;
  a.as_path = AsPath{{{SegType::kSequence, {65001, 65002}}, {SegType::kSet, {65003, 65004}}}};
  Check(a, "40 02 0c 02 02 fde9 fdea 01 02 fdeb fdec", "as-path 65001 65002 {65003,65004}", kAs2);
}

TEST(BgpAttrs, AsPathEmptyAndConfed) {
  PathAttrs a;
  a.as_path = AsPath{};
  Check(a, "40 02 00", "as-path");
  a.as_path = AsPath{{{SegType::kConfedSequence, {64512}}, {SegType::kSequence, {65001}}}};
  Check(a, "40 02 0c 03 01 0000fc00 02 01 0000fde9", "as-path (64512) 65001");
}

TEST(BgpAttrs, NextHop) {
  PathAttrs a;
  a.next_hop = Ip("192.0.2.1");
  Check(a, "40 03 04 c0000201", "next-hop 192.0.2.1");
}

TEST(BgpAttrs, Med) {
  PathAttrs a;
  a.med = 0;
  Check(a, "80 04 04 00000000", "med 0");
  a.med = 0xFFFFFFFF;
  Check(a, "80 04 04 ffffffff", "med 4294967295");
}

TEST(BgpAttrs, LocalPref) {
  PathAttrs a;
  a.local_pref = 100;
  Check(a, "40 05 04 00000064", "local-pref 100");
}

TEST(BgpAttrs, AtomicAggregate) {
  PathAttrs a;
  a.atomic_aggregate = true;
  Check(a, "40 06 00", "atomic-aggregate");
}

TEST(BgpAttrs, AggregatorFourOctet) {
  PathAttrs a;
  a.aggregator = Aggregator{65001, Ip("192.0.2.1")};
  Check(a, "c0 07 08 0000fde9 c0000201", "aggregator 65001 192.0.2.1");
}

TEST(BgpAttrs, AggregatorTwoOctet) {
  PathAttrs a;
  a.aggregator = Aggregator{65001, Ip("192.0.2.1")};
  Check(a, "c0 07 06 fde9 c0000201", "aggregator 65001 192.0.2.1", kAs2);
}

TEST(BgpAttrs, Communities) {
  PathAttrs a;
  a.communities =
      std::vector<uint32_t>{0xFDE90064, kNoExport,  kNoAdvertise,     kNoExportSubconfed,
                            kNoPeer,    kBlackhole, kGracefulShutdown};
  Check(a, "c0 08 1c fde90064 ffffff01 ffffff02 ffffff03 ffffff04 ffff029a ffff0000",
        "communities 65001:100 no-export no-advertise no-export-subconfed no-peer blackhole "
        "graceful-shutdown");
}

TEST(BgpAttrs, MpReachIpv6) {
  PathAttrs a;
  a.mp_reach = MpReach{kIpv6Unicast, Ip("2001:db8::1"), std::nullopt, {nlri("2001:db8::/32")}};
  Check(a, "80 0e 1a 0002 01 10 20010db8000000000000000000000001 00 20 20010db8",
        "mp-reach ipv6-unicast next-hop 2001:db8::1 nlri 2001:db8::/32");
}

TEST(BgpAttrs, MpReachIpv4) {
  PathAttrs a;
  a.mp_reach = MpReach{kIpv4Unicast, Ip("192.0.2.1"), std::nullopt, {nlri("10.0.0.0/8")}};
  Check(a, "80 0e 0b 0001 01 04 c0000201 00 08 0a",
        "mp-reach ipv4-unicast next-hop 192.0.2.1 nlri 10.0.0.0/8");
}

TEST(BgpAttrs, MpUnreach) {
  PathAttrs a;
  a.mp_unreach = MpUnreach{kIpv4Unicast, {nlri("10.1.0.0/16")}};
  Check(a, "80 0f 06 0001 01 10 0a01", "mp-unreach ipv4-unicast 10.1.0.0/16");
  a.mp_unreach = MpUnreach{kIpv6Unicast, {nlri("::/0")}};
  Check(a, "80 0f 04 0002 01 00", "mp-unreach ipv6-unicast ::/0");
}

TEST(BgpAttrs, As4PathAndAs4AggregatorDecodeFromTwoOctetPeer) {
  // decode_attrs keeps them as received; decode_update merges (see aspath_test).
  Bytes wire = H("c0 11 0a 02 02 0000fde9 fa56ea01  c0 12 08 fa56ea01 c0000201");
  Verdict v;
  PathAttrs d = Decode(wire, v, kAs2);
  EXPECT_EQ(v.outcome, Outcome::kOk) << v.reason;
  EXPECT_EQ(d.as4_path, AsPath::sequence({65001, 4200000001u}));
  EXPECT_EQ(d.as4_aggregator, (Aggregator{4200000001u, Ip("192.0.2.1")}));
  EXPECT_EQ(format_attrs(d), "as4-path 65001 4200000001; as4-aggregator 4200000001 192.0.2.1");
}

TEST(BgpAttrs, CanonicalOrderMpFirstThenByCode) {
  PathAttrs a;
  a.origin = Origin::kIgp;
  a.med = 5;
  a.mp_unreach = MpUnreach{kIpv6Unicast, {}};
  a.mp_reach = MpReach{kIpv6Unicast, Ip("2001:db8::1"), std::nullopt, {}};
  a.unknown = {RawAttr{0xe0, 99, {0xab}}, RawAttr{0xe0, 4 + 12, {}}};
  Bytes b = Encode(a);
  EXPECT_EQ(Hex(b), Hex(H("80 0e 15 0002 01 10 20010db8000000000000000000000001 00"
                          "80 0f 03 0002 01"
                          "40 01 01 00"
                          "80 04 04 00000005"
                          "e0 10 00"
                          "e0 63 01 ab")));
  Verdict v;
  PathAttrs d = Decode(b, v);
  EXPECT_EQ(v.outcome, Outcome::kOk);
  ASSERT_EQ(d.unknown.size(), 2u);
  EXPECT_EQ(d.unknown[0].code, 16);  // sorted by type code
  d.unknown = a.unknown;
  EXPECT_EQ(d, a);
  EXPECT_EQ(format_attrs(a),
            "origin igp; med 5; attr-99 flags 0xe0 ab; attr-16 flags 0xe0; "
            "mp-reach ipv6-unicast next-hop 2001:db8::1 nlri; mp-unreach ipv6-unicast");
}

TEST(BgpAttrs, ExtendedLengthOnEncodeAbove255) {
  PathAttrs a;
  a.communities = std::vector<uint32_t>(70, 0xFDE90001);  // 280 bytes
  Bytes b = Encode(a);
  ASSERT_EQ(b.size(), 4u + 280u);
  EXPECT_EQ(Hex(Bytes(b.begin(), b.begin() + 8)), "d0080118fde90001");
  Verdict v;
  EXPECT_EQ(Decode(b, v), a);
  EXPECT_EQ(v.outcome, Outcome::kOk);

  a.communities = std::vector<uint32_t>(63, 1);  // 252 bytes: one-octet length
  b = Encode(a);
  EXPECT_EQ(Hex(Bytes(b.begin(), b.begin() + 3)), "c008fc");
}

TEST(BgpAttrs, ExtendedLengthAcceptedOnShortAttribute) {
  Verdict v;
  PathAttrs d = Decode(H("50 01 0001 02"), v);
  EXPECT_EQ(v.outcome, Outcome::kOk);
  EXPECT_EQ(d.origin, Origin::kIncomplete);
  EXPECT_EQ(Hex(Encode(d)), "40010102");  // re-encoded in the short form
}

TEST(BgpAttrs, UnknownOptionalTransitivePassedOnWithPartial) {
  Verdict v;
  PathAttrs d = Decode(H("c0 63 02 abcd"), v);
  EXPECT_EQ(v.outcome, Outcome::kOk);
  ASSERT_EQ(d.unknown.size(), 1u);
  EXPECT_EQ(d.unknown[0], (RawAttr{0xe0, 99, {0xab, 0xcd}}));
  EXPECT_EQ(Hex(Encode(d)), "e06302abcd");
  EXPECT_EQ(format_attrs(d), "attr-99 flags 0xe0 abcd");
}

TEST(BgpAttrs, UnknownOptionalTransitiveLargeUsesExtendedLength) {
  PathAttrs a;
  a.unknown = {RawAttr{0xe0, 200, Bytes(300, 0x5a)}};
  Bytes b = Encode(a);
  EXPECT_EQ(Hex(Bytes(b.begin(), b.begin() + 4)), "f0c8012c");
  Verdict v;
  EXPECT_EQ(Decode(b, v), a);
}

TEST(BgpAttrs, UnknownOptionalNonTransitiveDropped) {
  Verdict v;
  PathAttrs d = Decode(H("80 63 02 abcd 40 01 01 00"), v);
  EXPECT_EQ(v.outcome, Outcome::kOk);
  EXPECT_TRUE(d.unknown.empty());
  EXPECT_EQ(d.origin, Origin::kIgp);
}

TEST(BgpAttrs, KnownOptionalTransitiveKeepsPartial) {
  Bytes wire = H("e0 08 04 fde90064");
  Verdict v;
  PathAttrs d = Decode(wire, v);
  EXPECT_EQ(v.outcome, Outcome::kOk);
  EXPECT_EQ(Encode(d), wire);
}

}  // namespace
}  // namespace espgw::bgp
