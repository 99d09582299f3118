// espgwctl [--socket PATH] [--json] COMMAND...
// Talks to a running espgw over its control socket. Tables for people, --json for scripts.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

using Json = nlohmann::ordered_json;

namespace {

void usage(FILE* f) {
  std::fprintf(f,
               "usage: espgwctl [--socket PATH] [--json] COMMAND...\n"
               "  --socket PATH  control socket (default: $ESPGW_SOCKET, or the only socket in "
               "/run/espgw)\n"
               "  --json         print the raw JSON reply\n"
               "commands: help, show ports|routes|neighbors|counters [lcores]|status,\n"
               "          route add PREFIX (via IP [dev PORT] | dev PORT | blackhole),\n"
               "          route del PREFIX\n");
}

std::string cell(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string s;
    for (const auto& e : v) s += (s.empty() ? "" : ",") + cell(e);
    return s;
  }
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_null()) return "";
  return v.dump();
}

void print_table(const Json& rows) {
  if (rows.empty()) {
    std::printf("(none)\n");
    return;
  }
  std::vector<std::string> cols;
  for (auto it = rows[0].begin(); it != rows[0].end(); ++it) cols.push_back(it.key());
  std::vector<size_t> w(cols.size());
  for (size_t c = 0; c < cols.size(); ++c) w[c] = cols[c].size();
  std::vector<std::vector<std::string>> cells;
  for (const auto& r : rows) {
    std::vector<std::string> line;
    for (size_t c = 0; c < cols.size(); ++c) {
      line.push_back(r.contains(cols[c]) ? cell(r[cols[c]]) : "");
      w[c] = std::max(w[c], line.back().size());
    }
    cells.push_back(std::move(line));
  }
  for (size_t c = 0; c < cols.size(); ++c) std::printf("%-*s  ", int(w[c]), cols[c].c_str());
  std::printf("\n");
  for (const auto& line : cells) {
    for (size_t c = 0; c < cols.size(); ++c) std::printf("%-*s  ", int(w[c]), line[c].c_str());
    std::printf("\n");
  }
}

void print_object(const Json& o, const std::string& indent) {
  for (auto it = o.begin(); it != o.end(); ++it) {
    if (it->is_object()) {
      std::printf("%s%s:\n", indent.c_str(), it.key().c_str());
      print_object(*it, indent + "  ");
    } else if (it->is_number_unsigned() && it->get<uint64_t>() == 0 && indent.size() > 0) {
      continue;  // counters: show what happened, not every zero
    } else {
      std::printf("%s%-28s %s\n", indent.c_str(), it.key().c_str(), cell(*it).c_str());
    }
  }
}

std::string default_socket() {
  if (const char* e = getenv("ESPGW_SOCKET")) return e;
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& d : std::filesystem::directory_iterator("/run/espgw", ec))
    if (d.is_socket()) found.push_back(d.path());
  return found.size() == 1 ? found[0] : "";
}

}  // namespace

int main(int argc, char** argv) {
  std::string sock;
  bool json = false;
  std::vector<std::string> cmd;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (cmd.empty() && a == "--socket" && i + 1 < argc) sock = argv[++i];
    else if (cmd.empty() && a == "--json") json = true;
    else if (cmd.empty() && (a == "-h" || a == "--help")) return usage(stdout), 0;
    else cmd.push_back(a);
  }
  if (cmd.empty()) return usage(stderr), 2;
  if (sock.empty()) sock = default_socket();
  if (sock.empty()) {
    std::fprintf(stderr, "espgwctl: no control socket: use --socket PATH or ESPGW_SOCKET\n");
    return 2;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (sock.size() >= sizeof sa.sun_path) {
    std::fprintf(stderr, "espgwctl: socket path too long\n");
    return 2;
  }
  std::memcpy(sa.sun_path, sock.c_str(), sock.size() + 1);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    std::fprintf(stderr, "espgwctl: cannot connect to %s: %s\n", sock.c_str(), std::strerror(errno));
    return 1;
  }
  std::string req = Json{{"argv", cmd}}.dump() + "\n";
  if (write(fd, req.data(), req.size()) != ssize_t(req.size())) {
    std::fprintf(stderr, "espgwctl: write failed\n");
    return 1;
  }
  std::string resp;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) {
    resp.append(buf, size_t(n));
    if (resp.back() == '\n') break;
  }
  close(fd);
  Json r = Json::parse(resp, nullptr, false);
  if (r.is_discarded()) {
    std::fprintf(stderr, "espgwctl: bad reply from espgw\n");
    return 1;
  }
  if (json) {
    std::printf("%s\n", r.dump(2).c_str());
    return r.value("ok", false) ? 0 : 1;
  }
  if (!r.value("ok", false)) {
    std::fprintf(stderr, "espgwctl: %s\n", r.value("error", std::string("failed")).c_str());
    if (r.contains("usage")) std::fprintf(stderr, "usage: %s\n", cell(r["usage"]).c_str());
    return 1;
  }
  const Json& res = r["result"];
  if (res.is_array() && !res.empty() && res[0].is_object()) print_table(res);
  else if (res.is_array()) for (const auto& l : res) std::printf("%s\n", cell(l).c_str());
  else if (res.is_object()) print_object(res, "");
  else std::printf("%s\n", cell(res).c_str());
  return 0;
}
