// Mpps harness, measurement (measure.h): worker counter snapshots, busy seconds scaled by each
// worker thread's on-CPU share, and the RESULT JSON parts built from snapshots and the ceiling.
#include "perf/mpps/measure.h"

#include <pthread.h>
#include <rte_cycles.h>

#include <algorithm>
#include <string>

#include "dataplane/counters.h"

namespace espgw::perf {

namespace {

uint64_t cpu_ns(clockid_t c) {
  timespec ts{};
  clock_gettime(c, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

}  // namespace

std::vector<clockid_t> g_worker_clocks;

int capture_clock(void* out) {
  pthread_getcpuclockid(pthread_self(), static_cast<clockid_t*>(out));
  return 0;
}

Snap snap(const dp::Dataplane& d) {
  Snap s;
  for (clockid_t c : g_worker_clocks) s.wcpu.push_back(cpu_ns(c));
  s.tsc = rte_rdtsc();
  const dp::CounterSet& cs = d.counters();
  for (unsigned lc : d.worker_lcores()) {
    const auto& c = cs.lcore[lc];
    s.wbusy.push_back(dp::peek(c.busy_cycles));
    s.wrx.push_back(dp::peek(c.rx_total));
    s.busy += s.wbusy.back();
    s.rx += s.wrx.back();
    s.polls += dp::peek(c.polls);
    s.busy_polls += dp::peek(c.busy_polls);
  }
  for (size_t d = 0; d < size_t(dp::Drop::kCount); ++d)
    s.drops.push_back(cs.total_drop(dp::Drop(d)));
  for (size_t e = 0; e < size_t(dp::Event::kCount); ++e)
    s.events.push_back(cs.total_event(dp::Event(e)));
  return s;
}

double busy_seconds(const Snap& a, const Snap& b, uint64_t hz, double* on_cpu) {
  const double wall = double(b.tsc - a.tsc) / double(hz);
  double busy = 0, share_sum = 0;
  for (size_t w = 0; w < a.wbusy.size(); ++w) {
    double share = 1;
    if (w < a.wcpu.size() && wall > 0)
      share = std::min(1.0, double(b.wcpu[w] - a.wcpu[w]) / 1e9 / wall);
    share_sum += share;
    busy += double(b.wbusy[w] - a.wbusy[w]) / double(hz) * share;
  }
  if (on_cpu) *on_cpu = a.wbusy.empty() ? 0 : share_sum / double(a.wbusy.size());
  return busy;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Json per_worker_json(const Snap& s0, const Snap& s1, const std::vector<unsigned>& workers,
                     uint64_t hz, double wall) {
  const unsigned nw = unsigned(workers.size());
  Json per_worker = Json::array();
  for (unsigned w = 0; w < nw; ++w) {
    double share = std::min(1.0, double(s1.wcpu[w] - s0.wcpu[w]) / 1e9 / wall);
    double b = double(s1.wbusy[w] - s0.wbusy[w]) / double(hz) * share;
    uint64_t n = s1.wrx[w] - s0.wrx[w];
    per_worker.push_back({{"lcore", workers[w]},
                          {"rx_packets", n},
                          {"busy_seconds", b},
                          {"mpps", b > 0 ? double(n) / b / 1e6 : 0}});
  }
  return per_worker;
}

Json drop_deltas(const Snap& a, const Snap& b, uint64_t* total) {
  Json drops = Json::object();
  uint64_t drop_total = 0;
  for (size_t d = 0; d < b.drops.size(); ++d)
    if (uint64_t n = b.drops[d] - a.drops[d]) {
      drops[std::string(dp::kDropNames[d])] = n;
      drop_total += n;
    }
  *total = drop_total;
  return drops;
}

Json event_deltas(const Snap& a, const Snap& b) {
  Json events = Json::object();
  for (size_t e = 0; e < b.events.size(); ++e)
    if (uint64_t n = b.events[e] - a.events[e])
      events[std::string(dp::kEventNames[e])] = n;
  return events;
}

void add_ceiling(Json& j, const CeilingResult& b, const CeilingResult& a, uint64_t hz) {
  double cyc = (b.cyc_per_pkt_median + a.cyc_per_pkt_median) / 2;
  double mpps = cyc > 0 ? double(hz) / cyc / 1e6 : 0;
  double sz = j["mean_frame_bytes"].get<double>();
  j["ceiling_mpps"] = mpps;
  j["ceiling_gbps"] = mpps * sz * 8 / 1000;
  j["ceiling_cycles_per_pkt"] = cyc;
  j["ceiling_cycles_before"] = b.cyc_per_pkt_median;
  j["ceiling_cycles_after"] = a.cyc_per_pkt_median;
  j["ratio"] = mpps > 0 ? j["worker_mpps"].get<double>() / mpps : 0;
}

}  // namespace espgw::perf
