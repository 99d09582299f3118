#include "dataplane/tables/replay.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace espgw::dp {
namespace {

TEST(Replay, InOrderDuplicatesAndWindowEdge) {
  ReplayWindow w;
  w.init(64, false);
  EXPECT_FALSE(w.check(0));  // sequence numbers start at 1
  for (uint64_t s = 1; s <= 100; ++s) EXPECT_TRUE(w.update(s)) << s;
  EXPECT_FALSE(w.update(100));  // duplicate
  EXPECT_FALSE(w.update(37));   // 100 - 37 = 63 < 64 but seen
  EXPECT_FALSE(w.check(36));    // outside: 100 - 36 >= 64
  EXPECT_EQ(w.top(), 100u);
}

TEST(Replay, OutOfOrderWithinWindowAccepted) {
  ReplayWindow w;
  w.init(128, false);
  EXPECT_TRUE(w.update(200));
  EXPECT_TRUE(w.update(150));
  EXPECT_TRUE(w.update(73));   // 200 - 73 = 127 < 128
  EXPECT_FALSE(w.update(72));  // 128 behind
  EXPECT_FALSE(w.update(150));
  EXPECT_TRUE(w.update(199));
}

TEST(Replay, CheckDoesNotMoveTheWindow) {
  ReplayWindow w;
  w.init(64, false);
  EXPECT_TRUE(w.update(10));
  EXPECT_TRUE(w.check(1000));  // an unauthenticated packet: check only
  EXPECT_EQ(w.top(), 10u);
  EXPECT_TRUE(w.update(5));
}

TEST(Replay, LargeJumpClearsOldBits) {
  ReplayWindow w;
  w.init(4096, false);
  for (uint64_t s = 1; s <= 4096; ++s) ASSERT_TRUE(w.update(s));
  EXPECT_TRUE(w.update(100000));
  // everything within the new window is unseen, although the blocks held bits before
  for (uint64_t s = 100000 - 4095; s < 100000; s += 61) EXPECT_TRUE(w.check(s)) << s;
  EXPECT_FALSE(w.check(100000 - 4096));
}

TEST(Replay, SizesAreRoundedAndClamped) {
  ReplayWindow w;
  w.init(10, false);
  EXPECT_EQ(w.size(), 64u);
  w.init(100, false);
  EXPECT_EQ(w.size(), 128u);
  w.init(100000, false);
  EXPECT_EQ(w.size(), 4096u);
}

TEST(Replay, MatchesAReferenceSetUnderRandomOrder) {
  for (uint32_t size : {64u, 1024u, 4096u}) {
    ReplayWindow w;
    w.init(size, false);
    std::set<uint64_t> seen;
    uint64_t top = 0;
    std::mt19937_64 rng(size);
    for (int i = 0; i < 200000; ++i) {
      uint64_t s = top + 40 - rng() % (size + 200);  // around the window's lower edge
      if (int64_t(s) <= 0) s = 1 + rng() % 50;
      bool expect = !(s + size <= top) && !seen.count(s);
      ASSERT_EQ(w.update(s), expect) << "size " << size << " seq " << s << " top " << top;
      if (expect) {
        seen.insert(s);
        top = std::max(top, s);
      }
    }
  }
}

TEST(Replay, EsnInfersHighBitsAcrossTheWrap) {
  ReplayWindow w;
  w.init(128, true);
  const uint64_t base = 0xfffffff0ull;
  EXPECT_TRUE(w.update(base));
  // low half wrapped: the sender moved into the next 2^32 subspace
  EXPECT_EQ(w.infer(5), (1ull << 32) | 5);
  EXPECT_TRUE(w.update(w.infer(5)));
  // a late packet from before the wrap is still inside the window
  EXPECT_EQ(w.infer(0xfffffff8u), 0xfffffff8ull);
  EXPECT_TRUE(w.update(w.infer(0xfffffff8u)));
  EXPECT_FALSE(w.update(w.infer(0xfffffff8u)));
  // far below the window in the new subspace: interpreted as the following subspace
  EXPECT_EQ(w.infer(0x80000000u), 0x180000000ull);
}

TEST(Replay, EsnAcceptsSequenceZeroOfLaterSubspaces) {
  ReplayWindow w;
  w.init(64, true);
  EXPECT_TRUE(w.update((1ull << 32) - 1));
  EXPECT_TRUE(w.update(w.infer(0)));  // 2^32: low half 0 is valid with ESN
  EXPECT_EQ(w.top(), 1ull << 32);
}

}  // namespace
}  // namespace espgw::dp
