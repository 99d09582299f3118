// The per-process part of the config: ports, routes, static tunnels, data-plane sizing.
#include "control/model/key_file.h"
#include "control/model/parse.h"

namespace espgw::model::internal {
namespace {

void parse_port(Reader& r, const Field& f, Port* p) {
  p->mark = f.mark;
  r.map(f, {
               {"name", [&](const Field& v) { r.read(v, &p->name); }, true},
               {"device",
                [&](const Field& v) {
                  if (!r.read(v, &p->device)) return;
                  if (p->device.empty()) r.error(v, "empty device");
                  p->is_vdev = p->device.rfind("net_", 0) == 0;
                },
                true},
               {"addresses",
                [&](const Field& v) {
                  auto one = [&](const Field& item) {
                    IfAddr a;
                    if (r.read(item, &a)) p->addresses.push_back(a);
                  };
                  if (v.node.IsScalar())
                    one(v);
                  else
                    r.list(v, one);
                }},
               {"mtu", [&](const Field& v) { r.read_uint(v, &p->mtu); }},
           });
}

void parse_route(Reader& r, const Field& f, Route* rt) {
  rt->mark = f.mark;
  r.map(f, {
               {"prefix", [&](const Field& v) { r.read(v, &rt->prefix); }, true},
               {"via", [&](const Field& v) { r.read(v, &rt->via); }},
               {"port", [&](const Field& v) { r.read(v, &rt->port); }},
               {"tunnel", [&](const Field& v) { r.read(v, &rt->tunnel); }},
               {"blackhole", [&](const Field& v) { r.read(v, &rt->blackhole); }},
           });
}

void parse_sa(Reader& r, const Field& f, const std::string& key_dir, StaticSa* sa) {
  sa->mark = f.mark;
  r.map(f, {
               {"spi", [&](const Field& v) { r.read_uint(v, &sa->spi, /*allow_hex=*/true); }, true},
               {"algo",
                [&](const Field& v) {
                  std::string name;
                  if (!r.read(v, &name)) return;
                  if (auto a = crypto::algo_by_name(name)) {
                    sa->algo = *a;
                    return;
                  }
                  std::string known;
                  for (const auto& a : crypto::kAlgos)
                    known += (known.empty() ? "" : ", ") + std::string(a.name);
                  r.error(v,
                          "unknown algorithm " + quote(name) + " (expected one of: " + known + ")");
                },
                true},
               {"key_file",
                [&](const Field& v) {
                  if (!r.read(v, &sa->key_file)) return;
                  if (sa->key_file.empty()) {
                    r.error(v, "empty file name");
                    return;
                  }
                  auto res = read_hex_key_file(resolve(key_dir, sa->key_file));
                  if (!res.error.empty())
                    r.error(v, res.error);
                  else
                    sa->key = std::move(res.secret);
                },
                true},
               // outbound only (validate_instance refuses it inbound)
               {"seq_start",
                [&](const Field& v) { r.read_uint(v, &sa->seq_start, /*allow_hex=*/true); }},
           });
}

void parse_lifetime(Reader& r, const Field& f, SaLifetime* l) {
  r.map(f, {
               {"bytes", [&](const Field& v) { r.read_uint(v, &l->bytes); }},
               {"packets", [&](const Field& v) { r.read_uint(v, &l->packets); }},
               {"seconds", [&](const Field& v) { r.read_uint(v, &l->seconds); }},
           });
}

void parse_tunnel(Reader& r, const Field& f, const std::string& key_dir, StaticTunnel* t) {
  t->mark = f.mark;
  r.map(f, {
               {"name", [&](const Field& v) { r.read(v, &t->name); }, true},
               {"local", [&](const Field& v) { r.read(v, &t->local); }, true},
               {"remote", [&](const Field& v) { r.read(v, &t->remote); }, true},
               {"udp_encap", [&](const Field& v) { r.read(v, &t->udp_encap); }},
               {"esn", [&](const Field& v) { r.read(v, &t->esn); }},
               {"replay_window", [&](const Field& v) { r.read_uint(v, &t->replay_window); }},
               {"anti_replay", [&](const Field& v) { r.read(v, &t->anti_replay); }},
               {"tcp_mss_clamp", [&](const Field& v) { r.read_uint(v, &t->tcp_mss_clamp); }},
               {"traffic_selectors", [&](const Field& v) { r.read(v, &t->traffic_selectors); }},
               {"outbound", [&](const Field& v) { parse_sa(r, v, key_dir, &t->outbound); }, true},
               {"inbound", [&](const Field& v) { parse_sa(r, v, key_dir, &t->inbound); }, true},
               {"soft_lifetime", [&](const Field& v) { parse_lifetime(r, v, &t->soft_lifetime); }},
               {"hard_lifetime", [&](const Field& v) { parse_lifetime(r, v, &t->hard_lifetime); }},
           });
}

void parse_dataplane(Reader& r, const Field& f, Dataplane* d) {
  d->mark = f.mark;
  r.map(f, {
               {"workers", [&](const Field& v) { r.read_uint(v, &d->workers); }},
               {"lcores", [&](const Field& v) { r.read(v, &d->lcores); }},
               {"hugepages", [&](const Field& v) { r.read(v, &d->hugepages); }},
               {"memory_mb", [&](const Field& v) { r.read_uint(v, &d->memory_mb); }},
               {"mbufs", [&](const Field& v) { r.read_uint(v, &d->mbufs); }},
               {"burst", [&](const Field& v) { r.read_uint(v, &d->burst); }},
               {"idle_sleep_us", [&](const Field& v) { r.read_uint(v, &d->idle_sleep_us); }},
               {"max_routes_v4", [&](const Field& v) { r.read_uint(v, &d->max_routes_v4); }},
               {"max_routes_v6", [&](const Field& v) { r.read_uint(v, &d->max_routes_v6); }},
               {"max_neighbors", [&](const Field& v) { r.read_uint(v, &d->max_neighbors); }},
               {"control_pps", [&](const Field& v) { r.read_uint(v, &d->control_pps); }},
           });
}

template <class T, class Fn>
std::function<void(const Field&)> list_of(Reader& r, std::vector<T>* out, Fn parse_one) {
  return [&r, out, parse_one](const Field& v) {
    r.list(v, [&](const Field& item) {
      T x;
      parse_one(item, &x);
      out->push_back(std::move(x));
    });
  };
}

}  // namespace

void parse_instance(Reader& r, const Field& f, const std::string& key_dir, Instance* in) {
  in->mark = f.mark;
  r.map(f,
        {
            {"index", [&](const Field& v) { r.read_uint(v, &in->index); }},
            {"ports", list_of(r, &in->ports, [&](const Field& v, Port* p) { parse_port(r, v, p); }),
             true},
            {"routes",
             list_of(r, &in->routes, [&](const Field& v, Route* rt) { parse_route(r, v, rt); })},
            {"tunnels",
             list_of(r, &in->tunnels,
                     [&](const Field& v, StaticTunnel* t) { parse_tunnel(r, v, key_dir, t); })},
            {"exception_iface", [&](const Field& v) { r.read(v, &in->exception_iface); }},
            {"control_socket", [&](const Field& v) { r.read(v, &in->control_socket); }},
            {"file_prefix", [&](const Field& v) { r.read(v, &in->file_prefix); }},
            {"state_dir", [&](const Field& v) { r.read(v, &in->state_dir); }},
            {"dataplane", [&](const Field& v) { parse_dataplane(r, v, &in->dataplane); }},
        });
  if (!in->state_dir.empty()) in->state_dir = resolve(key_dir, in->state_dir);
}

}  // namespace espgw::model::internal
