// A connection as the IKE daemon sees it: addresses, identities, PSK, parsed proposals, traffic
// selectors and timers, built from the resource model (or directly by tests).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "control/ike/payloads.h"
#include "control/model/config.h"
#include "dataplane/net/ip.h"
#include "control/model/secret.h"

namespace espgw::ike {

struct ConnConfig {
  std::string name;
  IpAddr local, remote;          // our IKE address, the peer's
  IdPayload local_id;            // default: our address
  std::optional<IdPayload> remote_id;  // when set, the peer's ID must match
  Secret psk;
  std::vector<Proposal> ike;     // offered/accepted IKE proposals (each with a DH group)
  std::vector<Proposal> esp;     // ESP proposals; a DH transform means PFS on rekey
  std::vector<Prefix> local_ts, remote_ts;  // empty = route based (0/0 and ::/0)
  bool initiate = true;          // mode default / initiator_only
  bool respond = true;           // mode default / responder_only
  bool force_encap = false;
  bool fragmentation = true;     // announce/accept IKE fragmentation (RFC 7383)
  uint32_t child_lifetime_s = 27000;
  uint64_t child_lifetime_bytes = 0;  // 0 = unlimited
  uint64_t child_lifetime_packets = 0;  // 0 = unlimited
  uint32_t ike_lifetime_s = 28800;
  uint32_t dpd_timeout_s = 45;
  uint32_t replay_window = 1024;

  uint16_t first_dh() const;     // the group of our first IKE proposal
  uint16_t esp_dh() const;       // PFS group (0 = none)
};

// The connection named conn of cfg, for the gateway instance cfg.instance.index; nullopt with
// err when the peer is unknown or a proposal does not parse.
std::optional<ConnConfig> conn_from_model(const model::Config& cfg, const model::Connection& conn,
                                          std::string* err);

// Proposal lists in swanctl syntax (ike::parse_proposal); numbers assigned 1..n.
std::optional<std::vector<Proposal>> parse_proposals(const std::vector<std::string>& list,
                                                     ProtocolId protocol, std::string* err);

}  // namespace espgw::ike
