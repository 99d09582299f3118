// The agent's views: the paging words of `show routes` / `show bgp routes` and the JSON shape of
// a paged and an unpaged route view.
#include <gtest/gtest.h>

#include "control/agent/agent.h"

namespace espgw::agent {
namespace {

TEST(RoutePaging, WordsAreTakenOthersStay) {
  std::vector<std::string> w = {"10.60.3.0/24", "limit", "2"};
  dp::RoutePage p = take_route_page(w);
  EXPECT_EQ(p.limit, 2u);
  EXPECT_FALSE(p.after);
  EXPECT_EQ(w, std::vector<std::string>{"10.60.3.0/24"});
  std::vector<std::string> a = {"after", "10.1.0.0/16"};
  p = take_route_page(a);
  EXPECT_TRUE(a.empty());
  ASSERT_TRUE(p.after);
  EXPECT_EQ(p.after->str(), "10.1.0.0/16");
  EXPECT_EQ(p.limit, dp::kMaxRoutePage);  // "after" alone pages at the largest size
}

TEST(RoutePaging, BadWordsAreRequestErrors) {
  std::vector<std::string> bad[] = {{"limit", "0"}, {"limit", "x"}, {"limit"}, {"after", "10.1"},
                                    {"limit", "10001"}, {"after"}};
  for (auto& w : bad) EXPECT_THROW(take_route_page(w), api::RequestError);
}

TEST(RouteView, PagedIsAnObjectUnpagedAnArray) {
  dp::RoutesView v;
  dp::RouteView r;
  r.prefix = *Prefix::parse("10.0.0.0/8");
  r.source = dp::RouteSource::kBgp;
  r.type = "tunnel";
  r.nexthop = "t1";
  r.selected = true;
  r.installed = false;
  r.reason = "FIB full";
  v.routes.push_back(r);
  api::Json a = to_json(v, {});
  ASSERT_TRUE(a.is_array());
  EXPECT_EQ(a[0]["source"], "bgp");
  EXPECT_EQ(a[0]["reason"], "FIB full");
  dp::RoutePage page;
  page.limit = 1;
  v.next = r.prefix;
  api::Json o = to_json(v, page);
  ASSERT_TRUE(o.is_object());
  EXPECT_EQ(o["next"], "10.0.0.0/8");
  EXPECT_EQ(o["routes"].size(), 1u);
  v.next.reset();
  EXPECT_TRUE(to_json(v, page)["next"].is_null());
}

}  // namespace
}  // namespace espgw::agent
