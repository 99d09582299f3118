// Named counters: every drop reason and every notable event has a name, generated from one list.
// Per-lcore blocks are written by their own lcore only (relaxed stores, no locked instructions)
// and summed by readers (control socket, telemetry).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace espgw::dp {

// X(name) — drop reasons. A packet that is dropped increments exactly one of these.
#define ESPGW_DROPS(X)                                                                      \
  X(runt)                  /* shorter than an Ethernet header */                           \
  X(unknown_ethertype)     /* not ARP, IPv4 or IPv6 */                                     \
  X(not_for_us_l2)         /* unicast frame to another MAC */                              \
  X(ipv4_bad_version)      /* version field is not 4 */                                    \
  X(ipv4_bad_ihl)          /* IHL < 5 or header longer than the frame */                   \
  X(ipv4_bad_length)       /* total length < IHL*4 or beyond the frame */                  \
  X(ipv4_bad_checksum)                                                                     \
  X(ipv4_martian)          /* source or destination that must not be routed */             \
  X(ipv6_bad_version)                                                                      \
  X(ipv6_bad_length)       /* payload length beyond the frame or frame < 40 bytes */       \
  X(ipv6_bad_ext)          /* extension header chain runs past the packet */              \
  X(ipv6_martian)                                                                          \
  X(ttl_exceeded)          /* TTL / hop limit expired (ICMP time exceeded sent) */         \
  X(no_route)              /* no FIB entry (ICMP unreachable sent) */                      \
  X(blackhole)             /* blackhole route */                                           \
  X(mtu_exceeded)          /* too big with DF / IPv6 (ICMP too big sent) */                \
  X(frag_failed)           /* IPv4 fragmentation could not allocate or failed */           \
  X(neighbor_unresolved)   /* ARP/ND never answered, or hold queue full */                 \
  X(neighbor_hold_full)    /* all neighbours together hold the most packets allowed */    \
  X(neighbor_table_full)   /* no neighbour entry free, none evictable */                  \
  X(neighbor_create_limited) /* new unresolved neighbours over the creation rate */        \
  X(multicast)             /* multicast/broadcast IP not for the gateway */                \
  X(control_ring_full)     /* ARP/ND/unresolved queue to the control thread was full */    \
  X(tx_full)               /* NIC tx queue did not take the packet */                      \
  X(arp_bad)               /* malformed or unsupported ARP */                              \
  X(nd_bad)                /* malformed neighbour discovery */                             \
  X(nd_invalid)            /* NS/NA with hop limit != 255, code != 0 or not to us (4861 7.1) */ \
  X(control_rate_limited)  /* ARP/ND/unresolved over the per-port rate to the control thread */ \
  X(alloc_failed)          /* mbuf pool empty when building ICMP/ARP/fragments */          \
  X(icmp_rate_limited)     /* ICMP error suppressed by the rate limit */                   \
  X(exception_unsupported) /* from the host kernel: not IPv4/IPv6 (e.g. kernel ND noise) */ \
  X(udp_bad_length)        /* UDP 4500 datagram whose length does not fit the packet */    \
  X(esp_runt)              /* ESP shorter than header + IV + ICV, or not block aligned */  \
  X(esp_no_sa)             /* no inbound SA for this SPI and destination */                \
  X(esp_replay)            /* duplicate, or older than the anti-replay window */          \
  X(esp_bad_icv)           /* integrity check failed */                                    \
  X(esp_bad_pad)           /* padding bytes or pad length wrong after decryption */        \
  X(esp_bad_next_header)   /* inner protocol neither IPv4 nor IPv6 */                     \
  X(esp_selector_mismatch) /* inner source outside the tunnel's traffic selectors */     \
  X(esp_inner_malformed)   /* decrypted inner packet is not a valid IP packet */          \
  X(esp_sa_expired)        /* SA past its hard lifetime or sequence space */              \
  X(esp_no_outbound_sa)    /* route into a tunnel that has no outbound SA (yet) */         \
  X(esp_crypto_error)      /* the crypto engine refused the operation */                   \
  X(esp_no_room)           /* no head/tailroom for the ESP encapsulation */                \
  X(esp_handoff_full)      /* the owner worker's hand-off ring was full */                 \
  X(esp_seq_unreserved)    /* outbound seq past the persisted reservation (disk too slow) */ \
  X(esp_ecn_drop)          /* outer CE over a not-ECT inner packet (RFC 6040) */          \
  X(tunnel_loop)           /* an encapsulated packet routed into a tunnel again */

// X(name) — events that are not drops.
#define ESPGW_EVENTS(X)   \
  X(forwarded)            \
  X(to_exception)         \
  X(from_exception)       \
  X(icmp_error_sent)      \
  X(fragments_sent)       \
  X(arp_to_control)       \
  X(nd_to_control)        \
  X(held_for_neighbor)    \
  X(neighbor_evicted)     \
  X(esp_encrypted)        \
  X(esp_decrypted)        \
  X(esp_dummy)            \
  X(esp_handoff)          \
  X(natt_keepalive)       \
  X(mss_clamped)

enum class Drop : uint16_t {
#define X(n) n,
  ESPGW_DROPS(X)
#undef X
      kCount
};
enum class Event : uint16_t {
#define X(n) n,
  ESPGW_EVENTS(X)
#undef X
      kCount
};

inline constexpr std::array<std::string_view, size_t(Drop::kCount)> kDropNames{
#define X(n) #n,
    ESPGW_DROPS(X)
#undef X
};
inline constexpr std::array<std::string_view, size_t(Event::kCount)> kEventNames{
#define X(n) #n,
    ESPGW_EVENTS(X)
#undef X
};

inline constexpr unsigned kMaxPorts = 8;   // data ports + the exception port
inline constexpr unsigned kMaxLcores = 128;

// Single-writer increment: a plain load/add/store (no lock prefix) that readers on other
// threads may observe without tearing.
inline void bump(uint64_t& c, uint64_t n = 1) {
  std::atomic_ref<uint64_t> r(c);
  r.store(r.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
inline uint64_t peek(const uint64_t& c) {
  return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(c)).load(std::memory_order_relaxed);
}

struct PortCounters {
  uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
};

struct alignas(64) LcoreCounters {
  std::array<uint64_t, size_t(Drop::kCount)> drops{};
  std::array<uint64_t, size_t(Event::kCount)> events{};
  std::array<PortCounters, kMaxPorts> ports{};
  uint64_t polls = 0, busy_polls = 0;
  uint64_t busy_cycles = 0;  // TSC cycles spent in polls that found packets
  uint64_t rx_total = 0;     // packets those polls took in (all ports and hand-off)

  void drop(Drop d, uint64_t n = 1) { bump(drops[size_t(d)], n); }
  void event(Event e, uint64_t n = 1) { bump(events[size_t(e)], n); }
};

// All lcores' counters; index by rte_lcore_id().
struct CounterSet {
  std::array<LcoreCounters, kMaxLcores> lcore{};

  uint64_t total_drop(Drop d) const {
    uint64_t s = 0;
    for (const auto& l : lcore) s += peek(l.drops[size_t(d)]);
    return s;
  }
  uint64_t total_event(Event e) const {
    uint64_t s = 0;
    for (const auto& l : lcore) s += peek(l.events[size_t(e)]);
    return s;
  }
  PortCounters total_port(unsigned p) const {
    PortCounters s{};
    for (const auto& l : lcore) {
      s.rx_packets += peek(l.ports[p].rx_packets);
      s.rx_bytes += peek(l.ports[p].rx_bytes);
      s.tx_packets += peek(l.ports[p].tx_packets);
      s.tx_bytes += peek(l.ports[p].tx_bytes);
    }
    return s;
  }
};

}  // namespace espgw::dp
