// The control socket: a unix stream socket served from the control thread's event loop.
// One request per connection: a JSON line {"argv": ["show", "ports"]}; one JSON reply:
// {"ok": true, "result": ...} or {"ok": false, "error": "..."}. Never blocks the loop on a
// slow client: non-blocking sockets, bounded request size, a reply is queued and written as the
// client reads it (POLLOUT), one deadline per connection for request and reply together, a cap
// on clients and on accepts per pass. The socket is created mode 0660 (umask around bind, no
// chmod by path afterwards) and each client's credentials are checked (SO_PEERCRED): root, our
// own user, or a member of the socket's group.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace espgw::api {

using Json = nlohmann::ordered_json;
using Args = std::vector<std::string>;

// Thrown by handlers for a bad request; becomes {"ok": false, "error": what()}.
struct RequestError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Server {
 public:
  using Handler = std::function<Json(const Args& args)>;

  static constexpr size_t kMaxClients = 32;
  static constexpr size_t kMaxAcceptsPerPass = 8;
  static constexpr uint64_t kDeadlineMs = 5000;  // request read + reply written

  struct Stats {
    uint64_t served = 0, refused_busy = 0, refused_credentials = 0, timed_out = 0,
             too_large = 0;
  };

  ~Server();
  // Binds path (removing a stale socket file), mode 0660.
  bool listen(const std::string& path, std::string* err);
  int fd() const { return listen_fd_; }
  // Registers a command by its leading words, e.g. {"show", "ports"}; the handler gets the rest.
  void add(const std::vector<std::string>& words, Handler h, std::string help);
  // Call when any of poll_fds() is ready (or periodically): non-blocking, bounded work.
  void poll();
  // What to watch: the listener and the clients (POLLIN while reading, POLLOUT while a reply
  // is pending).
  struct PollFd {
    int fd;
    short events;
  };
  std::vector<PollFd> poll_fds() const;
  Json dispatch(const Args& argv) const;  // exposed for unit tests
  // One request line ({"argv": [...]}) to its reply; never throws (fuzzed).
  Json handle(const std::string& line) const;
  const Stats& stats() const { return stats_; }
  void set_deadline_ms(uint64_t ms) { deadline_ms_ = ms; }
  size_t clients() const { return clients_.size(); }

 private:
  struct Client {
    int fd;
    std::string buf;      // request so far
    std::string out;      // reply not yet written
    size_t out_off = 0;
    bool replying = false;
    uint64_t deadline_ms;
  };
  bool credentials_ok(int fd) const;
  bool flush(Client& c);  // true when the whole reply is written
  struct Cmd {
    std::vector<std::string> words;
    Handler h;
    std::string help;
  };
  void serve(Client& c);
  int listen_fd_ = -1;
  unsigned sock_gid_ = 0;
  uint64_t deadline_ms_ = kDeadlineMs;
  Stats stats_;
  std::string path_;
  std::vector<Client> clients_;
  std::vector<Cmd> cmds_;
};

}  // namespace espgw::api
