// INFORMATIONAL with DELETE payloads (RFC 7296 1.4.1): Child SAs and the IKE SA, and the
// responder of every INFORMATIONAL request (deletes, error notifies, liveness checks).
#include <algorithm>

#include "control/ike/daemon.h"
#include "control/ike/tasks/tasks.h"

namespace espgw::ike {

namespace {

// Old outbound gone at once, inbound after the drain time (packets still in flight).
void retire(Daemon& d, IkeSa& sa, ChildSa& c) {
  d.remove_out(sa, c);
  c.state = ChildState::kRekeyed;
  c.drain_until_ms = d.now() + d.tun().drain_ms;
}

class ChildDelete : public Task {
 public:
  explicit ChildDelete(std::vector<uint32_t> spis) : spis_(std::move(spis)) {}
  const char* name() const override { return "CHILD_DELETE"; }
  ExchangeType exchange() const override { return ExchangeType::kInformational; }

  bool build(Daemon&, IkeSa& sa, std::vector<Payload>& out) override {
    std::vector<uint32_t> live;
    for (uint32_t spi : spis_)
      if (ChildSa* c = sa.child_by_in(spi)) {
        live.push_back(spi);
        if (c->state == ChildState::kInstalled || c->state == ChildState::kOutPending)
          c->state = ChildState::kDeleting;
      }
    if (live.empty() || sa.state == IkeState::kDead) return false;
    out.push_back(make_payload(DeletePayload{ProtocolId::kEsp, live}));
    return true;
  }

  Result process(Daemon& d, IkeSa& sa, const Message&) override {
    for (uint32_t spi : spis_)
      if (ChildSa* c = sa.child_by_in(spi)) {
        d.promote_replacements(sa, c->spi_out);
        retire(d, sa, *c);
      }
    d.update_connection(sa.conn->name);
    return Result::kDone;
  }

 private:
  std::vector<uint32_t> spis_;
};

class IkeDelete : public Task {
 public:
  const char* name() const override { return "IKE_DELETE"; }
  ExchangeType exchange() const override { return ExchangeType::kInformational; }
  bool build(Daemon&, IkeSa& sa, std::vector<Payload>& out) override {
    if (sa.state == IkeState::kDead) return false;
    if (sa.state != IkeState::kRekeyed) sa.state = IkeState::kDeleting;
    out.push_back(make_payload(DeletePayload{ProtocolId::kIke, {}}));
    return true;
  }
  Result process(Daemon& d, IkeSa& sa, const Message&) override {
    d.fail(sa, sa.last_error);
    return Result::kDone;
  }
  void timeout(Daemon& d, IkeSa& sa) override { d.fail(sa, sa.last_error); }
};

class AuthFailed : public Task {
 public:
  const char* name() const override { return "AUTH_FAILED"; }
  ExchangeType exchange() const override { return ExchangeType::kInformational; }
  bool build(Daemon&, IkeSa& sa, std::vector<Payload>& out) override {
    if (sa.state == IkeState::kDead) return false;
    sa.state = IkeState::kDeleting;
    out.push_back(make_payload(NotifyPayload::make(NotifyType::kAuthenticationFailed)));
    return true;
  }
  Result process(Daemon& d, IkeSa& sa, const Message&) override {
    d.fail(sa, sa.last_error);
    return Result::kDone;
  }
  void timeout(Daemon& d, IkeSa& sa) override { d.fail(sa, sa.last_error); }
};

class Dpd : public Task {
 public:
  const char* name() const override { return "DPD"; }
  ExchangeType exchange() const override { return ExchangeType::kInformational; }
  bool build(Daemon&, IkeSa& sa, std::vector<Payload>&) override { return sa.established(); }
  Result process(Daemon&, IkeSa&, const Message&) override { return Result::kDone; }
};

}  // namespace

std::unique_ptr<Task> make_child_delete(std::vector<uint32_t> spis_in) {
  return std::make_unique<ChildDelete>(std::move(spis_in));
}
std::unique_ptr<Task> make_ike_delete() { return std::make_unique<IkeDelete>(); }
std::unique_ptr<Task> make_auth_failed() { return std::make_unique<AuthFailed>(); }
std::unique_ptr<Task> make_dpd() { return std::make_unique<Dpd>(); }

void respond_informational(Daemon& d, IkeSa& sa, const Message& req, std::vector<Payload>& out) {
  for (const auto* n : req.notifies())
    if (is_error(n->type)) d.set_error(sa, "peer reported " + to_string(n->type));
  // The initiator rejected our AUTH (2.21.2: an INFORMATIONAL right after IKE_AUTH, message ID
  // 2 of an SA created by IKE_SA_INIT): the IKE SA goes. Later, the error is only recorded.
  if (req.notify(NotifyType::kAuthenticationFailed)) {
    bool first_after_auth = !sa.initiator && !sa.init_request.empty() && req.hdr.message_id == 2;
    if (first_after_auth) {
      if (d.on_event) d.on_event(sa.conn->name, ConnEvent::kAuthFailed);
      d.fail(sa, "AUTHENTICATION_FAILED: the peer rejected our AUTH");
      return;  // empty response
    }
  }
  std::vector<uint32_t> ours;
  for (const auto* del : req.deletes()) {
    if (del->protocol == ProtocolId::kIke) {
      d.log(sa, "peer deletes the IKE SA");
      d.fail(sa, sa.state == IkeState::kRekeyed || !sa.last_error.empty() ? sa.last_error
                                                                          : "deleted by the peer");
      return;  // empty response
    }
    if (del->protocol != ProtocolId::kEsp) continue;
    for (uint32_t spi : del->spis) {
      ChildSa* c = sa.child_by_out(spi);
      if (!c) continue;
      // Both deleting the same SA: no SPI in our answer (1.4.1).
      if (c->state != ChildState::kDeleting && c->state != ChildState::kRekeyed) ours.push_back(c->spi_in);
      d.promote_replacements(sa, spi);
      c = sa.child_by_out(spi);
      if (c) retire(d, sa, *c);
    }
  }
  if (!ours.empty()) out.push_back(make_payload(DeletePayload{ProtocolId::kEsp, ours}));
  d.update_connection(sa.conn->name);
}

}  // namespace espgw::ike
