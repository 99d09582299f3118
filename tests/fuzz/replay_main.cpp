// Runs a libFuzzer target without libFuzzer, so every CI run exercises the parsers on hostile
// input (scripts/fuzz.sh does the long coverage-guided runs with clang):
//   <target> CORPUS_DIR [MUTATIONS]
// Every seed in CORPUS_DIR is run as is, then MUTATIONS inputs (default 20000) derived from the
// seeds by a fixed-seed PRNG: bit flips, byte overwrites with boundary values, truncation,
// insertion and erasure of runs, and splices of two seeds. The sequence is the same on every
// run, so a failure reproduces by running the same command again (under gdb, or with
// ESPGW_FUZZ_TRACE=1 to print each input's index before it runs).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

using Bytes = std::vector<uint8_t>;

struct Rng {  // splitmix64: small, fixed, reproducible everywhere
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return n ? size_t(next() % n) : 0; }
};

void mutate(Bytes& b, const Bytes& other, Rng& r) {
  static const uint8_t kBoundary[] = {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff};
  const unsigned steps = 1 + unsigned(r.below(4));
  for (unsigned s = 0; s < steps; ++s) {
    switch (r.below(6)) {
      case 0:  // flip one bit
        if (!b.empty()) b[r.below(b.size())] ^= uint8_t(1u << r.below(8));
        break;
      case 1:  // a boundary value where a length or type field may sit
        if (!b.empty()) b[r.below(b.size())] = kBoundary[r.below(sizeof kBoundary)];
        break;
      case 2:  // truncate
        b.resize(r.below(b.size() + 1));
        break;
      case 3: {  // insert a run of random bytes
        size_t at = r.below(b.size() + 1), n = 1 + r.below(16);
        Bytes run(n);
        for (auto& c : run) c = uint8_t(r.next());
        b.insert(b.begin() + long(at), run.begin(), run.end());
        break;
      }
      case 4:  // erase a run
        if (!b.empty()) {
          size_t at = r.below(b.size()), n = 1 + r.below(std::min<size_t>(16, b.size() - at));
          b.erase(b.begin() + long(at), b.begin() + long(at + n));
        }
        break;
      case 5:  // splice: our head, the other seed's tail
        if (!other.empty()) {
          size_t cut = r.below(b.size() + 1), from = r.below(other.size());
          b.resize(cut);
          b.insert(b.end(), other.begin() + long(from), other.end());
        }
        break;
    }
  }
}

bool g_trace = false;

void run_one(const Bytes& b, unsigned long index) {
  if (g_trace) std::fprintf(stderr, "input %lu (%zu bytes)\n", index, b.size());
  Bytes exact(b);  // exact-size heap copy: an overread past the end is caught by ASan
  LLVMFuzzerTestOneInput(exact.data(), exact.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [MUTATIONS]\n", argv[0]);
    return 2;
  }
  const unsigned long mutations = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 20000;
  std::vector<Bytes> seeds;
  std::vector<std::filesystem::path> paths;
  for (const auto& e : std::filesystem::directory_iterator(argv[1]))
    if (e.is_regular_file()) paths.push_back(e.path());
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) {
    std::ifstream f(p, std::ios::binary);
    seeds.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  if (seeds.empty()) {
    std::fprintf(stderr, "%s: no seeds in %s\n", argv[0], argv[1]);
    return 2;
  }
  g_trace = std::getenv("ESPGW_FUZZ_TRACE") != nullptr;
  unsigned long index = 0;
  for (const auto& s : seeds) run_one(s, index++);
  Rng r{0x5eed0000u + seeds.size()};
  Bytes b;
  for (unsigned long i = 0; i < mutations; ++i) {
    b = seeds[r.below(seeds.size())];
    mutate(b, seeds[r.below(seeds.size())], r);
    run_one(b, index++);
  }
  std::printf("%s: %zu seeds and %lu mutations ran clean\n", argv[0], seeds.size(), mutations);
  return 0;
}
