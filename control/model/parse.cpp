#include "control/model/parse.h"

#include "control/model/key_file.h"

namespace espgw::model::internal {
namespace {

void parse_gateway_instance(Reader& r, const Field& f, GatewayInstance* gi) {
  gi->mark = f.mark;
  r.map(f,
        {
            {"public_ip", [&](const Field& v) { r.read(v, &gi->public_ip); }, true},
            {"bgp_peering_address", [&](const Field& v) { r.read(v, &gi->bgp_peering_address); }},
        });
}

void parse_asn(Reader& r, const Field& f, uint32_t* asn) {
  uint32_t v = 0;
  if (!r.read_uint(f, &v)) return;
  if (v == 0) {
    r.error(f, "ASN 0 is reserved");
    return;
  }
  *asn = v;
}

void parse_gateway(Reader& r, const Field& f, Gateway* g) {
  g->mark = f.mark;
  r.map(f, {
               {"name", [&](const Field& v) { r.read(v, &g->name); }, true},
               {"asn",
                [&](const Field& v) {
                  parse_asn(r, v, &g->asn);
                  g->asn_set = true;
                }},
               {"address_spaces", [&](const Field& v) { r.read(v, &g->address_spaces); }},
               {"active_active", [&](const Field& v) { r.read(v, &g->active_active); }},
               {"instances",
                [&](const Field& v) {
                  r.list(v, [&](const Field& item) {
                    GatewayInstance gi;
                    parse_gateway_instance(r, item, &gi);
                    g->instances.push_back(gi);
                  });
                },
                true},
               {"max_connections", [&](const Field& v) { r.read_uint(v, &g->max_connections); }},
           });
}

void parse_lng(Reader& r, const Field& f, LocalNetworkGateway* l) {
  l->mark = f.mark;
  r.map(f, {
               {"name", [&](const Field& v) { r.read(v, &l->name); }, true},
               {"gateway_ip", [&](const Field& v) { r.read(v, &l->gateway_ip); }, true},
               {"address_prefixes", [&](const Field& v) { r.read(v, &l->address_prefixes); }},
               {"asn", [&](const Field& v) { parse_asn(r, v, &l->asn); }},
               {"bgp_peering_address", [&](const Field& v) { r.read(v, &l->bgp_peering_address); }},
           });
}

void parse_policy(Reader& r, const Field& f, IpsecPolicy* p) {
  auto strings = [&](const Field& v, std::vector<std::string>* out) {
    r.list(v, [&](const Field& item) {
      std::string s;
      if (r.read(item, &s)) out->push_back(s);
    });
  };
  r.map(
      f,
      {
          {"ike", [&](const Field& v) { strings(v, &p->ike); }},
          {"esp", [&](const Field& v) { strings(v, &p->esp); }},
          {"sa_lifetime_seconds", [&](const Field& v) { r.read_uint(v, &p->sa_lifetime_seconds); }},
          {"sa_data_size_kb", [&](const Field& v) { r.read_uint(v, &p->sa_data_size_kb); }},
          {"sa_lifetime_packets",
           [&](const Field& v) {
             uint64_t n = 0;
             if (r.read_uint(v, &n)) p->sa_lifetime_packets = n;
           }},
          {"ike_lifetime_seconds",
           [&](const Field& v) { r.read_uint(v, &p->ike_lifetime_seconds); }},
          {"dpd_timeout_seconds", [&](const Field& v) { r.read_uint(v, &p->dpd_timeout_seconds); }},
      });
}

void parse_bgp(Reader& r, const Field& f, BgpSettings* b) {
  b->mark = f.mark;
  r.map(f, {
               {"hold_time", [&](const Field& v) { r.read_uint(v, &b->hold_time); }},
               {"keepalive",
                [&](const Field& v) {
                  uint32_t k = 0;
                  if (r.read_uint(v, &k)) b->keepalive = k;
                }},
               {"max_prefixes", [&](const Field& v) { r.read_uint(v, &b->max_prefixes); }},
               {"max_prefix_action",
                [&](const Field& v) {
                  r.read_enum(v, &b->max_prefix_action,
                              {{"reset", MaxPrefixAction::kReset},
                               {"discard", MaxPrefixAction::kDiscard},
                               {"warn", MaxPrefixAction::kWarn}});
                }},
               {"advertise_default", [&](const Field& v) { r.read(v, &b->advertise_default); }},
           });
}

void parse_connection(Reader& r, const Field& f, const std::string& key_dir, Connection* c) {
  c->mark = f.mark;
  int peer_keys = 0;
  auto peer = [&](const Field& v) {
    ++peer_keys;
    r.read(v, &c->peer);
  };
  bool ok = r.map(
      f, {
             {"name", [&](const Field& v) { r.read(v, &c->name); }, true},
             {"type",
              [&](const Field& v) {
                r.read_enum(
                    v, &c->type,
                    {{"ipsec", ConnectionType::kIpsec}, {"vnet2vnet", ConnectionType::kVnet2Vnet}});
              }},
             {"peer", peer},
             {"local_network_gateway", peer},
             {"shared_key_file",
              [&](const Field& v) {
                if (!r.read(v, &c->shared_key_file)) return;
                if (c->shared_key_file.empty()) {
                  r.error(v, "empty file name");
                  return;
                }
                auto res = read_psk_file(resolve(key_dir, c->shared_key_file));
                if (!res.error.empty())
                  r.error(v, res.error);
                else
                  c->shared_key = std::move(res.secret);
              },
              true},
             {"enable_bgp", [&](const Field& v) { r.read(v, &c->enable_bgp); }},
             {"bgp", [&](const Field& v) { parse_bgp(r, v, &c->bgp); }},
             {"connection_mode",
              [&](const Field& v) {
                r.read_enum(v, &c->mode,
                            {{"default", ConnectionMode::kDefault},
                             {"initiator_only", ConnectionMode::kInitiatorOnly},
                             {"responder_only", ConnectionMode::kResponderOnly}});
              }},
             {"force_udp_encap", [&](const Field& v) { r.read(v, &c->force_udp_encap); }},
             {"local_id", [&](const Field& v) { r.read(v, &c->local_id); }},
             {"remote_id", [&](const Field& v) { r.read(v, &c->remote_id); }},
             {"use_policy_based_traffic_selectors",
              [&](const Field& v) { r.read(v, &c->use_policy_based_traffic_selectors); }},
             {"local_traffic_selectors",
              [&](const Field& v) { r.read(v, &c->local_traffic_selectors); }},
             {"remote_traffic_selectors",
              [&](const Field& v) { r.read(v, &c->remote_traffic_selectors); }},
             {"tcp_mss_clamp", [&](const Field& v) { r.read_uint(v, &c->tcp_mss_clamp); }},
             {"replay_window", [&](const Field& v) { r.read_uint(v, &c->replay_window); }},
             {"ipsec_policy", [&](const Field& v) { parse_policy(r, v, &c->ipsec_policy); }},
         });
  if (!ok) return;
  if (peer_keys == 0)
    r.error(f, "missing required key 'peer' (or its alias 'local_network_gateway')");
  else if (peer_keys > 1)
    r.error(f.mark, f.path + ".peer", "give either 'peer' or 'local_network_gateway', not both");
}

void fill_defaults(Config* c) {
  Instance& in = c->instance;
  const std::string id = c->gateway.name + "-" + std::to_string(in.index);
  if (in.control_socket.empty()) in.control_socket = "/run/espgw/" + id + ".sock";
  if (in.file_prefix.empty()) in.file_prefix = "espgw-" + id;
  if (in.state_dir.empty()) in.state_dir = "/var/lib/espgw";
  if (in.dataplane.lcores.empty())
    in.dataplane.lcores = "0-" + std::to_string(in.dataplane.workers);
}

}  // namespace

void parse_config(Reader& r, const YAML::Node& root, Config* c) {
  const std::string key_dir = base_dir(c->path);
  Field top{root, "", mark_of(root)};
  if (!root.IsMap()) {
    r.error(top,
            "the config must be a mapping with keys gateway, local_network_gateways, "
            "connections and instance");
    return;
  }
  r.map(top, {
                 {"gateway", [&](const Field& v) { parse_gateway(r, v, &c->gateway); }, true},
                 {"local_network_gateways",
                  [&](const Field& v) {
                    r.list(v, [&](const Field& item) {
                      LocalNetworkGateway l;
                      parse_lng(r, item, &l);
                      c->local_network_gateways.push_back(std::move(l));
                    });
                  }},
                 {"connections",
                  [&](const Field& v) {
                    r.list(v, [&](const Field& item) {
                      Connection conn;
                      parse_connection(r, item, key_dir, &conn);
                      c->connections.push_back(std::move(conn));
                    });
                  }},
                 {"instance", [&](const Field& v) { parse_instance(r, v, key_dir, &c->instance); },
                  true},
             });
  fill_defaults(c);
}

}  // namespace espgw::model::internal
