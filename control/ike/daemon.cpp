// The Daemon (daemon.h), part 1: construction, refusal counters, connections and their IKE SAs,
// the IKE SA life cycle (established, failed, duplicates, connection up/down), operator actions
// (initiate, terminate, rekey) and receiving: dispatch by SPI, the IKE_SA_INIT responder,
// NAT mapping changes. Message encoding and fragments: daemon_messages.cpp; Child SAs in the
// kernel: daemon_children.cpp; timers and status: daemon_tick.cpp.
#include "control/ike/daemon.h"

#include <algorithm>

#include "control/ike/daemon_internal.h"
#include "control/ike/nat.h"
#include "control/ike/tasks/tasks.h"

namespace espgw::ike {

const char* to_string(ConnEvent e) {
  switch (e) {
    case ConnEvent::kUp: return "up";
    case ConnEvent::kDown: return "down";
    case ConnEvent::kDeadPeer: return "dead-peer";
    case ConnEvent::kAuthFailed: return "auth-failed";
  }
  return "?";
}

Daemon::Daemon(Env env, Kernel& kernel, Tunables tun)
    : env_(std::move(env)), kernel_(kernel), tun_(tun) {
  if (!env_.make_ke) env_.make_ke = [](uint16_t g) { return make_ke(g); };
  if (!env_.log) env_.log = [](const std::string&) {};
}

Daemon::~Daemon() = default;

Bytes Daemon::random_bytes(size_t n) {
  Bytes b(n);
  env_.random(b.data(), n);
  return b;
}

uint64_t Daemon::new_ike_spi() {
  for (;;) {
    Bytes b = random_bytes(8);
    uint64_t v = 0;
    for (uint8_t x : b) v = v << 8 | x;
    if (v && !sas_.count(v)) return v;
  }
}

void Daemon::log(const IkeSa& sa, const std::string& what) { env_.log(sa.label() + ": " + what); }

void Daemon::refuse(const std::string& counter, const std::string& what) {
  ++counters_[counter];
  LogGate& g = log_gates_[counter];
  uint64_t t = now();
  if (g.next_ms && t < g.next_ms) {
    ++g.suppressed;
    return;
  }
  std::string line = "refused (" + counter + "): " + what;
  if (g.suppressed) line += " (and " + std::to_string(g.suppressed) + " more not logged)";
  g.suppressed = 0;
  g.next_ms = t + std::max<uint64_t>(tun_.log_interval_ms, 1);
  env_.log(line);
}

Daemon::ConnState* Daemon::conn_state(const std::string& name) {
  for (auto& c : conns_)
    if (c->cfg.name == name) return c.get();
  return nullptr;
}
const Daemon::ConnState* Daemon::conn_state(const std::string& name) const {
  for (auto& c : conns_)
    if (c->cfg.name == name) return c.get();
  return nullptr;
}

void Daemon::add_connection(ConnConfig c) {
  auto cs = std::make_unique<ConnState>();
  cs->cfg = std::move(c);
  cs->want = cs->cfg.initiate;
  if (tun_.initiate_jitter_ms) {
    Bytes r = random_bytes(2);
    cs->next_initiate_ms = now() + (uint64_t(r[0]) << 8 | r[1]) % tun_.initiate_jitter_ms;
  }
  conns_.push_back(std::move(cs));
}

std::vector<TrafficSelector> Daemon::our_ts(const ConnConfig& c, bool local) const {
  const auto& pfx = local ? c.local_ts : c.remote_ts;
  std::vector<TrafficSelector> v;
  if (pfx.empty()) {
    v.push_back(TrafficSelector::from_prefix(*Prefix::parse("0.0.0.0/0")));
    v.push_back(TrafficSelector::from_prefix(*Prefix::parse("::/0")));
  }
  for (const auto& p : pfx) v.push_back(TrafficSelector::from_prefix(p));
  return v;
}

std::vector<IkeSa*> Daemon::ike_sas(const std::string& conn) const {
  std::vector<IkeSa*> v;
  for (const auto& [spi, sa] : sas_)
    if (sa->conn->name == conn && sa->state != IkeState::kDead) v.push_back(sa.get());
  return v;
}

IkeSa* Daemon::established_sa(const std::string& conn) const {
  IkeSa* best = nullptr;
  for (IkeSa* sa : ike_sas(conn))
    if (sa->established() && (!best || sa->established_ms >= best->established_ms)) best = sa;
  return best;
}

bool Daemon::connected(const std::string& conn) const {
  const ConnState* cs = conn_state(conn);
  return cs && cs->up;
}

size_t Daemon::half_open() const {
  size_t n = 0;
  for (const auto& [spi, sa] : sas_) n += sa->state == IkeState::kHalfOpen;
  return n;
}

bool Daemon::has_other_sa(const IkeSa& sa) const {
  for (IkeSa* o : ike_sas(sa.conn->name))
    if (o != &sa && o->established()) return true;
  return false;
}

// INITIAL_CONTACT from the peer: it has no state for our other SAs with it; drop them quietly.
// Not an SA that got established after the peer's IKE_SA_INIT of `keep` arrived: both sides
// initiated at once and the peer does hold that SA (it sent INITIAL_CONTACT before it knew);
// dropping it quietly would orphan the peer's half. resolve_duplicates() deletes one of the two
// with a DELETE instead.
void Daemon::delete_duplicates(IkeSa& keep) {
  for (IkeSa* o : ike_sas(keep.conn->name))
    if (o != &keep && (o->established() || o->state == IkeState::kRekeyed) &&
        o->established_ms < keep.created_ms) {
      log(*o, "replaced (INITIAL_CONTACT)");
      for (auto& c : o->children) {
        remove_out(*o, c);
        remove_in(*o, c);
      }
      o->children.clear();
      o->state = IkeState::kDead;
    }
}

// ---- IKE SA life cycle ----

void Daemon::established(IkeSa& sa) {
  sa.state = IkeState::kEstablished;
  sa.established_ms = sa.last_seen_ms = now();
  uint64_t life = uint64_t(sa.conn->ike_lifetime_s) * 1000;
  Bytes r = random_bytes(2);
  uint64_t jitter = tun_.rekey_jitter_pct ? life * ((uint64_t(r[0]) << 8 | r[1]) % (tun_.rekey_jitter_pct * 100)) / 10000 : 0;
  sa.rekey_ms = sa.established_ms + life * (100 - tun_.rekey_margin_pct) / 100 - jitter;
  sa.next_keepalive_ms = now() + tun_.keepalive_ms;
  // The re-initiation back-off is reset once a Child SA is up (update_connection), not here:
  // an IKE SA whose Child SA is refused (NO_PROPOSAL_CHOSEN, TS_UNACCEPTABLE) is a failure.
  if (ConnState* cs = conn_state(sa.conn->name)) cs->last_established_ms = now();
  log(sa, std::string("IKE SA established (") + sa.suite.str() + ", " + sa.local.str() + " <-> " +
              sa.remote.str() + (sa.nat_local || sa.nat_remote ? ", NAT-T" : "") + ")");
}

// Both peers initiated at once and two IKE SAs got established: the one initiated by the peer
// with the higher address goes. Each side decides the same way and sends the DELETE itself,
// whatever the address order: a peer that does not resolve duplicates (strongSwan) still ends
// with one IKE SA, and DELETEs of the same SA crossing each other are harmless.
void Daemon::resolve_duplicates(IkeSa& sa) {
  if (!sa.established()) return;
  for (IkeSa* o : ike_sas(sa.conn->name)) {
    if (o == &sa || !o->established() || o->initiator == sa.initiator) continue;
    IkeSa& ours = sa.initiator ? sa : *o;  // the one we initiated
    IkeSa& theirs = sa.initiator ? *o : sa;
    bool peer_higher = sa.conn->local < sa.conn->remote;
    IkeSa& loser = peer_higher ? theirs : ours;
    log(loser, std::string("duplicate IKE SA (both sides initiated): deleting the one ") +
                   (peer_higher ? "the peer" : "we") + " initiated");
    loser.last_error = "duplicate IKE SA replaced";
    loser.tm.queue(make_ike_delete(), true);
    loser.tm.initiate(*this, loser);
    return;
  }
}

void Daemon::set_error(IkeSa& sa, const std::string& error) {
  if (error.empty()) return;
  sa.last_error = error;
  log(sa, error);
  if (ConnState* cs = conn_state(sa.conn->name)) cs->last_error = error;
}

void Daemon::fail(IkeSa& sa, const std::string& error, bool dead_peer) {
  if (sa.state == IkeState::kDead) return;
  bool was_rekeyed = sa.state == IkeState::kRekeyed;
  bool other = has_other_sa(sa);
  if (other) {  // a duplicate or a rekeyed SA goes: not the connection's error
    sa.last_error = error;
    if (!error.empty()) log(sa, error);
  } else {
    set_error(sa, error);
  }
  for (auto& c : sa.children) {
    remove_out(sa, c);
    remove_in(sa, c);
  }
  sa.children.clear();
  sa.state = IkeState::kDead;
  ConnState* cs = conn_state(sa.conn->name);
  if (!cs || was_rekeyed) return;
  if (dead_peer && other) {
    // A duplicate IKE SA the peer no longer knows: the connection lives on the other one.
    log(sa, "no answer on this IKE SA; the connection stays on the other IKE SA");
  } else if (dead_peer) {
    log(sa, "peer is dead");
    if (on_event) on_event(cs->cfg.name, ConnEvent::kDeadPeer);
  }
  update_connection(cs->cfg.name);
  if (cs->want && ike_sas(cs->cfg.name).empty()) {
    uint64_t delay = std::min(tun_.retry_max_ms, tun_.retry_ms << std::min(cs->failures, 10u));
    ++cs->failures;
    cs->next_initiate_ms = now() + delay;
  }
}

IkeSa& Daemon::adopt(std::unique_ptr<IkeSa> sa) {
  IkeSa& ref = *sa;
  sas_[ref.our_spi()] = std::move(sa);
  return ref;
}

void Daemon::update_connection(const std::string& name) {
  ConnState* cs = conn_state(name);
  if (!cs) return;
  bool up = false;
  for (IkeSa* sa : ike_sas(name))
    for (const auto& c : sa->children)
      up |= c.out_installed && c.state == ChildState::kInstalled;
  // A rekey in progress briefly has only the new SA's outbound: count installed outbound SAs too.
  for (IkeSa* sa : ike_sas(name))
    for (const auto& c : sa->children) up |= c.out_installed;
  if (up == cs->up) return;
  cs->up = up;
  if (up) {
    cs->failures = 0;  // a Child SA is up: the next failure starts the back-off afresh
    kernel_.connection_up(name);
    if (on_event) on_event(name, ConnEvent::kUp);
  } else {
    kernel_.connection_down(name);
    if (on_event) on_event(name, ConnEvent::kDown);
  }
}

// ---- initiation ----

void Daemon::start(ConnState& cs) {
  auto sa = std::make_unique<IkeSa>();
  sa->initiator = true;
  sa->spi_i = new_ike_spi();
  sa->conn = &cs.cfg;
  sa->local = {cs.cfg.local, kIkePort};
  sa->remote = {cs.cfg.remote, kIkePort};
  sa->created_ms = sa->last_seen_ms = now();
  IkeSa& ref = adopt(std::move(sa));
  log(ref, "initiating to " + ref.remote.str());
  ref.tm.queue(make_ike_init());
  ref.tm.initiate(*this, ref);
}

bool Daemon::initiate(const std::string& conn) {
  ConnState* cs = conn_state(conn);
  if (!cs) return false;
  cs->want = true;
  if (ike_sas(conn).empty()) start(*cs);
  return true;
}

bool Daemon::terminate(const std::string& conn) {
  ConnState* cs = conn_state(conn);
  if (!cs) return false;
  cs->want = false;
  for (IkeSa* sa : ike_sas(conn)) {
    if (sa->established()) {
      sa->tm.queue(make_ike_delete(), true);
      sa->tm.initiate(*this, *sa);
    } else {
      fail(*sa, "terminated");
    }
  }
  return true;
}

bool Daemon::rekey_child(const std::string& conn) {
  IkeSa* sa = established_sa(conn);
  if (!sa) return false;
  for (auto& c : sa->children)
    if (c.state == ChildState::kInstalled && !c.rekeying) {
      c.rekeying = true;
      sa->tm.queue(make_child_rekey(c.spi_in));
      sa->tm.initiate(*this, *sa);
      return true;
    }
  return false;
}

bool Daemon::rekey_ike(const std::string& conn) {
  IkeSa* sa = established_sa(conn);
  if (!sa || sa->rekeying) return false;
  sa->rekeying = true;
  sa->tm.queue(make_ike_rekey());
  sa->tm.initiate(*this, *sa);
  return true;
}

// ---- receiving ----

void Daemon::receive(const Endpoint& local, const Endpoint& remote, ByteView raw) {
  Header h;
  DecodeStatus hs = decode_header(raw, h);
  if (hs.error == DecodeError::kUnsupportedVersion && raw.size() >= kHeaderLen) {
    refuse("bad_major_version", "IKE version " + std::to_string(h.major) + "." +
                                    std::to_string(h.minor) + " from " + remote.str());
    if (h.major > 2 && !h.response()) send_version_error(local, remote, h);
    return;
  }
  if (!hs.ok()) return refuse("malformed_header", "undecodable IKE header from " + remote.str());
  if (h.exchange == ExchangeType::kIkeSaInit && !h.response()) {
    Message m;
    DecodeStatus st = decode_message(raw, m);
    if (st.error == DecodeError::kUnsupportedCritical) {
      refuse("unsupported_critical_payload", "IKE_SA_INIT from " + remote.str() +
                                                 " with critical payload type " +
                                                 std::to_string(st.payload_type));
      send_plain_error(local, remote, m.hdr, NotifyPayload::unsupported_critical(st.payload_type));
      return;
    }
    if (!st.ok()) return refuse("malformed", "undecodable IKE_SA_INIT from " + remote.str());
    handle_init_request(local, remote, raw, m);
    return;
  }
  uint64_t ours = h.initiator() ? h.spi_r : h.spi_i;
  auto it = sas_.find(ours);
  if (it == sas_.end() || it->second->state == IkeState::kDead)
    return refuse("unknown_spi",
                  to_string(h.exchange) + " from " + remote.str() + " for no IKE SA of ours");
  IkeSa& sa = *it->second;
  if (h.initiator() == sa.initiator)  // the flag names the original initiator
    return refuse("bad_initiator_flag",
                  sa.label() + ": message from " + remote.str() + " with our own initiator flag");
  Message m;
  if (h.exchange == ExchangeType::kIkeSaInit) {
    if (!h.response() || !sa.initiator || sa.state != IkeState::kCreated)
      return refuse("unexpected_message", sa.label() + ": IKE_SA_INIT response not expected");
    if (!decode_message(raw, m).ok())
      return refuse("malformed", sa.label() + ": undecodable IKE_SA_INIT response");
  } else if (h.next == PayloadType::kEncryptedFragment) {
    if (!reassemble(sa, raw, m)) return;  // stored, or refused (counted)
  } else {
    SkResult r = sa.sk ? sa.sk->in->unprotect(raw, m) : SkResult{SkError::kNoSk, {}};
    if (!r.ok()) {
      bool critical =
          r.error == SkError::kInnerDecode && r.decode.error == DecodeError::kUnsupportedCritical;
      if (critical && !h.response()) {  // authentic, but we cannot process it: tell the peer
        refuse("unsupported_critical_payload", sa.label() +
                                                   ": request with critical payload type " +
                                                   std::to_string(r.decode.payload_type));
        sa.tm.reject_request(*this, sa, h,
                             NotifyPayload::unsupported_critical(r.decode.payload_type));
        return;
      }
      // Forged or broken: dropped (2.21.2), but counted.
      std::string why = r.error == SkError::kIntegrity ? "integrity_failed"
                        : critical                      ? "unsupported_critical_payload"
                        : r.error == SkError::kDecode || r.error == SkError::kInnerDecode
                            ? "malformed"
                            : "undecryptable";
      return refuse(why, sa.label() + ": " + to_string(h.exchange) + " from " + remote.str() +
                             " dropped (" + to_string(r.error) + ")");
    }
  }
  sa.last_seen_ms = now();
  // For on_new_request(): the address follows only a new request, once the message ID is checked.
  rx_local_ = local;
  rx_remote_ = remote;
  if (h.response())
    sa.tm.on_response(*this, sa, m, raw);
  else
    sa.tm.on_request(*this, sa, m);
  if (sa.state != IkeState::kDead) sa.tm.initiate(*this, sa);
}

void Daemon::handle_init_request(const Endpoint& local, const Endpoint& remote, ByteView raw,
                                 const Message& m) {
  // A retransmitted request of a half-open SA gets the same answer.
  for (auto& [spi, sa] : sas_)
    if (!sa->initiator && sa->spi_i == m.hdr.spi_i && sa->remote.addr == remote.addr) {
      if (sa->state == IkeState::kHalfOpen && sa->init_request.size() == raw.size() &&
          std::equal(raw.begin(), raw.end(), sa->init_request.begin()))
        for (const Bytes& b : sa->tm.cached_response()) env_.send(local, remote, b);
      else
        refuse("duplicate_init",
               sa->label() + ": another IKE_SA_INIT with its SPI from " + remote.str());
      return;
    }
  ConnState* cs = nullptr;
  for (auto& c : conns_)
    if (c->cfg.remote == remote.addr && c->cfg.local == local.addr && c->cfg.respond) cs = c.get();
  if (!cs || !m.hdr.spi_i)
    return refuse("no_connection", "IKE_SA_INIT from " + remote.str() + " (no connection)");
  // Memory per half-open SA: it keeps the request (for AUTH); a legitimate one is far smaller.
  if (raw.size() > tun_.max_init_bytes)
    return refuse("init_too_large", cs->cfg.name + ": IKE_SA_INIT from " + remote.str() + " of " +
                                        std::to_string(raw.size()) + " bytes");
  const NoncePayload* ni = m.nonce();
  const SaPayload* sp = m.sa();
  const KePayload* ke = m.ke();
  if (!ni || !sp || !ke) {
    refuse("malformed", cs->cfg.name + ": IKE_SA_INIT from " + remote.str() + " without SA/KE/Ni");
    send_plain_error(local, remote, m.hdr, NotifyPayload::make(NotifyType::kInvalidSyntax));
    return;
  }
  // The hard cap: past it even a valid cookie does not create state.
  if (half_open() >= tun_.max_half_open)
    return refuse("half_open_limit", cs->cfg.name + ": IKE_SA_INIT from " + remote.str() + ": " +
                                         std::to_string(half_open()) + " half-open SAs");
  // Cookies (2.6) once too many SAs are half-open.
  if (half_open() >= tun_.cookie_threshold) {
    const NotifyPayload* c = m.notify(NotifyType::kCookie);
    if (!c || !cookies_.verify(c->data, ni->data, remote.addr, m.hdr.spi_i)) {
      refuse("cookie_required", cs->cfg.name + ": IKE_SA_INIT from " + remote.str() + ": " +
                                    std::to_string(half_open()) +
                                    " half-open SAs, asking for a cookie");
      send_plain_error(local, remote, m.hdr,
                       NotifyPayload::make(NotifyType::kCookie,
                                           cookies_.make(ni->data, remote.addr, m.hdr.spi_i)));
      return;
    }
  }
  auto sel = select_proposal(cs->cfg.ike, sp->proposals);
  auto suite = sel ? suite_of(*sel) : std::nullopt;
  if (!suite || !suite->dh || !suite->prf) {
    cs->last_error = "IKE_SA_INIT from " + remote.str() + ": NO_PROPOSAL_CHOSEN";
    refuse("no_proposal_chosen", cs->cfg.name + ": " + cs->last_error);
    send_plain_error(local, remote, m.hdr, NotifyPayload::make(NotifyType::kNoProposalChosen));
    return;
  }
  if (ke->group != suite->dh) {
    refuse("invalid_ke", cs->cfg.name + ": IKE_SA_INIT from " + remote.str() + " with DH group " +
                             std::to_string(ke->group));
    send_plain_error(local, remote, m.hdr, NotifyPayload::invalid_ke(suite->dh));
    return;
  }
  auto sa = std::make_unique<IkeSa>();
  sa->initiator = false;
  sa->spi_i = m.hdr.spi_i;
  sa->spi_r = new_ike_spi();
  sa->conn = &cs->cfg;
  sa->local = local;
  sa->remote = remote;
  sa->suite = *suite;
  sa->ni = ni->data;
  sa->nr = random_bytes(32);
  sa->created_ms = sa->last_seen_ms = now();
  sa->init_request.assign(raw.begin(), raw.end());
  auto our_ke = env_.make_ke(suite->dh);
  Secret gir;
  if (!our_ke || !our_ke->compute(ke->data, gir)) {
    refuse("bad_ke", cs->cfg.name + ": IKE_SA_INIT from " + remote.str() + ": unusable KE");
    send_plain_error(local, remote, m.hdr, NotifyPayload::make(NotifyType::kInvalidSyntax));
    return;
  }
  if (!derive_ike_keys(sa->suite, sa->ni, sa->nr, gir, sa->spi_i, sa->spi_r, sa->keys) ||
      !(sa->sk = make_sk_pair(sa->suite, sa->keys, false)))
    return;
  bool any_src = false, src_ok = false, any_dst = false, dst_ok = false;
  for (const auto* n : m.notifies()) {
    if (n->type == NotifyType::kNatDetectionSourceIp) {
      any_src = true;
      src_ok |= nat_detection_matches(n->data, sa->spi_i, 0, remote.addr, remote.port);
    } else if (n->type == NotifyType::kNatDetectionDestinationIp) {
      any_dst = true;
      dst_ok |= nat_detection_matches(n->data, sa->spi_i, 0, local.addr, local.port);
    }
  }
  bool natt = any_src && any_dst;
  sa->nat_remote = natt && !src_ok;
  sa->nat_local = natt && (!dst_ok || cs->cfg.force_encap);
  sa->frag = cs->cfg.fragmentation && m.notify(NotifyType::kFragmentationSupported);
  std::vector<Payload> out;
  out.push_back(make_payload(SaPayload{{*sel}}));
  out.push_back(make_payload(KePayload{suite->dh, our_ke->public_value()}));
  out.push_back(make_payload(NoncePayload{sa->nr}));
  if (sa->frag)
    out.push_back(make_payload(NotifyPayload::make(NotifyType::kFragmentationSupported)));
  if (natt) {
    Bytes src = cs->cfg.force_encap ? random_bytes(20) : nat_hash_bytes(sa->spi_i, sa->spi_r, local);
    out.push_back(make_payload(NotifyPayload::make(NotifyType::kNatDetectionSourceIp, src)));
    out.push_back(make_payload(NotifyPayload::make(NotifyType::kNatDetectionDestinationIp,
                                                   nat_hash_bytes(sa->spi_i, sa->spi_r, remote))));
  }
  sa->state = IkeState::kHalfOpen;
  IkeSa& ref = adopt(std::move(sa));
  auto msg = encode(ref, ExchangeType::kIkeSaInit, true, 0, out);
  ref.init_response = *msg;
  ref.tm.set_init_response(*msg);
  log(ref, "IKE_SA_INIT from " + remote.str() + " answered (" + ref.suite.str() + ")");
  env_.send(local, remote, *msg);
}

void Daemon::on_new_request(IkeSa& sa) { follow_nat(sa, rx_local_, rx_remote_); }

// Only here: after the SK check and the message ID check of a request. A replayed (old) request
// or a response from a spoofed address cannot redirect the IKE SA, and without a NAT there is no
// mapping to follow.
void Daemon::follow_nat(IkeSa& sa, const Endpoint& local, const Endpoint& remote) {
  if (!(sa.nat_local || sa.nat_remote) || (sa.local == local && sa.remote == remote)) return;
  if (sa.state == IkeState::kEstablished)
    log(sa, "peer moved from " + sa.remote.str() + " to " + remote.str() + " (NAT mapping)");
  sa.local = local;
  sa.remote = remote;
  for (auto& c : sa.children) {
    if (!c.out_installed || !c.udp_encap) continue;
    std::string err;
    if (!kernel_.move_sa(sa.conn->name, c.spi_out, local, remote, &err))
      set_error(sa, "Child SA " + hex32(c.spi_out) + " cannot follow the peer to " + remote.str() +
                        ": " + err);
  }
}

}  // namespace espgw::ike
