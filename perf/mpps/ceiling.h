// Raw Intel IPsec-MB burst ceiling for the Mpps harness: the same cipher + authentication jobs the
// ESP engine submits for one packet (same key schedules, same payload and hash lengths, bursts of
// 32, one get/submit/flush pass), with none of the gateway around them: no mbufs, no parsing, no
// FIB, no ESP header/trailer/IV/nonce construction, no ICV compare, no counters.
//
// It runs on a given lcore through rte_eal_remote_launch, so the harness measures it on the very
// core that runs the espgw worker (before the gateway starts and after it stops).
#pragma once

#include <cstdint>
#include <vector>

#include "crypto/algo.h"

namespace espgw::perf {

struct CeilingResult {
  double cyc_per_pkt_median = 0;  // median over windows of 256 bursts (robust to preemption)
  double cyc_per_pkt_mean = 0;    // all cycles / all packets
  uint64_t packets = 0;
  bool ok = false;
};

// ip_lens: inner IP packet lengths, cycled through in order (one entry, or the IMIX pattern).
// The ESP payload of each job is ip_len + RFC 4303 padding + 2 (pad length, next header).
// Blocks the calling lcore until the measurement on `lcore` is done. `lcore` must be idle.
CeilingResult measure_ceiling(unsigned lcore, crypto::Algo algo, bool encrypt,
                              const std::vector<uint32_t>& ip_lens, double seconds);

// ESP payload length (inner + padding + 2) for an inner packet of ip_len bytes.
uint32_t esp_payload_len(crypto::Algo algo, uint32_t ip_len);

}  // namespace espgw::perf
