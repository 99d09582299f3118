// Whole messages against hand-written bytes: header checks, OPEN, KEEPALIVE, NOTIFICATION,
// ROUTE-REFRESH.
#include "control/bgp/message.h"

#include <gtest/gtest.h>

#include "tests/unit/control/bgp/bgp_test_util.h"

namespace espgw::bgp {
namespace {

using testing::H;
using testing::Hex;
using testing::kMarker;

const Codec kAs4{.as4 = true};

// OPEN, AS 65000, hold 180, id 192.0.2.1, capabilities: MP ipv4/ipv6 unicast, route refresh,
// graceful restart (R, 120 s, ipv4 unicast with F), 4-octet AS 65000, unknown 70 (empty).
const std::string kOpenHex = kMarker +
                             "003d 01"                // length 61, OPEN
                             "04 fde8 00b4 c0000201"  // version, AS, hold time, BGP id
                             "20"                     // optional parameters length 32
                             "02 1e"                  // capabilities parameter, 30 bytes
                             "01 04 0001 00 01"       // MP ipv4 unicast
                             "01 04 0002 00 01"       // MP ipv6 unicast
                             "02 00"                  // route refresh
                             "40 06 8078 0001 01 80"  // graceful restart
                             "41 04 0000fde8"         // 4-octet AS
                             "46 00";                 // unknown capability 70

Open ExpectedOpen() {
  Capabilities caps;
  caps.multiprotocol = {kIpv4Unicast, kIpv6Unicast};
  caps.route_refresh = true;
  caps.graceful_restart = GracefulRestart{true, false, 120, {{kIpv4Unicast, true}}};
  caps.unknown = {RawCapability{70, {}}};
  return Open::make(65000, 180, 0xC0000201, caps);
}

TEST(BgpMessage, OpenWithCapabilitiesKnownBytes) {
  Bytes wire = H(kOpenHex);
  EXPECT_EQ(Hex(encode(Message(ExpectedOpen()), kAs4)), Hex(wire));
  MessageResult r = decode_message(wire, kAs4);
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.reason;
  const Open& o = std::get<Open>(r.message);
  EXPECT_EQ(o, ExpectedOpen());
  EXPECT_EQ(o.asn(), 65000u);
  EXPECT_EQ(encode(r.message, kAs4), wire);
  EXPECT_EQ(to_string(o),
            "version 4; as 65000; hold-time 180; bgp-id 192.0.2.1; mp ipv4-unicast; "
            "mp ipv6-unicast; route-refresh; graceful-restart time 120 restarting "
            "ipv4-unicast(f); as4 65000; capability-70");
}

TEST(BgpMessage, OpenFourOctetAsUsesAsTrans) {
  Open o = Open::make(4200000001u, 90, 0x0A000001);
  EXPECT_EQ(o.my_as, kAsTrans);
  Bytes wire = H(kMarker + "0025 01 04 5ba0 005a 0a000001 08 02 06 41 04 fa56ea01");
  EXPECT_EQ(Hex(encode_open(o)), Hex(wire));
  MessageResult r = decode_message(wire, kAs4);
  ASSERT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(std::get<Open>(r.message).asn(), 4200000001u);
}

TEST(BgpMessage, OpenWithoutParameters) {
  Bytes wire = H(kMarker + "001d 01 04 fde9 0000 c0000202 00");
  MessageResult r = decode_message(wire, kAs4);
  ASSERT_EQ(r.outcome, Outcome::kOk);
  const Open& o = std::get<Open>(r.message);
  EXPECT_EQ(o.asn(), 65001u);
  EXPECT_FALSE(o.caps.as4);
  EXPECT_EQ(encode_open(o), wire);
}

TEST(BgpMessage, OpenErrors) {
  auto code = [](const std::string& body_hex) {
    Bytes body = H(body_hex);
    Bytes msg = H(kMarker);
    size_t len = 19 + body.size();
    msg.push_back(uint8_t(len >> 8));
    msg.push_back(uint8_t(len));
    msg.push_back(1);
    msg.insert(msg.end(), body.begin(), body.end());
    MessageResult r = decode_message(msg, kAs4);
    EXPECT_EQ(r.outcome, Outcome::kSessionReset);
    return r.notification;
  };
  EXPECT_EQ(code("03 fde9 00b4 c0000201 00"), (Notification{2, 1, {0, 4}}));
  EXPECT_EQ(code("04 fde9 0002 c0000201 00"), (Notification{2, 6, {}}));
  EXPECT_EQ(code("04 fde9 00b4 00000000 00"), (Notification{2, 3, {}}));
  EXPECT_EQ(code("04 fde9 00b4 c0000201 04 01 02 0000"), (Notification{2, 4, {}}));
  EXPECT_EQ(code("04 fde9 00b4 c0000201 05 02 03 41 01 00"), (Notification{2, 0, {}}));
  EXPECT_EQ(code("04 fde9 00b4 c0000201 06 02 04 41 04 0000"), (Notification{2, 0, {}}));
}

TEST(BgpMessage, KeepaliveKnownBytes) {
  Bytes wire = H(kMarker + "0013 04");
  EXPECT_EQ(encode_keepalive(), wire);
  MessageResult r = decode_message(wire, kAs4);
  ASSERT_EQ(r.outcome, Outcome::kOk);
  EXPECT_TRUE(std::holds_alternative<Keepalive>(r.message));
  EXPECT_EQ(to_string(r.message), "KEEPALIVE");
}

TEST(BgpMessage, NotificationKnownBytes) {
  // Cease / Administrative Shutdown with an RFC 8203 shutdown communication "bye".
  Bytes wire = H(kMarker + "0019 03 06 02 03 627965");
  Notification n{err::kCease, err::cease::kAdminShutdown, {3, 'b', 'y', 'e'}};
  EXPECT_EQ(encode_notification(n), wire);
  MessageResult r = decode_message(wire, kAs4);
  ASSERT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(std::get<Notification>(r.message), n);
  EXPECT_EQ(to_string(r.message), "NOTIFICATION Cease / Administrative Shutdown data 03627965");
  EXPECT_EQ(error_name(3, 11), "UPDATE Message Error / Malformed AS_PATH");
  EXPECT_EQ(error_name(4, 0), "Hold Timer Expired");
}

TEST(BgpMessage, RouteRefreshKnownBytes) {
  Bytes wire = H(kMarker + "0017 05 0002 00 01");
  RouteRefresh rr{kIpv6Unicast};
  EXPECT_EQ(encode_route_refresh(rr), wire);
  MessageResult r = decode_message(wire, kAs4);
  ASSERT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(std::get<RouteRefresh>(r.message), rr);
  EXPECT_EQ(to_string(r.message), "ROUTE-REFRESH ipv6-unicast");
}

TEST(BgpMessage, RouteRefreshBadLength) {
  Bytes wire = H(kMarker + "0018 05 0002 00 01 00");
  MessageResult r = decode_message(wire, kAs4);
  ASSERT_EQ(r.outcome, Outcome::kSessionReset);
  EXPECT_EQ(r.notification.code, err::kRouteRefresh);
  EXPECT_EQ(r.notification.subcode, err::route_refresh::kInvalidLength);
  EXPECT_EQ(r.notification.data, wire);
}

// RFC 4271 s6.1 header errors.
Notification HeaderError(const std::string& hex) {
  Bytes b = H(hex);
  HeaderResult h = decode_header(b);
  EXPECT_FALSE(h.ok);
  MessageResult r = decode_message(b, kAs4);
  EXPECT_EQ(r.outcome, Outcome::kSessionReset);
  EXPECT_EQ(r.notification, h.error);
  return h.error;
}

TEST(BgpHeader, Good) {
  HeaderResult h = decode_header(H(kMarker + "0017 02 0000 0000"));
  ASSERT_TRUE(h.ok);
  EXPECT_EQ(h.header.length, 23);
  EXPECT_EQ(h.header.type, MsgType::kUpdate);
}

TEST(BgpHeader, BadMarker) {
  EXPECT_EQ(HeaderError("ffffffffffffffffffffffffffffff7f 0013 04"), (Notification{1, 1, {}}));
}

TEST(BgpHeader, LengthBelow19) {
  EXPECT_EQ(HeaderError(kMarker + "0012 04"), (Notification{1, 2, {0x00, 0x12}}));
}

TEST(BgpHeader, LengthAbove4096) {
  EXPECT_EQ(HeaderError(kMarker + "1001 02"), (Notification{1, 2, {0x10, 0x01}}));
}

TEST(BgpHeader, LengthBelowTypeMinimum) {
  EXPECT_EQ(HeaderError(kMarker + "001c 01"), (Notification{1, 2, {0x00, 0x1c}}));  // OPEN 28
  EXPECT_EQ(HeaderError(kMarker + "0016 02"), (Notification{1, 2, {0x00, 0x16}}));  // UPDATE 22
  EXPECT_EQ(HeaderError(kMarker + "0014 03"), (Notification{1, 2, {0x00, 0x14}}));  // NOTIF 20
  EXPECT_EQ(HeaderError(kMarker + "0014 04"), (Notification{1, 2, {0x00, 0x14}}));  // KA 20
}

TEST(BgpHeader, BadType) {
  EXPECT_EQ(HeaderError(kMarker + "0013 06"), (Notification{1, 3, {6}}));
  EXPECT_EQ(HeaderError(kMarker + "0013 00"), (Notification{1, 3, {0}}));
}

TEST(BgpHeader, TooShortBuffer) {
  HeaderResult h = decode_header(H(kMarker + "00"));
  EXPECT_FALSE(h.ok);
}

TEST(BgpHeader, LengthFieldDisagreesWithBuffer) {
  MessageResult r = decode_message(H(kMarker + "0014 04"), kAs4);  // 19 bytes, says 20
  EXPECT_EQ(r.outcome, Outcome::kSessionReset);
  EXPECT_EQ(r.notification.subcode, err::header::kBadLength);
}

}  // namespace
}  // namespace espgw::bgp
