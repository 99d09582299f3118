// The IKE daemon inside espgw: a control-thread Service owning the UDP 500/4500 sockets on this
// instance's public IP (kernel side of the exception TAP), implementing the daemon's Kernel
// interface over the data plane's SAs (one tunnel per connection) and routes (the LNG's prefixes
// and, with BGP, the peer's BGP address via the tunnel while the connection is up), and the
// `show connections` / `ike ...` control commands.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "control/ike/daemon.h"
#include "control/agent/agent.h"

namespace espgw::agent {

class IkeService : public Service, public ike::Kernel {
 public:
  explicit IkeService(Agent& ctl);
  ~IkeService() override;
  // Opens the sockets and registers the commands; false with err if a socket cannot be bound.
  bool init(std::string* err);

  std::vector<int> fds() const override;
  void on_readable(int fd, uint64_t now_ms) override;
  void tick(uint64_t now_ms) override;
  void on_dp_event(const dp::DpEvent& e) override;

  // ike::Kernel
  uint32_t alloc_spi() override;
  bool add_sa(const std::string& conn, const ike::ChildSaSpec& sa, std::string* err) override;
  void del_sa(const std::string& conn, uint32_t spi, bool inbound) override;
  bool move_sa(const std::string& conn, uint32_t spi, const ike::Endpoint& local,
               const ike::Endpoint& remote, std::string* err) override;
  ike::SaStats sa_stats(const std::string& conn, uint32_t spi, bool inbound) override;
  void connection_up(const std::string& conn) override;
  void connection_down(const std::string& conn) override;

  api::Json show_connections() const;              // one row per connection
  api::Json show_connection(const std::string& name) const;  // with Child SAs, selectors, routes
  api::Json show_counters() const;  // every refusal of the IKE daemon, by name

 private:
  struct ConnRt {
    const model::Connection* cfg = nullptr;
    uint32_t tunnel = 0;
    std::vector<Prefix> routes;
    std::vector<uint32_t> outbound;  // installed outbound SPIs, oldest first
    bool routed = false;
  };
  api::Json connection_json(const ike::ConnStatus& s, bool detail) const;
  void send(const ike::Endpoint& from, const ike::Endpoint& to, const ike::Bytes& msg, bool keepalive);
  int open_socket(uint16_t port, std::string* err);

  Agent& ctl_;
  dp::Dataplane& dp_;
  IpAddr public_ip_;
  int fd500_ = -1, fd4500_ = -1;
  // datagrams on port 4500 without the non-ESP marker (NAT keepalives, stray ESP the data plane
  // did not take): dropped here, counted in `show ike counters`
  uint64_t no_marker_4500_ = 0;
  std::unique_ptr<ike::Daemon> daemon_;
  std::map<std::string, ConnRt> conns_;
  std::map<std::pair<uint32_t, bool>, uint32_t> sa_ids_;  // (spi, inbound) -> data-plane SA id
  std::set<uint32_t> reserved_spis_;
  // Outbound UDP-encapsulated SAs: what move_sa needs to re-create one towards a new NAT mapping
  // (the data plane keeps only the expanded key schedule).
  struct MovableOut {
    ike::ChildSaSpec spec;  // spec.key points to key
    Secret key;
  };
  std::map<uint32_t, MovableOut> movable_;
};

}  // namespace espgw::agent
