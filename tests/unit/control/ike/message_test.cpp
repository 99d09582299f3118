// IKEv2 message and payload encoding: known bytes (hand-assembled from RFC 7296 section 3) and
// round trips for every payload.
#include "control/ike/message.h"

#include <gtest/gtest.h>

#include "tests/unit/control/ike/test_util.h"

namespace espgw::ike {
namespace {

using test::hex;
using test::rep;

// IKE_SA_INIT request: SA(aes128gcm16-prfsha256-ecp256) KE(19) Ni N(NAT_D_S) N(NAT_D_D).
const std::string kSaInitHex =
    // IKE header: SPIi, SPIr=0, next=SA(33), version 2.0, IKE_SA_INIT(34), flags I, msgid 0, len
    // 232
    "0102030405060708 0000000000000000 21 20 22 08 00000000 000000e8"
    // SA: next=KE(34), len 40 | proposal: last, len 36, #1, IKE, spi size 0, 3 transforms
    "22 00 0028 | 00 00 0024 01 01 00 03"
    // ENCR AES-GCM-16 (20), Key Length 128 (TV attribute 14)
    "03 00 000c 01 00 0014 800e 0080"
    // PRF HMAC-SHA2-256 (5)
    "03 00 0008 02 00 0005"
    // DH 19, last transform
    "00 00 0008 04 00 0013"
    // KE: next=Nonce(40), len 72, group 19, reserved, 64 octets x||y
    "28 00 0048 0013 0000" +
    rep(0x11, 64) +
    // Nonce: next=Notify(41), len 36
    "29 00 0024" + rep(0x22, 32) +
    // Notify NAT_DETECTION_SOURCE_IP (16388): next=Notify, len 28, proto 0, spi size 0
    "29 00 001c 00 00 4004" + rep(0x33, 20) +
    // Notify NAT_DETECTION_DESTINATION_IP (16389): last payload
    "00 00 001c 00 00 4005" + rep(0x44, 20);

Message sa_init_message() {
  Message m;
  m.hdr.spi_i = 0x0102030405060708;
  m.hdr.exchange = ExchangeType::kIkeSaInit;
  m.hdr.flags = kFlagInitiator;
  Proposal p;
  p.transforms = {{TransformType::kEncr, encr::kAesGcm16, 128},
                  {TransformType::kPrf, prf::kHmacSha256, 0},
                  {TransformType::kDh, dh::kEcp256, 0}};
  m.payloads.push_back(make_payload(SaPayload{{p}}));
  m.payloads.push_back(make_payload(KePayload{dh::kEcp256, Bytes(64, 0x11)}));
  m.payloads.push_back(make_payload(NoncePayload{Bytes(32, 0x22)}));
  m.payloads.push_back(
      make_payload(NotifyPayload::make(NotifyType::kNatDetectionSourceIp, Bytes(20, 0x33))));
  m.payloads.push_back(
      make_payload(NotifyPayload::make(NotifyType::kNatDetectionDestinationIp, Bytes(20, 0x44))));
  return m;
}

TEST(Message, SaInitKnownBytesEncode) {
  Bytes wire = encode_message(sa_init_message());
  EXPECT_EQ(test::to_hex(wire), test::to_hex(hex(kSaInitHex)));
}

TEST(Message, SaInitKnownBytesDecode) {
  Bytes wire = hex(kSaInitHex);
  Message m;
  DecodeStatus st = decode_message(wire, m);
  ASSERT_TRUE(st.ok()) << to_string(st.error);
  EXPECT_EQ(m.hdr.length, 232u);
  EXPECT_TRUE(m.hdr.initiator());
  EXPECT_FALSE(m.hdr.response());
  EXPECT_EQ(m.hdr.next, PayloadType::kSa);
  Message expect = sa_init_message();
  expect.hdr.next = PayloadType::kSa;
  expect.hdr.length = 232;
  EXPECT_EQ(m, expect);
  ASSERT_NE(m.sa(), nullptr);
  EXPECT_EQ(m.sa()->proposals[0].transforms[0].key_length, 128);
  ASSERT_NE(m.ke(), nullptr);
  EXPECT_EQ(m.ke()->group, 19);
  ASSERT_NE(m.notify(NotifyType::kNatDetectionDestinationIp), nullptr);
  EXPECT_EQ(m.notifies().size(), 2u);
  EXPECT_EQ(m.describe(),
            "IKE_SA_INIT request 0 [ SA KE No N(NAT_DETECTION_SOURCE_IP) "
            "N(NAT_DETECTION_DESTINATION_IP) ]");
}

TEST(Message, HeaderErrors) {
  Bytes wire = hex(kSaInitHex);
  Message m;
  // Truncated header.
  EXPECT_EQ(decode_message(ByteView(wire).first(20), m).error, DecodeError::kTruncated);
  // Length field does not match the datagram.
  EXPECT_EQ(decode_message(ByteView(wire).first(wire.size() - 1), m).error,
            DecodeError::kBadLength);
  // Major version 3 -> INVALID_MAJOR_VERSION.
  Bytes v3 = wire;
  v3[17] = 0x30;
  DecodeStatus st = decode_message(v3, m);
  EXPECT_EQ(st.error, DecodeError::kUnsupportedVersion);
  EXPECT_EQ(st.notify(), NotifyType::kInvalidMajorVersion);
  // A payload length running past the end.
  Bytes bad = wire;
  bad[28 + 2] = 0x7f;
  st = decode_message(bad, m);
  EXPECT_EQ(st.error, DecodeError::kTruncated);
  EXPECT_EQ(st.notify(), NotifyType::kInvalidSyntax);
  EXPECT_EQ(st.payload_type, uint8_t(PayloadType::kSa));
  // A payload length below the generic header.
  bad = wire;
  bad[28 + 2] = 0;
  bad[28 + 3] = 3;
  EXPECT_EQ(decode_message(bad, m).error, DecodeError::kBadLength);
  // Nonce too short (shrink the nonce payload to 15 octets -> message length changes too).
  Message small = sa_init_message();
  std::get<NoncePayload>(small.payloads[2].body).data.resize(15);
  EXPECT_EQ(decode_message(encode_message(small), m).error, DecodeError::kInvalidSyntax);
  std::get<NoncePayload>(small.payloads[2].body).data.resize(257);
  EXPECT_EQ(decode_message(encode_message(small), m).error, DecodeError::kInvalidSyntax);
}

// Builds a message: header + N(INITIAL_CONTACT) + unknown payload 200 (critical or not) + Nonce.
Bytes with_unknown(bool critical) {
  std::string h = "0102030405060708 1112131415161718 29 20 25 20 00000005 ";
  std::string n = "c8 00 0008 00 00 4000";  // Notify INITIAL_CONTACT, next = 200
  std::string u = std::string("28 ") + (critical ? "80" : "00") + " 0008 deadbeef";  // type 200
  std::string no = "00 00 0014" + rep(0x55, 16);                                     // Nonce
  size_t len = 28 + 8 + 8 + 20;
  char l[9];
  std::snprintf(l, sizeof l, "%08zx", len);
  return hex(h + l + n + u + no);
}

TEST(Message, UnknownNonCriticalPayloadIsSkipped) {
  Message m;
  DecodeStatus st = decode_message(with_unknown(false), m);
  ASSERT_TRUE(st.ok()) << to_string(st.error);
  ASSERT_EQ(m.payloads.size(), 2u);
  EXPECT_EQ(m.payloads[0].type, PayloadType::kNotify);
  EXPECT_EQ(m.payloads[1].type, PayloadType::kNonce);
  EXPECT_EQ(m.hdr.exchange, ExchangeType::kInformational);
  EXPECT_TRUE(m.hdr.response());
}

TEST(Message, UnknownCriticalPayloadIsRejected) {
  Message m;
  DecodeStatus st = decode_message(with_unknown(true), m);
  EXPECT_EQ(st.error, DecodeError::kUnsupportedCritical);
  EXPECT_EQ(st.payload_type, 200);
  EXPECT_EQ(st.notify(), NotifyType::kUnsupportedCriticalPayload);
  NotifyPayload n = NotifyPayload::unsupported_critical(st.payload_type);
  EXPECT_EQ(n.data, Bytes{200});
}

TEST(Message, KnownPayloadCriticalBitIgnored) {
  Bytes wire = hex(kSaInitHex);
  wire[28 + 1] = 0x80;  // critical bit on the SA payload
  Message m;
  EXPECT_TRUE(decode_message(wire, m).ok());
}

TEST(Message, EncryptedPayloadEndsChain) {
  Message m;
  m.hdr.exchange = ExchangeType::kIkeAuth;
  m.hdr.spi_i = 1;
  m.hdr.spi_r = 2;
  m.hdr.message_id = 1;
  m.payloads.push_back(
      {PayloadType::kEncrypted, EncryptedPayload{PayloadType::kIdi, Bytes(40, 7)}});
  Bytes wire = encode_message(m);
  EXPECT_EQ(wire[16], uint8_t(PayloadType::kEncrypted));
  EXPECT_EQ(wire[28], uint8_t(PayloadType::kIdi));  // SK's Next Payload = first inner payload
  Message d;
  ASSERT_TRUE(decode_message(wire, d).ok());
  ASSERT_NE(d.encrypted(), nullptr);
  EXPECT_EQ(d.encrypted()->inner_next, PayloadType::kIdi);
  EXPECT_EQ(d.encrypted()->data, Bytes(40, 7));
  // Bytes after the SK payload are rejected.
  Bytes extra = wire;
  extra[28 + 3] -= 4;  // SK length shorter: 4 octets trail it
  EXPECT_EQ(decode_message(extra, d).error, DecodeError::kInvalidSyntax);
}

TEST(Payloads, DeleteKnownBytes) {
  DeletePayload d{ProtocolId::kEsp, {0x11223344, 0x55667788}};
  Bytes b;
  Writer w(b);
  d.encode(w);
  EXPECT_EQ(test::to_hex(b), "030400021122334455667788");
  DeletePayload back;
  ASSERT_EQ(DeletePayload::decode(Reader(b), back), DecodeError::kOk);
  EXPECT_EQ(back, d);
  // IKE SA delete: SPI size 0, no SPIs.
  DeletePayload ike{ProtocolId::kIke, {}};
  Bytes bi;
  Writer wi(bi);
  ike.encode(wi);
  EXPECT_EQ(test::to_hex(bi), "01000000");
  // Count disagrees with the data.
  Bytes bad = hex("03040003 11223344 55667788");
  EXPECT_EQ(DeletePayload::decode(Reader(bad), back), DecodeError::kBadLength);
  bad = hex("03080001 1122334455667788");  // ESP with an 8-octet SPI
  EXPECT_EQ(DeletePayload::decode(Reader(bad), back), DecodeError::kInvalidSyntax);
}

TEST(Payloads, TsKnownBytes) {
  auto p4 = Prefix::parse("10.0.0.0/24");
  TsPayload ts{{TrafficSelector::from_prefix(*p4)}};
  Bytes b;
  Writer w(b);
  ts.encode(w);
  EXPECT_EQ(test::to_hex(b),
            "01000000"
            "07000010"
            "0000ffff"
            "0a000000"
            "0a0000ff");
  TsPayload back;
  ASSERT_EQ(TsPayload::decode(Reader(b), back), DecodeError::kOk);
  EXPECT_EQ(back, ts);
  EXPECT_EQ(back.selectors[0].to_prefix(), p4);
  EXPECT_EQ(back.selectors[0].str(), "10.0.0.0/24");

  // IPv6 with protocol and a port range.
  auto p6 = Prefix::parse("2001:db8::/32");
  TrafficSelector s6 = TrafficSelector::from_prefix(*p6, 6, 443, 443);
  TsPayload ts6{{s6, TrafficSelector::from_prefix(*p4)}};
  Bytes b6;
  Writer w6(b6);
  ts6.encode(w6);
  EXPECT_EQ(test::to_hex(ByteView(b6).first(4 + 40)),
            "02000000"
            "08060028"
            "01bb01bb"
            "20010db8000000000000000000000000"
            "20010db8ffffffffffffffffffffffff");
  ASSERT_EQ(TsPayload::decode(Reader(b6), back), DecodeError::kOk);
  EXPECT_EQ(back, ts6);
  EXPECT_EQ(back.selectors[0].to_prefix(), p6);
  EXPECT_EQ(back.selectors[0].str(), "2001:db8::/32[6/443]");
}

TEST(Payloads, TsPrefixHelpers) {
  for (const char* s :
       {"0.0.0.0/0", "192.168.1.7/32", "172.16.0.0/12", "::/0", "fe80::/10", "2001:db8::1/128"}) {
    auto p = Prefix::parse(s);
    ASSERT_TRUE(p) << s;
    EXPECT_EQ(TrafficSelector::from_prefix(*p).to_prefix(), p) << s;
  }
  TrafficSelector r;  // 10.0.0.1 .. 10.0.0.2 is not a prefix
  r.start = *IpAddr::parse("10.0.0.1");
  r.end = *IpAddr::parse("10.0.0.2");
  EXPECT_FALSE(r.to_prefix());
  EXPECT_EQ(r.str(), "10.0.0.1..10.0.0.2");
  r.end = *IpAddr::parse("10.0.0.1");
  EXPECT_EQ(r.to_prefix(), Prefix::parse("10.0.0.1/32"));
}

TEST(Payloads, TsErrors) {
  TsPayload back;
  EXPECT_EQ(TsPayload::decode(Reader(hex("00000000")), back), DecodeError::kInvalidSyntax);
  // Selector length 20 for IPv4.
  EXPECT_EQ(
      TsPayload::decode(Reader(hex("01000000 07000014 0000ffff 0a000000 0a0000ff 00000000")), back),
      DecodeError::kBadLength);
  // Two announced, one present.
  EXPECT_EQ(TsPayload::decode(Reader(hex("02000000 07000010 0000ffff 0a000000 0a0000ff")), back),
            DecodeError::kTruncated);
}

TEST(Payloads, NotifyWithData) {
  NotifyPayload n = NotifyPayload::invalid_ke(dh::kEcp256);
  Bytes b;
  Writer w(b);
  n.encode(w);
  EXPECT_EQ(test::to_hex(b), "000000110013");
  NotifyPayload back;
  ASSERT_EQ(NotifyPayload::decode(Reader(b), back), DecodeError::kOk);
  EXPECT_EQ(back.ke_group(), dh::kEcp256);
  EXPECT_EQ(back, n);

  NotifyPayload rekey =
      NotifyPayload::make_child(NotifyType::kRekeySa, ProtocolId::kEsp, 0xaabbccdd);
  Bytes r;
  Writer wr(r);
  rekey.encode(wr);
  EXPECT_EQ(test::to_hex(r), "03044009aabbccdd");
  ASSERT_EQ(NotifyPayload::decode(Reader(r), back), DecodeError::kOk);
  EXPECT_EQ(back.spi32(), 0xaabbccddu);

  // COOKIE with data.
  NotifyPayload c = NotifyPayload::make(NotifyType::kCookie, hex("0000000112345678"));
  Bytes cb;
  Writer wc(cb);
  c.encode(wc);
  EXPECT_EQ(test::to_hex(cb), "000040060000000112345678");

  // INVALID_KE_PAYLOAD without the group, NAT-D of the wrong size, REKEY_SA without SPI.
  EXPECT_EQ(NotifyPayload::decode(Reader(hex("00000011")), back), DecodeError::kInvalidSyntax);
  EXPECT_EQ(NotifyPayload::decode(Reader(hex("00004004 0011")), back), DecodeError::kInvalidSyntax);
  EXPECT_EQ(NotifyPayload::decode(Reader(hex("03004009")), back), DecodeError::kInvalidSyntax);
  // SPI size past the end.
  EXPECT_EQ(NotifyPayload::decode(Reader(hex("0308400911")), back), DecodeError::kTruncated);
}

template <class T>
T round_trip(const T& v) {
  Bytes b;
  Writer w(b);
  v.encode(w);
  T back;
  EXPECT_EQ(T::decode(Reader(b), back), DecodeError::kOk);
  Bytes again;
  Writer w2(again);
  back.encode(w2);
  EXPECT_EQ(b, again);
  return back;
}

TEST(Payloads, RoundTripEveryPayload) {
  Proposal ike;
  ike.transforms = {{TransformType::kEncr, encr::kAesCbc, 256},
                    {TransformType::kEncr, encr::kAesCbc, 128},
                    {TransformType::kPrf, prf::kHmacSha384, 0},
                    {TransformType::kInteg, integ::kHmacSha384_192, 0},
                    {TransformType::kDh, dh::kModp3072, 0}};
  Proposal esp;
  esp.number = 2;
  esp.protocol = ProtocolId::kEsp;
  esp.spi = {1, 2, 3, 4};
  esp.transforms = {{TransformType::kEncr, encr::kChacha20Poly1305, 0},
                    {TransformType::kEsn, esn::kNo, 0}};
  SaPayload sa{{ike, esp}};
  EXPECT_EQ(round_trip(sa), sa);
  KePayload ke{dh::kCurve25519, Bytes(32, 9)};
  EXPECT_EQ(round_trip(ke), ke);
  for (const IdPayload& id :
       {IdPayload::from_addr(*IpAddr::parse("192.0.2.1")),
        IdPayload::from_addr(*IpAddr::parse("2001:db8::1")), IdPayload::fqdn("gw.example.net"),
        IdPayload::key_id(Bytes{0xde, 0xad})})
    EXPECT_EQ(round_trip(id), id);
  EXPECT_EQ(IdPayload::fqdn("gw.example.net").str(), "gw.example.net");
  EXPECT_EQ(IdPayload::from_addr(*IpAddr::parse("192.0.2.1")).str(), "192.0.2.1");
  EXPECT_EQ(IdPayload::key_id(Bytes{0xde, 0xad}).str(), "keyid:dead");
  EXPECT_EQ(test::to_hex(IdPayload::from_addr(*IpAddr::parse("192.0.2.1")).body()),
            "01000000c0000201");
  AuthPayload auth{AuthMethod::kSharedKeyMic, Bytes(32, 5)};
  EXPECT_EQ(round_trip(auth), auth);
  NoncePayload no{Bytes(256, 1)};
  EXPECT_EQ(round_trip(no), no);
  for (NotifyType t :
       {NotifyType::kNoProposalChosen, NotifyType::kAuthenticationFailed,
        NotifyType::kTsUnacceptable, NotifyType::kInvalidSyntax, NotifyType::kInvalidMessageId,
        NotifyType::kTemporaryFailure, NotifyType::kNoAdditionalSas, NotifyType::kUseTransportMode,
        NotifyType::kEspTfcPaddingNotSupported, NotifyType::kNonFirstFragmentsAlso,
        NotifyType::kInitialContact}) {
    NotifyPayload n = NotifyPayload::make(t);
    EXPECT_EQ(round_trip(n), n);
  }
  for (NotifyType t : {NotifyType::kInvalidSpi, NotifyType::kChildSaNotFound}) {
    NotifyPayload n = NotifyPayload::make_child(t, ProtocolId::kEsp, 0xc0ffee00);
    EXPECT_EQ(round_trip(n), n);
  }
  NotifyPayload sig =
      NotifyPayload::make(NotifyType::kSignatureHashAlgorithms, hex("000200030004"));
  EXPECT_EQ(round_trip(sig).data, hex("000200030004"));
  DeletePayload del{ProtocolId::kEsp, {1, 2, 3}};
  EXPECT_EQ(round_trip(del), del);
  VendorIdPayload vid{Bytes{'e', 's', 'p', 'g', 'w'}};
  EXPECT_EQ(round_trip(vid), vid);
  TsPayload ts{{TrafficSelector::from_prefix(*Prefix::parse("0.0.0.0/0")),
                TrafficSelector::from_prefix(*Prefix::parse("::/0"), 17, 500, 4500)}};
  EXPECT_EQ(round_trip(ts), ts);
  EncryptedPayload sk{PayloadType::kIdi, Bytes(48, 3)};
  EXPECT_EQ(round_trip(sk).data, sk.data);
  RawPayload raw{Bytes{1, 2, 3}};
  EXPECT_EQ(round_trip(raw), raw);

  // A whole message with all of them in a chain.
  Message m;
  m.hdr.exchange = ExchangeType::kCreateChildSa;
  m.hdr.flags = kFlagResponse;
  m.hdr.message_id = 7;
  m.payloads = {make_payload(sa),
                make_payload(ke),
                make_idi(IdPayload::fqdn("a")),
                make_idr(IdPayload::fqdn("b")),
                make_payload(auth),
                make_payload(no),
                make_payload(sig),
                make_payload(del),
                make_payload(vid),
                make_tsi(ts),
                make_tsr(ts),
                {PayloadType::kConfig, raw}};
  Bytes wire = encode_message(m);
  Message back;
  ASSERT_TRUE(decode_message(wire, back).ok());
  m.hdr.next = PayloadType::kSa;
  m.hdr.length = uint32_t(wire.size());
  EXPECT_EQ(back, m);
  EXPECT_EQ(back.describe(),
            "CREATE_CHILD_SA response 7 [ SA KE IDi IDr AUTH No N(SIGNATURE_HASH_ALGORITHMS) "
            "D(ESP) V TSi TSr CP ]");
}

TEST(Payloads, SaErrorsAndAttributes) {
  SaPayload sa;
  // Empty SA.
  EXPECT_EQ(SaPayload::decode(Reader(Bytes{}), sa), DecodeError::kInvalidSyntax);
  // Proposal says 2 transforms, carries 1.
  EXPECT_EQ(SaPayload::decode(Reader(hex("00000010 01010002 00000008 01000014")), sa),
            DecodeError::kInvalidSyntax);
  // Last-substructure says "more" but nothing follows.
  EXPECT_EQ(SaPayload::decode(Reader(hex("02000010 01010001 00000008 01000014")), sa),
            DecodeError::kInvalidSyntax);
  // Transform length overruns the proposal.
  EXPECT_EQ(SaPayload::decode(Reader(hex("00000010 01010001 00000009 01000014")), sa),
            DecodeError::kTruncated);
  // An unknown TV attribute and a TLV attribute mark the proposal.
  ASSERT_EQ(
      SaPayload::decode(Reader(hex("00000018 01010001 00000010 0100000c 800e0100 80630001")), sa),
      DecodeError::kOk);
  EXPECT_TRUE(sa.proposals[0].unknown_attribute);
  EXPECT_EQ(sa.proposals[0].transforms[0].key_length, 256);
  ASSERT_EQ(SaPayload::decode(Reader(hex("00000016 01010001 0000000e 0100000c 00630002 abcd")), sa),
            DecodeError::kOk);
  EXPECT_TRUE(sa.proposals[0].unknown_attribute);
}

TEST(Payloads, IdErrors) {
  IdPayload id;
  EXPECT_EQ(IdPayload::decode(Reader(hex("01000000 c00002")), id), DecodeError::kInvalidSyntax);
  EXPECT_EQ(IdPayload::decode(Reader(hex("02000000")), id), DecodeError::kInvalidSyntax);
  EXPECT_EQ(IdPayload::decode(Reader(hex("0200")), id), DecodeError::kTruncated);
}

}  // namespace
}  // namespace espgw::ike
