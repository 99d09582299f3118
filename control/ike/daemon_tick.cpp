// The Daemon (daemon.h), part 4: timers and status. tick(): cookie secret rotation, dead IKE
// SAs removed, re-initiation; tick_sa(): half-open and rekeyed timeouts, Child SA draining,
// rekey/expiry scheduling, liveness (DPD) and NAT keepalives; status() for the views.
#include "control/ike/daemon.h"

#include <vector>

#include "control/ike/daemon_internal.h"
#include "control/ike/tasks/tasks.h"

namespace espgw::ike {

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
