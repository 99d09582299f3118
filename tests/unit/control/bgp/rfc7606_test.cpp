// RFC 7606 revised UPDATE error handling: one test per rule, asserting the Outcome.
#include <gtest/gtest.h>

#include <algorithm>

#include "control/bgp/update.h"
#include "tests/unit/control/bgp/bgp_test_util.h"

namespace espgw::bgp {
namespace {

using testing::H;
using testing::kMandatory4;
using testing::UpdateBody;

const Codec kAs4{.as4 = true};
const Codec kAs2{.as4 = false};
const std::string kNlri = "18 c63364";  // 198.51.100.0/24

UpdateResult Decode(const std::string& attrs, const std::string& nlri = kNlri,
                    const Codec& c = kAs4) {
  return decode_update(UpdateBody(attrs, nlri), c);
}

bool Discarded(const UpdateResult& r, uint8_t code) {
  return std::find(r.discarded.begin(), r.discarded.end(), code) != r.discarded.end();
}

void ExpectWithdraw(const UpdateResult& r) {
  EXPECT_EQ(r.outcome, Outcome::kTreatAsWithdraw) << r.reason;
  // The prefixes are still known so that they can be withdrawn.
  EXPECT_EQ(all_prefixes(r.update, kIpv4Unicast), std::vector<Nlri>{nlri("198.51.100.0/24")});
}

void ExpectReset(const UpdateResult& r, uint8_t subcode) {
  EXPECT_EQ(r.outcome, Outcome::kSessionReset) << r.reason;
  EXPECT_EQ(r.notification.code, err::kUpdate);
  EXPECT_EQ(r.notification.subcode, subcode);
}

const std::string kAsPath = "4002060201 0000fde9";
const std::string kNextHop = "400304c0000201";
const std::string kOrigin = "40010100";

TEST(Rfc7606, WellFormedBaseline) {
  UpdateResult r = Decode(kMandatory4);
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.reason;
  EXPECT_TRUE(r.reason.empty());
}

// s7.1 ORIGIN
TEST(Rfc7606, OriginBadLengthTreatAsWithdraw) {
  ExpectWithdraw(Decode("40 01 02 0000" + kAsPath + kNextHop));
}
TEST(Rfc7606, OriginUndefinedValueTreatAsWithdraw) {
  ExpectWithdraw(Decode("40 01 01 03" + kAsPath + kNextHop));
}

// s7.2 AS_PATH
TEST(Rfc7606, AsPathSegmentOverrunTreatAsWithdraw) {
  ExpectWithdraw(Decode(kOrigin + "40 02 06 02 02 0000fde9" + kNextHop));
}
TEST(Rfc7606, AsPathZeroLengthSegmentTreatAsWithdraw) {
  ExpectWithdraw(Decode(kOrigin + "40 02 08 02 00 02 01 0000fde9" + kNextHop));
}
TEST(Rfc7606, AsPathUnknownSegmentTypeTreatAsWithdraw) {
  ExpectWithdraw(Decode(kOrigin + "40 02 06 05 01 0000fde9" + kNextHop));
}
TEST(Rfc7606, AsPathWithAsZeroTreatAsWithdraw) {  // RFC 7607
  ExpectWithdraw(Decode(kOrigin + "40 02 06 02 01 00000000" + kNextHop));
}
TEST(Rfc7606, AsPathConfedFromEbgpTreatAsWithdraw) {
  Codec ebgp{.as4 = true, .ebgp = true};
  ExpectWithdraw(Decode(kOrigin + "40 02 06 03 01 0000fc00" + kNextHop, kNlri, ebgp));
  EXPECT_EQ(Decode(kOrigin + "40 02 06 03 01 0000fc00" + kNextHop).outcome, Outcome::kOk);
}

TEST(Rfc7606, AsPathConfedAfterSequenceTreatAsWithdraw) {  // RFC 5065 s5
  ExpectWithdraw(Decode(kOrigin + "40 02 0c 02 01 0000fde9 03 01 0000fc00" + kNextHop));
}

// s7.3 NEXT_HOP
TEST(Rfc7606, NextHopBadLengthTreatAsWithdraw) {
  ExpectWithdraw(Decode(kOrigin + kAsPath + "40 03 05 c000020100"));
}
TEST(Rfc7606, NextHopNotHostAddressTreatAsWithdraw) {
  ExpectWithdraw(Decode(kOrigin + kAsPath + "40 03 04 00000000"));
  ExpectWithdraw(Decode(kOrigin + kAsPath + "40 03 04 e0000001"));
}

// s7.4 MULTI_EXIT_DISC
TEST(Rfc7606, MedBadLengthTreatAsWithdraw) {
  ExpectWithdraw(Decode(kMandatory4 + "80 04 03 000001"));
}

// s7.5 LOCAL_PREF
TEST(Rfc7606, LocalPrefBadLengthTreatAsWithdraw) {
  ExpectWithdraw(Decode(kMandatory4 + "40 05 02 0064"));
}
TEST(Rfc7606, LocalPrefFromEbgpDiscarded) {
  Codec ebgp{.as4 = true, .ebgp = true};
  UpdateResult r = Decode(kMandatory4 + "40 05 04 00000064", kNlri, ebgp);
  EXPECT_EQ(r.outcome, Outcome::kAttributeDiscard);
  EXPECT_TRUE(Discarded(r, attr::kLocalPref));
  EXPECT_FALSE(r.update.attrs.local_pref);
}

// s7.6 ATOMIC_AGGREGATE
TEST(Rfc7606, AtomicAggregateBadLengthAttributeDiscard) {
  UpdateResult r = Decode(kMandatory4 + "40 06 01 00");
  EXPECT_EQ(r.outcome, Outcome::kAttributeDiscard);
  EXPECT_TRUE(Discarded(r, attr::kAtomicAggregate));
  EXPECT_FALSE(r.update.attrs.atomic_aggregate);
  EXPECT_EQ(r.update.nlri.size(), 1u);
}

// s7.7 AGGREGATOR
TEST(Rfc7606, AggregatorBadLengthAttributeDiscard) {
  UpdateResult r = Decode(kMandatory4 + "c0 07 06 fde9 c0000201");  // 6 on a 4-octet session
  EXPECT_EQ(r.outcome, Outcome::kAttributeDiscard);
  EXPECT_TRUE(Discarded(r, attr::kAggregator));
  EXPECT_FALSE(r.update.attrs.aggregator);
}
TEST(Rfc7606, AggregatorAsZeroAttributeDiscard) {  // RFC 7607
  UpdateResult r = Decode(kMandatory4 + "c0 07 08 00000000 c0000201");
  EXPECT_EQ(r.outcome, Outcome::kAttributeDiscard);
  EXPECT_FALSE(r.update.attrs.aggregator);
}

// s7.8 COMMUNITIES
TEST(Rfc7606, CommunitiesNotMultipleOfFourTreatAsWithdraw) {
  ExpectWithdraw(Decode(kMandatory4 + "c0 08 03 000001"));
}
TEST(Rfc7606, CommunitiesZeroLengthTreatAsWithdraw) {
  ExpectWithdraw(Decode(kMandatory4 + "c0 08 00"));
}

// s3: attribute flags
TEST(Rfc7606, WellKnownSentAsOptionalTreatAsWithdraw) {
  ExpectWithdraw(Decode("c0 01 01 00" + kAsPath + kNextHop));
}
TEST(Rfc7606, MedSentAsTransitiveTreatAsWithdraw) {
  ExpectWithdraw(Decode(kMandatory4 + "c0 04 04 00000001"));
}
// s3 (c): s7.6 only covers a bad length, so wrong flags are treat-as-withdraw (issue 16.4 b).
TEST(Rfc7606, AtomicAggregateFlagsErrorTreatAsWithdraw) {
  ExpectWithdraw(Decode(kMandatory4 + "c0 06 00"));  // optional transitive
  ExpectWithdraw(Decode(kMandatory4 + "00 06 00"));  // well-known but not transitive
}
TEST(Rfc7606, AggregatorFlagsErrorTreatAsWithdraw) {
  ExpectWithdraw(Decode(kMandatory4 + "40 07 08 0000fde9 c0000201"));  // sent as well-known
}
TEST(Rfc7606, As4PathFlagsErrorAttributeDiscard) {  // RFC 6793 s6
  const std::string mandatory2 = kOrigin + "40 02 04 0201 fde9" + kNextHop;
  UpdateResult r = Decode(mandatory2 + "40 11 06 0201 0000fde9", kNlri, kAs2);
  EXPECT_EQ(r.outcome, Outcome::kAttributeDiscard) << r.reason;
  EXPECT_TRUE(Discarded(r, attr::kAs4Path));
}
TEST(Rfc7606, MpReachFlagsErrorSessionReset) {
  UpdateResult r = Decode("c0 0e 05 0002 01 00 00" + kOrigin + kAsPath, "");
  ExpectReset(r, err::update::kAttrFlags);
  EXPECT_EQ(r.notification.data, H("c0 0e 05 0002 01 00 00"));
}

// s3: duplicates
TEST(Rfc7606, DuplicateAttributeKeepsFirst) {
  UpdateResult r = Decode(kMandatory4 + "80 04 04 00000001 80 04 04 00000002");
  EXPECT_EQ(r.outcome, Outcome::kAttributeDiscard);
  EXPECT_TRUE(Discarded(r, attr::kMed));
  EXPECT_EQ(r.update.attrs.med, 1u);
}
TEST(Rfc7606, DuplicateMpReachSessionReset) {
  const std::string mp = "80 0e 15 0002 01 10 20010db8000000000000000000000001 00";
  ExpectReset(Decode(mp + mp + kOrigin + kAsPath, ""), err::update::kMalformedAttrList);
}
TEST(Rfc7606, DuplicateMpUnreachSessionReset) {
  const std::string mp = "80 0f 03 0002 01";
  ExpectReset(Decode(mp + mp, ""), err::update::kMalformedAttrList);
}

// s3: missing well-known mandatory attributes
TEST(Rfc7606, MissingOriginTreatAsWithdraw) { ExpectWithdraw(Decode(kAsPath + kNextHop)); }
TEST(Rfc7606, MissingAsPathTreatAsWithdraw) { ExpectWithdraw(Decode(kOrigin + kNextHop)); }
TEST(Rfc7606, MissingNextHopTreatAsWithdraw) { ExpectWithdraw(Decode(kOrigin + kAsPath)); }
TEST(Rfc7606, MpReachNeedsNoNextHop) {
  UpdateResult r = Decode(
      "80 0e 0b 0002 01 00"
      "20010db8 00 20 20010db8",
      "");                                       // NH len 0
  EXPECT_EQ(r.outcome, Outcome::kSessionReset);  // (IPv6 next hop must be 16 or 32)
  r = Decode(
      "80 0e 1a 0002 01 10 20010db8000000000000000000000001 00 20 20010db8" + kOrigin + kAsPath,
      "");
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.reason;
}
TEST(Rfc7606, MpReachMissingOriginTreatAsWithdraw) {
  UpdateResult r =
      Decode("80 0e 1a 0002 01 10 20010db8000000000000000000000001 00 20 20010db8" + kAsPath, "");
  EXPECT_EQ(r.outcome, Outcome::kTreatAsWithdraw);
  EXPECT_EQ(all_prefixes(r.update, kIpv6Unicast), std::vector<Nlri>{nlri("2001:db8::/32")});
}
TEST(Rfc7606, NoNlriMeansNoMandatoryCheck) {
  EXPECT_EQ(Decode("", "").outcome, Outcome::kOk);
  EXPECT_EQ(Decode("80 04 04 00000001", "").outcome, Outcome::kOk);
}

// s7.11 / s7.12 / s5.3 MP_REACH_NLRI and MP_UNREACH_NLRI
TEST(Rfc7606, MpReachBadNextHopLengthSessionReset) {
  const std::string mp = "80 0e 0a 0002 01 04 c0000201 00 00";
  UpdateResult r = Decode(mp + kOrigin + kAsPath, "");
  ExpectReset(r, err::update::kOptionalAttr);
  EXPECT_EQ(r.notification.data, H(mp));
}
TEST(Rfc7606, MpReachNextHopOverrunSessionReset) {
  ExpectReset(Decode("80 0e 05 0002 01 10 00" + kOrigin + kAsPath, ""), err::update::kOptionalAttr);
}
TEST(Rfc7606, MpReachPrefixTooLongSessionReset) {
  ExpectReset(
      Decode("80 0e 16 0002 01 10 20010db8000000000000000000000001 00 81" + kOrigin + kAsPath, ""),
      err::update::kOptionalAttr);
}
TEST(Rfc7606, MpUnreachTruncatedPrefixSessionReset) {
  ExpectReset(Decode("80 0f 05 0002 01 30 2001", ""), err::update::kOptionalAttr);
}
TEST(Rfc7606, MpUnreachTruncatedHeaderSessionReset) {
  ExpectReset(Decode("80 0f 02 0002", ""), err::update::kOptionalAttr);
}
TEST(Rfc7606, MpUnsupportedFamilyDiscarded) {
  UpdateResult r = Decode("80 0f 03 0019 41" + kMandatory4);  // L2VPN EVPN
  EXPECT_EQ(r.outcome, Outcome::kAttributeDiscard);
  EXPECT_TRUE(Discarded(r, attr::kMpUnreach));
  EXPECT_FALSE(r.update.attrs.mp_unreach);
}

// s4 attribute length fields
TEST(Rfc7606, AttributeOverrunsAttributesFieldTreatAsWithdraw) {
  ExpectWithdraw(Decode(kMandatory4 + "80 04 08 00000001"));
}
TEST(Rfc7606, TruncatedAttributeHeaderTreatAsWithdraw) {
  ExpectWithdraw(Decode(kMandatory4 + "80 04"));
  ExpectWithdraw(Decode(kMandatory4 + "90 04 00"));  // extended length needs 4 octets
}
TEST(Rfc7606, WithdrawnLengthOverrunSessionReset) {
  ExpectReset(decode_update(H("0010 18 c63364 0000"), kAs4), err::update::kMalformedAttrList);
}
TEST(Rfc7606, TotalAttributeLengthOverrunSessionReset) {
  ExpectReset(decode_update(H("0000 0020 40010100"), kAs4), err::update::kMalformedAttrList);
}
TEST(Rfc7606, BodyTooShortSessionReset) {
  ExpectReset(decode_update(H("00"), kAs4), err::update::kMalformedAttrList);
}

// s5.3 NLRI syntax
TEST(Rfc7606, NlriPrefixLongerThan32SessionReset) {
  ExpectReset(Decode(kMandatory4, "21 c0000201 00"), err::update::kInvalidNetwork);
}
TEST(Rfc7606, NlriTruncatedPrefixSessionReset) {
  ExpectReset(Decode(kMandatory4, "18 c633"), err::update::kInvalidNetwork);
}
TEST(Rfc7606, WithdrawnPrefixLongerThan32SessionReset) {
  ExpectReset(decode_update(H("0002 21 00 0000"), kAs4), err::update::kInvalidNetwork);
}

// RFC 4271 s6.3 (unchanged): unrecognized well-known attribute.
TEST(Rfc7606, UnrecognizedWellKnownSessionReset) {
  UpdateResult r = Decode(kMandatory4 + "40 63 01 00");
  ExpectReset(r, err::update::kUnrecognizedWellKnown);
  EXPECT_EQ(r.notification.data, H("40 63 01 00"));
}

// RFC 6793 s4.1 / s6: AS4 attributes.
TEST(Rfc7606, As4PathFromFourOctetPeerDiscarded) {
  UpdateResult r = Decode(kMandatory4 + "c0 11 06 02 01 fa56ea01");
  EXPECT_EQ(r.outcome, Outcome::kAttributeDiscard);
  EXPECT_TRUE(Discarded(r, attr::kAs4Path));
  EXPECT_EQ(r.update.attrs.as_path, AsPath::sequence({65001}));
}
TEST(Rfc7606, MalformedAs4PathDiscardedAsPathKept) {
  UpdateResult r =
      Decode("40010100 40 02 04 02 01 fde9 400304c0000201 c0 11 05 02 01 fa56ea", kNlri, kAs2);
  EXPECT_EQ(r.outcome, Outcome::kAttributeDiscard);
  EXPECT_TRUE(Discarded(r, attr::kAs4Path));
  EXPECT_EQ(r.update.attrs.as_path, AsPath::sequence({65001}));
}
TEST(Rfc7606, As4AggregatorBadLengthDiscarded) {
  UpdateResult r =
      Decode("40010100 40 02 04 02 01 fde9 400304c0000201 c0 12 06 fa56 c0000201", kNlri, kAs2);
  EXPECT_EQ(r.outcome, Outcome::kAttributeDiscard);
  EXPECT_TRUE(Discarded(r, attr::kAs4Aggregator));
}

TEST(Rfc7606, MostSevereOutcomeWins) {
  // A discardable error followed by a treat-as-withdraw one.
  UpdateResult r = Decode(kMandatory4 + "40 06 01 00 c0 08 03 000001");
  EXPECT_EQ(r.outcome, Outcome::kTreatAsWithdraw);
  EXPECT_TRUE(Discarded(r, attr::kAtomicAggregate));
  EXPECT_NE(r.reason.find("COMMUNITIES"), std::string::npos) << r.reason;
  EXPECT_STREQ(outcome_name(r.outcome), "treat-as-withdraw");
}

}  // namespace
}  // namespace espgw::bgp
