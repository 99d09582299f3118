#include "control/api/server.h"

#include <gtest/gtest.h>

namespace espgw::api {
namespace {

TEST(ApiServer, DispatchLongestMatch) {
  Server s;
  s.add({"show"}, [](const Args&) { return Json("show"); }, "show");
  s.add({"show", "ports"}, [](const Args& a) { return Json(a.size()); }, "show ports");
  EXPECT_EQ(s.dispatch({"show", "ports", "x"})["result"], 1);
  EXPECT_EQ(s.dispatch({"show", "other"})["result"], "show");
}

TEST(ApiServer, UnknownCommandAndBadRequest) {
  Server s;
  s.add({"route", "add"},
        [](const Args&) -> Json { throw RequestError("bad prefix 'x'"); }, "route add PREFIX");
  Json r = s.dispatch({"nope"});
  EXPECT_FALSE(r["ok"]);
  EXPECT_NE(r["error"].get<std::string>().find("unknown command"), std::string::npos);
  r = s.dispatch({"route", "add", "x"});
  EXPECT_FALSE(r["ok"]);
  EXPECT_EQ(r["error"], "bad prefix 'x'");
  EXPECT_EQ(r["usage"], "route add PREFIX");
  EXPECT_TRUE(s.dispatch({"help"})["ok"]);
}

}  // namespace
}  // namespace espgw::api
