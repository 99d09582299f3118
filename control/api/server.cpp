#include "control/api/server.h"

#include <fcntl.h>
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

void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += size_t(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      // the reply is larger than the socket buffer: wait for the client briefly
      fd_set w;
      FD_ZERO(&w);
      FD_SET(fd, &w);
      timeval tv{0, 200000};
      if (select(fd + 1, nullptr, &w, nullptr, &tv) <= 0) return;
    } else {
      return;
    }
  }
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
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 16) != 0) {
    *err = "control socket " + path + ": " + std::strerror(errno);
    close(fd);
    return false;
  }
  chmod(path.c_str(), 0660);
  listen_fd_ = fd;
  path_ = path;
  return true;
}

void Server::add(const std::vector<std::string>& words, Handler h, std::string help) {
  cmds_.push_back({words, std::move(h), std::move(help)});
}

std::vector<int> Server::fds() const {
  std::vector<int> v{listen_fd_};
  for (const auto& c : clients_) v.push_back(c.fd);
  return v;
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
  Json reply;
  try {
    Json req = Json::parse(c.buf);
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
  write_all(c.fd, reply.dump() + "\n");
}

void Server::poll() {
  if (listen_fd_ < 0) return;
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) break;
    clients_.push_back({fd, {}, now_ms() + kClientTimeoutMs});
  }
  uint64_t now = now_ms();
  for (size_t i = 0; i < clients_.size();) {
    Client& c = clients_[i];
    bool done = false;
    char buf[4096];
    for (;;) {
      ssize_t n = recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.buf.append(buf, size_t(n));
        if (c.buf.size() > kMaxRequest) {
          write_all(c.fd, R"({"ok":false,"error":"request too large"})" "\n");
          done = true;
          break;
        }
        continue;
      }
      if (n == 0) done = true;  // client closed without a newline: serve what we have
      else if (errno == EINTR) continue;
      else if (errno != EAGAIN) done = true;
      break;
    }
    auto nl = c.buf.find('\n');
    if (nl != std::string::npos) {
      c.buf.resize(nl);
      serve(c);
      done = true;
    } else if (done && !c.buf.empty()) {
      serve(c);
    } else if (now > c.deadline_ms) {
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
