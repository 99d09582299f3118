// The facade (dataplane.h) over the run-time tables, the ports and the workers.
#include "dataplane/dataplane.h"

#include <time.h>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <cstdio>

#include "crypto/ipsecmb_engine.h"
#include "dataplane/log.h"
#include "dataplane/path/worker.h"
#include "dataplane/port.h"
#include "dataplane/runtime.h"
#include "dataplane/tables/fib.h"
#include "dataplane/tables/neighbor.h"
#include "dataplane/tables/routes.h"
#include "dataplane/tables/sa.h"

namespace espgw::dp {

int g_hold_meta_offset = -1;

void register_telemetry(Runtime& rt);  // telemetry.cpp

uint64_t monotonic_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

std::string mac_str(const std::array<uint8_t, 6>& m) {
  char b[18];
  std::snprintf(b, sizeof b, "%02X:%02X:%02X:%02X:%02X:%02X", m[0], m[1], m[2], m[3], m[4], m[5]);
  return b;
}

bool parse_mac(const std::string& s, std::array<uint8_t, 6>& out) {
  rte_ether_addr a;
  if (rte_ether_unformat_addr(s.c_str(), &a) != 0) return false;
  std::memcpy(out.data(), a.addr_bytes, 6);
  return true;
}

struct Dataplane::Impl {
  Config cfg;
  std::unique_ptr<Runtime> rt;
  std::unique_ptr<CounterSet> counters;
  std::unique_ptr<std::atomic<TunnelRt*>[]> tunnels;
  std::unique_ptr<Fib> fib;
  std::unique_ptr<Neighbors> neigh;
  std::unique_ptr<RouteTable> routes;
  std::unique_ptr<SaTable> sas;
  std::vector<WorkerArgs> wargs;
  std::vector<DpEvent> events;
  uint64_t next_tick_ms = 0;
  bool launched = false, down = false;

  bool init(std::string* err);
};

bool Dataplane::Impl::init(std::string* err) {
  static const rte_mbuf_dynfield hold_desc = {"espgw_hold_meta", sizeof(HoldMeta),
                                              alignof(HoldMeta), 0};
  g_hold_meta_offset = rte_mbuf_dynfield_register(&hold_desc);
  if (g_hold_meta_offset < 0) return *err = "cannot register the mbuf dynfield", false;

  rt = std::make_unique<Runtime>();
  counters = std::make_unique<CounterSet>();
  rt->counters = counters.get();
  unsigned lc;
  RTE_LCORE_FOREACH_WORKER(lc) rt->worker_lcores.push_back(lc);
  if (rt->worker_lcores.empty()) return *err = "no worker lcore: give at least 2 lcores", false;
  if (rt->worker_lcores.size() > kMaxWorkers) return *err = "too many worker lcores", false;
  rt->n_workers = unsigned(rt->worker_lcores.size());
  rt->burst = cfg.burst;
  rt->idle_sleep_us = cfg.idle_sleep_us;
  rt->control_rate_per_sec = cfg.control_pps;

  const int socket = int(rte_socket_id());
  size_t qsz = rte_rcu_qsbr_get_memsize(RTE_MAX_LCORE);
  rt->qsbr = static_cast<rte_rcu_qsbr*>(rte_zmalloc("espgw_qsbr", qsz, RTE_CACHE_LINE_SIZE));
  if (!rt->qsbr || rte_rcu_qsbr_init(rt->qsbr, RTE_MAX_LCORE) != 0)
    return *err = "RCU init failed", false;
  rt->nexthops = static_cast<NextHop*>(
      rte_zmalloc("espgw_nh", sizeof(NextHop) * kMaxNextHops, RTE_CACHE_LINE_SIZE));
  if (!rt->nexthops) return *err = "cannot allocate the next-hop table", false;
  rt->to_control = rte_ring_create("espgw_to_ctl", 4096, socket, RING_F_SC_DEQ);
  rt->sa_events = rte_ring_create("espgw_sa_ev", 1024, socket, RING_F_SC_DEQ);
  if (!rt->to_control || !rt->sa_events) return *err = "cannot create the control rings", false;
  for (unsigned i = 0; i < rt->n_workers; ++i) {
    std::string n = "espgw_handoff" + std::to_string(i);
    rt->handoff[i] = rte_ring_create(n.c_str(), 1024, socket, RING_F_SC_DEQ);
    if (!rt->handoff[i]) return *err = "cannot create hand-off ring " + n, false;
  }
  tunnels = std::make_unique<std::atomic<TunnelRt*>[]>(kMaxTunnels);
  rt->tunnels = tunnels.get();
  if (auto probe = crypto::Engine::create(); !probe)
    return *err = "the IPsec-MB engine cannot be set up on this CPU", false;
  else
    logging::logf(logging::Level::kInfo, "crypto engine: IPsec-MB %s, code path %s",
                  crypto::Engine::version(), probe->arch());

  fib = std::make_unique<Fib>();
  if (!fib->init("espgw_fib", socket, cfg.max_routes_v4, cfg.max_routes_v6, rt->qsbr, err))
    return false;
  rt->fib = fib.get();
  if (!setup_ports(cfg, *rt, err)) return false;
  if (cfg.configure_kernel && !cfg.exception_iface.empty() &&
      !setup_exception_kernel(cfg, *rt, err))
    return *err = "exception path: " + *err, false;

  neigh = std::make_unique<Neighbors>(*rt);
  routes = std::make_unique<RouteTable>(*rt, *neigh);
  sas = std::make_unique<SaTable>(*rt, &events);
  if (!neigh->init(cfg.max_neighbors, err)) return false;
  if (!sas->init(err)) return false;
  routes->tunnel_name = [this](uint32_t id) {
    const TunnelRt* t = sas->tunnel(id);
    return t ? t->name : std::to_string(id);
  };
  // The ports' own addresses: connected prefixes and local (host) routes to the exception path.
  for (uint16_t i = 0; i < rt->ports.size(); ++i) {
    const PortRt& p = rt->ports[i];
    if (p.exception) continue;
    for (const auto& a : p.addrs) {
      NhSpec conn{NhKind::kConnected, i, {}};
      if (!routes->add(a.connected(), RouteSource::kConnected, conn, err)) return false;
      NhSpec local{NhKind::kLocal, rt->exception_port, {}};
      Prefix host{a.addr, uint8_t(a.addr.is_v4() ? 32 : 128)};
      if (!routes->add(host, RouteSource::kLocal, local, err)) return false;
    }
  }
  return routes->commit(err);
}

std::string exception_vdev(const std::string& iface) { return "net_tap_espgw_x,iface=" + iface; }

Runtime& runtime_of(Dataplane& d) { return *d.impl_->rt; }

Dataplane::Dataplane(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

std::unique_ptr<Dataplane> Dataplane::create(const Config& cfg, std::string* err) {
  auto impl = std::make_unique<Impl>();
  impl->cfg = cfg;
  std::unique_ptr<Dataplane> dp(new Dataplane(std::move(impl)));
  if (!dp->impl_->init(err)) return nullptr;  // the destructor frees what was made
  return dp;
}

Dataplane::~Dataplane() { shutdown(); }

bool Dataplane::start(std::string*) {
  Impl& d = *impl_;
  // Workers are launched first but receive nothing until enable_forwarding(); every later
  // change reaches them through the RCU-protected publish.
  d.wargs.resize(d.rt->n_workers);
  for (unsigned i = 0; i < d.rt->n_workers; ++i) {
    d.wargs[i] = {d.rt.get(), i};
    rte_eal_remote_launch(worker_main, &d.wargs[i], d.rt->worker_lcores[i]);
  }
  d.launched = true;
  register_telemetry(*d.rt);
  return true;
}

void Dataplane::enable_forwarding() {
  impl_->rt->forwarding.store(true, std::memory_order_release);
}

void Dataplane::shutdown() {
  Impl& d = *impl_;
  if (d.down || !d.rt) return;
  d.down = true;
  d.rt->running.store(false);
  if (d.launched) rte_eal_mp_wait_lcore();
  d.sas.reset();
  d.routes.reset();
  d.neigh.reset();
  for (const auto& p : d.rt->ports) {
    rte_eth_dev_stop(p.eth_id);
    rte_eth_dev_close(p.eth_id);
  }
  d.fib.reset();
  rte_ring_free(d.rt->to_control);
  rte_ring_free(d.rt->sa_events);
  for (auto* h : d.rt->handoff) rte_ring_free(h);
  rte_free(d.rt->nexthops);
  rte_free(d.rt->qsbr);
  rte_mempool_free(d.rt->pool);
  rte_mempool_free(d.rt->indirect_pool);
}

unsigned Dataplane::workers() const { return impl_->rt->n_workers; }
const std::vector<unsigned>& Dataplane::worker_lcores() const { return impl_->rt->worker_lcores; }
unsigned Dataplane::control_lcore() const { return rte_get_main_lcore(); }
const CounterSet& Dataplane::counters() const { return *impl_->counters; }

std::optional<uint16_t> Dataplane::port_index(const std::string& name) const {
  const auto& ports = impl_->rt->ports;
  for (uint16_t i = 0; i < ports.size(); ++i)
    if (!ports[i].exception && ports[i].name == name) return i;
  return std::nullopt;
}

std::vector<PortView> Dataplane::ports() const {
  const Runtime& rt = *impl_->rt;
  std::vector<PortView> out;
  for (uint16_t i = 0; i < rt.ports.size(); ++i) {
    const PortRt& p = rt.ports[i];
    PortCounters c = rt.counters->total_port(i);
    rte_eth_stats st{};
    rte_eth_stats_get(p.eth_id, &st);
    PortView v;
    v.name = p.name;
    v.ethdev = p.eth_id;
    std::memcpy(v.mac.data(), p.mac.addr_bytes, 6);
    v.mtu = p.mtu;
    v.exception = p.exception;
    v.addrs = p.addrs;
    v.rx_packets = c.rx_packets;
    v.rx_bytes = c.rx_bytes;
    v.tx_packets = c.tx_packets;
    v.tx_bytes = c.tx_bytes;
    v.rx_missed = st.imissed;
    v.rx_errors = st.ierrors;
    v.tx_errors = st.oerrors;
    out.push_back(std::move(v));
  }
  return out;
}

// ---- SAs and tunnels

uint32_t Dataplane::add_sa(const SaParams& p, std::string* err) { return impl_->sas->add_sa(p, err); }
bool Dataplane::del_sa(uint32_t id) { return impl_->sas->del_sa(id); }
SaStats Dataplane::sa_stats(uint32_t id) const { return impl_->sas->stats(id); }
std::vector<SaView> Dataplane::sas() const { return impl_->sas->view(); }

void Dataplane::raise_seq_limit(uint32_t id, uint64_t limit) {
  SaRt* sa = impl_->sas->sa(id);
  if (!sa || sa->inbound) return;
  if (limit > sa->seq_limit.load(std::memory_order_relaxed))
    sa->seq_limit.store(limit, std::memory_order_release);
}

uint32_t Dataplane::add_tunnel(const TunnelParams& p, std::string* err) {
  return impl_->sas->add_tunnel(p, err);
}
bool Dataplane::bind_tunnel(uint32_t tunnel, uint32_t sa, std::string* err, bool send) {
  return impl_->sas->bind_tunnel(tunnel, sa, err, send);
}
uint32_t Dataplane::tunnel_out_sa(uint32_t id) const {
  const TunnelRt* t = impl_->sas->tunnel(id);
  const SaRt* out = t ? t->out.load(std::memory_order_acquire) : nullptr;
  return out ? out->id : 0;
}
uint32_t Dataplane::tunnel_by_name(const std::string& name) const {
  return impl_->sas->tunnel_by_name(name);
}
std::string Dataplane::tunnel_name(uint32_t id) const {
  const TunnelRt* t = impl_->sas->tunnel(id);
  return t ? t->name : "";
}
bool Dataplane::tunnel_up(uint32_t id) const {
  const TunnelRt* t = impl_->sas->tunnel(id);
  const SaRt* out = t ? t->out.load(std::memory_order_acquire) : nullptr;
  return out && !out->expired.load(std::memory_order_relaxed);
}
std::vector<TunnelView> Dataplane::tunnels() const { return impl_->sas->tunnels_view(); }

// ---- routes

bool Dataplane::route_add(const Prefix& p, RouteSource s, const NhSpec& nh, std::string* err) {
  return impl_->routes->add(p, s, nh, err);
}
bool Dataplane::route_del(const Prefix& p, RouteSource s) { return impl_->routes->del(p, s); }
bool Dataplane::route_commit(std::string* err) { return impl_->routes->commit(err); }
void Dataplane::route_checkpoint() { impl_->routes->checkpoint(); }
void Dataplane::route_rollback() { impl_->routes->rollback(); }
bool Dataplane::route_installed(const Prefix& p, RouteSource s) const {
  return impl_->routes->installed(p, s);
}
std::string Dataplane::route_failure(const Prefix& p) const { return impl_->routes->failure(p); }
size_t Dataplane::routes_failed() const { return impl_->routes->failed_count(); }
size_t Dataplane::route_count() const { return impl_->routes->size(); }
bool Dataplane::resolve_via(const IpAddr& gw, const std::string& port_name, NhSpec& out,
                            std::string* err) const {
  return impl_->routes->resolve_via(gw, port_name, out, err);
}
RoutesView Dataplane::routes(const RoutePage& page) const { return impl_->routes->view(page); }
uint64_t Dataplane::fib_generation() const { return impl_->fib->generation(); }

// ---- neighbours, local addresses

bool Dataplane::add_neighbor(uint16_t port, const IpAddr& ip, const std::array<uint8_t, 6>& mac,
                             std::string* err) {
  if (port >= impl_->rt->ports.size() || impl_->rt->ports[port].exception)
    return *err = "no such port", false;
  rte_ether_addr a;
  std::memcpy(a.addr_bytes, mac.data(), 6);
  return impl_->neigh->add_static(port, ip, a, err);
}
std::vector<NeighborView> Dataplane::neighbors() const { return impl_->neigh->view(); }

bool Dataplane::add_local_address(const IpAddr& a, std::string* err) {
  Impl& d = *impl_;
  if (d.rt->exception_port == Runtime::kNoPort)
    return *err = "no exception interface for local address " + a.str(), false;
  if (d.cfg.configure_kernel && !add_exception_address(d.cfg.exception_iface, a, err))
    return false;
  NhSpec local{NhKind::kLocal, d.rt->exception_port, {}};
  Prefix host{a, uint8_t(a.is_v4() ? 32 : 128)};
  return d.routes->add(host, RouteSource::kLocal, local, err) && d.routes->commit(err);
}

// ---- the control thread's share

void Dataplane::poll(uint64_t now_ms) {
  Impl& d = *impl_;
  void* objs[64];
  // bounded per call: a flood from the workers (already rate-limited per port there) cannot
  // keep the control loop from its sockets and timers; what is left waits for the next call
  for (unsigned k = 0; k < 4; ++k) {
    unsigned n = rte_ring_sc_dequeue_burst(d.rt->to_control, objs, 64, nullptr);
    for (unsigned i = 0; i < n; ++i) d.neigh->receive(static_cast<rte_mbuf*>(objs[i]), now_ms);
    if (n < 64) break;
  }
  d.sas->drain_worker_events();
  if (now_ms >= d.next_tick_ms) {
    d.neigh->tick(now_ms);
    d.sas->tick(now_ms);
    d.next_tick_ms = now_ms + 100;
    bump(d.counters->lcore[rte_lcore_id()].polls);
  }
}

size_t Dataplane::drain_events(std::vector<DpEvent>& out) {
  size_t n = impl_->events.size();
  out.insert(out.end(), impl_->events.begin(), impl_->events.end());
  impl_->events.clear();
  return n;
}

}  // namespace espgw::dp
