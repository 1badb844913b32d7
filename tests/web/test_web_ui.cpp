// The chat page's routes without a browser: content types, the CSP and cache validators, the
// plain-text answer API clients get at `/`, and the page's files open on a server with a key.
#include <gtest/gtest.h>

#include "common/fixtures.h"
#include "server/serve_process.h"
#include "server/web_ui.h"

namespace hylo::test {
namespace {

TEST(WebAssets, EveryFileHasAKnownTypeAndADigest) {
  ASSERT_NE(server::find_web_asset("index.html"), nullptr);
  ASSERT_NE(server::find_web_asset("app.js"), nullptr);
  ASSERT_NE(server::find_web_asset("app.css"), nullptr);
  EXPECT_EQ(server::find_web_asset("missing.js"), nullptr);
  for (const server::WebAsset& a : server::web_assets()) {
    EXPECT_NE(server::web_content_type(a.name), "application/octet-stream") << a.name;
    EXPECT_FALSE(a.body.empty()) << a.name;
    EXPECT_EQ(a.etag.size(), 22u) << a.name;  // "20 hex digits"
  }
  // The page loads its script from a file: the CSP allows no inline script.
  const std::string_view page = server::find_web_asset("index.html")->body;
  EXPECT_NE(page.find(R"(<script src="/web/app.js")"), std::string_view::npos);
  EXPECT_EQ(page.find("<script>"), std::string_view::npos);
}

TEST(WebRoutes, PageForBrowsersTextForClientsValidatorsAndKey) {
  const std::string model = fixture_model("qwen3moe-tiny");
  ASSERT_FALSE(model.empty());
  ServeProcess server({"-m", model, "--parallel", "1", "-c", "256", "--api-key", "k"});
  ASSERT_TRUE(server.start());
  auto c = server.client();

  HttpReply page = get(c, "/", {{"Accept", "text/html,application/xhtml+xml"}});
  EXPECT_EQ(page.status, 200);  // open without the key: the page asks for it
  EXPECT_NE(page.body.find("<title>hylo</title>"), std::string::npos);
  auto header = [](const HttpReply& r, const char* name) {
    auto it = r.headers.find(name);
    return it == r.headers.end() ? std::string() : it->second;
  };
  EXPECT_EQ(header(page, "Content-Type"), "text/html; charset=utf-8");
  const std::string csp = header(page, "Content-Security-Policy");
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe"), std::string::npos) << csp;
  EXPECT_EQ(header(page, "X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(header(page, "Cache-Control"), "no-cache");
  EXPECT_EQ(header(page, "Vary"), "Accept");

  HttpReply text = get(c, "/", {{"Accept", "*/*"}});
  EXPECT_EQ(text.status, 200);
  EXPECT_NE(text.body.find("hylo is running"), std::string::npos);

  HttpReply js = get(c, "/web/app.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(header(js, "Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(js.body, std::string(server::find_web_asset("app.js")->body));
  const std::string etag = header(js, "ETag");
  EXPECT_EQ(etag, std::string(server::find_web_asset("app.js")->etag));
  HttpReply again = get(c, "/web/app.js", {{"If-None-Match", etag}});
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(get(c, "/web/app.css").status, 200);
  EXPECT_EQ(get(c, "/web/nothing.js").status, 404);
  EXPECT_EQ(get(c, "/props").status, 401);  // the API keeps its key
}

}  // namespace
}  // namespace hylo::test
