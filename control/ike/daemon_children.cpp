// The Daemon (daemon.h), part 3: Child SAs in the kernel. Install (inbound first, outbound
// now or pending), remove, promote a pending replacement, lifetime timers and soft limits, and
// the data plane's soft/hard lifetime events.
#include "control/ike/daemon.h"

#include "control/ike/daemon_internal.h"
#include "control/ike/tasks/tasks.h"

namespace espgw::ike {

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

}  // namespace espgw::ike
