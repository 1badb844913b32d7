// Strict HTTP/1.1 request framing for `hylo serve`: the request head parsed and checked (RFC 9112
// sections 2-7) and chunked bodies decoded, with hard limits. Pure functions on bytes; reading
// the socket with deadlines is http_guard.cpp's job.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "server/api_error.h"

namespace hylo::server {

struct HttpLimits {
  size_t max_body_bytes = 8u << 20;     // decoded body (Content-Length or the sum of the chunks)
  size_t max_header_bytes = 32u << 10;  // request line + header fields (+ chunked trailers)
  size_t max_header_count = 100;        // header fields (+ trailer fields)
  // Seconds from taking up the connection (or a kept-alive request's first byte) to the end of the head.
  double header_timeout = 10;
  double body_timeout = 30;   // seconds for the body, plus one second per kBodyMinRate bytes received
  double idle_timeout = 5;    // seconds a kept-alive connection waits for its next request
  double write_timeout = 30;  // seconds one write may wait for the client to read
  int backlog = 1024;         // listen() queue of connections not yet accepted
};

// A slow client still gets a second of body time for every 32 KiB it sends (Apache
// mod_reqtimeout's MinRate idea): large bodies on slow links pass, a trickle does not.
inline constexpr double kBodyMinRate = 32 * 1024;

// httplib's CPPHTTPLIB_REQUEST_URI_MAX_LENGTH (compiled into the library).
inline constexpr size_t kMaxTargetBytes = 8192;

struct RequestHead {
  std::string method, target, version;
  std::vector<std::pair<std::string, std::string>> fields;  // in order, framing fields removed
  bool chunked = false;
  uint64_t content_length = 0;  // when not chunked
  bool expect_continue = false;
  bool keep_alive = true;  // HTTP/1.1 without "Connection: close", or HTTP/1.0 with keep-alive
};

// The end of the head in `buf` (the index just past the blank line), or npos when incomplete.
// Leading empty lines (allowed before a request line, RFC 9112 section 2.2) are part of the head.
size_t find_head_end(std::string_view buf);

// Parses and checks a complete head (from find_head_end). Refusals are ApiErrors with the status
// and a message naming what is wrong: malformed request line or header name, obsolete line
// folding, control characters, conflicting or invalid Content-Length, Content-Length with
// Transfer-Encoding, transfer or content codings other than chunked / identity, too many
// fields, a declared body over the limit.
std::variant<RequestHead, ApiError> parse_request_head(std::string_view head, const HttpLimits& limits);

// The head as httplib will read it: request line, the remaining fields, and one Content-Length
// for the decoded body.
std::string serialize_head(const RequestHead& h, size_t body_size);

// Decodes a chunked body incrementally. feed() consumes what it can of `in` (returns the bytes
// consumed) and appends chunk data to *body; done() once the last chunk and trailers are read.
class ChunkedDecoder {
 public:
  explicit ChunkedDecoder(const HttpLimits& limits) : limits_(limits) {}
  // An error (400 malformed, 413 too large, 431 trailers too large) ends decoding.
  std::variant<size_t, ApiError> feed(std::string_view in, std::string* body);
  bool done() const { return state_ == State::kDone; }

 private:
  enum class State { kSize, kData, kDataEnd, kTrailer, kDone };
  const HttpLimits& limits_;
  State state_ = State::kSize;
  uint64_t left_ = 0;  // of the current chunk
  size_t trailer_bytes_ = 0, trailer_count_ = 0;
};

}  // namespace hylo::server
