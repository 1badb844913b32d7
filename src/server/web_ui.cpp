// The chat page's routes: `/` (the page for browsers, a line of text for other clients) and its
// files under /web/. Strict Content-Security-Policy: the page runs only its own script and style,
// talks only to this server, and model output never becomes markup (app.js builds text nodes).
#include "server/web_ui.h"

#include <algorithm>

#include "server/server.h"

namespace hylo::server {

namespace {

// No inline script or style, no other origin; 'self' connects cover fetch() of the API.
constexpr const char* kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Serves one embedded file: the validator lets a browser revalidate cheaply ("no-cache" means
// "ask first", so a new binary's page is never stale), and 304 when it already holds this body.
void reply_asset(const httplib::Request& req, httplib::Response& res, const WebAsset& a) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("ETag", std::string(a.etag));
  res.set_header("Content-Security-Policy", kContentSecurityPolicy);
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("X-Frame-Options", "DENY");
  if (req.get_header_value("If-None-Match") == a.etag) {
    res.status = 304;
    return;
  }
  res.set_content(a.body.data(), a.body.size(), std::string(web_content_type(a.name)));
}

// Browsers ask for text/html; API clients (curl, Ollama libraries probing `/`) keep the old line.
bool wants_html(const httplib::Request& req) {
  return req.get_header_value("Accept").find("text/html") != std::string::npos;
}

}  // namespace

const WebAsset* find_web_asset(std::string_view name) {
  const auto assets = web_assets();
  const auto it = std::find_if(assets.begin(), assets.end(), [&](const WebAsset& a) { return a.name == name; });
  return it == assets.end() ? nullptr : &*it;
}

std::string_view web_content_type(std::string_view name) {
  if (ends_with(name, ".html")) return "text/html; charset=utf-8";
  if (ends_with(name, ".js")) return "text/javascript; charset=utf-8";
  if (ends_with(name, ".css")) return "text/css; charset=utf-8";
  if (ends_with(name, ".svg")) return "image/svg+xml";
  if (ends_with(name, ".png")) return "image/png";
  return "application/octet-stream";
}

void Server::install_web_routes() {
  http_.Get("/", route("root", ApiFamily::kOllama, false, [](const httplib::Request& req, httplib::Response& res) {
              res.set_header("Vary", "Accept");
              const WebAsset* page = find_web_asset("index.html");
              if (page && wants_html(req)) return reply_asset(req, res, *page);
              res.set_content("hylo is running (OpenAI- and Ollama-compatible API)", "text/plain");
            }));
  for (const WebAsset& a : web_assets()) {
    if (a.name == "index.html") continue;
    http_.Get(std::string(kWebAssetPrefix) + std::string(a.name),
              route("web", ApiFamily::kOpenAI, false,
                    [&a](const httplib::Request& req, httplib::Response& res) { reply_asset(req, res, a); }));
  }
}

}  // namespace hylo::server
