// AS path helpers and RFC 6793 AS4 conversion in both directions.
#include "control/bgp/aspath.h"

#include <gtest/gtest.h>

#include "control/bgp/update.h"
#include "tests/unit/control/bgp/bgp_test_util.h"

namespace espgw::bgp {
namespace {

using testing::H;
using testing::Hex;
using testing::Ip;

const Codec kAs4{.as4 = true};
const Codec kAs2{.as4 = false};

TEST(BgpAsPath, LengthCountsSetAsOneAndConfedAsZero) {
  AsPath p{{{SegType::kSequence, {1, 2, 3}},
            {SegType::kSet, {4, 5, 6}},
            {SegType::kConfedSequence, {7, 8}}}};
  EXPECT_EQ(p.length(), 4u);
  EXPECT_EQ(AsPath{}.length(), 0u);
}

TEST(BgpAsPath, Contains) {
  AsPath p{{{SegType::kSequence, {1, 2}}, {SegType::kSet, {4200000001u}}}};
  EXPECT_TRUE(p.contains(2));
  EXPECT_TRUE(p.contains(4200000001u));
  EXPECT_FALSE(p.contains(3));
}

TEST(BgpAsPath, Prepend) {
  AsPath p;
  p.prepend(65001);
  p.prepend(65000);
  EXPECT_EQ(p, AsPath::sequence({65000, 65001}));
  AsPath s{{{SegType::kSet, {1, 2}}}};
  s.prepend(3);
  EXPECT_EQ(s.str(), "3 {1,2}");
  EXPECT_EQ(s.segments.size(), 2u);
}

TEST(BgpAsPath, PrependToFullSegmentStartsANewOne) {
  AsPath p = AsPath::sequence(std::vector<uint32_t>(255, 65001));
  p.prepend(65000);
  ASSERT_EQ(p.segments.size(), 2u);
  EXPECT_EQ(p.segments[0].asns, std::vector<uint32_t>{65000});
  EXPECT_EQ(p.length(), 256u);
}

TEST(BgpAsPath, LongSequenceSplitOnEncode) {
  AsPath p;
  p.segments = {{SegType::kSequence, std::vector<uint32_t>(300, 7)}};
  Bytes b;
  Writer w(b);
  encode_as_path(p, true, w);
  ASSERT_EQ(b.size(), 2u + 255 * 4 + 2u + 45 * 4);
  EXPECT_EQ(b[0], 2);
  EXPECT_EQ(b[1], 255);
  AsPath back;
  ASSERT_TRUE(decode_as_path(Reader(b), true, back));
  EXPECT_EQ(back.length(), 300u);
  EXPECT_EQ(back, AsPath::sequence(std::vector<uint32_t>(300, 7)));
}

// A path with a 4-octet-only ASN sent to a 2-octet peer: AS_TRANS in AS_PATH plus AS4_PATH.
const std::string kTwoOctetUpdate =
    "0000 0027"
    "40 01 01 00"
    "40 02 08 02 03 fde9 5ba0 fdea"  // AS_PATH 65001 23456 65002
    "40 03 04 c0000201"
    "c0 11 0e 02 03 0000fde9 fa56ea01 0000fdea"  // AS4_PATH 65001 4200000001 65002
    "18 c63364";

TEST(BgpAs4, EncodeForTwoOctetPeer) {
  Update u;
  u.attrs.origin = Origin::kIgp;
  u.attrs.as_path = AsPath::sequence({65001, 4200000001u, 65002});
  u.attrs.next_hop = Ip("192.0.2.1");
  u.nlri = {nlri("198.51.100.0/24")};
  Bytes msg = encode_update(u, kAs2);
  EXPECT_EQ(Hex(Bytes(msg.begin() + 19, msg.end())), Hex(H(kTwoOctetUpdate)));

  UpdateResult r = decode_update(H(kTwoOctetUpdate), kAs2);
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.reason;
  EXPECT_EQ(r.update, u);  // merged, AS4_PATH consumed
  EXPECT_FALSE(r.update.attrs.as4_path);
}

TEST(BgpAs4, FourOctetPeerGetsNoAs4Path) {
  Update u;
  u.attrs.origin = Origin::kIgp;
  u.attrs.as_path = AsPath::sequence({65001, 4200000001u});
  u.attrs.next_hop = Ip("192.0.2.1");
  u.nlri = {nlri("198.51.100.0/24")};
  Bytes msg = encode_update(u, kAs4);
  EXPECT_EQ(Hex(Bytes(msg.begin() + 19, msg.end())),
            Hex(H("0000 0018 40010100 40 02 0a 02 02 0000fde9 fa56ea01 400304c0000201"
                  "18 c63364")));
  UpdateResult r = decode_update(Bytes(msg.begin() + 19, msg.end()), kAs4);
  ASSERT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(r.update, u);
}

TEST(BgpAs4, TwoOctetPathWithoutLargeAsnHasNoAs4Path) {
  Update u;
  u.attrs.origin = Origin::kIgp;
  u.attrs.as_path = AsPath::sequence({65001, 65002});
  u.attrs.next_hop = Ip("192.0.2.1");
  Bytes msg = encode_update(u, kAs2);
  EXPECT_EQ(Hex(Bytes(msg.begin() + 19, msg.end())),
            Hex(H("0000 0014 40010100 40 02 06 02 02 fde9 fdea 400304c0000201")));
}

TEST(BgpAs4, MergeWithShorterAs4Path) {
  // An old speaker (65010) prepended itself after AS4_PATH was created.
  UpdateResult r =
      decode_update(testing::UpdateBody("40010100 40 02 0a 02 04 fdf2 fde9 5ba0 fdea 400304c0000201"
                                        "c0 11 0a 02 02 fa56ea01 0000fdea",
                                        "18 c63364"),
                    kAs2);
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.reason;
  EXPECT_EQ(r.update.attrs.as_path, AsPath::sequence({65010, 65001, 4200000001u, 65002}));
}

TEST(BgpAs4, MergeCountsAsSetAsOne) {
  AsPath as_path{
      {{SegType::kSequence, {65010}}, {SegType::kSet, {1, 2}}, {SegType::kSequence, {kAsTrans}}}};
  AsPath as4{{{SegType::kSet, {1, 2}}, {SegType::kSequence, {4200000001u}}}};
  EXPECT_EQ(merge_as4_path(as_path, as4).str(), "65010 {1,2} 4200000001");
}

TEST(BgpAs4, LongerAs4PathIsIgnored) {
  AsPath as_path = AsPath::sequence({65001, kAsTrans});
  AsPath as4 = AsPath::sequence({1, 2, 4200000001u});
  EXPECT_EQ(merge_as4_path(as_path, as4), as_path);
}

TEST(BgpAs4, MergeKeepsLeadingConfedSegments) {
  AsPath as_path{{{SegType::kConfedSequence, {64512}}, {SegType::kSequence, {65001, kAsTrans}}}};
  AsPath as4 = AsPath::sequence({65001, 4200000001u});
  EXPECT_EQ(merge_as4_path(as_path, as4).str(), "(64512) 65001 4200000001");
}

TEST(BgpAs4, AggregatorForTwoOctetPeer) {
  Update u;
  u.attrs.aggregator = Aggregator{4200000001u, Ip("192.0.2.9")};
  Bytes msg = encode_update(u, kAs2);
  EXPECT_EQ(Hex(Bytes(msg.begin() + 19, msg.end())),
            Hex(H("0000 0014 c0 07 06 5ba0 c0000209 c0 12 08 fa56ea01 c0000209")));
  UpdateResult r = decode_update(Bytes(msg.begin() + 19, msg.end()), kAs2);
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.reason;
  EXPECT_EQ(r.update, u);
}

TEST(BgpAs4, AggregatorNotAsTransMeansAs4AttributesIgnored) {
  // RFC 6793 s4.2.3: AGGREGATOR from a 2-octet aggregating speaker wins over AS4_AGGREGATOR,
  // and AS4_PATH is ignored too.
  UpdateResult r =
      decode_update(testing::UpdateBody("40010100 40 02 06 02 02 fde9 5ba0 400304c0000201"
                                        "c0 07 06 fdf2 c0000209"
                                        "c0 11 06 02 01 fa56ea01"
                                        "c0 12 08 fa56ea01 c0000209",
                                        "18 c63364"),
                    kAs2);
  EXPECT_EQ(r.outcome, Outcome::kAttributeDiscard);
  EXPECT_EQ(r.update.attrs.aggregator, (Aggregator{65010, Ip("192.0.2.9")}));
  EXPECT_EQ(r.update.attrs.as_path, AsPath::sequence({65001, kAsTrans}));
  EXPECT_FALSE(r.update.attrs.as4_path);
  EXPECT_FALSE(r.update.attrs.as4_aggregator);
}

TEST(BgpAs4, AsTransWithoutAs4PathStays) {
  UpdateResult r = decode_update(
      testing::UpdateBody("40010100 40 02 06 02 02 fde9 5ba0 400304c0000201", "18 c63364"), kAs2);
  ASSERT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(r.update.attrs.as_path, AsPath::sequence({65001, kAsTrans}));
}

}  // namespace
}  // namespace espgw::bgp
