#include "control/ike/daemon.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstdio>
#include <string_view>

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

namespace {
std::string hex32(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", v);
  return b;
}
std::string hex64(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "%016llx", (unsigned long long)v);
  return b;
}
int64_t secs_left(uint64_t at, uint64_t now) {
  return at ? (int64_t(at) - int64_t(now)) / 1000 : -1;
}
}  // namespace

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

std::optional<Bytes> Daemon::encode(IkeSa& sa, ExchangeType ex, bool response, uint32_t id,
                                    const std::vector<Payload>& payloads) {
  Header h;
  h.spi_i = sa.spi_i;
  h.spi_r = ex == ExchangeType::kIkeSaInit && !response ? 0 : sa.spi_r;
  h.exchange = ex;
  h.flags = uint8_t((sa.initiator ? kFlagInitiator : 0) | (response ? kFlagResponse : 0));
  h.message_id = id;
  if (ex == ExchangeType::kIkeSaInit) {
    Message m;
    m.hdr = h;
    m.payloads = payloads;
    return encode_message(m);
  }
  if (!sa.sk) return std::nullopt;
  return sa.sk->out->protect(h, payloads);
}

std::optional<std::vector<Bytes>> Daemon::encode_packets(IkeSa& sa, ExchangeType ex, bool response,
                                                         uint32_t id,
                                                         const std::vector<Payload>& payloads) {
  auto whole = encode(sa, ex, response, id, payloads);
  if (!whole) return std::nullopt;
  if (ex == ExchangeType::kIkeSaInit || !sa.frag || !sa.sk) return std::vector<Bytes>{*whole};
  // IP + UDP headers, and the non-ESP marker on port 4500.
  size_t outer = (sa.remote.addr.is_v6() ? 40 : 20) + 8 + (sa.remote.port == kNattPort ? 4 : 0);
  size_t mtu = sa.remote.addr.is_v6() ? tun_.frag_mtu_v6 : tun_.frag_mtu_v4;
  if (whole->size() + outer <= mtu) return std::vector<Bytes>{*whole};
  Header h;
  decode_header(*whole, h);
  auto frags = mtu > outer ? sa.sk->out->protect_fragments(h, payloads, mtu - outer) : std::nullopt;
  if (!frags) return std::vector<Bytes>{*whole};  // an MTU too small for fragments: try whole
  if (ConnState* cs = conn_state(sa.conn->name)) {
    ++cs->frag.messages_fragmented;
    cs->frag.fragments_out += frags->size();
  }
  return frags;
}

void Daemon::send(IkeSa& sa, const Bytes& msg) { env_.send(sa.local, sa.remote, msg); }

void Daemon::send(IkeSa& sa, const std::vector<Bytes>& packets) {
  for (const Bytes& p : packets) env_.send(sa.local, sa.remote, p);
}

bool Daemon::reassemble(IkeSa& sa, ByteView raw, Message& m) {
  ConnState* cs = conn_state(sa.conn->name);
  if (!cs) return false;
  FragCounters before = cs->frag;
  bool complete = add_fragment(sa, raw, m, cs->frag);
  refuse_fragments(before, cs->frag, sa.label() + ": IKE fragment");
  return complete;
}

// Every refusal the frag counters (`show connection`) record is also a named refusal
// (`show ike counters`, rate-limited log): "fragment_" and the reason, "fragment_unsupported" for
// an SKF on an IKE SA that did not negotiate fragmentation. Counted per fragment, as there.
void Daemon::refuse_fragments(const FragCounters& before, const FragCounters& after,
                              const std::string& what) {
  auto b = before.named(), a = after.named();
  for (size_t i = 0; i < a.size(); ++i) {
    std::string_view reason = a[i].first;
    if (!reason.starts_with("drop_") || a[i].second == b[i].second) continue;
    reason.remove_prefix(5);
    std::string name =
        reason == "not_negotiated" ? "fragment_unsupported" : "fragment_" + std::string(reason);
    for (uint64_t k = b[i].second; k < a[i].second; ++k) refuse(name, what + " dropped");
  }
}

bool Daemon::add_fragment(IkeSa& sa, ByteView raw, Message& m, FragCounters& c) {
  FragHeader f;
  if (parse_fragment(raw, f) != DecodeError::kOk) return ++c.drop_malformed, false;
  // RFC 7383 2.5: fragments only on IKE SAs where both announced support.
  if (!sa.frag || !sa.sk) return ++c.drop_not_negotiated, false;
  Bytes plain;
  if (sa.sk->in->open_fragment(raw, plain) != SkError::kOk) return ++c.drop_integrity, false;
  const bool resp = f.hdr.response();
  const uint32_t id = f.hdr.message_id;
  if (resp ? !(sa.tm.busy() && id == sa.tm.next_out()) : id != sa.tm.next_in()) {
    // The request we answered last, retransmitted: answer once per retransmission (on its first
    // fragment), not once per fragment.
    if (!resp && id + 1 == sa.tm.next_in() && f.number == 1) {
      ++c.fragments_in;
      Message again;
      again.hdr = f.hdr;
      sa.tm.on_request(*this, sa, again);
      return false;
    }
    OPENSSL_cleanse(plain.data(), plain.size());
    return ++c.drop_unexpected_id, false;
  }
  Reassembly& r = resp ? sa.frag_resp : sa.frag_req;
  auto res = r.add(f, std::move(plain), now(), tun_.frag, c);
  if (res == Reassembly::Result::kDropped) return false;
  ++c.fragments_in;
  if (res != Reassembly::Result::kComplete) return false;
  PayloadType first = r.first();
  Bytes chain = r.take();
  m = {};
  m.hdr = f.hdr;
  m.hdr.next = first;
  DecodeStatus st = decode_payloads(first, chain, m.payloads);
  OPENSSL_cleanse(chain.data(), chain.size());
  if (!st.ok()) return ++c.drop_malformed, false;
  ++c.messages_reassembled;
  return true;
}

void Daemon::send_plain_error(const Endpoint& local, const Endpoint& remote, const Header& req,
                              NotifyPayload n) {
  Message m;
  m.hdr = req;
  m.hdr.spi_r = 0;
  m.hdr.flags = kFlagResponse;
  m.payloads.push_back(make_payload(std::move(n)));
  env_.send(local, remote, encode_message(m));
}

// ---- Child SAs in the kernel ----

// hard * (100 - margin) / 100 without overflowing for limits near 2^64; 0 (unlimited) stays 0.
uint64_t Daemon::soft_limit(uint64_t hard) const {
  uint64_t keep = 100 - tun_.rekey_margin_pct;
  return hard / 100 * keep + hard % 100 * keep / 100;
}

void Daemon::on_child_lifetime(const std::string& conn, uint32_t spi, bool inbound, bool hard) {
  for (auto& [id, sa] : sas_) {
    if (!sa || sa->conn->name != conn) continue;
    ChildSa* c = inbound ? sa->child_by_in(spi) : sa->child_by_out(spi);
    if (!c || c->state != ChildState::kInstalled) continue;
    if (!hard) {
      c->soft_reached = true;  // tick_sa queues the rekey
    } else if (!c->rekeying) {
      set_error(*sa, "Child SA " + hex32(c->spi_in) + " reached its hard lifetime");
      c->rekeying = true;
      sa->tm.queue(make_child_delete({c->spi_in}));
    }
    return;
  }
}

bool Daemon::install_child(IkeSa& sa, ChildSa& c, const ChildKeys& keys, bool we_initiated,
                           bool out_pending) {
  const ConnConfig& cfg = *sa.conn;
  c.udp_encap = sa.nat_local || sa.nat_remote;
  c.created_ms = now();
  schedule_child_timers(sa, c);
  ChildSaSpec in;
  in.spi = c.spi_in;
  in.inbound = true;
  in.algo = c.algo;
  in.key = we_initiated ? &keys.r2i : &keys.i2r;
  in.local = sa.local;
  in.remote = sa.remote;
  in.udp_encap = c.udp_encap;
  in.esn = c.suite.esn == esn::kYes;
  in.replay_window = cfg.replay_window;
  in.remote_ts = ts_prefixes(c.ts_remote);
  in.soft_bytes = soft_limit(cfg.child_lifetime_bytes);
  in.soft_packets = soft_limit(cfg.child_lifetime_packets);
  std::string err;
  if (!kernel_.add_sa(cfg.name, in, &err)) {
    set_error(sa, "installing inbound SA " + hex32(c.spi_in) + ": " + err);
    remove_in(sa, c);  // releases the allocated SPI
    return false;
  }
  c.in_installed = true;
  c.key_out = we_initiated ? keys.i2r : keys.r2i;
  if (out_pending) {
    c.state = ChildState::kOutPending;
    return true;
  }
  c.state = ChildState::kInstalled;
  if (!install_pending_out(sa, c)) {
    remove_in(sa, c);
    return false;
  }
  log(sa, "Child SA " + hex32(c.spi_in) + "_i " + hex32(c.spi_out) + "_o installed (" +
              c.suite.str() + (c.udp_encap ? ", UDP-encapsulated" : "") + ")");
  return true;
}

bool Daemon::install_pending_out(IkeSa& sa, ChildSa& c) {
  ChildSaSpec out;
  out.spi = c.spi_out;
  out.algo = c.algo;
  out.key = &c.key_out;
  out.local = sa.local;
  out.remote = sa.remote;
  out.udp_encap = c.udp_encap;
  out.esn = c.suite.esn == esn::kYes;
  out.hard_bytes = sa.conn->child_lifetime_bytes;
  out.hard_packets = sa.conn->child_lifetime_packets;
  out.soft_bytes = soft_limit(out.hard_bytes);
  out.soft_packets = soft_limit(out.hard_packets);
  std::string err;
  bool ok = kernel_.add_sa(sa.conn->name, out, &err);
  c.key_out = Secret();
  if (!ok) {
    set_error(sa, "installing outbound SA " + hex32(c.spi_out) + ": " + err);
    return false;
  }
  c.out_installed = true;
  c.state = ChildState::kInstalled;
  return true;
}

void Daemon::remove_out(IkeSa& sa, ChildSa& c) {
  if (c.out_installed) kernel_.del_sa(sa.conn->name, c.spi_out, false);
  c.out_installed = false;
  c.key_out = Secret();
}

void Daemon::remove_in(IkeSa& sa, ChildSa& c) {
  // Also when never installed: the SPI was allocated (reserved) all the same.
  if (c.spi_in) kernel_.del_sa(sa.conn->name, c.spi_in, true);
  c.in_installed = false;
}

void Daemon::promote_replacements(IkeSa& sa, uint32_t old_spi_out) {
  for (auto& c : sa.children)
    if (c.replaces_spi_out == old_spi_out && c.state == ChildState::kOutPending && !c.redundant) {
      if (install_pending_out(sa, c))
        log(sa, "Child SA " + hex32(c.spi_in) + "_i " + hex32(c.spi_out) + "_o outbound installed");
    }
}

void Daemon::schedule_child_timers(IkeSa& sa, ChildSa& c) {
  uint64_t life = uint64_t(sa.conn->child_lifetime_s) * 1000;
  Bytes r = random_bytes(2);
  uint64_t jitter = tun_.rekey_jitter_pct ? life * ((uint64_t(r[0]) << 8 | r[1]) % (tun_.rekey_jitter_pct * 100)) / 10000 : 0;
  c.rekey_ms = c.created_ms + life * (100 - tun_.rekey_margin_pct) / 100 - jitter;
  c.expire_ms = c.created_ms + life;
}

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

// A request with a higher major version: INVALID_MAJOR_VERSION, unauthenticated, in a header
// with the version we support (RFC 7296 2.5).
void Daemon::send_version_error(const Endpoint& local, const Endpoint& remote, const Header& req) {
  Message m;
  m.hdr = req;
  m.hdr.major = 2;
  m.hdr.minor = 0;
  m.hdr.flags = uint8_t(kFlagResponse | (req.initiator() ? 0 : kFlagInitiator));
  m.payloads.push_back(make_payload(NotifyPayload::make(NotifyType::kInvalidMajorVersion)));
  env_.send(local, remote, encode_message(m));
}

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

// ---- timers ----

void Daemon::tick_sa(IkeSa& sa, uint64_t now) {
  sa.tm.tick(*this, sa, now);
  if (sa.state == IkeState::kDead) return;
  if (ConnState* cs = conn_state(sa.conn->name)) {
    uint64_t timeouts = cs->frag.drop_timeout;
    sa.frag_req.expire(now, tun_.frag, cs->frag);
    sa.frag_resp.expire(now, tun_.frag, cs->frag);
    for (; timeouts < cs->frag.drop_timeout; ++timeouts)
      refuse("fragment_timeout", sa.label() + ": incomplete fragmented message timed out");
  }
  if (sa.state == IkeState::kHalfOpen && now - sa.created_ms >= tun_.half_open_timeout_ms) {
    fail(sa, "half-open IKE SA timed out");
    return;
  }
  // Replaced by a rekey and the peer never deletes it: we do (once), or it would stay for good.
  if (sa.state == IkeState::kRekeyed) {
    if (!sa.rekeyed_ms) sa.rekeyed_ms = now;
    if (!sa.rekeyed_delete_queued && now - sa.rekeyed_ms >= tun_.rekeyed_timeout_ms) {
      sa.rekeyed_delete_queued = true;
      refuse("rekeyed_sa_timeout", sa.label() + ": the peer did not delete the rekeyed IKE SA");
      sa.tm.queue(make_ike_delete());
      sa.tm.initiate(*this, sa);
    }
  }
  // Children: drained inbound SAs go, pending outbound SAs install after a while, rekeys.
  for (auto& c : sa.children) {
    if ((c.state == ChildState::kRekeyed || c.state == ChildState::kDeleting) && c.drain_until_ms &&
        now >= c.drain_until_ms) {
      remove_out(sa, c);
      remove_in(sa, c);
      c.drain_until_ms = 0;
      c.spi_in = 0;  // mark for removal
    }
    if (c.state == ChildState::kOutPending && now - c.created_ms >= tun_.out_pending_ms) {
      if (!c.redundant) {
        install_pending_out(sa, c);
      } else {  // the peer never deleted its redundant SA: drop our inbound half
        remove_in(sa, c);
        c.spi_in = 0;  // mark for removal
      }
    }
  }
  std::erase_if(sa.children, [](const ChildSa& c) { return c.spi_in == 0; });
  if (!sa.established()) return;
  for (auto& c : sa.children) {
    if (c.state != ChildState::kInstalled || c.rekeying) continue;
    if (c.expire_ms && now >= c.expire_ms) {  // rekeying kept failing: the SA ends here
      set_error(sa, "Child SA " + hex32(c.spi_in) + " expired without a successful rekey");
      c.rekeying = true;
      sa.tm.queue(make_child_delete({c.spi_in}));
      continue;
    }
    if (now >= c.rekey_ms || c.soft_reached) {
      c.rekeying = true;
      sa.tm.queue(make_child_rekey(c.spi_in));
    }
  }
  // No Child SA left (the peer deleted the only one, or it expired): create one if we initiate
  // the connection, with a back-off after failures.
  const ConnState* cs = conn_state(sa.conn->name);
  if (cs && cs->want && cs->cfg.initiate && !sa.creating_child && !sa.has_live_child() &&
      now >= sa.next_child_create_ms) {
    sa.creating_child = true;
    log(sa, "no Child SA left: creating one");
    sa.tm.queue(make_child_create());
  }
  if (now >= sa.rekey_ms && !sa.rekeying) {
    sa.rekeying = true;
    sa.tm.queue(make_ike_rekey());
  }
  // Liveness: inbound ESP counts as proof of life; otherwise an empty INFORMATIONAL.
  if (now >= sa.next_dpd_check_ms) {
    sa.next_dpd_check_ms = now + 1000;
    for (auto& c : sa.children)
      if (c.in_installed) {
        uint64_t p = kernel_.sa_stats(sa.conn->name, c.spi_in, true).packets;
        if (p != c.last_in_packets) {
          c.last_in_packets = p;
          sa.last_seen_ms = now;
        }
      }
    uint64_t idle = uint64_t(sa.conn->dpd_timeout_s) * 1000 / 3;
    if (now - sa.last_seen_ms >= idle && sa.tm.idle()) sa.tm.queue(make_dpd());
  }
  if (sa.nat_local && now >= sa.next_keepalive_ms) {
    sa.next_keepalive_ms = now + tun_.keepalive_ms;
    if (env_.send_keepalive) env_.send_keepalive(sa.local, sa.remote);
  }
  sa.tm.initiate(*this, sa);
}

void Daemon::destroy(IkeSa& sa) {
  sa.tm.abort(*this, sa);  // unfinished exchanges release what they hold (reserved SPIs)
  for (auto& c : sa.children) {
    remove_out(sa, c);
    remove_in(sa, c);
  }
  sa.children.clear();
}

void Daemon::tick() {
  uint64_t t = now();
  if (t >= next_cookie_rotate_ms_) {
    if (next_cookie_rotate_ms_) cookies_.rotate(Secret(random_bytes(CookieJar::kSecretLen).data(),
                                                       CookieJar::kSecretLen));
    next_cookie_rotate_ms_ = t + tun_.cookie_rotate_ms;
  }
  std::vector<IkeSa*> all;
  for (auto& [spi, sa] : sas_) all.push_back(sa.get());
  for (IkeSa* sa : all)
    if (sa->state != IkeState::kDead) tick_sa(*sa, t);
  for (auto it = sas_.begin(); it != sas_.end();) {
    if (it->second->state == IkeState::kDead) {
      destroy(*it->second);
      std::string name = it->second->conn->name;
      it = sas_.erase(it);
      update_connection(name);
    } else {
      ++it;
    }
  }
  for (auto& cs : conns_)
    if (cs->want && cs->cfg.initiate && t >= cs->next_initiate_ms && ike_sas(cs->cfg.name).empty())
      start(*cs);
}

// ---- status ----

ConnStatus Daemon::status_of(const ConnState& cs) const {
  ConnStatus s;
  uint64_t t = env_.now_ms();
  s.name = cs.cfg.name;
  s.local = cs.cfg.local.str();
  s.remote = cs.cfg.remote.str();
  s.last_error = cs.last_error;
  s.established_ms = cs.last_established_ms;
  s.frag = cs.frag;
  s.failures = cs.failures;
  auto sas = ike_sas(cs.cfg.name);
  IkeSa* sa = established_sa(cs.cfg.name);
  // Connecting: an IKE SA is being negotiated, or we retry after a failure.
  s.state = cs.up ? "Connected"
            : !sas.empty() || (cs.want && cs.cfg.initiate) ? "Connecting"
                                                           : "NotConnected";
  if (!sa && !sas.empty()) sa = sas.front();
  if (!sa) return s;
  s.local = sa->local.str();
  s.remote = sa->remote.str();
  s.initiator = sa->initiator;
  s.ike_state = to_string(sa->state);
  s.ike_proposal = sa->suite.encr ? sa->suite.str() : "";
  s.ike_spi_i = hex64(sa->spi_i);
  s.ike_spi_r = hex64(sa->spi_r);
  s.nat_local = sa->nat_local;
  s.nat_remote = sa->nat_remote;
  s.fragmentation = sa->frag;
  s.ike_rekey_in_s = sa->established() ? secs_left(sa->rekey_ms, t) : -1;
  for (IkeSa* any : sas)
    for (const auto& c : any->children) {
      ChildStatus ch;
      ch.spi_in = hex32(c.spi_in);
      ch.spi_out = hex32(c.spi_out);
      ch.proposal = c.suite.str();
      ch.state = c.state == ChildState::kInstalled ? "INSTALLED"
                 : c.state == ChildState::kOutPending ? "INSTALLING"
                 : c.state == ChildState::kRekeyed ? "REKEYED"
                                                   : "DELETING";
      ch.udp_encap = c.udp_encap;
      ch.rekey_in_s = secs_left(c.rekey_ms, t);
      ch.expires_in_s = secs_left(c.expire_ms, t);
      if (c.in_installed) ch.in = kernel_.sa_stats(cs.cfg.name, c.spi_in, true);
      if (c.out_installed) ch.out = kernel_.sa_stats(cs.cfg.name, c.spi_out, false);
      for (const auto& x : c.ts_local) ch.ts_local.push_back(x.str());
      for (const auto& x : c.ts_remote) ch.ts_remote.push_back(x.str());
      s.in.packets += ch.in.packets;
      s.in.bytes += ch.in.bytes;
      s.out.packets += ch.out.packets;
      s.out.bytes += ch.out.bytes;
      s.children.push_back(std::move(ch));
    }
  return s;
}

std::vector<ConnStatus> Daemon::status() const {
  std::vector<ConnStatus> v;
  for (const auto& cs : conns_) v.push_back(status_of(*cs));
  return v;
}

}  // namespace espgw::ike
