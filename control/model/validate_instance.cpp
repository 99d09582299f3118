// Rules about this process's instance: ports, routes, static tunnels and data-plane sizing.
#include <map>
#include <set>
#include <string_view>

#include "control/model/rule_util.h"
#include "control/model/validate.h"

namespace espgw::model::rules {

using util::add;
using util::at;

namespace {

// Whether a is on the connected prefix of some port address: one set lookup per prefix length.
bool on_connected_prefix(const std::set<Prefix>& connected, const IpAddr& a) {
  for (unsigned len = 0; len <= (a.is_v4() ? 32u : 128u); ++len)
    if (connected.count(Prefix{a, uint8_t(len)}.normalized())) return true;
  return false;
}

void lifetime_order(Errors& e, const Config& c, Mark m, const std::string& f, const char* what,
                    uint64_t soft, uint64_t hard) {
  if (soft != 0 && hard != 0 && soft >= hard)
    add(e, c, m, f + ".soft_lifetime." + what,
        std::to_string(soft) + " must be below hard_lifetime." + what + " (" +
            std::to_string(hard) + ")");
}

}  // namespace

void ports(const Config& c, Errors& e) {
  const Instance& in = c.instance;
  if (in.ports.empty()) add(e, c, in.mark, "instance.ports", "at least one port is required");
  std::map<std::string, size_t> devices;
  std::map<IpAddr, std::string> addresses;
  for (size_t i = 0; i < in.ports.size(); ++i) {
    const Port& p = in.ports[i];
    const std::string f = at("instance.ports", i);
    util::range(e, c, p.mark, f + ".mtu", p.mtu, 576, 9216);
    auto [dev, fresh] = devices.emplace(p.device, i);
    if (!fresh)
      add(e, c, p.mark, f + ".device",
          "device '" + p.device + "' is also used by " + at("instance.ports", dev->second));
    for (size_t j = 0; j < p.addresses.size(); ++j) {
      const IfAddr& a = p.addresses[j];
      const std::string af = at(f + ".addresses", j);
      auto [it, fresh_addr] = addresses.emplace(a.addr, af);
      if (!fresh_addr) add(e, c, p.mark, af, "address " + a.addr.str() + " is also " + it->second);
    }
  }
}

void routes(const Config& c, Errors& e) {
  const Instance& in = c.instance;
  std::set<std::string_view> tunnels, port_names;
  std::set<Prefix> connected;
  for (const auto& t : in.tunnels) tunnels.insert(t.name);
  for (const auto& p : in.ports) {
    port_names.insert(p.name);
    for (const auto& a : p.addresses) connected.insert(a.connected());
  }
  for (size_t i = 0; i < in.routes.size(); ++i) {
    const Route& r = in.routes[i];
    const std::string f = at("instance.routes", i);
    int kinds = int(r.via.is_set()) + int(!r.tunnel.empty()) + int(r.blackhole);
    if (kinds > 1) {
      add(e, c, r.mark, f, "give at most one of via, tunnel and blackhole");
      continue;
    }
    if (kinds == 0 && r.port.empty()) {
      add(e, c, r.mark, f, "give one of via, port, tunnel or blackhole");
      continue;
    }
    if (!r.port.empty() && (r.blackhole || !r.tunnel.empty()))
      add(e, c, r.mark, f + ".port", "a tunnel or blackhole route takes no port");
    if (r.via.is_set() && r.via.family != r.prefix.addr.family)
      add(e, c, r.mark, f + ".via",
          "next hop " + r.via.str() + " is not the same address family as " + r.prefix.str());
    if (!r.tunnel.empty() && !tunnels.count(r.tunnel))
      add(e, c, r.mark, f + ".tunnel", "no static tunnel named '" + r.tunnel + "'");
    if (!r.port.empty() && !port_names.count(r.port))
      add(e, c, r.mark, f + ".port", "no port named '" + r.port + "'");
    if (r.via.is_set() && r.port.empty() && r.via.family == r.prefix.addr.family &&
        !on_connected_prefix(connected, r.via))
      add(e, c, r.mark, f + ".via",
          "next hop " + r.via.str() + " is not on any port's connected prefix (give 'port')");
  }
}

void tunnel_endpoints(const Config& c, Errors& e) {
  const Instance& in = c.instance;
  std::set<IpAddr> local;
  for (const auto& p : in.ports)
    for (const auto& a : p.addresses) local.insert(a.addr);
  for (size_t i = 0; i < in.tunnels.size(); ++i) {
    const StaticTunnel& t = in.tunnels[i];
    const std::string f = at("instance.tunnels", i);
    if (!local.count(t.local))
      add(e, c, t.mark, f + ".local", t.local.str() + " is not an address of any port");
    if (t.local.family != t.remote.family)
      add(e, c, t.mark, f + ".remote",
          t.remote.str() + " is not the same address family as local " + t.local.str());
  }
}

void tunnel_sas(const Config& c, Errors& e) {
  const Instance& in = c.instance;
  std::map<uint32_t, size_t> inbound_spis;
  for (size_t i = 0; i < in.tunnels.size(); ++i) {
    const StaticTunnel& t = in.tunnels[i];
    const std::string f = at("instance.tunnels", i);
    for (const auto& [sa, dir] : {std::pair{&t.outbound, ".outbound"}, {&t.inbound, ".inbound"}}) {
      const std::string sf = f + dir;
      if (sa->spi < 256)
        add(e, c, sa->mark, sf + ".spi",
            "SPI " + std::to_string(sa->spi) + " is reserved (use 256 or above)");
      const crypto::AlgoInfo& ai = crypto::info(sa->algo);
      // Lengths only; the key itself is never put in a message.
      if (sa->key.size() != ai.keymat_len()) {
        std::string parts = std::to_string(ai.enc_key_len) + "-byte key";
        if (ai.salt_len) parts += " + " + std::to_string(ai.salt_len) + "-byte salt";
        if (ai.auth_key_len) parts += " + " + std::to_string(ai.auth_key_len) + "-byte auth key";
        add(e, c, sa->mark, sf + ".key_file",
            "key is " + std::to_string(sa->key.size()) + " bytes; " + std::string(ai.name) +
                " needs " + std::to_string(ai.keymat_len()) + " (" + parts + ")");
      }
    }
    if (t.inbound.seq_start)
      add(e, c, t.inbound.mark, f + ".inbound.seq_start", "only the outbound SA takes seq_start");
    // the sequence space must not start used up (no ESN: the last number is 2^32 - 1)
    if (t.outbound.seq_start >= (t.esn ? ~uint64_t(0) : 0xffffffffull))
      add(e, c, t.outbound.mark, f + ".outbound.seq_start",
          std::to_string(t.outbound.seq_start) + " leaves no sequence number" +
              (t.esn ? "" : " (without esn the last one is 4294967295)"));
    // one key for both directions would let a reflected packet pass the ICV check and, with an
    // AEAD, make both sides use the same (key, nonce) pairs
    if (!t.outbound.key.empty() && t.outbound.key.equals(t.inbound.key))
      add(e, c, t.inbound.mark, f + ".inbound.key_file",
          "the inbound key is the same as the outbound key; each direction needs its own");
    auto [it, fresh] = inbound_spis.emplace(t.inbound.spi, i);
    if (!fresh)
      add(e, c, t.inbound.mark, f + ".inbound.spi",
          "inbound SPI " + std::to_string(t.inbound.spi) + " is also used by " +
              at("instance.tunnels", it->second));
  }
}

void tunnel_settings(const Config& c, Errors& e) {
  const Instance& in = c.instance;
  for (size_t i = 0; i < in.tunnels.size(); ++i) {
    const StaticTunnel& t = in.tunnels[i];
    const std::string f = at("instance.tunnels", i);
    if (!t.anti_replay) {
      // no window: replay_window is not used
    } else if (t.replay_window == 0) {
      add(e, c, t.mark, f + ".replay_window",
          "0 turns the anti-replay check off; say so with 'anti_replay: false'");
    } else {
      util::range(e, c, t.mark, f + ".replay_window", t.replay_window, 64, 4096);
    }
    util::mss_clamp(e, c, t.mark, f + ".tcp_mss_clamp", t.tcp_mss_clamp);
    lifetime_order(e, c, t.mark, f, "bytes", t.soft_lifetime.bytes, t.hard_lifetime.bytes);
    lifetime_order(e, c, t.mark, f, "packets", t.soft_lifetime.packets, t.hard_lifetime.packets);
    lifetime_order(e, c, t.mark, f, "seconds", t.soft_lifetime.seconds, t.hard_lifetime.seconds);
  }
}

void instance_settings(const Config& c, Errors& e) {
  const Instance& in = c.instance;
  const std::string& x = in.exception_iface;
  bool iface_ok = !x.empty() && x.size() <= 15 && x != "." && x != "..";
  for (char ch : x)
    if (ch == '/' || ch == ':' || ch <= ' ' || ch == 0x7f) iface_ok = false;
  if (!iface_ok)
    add(e, c, in.mark, "instance.exception_iface",
        "invalid interface name (1 to 15 characters, no '/', ':' or spaces)");
  if (in.control_socket.size() >= 108)  // sizeof(sockaddr_un::sun_path)
    add(e, c, in.mark, "instance.control_socket", "path is too long for a unix socket");
  for (char ch : in.file_prefix)
    if (ch == '/' || ch <= ' ') {
      add(e, c, in.mark, "instance.file_prefix", "must not contain '/' or spaces");
      break;
    }
}

void dataplane_ranges(const Config& c, Errors& e) {
  const Dataplane& d = c.instance.dataplane;
  const Mark m = c.instance.mark;
  util::range(e, c, m, "instance.dataplane.workers", d.workers, 1, 64);
  util::range(e, c, m, "instance.dataplane.burst", d.burst, 1, 256);
  util::range(e, c, m, "instance.dataplane.control_pps", d.control_pps, 10, 1000000);
  util::range(e, c, m, "instance.dataplane.max_neighbors", d.max_neighbors, 16, 1u << 20);
  if (d.mbufs < 1024)
    add(e, c, m, "instance.dataplane.mbufs",
        std::to_string(d.mbufs) + " is below the minimum 1024");
}

}  // namespace espgw::model::rules
