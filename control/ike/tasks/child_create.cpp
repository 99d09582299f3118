// CREATE_CHILD_SA creating a Child SA without REKEY_SA (RFC 7296 1.3.1): the daemon queues it when
// an established IKE SA of a connection we initiate has no Child SA left (the peer deleted the
// only one, or it expired). Optional KE for PFS, INVALID_KE_PAYLOAD retry, and the selectors of
// the response must lie within what we offered. The responder side is respond_create_child.
#include <algorithm>

#include "control/ike/daemon.h"
#include "control/ike/tasks/tasks.h"

namespace espgw::ike {

namespace {

class ChildCreate : public Task {
 public:
  const char* name() const override { return "CHILD_CREATE"; }
  ExchangeType exchange() const override { return ExchangeType::kCreateChildSa; }

  bool build(Daemon& d, IkeSa& sa, std::vector<Payload>& out) override {
    if (!sa.established() || sa.has_live_child()) {
      sa.creating_child = false;
      release_spi(d, sa);  // allocated by an earlier attempt (INVALID_KE_PAYLOAD retry)
      return false;
    }
    const ConnConfig& c = *sa.conn;
    if (!spi_) spi_ = d.kernel().alloc_spi();
    if (!group_) group_ = c.esp_dh();
    if (!started_ms_) started_ms_ = d.now();
    ni_ = d.random_bytes(32);
    offered_ = with_spi(group_ ? c.esp : without_dh(c.esp), spi_);
    ts_l_ = d.our_ts(c, true);
    ts_r_ = d.our_ts(c, false);
    out.push_back(make_payload(SaPayload{offered_}));
    out.push_back(make_payload(NoncePayload{ni_}));
    if (group_) {
      ke_ = d.env().make_ke(group_);
      if (!ke_) {
        sa.creating_child = false;
        failed(d, sa, "no key exchange for DH group " + std::to_string(group_));
        return false;
      }
      out.push_back(make_payload(KePayload{group_, ke_->public_value()}));
    }
    out.push_back(make_tsi(TsPayload{ts_l_}));
    out.push_back(make_tsr(TsPayload{ts_r_}));
    return true;
  }

  Result process(Daemon& d, IkeSa& sa, const Message& m) override {
    sa.creating_child = false;
    if (take_requested_group(d, m, group_)) {
      sa.creating_child = true;
      return Result::kRetry;
    }
    if (const auto* e = first_error(m)) return failed(d, sa, "peer answered " + to_string(e->type));
    const SaPayload* sp = m.sa();
    const NoncePayload* nr = m.nonce();
    auto suite = sp ? accept_response(offered_, *sp) : std::nullopt;
    if (!suite || !nr || !esp_algo(*suite) || spi32_of(sp->proposals[0]) < 256 ||
        (suite->dh != 0) != (group_ != 0))
      return failed(d, sa, "unacceptable response");
    Secret gir;
    if (suite->dh) {
      const KePayload* ke = m.ke();
      if (!ke || ke->group != group_ || !ke_->compute(ke->data, gir))
        return failed(d, sa, "bad KE in the response");
    }
    ChildSa ch;
    ch.spi_in = spi_;
    ch.spi_out = spi32_of(sp->proposals[0]);
    ch.suite = *suite;
    ch.algo = *esp_algo(*suite);
    ch.ni = ni_;
    ch.nr = nr->data;
    ch.created_by_us = true;
    const TsPayload* tsi = m.tsi();
    const TsPayload* tsr = m.tsr();
    if (!tsi || !tsr || !ts_subset(tsi->selectors, ts_l_) || !ts_subset(tsr->selectors, ts_r_)) {
      // The responder installed it: delete it again (ours was never installed).
      ch.state = ChildState::kDeleting;
      sa.children.push_back(std::move(ch));
      sa.tm.queue(make_child_delete({spi_}), true);
      // The SPI stays reserved until that Child SA goes (remove_in releases it).
      spi_ = 0;
      return failed(d, sa, "TS_UNACCEPTABLE (the response's selectors are not ours)", false);
    }
    ch.ts_local = tsi->selectors;
    ch.ts_remote = tsr->selectors;
    ChildKeys keys;
    if (!derive_child_keys(sa.suite.prf, sa.keys.sk_d, suite->dh ? &gir : nullptr, ni_, ch.nr,
                           ch.algo, keys))
      return failed(d, sa, "key derivation failed");
    sa.children.push_back(std::move(ch));
    uint32_t spi = spi_;
    spi_ = 0;  // the Child SA owns it
    if (!d.install_child(sa, sa.children.back(), keys, true, false)) {
      sa.children.pop_back();  // install_child released the SPI
      return failed(d, sa, "install failed", false);
    }
    sa.child_create_failures = 0;
    d.update_connection(sa.conn->name);
    // Both sides re-created the Child SA at once: like a rekey collision (2.8.1), the one with the
    // lowest nonce goes, deleted by its creator (installed first: the peer already sends on it).
    const ChildSa& ours = sa.children.back();
    for (const auto& c : sa.children)
      if (!c.created_by_us && c.state == ChildState::kInstalled && c.created_ms >= started_ms_ &&
          nonce_less(min_nonce(ours.ni, ours.nr), min_nonce(c.ni, c.nr))) {
        d.log(sa, "both sides created a Child SA: deleting our redundant one");
        sa.tm.queue(make_child_delete({spi}), true);
        break;
      }
    return Result::kDone;
  }

 private:
  // Recorded; the daemon tries again after a back-off (with a fresh SPI: ours is released).
  Result failed(Daemon& d, IkeSa& sa, const std::string& why, bool release = true) {
    if (release) release_spi(d, sa);
    d.set_error(sa, "Child SA not created: " + why);
    unsigned n = std::min(sa.child_create_failures++, 10u);
    sa.next_child_create_ms = d.now() + std::min(d.tun().retry_max_ms, d.tun().retry_ms << n);
    return Result::kDone;
  }
  // The IKE SA went away mid-exchange.
  void abort(Daemon& d, IkeSa& sa) override { release_spi(d, sa); }
  void release_spi(Daemon& d, IkeSa& sa) {
    if (spi_) d.kernel().del_sa(sa.conn->name, spi_, true);
    spi_ = 0;
  }
  uint32_t spi_ = 0;
  uint16_t group_ = 0;
  uint64_t started_ms_ = 0;
  Bytes ni_;
  std::unique_ptr<KeyExchange> ke_;
  std::vector<Proposal> offered_;
  std::vector<TrafficSelector> ts_l_, ts_r_;
};

}  // namespace

std::unique_ptr<Task> make_child_create() { return std::make_unique<ChildCreate>(); }

}  // namespace espgw::ike
