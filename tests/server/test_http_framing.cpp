// The request framing checks without a socket: heads accepted and refused, and the chunked
// decoder fed in every split (a body may arrive one byte at a time).
#include <gtest/gtest.h>

#include "server/http_framing.h"

namespace hylo::server {
namespace {

const HttpLimits kLimits = [] {
  HttpLimits l;
  l.max_body_bytes = 100;
  l.max_header_bytes = 512;
  l.max_header_count = 4;
  return l;
}();

TEST(HttpFraming, FindsTheEndOfAHead) {
  EXPECT_EQ(find_head_end("GET / HTTP/1.1\r\nHost: a\r\n\r\nbody"), 27u);
  EXPECT_EQ(find_head_end("\r\nGET / HTTP/1.1\n\nrest"), 18u);
  EXPECT_EQ(find_head_end("GET / HTTP/1.1\r\nHost: a\r\n"), std::string_view::npos);
}

TEST(HttpFraming, AcceptsAndNormalisesAHead) {
  auto r = parse_request_head(
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n"
      "Expect: 100-continue\r\n\r\n",
      kLimits);
  ASSERT_TRUE(std::holds_alternative<RequestHead>(r)) << std::get<ApiError>(r).message;
  const RequestHead& h = std::get<RequestHead>(r);
  EXPECT_EQ(h.content_length, 4u);
  EXPECT_TRUE(h.expect_continue);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_EQ(serialize_head(h, 4), "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n");
}

TEST(HttpFraming, AFormLabelIsDroppedSoTheBodyIsReadAsJson) {
  // curl -d labels a JSON body as a form; httplib would parse it as one and refuse it past 8 KiB.
  auto r = parse_request_head(
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 4\r\n\r\n",
      kLimits);
  ASSERT_TRUE(std::holds_alternative<RequestHead>(r)) << std::get<ApiError>(r).message;
  EXPECT_EQ(serialize_head(std::get<RequestHead>(r), 4), "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n");
}

TEST(HttpFraming, RefusesAmbiguousHeads) {
  struct Case {
    const char* head;
    int status;
  };
  for (const Case& c :
       {Case{"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        Case{"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n", 400},
        Case{"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 413},
        Case{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", 400},
        Case{"POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", 501},
        Case{"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        Case{"POST / HTTP/1.1\r\nContent-Encoding: br\r\n\r\n", 415}, Case{"GET / HTTP/1.1\r\nA : 1\r\n\r\n", 400},
        Case{"GET / HTTP/1.1\r\n: 1\r\n\r\n", 400}, Case{"GET / HTTP/1.1\r\nA: 1\r\n\tb\r\n\r\n", 400},
        Case{"GET / HTTP/1.1\r\nA: 1\rB: 2\r\n\r\n", 400},
        Case{"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n", 431},
        Case{"GET / HTTP/2.0\r\n\r\n", 400}, Case{"GET /\r\n\r\n", 400}}) {
    auto r = parse_request_head(c.head, kLimits);
    ASSERT_TRUE(std::holds_alternative<ApiError>(r)) << c.head;
    EXPECT_EQ(http_status(std::get<ApiError>(r)), c.status) << c.head << std::get<ApiError>(r).message;
  }
}

TEST(HttpFraming, ALongTargetIs414WithTheLimit) {
  HttpLimits l;
  auto r = parse_request_head("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n", l);
  ASSERT_TRUE(std::holds_alternative<ApiError>(r));
  EXPECT_EQ(http_status(std::get<ApiError>(r)), 414);
  EXPECT_NE(std::get<ApiError>(r).message.find("at most 8192"), std::string::npos);
}

TEST(HttpFraming, ChunkedBodiesDecodeInAnySplit) {
  const std::string wire = "3;x=y\r\nabc\r\nA\r\n0123456789\r\n0\r\nTrailer: 1\r\n\r\n";
  for (size_t split = 0; split <= wire.size(); ++split) {
    ChunkedDecoder d(kLimits);
    std::string body, pending;
    for (const std::string& part : {wire.substr(0, split), wire.substr(split)}) {
      pending += part;
      auto used = d.feed(pending, &body);
      ASSERT_TRUE(std::holds_alternative<size_t>(used)) << split;
      pending.erase(0, std::get<size_t>(used));
    }
    EXPECT_TRUE(d.done()) << split;
    EXPECT_EQ(body, "abc0123456789") << split;
  }
}

TEST(HttpFraming, ChunkedBodiesAreLimitedAndChecked) {
  std::string body;
  ChunkedDecoder big(kLimits);
  auto r = big.feed("40\r\n" + std::string(64, 'x') + "\r\n40\r\n", &body);
  ASSERT_TRUE(std::holds_alternative<ApiError>(r));
  EXPECT_EQ(http_status(std::get<ApiError>(r)), 413);
  for (const char* bad : {"zz\r\n", "3\r\nabcd\r\n", "ffffffffffffffffff\r\n"}) {
    ChunkedDecoder d(kLimits);
    body.clear();
    auto e = d.feed(bad, &body);
    ASSERT_TRUE(std::holds_alternative<ApiError>(e)) << bad;
  }
}

}  // namespace
}  // namespace hylo::server
