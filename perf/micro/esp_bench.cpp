// Micro-benchmarks for the per-packet ESP bookkeeping around the crypto call: the anti-replay
// window and the inbound SPI lookup (rte_hash with lock-free readers, as the workers use it),
// at 1, 1,000 and 100,000 SAs. Cycles per packet via rdtsc; never a pass/fail test.
#include <benchmark/benchmark.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_hash.h>
#include <rte_jhash.h>
#include <unistd.h>

#include <random>
#include <string>
#include <vector>

#include "dataplane/tables/replay.h"

using espgw::dp::ReplayWindow;

static void set_cycles(benchmark::State& st, uint64_t cycles, uint64_t packets) {
  st.counters["cycles/pkt"] = double(cycles) / double(packets ? packets : 1);
}

static void BM_ReplayInOrder(benchmark::State& st) {
  ReplayWindow w;
  w.init(uint32_t(st.range(0)), true);
  uint64_t seq = 1, n = 0, c = 0;
  for (auto _ : st) {
    uint64_t t0 = rte_rdtsc();
    for (int i = 0; i < 32; ++i) {
      uint64_t s = w.infer(uint32_t(seq));
      benchmark::DoNotOptimize(w.check(s));
      benchmark::DoNotOptimize(w.update(s));
      ++seq;
    }
    c += rte_rdtsc() - t0;
    n += 32;
  }
  set_cycles(st, c, n);
}
BENCHMARK(BM_ReplayInOrder)->Arg(64)->Arg(1024)->Arg(4096);

static void BM_ReplayReordered(benchmark::State& st) {
  // packets arrive shuffled within the window (multi-path / RSS reordering)
  ReplayWindow w;
  const uint32_t size = uint32_t(st.range(0));
  w.init(size, true);
  std::mt19937 rng(1);
  std::vector<uint64_t> seqs(1 << 16);
  for (size_t i = 0; i < seqs.size(); ++i) seqs[i] = i + 1;
  for (size_t i = 0; i + 32 < seqs.size(); i += 32)
    std::shuffle(seqs.begin() + long(i), seqs.begin() + long(i + 32), rng);
  size_t k = 0;
  uint64_t base = 0, n = 0, c = 0;
  for (auto _ : st) {
    uint64_t t0 = rte_rdtsc();
    for (int i = 0; i < 32; ++i) {
      uint64_t s = base + seqs[k];
      benchmark::DoNotOptimize(w.update(w.infer(uint32_t(s))));
      if (++k == seqs.size()) {
        k = 0;
        base += seqs.size();
      }
    }
    c += rte_rdtsc() - t0;
    n += 32;
  }
  set_cycles(st, c, n);
}
BENCHMARK(BM_ReplayReordered)->Arg(1024)->Arg(4096);

static void BM_SpiLookup(benchmark::State& st) {
  const uint32_t nsa = uint32_t(st.range(0));
  const bool bulk = st.range(1) != 0;
  rte_hash_parameters p{};
  std::string name = "bench_spi_" + std::to_string(nsa) + (bulk ? "b" : "s");
  p.name = name.c_str();
  p.entries = std::max(nsa * 2, 1024u);
  p.key_len = sizeof(uint32_t);
  p.hash_func = rte_jhash;
  p.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF;
  rte_hash* h = rte_hash_create(&p);
  std::vector<uint32_t> spis(nsa);
  std::mt19937 rng(7);
  for (auto& s : spis) {
    s = rng() | 0x100;
    rte_hash_add_key_data(h, &s, &s);
  }
  // traffic spread over all SAs
  std::vector<uint32_t> trace(4096);
  for (auto& t : trace) t = spis[rng() % nsa];
  size_t k = 0;
  uint64_t n = 0, c = 0;
  for (auto _ : st) {
    uint64_t t0 = rte_rdtsc();
    if (bulk) {
      const void* keys[32];
      void* data[32];
      for (int i = 0; i < 32; ++i) keys[i] = &trace[(k + size_t(i)) & 4095];
      uint64_t hits = 0;
      rte_hash_lookup_bulk_data(h, keys, 32, &hits, data);
      benchmark::DoNotOptimize(hits);
    } else {
      for (int i = 0; i < 32; ++i) {
        void* d;
        benchmark::DoNotOptimize(rte_hash_lookup_data(h, &trace[(k + size_t(i)) & 4095], &d));
      }
    }
    k += 32;
    c += rte_rdtsc() - t0;
    n += 32;
  }
  set_cycles(st, c, n);
  rte_hash_free(h);
}
BENCHMARK(BM_SpiLookup)->Args({1, 0})->Args({1000, 0})->Args({100000, 0})
    ->Args({1, 1})->Args({1000, 1})->Args({100000, 1});

int main(int argc, char** argv) {
  std::string prefix = "--file-prefix=espgw-bench-" + std::to_string(getpid());
  const char* eal[] = {"esp_bench", "--no-huge", "-m", "512", "--no-pci", "-l", "0",
                       prefix.c_str(), "--log-level=error"};
  if (rte_eal_init(9, const_cast<char**>(eal)) < 0) return 1;
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  rte_eal_cleanup();
  return 0;
}
