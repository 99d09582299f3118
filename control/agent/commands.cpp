// The espgwctl commands of the data plane's state: show ports|routes|neighbors|counters|status|
// tunnels|sas, route add|del|batch, neighbor add.
#include <sys/prctl.h>

#include "control/agent/agent.h"

namespace espgw::agent {

// Stages one "add PREFIX (via IP [dev PORT] | dev PORT | blackhole)" or "del PREFIX".
void Agent::stage_route(const api::Args& a, bool add) {
  if (a.empty()) throw api::RequestError("missing prefix");
  auto p = Prefix::parse(a[0]);
  if (!p) throw api::RequestError("bad prefix '" + a[0] + "' (host bits must be zero)");
  std::string err;
  if (!add) {
    if (a.size() != 1) throw api::RequestError("route del takes only a prefix");
    if (!dp_.route_del(*p, dp::RouteSource::kApi)) throw api::RequestError("no api route for " + p->str());
    return;
  }
  dp::NhSpec nh;
  std::string via, dev;
  bool blackhole = false;
  for (size_t i = 1; i < a.size(); ++i) {
    if (a[i] == "via" && i + 1 < a.size()) via = a[++i];
    else if (a[i] == "dev" && i + 1 < a.size()) dev = a[++i];
    else if (a[i] == "blackhole") blackhole = true;
    else throw api::RequestError("unexpected '" + a[i] + "'");
  }
  if (blackhole) {
    if (!via.empty() || !dev.empty()) throw api::RequestError("blackhole takes no via/dev");
    nh.kind = dp::NhKind::kBlackhole;
  } else if (!via.empty()) {
    auto gw = IpAddr::parse(via);
    if (!gw) throw api::RequestError("bad next hop '" + via + "'");
    if (gw->family != p->addr.family) throw api::RequestError("next hop family does not match prefix");
    if (!dp_.resolve_via(*gw, dev, nh, &err)) throw api::RequestError(err);
  } else if (!dev.empty()) {
    nh.kind = dp::NhKind::kConnected;
    auto i = dp_.port_index(dev);
    if (!i) throw api::RequestError("no port named " + dev);
    nh.port = *i;
  } else {
    throw api::RequestError("need 'via IP', 'dev PORT' or 'blackhole'");
  }
  if (!dp_.route_add(*p, dp::RouteSource::kApi, nh, &err)) throw api::RequestError(err);
}

// route add ... | route del ... | route batch CMD [; CMD]... — all or nothing, one FIB publish.
api::Json Agent::route_cmd(const api::Args& a, const std::string& verb) {
  std::vector<std::pair<bool, api::Args>> cmds;
  if (verb == "batch") {
    api::Args cur;
    auto flush = [&] {
      if (cur.empty()) return;
      if (cur[0] != "add" && cur[0] != "del")
        throw api::RequestError("batch items are 'add ...' or 'del ...', got '" + cur[0] + "'");
      cmds.push_back({cur[0] == "add", api::Args(cur.begin() + 1, cur.end())});
      cur.clear();
    };
    for (const auto& w : a) {
      if (w == ";") flush();
      else cur.push_back(w);
    }
    flush();
    if (cmds.empty()) throw api::RequestError("empty batch");
  } else {
    cmds.push_back({verb == "add", a});
  }
  dp_.route_checkpoint();
  try {
    for (const auto& [add, args] : cmds) stage_route(args, add);
    std::string err;
    if (!dp_.route_commit(&err)) throw api::RequestError(err);
  } catch (...) {
    dp_.route_rollback();
    throw;
  }
  return {{"applied", cmds.size()}, {"fib_generation", dp_.fib_generation()}};
}

void Agent::register_commands() {
  server_.add({"show", "ports"}, [this](const api::Args&) { return to_json(dp_.ports()); },
              "show ports");
  server_.add({"show", "routes"},
              [this](const api::Args& a) {
                api::Args w = a;
                dp::RoutePage page = take_route_page(w);
                return to_json(dp_.routes(page), page);
              },
              "show routes [limit N] [after PREFIX]");
  server_.add({"show", "neighbors"}, [this](const api::Args&) { return to_json(dp_.neighbors()); },
              "show neighbors");
  server_.add({"show", "counters"},
              [this](const api::Args& a) {
                return counters_json(dp_, !a.empty() && a[0] == "lcores");
              },
              "show counters [lcores]");
  server_.add({"show", "status"},
              [this](const api::Args&) {
                return api::Json{{"gateway", cfg_.gateway.name},
                                 {"instance", cfg_.instance.index},
                                 {"workers", dp_.workers()},
                                 {"fib_generation", dp_.fib_generation()},
                                 {"routes", dp_.route_count()},
                                 // keys live in this process: no core dumps, no ptrace by
                                 // other users (main sets PR_SET_DUMPABLE 0)
                                 {"core_dumps", prctl(PR_GET_DUMPABLE) == 1}};
              },
              "show status");
  server_.add({"neighbor", "add"},
              [this](const api::Args& a) {
                // neighbor add IP lladdr MAC dev PORT
                if (a.size() != 5 || a[1] != "lladdr" || a[3] != "dev")
                  throw api::RequestError("expected: neighbor add IP lladdr MAC dev PORT");
                auto ip = IpAddr::parse(a[0]);
                if (!ip) throw api::RequestError("bad address '" + a[0] + "'");
                std::array<uint8_t, 6> mac;
                if (!dp::parse_mac(a[2], mac)) throw api::RequestError("bad MAC '" + a[2] + "'");
                auto port = dp_.port_index(a[4]);
                if (!port) throw api::RequestError("no port named " + a[4]);
                std::string err;
                if (!dp_.add_neighbor(*port, *ip, mac, &err)) throw api::RequestError(err);
                return api::Json{{"added", a[0]}};
              },
              "neighbor add IP lladdr MAC dev PORT");
  server_.add({"show", "tunnels"}, [this](const api::Args&) { return to_json(dp_.tunnels()); },
              "show tunnels");
  server_.add({"show", "sas"}, [this](const api::Args&) { return to_json(dp_.sas()); },
              "show sas");
  server_.add({"route", "add"}, [this](const api::Args& a) { return route_cmd(a, "add"); },
              "route add PREFIX (via IP [dev PORT] | dev PORT | blackhole)");
  server_.add({"route", "del"}, [this](const api::Args& a) { return route_cmd(a, "del"); },
              "route del PREFIX");
  server_.add({"route", "batch"}, [this](const api::Args& a) { return route_cmd(a, "batch"); },
              "route batch (add ...|del ...) [; (add ...|del ...)]...  (atomic)");
}

}  // namespace espgw::agent
