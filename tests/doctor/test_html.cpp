// `hylo doctor --html`: the page is self-contained, and rendered in headless Chromium its charts
// have a size and bars (read back from the DOM after layout) and the screenshot shows them.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "common/fixtures.h"

namespace hylo {
namespace {

int hylo(const std::string& args, std::string* out) { return test::run_command(test::hylo_binary() + " " + args, out); }

std::string podcast_html(const std::string& dir) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/v-128k") << "FROM qwen3-coder:30b\nPARAMETER num_ctx 131072\n";
  const std::string html = dir + "/report.html";
  std::string out;
  EXPECT_EQ(hylo("doctor --modelfile " + dir +
                     "/v-128k --hardware mac-studio-m2-ultra-64 --prompt-tokens 146760 "
                     "--timeout 300 --html " +
                     html,
                 &out),
            0)
      << out;
  return html;
}

TEST(DoctorHtml, SelfContainedWithThreeCharts) {
  const std::string html = test::read_text_file(podcast_html(test::scratch_path("html-text")));
  for (const char* id : {"id=\"memory-chart\"", "id=\"prefill-chart\"", "id=\"decode-chart\"", "id=\"timeout-line\"",
                         "id=\"verdict\"", "class=\"seg-weights\"", "class=\"seg-kv\"", "class=\"seg-os\"",
                         "The hardware is fine", "PARAMETER num_ctx 262144", "ollama create v-256k"})
    EXPECT_NE(html.find(id), std::string::npos) << id;
  // Nothing fetched from anywhere: no external URLs in src/href, network blocked by the CSP.
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);
  EXPECT_EQ(html.find("href=\"http"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_NE(html.find("default-src 'none'"), std::string::npos);
}

std::string chromium() {
  for (const char* c : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (std::filesystem::exists(c)) return c;
  return "";
}

std::string chromium_command(const std::string& browser, const std::string& profile) {
  return "timeout 120 " + browser +
         " --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --disable-background-networking "
         "--disable-component-update --no-first-run --hide-scrollbars --user-data-dir=" +
         profile;
}

// A PNG decoded to 8-bit RGB(A) rows (what Chromium writes: no interlace, no palette).
struct Image {
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;
};

uint32_t be32(const uint8_t* p) { return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3]; }

bool decode_png(const std::string& bytes, Image* img) {
  const auto* d = reinterpret_cast<const uint8_t*>(bytes.data());
  if (bytes.size() < 8 || bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) return false;
  std::string idat;
  int depth = 0, color = -1, interlace = 0;
  for (size_t pos = 8; pos + 12 <= bytes.size();) {
    const uint32_t len = be32(d + pos);
    const std::string type = bytes.substr(pos + 4, 4);
    if (pos + 12 + len > bytes.size()) return false;
    const uint8_t* body = d + pos + 8;
    if (type == "IHDR") {
      img->width = static_cast<int>(be32(body));
      img->height = static_cast<int>(be32(body + 4));
      depth = body[8];
      color = body[9];
      interlace = body[12];
    } else if (type == "IDAT") {
      idat.append(reinterpret_cast<const char*>(body), len);
    }
    pos += 12 + len;
  }
  if (depth != 8 || interlace != 0 || (color != 2 && color != 6)) return false;
  img->channels = color == 6 ? 4 : 3;
  const size_t stride = static_cast<size_t>(img->width) * img->channels;
  std::vector<uint8_t> raw((stride + 1) * img->height);
  uLongf raw_len = raw.size();
  if (uncompress(raw.data(), &raw_len, reinterpret_cast<const Bytef*>(idat.data()), idat.size()) != Z_OK) return false;
  img->pixels.assign(stride * img->height, 0);
  const int bpp = img->channels;
  for (int y = 0; y < img->height; ++y) {
    const uint8_t filter = raw[y * (stride + 1)];
    const uint8_t* in = &raw[y * (stride + 1) + 1];
    uint8_t* out = &img->pixels[y * stride];
    const uint8_t* up = y > 0 ? &img->pixels[(y - 1) * stride] : nullptr;
    for (size_t x = 0; x < stride; ++x) {
      const int a = x >= static_cast<size_t>(bpp) ? out[x - bpp] : 0;
      const int b = up ? up[x] : 0;
      const int c = up && x >= static_cast<size_t>(bpp) ? up[x - bpp] : 0;
      int pred = 0;
      switch (filter) {
        case 0:
          pred = 0;
          break;
        case 1:
          pred = a;
          break;
        case 2:
          pred = b;
          break;
        case 3:
          pred = (a + b) / 2;
          break;
        case 4: {
          const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          pred = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c);
          break;
        }
        default:
          return false;
      }
      out[x] = static_cast<uint8_t>(in[x] + pred);
    }
  }
  return true;
}

TEST(DoctorHtml, RendersInHeadlessChromium) {
  const std::string browser = chromium();
  if (browser.empty())
    GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs it): browser check skipped";
  const std::string dir = test::scratch_path("html-browser");
  const std::string html = podcast_html(dir);
  std::string dom;
  ASSERT_EQ(test::run_command(
                chromium_command(browser, dir + "/profile-dom") + " --dump-dom file://" + html + " 2>/dev/null", &dom),
            0)
      << dom;
  // The page measured its charts after layout: "memory-chart:820x…:N prefill-chart:… decode-chart:…".
  std::smatch m;
  ASSERT_TRUE(std::regex_search(dom, m, std::regex("data-layout=\"([^\"]*)\""))) << dom.substr(0, 2000);
  const std::string layout = m[1];
  std::set<std::string> seen;
  const std::regex chart("([a-z-]+):(\\d+)x(\\d+):(\\d+)");
  for (auto it = std::sregex_iterator(layout.begin(), layout.end(), chart); it != std::sregex_iterator(); ++it) {
    const std::smatch& c = *it;
    seen.insert(c[1]);
    EXPECT_GT(std::stoi(c[2]), 400) << layout;
    EXPECT_GT(std::stoi(c[3]), 100) << layout;
    EXPECT_GE(std::stoi(c[4]), 10) << layout;  // bars drawn with a width, one or more per machine
  }
  EXPECT_EQ(seen, (std::set<std::string>{"memory-chart", "prefill-chart", "decode-chart"})) << layout;

  const std::string png = dir + "/report.png";
  std::string out;
  ASSERT_EQ(test::run_command(chromium_command(browser, dir + "/profile-shot") +
                                  " --window-size=1000,2600 --screenshot=" + png + " file://" + html + " 2>&1",
                              &out),
            0)
      << out;
  Image img;
  ASSERT_TRUE(decode_png(test::read_text_file(png), &img)) << "cannot decode " << png;
  EXPECT_EQ(img.width, 1000);
  // Not blank, and the charts' colours are on screen: weights (#4e79a7), KV cache (#f28e2b), the
  // over-timeout prefill bars (#c62828).
  std::set<uint32_t> colours;
  int weights = 0, kv = 0, over = 0;
  for (size_t i = 0; i + 2 < img.pixels.size(); i += img.channels) {
    const uint8_t r = img.pixels[i], g = img.pixels[i + 1], b = img.pixels[i + 2];
    colours.insert(uint32_t{r} << 16 | uint32_t{g} << 8 | b);
    auto near = [&](int R, int G, int B) { return std::abs(r - R) < 6 && std::abs(g - G) < 6 && std::abs(b - B) < 6; };
    weights += near(0x4e, 0x79, 0xa7);
    kv += near(0xf2, 0x8e, 0x2b);
    over += near(0xc6, 0x28, 0x28);
  }
  EXPECT_GT(colours.size(), 20u);
  EXPECT_GT(weights, 2000);
  EXPECT_GT(kv, 1000);
  EXPECT_GT(over, 500);
}

}  // namespace
}  // namespace hylo
