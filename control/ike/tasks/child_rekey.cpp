// CREATE_CHILD_SA rekeying a Child SA (RFC 7296 1.3.3, 2.8, optional PFS) with make-before-break
// and the collision rules of 2.8.1 / 2.25.
#include "control/ike/daemon.h"
#include "control/ike/tasks/tasks.h"

namespace espgw::ike {

namespace {

class ChildRekey : public Task {
 public:
  explicit ChildRekey(uint32_t spi_in) : old_in_(spi_in) {}
  const char* name() const override { return "CHILD_REKEY"; }
  ExchangeType exchange() const override { return ExchangeType::kCreateChildSa; }

  bool build(Daemon& d, IkeSa& sa, std::vector<Payload>& out) override {
    ChildSa* old = sa.child_by_in(old_in_);
    if (!sa.established() || !old || old->state != ChildState::kInstalled) {
      if (old) old->rekeying = false;
      release_spi(d, sa);  // allocated by an earlier attempt (INVALID_KE_PAYLOAD retry)
      return false;
    }
    const ConnConfig& c = *sa.conn;
    if (!spi_) spi_ = d.kernel().alloc_spi();
    if (!group_) group_ = c.esp_dh();
    ni_ = d.random_bytes(32);
    offered_ = with_spi(group_ ? c.esp : without_dh(c.esp), spi_);
    out.push_back(make_payload(NotifyPayload::make_child(NotifyType::kRekeySa, ProtocolId::kEsp, old_in_)));
    out.push_back(make_payload(SaPayload{offered_}));
    out.push_back(make_payload(NoncePayload{ni_}));
    if (group_) {
      ke_ = d.env().make_ke(group_);
      if (!ke_) {
        old->rekeying = false;
        release_spi(d, sa);
        return false;
      }
      out.push_back(make_payload(KePayload{group_, ke_->public_value()}));
    }
    ts_l_ = old->ts_local;
    ts_r_ = old->ts_remote;
    out.push_back(make_tsi(TsPayload{ts_l_}));
    out.push_back(make_tsr(TsPayload{ts_r_}));
    return true;
  }

  Result process(Daemon& d, IkeSa& sa, const Message& m) override {
    Result r = process_response(d, sa, m);
    if (r != Result::kRetry) release_spi(d, sa);  // unless a new Child SA took it
    return r;
  }
  void abort(Daemon& d, IkeSa& sa) override { release_spi(d, sa); }

 private:
  void release_spi(Daemon& d, IkeSa& sa) {
    if (spi_) d.kernel().del_sa(sa.conn->name, spi_, true);
    spi_ = 0;
  }

  Result process_response(Daemon& d, IkeSa& sa, const Message& m) {
    ChildSa* old = sa.child_by_in(old_in_);
    if (old) old->rekeying = false;
    if (take_requested_group(d, m, group_)) {
      if (old) old->rekeying = true;
      return Result::kRetry;
    }
    if (const auto* e = first_error(m)) {
      d.set_error(sa, "Child SA rekey: peer answered " + to_string(e->type));
      if (e->type == NotifyType::kChildSaNotFound && old) {
        d.remove_out(sa, *old);
        d.remove_in(sa, *old);
        std::erase_if(sa.children, [&](const ChildSa& c) { return c.spi_in == old_in_; });
        d.update_connection(sa.conn->name);
      } else if (old) {
        old->rekey_ms = d.now() + 2000;  // TEMPORARY_FAILURE etc.: try again soon
      }
      return Result::kDone;
    }
    const SaPayload* sp = m.sa();
    const NoncePayload* nr = m.nonce();
    auto suite = sp ? accept_response(offered_, *sp) : std::nullopt;
    if (!suite || !nr || !esp_algo(*suite) || spi32_of(sp->proposals[0]) < 256 ||
        (suite->dh != 0) != (group_ != 0)) {
      d.set_error(sa, "Child SA rekey: unacceptable response");
      return Result::kDone;
    }
    Secret gir;
    if (suite->dh) {
      const KePayload* ke = m.ke();
      if (!ke || ke->group != group_ || !ke_->compute(ke->data, gir)) {
        d.set_error(sa, "Child SA rekey: bad KE in the response");
        return Result::kDone;
      }
    }
    ChildSa ch;
    ch.spi_in = spi_;
    ch.spi_out = spi32_of(sp->proposals[0]);
    ch.suite = *suite;
    ch.algo = *esp_algo(*suite);
    const TsPayload* tsi = m.tsi();
    const TsPayload* tsr = m.tsr();
    ch.ts_local = tsi ? tsi->selectors : ts_l_;
    ch.ts_remote = tsr ? tsr->selectors : ts_r_;
    ch.ni = ni_;
    ch.nr = nr->data;
    ch.created_by_us = true;
    if (!ts_subset(ch.ts_local, ts_l_) || !ts_subset(ch.ts_remote, ts_r_)) {
      // The responder installed it: delete it again; the old SA stays, a rekey is tried later.
      d.set_error(sa, "Child SA rekey: TS_UNACCEPTABLE (the response's selectors are not ours)");
      ch.state = ChildState::kDeleting;
      sa.children.push_back(std::move(ch));
      sa.tm.queue(make_child_delete({spi_}), true);
      spi_ = 0;  // the Child SA owns it until deleted
      if ((old = sa.child_by_in(old_in_))) old->rekey_ms = d.now() + 2000;
      return Result::kDone;
    }
    ch.replaces_spi_out = old ? old->spi_out : 0;
    ChildKeys keys;
    if (!derive_child_keys(sa.suite.prf, sa.keys.sk_d, suite->dh ? &gir : nullptr, ni_, ch.nr,
                           ch.algo, keys)) {
      d.set_error(sa, "Child SA rekey: key derivation failed");
      return Result::kDone;
    }
    // 2.8.1: did the peer rekey the same SA at the same time? The SA created with the lowest of
    // the four nonces is redundant and deleted by whoever created it.
    ChildSa* theirs = nullptr;
    if (old)
      for (auto& c : sa.children)
        if (!c.created_by_us && c.replaces_spi_out == old->spi_out && c.state == ChildState::kOutPending)
          theirs = &c;
    if (theirs && nonce_less(min_nonce(ch.ni, ch.nr), min_nonce(theirs->ni, theirs->nr))) {
      d.log(sa, "rekey collision lost: deleting our redundant Child SA");
      ch.state = ChildState::kDeleting;
      sa.children.push_back(std::move(ch));
      sa.tm.queue(make_child_delete({spi_}), true);
      spi_ = 0;  // the Child SA owns it until deleted
      return Result::kDone;
    }
    sa.children.push_back(std::move(ch));
    spi_ = 0;  // the Child SA owns it (install_child releases it on failure)
    ChildSa& fresh = sa.children.back();
    if (!d.install_child(sa, fresh, keys, true, false)) {
      sa.children.pop_back();
      return Result::kDone;
    }
    old = sa.child_by_in(old_in_);
    if (theirs) {
      // Found again: the push_back above may have moved it. The peer never installed its inbound
      // half; its outbound must never be installed, even if the peer's DELETE is lost or comes
      // after the old SA's (promote_replacements, the out_pending timer).
      for (auto& c : sa.children)
        if (!c.created_by_us && old && c.replaces_spi_out == old->spi_out &&
            c.state == ChildState::kOutPending) {
          c.redundant = true;
          c.replaces_spi_out = 0;
        }
      d.log(sa, "rekey collision won: the peer deletes its redundant Child SA");
    }
    if (old) {
      d.remove_out(sa, *old);  // the new outbound SA already carries the traffic
      old->state = ChildState::kRekeyed;
      sa.tm.queue(make_child_delete({old_in_}), true);
    }
    return Result::kDone;
  }

  uint32_t old_in_;
  uint32_t spi_ = 0;
  uint16_t group_ = 0;
  Bytes ni_;
  std::unique_ptr<KeyExchange> ke_;
  std::vector<Proposal> offered_;
  std::vector<TrafficSelector> ts_l_, ts_r_;
};

}  // namespace

std::unique_ptr<Task> make_child_rekey(uint32_t spi_in) { return std::make_unique<ChildRekey>(spi_in); }

void respond_create_child(Daemon& d, IkeSa& sa, const Message& req, std::vector<Payload>& out) {
  auto notify = [&](NotifyType t) { out.push_back(make_payload(NotifyPayload::make(t))); };
  const SaPayload* sp = req.sa();
  if (sp && !sp->proposals.empty() && sp->proposals[0].protocol == ProtocolId::kIke)
    return respond_ike_rekey(d, sa, req, out);
  if (!sa.established()) return notify(NotifyType::kTemporaryFailure);
  // With REKEY_SA: a rekey. Without: an additional Child SA (e.g. the peer re-creating one it
  // lost); it takes over the tunnel's outbound direction at once.
  const NotifyPayload* rk = req.notify(NotifyType::kRekeySa);
  ChildSa* old = nullptr;
  // Each Child SA costs kernel SAs and memory: a cap per IKE SA (counting those being replaced).
  if (sa.children.size() >= d.tun().max_children) {
    d.refuse("child_sa_limit", sa.label() + ": " + std::to_string(sa.children.size()) +
                                   " Child SAs, CREATE_CHILD_SA refused");
    return notify(NotifyType::kNoAdditionalSas);
  }
  if (rk) {
    auto old_out = rk->spi32();
    old = old_out ? sa.child_by_out(*old_out) : nullptr;
    if (!old) {
      out.push_back(make_payload(NotifyPayload::make_child(NotifyType::kChildSaNotFound,
                                                           ProtocolId::kEsp, old_out.value_or(0))));
      return;
    }
    if (old->state != ChildState::kInstalled) return notify(NotifyType::kTemporaryFailure);
  }
  const ConnConfig& c = *sa.conn;
  const NoncePayload* ni = req.nonce();
  const TsPayload* tsi = req.tsi();
  const TsPayload* tsr = req.tsr();
  if (!sp || !ni || !tsi || !tsr) return notify(NotifyType::kInvalidSyntax);
  std::vector<Proposal> ours = c.esp;
  for (auto& p : without_dh(c.esp)) ours.push_back(p);
  auto sel = select_proposal(ours, sp->proposals);
  auto suite = sel ? suite_of(*sel) : std::nullopt;
  if (!suite || !esp_algo(*suite) || spi32_of(*sel) < 256) {
    d.set_error(sa, "Child SA rekey: NO_PROPOSAL_CHOSEN");
    return notify(NotifyType::kNoProposalChosen);
  }
  Secret gir;
  std::unique_ptr<KeyExchange> ke;
  if (suite->dh) {
    const KePayload* kp = req.ke();
    if (!kp || kp->group != suite->dh) {
      out.push_back(make_payload(NotifyPayload::invalid_ke(suite->dh)));
      return;
    }
    ke = d.env().make_ke(suite->dh);
    if (!ke || !ke->compute(kp->data, gir)) return notify(NotifyType::kInvalidSyntax);
  }
  auto ts_i = narrow_ts(tsi->selectors, d.our_ts(c, false));
  auto ts_r = narrow_ts(tsr->selectors, d.our_ts(c, true));
  if (ts_i.empty() || ts_r.empty()) {
    d.set_error(sa, "Child SA rekey: TS_UNACCEPTABLE");
    return notify(NotifyType::kTsUnacceptable);
  }
  ChildSa ch;
  ch.spi_in = d.kernel().alloc_spi();
  ch.spi_out = spi32_of(*sel);
  ch.suite = *suite;
  ch.algo = *esp_algo(*suite);
  ch.ts_local = ts_r;
  ch.ts_remote = ts_i;
  ch.ni = ni->data;
  ch.nr = d.random_bytes(32);
  ch.replaces_spi_out = old ? old->spi_out : 0;
  ChildKeys keys;
  if (!derive_child_keys(sa.suite.prf, sa.keys.sk_d, suite->dh ? &gir : nullptr, ch.ni, ch.nr,
                         ch.algo, keys)) {
    d.kernel().del_sa(c.name, ch.spi_in, true);  // the allocated SPI
    return notify(NotifyType::kNoProposalChosen);
  }
  Bytes nr = ch.nr;
  sa.children.push_back(std::move(ch));
  // Make-before-break: our new inbound SA now, the outbound once the peer deletes the old SA.
  if (!d.install_child(sa, sa.children.back(), keys, false, old != nullptr)) {
    sa.children.pop_back();
    return notify(NotifyType::kNoProposalChosen);
  }
  if (!old) d.update_connection(c.name);
  out.push_back(make_payload(SaPayload{{with_spi(*sel, sa.children.back().spi_in)}}));
  out.push_back(make_payload(NoncePayload{nr}));
  if (ke) out.push_back(make_payload(KePayload{suite->dh, ke->public_value()}));
  out.push_back(make_tsi(TsPayload{ts_i}));
  out.push_back(make_tsr(TsPayload{ts_r}));
}

}  // namespace espgw::ike
