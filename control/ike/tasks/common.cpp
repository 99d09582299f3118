#include <algorithm>

#include "control/ike/daemon.h"
#include "control/ike/env.h"
#include "control/ike/nat.h"
#include "control/ike/tasks/tasks.h"
#include "control/ike/transforms.h"

namespace espgw::ike {

const NotifyPayload* first_error(const Message& m) {
  for (const auto* n : m.notifies())
    if (is_error(n->type)) return n;
  return nullptr;
}

bool take_requested_group(Daemon& d, const Message& m, uint16_t& group) {
  const auto* n = m.notify(NotifyType::kInvalidKePayload);
  auto g = n ? n->ke_group() : std::nullopt;
  if (!g || *g == group || !d.env().make_ke(*g)) return false;
  group = *g;
  return true;
}

namespace {
bool same_family(const TrafficSelector& a, const TrafficSelector& b) { return a.type == b.type; }
}  // namespace

std::vector<TrafficSelector> narrow_ts(const std::vector<TrafficSelector>& theirs,
                                       const std::vector<TrafficSelector>& ours) {
  std::vector<TrafficSelector> out;
  for (const auto& t : theirs)
    for (const auto& o : ours) {
      if (!same_family(t, o)) continue;
      if (t.ip_protocol && o.ip_protocol && t.ip_protocol != o.ip_protocol) continue;
      TrafficSelector r = t;
      r.ip_protocol = t.ip_protocol ? t.ip_protocol : o.ip_protocol;
      r.start_port = std::max(t.start_port, o.start_port);
      r.end_port = std::min(t.end_port, o.end_port);
      r.start = std::max(t.start, o.start);
      r.end = std::min(t.end, o.end);
      if (r.start_port > r.end_port || r.end < r.start) continue;
      if (std::find(out.begin(), out.end(), r) == out.end()) out.push_back(r);
    }
  return out;
}

bool ts_subset(const std::vector<TrafficSelector>& got,
               const std::vector<TrafficSelector>& offered) {
  if (got.empty()) return false;
  for (const auto& g : got) {
    bool ok = false;
    for (const auto& o : offered)
      if (same_family(g, o) && (!o.ip_protocol || o.ip_protocol == g.ip_protocol) &&
          g.start_port >= o.start_port && g.end_port <= o.end_port && !(g.start < o.start) &&
          !(o.end < g.end))
        ok = true;
    if (!ok) return false;
  }
  return true;
}

std::vector<Prefix> ts_prefixes(const std::vector<TrafficSelector>& ts) {
  __extension__ typedef unsigned __int128 U;  // v6 address arithmetic (GCC/Clang)
  std::vector<Prefix> out;
  for (const auto& t : ts) {
    if (!t.start.is_set() || t.start.family != t.end.family) continue;
    const unsigned bits = t.start.is_v4() ? 32 : 128;
    auto num = [&](const IpAddr& a) {
      U v = 0;
      for (unsigned i = 0; i < bits / 8; ++i) v = v << 8 | a.bytes[i];
      return v;
    };
    U lo = num(t.start), hi = num(t.end);
    auto span = [](unsigned k) { return k >= 128 ? ~U(0) : (U(1) << k) - 1; };  // 2^k - 1
    // Largest aligned blocks first; at most 2 * bits prefixes per range.
    while (lo <= hi) {
      unsigned k = 0;  // the block [lo, lo + 2^k - 1]
      while (k < bits && (lo >> k & 1) == 0 && span(k + 1) <= hi - lo) ++k;
      Prefix p;
      p.addr.family = t.start.family;
      for (unsigned i = 0; i < bits / 8; ++i) p.addr.bytes[i] = uint8_t(lo >> (bits - 8 - 8 * i));
      p.len = uint8_t(bits - k);
      out.push_back(p);
      if (hi - lo <= span(k)) break;  // also ends at the last address without wrapping
      lo += span(k) + 1;
    }
  }
  return out;
}

Proposal with_spi(Proposal p, uint32_t spi) {
  p.spi = {uint8_t(spi >> 24), uint8_t(spi >> 16), uint8_t(spi >> 8), uint8_t(spi)};
  return p;
}

std::vector<Proposal> with_spi(std::vector<Proposal> ps, uint32_t spi) {
  for (auto& p : ps) p = with_spi(std::move(p), spi);
  return ps;
}

std::vector<Proposal> with_ike_spi(std::vector<Proposal> ps, uint64_t spi) {
  for (auto& p : ps) {
    p.spi.clear();
    for (int i = 7; i >= 0; --i) p.spi.push_back(uint8_t(spi >> (8 * i)));
  }
  return ps;
}

uint32_t spi32_of(const Proposal& p) {
  if (p.spi.size() != 4) return 0;
  return uint32_t(p.spi[0]) << 24 | uint32_t(p.spi[1]) << 16 | uint32_t(p.spi[2]) << 8 | p.spi[3];
}

uint64_t spi64_of(const Proposal& p) {
  if (p.spi.size() != 8) return 0;
  uint64_t v = 0;
  for (uint8_t b : p.spi) v = v << 8 | b;
  return v;
}

std::optional<Suite> accept_response(const std::vector<Proposal>& offered, const SaPayload& reply) {
  return accept_reply(offered, reply);  // transform order is handled there
}

Bytes nat_hash_bytes(uint64_t spi_i, uint64_t spi_r, const Endpoint& e) {
  auto h = nat_detection_hash(spi_i, spi_r, e.addr, e.port);
  return Bytes(h.begin(), h.end());
}

}  // namespace espgw::ike
