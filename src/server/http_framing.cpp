// Request heads and chunked bodies checked strictly: anything two parsers could read differently
// (request smuggling) or that would let a body escape the size limit is refused with a message
// saying what was wrong, instead of being repaired.
#include "server/http_framing.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "base/strings.h"

namespace hylo::server {

namespace {

// RFC 9110 section 5.6.2: tchar.
bool is_tchar(unsigned char c) {
  return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return is_tchar(static_cast<unsigned char>(c)); });
}

// Field values may hold visible characters, spaces, tabs and obs-text; never CR, LF, NUL or DEL.
bool valid_value(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return (c < 0x20 && c != '\t') || c == 0x7f;
  });
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// A short, printable quotation of client bytes for an error message.
std::string quote(std::string_view s) {
  std::string out;
  for (char ch : s.substr(0, 64)) {
    const auto c = static_cast<unsigned char>(ch);
    out += c >= 0x20 && c < 0x7f ? std::string(1, ch) : fmt::format("\\x{:02x}", c);
  }
  return s.size() > 64 ? out + "..." : out;
}

ApiError bad(std::string message) { return ApiError::bad_request(std::move(message)); }

// Splits the head into lines; each ends with LF, optionally preceded by CR. Leading empty lines
// are dropped; the final empty line is not returned.
std::variant<std::vector<std::string_view>, ApiError> head_lines(std::string_view head) {
  std::vector<std::string_view> lines;
  size_t at = 0;
  bool started = false;
  while (at < head.size()) {
    const size_t nl = head.find('\n', at);
    if (nl == std::string_view::npos) break;
    std::string_view line = head.substr(at, nl - at);
    at = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find('\r') != std::string_view::npos) return bad("a bare CR inside a header line (lines end with CRLF)");
    if (line.empty()) {
      if (started) break;  // the blank line that ends the head
      continue;
    }
    started = true;
    lines.push_back(line);
  }
  return lines;
}

std::variant<uint64_t, ApiError> parse_content_length(std::string_view v) {
  // Digits only: "-5", "+5", "5, 5", "0x10" and empty values are all refused (RFC 9110 8.6).
  if (v.empty() || v.size() > 18 || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return bad(fmt::format("invalid Content-Length '{}': it must be one non-negative decimal number", quote(v)));
  uint64_t n = 0;
  for (char c : v) n = n * 10 + static_cast<uint64_t>(c - '0');
  return n;
}

}  // namespace

size_t find_head_end(std::string_view buf) {
  size_t at = 0;
  while (at < buf.size() && (buf[at] == '\r' || buf[at] == '\n')) ++at;  // leading empty lines
  for (size_t nl = buf.find('\n', at); nl != std::string_view::npos; nl = buf.find('\n', nl + 1)) {
    // The blank line: LF LF or LF CR LF.
    if (nl + 1 < buf.size() && buf[nl + 1] == '\n') return nl + 2;
    if (nl + 2 < buf.size() && buf[nl + 1] == '\r' && buf[nl + 2] == '\n') return nl + 3;
  }
  return std::string_view::npos;
}

std::variant<RequestHead, ApiError> parse_request_head(std::string_view head, const HttpLimits& limits) {
  if (head.size() > limits.max_header_bytes)
    return ApiError{
        ApiError::Kind::kHeadersTooLarge,
        fmt::format("the request head is larger than {} bytes (--max-header-bytes)", limits.max_header_bytes)};
  auto split_lines = head_lines(head);
  if (auto* e = std::get_if<ApiError>(&split_lines)) return *e;
  const auto& lines = std::get<std::vector<std::string_view>>(split_lines);
  if (lines.empty()) return bad("an empty request");

  RequestHead h;
  // request-line = method SP request-target SP HTTP-version (exactly single spaces).
  const std::string_view rl = lines[0];
  const size_t sp1 = rl.find(' '), sp2 = sp1 == std::string_view::npos ? sp1 : rl.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || rl.find(' ', sp2 + 1) != std::string_view::npos)
    return bad(fmt::format("malformed request line '{}' (METHOD TARGET HTTP/1.1)", quote(rl)));
  h.method = std::string(rl.substr(0, sp1));
  h.target = std::string(rl.substr(sp1 + 1, sp2 - sp1 - 1));
  h.version = std::string(rl.substr(sp2 + 1));
  if (!is_token(h.method)) return bad(fmt::format("malformed method '{}'", quote(h.method)));
  if (h.target.empty() || !valid_value(h.target) || h.target.find_first_of(" \t") != std::string::npos)
    return bad(fmt::format("malformed request target '{}'", quote(h.target)));
  // httplib refuses longer targets with a bare 414; say so here, with the limit.
  if (h.target.size() > kMaxTargetBytes)
    return ApiError{
        ApiError::Kind::kUriTooLong,
        fmt::format("the request target is {} bytes long; at most {} are accepted", h.target.size(), kMaxTargetBytes)};
  if (h.version != "HTTP/1.1" && h.version != "HTTP/1.0")
    return bad(fmt::format("unsupported HTTP version '{}' (HTTP/1.1 and HTTP/1.0 are served)", quote(h.version)));
  if (lines.size() - 1 > limits.max_header_count)
    return ApiError{ApiError::Kind::kHeadersTooLarge,
                    fmt::format("the request has {} header fields; at most {} are accepted", lines.size() - 1,
                                limits.max_header_count)};

  std::optional<uint64_t> content_length;
  std::string transfer_coding, connection;
  int hosts = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    if (line[0] == ' ' || line[0] == '\t')
      return bad(fmt::format("obsolete line folding (header line {} starts with whitespace) is not accepted", i));
    const size_t colon = line.find(':');
    const std::string_view name = line.substr(0, colon);
    if (colon == std::string_view::npos || !is_token(name))
      return bad(fmt::format("malformed header name '{}' (a token: no spaces, separators or control characters)",
                             quote(name)));
    const std::string_view value = trim(line.substr(colon + 1));
    if (!valid_value(value)) return bad(fmt::format("a control character in the value of header {}", name));
    const std::string key = lower(name);
    if (key == "content-length") {
      auto n = parse_content_length(value);
      if (auto* e = std::get_if<ApiError>(&n)) return *e;
      const uint64_t v = std::get<uint64_t>(n);
      if (content_length && *content_length != v)
        return bad(fmt::format("conflicting Content-Length headers ({} and {})", *content_length, v));
      content_length = v;
      continue;
    }
    if (key == "transfer-encoding") {
      transfer_coding += (transfer_coding.empty() ? "" : ", ") + lower(value);
      continue;
    }
    if (key == "expect") {
      // 100-continue is answered by the reader before the body; other expectations are ignored.
      h.expect_continue = lower(value) == "100-continue";
      continue;
    }
    if (key == "content-encoding" && lower(value) != "identity")
      return ApiError{ApiError::Kind::kUnsupportedMediaType,
                      fmt::format("compressed request bodies are not accepted (Content-Encoding: {}); "
                                  "send the body uncompressed",
                                  quote(value))};
    // Every body this server reads is JSON, whatever it is labelled (as llama-server and Ollama
    // read it): `curl -d @file` labels it a form, which httplib would parse, and refuse past 8 KiB.
    if (key == "content-type" && lower(value).rfind("application/x-www-form-urlencoded", 0) == 0) continue;
    if (key == "host" && ++hosts > 1) return bad("more than one Host header");
    if (key == "connection") connection = lower(value);
    h.fields.emplace_back(std::string(name), std::string(value));
  }

  if (!transfer_coding.empty()) {
    if (content_length) return bad("Content-Length and Transfer-Encoding together are not accepted");
    if (h.version == "HTTP/1.0") return bad("Transfer-Encoding in an HTTP/1.0 request");
    if (transfer_coding != "chunked")
      return ApiError{ApiError::Kind::kNotImplemented,
                      fmt::format("Transfer-Encoding '{}' is not supported (only chunked)", quote(transfer_coding))};
    h.chunked = true;
  }
  h.content_length = content_length.value_or(0);
  if (h.content_length > limits.max_body_bytes)
    return ApiError{ApiError::Kind::kPayloadTooLarge,
                    fmt::format("the request body ({} bytes) is larger than {} bytes (--max-body-bytes)",
                                h.content_length, limits.max_body_bytes)};
  const bool close = connection.find("close") != std::string::npos;
  h.keep_alive = h.version == "HTTP/1.1" ? !close : connection.find("keep-alive") != std::string::npos;
  return h;
}

std::string serialize_head(const RequestHead& h, size_t body_size) {
  std::string out = fmt::format("{} {} {}\r\n", h.method, h.target, h.version);
  for (const auto& [name, value] : h.fields) out += fmt::format("{}: {}\r\n", name, value);
  // A POST always gets one, so that httplib reads an empty body as empty (the handler then says so)
  // instead of refusing the request with a bare 400.
  if (body_size > 0 || h.chunked || h.content_length > 0 || h.method == "POST")
    out += fmt::format("Content-Length: {}\r\n", body_size);
  out += "\r\n";
  return out;
}

std::variant<size_t, ApiError> ChunkedDecoder::feed(std::string_view in, std::string* body) {
  constexpr size_t kMaxChunkLine = 1024;  // chunk size + extensions
  size_t at = 0;
  while (at < in.size() && state_ != State::kDone) {
    if (state_ == State::kData) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left_, in.size() - at));
      body->append(in.data() + at, n);
      at += n;
      left_ -= n;
      if (left_ == 0) state_ = State::kDataEnd;
      continue;
    }
    const size_t nl = in.find('\n', at);
    if (nl == std::string_view::npos) {
      if (in.size() - at > kMaxChunkLine)
        return bad(fmt::format("a chunk-size line longer than {} bytes", kMaxChunkLine));
      break;  // wait for the rest of the line
    }
    std::string_view line = in.substr(at, nl - at);
    at = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    switch (state_) {
      case State::kDataEnd:
        if (!line.empty()) return bad("chunk data longer than its declared size");
        state_ = State::kSize;
        break;
      case State::kSize: {
        const std::string_view size = trim(line.substr(0, line.find(';')));  // extensions are ignored
        if (size.empty() || size.size() > 15 || !std::all_of(size.begin(), size.end(), [](char c) {
              return std::isxdigit(static_cast<unsigned char>(c)) != 0;
            }))
          return bad(fmt::format("invalid chunk size '{}'", quote(line)));
        left_ = std::stoull(std::string(size), nullptr, 16);
        if (body->size() + left_ > limits_.max_body_bytes)
          return ApiError{ApiError::Kind::kPayloadTooLarge,
                          fmt::format("the chunked request body is larger than {} bytes (--max-body-bytes)",
                                      limits_.max_body_bytes)};
        state_ = left_ == 0 ? State::kTrailer : State::kData;
        break;
      }
      case State::kTrailer:
        if (line.empty()) {
          state_ = State::kDone;
          break;
        }
        trailer_bytes_ += line.size() + 2;
        if (++trailer_count_ > limits_.max_header_count || trailer_bytes_ > limits_.max_header_bytes)
          return ApiError{ApiError::Kind::kHeadersTooLarge, "the chunked body's trailer fields are too large"};
        break;  // trailers are read and dropped
      default:
        break;
    }
  }
  return at;
}

}  // namespace hylo::server
