// Shared internals of the worker's stages: burst and buffer limits, the per-port tx buffers, the
// route batches that carry classified packets to the bulk FIB lookups, and Worker, the per-lcore
// state whose member functions the stage headers define (classify.h, forward.h, esp_in.h,
// esp_out.h, esp_common.h, tx.h; the poll loop is in worker.cpp).
//
// Internal to dataplane/path/worker.cpp: this file and the stage headers are included only there.
// Everything in them is in an anonymous namespace and defined inline, so the worker stays one
// translation unit and the compiler inlines the stages into the poll loop as when they were one
// file. Do not include them anywhere else, and do not move a stage into a .cpp of its own: the
// stages are on the hot path.
#pragma once

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_fib.h>
#include <rte_fib6.h>
#include <rte_hash.h>
#include <rte_ip_frag.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <cstdio>

#include "crypto/ipsecmb_engine.h"
#include "dataplane/proto/esp.h"
#include "dataplane/proto/icmp.h"
#include "dataplane/proto/pkt.h"
#include "dataplane/runtime.h"
#include "dataplane/tables/fib.h"
#include "dataplane/tables/sa.h"

namespace espgw::dp {
namespace {

constexpr unsigned kMaxBurst = 256;
constexpr unsigned kTxBuf = 64;
constexpr unsigned kIdlePollsBeforeSleep = 256;
constexpr unsigned kMaxFrags = 8;

constexpr unsigned kMaxPolls = 64;

struct PollItem {
  uint16_t port;   // index into Runtime::ports
  uint16_t queue;  // rx queue id
};

struct TxBuf {
  rte_mbuf* m[kTxBuf];
  uint16_t n;
};

// Packets classified for routing, by family, with the port they came in on: one bulk FIB
// lookup per family, then each is forwarded.
struct RouteBatch {
  rte_mbuf* m4[kMaxBurst];
  rte_mbuf* m6[kMaxBurst];
  Parsed p4[kMaxBurst], p6[kMaxBurst];
  uint16_t in4[kMaxBurst], in6[kMaxBurst];
  unsigned n4 = 0, n6 = 0;

  // Filled in place on the hot paths: slot() is the next entry of a family, commit() takes it.
  // (Building a Parsed elsewhere and copying it in reloads freshly made narrow stores with wide
  // loads, which store forwarding cannot serve: a stall per packet, seen in the profile.)
  Parsed& slot(bool v6) {
    Parsed& p = v6 ? p6[n6] : p4[n4];
    p = Parsed{};
    return p;
  }
  void commit(rte_mbuf* m, bool v6, uint16_t in_pi) {
    if (v6) {
      in6[n6] = in_pi;
      m6[n6++] = m;
    } else {
      in4[n4] = in_pi;
      m4[n4++] = m;
    }
  }

  void add(rte_mbuf* m, const Parsed& p, uint16_t in_pi) {
    if (p.l3 == L3::kIpv4) {
      p4[n4] = p;
      in4[n4] = in_pi;
      m4[n4++] = m;
    } else {
      p6[n6] = p;
      in6[n6] = in_pi;
      m6[n6++] = m;
    }
  }
};

class Worker {
 public:
  Worker(Runtime* rt, unsigned index);
  void run();  // the poll loop, until rt->running becomes false (worker.cpp)

 private:
  // poll loop and stage order (worker.cpp)
  void drain();

  // classify.h
  bool nd_acceptable(const uint8_t* f, const Parsed& p, const PortRt& port) const;
  void process(uint16_t pi, rte_mbuf** pkts, unsigned n, bool count_rx);

  // forward.h
  bool icmp_allowed();
  void icmp_error(rte_mbuf* m, const Parsed& p, uint16_t in_pi, uint8_t type, uint8_t code,
                  uint32_t mtu);
  unsigned fragment_ipv4(rte_mbuf* m, uint16_t l3_off, uint16_t mtu, rte_mbuf** frags);
  static void ipv4_set_checksum(uint8_t* ip);
  void fragment4(rte_mbuf* m, const Parsed& p, const NextHop& nh, uint16_t mtu);
  static uint32_t flow_hash(const rte_mbuf* m, const Parsed& p);
  void forward(rte_mbuf* m, const Parsed& p, uint32_t nhid, uint16_t in_pi, bool originated);
  void route(RouteBatch& b, bool originated);
  void route_generated();

  // esp_in.h
  void to_me(rte_mbuf* m, const Parsed& p, uint16_t in_pi);
  void esp_in_collect(rte_mbuf* m, const Parsed& p, const EspLoc& loc, uint16_t in_pi);
  void esp_in_run();
  static bool selector_ok(const std::vector<Prefix>& ts, const uint8_t* ip, bool v6);
  static void set_ce(uint8_t* ip, bool v6);

  // esp_out.h
  void to_tunnel(rte_mbuf* m, const Parsed& p, uint32_t tid, uint16_t in_pi, bool originated);
  void to_tunnel_fragments(rte_mbuf* m, const Parsed& p, SaRt* sa, uint16_t mtu);
  bool prepare_out(rte_mbuf* m, SaRt* sa, const Parsed& p, uint64_t seq, crypto::EspOp& op);
  void esp_out_run();

  // esp_common.h
  void sa_drop(SaRt* sa, SaDrop sd, rte_mbuf* m, Drop d);
  void sa_event(SaRt* sa, SaEvent e);
  bool account(SaRt* sa, uint64_t bytes, uint64_t packets = 1, uint64_t* b0 = nullptr,
               uint64_t* n0 = nullptr);
  void clamp_mss(rte_mbuf* m, const Parsed& p, uint16_t mss);

  // tx.h
  void drop(rte_mbuf* m, Drop d);
  void tx(uint16_t pi, rte_mbuf* m);
  void flush(uint16_t pi);
  void flush_all();
  void send(uint16_t pi, rte_mbuf* m);
  void to_exception(rte_mbuf* m);
  bool control_allowed(uint16_t pi);
  void hold(rte_mbuf* m, uint16_t out_pi, uint8_t family, const uint8_t* ip);
  void emit(rte_mbuf* m, const Parsed& p, const NextHop& nh);

  // per-lcore state
  Runtime* rt_;
  uint16_t q_;
  unsigned lcore_;
  LcoreCounters& c_;
  TxBuf tx_[kMaxPorts];
  struct OutEntry {
    rte_mbuf* m;
    SaRt* sa;
    Parsed p;
  };
  struct InEntry {
    rte_mbuf* m;
    SaRt* sa;
    uint64_t seq;
    EspLoc loc;
    uint16_t in_pi;
    uint8_t outer_ecn;
  };
  std::unique_ptr<crypto::Engine> engine_;
  // Per-stage scratch, constructed once (local arrays of these types would be initialised on
  // every call). Stages do not nest into themselves, so one set per stage suffices.
  RouteBatch rx_batch_, esp_batch_, gen_batch_;
  crypto::EspOp ops_[kMaxBurst];
  OutEntry out_[kMaxBurst];
  unsigned n_out_ = 0;
  InEntry in_[kMaxBurst];
  unsigned n_in_ = 0;
  InEntry in_copy_[kMaxBurst];
  OutEntry out_copy_[kMaxBurst];
  uint16_t ip_id_ = 0;
  PollItem polls_[kMaxPolls];
  unsigned n_polls_ = 0;
  rte_mbuf* gen_[kMaxBurst];
  unsigned n_gen_ = 0;
  uint64_t tsc_hz_, icmp_tokens_, icmp_last_;
  struct CtlBucket {
    uint64_t tokens = 0, last = 0;
  };
  CtlBucket ctl_bucket_[kMaxPorts];
};

}  // namespace
}  // namespace espgw::dp
