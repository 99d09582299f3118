#include "control/api/server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace espgw::api {
namespace {
constexpr size_t kMaxRequest = 64 * 1024;
constexpr uint64_t kClientTimeoutMs = 2000;

uint64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

// Best effort, never waits: for refusals written to a socket we then close.
void send_now(int fd, const std::string& s) {
  ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)n;
}
}  // namespace

Server::~Server() {
  for (auto& c : clients_) close(c.fd);
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    unlink(path_.c_str());
  }
}

bool Server::listen(const std::string& path, std::string* err) {
  sockaddr_un sa{};
  if (path.size() >= sizeof sa.sun_path) {
    *err = "control socket path too long: " + path;
    return false;
  }
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  // A stale socket from a crashed run is removed only if nobody answers on it.
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe >= 0 && connect(probe, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
    close(probe);
    close(fd);
    *err = "control socket " + path + " is in use by a running espgw";
    return false;
  }
  if (probe >= 0) close(probe);
  unlink(path.c_str());
  // the socket file is created 0660 by bind itself: no window with a wider mode, no chmod by
  // path (which could follow a link planted in its place)
  mode_t old_mask = umask(0117);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  umask(old_mask);
  if (rc != 0 || ::listen(fd, 16) != 0) {
    *err = "control socket " + path + ": " + std::strerror(errno);
    close(fd);
    return false;
  }
  struct stat st {};
  sock_gid_ = stat(path.c_str(), &st) == 0 ? st.st_gid : getegid();
  listen_fd_ = fd;
  path_ = path;
  return true;
}

void Server::add(const std::vector<std::string>& words, Handler h, std::string help) {
  cmds_.push_back({words, std::move(h), std::move(help)});
}

std::vector<Server::PollFd> Server::poll_fds() const {
  std::vector<PollFd> v;
  if (listen_fd_ >= 0) v.push_back({listen_fd_, POLLIN});
  for (const auto& c : clients_) v.push_back({c.fd, short(c.replying ? POLLOUT : POLLIN)});
  return v;
}

bool Server::credentials_ok(int fd) const {
  ucred cr{};
  socklen_t len = sizeof cr;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) return false;
  return cr.uid == 0 || cr.uid == geteuid() || cr.gid == sock_gid_;
}

bool Server::flush(Client& c) {
  while (c.out_off < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out_off += size_t(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return false;  // the rest when the client has read some (POLLOUT)
    } else {
      return true;  // the client went away: nothing more to do
    }
  }
  return true;
}

Json Server::dispatch(const Args& argv) const {
  const Cmd* best = nullptr;
  for (const auto& c : cmds_) {
    if (c.words.size() > argv.size()) continue;
    if (!std::equal(c.words.begin(), c.words.end(), argv.begin())) continue;
    if (!best || c.words.size() > best->words.size()) best = &c;
  }
  if (argv.empty() || (argv.size() == 1 && argv[0] == "help") || !best) {
    Json help = Json::array();
    for (const auto& c : cmds_) help.push_back(c.help);
    if (argv.empty() || argv[0] == "help") return Json{{"ok", true}, {"result", help}};
    std::string cmd;
    for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    return Json{{"ok", false}, {"error", "unknown command: " + cmd}, {"commands", help}};
  }
  try {
    Args rest(argv.begin() + long(best->words.size()), argv.end());
    return Json{{"ok", true}, {"result", best->h(rest)}};
  } catch (const RequestError& e) {
    return Json{{"ok", false}, {"error", e.what()}, {"usage", best->help}};
  } catch (const std::exception& e) {
    return Json{{"ok", false}, {"error", std::string("internal error: ") + e.what()}};
  }
}

void Server::serve(Client& c) {
  Json reply = handle(c.buf);
  c.buf.clear();
  c.buf.shrink_to_fit();
  c.out = reply.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  c.replying = true;
  ++stats_.served;
}

Json Server::handle(const std::string& line) const {
  Json reply;
  try {
    Json req = Json::parse(line);
    if (!req.is_object() || !req.contains("argv") || !req["argv"].is_array())
      throw RequestError("request must be {\"argv\": [...]}");
    Args argv;
    for (const auto& a : req["argv"]) {
      if (!a.is_string()) throw RequestError("argv must be strings");
      argv.push_back(a.get<std::string>());
    }
    reply = dispatch(argv);
  } catch (const std::exception& e) {
    reply = Json{{"ok", false}, {"error", std::string("bad request: ") + e.what()}};
  }
  return reply;
}

void Server::poll() {
  if (listen_fd_ < 0) return;
  for (size_t k = 0; k < kMaxAcceptsPerPass; ++k) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) break;
    if (!credentials_ok(fd)) {
      ++stats_.refused_credentials;
      send_now(fd, R"({"ok":false,"error":"permission denied"})" "\n");
      close(fd);
      continue;
    }
    if (clients_.size() >= kMaxClients) {
      ++stats_.refused_busy;
      send_now(fd, R"({"ok":false,"error":"too many control clients, try again"})" "\n");
      close(fd);
      continue;
    }
    clients_.push_back({fd, {}, {}, 0, false, now_ms() + deadline_ms_});
  }
  uint64_t now = now_ms();
  for (size_t i = 0; i < clients_.size();) {
    Client& c = clients_[i];
    bool done = false;
    if (!c.replying) {
      char buf[4096];
      for (int reads = 0; reads < 32; ++reads) {  // at most 128 KiB per pass and client
        ssize_t n = recv(c.fd, buf, sizeof buf, 0);
        if (n > 0) {
          c.buf.append(buf, size_t(n));
          if (c.buf.size() > kMaxRequest) {
            ++stats_.too_large;
            c.out = R"({"ok":false,"error":"request too large"})" "\n";
            c.replying = true;
            break;
          }
          if (c.buf.find('\n', c.buf.size() - size_t(n)) != std::string::npos) break;
          continue;
        }
        if (n == 0) done = true;  // client closed without a newline: serve what we have
        else if (errno == EINTR) continue;
        else if (errno != EAGAIN && errno != EWOULDBLOCK) done = true;
        break;
      }
      if (!c.replying) {
        auto nl = c.buf.find('\n');
        if (nl != std::string::npos) {
          c.buf.resize(nl);
          serve(c);
          done = false;
        } else if (done && !c.buf.empty()) {
          serve(c);
          done = false;
        }
      }
    }
    if (c.replying) done = flush(c);
    if (!done && now > c.deadline_ms) {
      ++stats_.timed_out;
      done = true;
    }
    if (done) {
      close(c.fd);
      clients_.erase(clients_.begin() + long(i));
    } else {
      ++i;
    }
  }
}

}  // namespace espgw::api
