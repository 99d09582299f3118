// Mpps harness, measurement: snapshots of the workers' counters (busy TSC cycles, packets, each
// worker thread's on-CPU time), busy seconds corrected for preemption, the median of the window
// rates, and the parts of a RESULT's JSON built from them: per worker, drop and event counts, and
// the IPsec-MB ceiling. Definitions in measure.cpp.
#pragma once

#include <time.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "dataplane/dataplane.h"
#include "perf/mpps/ceiling.h"

namespace espgw::perf {

using Json = nlohmann::ordered_json;

// On-CPU time of each worker thread (pthread CPU clocks): on a shared machine the busy TSC
// cycles also count time the worker was preempted, so they are scaled by on-CPU/wall per worker
// (assumes preemption hits busy and idle polls in proportion; exact when the core is not shared).
// One per worker lcore, filled by capture_clock run on each (rte_eal_remote_launch) before the
// gateway starts.
extern std::vector<clockid_t> g_worker_clocks;
int capture_clock(void* out);

struct Snap {
  uint64_t tsc = 0, busy = 0, rx = 0, polls = 0, busy_polls = 0;
  std::vector<uint64_t> wbusy, wrx, wcpu;
  std::vector<uint64_t> drops, events;
};
Snap snap(const dp::Dataplane& d);

// Busy seconds of all workers between two snapshots, each scaled by its on-CPU share.
double busy_seconds(const Snap& a, const Snap& b, uint64_t hz, double* on_cpu = nullptr);
double median(std::vector<double> v);

// Per worker between two snapshots: lcore, rx packets, busy seconds (scaled by the on-CPU share
// over `wall` seconds) and Mpps.
Json per_worker_json(const Snap& s0, const Snap& s1, const std::vector<unsigned>& workers,
                     uint64_t hz, double wall);
// The drop reasons (and their sum in *total) and the events that moved between two snapshots.
Json drop_deltas(const Snap& a, const Snap& b, uint64_t* total);
Json event_deltas(const Snap& a, const Snap& b);
// The ceiling_* fields and the ratio of a RESULT: the mean of the ceiling measured before and
// after the gateway ran, against the result's worker_mpps.
void add_ceiling(Json& j, const CeilingResult& before, const CeilingResult& after, uint64_t hz);

}  // namespace espgw::perf
