// IKE_AUTH with a pre-shared key and the first Child SA (RFC 7296 1.2, 2.15, 2.9 narrowing).
#include "control/ike/daemon.h"
#include "control/ike/tasks/tasks.h"

namespace espgw::ike {

namespace {

bool id_matches(const ConnConfig& c, const IdPayload& id) {
  return !c.remote_id || *c.remote_id == id;
}

class IkeAuth : public Task {
 public:
  const char* name() const override { return "IKE_AUTH"; }
  ExchangeType exchange() const override { return ExchangeType::kIkeAuth; }

  bool build(Daemon& d, IkeSa& sa, std::vector<Payload>& out) override {
    const ConnConfig& c = *sa.conn;
    Bytes auth;
    if (!psk_auth(sa.suite.prf, c.psk, sa.init_request, sa.nr, sa.keys.sk_pi, c.local_id.body(), auth))
      return false;
    if (!spi_) spi_ = d.kernel().alloc_spi();
    offered_ = with_spi(without_dh(c.esp), spi_);
    tsi_ = d.our_ts(c, true);
    tsr_ = d.our_ts(c, false);
    out.push_back(make_idi(c.local_id));
    // Not while another IKE SA with the peer is being set up (both initiated at once): the peer
    // would drop that one quietly, and the duplicate is resolved with a DELETE instead.
    if (d.ike_sas(c.name).size() == 1)
      out.push_back(make_payload(NotifyPayload::make(NotifyType::kInitialContact)));
    if (c.remote_id) out.push_back(make_idr(*c.remote_id));
    out.push_back(make_payload(AuthPayload{AuthMethod::kSharedKeyMic, auth}));
    out.push_back(make_payload(SaPayload{offered_}));
    out.push_back(make_tsi(TsPayload{tsi_}));
    out.push_back(make_tsr(TsPayload{tsr_}));
    return true;
  }

  Result process(Daemon& d, IkeSa& sa, const Message& m) override {
    Result r = process_response(d, sa, m);
    release_spi(d, sa);  // unless the Child SA took it
    return r;
  }
  void abort(Daemon& d, IkeSa& sa) override { release_spi(d, sa); }

 private:
  void release_spi(Daemon& d, IkeSa& sa) {
    if (spi_) d.kernel().del_sa(sa.conn->name, spi_, true);
    spi_ = 0;
  }

  Result process_response(Daemon& d, IkeSa& sa, const Message& m) {
    const ConnConfig& c = *sa.conn;
    const IdPayload* idr = m.idr();
    const AuthPayload* auth = m.auth();
    if (!idr || !auth) {
      const auto* e = first_error(m);
      std::string why = e ? to_string(e->type) : std::string("no AUTH");
      if (e && e->type == NotifyType::kAuthenticationFailed && d.on_event)
        d.on_event(c.name, ConnEvent::kAuthFailed);
      d.fail(sa, "IKE_AUTH failed: " + why);
      return Result::kFailed;
    }
    if (auth->method != AuthMethod::kSharedKeyMic ||
        !psk_auth_verify(sa.suite.prf, c.psk, sa.init_response, sa.ni, sa.keys.sk_pr, idr->body(),
                         auth->data) ||
        !id_matches(c, *idr)) {
      // The responder thinks the SA is up: tell it in an INFORMATIONAL (2.21.2), then the SA
      // goes (AUTH_FAILED task: on its answer or timeout).
      d.set_error(sa,
                  "AUTHENTICATION_FAILED: the peer's AUTH (ID " + idr->str() + ") does not verify");
      if (d.on_event) d.on_event(c.name, ConnEvent::kAuthFailed);
      sa.state = IkeState::kDeleting;
      sa.tm.queue(make_auth_failed(), true);
      return Result::kDone;
    }
    sa.peer_id = *idr;
    d.established(sa);
    if (const auto* e = first_error(m)) {
      d.set_error(sa, "Child SA not created: " + to_string(e->type));
      sa.tm.queue(make_ike_delete());
      return Result::kDone;
    }
    const SaPayload* sp = m.sa();
    const TsPayload* tsi = m.tsi();
    const TsPayload* tsr = m.tsr();
    auto suite = sp ? accept_response(offered_, *sp) : std::nullopt;
    if (!suite || !esp_algo(*suite) || spi32_of(sp->proposals[0]) < 256) {
      d.set_error(sa, "Child SA: unacceptable proposal in the response");
      sa.tm.queue(make_ike_delete());
      return Result::kDone;
    }
    if (!tsi || !tsr || !ts_subset(tsi->selectors, tsi_) || !ts_subset(tsr->selectors, tsr_)) {
      d.set_error(sa, "Child SA: TS_UNACCEPTABLE (the response's selectors are not ours)");
      sa.tm.queue(make_ike_delete());
      return Result::kDone;
    }
    ChildSa ch;
    ch.spi_in = spi_;
    ch.spi_out = spi32_of(sp->proposals[0]);
    ch.suite = *suite;
    ch.algo = *esp_algo(*suite);
    ch.ts_local = tsi->selectors;
    ch.ts_remote = tsr->selectors;
    ch.ni = sa.ni;
    ch.nr = sa.nr;
    ch.created_by_us = true;
    ChildKeys keys;
    if (!derive_child_keys(sa.suite.prf, sa.keys.sk_d, nullptr, sa.ni, sa.nr, ch.algo, keys)) {
      d.fail(sa, "Child SA key derivation failed");
      return Result::kFailed;
    }
    sa.children.push_back(std::move(ch));
    spi_ = 0;  // the Child SA owns it (install_child releases it on failure)
    if (!d.install_child(sa, sa.children.back(), keys, true, false)) {
      sa.children.pop_back();
      sa.tm.queue(make_ike_delete());
    }
    d.update_connection(c.name);
    d.resolve_duplicates(sa);
    return Result::kDone;
  }

  uint32_t spi_ = 0;
  std::vector<Proposal> offered_;
  std::vector<TrafficSelector> tsi_, tsr_;
};

}  // namespace

std::unique_ptr<Task> make_ike_auth() { return std::make_unique<IkeAuth>(); }

void respond_ike_auth(Daemon& d, IkeSa& sa, const Message& req, std::vector<Payload>& out) {
  const ConnConfig& c = *sa.conn;
  auto reject = [&](NotifyType t, const std::string& why) {
    out.push_back(make_payload(NotifyPayload::make(t)));
    d.fail(sa, why);
  };
  if (sa.state != IkeState::kHalfOpen) return reject(NotifyType::kInvalidSyntax, "unexpected IKE_AUTH");
  const IdPayload* idi = req.idi();
  const AuthPayload* auth = req.auth();
  if (!idi || !auth) return reject(NotifyType::kInvalidSyntax, "IKE_AUTH without IDi/AUTH");
  if (auth->method != AuthMethod::kSharedKeyMic ||
      !psk_auth_verify(sa.suite.prf, c.psk, sa.init_request, sa.nr, sa.keys.sk_pi, idi->body(),
                       auth->data) ||
      !id_matches(c, *idi)) {
    if (d.on_event) d.on_event(c.name, ConnEvent::kAuthFailed);
    return reject(NotifyType::kAuthenticationFailed,
                  "AUTHENTICATION_FAILED: the peer's AUTH (ID " + idi->str() + ") does not verify");
  }
  Bytes our_auth;
  if (!psk_auth(sa.suite.prf, c.psk, sa.init_response, sa.ni, sa.keys.sk_pr, c.local_id.body(), our_auth))
    return reject(NotifyType::kAuthenticationFailed, "cannot compute AUTH");
  sa.peer_id = *idi;
  out.push_back(make_idr(c.local_id));
  out.push_back(make_payload(AuthPayload{AuthMethod::kSharedKeyMic, our_auth}));
  if (req.notify(NotifyType::kInitialContact)) d.delete_duplicates(sa);
  d.established(sa);

  const SaPayload* sp = req.sa();
  const TsPayload* tsi = req.tsi();
  const TsPayload* tsr = req.tsr();
  // The IKE SA is not kept without a Child SA: deleted right after this answer (the initiator
  // may do the same; crossing DELETEs are harmless).
  auto child_error = [&](NotifyType t, const std::string& why) {
    out.push_back(make_payload(NotifyPayload::make(t)));
    d.set_error(sa, why);
    sa.tm.queue(make_ike_delete());
  };
  if (!sp || !tsi || !tsr) return child_error(NotifyType::kInvalidSyntax, "IKE_AUTH without a Child SA");
  auto sel = select_proposal(without_dh(c.esp), sp->proposals);
  auto suite = sel ? suite_of(*sel) : std::nullopt;
  if (!suite || !esp_algo(*suite) || spi32_of(*sel) < 256)
    return child_error(NotifyType::kNoProposalChosen, "Child SA: NO_PROPOSAL_CHOSEN");
  auto ts_i = narrow_ts(tsi->selectors, d.our_ts(c, false));
  auto ts_r = narrow_ts(tsr->selectors, d.our_ts(c, true));
  if (ts_i.empty() || ts_r.empty())
    return child_error(NotifyType::kTsUnacceptable, "Child SA: TS_UNACCEPTABLE");
  ChildSa ch;
  ch.spi_in = d.kernel().alloc_spi();
  ch.spi_out = spi32_of(*sel);
  ch.suite = *suite;
  ch.algo = *esp_algo(*suite);
  ch.ts_local = ts_r;
  ch.ts_remote = ts_i;
  ch.ni = sa.ni;
  ch.nr = sa.nr;
  ChildKeys keys;
  if (!derive_child_keys(sa.suite.prf, sa.keys.sk_d, nullptr, sa.ni, sa.nr, ch.algo, keys))
    return child_error(NotifyType::kNoProposalChosen, "Child SA key derivation failed");
  sa.children.push_back(std::move(ch));
  if (!d.install_child(sa, sa.children.back(), keys, false, false)) {
    sa.children.pop_back();
    return child_error(NotifyType::kNoProposalChosen, "Child SA install failed");
  }
  out.push_back(make_payload(SaPayload{{with_spi(*sel, sa.children.back().spi_in)}}));
  out.push_back(make_tsi(TsPayload{ts_i}));
  out.push_back(make_tsr(TsPayload{ts_r}));
  d.update_connection(c.name);
  d.resolve_duplicates(sa);
}

}  // namespace espgw::ike
