// libFuzzer target for control-socket requests: any bytes as a request line get a JSON reply
// that serializes, never an exception or a crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "control/api/server.h"

namespace {
espgw::api::Server& server() {
  static espgw::api::Server s = [] {
    espgw::api::Server x;
    x.add({"show", "ports"}, [](const espgw::api::Args& a) { return espgw::api::Json(a); },
          "show ports");
    x.add({"route", "add"},
          [](const espgw::api::Args& a) -> espgw::api::Json {
            if (a.empty()) throw espgw::api::RequestError("expected PREFIX");
            if (a[0] == "boom") throw std::runtime_error("handler failure");
            return espgw::api::Json{{"prefix", a[0]}};
          },
          "route add PREFIX");
    return x;
  }();
  return s;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  std::string line(reinterpret_cast<const char*>(data), size);
  espgw::api::Json reply = server().handle(line);
  if (!reply.contains("ok")) __builtin_trap();
  std::string out = reply.dump(-1, ' ', false, espgw::api::Json::error_handler_t::replace);
  (void)out;
  return 0;
}
