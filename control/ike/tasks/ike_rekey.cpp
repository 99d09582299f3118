// CREATE_CHILD_SA rekeying the IKE SA (RFC 7296 1.3.2, 2.18): a new IKE SA with fresh SPIs, keys
// from the old SK_d, the Child SAs move over, then the rekey initiator deletes the old SA.
// Simultaneous rekeys (2.8.2): the new SA with the lowest nonce is deleted by its creator.
#include <string_view>

#include "control/ike/daemon.h"
#include "control/ike/tasks/tasks.h"

namespace espgw::ike {

namespace {

std::unique_ptr<IkeSa> successor(const IkeSa& old, bool initiator, uint64_t spi_i, uint64_t spi_r,
                                 const Suite& s, Bytes ni, Bytes nr) {
  auto n = std::make_unique<IkeSa>();
  n->spi_i = spi_i;
  n->spi_r = spi_r;
  n->initiator = initiator;
  n->conn = old.conn;
  n->local = old.local;
  n->remote = old.remote;
  n->nat_local = old.nat_local;
  n->nat_remote = old.nat_remote;
  n->frag = old.frag;  // negotiated once per IKE SA chain (RFC 7383 2.3)
  n->suite = s;
  n->ni = std::move(ni);
  n->nr = std::move(nr);
  n->peer_id = old.peer_id;
  n->created_ms = old.created_ms;
  return n;
}

void move_children(IkeSa& from, IkeSa& to) {
  for (auto& c : from.children) to.children.push_back(std::move(c));
  from.children.clear();
}

class IkeRekey : public Task {
 public:
  const char* name() const override { return "IKE_REKEY"; }
  ExchangeType exchange() const override { return ExchangeType::kCreateChildSa; }

  bool build(Daemon& d, IkeSa& sa, std::vector<Payload>& out) override {
    if (!sa.established() || sa.peer_rekey_spi) {  // gone, or the peer rekeyed it already
      sa.rekeying = false;
      return false;
    }
    if (!spi_) spi_ = d.new_ike_spi();
    if (!group_) group_ = sa.suite.dh;
    ke_ = d.env().make_ke(group_);
    if (!ke_) return false;
    ni_ = d.random_bytes(32);
    offered_ = with_ike_spi(sa.conn->ike, spi_);
    out.push_back(make_payload(SaPayload{offered_}));
    out.push_back(make_payload(NoncePayload{ni_}));
    out.push_back(make_payload(KePayload{group_, ke_->public_value()}));
    return true;
  }

  Result process(Daemon& d, IkeSa& sa, const Message& m) override {
    sa.rekeying = false;
    if (take_requested_group(d, m, group_)) {
      sa.rekeying = true;
      return Result::kRetry;
    }
    if (const auto* e = first_error(m)) {
      d.set_error(sa, "IKE rekey: peer answered " + to_string(e->type));
      sa.rekey_ms = d.now() + 2000;
      return Result::kDone;
    }
    const SaPayload* sp = m.sa();
    const NoncePayload* nr = m.nonce();
    const KePayload* ke = m.ke();
    auto suite = sp ? accept_response(offered_, *sp) : std::nullopt;
    Secret gir;
    IkeKeys keys;
    uint64_t spi_r = sp && !sp->proposals.empty() ? spi64_of(sp->proposals[0]) : 0;
    if (!suite || !nr || !ke || !spi_r || ke->group != group_ || suite->dh != group_ ||
        !ke_->compute(ke->data, gir) ||
        !derive_rekeyed_ike_keys(*suite, sa.suite.prf, sa.keys.sk_d, ni_, nr->data, gir, spi_,
                                 spi_r, keys)) {
      d.set_error(sa, "IKE rekey: unacceptable response");
      sa.rekey_ms = d.now() + 2000;
      return Result::kDone;
    }
    auto n = successor(sa, true, spi_, spi_r, *suite, ni_, nr->data);
    n->keys = std::move(keys);
    n->sk = make_sk_pair(n->suite, n->keys, true);
    if (!n->sk) return Result::kDone;
    bool collision = sa.peer_rekey_spi != 0;
    bool ours_redundant =
        collision && nonce_less(min_nonce(ni_, nr->data), min_nonce(sa.peer_rekey_ni, sa.peer_rekey_nr));
    IkeSa& fresh = d.adopt(std::move(n));
    d.established(fresh);
    if (ours_redundant) {
      d.log(sa, "IKE rekey collision lost: deleting our redundant IKE SA");
      fresh.state = IkeState::kDeleting;
      fresh.tm.queue(make_ike_delete());
      fresh.tm.initiate(d, fresh);
      sa.state = IkeState::kRekeyed;  // the peer deletes the old SA
      return Result::kDone;
    }
    if (collision) {
      d.log(sa, "IKE rekey collision won");
      for (IkeSa* other : d.ike_sas(sa.conn->name))
        if (other->our_spi() == sa.peer_rekey_spi) {
          move_children(*other, fresh);
          other->state = IkeState::kRekeyed;  // the peer deletes its redundant SA
        }
    }
    move_children(sa, fresh);
    sa.state = IkeState::kRekeyed;
    sa.tm.queue(make_ike_delete(), true);
    d.log(fresh, "IKE SA rekeyed");
    return Result::kDone;
  }

 private:
  uint64_t spi_ = 0;
  uint16_t group_ = 0;
  Bytes ni_;
  std::unique_ptr<KeyExchange> ke_;
  std::vector<Proposal> offered_;
};

}  // namespace

std::unique_ptr<Task> make_ike_rekey() { return std::make_unique<IkeRekey>(); }

void respond_ike_rekey(Daemon& d, IkeSa& sa, const Message& req, std::vector<Payload>& out) {
  auto notify = [&](NotifyType t) { out.push_back(make_payload(NotifyPayload::make(t))); };
  if (!sa.established() || sa.peer_rekey_spi) return notify(NotifyType::kTemporaryFailure);
  const SaPayload* sp = req.sa();
  const NoncePayload* ni = req.nonce();
  const KePayload* ke = req.ke();
  if (!sp || !ni || !ke) return notify(NotifyType::kInvalidSyntax);
  auto sel = select_proposal(sa.conn->ike, sp->proposals);
  auto suite = sel ? suite_of(*sel) : std::nullopt;
  uint64_t spi_i = sel ? spi64_of(*sel) : 0;
  if (!suite || !spi_i) return notify(NotifyType::kNoProposalChosen);
  if (ke->group != suite->dh) {
    out.push_back(make_payload(NotifyPayload::invalid_ke(suite->dh)));
    return;
  }
  auto our_ke = d.env().make_ke(suite->dh);
  Secret gir;
  if (!our_ke || !our_ke->compute(ke->data, gir)) return notify(NotifyType::kInvalidSyntax);
  uint64_t spi_r = d.new_ike_spi();
  Bytes nr = d.random_bytes(32);
  IkeKeys keys;
  if (!derive_rekeyed_ike_keys(*suite, sa.suite.prf, sa.keys.sk_d, ni->data, nr, gir, spi_i, spi_r, keys))
    return notify(NotifyType::kNoProposalChosen);
  auto n = successor(sa, false, spi_i, spi_r, *suite, ni->data, nr);
  n->keys = std::move(keys);
  n->sk = make_sk_pair(n->suite, n->keys, false);
  if (!n->sk) return notify(NotifyType::kNoProposalChosen);
  IkeSa& fresh = d.adopt(std::move(n));
  d.established(fresh);
  move_children(sa, fresh);
  sa.peer_rekey_spi = spi_r;
  sa.peer_rekey_ni = ni->data;
  sa.peer_rekey_nr = nr;
  const Task* ours = sa.tm.active();
  bool collision = ours && std::string_view(ours->name()) == "IKE_REKEY";
  if (!collision) sa.state = IkeState::kRekeyed;  // the peer deletes the old SA next
  Proposal chosen = *sel;
  chosen.spi.clear();
  for (int i = 7; i >= 0; --i) chosen.spi.push_back(uint8_t(spi_r >> (8 * i)));
  out.push_back(make_payload(SaPayload{{chosen}}));
  out.push_back(make_payload(NoncePayload{nr}));
  out.push_back(make_payload(KePayload{suite->dh, our_ke->public_value()}));
}

}  // namespace espgw::ike
