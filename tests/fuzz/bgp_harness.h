// Shared by the bgp_fsm and bgp_speaker fuzz targets: a transport that checks what the speaker
// sends, a FIB sink that mirrors the selected routes, and the invariants both targets assert after
// every step. The input is read as a sequence of operations (Ops); peers' OPENs are built here so
// the fuzzer spends its time on the session and UPDATE streams, not on the handshake.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <span>

#include "control/bgp/speaker.h"

namespace espgw::bgp::fuzz {

inline void check(bool ok) {
  if (!ok) std::abort();
}

// Reads the fuzzer's bytes front to back; past the end everything reads as 0.
class Ops {
 public:
  Ops(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  bool done() const { return i_ >= n_; }
  uint8_t u8() { return i_ < n_ ? d_[i_++] : 0; }
  uint16_t u16() { return uint16_t(u8() << 8 | u8()); }
  std::span<const uint8_t> take(size_t n) {
    n = std::min(n, n_ - std::min(i_, n_));
    std::span<const uint8_t> s(d_ + i_, n);
    i_ += n;
    return s;
  }

 private:
  const uint8_t* d_;
  size_t n_, i_ = 0;
};

// Everything the speaker sends on a connection must frame and decode as a valid message (with
// the codec of the session it is sent on); nothing is kept beyond the current partial message.
class CheckingTransport : public Transport {
 public:
  ConnId connect(const IpAddr&, const IpAddr&) override {
    ConnId c = next_++;
    connecting.insert(c);
    return c;
  }
  bool send(ConnId c, std::span<const uint8_t> b) override {
    if (closed.count(c)) return false;
    Bytes& buf = tx_[c];
    buf.insert(buf.end(), b.begin(), b.end());
    size_t off = 0;
    while (buf.size() - off >= kHeaderLen) {
      HeaderResult h = decode_header(std::span<const uint8_t>(buf).subspan(off, kHeaderLen));
      check(h.ok);
      if (buf.size() - off < h.header.length) break;
      std::span<const uint8_t> msg(buf.data() + off, h.header.length);
      const Codec* cc = codec ? codec(c) : nullptr;
      MessageResult r = decode_message(msg, cc ? *cc : Codec{});
      check(r.ok());
      off += h.header.length;
      ++messages;
    }
    buf.erase(buf.begin(), buf.begin() + ptrdiff_t(off));
    check(buf.size() < kMaxMessageLen);
    return true;
  }
  void close(ConnId c) override {
    closed.insert(c);
    connecting.erase(c);
    tx_.erase(c);
  }
  ConnId fresh() { return next_++; }  // an incoming connection's id

  // The codec a connection's messages decode with (the session's), if known.
  std::function<const Codec*(ConnId)> codec;
  std::set<ConnId> connecting, closed;
  uint64_t messages = 0;

 private:
  ConnId next_ = 1;
  std::map<ConnId, Bytes> tx_;
};

// Mirrors what the speaker selects for forwarding: prefix -> the peers of the selected paths.
class MirrorFib : public FibSink {
 public:
  void fib_update(const Prefix& p, const std::vector<const Path*>& paths) override {
    if (paths.empty()) {
      routes.erase(p);
      return;
    }
    auto& v = routes[p];
    v.clear();
    for (const Path* x : paths) {
      check(x->peer != kLocalPeer);  // originated routes are never pushed to the FIB
      v.insert(x->peer);
    }
  }
  void fib_commit() override {}
  std::map<Prefix, std::set<PeerId>> routes;
};

// The RIB's internal consistency, the FIB mirror against the RIB, and the session rules:
// a peer that is not Established has no fresh routes (only stale ones while it restarts), and
// a peer with a hard prefix limit never holds more than the limit.
inline void check_speaker(const Speaker& s, const MirrorFib* fib) {
  const Rib& rib = s.rib();
  std::map<PeerId, size_t> per_peer;
  size_t with_fib_paths = 0;
  for (const auto& [p, e] : rib.entries()) {
    check(!e.paths.empty());
    check(!e.selected.empty() && e.selected.size() <= s.config().max_paths);
    std::set<PeerId> seen, selected;
    for (const Path& path : e.paths) {
      check(seen.insert(path.peer).second);  // one path per peer and prefix
      check(path.attrs != nullptr);
      if (path.peer != kLocalPeer) ++per_peer[path.peer];
    }
    for (uint32_t i : e.selected) {
      check(i < e.paths.size());
      if (e.paths[i].peer != kLocalPeer) selected.insert(e.paths[i].peer);
    }
    if (!fib) continue;
    auto f = fib->routes.find(p);
    if (selected.empty()) {
      check(f == fib->routes.end());
    } else {
      check(f != fib->routes.end() && f->second == selected);
      ++with_fib_paths;
    }
  }
  if (fib) check(fib->routes.size() == with_fib_paths);
  for (const auto& peer : s.peers()) {
    const PeerId id = peer->id();
    check(rib.adj_in_count(id) == per_peer[id]);
    const PeerConfig& pc = peer->config();
    if (pc.max_prefixes && pc.max_prefix_action != MaxPrefixAction::kWarn)
      check(rib.adj_in_count(id) <= pc.max_prefixes);
    if (peer->state() != State::kEstablished) {
      for (const auto& [p, e] : rib.entries())
        for (const Path& path : e.paths) check(path.peer != id || path.stale);
      check(s.adj_out_count(id) == 0);
    }
    // Every complete message is handled as soon as it is in: what stays buffered is less than
    // one message per connection, whatever the chunking.
    check(peer->buffered() < 2 * kMaxMessageLen);
  }
}

// A peer's OPEN: both unicast families, route refresh, 4-octet AS unless !as4, and graceful
// restart (with both families, forwarding preserved) when `gr`.
inline Bytes peer_open(uint32_t asn, uint32_t router_id, uint16_t hold, bool gr, bool as4 = true) {
  Capabilities caps;
  caps.multiprotocol = {kIpv4Unicast, kIpv6Unicast};
  caps.route_refresh = true;
  if (gr) {
    GracefulRestart g;
    g.restart_time = 120;
    g.families = {{kIpv4Unicast, true}, {kIpv6Unicast, true}};
    caps.graceful_restart = g;
  }
  Open o = Open::make(asn, hold, router_id, caps);
  if (!as4) o.caps.as4.reset();
  return encode_open(o);
}

// A message of `type` around `body` (the fuzzer need not get the header right).
inline Bytes frame(MsgType type, std::span<const uint8_t> body) {
  const size_t len = std::min(kMaxMessageLen, kHeaderLen + body.size());
  Bytes m(16, 0xff);
  m.push_back(uint8_t(len >> 8));
  m.push_back(uint8_t(len));
  m.push_back(uint8_t(type));
  m.insert(m.end(), body.begin(), body.begin() + ptrdiff_t(len - kHeaderLen));
  return m;
}

}  // namespace espgw::bgp::fuzz
