// Test doubles for the BGP FSM and speaker: a recording transport, and an in-memory network that
// joins several Speakers in one process (connections, bytes, closes delivered by pump()). Time is
// a plain integer the test advances; nothing sleeps.
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "control/bgp/speaker.h"

namespace espgw::bgp::testing {

inline IpAddr ip(const char* s) { return *IpAddr::parse(s); }
inline Prefix pfx(const char* s) { return *Prefix::parse(s); }

// Splits a byte stream into messages (header + body), decoding each.
inline std::vector<Message> split_messages(const Bytes& stream, const Codec& c = {}) {
  std::vector<Message> out;
  size_t off = 0;
  while (stream.size() - off >= kHeaderLen) {
    size_t len = size_t(stream[off + 16]) << 8 | stream[off + 17];
    if (len < kHeaderLen || stream.size() - off < len) break;
    auto r = decode_message(std::span<const uint8_t>(stream.data() + off, len), c);
    EXPECT_TRUE(r.ok()) << r.reason;
    out.push_back(r.message);
    off += len;
  }
  return out;
}

// Records what a Peer does with the network.
class RecordingTransport : public Transport {
 public:
  ConnId connect(const IpAddr&, const IpAddr&) override {
    connects.push_back(++next_id);
    return fail_connect ? 0 : next_id;
  }
  bool send(ConnId c, std::span<const uint8_t> b) override {
    auto& v = out[c];
    v.insert(v.end(), b.begin(), b.end());
    return !closed.count(c);
  }
  void close(ConnId c) override { closed.insert(c); }
  // Messages sent on c since the last call.
  std::vector<Message> take(ConnId c, const Codec& codec = {}) {
    auto m = split_messages(out[c], codec);
    out[c].clear();
    return m;
  }
  ConnId next_id = 100;
  bool fail_connect = false;
  std::vector<ConnId> connects;
  std::map<ConnId, Bytes> out;
  std::set<ConnId> closed;
};

class RecordingOwner : public PeerOwner {
 public:
  void on_established(PeerId, uint64_t) override { ++established; }
  void on_down(PeerId, bool g, uint64_t) override {
    ++down;
    last_graceful = g;
  }
  void on_update(PeerId, const Verdict&, const Update& u, uint64_t) override { updates.push_back(u); }
  void on_route_refresh(PeerId, const RouteRefresh&, uint64_t) override { ++refreshes; }
  int established = 0, down = 0, refreshes = 0;
  bool last_graceful = false;
  std::vector<Update> updates;
};

class RecordingFib : public FibSink {
 public:
  void fib_update(const Prefix& p, const std::vector<const Path*>& paths) override {
    if (paths.empty()) {
      routes.erase(p);
      return;
    }
    auto& v = routes[p];
    v.clear();
    for (const Path* x : paths) v.push_back(x->peer);
  }
  void fib_commit() override { ++commits; }
  std::map<Prefix, std::vector<PeerId>> routes;  // prefix -> peers of the selected paths
  int commits = 0;
};

// Several speakers on one simulated network; addresses identify speakers.
class SimNet {
 public:
  struct Node;
  class NodeTransport : public Transport {
   public:
    NodeTransport(SimNet& n, int idx) : net_(n), idx_(idx) {}
    ConnId connect(const IpAddr& local, const IpAddr& remote) override {
      ConnId id = ++net_.next_id;
      net_.ends[id] = {idx_, 0, false};
      net_.events.push_back({Ev::kConnect, id, local, remote, {}});
      return id;
    }
    bool send(ConnId c, std::span<const uint8_t> b) override {
      auto it = net_.ends.find(c);
      if (it == net_.ends.end() || it->second.closed || !it->second.peer) return false;
      net_.events.push_back({Ev::kData, it->second.peer, {}, {}, Bytes(b.begin(), b.end())});
      return true;
    }
    void close(ConnId c) override {
      auto it = net_.ends.find(c);
      if (it == net_.ends.end() || it->second.closed) return;
      it->second.closed = true;
      if (it->second.peer) net_.events.push_back({Ev::kClose, it->second.peer, {}, {}, {}});
      else net_.events.push_back({Ev::kAbort, c, {}, {}, {}});
    }

   private:
    SimNet& net_;
    int idx_;
  };
  struct Node {
    IpAddr addr;
    std::unique_ptr<NodeTransport> transport;
    std::unique_ptr<RecordingFib> fib;
    std::unique_ptr<Speaker> speaker;
    bool down = false;  // unreachable: connects to it fail
  };

  Speaker& add(const char* addr, SpeakerConfig cfg) {
    auto n = std::make_unique<Node>();
    n->addr = ip(addr);
    n->transport = std::make_unique<NodeTransport>(*this, int(nodes.size()));
    n->fib = std::make_unique<RecordingFib>();
    n->speaker = std::make_unique<Speaker>(std::move(cfg), *n->transport, n->fib.get());
    nodes.push_back(std::move(n));
    return *nodes.back()->speaker;
  }
  Node& node(const char* addr) {
    for (auto& n : nodes)
      if (n->addr == ip(addr)) return *n;
    throw std::runtime_error("no node");
  }
  // Delivers everything queued (and what that causes), then ticks every speaker.
  void pump() {
    for (int guard = 0; guard < 100000 && !events.empty(); ++guard) {
      auto e = std::move(events.front());
      events.pop_front();
      deliver(e);
    }
  }
  // Advances time in steps, ticking and pumping.
  void run_for(uint64_t ms, uint64_t step = 100) {
    for (uint64_t t = 0; t < ms; t += step) {
      now += step;
      for (auto& n : nodes) n->speaker->tick(now);
      pump();
    }
  }
  uint64_t now = 1000;

 private:
  enum class Ev { kConnect, kData, kClose, kAbort };
  struct Event {
    Ev ev;
    ConnId conn;
    IpAddr local, remote;
    Bytes data;
  };
  struct End {
    int node;
    ConnId peer;
    bool closed;
  };
  void deliver(Event& e) {
    auto& end = ends[e.conn];
    Speaker& s = *nodes[size_t(end.node)]->speaker;
    switch (e.ev) {
      case Ev::kConnect: {
        if (end.closed) return;
        Node* dst = nullptr;
        for (auto& n : nodes)
          if (n->addr == e.remote && !n->down) dst = n.get();
        if (!dst) {
          end.closed = true;
          s.on_connect_failed(e.conn, now);
          return;
        }
        ConnId in = ++next_id;
        int dst_idx = 0;
        for (size_t i = 0; i < nodes.size(); ++i)
          if (nodes[i].get() == dst) dst_idx = int(i);
        ends[in] = {dst_idx, e.conn, false};
        end.peer = in;
        s.on_connected(e.conn, now);
        if (!ends[in].closed && !dst->speaker->on_accept(in, e.local, now) && !ends[in].closed)
          nodes[size_t(dst_idx)]->transport->close(in);
        return;
      }
      case Ev::kData:
        if (!end.closed) s.on_data(e.conn, e.data, now);
        return;
      case Ev::kClose:
        if (!end.closed) {
          end.closed = true;
          s.on_closed(e.conn, now);
        }
        return;
      case Ev::kAbort:
        s.on_connect_failed(e.conn, now);
        return;
    }
  }

 public:
  std::vector<std::unique_ptr<Node>> nodes;
  std::map<ConnId, End> ends;
  std::deque<Event> events;
  ConnId next_id = 0;
};

inline SpeakerConfig speaker_cfg(uint32_t asn, const char* router_id,
                                 std::vector<const char*> originate = {}) {
  SpeakerConfig c;
  c.local.asn = asn;
  c.local.router_id = ip(router_id).v4_host();
  for (auto* p : originate) c.originate.push_back(pfx(p));
  return c;
}

inline PeerConfig peer_cfg(const char* name, const char* addr, uint32_t asn, const char* local) {
  PeerConfig p;
  p.name = name;
  p.address = ip(addr);
  p.asn = asn;
  p.local_address = ip(local);
  return p;
}

}  // namespace espgw::bgp::testing
