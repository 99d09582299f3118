#include "control/ike/conn.h"

#include <algorithm>
#include <cstdint>

#include "control/ike/transforms.h"
#include "control/model/proposal.h"

namespace espgw::ike {

namespace {
uint16_t dh_of(const std::vector<Proposal>& v) {
  for (const auto& p : v)
    for (const auto& t : p.transforms)
      if (t.type == TransformType::kDh && t.id != dh::kNone) return t.id;
  return 0;
}

// "192.0.2.1", "2001:db8::1" or an FQDN (the model validated it); empty: none.
std::optional<IdPayload> id_of(const std::string& s) {
  if (s.empty()) return std::nullopt;
  if (auto a = IpAddr::parse(s)) return IdPayload::from_addr(*a);
  return IdPayload::fqdn(s);
}
}  // namespace

uint16_t ConnConfig::first_dh() const { return dh_of(ike); }
uint16_t ConnConfig::esp_dh() const { return dh_of(esp); }

std::optional<std::vector<Proposal>> parse_proposals(const std::vector<std::string>& list,
                                                     ProtocolId protocol, std::string* err) {
  std::vector<Proposal> out;
  for (const auto& s : list) {
    auto p = parse_proposal(s, protocol);
    if (!p) {
      *err = "unsupported proposal '" + s + "'";
      return std::nullopt;
    }
    p->number = uint8_t(out.size() + 1);
    out.push_back(std::move(*p));
  }
  return out;
}

std::optional<ConnConfig> conn_from_model(const model::Config& cfg, const model::Connection& conn,
                                          std::string* err) {
  const model::LocalNetworkGateway* lng = cfg.find_lng(conn.peer);
  if (!lng) {
    *err = "connection " + conn.name + ": no local network gateway " + conn.peer;
    return std::nullopt;
  }
  if (cfg.instance.index >= cfg.gateway.instances.size()) {
    *err = "no gateway instance " + std::to_string(cfg.instance.index);
    return std::nullopt;
  }
  ConnConfig c;
  c.name = conn.name;
  c.local = cfg.gateway.instances[cfg.instance.index].public_ip;
  c.remote = lng->gateway_ip;
  c.local_id = id_of(conn.local_id).value_or(IdPayload::from_addr(c.local));
  c.remote_id = id_of(conn.remote_id);
  c.psk = conn.shared_key;
  const auto& pol = conn.ipsec_policy;
  std::vector<std::string> ike = pol.ike, esp = pol.esp;
  if (ike.empty())
    for (const auto& p : model::default_ike_proposals()) ike.push_back(p.str());
  if (esp.empty())
    for (const auto& p : model::default_esp_proposals()) esp.push_back(p.str());
  auto ip = parse_proposals(ike, ProtocolId::kIke, err);
  auto ep = parse_proposals(esp, ProtocolId::kEsp, err);
  if (!ip || !ep) {
    *err = "connection " + conn.name + ": " + *err;
    return std::nullopt;
  }
  c.ike = std::move(*ip);
  c.esp = std::move(*ep);
  c.local_ts = conn.local_traffic_selectors;
  c.remote_ts = conn.remote_traffic_selectors;
  c.initiate = conn.mode != model::ConnectionMode::kResponderOnly;
  c.respond = conn.mode != model::ConnectionMode::kInitiatorOnly;
  c.force_encap = conn.force_udp_encap;
  c.child_lifetime_s = pol.sa_lifetime_seconds;
  // Saturating (validation bounds it to 2^53 kB): a wrapped limit would expire the SA at once.
  c.child_lifetime_bytes = std::min<uint64_t>(pol.sa_data_size_kb, UINT64_MAX / 1024) * 1024;
  c.child_lifetime_packets = pol.sa_lifetime_packets.value_or(0);
  c.ike_lifetime_s = pol.ike_lifetime_seconds;
  c.dpd_timeout_s = pol.dpd_timeout_seconds;
  c.replay_window = conn.replay_window;
  return c;
}

}  // namespace espgw::ike
