// IKE_SA_INIT, initiator side (RFC 7296 1.2, 2.6 cookies, 2.23 NAT detection, 1.2/2.7
// INVALID_KE_PAYLOAD). The responder side is Daemon::handle_init_request.
#include <algorithm>

#include "control/ike/daemon.h"
#include "control/ike/nat.h"
#include "control/ike/tasks/tasks.h"

namespace espgw::ike {

namespace {

bool offers_group(const ConnConfig& c, uint16_t group) {
  for (const auto& p : c.ike)
    for (const auto& t : p.transforms)
      if (t.type == TransformType::kDh && t.id == group) return true;
  return false;
}

class IkeInit : public Task {
 public:
  const char* name() const override { return "IKE_SA_INIT"; }
  ExchangeType exchange() const override { return ExchangeType::kIkeSaInit; }

  bool build(Daemon& d, IkeSa& sa, std::vector<Payload>& out) override {
    if (!sa.ke || sa.ke->group() != group_) {
      if (!group_) group_ = sa.conn->first_dh();
      sa.ke = d.env().make_ke(group_);
      if (!sa.ke) return false;
    }
    if (sa.ni.empty()) sa.ni = d.random_bytes(32);
    if (!sa.cookie.empty()) out.push_back(make_payload(NotifyPayload::make(NotifyType::kCookie, sa.cookie)));
    // Proposals whose group is the one of our KE go first (the responder picks the first match).
    std::vector<Proposal> props = sa.conn->ike;
    std::stable_partition(props.begin(), props.end(), [&](const Proposal& p) {
      for (const auto& t : p.transforms)
        if (t.type == TransformType::kDh && t.id == group_) return true;
      return false;
    });
    for (size_t i = 0; i < props.size(); ++i) props[i].number = uint8_t(i + 1);
    offered_ = props;
    out.push_back(make_payload(SaPayload{props}));
    out.push_back(make_payload(KePayload{group_, sa.ke->public_value()}));
    out.push_back(make_payload(NoncePayload{sa.ni}));
    Bytes src = sa.conn->force_encap ? d.random_bytes(20) : nat_hash_bytes(sa.spi_i, 0, sa.local);
    out.push_back(make_payload(NotifyPayload::make(NotifyType::kNatDetectionSourceIp, src)));
    out.push_back(make_payload(
        NotifyPayload::make(NotifyType::kNatDetectionDestinationIp, nat_hash_bytes(sa.spi_i, 0, sa.remote))));
    if (sa.conn->fragmentation)
      out.push_back(make_payload(NotifyPayload::make(NotifyType::kFragmentationSupported)));
    return true;
  }

  Result process(Daemon& d, IkeSa& sa, const Message& m) override {
    if (const auto* c = m.notify(NotifyType::kCookie)) {
      sa.cookie = c->data;
      d.log(sa, "peer asks for a cookie");
      return Result::kRetry;
    }
    if (const auto* n = m.notify(NotifyType::kInvalidKePayload)) {
      auto g = n->ke_group();
      if (g && *g != group_ && offers_group(*sa.conn, *g)) {
        d.log(sa, "peer wants DH group " + std::to_string(*g));
        group_ = *g;
        sa.ke.reset();
        return Result::kRetry;
      }
      d.fail(sa, "INVALID_KE_PAYLOAD for a group we do not offer");
      return Result::kFailed;
    }
    if (const auto* e = first_error(m)) {
      d.fail(sa, "peer answered IKE_SA_INIT with " + to_string(e->type));
      return Result::kFailed;
    }
    const SaPayload* sp = m.sa();
    const KePayload* ke = m.ke();
    const NoncePayload* nr = m.nonce();
    if (!sp || !ke || !nr || !m.hdr.spi_r) {
      d.fail(sa, "IKE_SA_INIT response misses SA, KE or Nonce");
      return Result::kFailed;
    }
    auto suite = accept_response(offered_, *sp);
    if (!suite || suite->dh != ke->group || ke->group != sa.ke->group()) {
      d.fail(sa, "IKE_SA_INIT response: unacceptable proposal or KE");
      return Result::kFailed;
    }
    sa.spi_r = m.hdr.spi_r;
    sa.suite = *suite;
    sa.frag = sa.conn->fragmentation && m.notify(NotifyType::kFragmentationSupported);
    sa.nr = nr->data;
    Secret gir;
    if (!sa.ke->compute(ke->data, gir) ||
        !derive_ike_keys(sa.suite, sa.ni, sa.nr, gir, sa.spi_i, sa.spi_r, sa.keys) ||
        !(sa.sk = make_sk_pair(sa.suite, sa.keys, true))) {
      d.fail(sa, "key derivation failed");
      return Result::kFailed;
    }
    sa.ke.reset();
    // NAT detection (2.23): a mismatching source hash = the peer is behind a NAT, a mismatching
    // destination hash = we are.
    bool any_src = false, src_ok = false, any_dst = false, dst_ok = false;
    for (const auto* n : m.notifies()) {
      if (n->type == NotifyType::kNatDetectionSourceIp) {
        any_src = true;
        src_ok |= nat_detection_matches(n->data, sa.spi_i, sa.spi_r, sa.remote.addr, sa.remote.port);
      } else if (n->type == NotifyType::kNatDetectionDestinationIp) {
        any_dst = true;
        dst_ok |= nat_detection_matches(n->data, sa.spi_i, sa.spi_r, sa.local.addr, sa.local.port);
      }
    }
    sa.nat_remote = any_src && !src_ok;
    sa.nat_local = any_dst && !dst_ok;
    bool natt = any_src && any_dst;
    if (natt && (sa.nat_local || sa.nat_remote || sa.conn->force_encap)) {
      sa.local.port = kNattPort;  // float to 4500 (2.23)
      sa.remote.port = kNattPort;
      if (sa.conn->force_encap) sa.nat_local = true;
    }
    sa.state = IkeState::kAuthSent;
    sa.tm.queue(make_ike_auth(), true);
    return Result::kDone;
  }

 private:
  uint16_t group_ = 0;
  std::vector<Proposal> offered_;
};

}  // namespace

std::unique_ptr<Task> make_ike_init() { return std::make_unique<IkeInit>(); }

}  // namespace espgw::ike
