// The control socket: a unix stream socket served from the control thread's event loop.
// One request per connection: a JSON line {"argv": ["show", "ports"]}; one JSON reply:
// {"ok": true, "result": ...} or {"ok": false, "error": "..."}. Never blocks the loop on a
// slow client (non-blocking sockets, bounded request size, idle clients dropped).
#pragma once

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

  ~Server();
  // Binds path (removing a stale socket file), mode 0660.
  bool listen(const std::string& path, std::string* err);
  int fd() const { return listen_fd_; }
  // Registers a command by its leading words, e.g. {"show", "ports"}; the handler gets the rest.
  void add(const std::vector<std::string>& words, Handler h, std::string help);
  // Call when the listening fd or any client fd is readable (or periodically): non-blocking.
  void poll();
  // File descriptors to watch (listener + clients).
  std::vector<int> fds() const;
  Json dispatch(const Args& argv) const;  // exposed for unit tests

 private:
  struct Client {
    int fd;
    std::string buf;
    uint64_t deadline_ms;
  };
  struct Cmd {
    std::vector<std::string> words;
    Handler h;
    std::string help;
  };
  void serve(Client& c);
  int listen_fd_ = -1;
  std::string path_;
  std::vector<Client> clients_;
  std::vector<Cmd> cmds_;
};

}  // namespace espgw::api
