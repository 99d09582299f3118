// Sequence-number reservations of manually keyed SAs (control/state/seq_store.h).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "control/state/seq_store.h"

namespace espgw::state {
namespace {

namespace fs = std::filesystem;

class SeqStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("espgw-seq-test-" + std::to_string(getpid()));
    fs::remove_all(dir);
    path = (dir / "sub" / "gw-0.seq").string();
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string read() const {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  fs::path dir;
  std::string path;
  const uint8_t key1[20] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
  const uint8_t key2[20] = {9, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
};

TEST_F(SeqStoreTest, FirstStartCreatesTheDirectoryAndHasNoReservation) {
  SeqStore s;
  std::string err;
  ASSERT_TRUE(s.open(path, &err)) << err;
  EXPECT_TRUE(fs::is_directory(dir / "sub"));
  EXPECT_EQ(fs::status(dir / "sub").permissions() & fs::perms::all, fs::perms::owner_all);
  EXPECT_EQ(s.reserved(SeqStore::sa_key(0x1001, key1, sizeof key1)), 0u);
}

TEST_F(SeqStoreTest, ReservationsSurviveAReopen) {
  const std::string k1 = SeqStore::sa_key(0x1001, key1, sizeof key1);
  const std::string k2 = SeqStore::sa_key(0x1001, key2, sizeof key2);
  EXPECT_NE(k1, k2);  // a new key is a new record
  {
    SeqStore s;
    std::string err;
    ASSERT_TRUE(s.open(path, &err)) << err;
    s.set(k1, 1234567);
    s.set(k2, uint64_t(1) << 40);
    ASSERT_TRUE(s.flush(&err)) << err;
  }
  SeqStore s;
  std::string err;
  ASSERT_TRUE(s.open(path, &err)) << err;
  EXPECT_EQ(s.reserved(k1), 1234567u);
  EXPECT_EQ(s.reserved(k2), uint64_t(1) << 40);
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  s.retain({k2});
  ASSERT_TRUE(s.flush(&err)) << err;
  SeqStore again;
  ASSERT_TRUE(again.open(path, &err)) << err;
  EXPECT_EQ(again.reserved(k1), 0u);
  EXPECT_EQ(again.size(), 1u);
}

TEST_F(SeqStoreTest, TheFileRevealsNoKeyMaterial) {
  SeqStore s;
  std::string err;
  ASSERT_TRUE(s.open(path, &err)) << err;
  s.set(SeqStore::sa_key(0x1001, key1, sizeof key1), 7);
  ASSERT_TRUE(s.flush(&err)) << err;
  std::string hex;
  for (uint8_t b : key1) {
    char h[3];
    std::snprintf(h, sizeof h, "%02x", b);
    hex += h;
  }
  std::string body = read();
  EXPECT_NE(body.find("00001001 "), std::string::npos) << body;
  EXPECT_EQ(body.find(hex.substr(0, 8)), std::string::npos) << body;
}

TEST_F(SeqStoreTest, ACorruptFileRefusesToStart) {
  SeqStore s;
  std::string err;
  ASSERT_TRUE(s.open(path, &err)) << err;
  s.set(SeqStore::sa_key(0x1001, key1, sizeof key1), 7);
  ASSERT_TRUE(s.flush(&err)) << err;
  {
    std::ofstream f(path, std::ios::app);
    f << "00002002 nothex 12\n";
  }
  SeqStore bad;
  EXPECT_FALSE(bad.open(path, &err));
  EXPECT_NE(err.find(":3: malformed"), std::string::npos) << err;
  {
    std::ofstream f(path);
    f << "something else\n";
  }
  EXPECT_FALSE(bad.open(path, &err));
  EXPECT_NE(err.find("not an espgw sequence reservation file"), std::string::npos) << err;
}

TEST_F(SeqStoreTest, ReservationArithmetic) {
  const uint64_t max32 = 0xffffffffull, max64 = ~uint64_t(0) - 1;
  // blocks: 2^24 without ESN, 2^30 with (a restart jumps at most this far: well inside the
  // 2^32 - window an ESN receiver can follow)
  EXPECT_EQ(SeqStore::next_reservation(0, false, max32), uint64_t(1) << 24);
  EXPECT_EQ(SeqStore::next_reservation(100, true, max64), 100 + (uint64_t(1) << 30));
  EXPECT_EQ(SeqStore::next_reservation(max32 - 5, false, max32), max32);  // never past the end
  EXPECT_FALSE(SeqStore::needs_extension(0, uint64_t(1) << 24, false, max32));
  EXPECT_FALSE(SeqStore::needs_extension((uint64_t(1) << 23) - 1, uint64_t(1) << 24, false, max32));
  EXPECT_TRUE(SeqStore::needs_extension((uint64_t(1) << 23) + 1, uint64_t(1) << 24, false, max32));
  EXPECT_TRUE(SeqStore::needs_extension(uint64_t(1) << 24, uint64_t(1) << 24, false, max32));
  EXPECT_FALSE(SeqStore::needs_extension(max32 - 1, max32, false, max32));  // nothing to add
}

}  // namespace
}  // namespace espgw::state
