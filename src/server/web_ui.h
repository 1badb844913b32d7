// The chat page `hylo serve` answers at `/` (data/web, compiled into the binary): the files, their
// content types and validators. What the page does is in data/web/app.js; the routes in web_ui.cpp.
#pragma once

#include <span>
#include <string_view>

namespace hylo::server {

struct WebAsset {
  std::string_view name;  // file name under data/web ("app.js")
  std::string_view body;
  std::string_view etag;  // a digest of the body, quoted as HTTP wants it
};

// Every file of data/web (generated at build time by web_embed.cmake).
std::span<const WebAsset> web_assets();

// The asset with this file name, or nullptr.
const WebAsset* find_web_asset(std::string_view name);

// "text/html; charset=utf-8" and so on, from the file name's extension.
std::string_view web_content_type(std::string_view name);

// Paths under which the page's files are served (besides `/` itself).
inline constexpr std::string_view kWebAssetPrefix = "/web/";

}  // namespace hylo::server
