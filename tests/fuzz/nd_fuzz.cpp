// libFuzzer target for ARP (RFC 826) and IPv6 neighbour discovery (RFC 4861): frames from the
// wire and packets held for resolution go into Neighbors::receive, with timer ticks and route
// next hops in between, on a real EAL (no hugepages, no PCI) with a null ethdev that drops what
// we send. Asserts after every step: the table never exceeds its size, the held packets never
// exceed the hold cap, and every mbuf is accounted for (in use = held; none leaks or is freed
// twice, which the pool without a cache would show).
//
// Input: operations of one byte each, followed by their arguments; (op >> 3) & 1 is the port:
//   op % 8 = 0..3: a frame from the wire (ARP or ND): length u16 % 1600, the bytes; when
//                  op & 0x80 and it is ICMPv6, the harness fixes its checksum
//            4:    a packet held for resolution: IPv4 (IPv6 if op & 0x80) next hop, 4 or 16
//                  bytes, then a frame length u8 (at least an Ethernet header) and the bytes
//            5:    time passes: u8 * 100 ms, then tick
//            6:    a route takes a next hop (IPv4 or IPv6 by op & 0x80, 4 or 16 bytes): get+ref
//            7:    a route lets its oldest next hop go (unref)
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <span>
#include <deque>
#include <memory>
#include <string>

#include "dataplane/proto/icmp.h"
#include "dataplane/tables/neighbor.h"
#include "dataplane/proto/pkt.h"

namespace espgw::dp {
int g_hold_meta_offset = -1;  // gateway.cpp's, which this target does not link
}

namespace {

using namespace espgw;
using namespace espgw::dp;

void check(bool ok) {
  if (!ok) std::abort();
}

constexpr unsigned kTableSize = 24;

struct Env {
  rte_mempool* pool = nullptr;
  rte_rcu_qsbr* qs = nullptr;
  std::unique_ptr<CounterSet> counters = std::make_unique<CounterSet>();
  Runtime rt;
};

Env* setup() {
  static Env* env = [] {
    std::string prefix = "--file-prefix=espgw-ndfuzz-" + std::to_string(getpid());
    const char* argv[] = {"nd_fuzz",       "--no-huge", "-m",         "256",
                          "--no-pci",      "-l",        "0",          prefix.c_str(),
                          "--log-level=error", "--vdev=net_null0", "--no-telemetry"};
    check(rte_eal_init(int(sizeof argv / sizeof *argv), const_cast<char**>(argv)) >= 0);
    static const rte_mbuf_dynfield hold_desc = {"espgw_hold_meta", sizeof(HoldMeta),
                                                alignof(HoldMeta), 0};
    g_hold_meta_offset = rte_mbuf_dynfield_register(&hold_desc);
    check(g_hold_meta_offset >= 0);
    auto* e = new Env;
    // No per-lcore cache: the pool's in-use count is exact.
    e->pool = rte_pktmbuf_pool_create("ndfuzz", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    check(e->pool != nullptr);
    size_t sz = rte_rcu_qsbr_get_memsize(RTE_MAX_LCORE);
    e->qs = static_cast<rte_rcu_qsbr*>(aligned_alloc(64, (sz + 63) / 64 * 64));
    check(rte_rcu_qsbr_init(e->qs, RTE_MAX_LCORE) == 0);
    // The null device: one rx queue, a tx queue for one worker and one for the control thread.
    uint16_t port = 0;
    check(rte_eth_dev_count_avail() >= 1);
    rte_eth_conf conf{};
    check(rte_eth_dev_configure(port, 1, 2, &conf) == 0);
    check(rte_eth_rx_queue_setup(port, 0, 64, 0, nullptr, e->pool) == 0);
    for (uint16_t q = 0; q < 2; ++q) check(rte_eth_tx_queue_setup(port, q, 64, 0, nullptr) == 0);
    check(rte_eth_dev_start(port) == 0);
    Runtime& rt = e->rt;
    rt.pool = e->pool;
    rt.qsbr = e->qs;
    rt.counters = e->counters.get();
    rt.n_workers = 1;
    for (int i = 0; i < 2; ++i) {
      PortRt p;
      p.name = i ? "b" : "a";
      p.eth_id = port;
      p.mac = {{0x02, 0, 0, 0, 0, uint8_t(i + 1)}};
      std::string v4 = "10.0." + std::to_string(i) + ".1", v6 = "fd00:" + std::to_string(i) + "::1";
      p.addrs = {{*IpAddr::parse(v4), 24}, {*IpAddr::parse(v6), 64}};
      p.src4 = *IpAddr::parse(v4);
      p.src6 = *IpAddr::parse(v6);
      rt.ports.push_back(p);
    }
    return e;
  }();
  return env;
}

rte_mbuf* mbuf(Env& e, std::span<const uint8_t> bytes, uint8_t family, uint16_t port,
               const uint8_t* ip) {
  rte_mbuf* m = rte_pktmbuf_alloc(e.pool);
  check(m != nullptr);  // at most the hold cap (an eighth of the pool) is ever held
  char* d = rte_pktmbuf_append(m, uint16_t(bytes.size()));
  check(d != nullptr);
  if (!bytes.empty()) std::memcpy(d, bytes.data(), bytes.size());
  HoldMeta* h = hold_meta(m);
  std::memset(h, 0, sizeof *h);
  h->family = family;
  h->port = port;
  if (ip) std::memcpy(h->ip, ip, family == 4 ? 4 : 16);
  return m;
}

// The ICMPv6 checksum of a well-formed ND frame, so the fuzzer gets past the check.
void fix_checksum(uint8_t* f, size_t len) {
  Parsed p;
  if (!parse_frame(f, uint32_t(len), p).is_ok() || p.l3 != L3::kIpv6 || p.l4_proto != 58) return;
  uint8_t* icmp = f + p.l4_off;
  const uint32_t n = uint32_t(p.l3_off + p.l3_len - p.l4_off);
  if (n < 4) return;
  icmp[2] = icmp[3] = 0;
  store_be16(icmp + 2, icmp6_checksum(f + p.l3_off, icmp, n, 58));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Env& e = *setup();
  check(rte_mempool_in_use_count(e.pool) == 0);
  {
    Neighbors n(e.rt);
    std::string err;
    check(n.init(kTableSize, &err));
    std::deque<NeighEntry*> refs;
    uint64_t now = 1000;
    size_t i = 0;
    auto u8 = [&]() -> uint8_t { return i < size ? data[i++] : 0; };
    auto take = [&](size_t len) {
      len = std::min(len, size - std::min(i, size));
      std::span<const uint8_t> s(data + i, len);
      i += len;
      return s;
    };
    for (unsigned steps = 0; i < size && steps < 2048; ++steps) {
      const uint8_t op = u8();
      const uint16_t port = (op >> 3) & 1;
      const bool v6 = op & 0x80;
      switch (op % 8) {
        case 0:
        case 1:
        case 2:
        case 3: {
          size_t len = (size_t(u8()) << 8 | u8()) % 1600;
          auto bytes = take(len);
          std::vector<uint8_t> f(bytes.begin(), bytes.end());
          if (v6) fix_checksum(f.data(), f.size());
          n.receive(mbuf(e, f, 0, port, nullptr), now);
          break;
        }
        case 4: {
          auto ip = take(v6 ? 16 : 4);
          uint8_t addr[16] = {};
          std::memcpy(addr, ip.data(), ip.size());
          std::vector<uint8_t> f(kEthHdrLen, 0);
          auto rest = take(u8());
          f.insert(f.end(), rest.begin(), rest.end());
          n.receive(mbuf(e, f, v6 ? 6 : 4, port, addr), now);
          break;
        }
        case 5:
          now += uint64_t(u8()) * 100;
          n.tick(now);
          break;
        case 6: {
          auto ip = take(v6 ? 16 : 4);
          IpAddr a;
          a.family = v6 ? 6 : 4;
          std::memcpy(a.bytes.data(), ip.data(), ip.size());
          if (NeighEntry* x = n.get(port, a, now)) {
            n.ref(x);
            refs.push_back(x);
          }
          break;
        }
        case 7:
          if (!refs.empty()) {
            n.unref(refs.front());
            refs.pop_front();
          }
          break;
      }
      check(n.size() <= kTableSize);
      check(n.held() <= n.hold_cap());
      check(rte_mempool_in_use_count(e.pool) == n.held());
    }
  }
  check(rte_mempool_in_use_count(e.pool) == 0);
  return 0;
}
