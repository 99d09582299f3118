// The shared bounds-checked reader and writer (control/wire/): one behaviour for BGP and IKE.
#include <gtest/gtest.h>

#include "control/wire/reader.h"
#include "control/wire/writer.h"

namespace espgw::wire {
namespace {

TEST(WireReader, ReadsBigEndian) {
  const Bytes b{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c,
                0x0d, 0x0e, 0x0f, 0x10, 0x11};
  Reader r(b);
  EXPECT_EQ(r.u8(), 0x01);
  EXPECT_EQ(r.u16(), 0x0203);
  EXPECT_EQ(r.u32(), 0x04050607u);
  EXPECT_EQ(r.u64(), 0x08090a0b0c0d0e0full);
  EXPECT_EQ(r.offset(), 15u);
  EXPECT_EQ(r.rest(), (Bytes{0x10, 0x11}));
  EXPECT_TRUE(r.empty());
  EXPECT_TRUE(r.ok());
}

TEST(WireReader, ShortReadFailsWithoutMovingAndSticks) {
  const Bytes b{0xaa, 0xbb, 0xcc};
  Reader r(b);
  EXPECT_EQ(r.u8(), 0xaa);
  EXPECT_EQ(r.u32(), 0u);  // 2 left
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.offset(), 1u);
  EXPECT_EQ(r.remaining(), 2u);
  // Sticky: a read that would fit fails too, and still does not move.
  EXPECT_EQ(r.u8(), 0);
  EXPECT_TRUE(r.view(1).empty());
  EXPECT_TRUE(r.rest().empty());
  EXPECT_EQ(r.offset(), 1u);
  EXPECT_FALSE(r.ok());
}

TEST(WireReader, U64IsAllOrNothing) {
  const Bytes b{1, 2, 3, 4, 5, 6, 7};
  Reader r(b);
  EXPECT_EQ(r.u64(), 0u);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.offset(), 0u);
}

TEST(WireReader, SubReaderOverLengthDelimitedField) {
  const Bytes b{0x02, 0xde, 0xad, 0xff};
  Reader r(b);
  Reader s = r.sub(r.u8());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(s.u16(), 0xdead);
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.u8(), 0);  // the sub-reader ends at its field
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(r.ok());  // ... and its failure is its own
  EXPECT_EQ(r.u8(), 0xff);

  Reader over(b);
  Reader t = over.sub(9);
  EXPECT_FALSE(over.ok());
  EXPECT_FALSE(t.ok());
  EXPECT_EQ(over.offset(), 0u);
}

TEST(WireReader, SkipAndView) {
  const Bytes b{1, 2, 3, 4};
  Reader r(b);
  r.skip(1);
  ByteView v = r.view(2);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0], 2);
  EXPECT_EQ(r.bytes(1), Bytes{4});
  r.skip(1);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.offset(), 4u);
}

TEST(WireReader, EmptyAndDefault) {
  Reader r;
  EXPECT_TRUE(r.empty());
  EXPECT_TRUE(r.view(0).empty());
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.u8(), 0);
  EXPECT_FALSE(r.ok());
}

TEST(WireWriter, WritesBigEndianAndPatches) {
  Bytes out;
  Writer w(out);
  w.u16(0);
  w.u8(0x01);
  w.u32(0x02030405);
  w.u64(0x060708090a0b0c0dull);
  w.bytes(Bytes{0xee});
  w.zeros(2);
  w.patch_u16(0, uint16_t(w.size()));
  EXPECT_EQ(out, (Bytes{0x00, 0x12, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
                        0x0b, 0x0c, 0x0d, 0xee, 0x00, 0x00}));
  w.patch_u32(2, 0xa1a2a3a4);
  EXPECT_EQ(out[2], 0xa1);
  EXPECT_EQ(out[5], 0xa4);
}

}  // namespace
}  // namespace espgw::wire
