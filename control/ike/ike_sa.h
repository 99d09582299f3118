// The state of one IKE SA and its Child SAs. Plain data plus small helpers; the exchanges that
// change it are the tasks (tasks/*.cpp), message IDs and retransmits are the TaskManager's.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control/ike/conn.h"
#include "control/ike/env.h"
#include "control/ike/frag.h"
#include "control/ike/keymat.h"
#include "control/ike/sk.h"
#include "control/ike/task_manager.h"
#include "control/ike/transforms.h"

namespace espgw::ike {

enum class IkeState : uint8_t {
  kCreated,      // initiator: IKE_SA_INIT not yet answered
  kHalfOpen,     // responder: IKE_SA_INIT answered, waiting for IKE_AUTH
  kAuthSent,     // initiator: IKE_AUTH sent
  kEstablished,
  kRekeyed,      // replaced by a new IKE SA; only the DELETE exchange remains
  kDeleting,
  kDead,         // to be destroyed
};
const char* to_string(IkeState s);

enum class ChildState : uint8_t {
  kInstalled,   // inbound and outbound installed
  kOutPending,  // responder of a rekey: inbound installed, outbound waits for the old SA's delete
  kRekeyed,     // replaced: outbound gone, inbound drains until drain_until_ms
  kDeleting,    // DELETE sent
};

struct ChildSa {
  uint32_t spi_in = 0, spi_out = 0;
  Suite suite;
  crypto::Algo algo = crypto::Algo::kAesGcm128;
  ChildState state = ChildState::kInstalled;
  std::vector<TrafficSelector> ts_local, ts_remote;
  bool udp_encap = false;
  bool in_installed = false, out_installed = false;
  Secret key_out;           // kept only while the outbound SA waits (kOutPending)
  uint64_t created_ms = 0, rekey_ms = 0, expire_ms = 0, drain_until_ms = 0;
  // The exchange that created it (for rekey collisions, RFC 7296 2.8.1).
  Bytes ni, nr;
  bool created_by_us = false;
  uint32_t replaces_spi_out = 0;  // rekey: the outbound SPI of the SA this one replaces
  uint64_t last_in_packets = 0;   // inbound packet count at the last liveness check
  bool rekeying = false;          // a rekey task for it is queued or active
  bool soft_reached = false;      // the data plane reported its soft byte/packet limit
  // Created by the peer in a rekey collision we won (2.8.1): the peer deletes it; its outbound
  // SA is never installed (the peer never installed the matching inbound SA).
  bool redundant = false;
};

class Daemon;

struct IkeSa {
  uint64_t spi_i = 0, spi_r = 0;
  bool initiator = false;          // we are the original initiator
  const ConnConfig* conn = nullptr;
  IkeState state = IkeState::kCreated;
  Endpoint local, remote;
  bool nat_local = false, nat_remote = false;  // we / the peer are behind a NAT
  // Both sent FRAGMENTATION_SUPPORTED in IKE_SA_INIT (RFC 7383 2.3); a rekeyed SA inherits it.
  bool frag = false;
  Reassembly frag_req, frag_resp;  // the peer's fragmented request / response being reassembled
  Suite suite;
  IkeKeys keys;
  std::optional<SkPair> sk;
  Bytes ni, nr;
  Bytes init_request, init_response;  // the IKE_SA_INIT messages as sent (for AUTH)
  std::unique_ptr<KeyExchange> ke;
  Bytes cookie;
  IdPayload peer_id;
  TaskManager tm;
  std::vector<ChildSa> children;
  uint64_t created_ms = 0, established_ms = 0, rekey_ms = 0, last_seen_ms = 0;
  uint64_t next_keepalive_ms = 0, next_dpd_check_ms = 0;
  bool rekeying = false;           // an IKE rekey task is queued or active
  // Re-creating a lost Child SA (tasks/child_create.cpp): queued or active, the next attempt.
  bool creating_child = false;
  uint64_t next_child_create_ms = 0;
  unsigned child_create_failures = 0;
  uint32_t rekey_collisions = 0;
  uint64_t rekeyed_ms = 0;             // when the SA was first seen kRekeyed (tick)
  bool rekeyed_delete_queued = false;  // the peer did not delete it in time: we do
  // IKE rekey collision bookkeeping: the new IKE SA created by responding to the peer's rekey.
  uint64_t peer_rekey_spi = 0;     // our SPI of that SA (0 = none)
  Bytes peer_rekey_ni, peer_rekey_nr;
  std::string last_error;

  uint64_t our_spi() const { return initiator ? spi_i : spi_r; }
  bool established() const { return state == IkeState::kEstablished; }
  ChildSa* child_by_in(uint32_t spi);
  ChildSa* child_by_out(uint32_t spi);
  // A Child SA that carries (or is about to carry) traffic: installed or waiting for its outbound.
  bool has_live_child() const;
  // "IKE_SA conn[ab12cd34...]" for logs
  std::string label() const;
};

// Min over the two nonces, byte-wise (RFC 7296 2.8.1 compares nonces).
bool nonce_less(ByteView a, ByteView b);
ByteView min_nonce(const Bytes& a, const Bytes& b);

}  // namespace espgw::ike
