// Rules about the gateway, the local network gateways (sites) and the connections.
#include "control/model/validate.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "control/model/proposal.h"
#include "control/model/rule_util.h"

namespace espgw::model {
namespace rules {

using util::add;
using util::at;

namespace {

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char ch : s) {
    bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

void check_name(Errors& e, const Config& c, Mark m, const std::string& field,
                const std::string& s) {
  if (!valid_name(s)) add(e, c, m, field, "invalid name (use 1 to 64 of A-Z a-z 0-9 _ . -)");
}

// Reports every entry whose name() was already used by an earlier entry of the same list.
template <class T, class Name>
void unique_names(Errors& e, const Config& c, const std::vector<T>& v, std::string_view list,
                  Name name) {
  std::map<std::string, size_t> first;
  for (size_t i = 0; i < v.size(); ++i) {
    auto [it, fresh] = first.emplace(name(v[i]), i);
    if (!fresh)
      add(e, c, v[i].mark, at(list, i) + ".name",
          "duplicate name '" + it->first + "' (also " + at(list, it->second) + ")");
  }
}

std::map<std::string_view, const LocalNetworkGateway*> lngs_by_name(const Config& c) {
  std::map<std::string_view, const LocalNetworkGateway*> m;
  for (const auto& l : c.local_network_gateways) m.emplace(l.name, &l);
  return m;
}

const LocalNetworkGateway* find(const std::map<std::string_view, const LocalNetworkGateway*>& m,
                                const std::string& name) {
  auto it = m.find(name);
  return it == m.end() ? nullptr : it->second;
}

}  // namespace

void names_valid(const Config& c, Errors& e) {
  check_name(e, c, c.gateway.mark, "gateway.name", c.gateway.name);
  for (size_t i = 0; i < c.local_network_gateways.size(); ++i)
    check_name(e, c, c.local_network_gateways[i].mark, at("local_network_gateways", i) + ".name",
               c.local_network_gateways[i].name);
  for (size_t i = 0; i < c.connections.size(); ++i)
    check_name(e, c, c.connections[i].mark, at("connections", i) + ".name", c.connections[i].name);
  for (size_t i = 0; i < c.instance.ports.size(); ++i)
    check_name(e, c, c.instance.ports[i].mark, at("instance.ports", i) + ".name",
               c.instance.ports[i].name);
  for (size_t i = 0; i < c.instance.tunnels.size(); ++i)
    check_name(e, c, c.instance.tunnels[i].mark, at("instance.tunnels", i) + ".name",
               c.instance.tunnels[i].name);
}

void names_unique(const Config& c, Errors& e) {
  auto name = [](const auto& x) { return x.name; };
  unique_names(e, c, c.local_network_gateways, "local_network_gateways", name);
  unique_names(e, c, c.connections, "connections", name);
  unique_names(e, c, c.instance.ports, "instance.ports", name);
  unique_names(e, c, c.instance.tunnels, "instance.tunnels", name);
}

void address_spaces_disjoint(const Config& c, Errors& e) {
  // Gateway address spaces must not overlap anything; an LNG's prefixes must not overlap another
  // LNG's (overlap within one LNG is harmless). Aligned prefixes overlap only by containment, so a
  // sweep over the sorted prefixes with a stack of enclosing ones finds every clash in n log n
  // (the stack is at most 129 deep: identical prefixes share one entry).
  struct Owned {
    Prefix p;
    std::string field;
    int owner;  // -1 = gateway, else LNG index
    Mark mark;
  };
  std::vector<Owned> all;
  for (size_t i = 0; i < c.gateway.address_spaces.size(); ++i)
    all.push_back(
        {c.gateway.address_spaces[i], at("gateway.address_spaces", i), -1, c.gateway.mark});
  for (size_t l = 0; l < c.local_network_gateways.size(); ++l) {
    const auto& lng = c.local_network_gateways[l];
    for (size_t i = 0; i < lng.address_prefixes.size(); ++i)
      all.push_back({lng.address_prefixes[i],
                     at(at("local_network_gateways", l) + ".address_prefixes", i), int(l),
                     lng.mark});
  }
  auto clash = [&](size_t a, size_t b) {
    return all[a].owner == -1 || all[b].owner == -1 || all[a].owner != all[b].owner;
  };
  std::vector<size_t> order(all.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return std::tie(all[a].p, a) < std::tie(all[b].p, b); });
  struct Open {
    size_t first;                 // first entry with this prefix
    std::optional<size_t> other;  // an entry that clashes with `first`, if any
  };
  std::vector<Open> stack;
  std::set<size_t> reported;
  for (size_t x : order) {
    while (!stack.empty() && !all[stack.back().first].p.contains(all[x].p.addr)) stack.pop_back();
    for (auto it = stack.rbegin(); it != stack.rend(); ++it) {
      std::optional<size_t> with;
      if (clash(it->first, x))
        with = it->first;
      else if (it->other && clash(*it->other, x))
        with = it->other;
      if (!with) continue;
      size_t later = std::max(x, *with), earlier = std::min(x, *with);  // report on the later one
      if (reported.insert(later).second) {
        const Owned& b = all[later];
        add(e, c, b.mark, b.field,
            std::string(b.owner == -1 ? "gateway address space " : "address prefix ") + b.p.str() +
                " overlaps " + all[earlier].p.str() + " (" + all[earlier].field + ")");
      }
      break;
    }
    if (!stack.empty() && all[stack.back().first].p == all[x].p) {
      Open& top = stack.back();
      if (!top.other && clash(top.first, x)) top.other = x;
    } else {
      stack.push_back({x, std::nullopt});
    }
  }
}

void lng_gateway_ips_unique(const Config& c, Errors& e) {
  std::map<IpAddr, size_t> first;
  for (size_t i = 0; i < c.local_network_gateways.size(); ++i) {
    const auto& l = c.local_network_gateways[i];
    auto [it, fresh] = first.emplace(l.gateway_ip, i);
    if (!fresh)
      add(e, c, l.mark, at("local_network_gateways", i) + ".gateway_ip",
          "gateway_ip " + l.gateway_ip.str() + " is already used by " +
              at("local_network_gateways", it->second) + " (" +
              c.local_network_gateways[it->second].name + ")");
  }
}

void asns_not_reserved(const Config& c, Errors& e) {
  if (c.gateway.asn_set && asn_reserved(c.gateway.asn))
    add(e, c, c.gateway.mark, "gateway.asn",
        "ASN " + std::to_string(c.gateway.asn) + " is reserved");
  for (size_t i = 0; i < c.local_network_gateways.size(); ++i) {
    const auto& l = c.local_network_gateways[i];
    if (l.asn != 0 && asn_reserved(l.asn))
      add(e, c, l.mark, at("local_network_gateways", i) + ".asn",
          "ASN " + std::to_string(l.asn) + " is reserved");
  }
}

void gateway_instances(const Config& c, Errors& e) {
  const Gateway& g = c.gateway;
  size_t want = g.active_active ? 2 : 1;
  if (g.instances.size() != want)
    add(e, c, g.mark, "gateway.instances",
        g.active_active
            ? "active_active needs exactly 2 instances, found " + std::to_string(g.instances.size())
            : "needs exactly 1 instance (set active_active: true for 2), found " +
                  std::to_string(g.instances.size()));
  if (c.instance.index >= g.instances.size())
    add(e, c, c.instance.mark, "instance.index",
        std::to_string(c.instance.index) + " is not an entry of gateway.instances (" +
            std::to_string(g.instances.size()) + " configured)");
  std::map<IpAddr, size_t> public_ips, bgp_ips;
  for (size_t i = 0; i < g.instances.size(); ++i) {
    const GatewayInstance& gi = g.instances[i];
    const std::string f = at("gateway.instances", i);
    if (auto [it, fresh] = public_ips.emplace(gi.public_ip, i); !fresh)
      add(e, c, gi.mark, f + ".public_ip",
          "public_ip " + gi.public_ip.str() + " is also " + at("gateway.instances", it->second) +
              ".public_ip");
    if (!gi.bgp_peering_address.is_set()) continue;
    if (auto [it, fresh] = bgp_ips.emplace(gi.bgp_peering_address, i); !fresh)
      add(e, c, gi.mark, f + ".bgp_peering_address",
          "bgp_peering_address " + gi.bgp_peering_address.str() + " is also " +
              at("gateway.instances", it->second) + ".bgp_peering_address");
  }
}

void connections_bounded(const Config& c, Errors& e) {
  if (c.connections.size() > c.gateway.max_connections)
    add(e, c, c.gateway.mark, "connections",
        std::to_string(c.connections.size()) + " connections exceed gateway.max_connections (" +
            std::to_string(c.gateway.max_connections) + ")");
}

void connection_peers_exist(const Config& c, Errors& e) {
  const auto lngs = lngs_by_name(c);
  for (size_t i = 0; i < c.connections.size(); ++i) {
    const auto& conn = c.connections[i];
    if (!find(lngs, conn.peer))
      add(e, c, conn.mark, at("connections", i) + ".peer",
          "no local network gateway named '" + conn.peer + "'");
  }
}

void bgp_requirements(const Config& c, Errors& e) {
  const auto lngs = lngs_by_name(c);
  bool any_bgp = false;
  for (size_t i = 0; i < c.connections.size(); ++i) {
    const auto& conn = c.connections[i];
    if (!conn.enable_bgp) continue;
    any_bgp = true;
    const std::string f = at("connections", i);
    if (!c.gateway.asn_set) add(e, c, conn.mark, f + ".enable_bgp", "BGP needs gateway.asn");
    const LocalNetworkGateway* l = find(lngs, conn.peer);
    if (!l) continue;  // reported by connection_peers_exist
    if (l->asn == 0)
      add(e, c, conn.mark, f + ".enable_bgp",
          "BGP needs an asn on local network gateway '" + l->name + "'");
    if (!l->bgp_peering_address.is_set())
      add(e, c, conn.mark, f + ".enable_bgp",
          "BGP needs a bgp_peering_address on local network gateway '" + l->name + "'");
  }
  if (!any_bgp) return;
  for (size_t i = 0; i < c.gateway.instances.size(); ++i)
    if (!c.gateway.instances[i].bgp_peering_address.is_set())
      add(e, c, c.gateway.instances[i].mark, at("gateway.instances", i) + ".bgp_peering_address",
          "required when a connection enables BGP");
}

void ebgp_asns_differ(const Config& c, Errors& e) {
  if (!c.gateway.asn_set) return;
  for (size_t i = 0; i < c.local_network_gateways.size(); ++i) {
    const auto& l = c.local_network_gateways[i];
    if (l.asn != 0 && l.asn == c.gateway.asn)
      add(e, c, l.mark, at("local_network_gateways", i) + ".asn",
          "ASN " + std::to_string(l.asn) +
              " equals gateway.asn; BGP peers must be in different ASNs (eBGP)");
  }
}

void bgp_active_active_prefixes(const Config& c, Errors& e) {
  if (!c.gateway.active_active) return;
  const auto lngs = lngs_by_name(c);
  std::set<std::string> reported;
  for (const auto& conn : c.connections) {
    if (!conn.enable_bgp) continue;
    const LocalNetworkGateway* l = find(lngs, conn.peer);
    if (!l || !l->bgp_peering_address.is_set() || !reported.insert(l->name).second) continue;
    const Prefix host{l->bgp_peering_address, uint8_t(l->bgp_peering_address.is_v4() ? 32 : 128)};
    size_t li = size_t(l - c.local_network_gateways.data());
    for (size_t i = 0; i < l->address_prefixes.size(); ++i)
      if (l->address_prefixes[i] != host)
        add(e, c, l->mark, at(at("local_network_gateways", li) + ".address_prefixes", i),
            "with BGP on an active-active gateway give only the peer's " + host.str() +
                " here (other prefixes are learned over BGP)");
  }
}

void ipsec_policies(const Config& c, Errors& e) {
  for (size_t i = 0; i < c.connections.size(); ++i) {
    const auto& conn = c.connections[i];
    const IpsecPolicy& p = conn.ipsec_policy;
    const std::string f = at("connections", i) + ".ipsec_policy";
    for (size_t j = 0; j < p.ike.size(); ++j)
      if (auto r = parse_ike_proposal(p.ike[j]); !r)
        add(e, c, conn.mark, at(f + ".ike", j), r.error);
    for (size_t j = 0; j < p.esp.size(); ++j)
      if (auto r = parse_esp_proposal(p.esp[j]); !r)
        add(e, c, conn.mark, at(f + ".esp", j), r.error);
    util::range(e, c, conn.mark, f + ".dpd_timeout_seconds", p.dpd_timeout_seconds, 9, 3600);
    if (p.sa_lifetime_seconds == 0)
      add(e, c, conn.mark, f + ".sa_lifetime_seconds", "must be greater than 0");
    if (p.sa_lifetime_packets && *p.sa_lifetime_packets < 1000)
      add(e, c, conn.mark, f + ".sa_lifetime_packets", "must be at least 1000");
    if (p.sa_lifetime_packets && *p.sa_lifetime_packets > (uint64_t(1) << 62))
      add(e, c, conn.mark, f + ".sa_lifetime_packets", "must be at most 2^62");
    if (p.sa_data_size_kb > (uint64_t(1) << 53))  // kB * 1024 must fit the 64-bit byte limit
      add(e, c, conn.mark, f + ".sa_data_size_kb", "must be at most 2^53");
    if (p.ike_lifetime_seconds == 0)
      add(e, c, conn.mark, f + ".ike_lifetime_seconds", "must be greater than 0");
  }
}

void connection_ranges(const Config& c, Errors& e) {
  for (size_t i = 0; i < c.connections.size(); ++i) {
    const auto& conn = c.connections[i];
    const std::string f = at("connections", i);
    util::range(e, c, conn.mark, f + ".replay_window", conn.replay_window, 64, 4096);
    util::mss_clamp(e, c, conn.mark, f + ".tcp_mss_clamp", conn.tcp_mss_clamp);
    // An FQDN: dot-separated labels of letters, digits and '-' (1..63 each, 253 in all).
    auto fqdn_ok = [](const std::string& s) {
      if (s.empty() || s.size() > 253) return false;
      size_t label = 0;
      for (size_t k = 0; k <= s.size(); ++k) {
        char ch = k < s.size() ? s[k] : '.';
        if (ch == '.') {
          if (label == 0 || label > 63 || s[k - 1] == '-' || s[k - label] == '-') return false;
          label = 0;
        } else if (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-') {
          ++label;
        } else {
          return false;
        }
      }
      return true;
    };
    for (auto [name, id] : {std::pair<const char*, const std::string*>{".local_id", &conn.local_id},
                            {".remote_id", &conn.remote_id}})
      if (!id->empty() && !IpAddr::parse(*id) && !fqdn_ok(*id))
        add(e, c, conn.mark, f + name, "'" + *id + "' is neither an IP address nor an FQDN");
  }
}

void bgp_settings(const Config& c, Errors& e) {
  for (size_t i = 0; i < c.connections.size(); ++i) {
    const BgpSettings& b = c.connections[i].bgp;
    const std::string f = at("connections", i) + ".bgp";
    // RFC 4271 s4.2: the hold time is 0 (no keepalives, no hold timer) or at least 3 seconds.
    if (b.hold_time != 0 && (b.hold_time < 3 || b.hold_time > 65535)) {
      add(e, c, b.mark, f + ".hold_time",
          std::to_string(b.hold_time) + " is out of range (0 = no keepalives, or 3..65535)");
      continue;
    }
    if (!b.keepalive) continue;  // hold_time / 3
    if (b.hold_time == 0 && *b.keepalive != 0)
      add(e, c, b.mark, f + ".keepalive", "must be 0 (or left out) when hold_time is 0");
    else if (b.hold_time != 0 && (*b.keepalive == 0 || *b.keepalive >= b.hold_time))
      add(e, c, b.mark, f + ".keepalive",
          std::to_string(*b.keepalive) + " must be at least 1 and less than hold_time (" +
              std::to_string(b.hold_time) + ")");
  }
}

}  // namespace rules

std::vector<ConfigError> validate(const Config& c) {
  using Rule = void (*)(const Config&, rules::Errors&);
  static constexpr Rule kRules[] = {
      rules::names_valid,
      rules::names_unique,
      rules::address_spaces_disjoint,
      rules::lng_gateway_ips_unique,
      rules::asns_not_reserved,
      rules::gateway_instances,
      rules::connections_bounded,
      rules::connection_peers_exist,
      rules::bgp_requirements,
      rules::ebgp_asns_differ,
      rules::bgp_active_active_prefixes,
      rules::ipsec_policies,
      rules::connection_ranges,
      rules::bgp_settings,
      rules::ports,
      rules::routes,
      rules::tunnel_endpoints,
      rules::tunnel_sas,
      rules::tunnel_settings,
      rules::instance_settings,
      rules::dataplane_ranges,
  };
  rules::Errors e;
  for (Rule r : kRules) r(c, e);
  return e;
}

}  // namespace espgw::model
