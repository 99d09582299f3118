// JSON views of the data plane's snapshots: `show ports|sas|tunnels|neighbors|routes|counters`.
#include <algorithm>
#include <cstdio>

#include "control/agent/agent.h"
#include "crypto/algo.h"

namespace espgw::agent {

std::string hex_spi(uint32_t spi) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", spi);
  return b;
}

api::Json to_json(const std::vector<dp::PortView>& ports) {
  api::Json a = api::Json::array();
  for (const auto& p : ports) {
    api::Json addrs = api::Json::array();
    for (const auto& ad : p.addrs) addrs.push_back(ad.str());
    a.push_back({{"name", p.name},
                 {"ethdev", p.ethdev},
                 {"mac", dp::mac_str(p.mac)},
                 {"mtu", p.mtu},
                 {"addresses", addrs},
                 {"rx_packets", p.rx_packets},
                 {"rx_bytes", p.rx_bytes},
                 {"tx_packets", p.tx_packets},
                 {"tx_bytes", p.tx_bytes},
                 {"rx_missed", p.rx_missed},
                 {"rx_errors", p.rx_errors},
                 {"tx_errors", p.tx_errors}});
  }
  return a;
}

api::Json to_json(const std::vector<dp::SaView>& sas) {
  api::Json a = api::Json::array();
  for (const auto& sa : sas) {
    api::Json drops = api::Json::object();
    for (size_t i = 0; i < size_t(dp::SaDrop::kCount); ++i) drops[dp::kSaDropNames[i]] = sa.drops[i];
    a.push_back({{"id", sa.id},
                 {"tunnel", sa.tunnel},
                 {"direction", sa.inbound ? "in" : "out"},
                 {"spi", hex_spi(sa.spi)},
                 {"algorithm", std::string(crypto::info(sa.algo).name)},
                 {"local", sa.local.str()},
                 {"remote", sa.remote.str()},
                 {"encap", sa.udp_encap ? "udp4500" : "esp"},
                 {"esn", sa.esn},
                 {"state", sa.expired ? "expired" : "active"},
                 {"packets", sa.packets},
                 {"bytes", sa.bytes},
                 {"seq", sa.seq},
                 {"replay_window", sa.replay_window},
                 {"owner_worker", sa.owner_worker},
                 {"age_seconds", sa.age_seconds},
                 {"hard_seconds_left", sa.hard_seconds_left},
                 {"drops", drops}});
    if (sa.inbound && !sa.remote_ts.empty()) {
      api::Json ts = api::Json::array();
      for (const auto& p : sa.remote_ts) ts.push_back(p.str());
      a.back()["remote_ts"] = ts;
    }
  }
  return a;
}

api::Json to_json(const std::vector<dp::TunnelView>& tunnels) {
  api::Json a = api::Json::array();
  for (const auto& t : tunnels)
    a.push_back({{"name", t.name},
                 {"state", t.up ? "up" : "down"},
                 {"remote", t.spi_out ? t.remote.str() : ""},
                 {"spi_in", t.spi_in ? hex_spi(t.spi_in) : ""},
                 {"spi_out", t.spi_out ? hex_spi(t.spi_out) : ""},
                 {"mtu", t.mtu},
                 {"mss_clamp", t.mss_clamp},
                 {"packets_in", t.packets_in},
                 {"bytes_in", t.bytes_in},
                 {"packets_out", t.packets_out},
                 {"bytes_out", t.bytes_out}});
  return a;
}

api::Json to_json(const std::vector<dp::NeighborView>& neighbors) {
  api::Json a = api::Json::array();
  for (const auto& n : neighbors)
    a.push_back({{"address", n.address.str()},
                 {"port", n.port},
                 {"mac", n.mac},
                 {"state", n.state},
                 {"held", n.held},
                 {"next_hop_refs", n.refs}});
  return a;
}

api::Json to_json(const dp::RoutesView& routes, const dp::RoutePage& page) {
  api::Json a = api::Json::array();
  for (const auto& r : routes.routes) {
    a.push_back({{"prefix", r.prefix.str()},
                 {"source", dp::source_name(r.source)},
                 {"type", r.type},
                 {"nexthop", r.nexthop},
                 {"port", r.port},
                 {"selected", r.selected},
                 {"installed", r.installed}});
    if (r.selected && !r.installed) a.back()["reason"] = r.reason;
  }
  if (!page.paged()) return a;
  api::Json next;
  if (routes.next) next = routes.next->str();
  return {{"routes", std::move(a)}, {"next", std::move(next)}};
}

api::Json counters_json(const dp::Dataplane& dp, bool per_lcore) {
  const dp::CounterSet& cs = dp.counters();
  api::Json drops = api::Json::object(), events = api::Json::object();
  for (size_t i = 0; i < dp::kDropNames.size(); ++i)
    drops[std::string(dp::kDropNames[i])] = cs.total_drop(dp::Drop(i));
  for (size_t i = 0; i < dp::kEventNames.size(); ++i)
    events[std::string(dp::kEventNames[i])] = cs.total_event(dp::Event(i));
  api::Json out{{"drops", drops}, {"events", events}};
  if (!per_lcore) return out;
  std::vector<unsigned> lcores{dp.control_lcore()};
  for (unsigned lc : dp.worker_lcores()) lcores.push_back(lc);
  std::sort(lcores.begin(), lcores.end());
  api::Json l = api::Json::object();
  for (unsigned lc : lcores) {
    const auto& c = cs.lcore[lc];
    api::Json d = api::Json::object();
    for (size_t i = 0; i < dp::kDropNames.size(); ++i)
      if (dp::peek(c.drops[i])) d[std::string(dp::kDropNames[i])] = dp::peek(c.drops[i]);
    api::Json e = api::Json::object();
    for (size_t i = 0; i < dp::kEventNames.size(); ++i)
      if (dp::peek(c.events[i])) e[std::string(dp::kEventNames[i])] = dp::peek(c.events[i]);
    int worker = -1;  // the worker index (the owner_worker of an inbound SA)
    for (size_t w = 0; w < dp.worker_lcores().size(); ++w)
      if (dp.worker_lcores()[w] == lc) worker = int(w);
    l[std::to_string(lc)] = {{"role", lc == dp.control_lcore() ? "control" : "worker"},
                             {"worker", worker},
                             {"polls", dp::peek(c.polls)},
                             {"busy_polls", dp::peek(c.busy_polls)},
                             {"drops", d},
                             {"events", e}};
  }
  out["lcores"] = l;
  return out;
}

dp::RoutePage take_route_page(std::vector<std::string>& args) {
  dp::RoutePage page;
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& w = args[i];
    if ((w == "limit" || w == "after") && i + 1 >= args.size())
      throw api::RequestError("'" + w + "' needs a value");
    if (w == "limit") {
      const std::string& v = args[++i];
      size_t n = 0;
      bool ok = !v.empty() && v.size() <= 9 &&
                std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (ok) n = std::stoul(v);
      if (!ok || n == 0 || n > dp::kMaxRoutePage)
        throw api::RequestError("limit must be 1.." + std::to_string(dp::kMaxRoutePage));
      page.limit = n;
    } else if (w == "after") {
      page.after = Prefix::parse(args[++i]);
      if (!page.after) throw api::RequestError("bad prefix '" + args[i] + "' after 'after'");
    } else {
      rest.push_back(w);
    }
  }
  if (page.after && !page.limit) page.limit = dp::kMaxRoutePage;
  args = std::move(rest);
  return page;
}

}  // namespace espgw::agent
