// What the IKE daemon needs from its surroundings, injected so that two daemons can run in one
// test process deterministically: a clock, randomness (nonces, SPIs) and a key-exchange factory
// (DH private keys), the network, and the one narrow kernel interface that installs Child SAs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "control/ike/ke.h"
#include "control/ike/wire.h"
#include "dataplane/net/ip.h"
#include "control/model/secret.h"
#include "crypto/algo.h"

namespace espgw::ike {

inline constexpr uint16_t kIkePort = 500;
inline constexpr uint16_t kNattPort = 4500;

struct Endpoint {
  IpAddr addr;
  uint16_t port = kIkePort;
  std::string str() const { return addr.str() + ":" + std::to_string(port); }
  bool operator==(const Endpoint&) const = default;
};

struct Env {
  std::function<uint64_t()> now_ms;
  std::function<void(uint8_t*, size_t)> random;
  // A fresh key pair for a DH group (nullptr if unsupported). Default: ike::make_ke.
  std::function<std::unique_ptr<KeyExchange>(uint16_t)> make_ke;
  // Sends one IKE message (without the non-ESP marker: the transport adds it on port 4500).
  std::function<void(const Endpoint& from, const Endpoint& to, const Bytes& msg)> send;
  // Sends one NAT-keepalive (RFC 3948 2.3) from port 4500.
  std::function<void(const Endpoint& from, const Endpoint& to)> send_keepalive;
  std::function<void(const std::string& line)> log;
};

// One direction of a Child SA as the data plane gets it.
struct ChildSaSpec {
  uint32_t spi = 0;
  bool inbound = false;
  crypto::Algo algo = crypto::Algo::kAesGcm128;
  const Secret* key = nullptr;  // keymat_len() bytes: cipher key || salt || auth key
  Endpoint local, remote;       // outer addresses; ports matter with udp_encap
  bool udp_encap = false;
  bool esn = false;
  uint32_t replay_window = 1024;
  uint64_t hard_bytes = 0;      // 0 = unlimited
  uint64_t hard_packets = 0;    // 0 = unlimited
  // The data plane reports reaching these (Daemon::on_child_lifetime): the daemon rekeys.
  uint64_t soft_bytes = 0, soft_packets = 0;  // 0 = none
  // Inbound: the inner source addresses the peer may send from (its negotiated traffic
  // selectors, RFC 4301 5.2); anything else is dropped. Empty = not restricted.
  std::vector<Prefix> remote_ts;
};

struct SaStats {
  uint64_t packets = 0, bytes = 0;
};

// The narrow interface to the data plane (like strongSwan's kernel_ipsec_t).
class Kernel {
 public:
  virtual ~Kernel() = default;
  // A fresh inbound SPI (>= 256, unused).
  virtual uint32_t alloc_spi() = 0;
  // Installs one SA of the connection's tunnel. An outbound SA replaces the tunnel's outbound SA
  // atomically (the previous one stays installed until del_sa).
  virtual bool add_sa(const std::string& conn, const ChildSaSpec& sa, std::string* err) = 0;
  virtual void del_sa(const std::string& conn, uint32_t spi, bool inbound) = 0;
  // Behind a NAT the peer's mapping changed: the outbound SA sends from `local` to `remote` from
  // now on, with the same keys and without reusing a sequence number. False (with err) if the
  // data plane cannot (the default).
  virtual bool move_sa(const std::string& /*conn*/, uint32_t /*spi*/, const Endpoint& /*local*/,
                       const Endpoint& /*remote*/, std::string* err) {
    *err = "not supported";
    return false;
  }
  virtual SaStats sa_stats(const std::string& conn, uint32_t spi, bool inbound) = 0;
  // The connection has (no longer) an installed Child SA: add / withdraw its routes.
  virtual void connection_up(const std::string& conn) = 0;
  virtual void connection_down(const std::string& conn) = 0;
};

}  // namespace espgw::ike
