// `hylo serve`'s HTTP layer against hostile clients, over raw loopback sockets: body limits that
// hold for chunked and compressed bodies, header limits, strict framing with specific messages,
// deadlines for the head and the body (set small for the test: the server's own deadlines end
// every wait, the test never sleeps), the listen backlog, and SIGTERM despite slow clients.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/fixtures.h"
#include "serve_process.h"
#include "server/http_guard.h"

namespace hylo::test {
namespace {

using json = nlohmann::json;

std::string message_of(const std::string& response) {
  const json j = json::parse(body_of(response), nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object()) return j["error"].value("message", "");
  if (j.is_object() && j.contains("error") && j["error"].is_string()) return j["error"];
  return "(no JSON error in: " + response.substr(0, 300) + ")";
}

class ServeHttp : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string model = fixture_model("qwen3moe-tiny");
    ASSERT_FALSE(model.empty());
    server_ =
        new ServeProcess({"-m", model, "--parallel", "1", "--max-queue", "0", "-c", "256", "--max-body-bytes", "65536",
                          "--max-header-bytes", "4096", "--header-timeout", "0.5", "--body-timeout", "0.5"});
    ASSERT_TRUE(server_->start());
  }
  static void TearDownTestSuite() {
    if (server_) {
      EXPECT_EQ(server_->stop(), 0) << server_->log();
    }
    delete server_;
    server_ = nullptr;
  }
  static int port() { return server_->port(); }
  static ServeProcess* server_;
};
ServeProcess* ServeHttp::server_ = nullptr;

const std::string kHead = "Host: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n";

TEST_F(ServeHttp, ChunkedBodiesAreDecodedAndLimited) {
  // Within the limit: decoded and served (chunks split anywhere, an extension, a trailer).
  const std::string body = R"({"content":"Hello world"})";
  const std::string ok =
      raw_exchange(port(), "POST /tokenize HTTP/1.1\r\n" + kHead + "Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\n" +
                               body.substr(0, 5) + "\r\n" + fmt::format("{:x}", body.size() - 5) + "\r\n" +
                               body.substr(5) + "\r\n0\r\nX-Trailer: 1\r\n\r\n");
  EXPECT_EQ(status_of(ok), 200) << ok;
  EXPECT_NE(body_of(ok).find("\"tokens\""), std::string::npos) << ok;

  // Over the limit: refused as soon as the chunks add up past it, not after the whole body.
  const int fd = connect_loopback(port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_bytes(fd, "POST /tokenize HTTP/1.1\r\n" + kHead + "Transfer-Encoding: chunked\r\n\r\n"));
  const std::string chunk = "4000\r\n" + std::string(0x4000, 'x') + "\r\n";
  for (int i = 0; i < 64 && send_bytes(fd, chunk); ++i) {  // up to 1 MiB; the server stops reading at 64 KiB
  }
  const std::string r = read_until_close(fd);
  close(fd);
  EXPECT_EQ(status_of(r), 413) << r;
  EXPECT_NE(message_of(r).find("chunked request body is larger than 65536 bytes"), std::string::npos) << r;
}

TEST_F(ServeHttp, CompressedBodiesAreRefused) {
  const std::string gz("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10);
  const std::string r = raw_exchange(
      port(), "POST /tokenize HTTP/1.1\r\n" + kHead + "Content-Encoding: gzip\r\nContent-Length: 10\r\n\r\n" + gz);
  EXPECT_EQ(status_of(r), 415) << r;
  EXPECT_NE(message_of(r).find("Content-Encoding: gzip"), std::string::npos) << r;
}

TEST_F(ServeHttp, HeaderSizeAndCountAreLimited) {
  std::string many;
  for (int i = 0; i < 150; ++i) many += fmt::format("X-{}: 1\r\n", i);
  const std::string count = raw_exchange(port(), "GET /health HTTP/1.1\r\n" + kHead + many + "\r\n");
  EXPECT_EQ(status_of(count), 431) << count;
  EXPECT_NE(message_of(count).find("at most 100"), std::string::npos) << count;

  // Larger than --max-header-bytes, sent without an end: refused without waiting for one.
  const std::string big = raw_exchange(port(), "GET /health HTTP/1.1\r\n" + kHead + "X-Big: " + std::string(8000, 'a'));
  EXPECT_EQ(status_of(big), 431) << big;
  EXPECT_NE(message_of(big).find("4096 bytes"), std::string::npos) << big;
}

TEST_F(ServeHttp, FramingErrorsGetSpecificMessages) {
  struct Case {
    std::string fields, body;
    int status;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"Content-Length: 2\r\nContent-Length: 3\r\n", "{}", 400, "conflicting Content-Length headers (2 and 3)"},
      {"Content-Length: -5\r\n", "", 400, "invalid Content-Length '-5'"},
      {"Content-Length: 2, 2\r\n", "{}", 400, "invalid Content-Length"},
      {"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", "{}", 400,
       "Content-Length and Transfer-Encoding together"},
      {"Transfer-Encoding: gzip, chunked\r\n", "", 501, "only chunked"},
      {"Bad Name: 1\r\n", "", 400, "malformed header name 'Bad Name'"},
      {"X-Folded: a\r\n b\r\n", "", 400, "obsolete line folding"},
      {"Host: again\r\n", "", 400, "more than one Host header"},
  };
  for (const Case& c : cases) {
    const std::string r = raw_exchange(port(), "POST /tokenize HTTP/1.1\r\n" + kHead + c.fields + "\r\n" + c.body);
    EXPECT_EQ(status_of(r), c.status) << c.fields << r;
    EXPECT_NE(message_of(r).find(c.message), std::string::npos) << c.fields << r;
  }
  const std::string line = raw_exchange(port(), "GET  /health HTTP/1.1\r\n" + kHead + "\r\n");
  EXPECT_EQ(status_of(line), 400) << line;
  EXPECT_NE(message_of(line).find("malformed request line"), std::string::npos) << line;
  // The server is still fine.
  EXPECT_EQ(status_of(raw_exchange(port(), "GET /health HTTP/1.1\r\n" + kHead + "\r\n")), 200);
}

TEST_F(ServeHttp, AHeadThatDoesNotArriveInTimeIs408) {
  const int fd = connect_loopback(port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_bytes(fd, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "));  // and nothing more
  const std::string r = read_until_close(fd);  // the server's --header-timeout 0.5 ends it
  close(fd);
  EXPECT_EQ(status_of(r), 408) << r;
  EXPECT_NE(message_of(r).find("--header-timeout"), std::string::npos) << r;
}

TEST_F(ServeHttp, ATrickledBodyIs408) {
  const int fd = connect_loopback(port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_bytes(fd, "POST /tokenize HTTP/1.1\r\n" + kHead + "Content-Length: 100\r\n\r\n{\"cont"));
  const std::string r = read_until_close(fd);
  close(fd);
  EXPECT_EQ(status_of(r), 408) << r;
  EXPECT_NE(message_of(r).find("6 of 100 bytes"), std::string::npos) << r;
}

// 40 clients that never finish their heads hold at most a deadline each: /health is answered,
// and each of them gets its 408.
TEST_F(ServeHttp, SlowClientsDoNotStarveOthers) {
  std::vector<int> slow;
  for (int i = 0; i < 40; ++i) {
    const int fd = connect_loopback(port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_bytes(fd, "GET /health HTTP/1.1\r\nHo"));
    slow.push_back(fd);
  }
  auto c = server_->client();
  EXPECT_EQ(get(c, "/health").status, 200);
  const HttpReply chat =
      post_json(c, "/v1/chat/completions",
                {{"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}, {"max_tokens", 2}});
  EXPECT_EQ(chat.status, 200) << chat.body;
  for (int fd : slow) {
    EXPECT_EQ(status_of(read_until_close(fd)), 408);
    close(fd);
  }
}

TEST_F(ServeHttp, KeepAliveAndPipeliningStillWork) {
  const std::string two = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /health HTTP/1.1\r\n" + kHead + "\r\n";
  const std::string r = raw_exchange(port(), two);
  size_t n = 0;
  for (size_t at = r.find("HTTP/1.1 200"); at != std::string::npos; at = r.find("HTTP/1.1 200", at + 1)) ++n;
  EXPECT_EQ(n, 2u) << r;
  // Expect: 100-continue is answered before the body is sent.
  const int fd = connect_loopback(port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(
      send_bytes(fd, "POST /tokenize HTTP/1.1\r\n" + kHead + "Expect: 100-continue\r\nContent-Length: 15\r\n\r\n"));
  char buf[64] = {};
  ASSERT_GT(recv(fd, buf, sizeof buf - 1, 0), 0);
  EXPECT_EQ(std::string(buf).rfind("HTTP/1.1 100 Continue", 0), 0u) << buf;
  ASSERT_TRUE(send_bytes(fd, R"({"content":"a"})"));
  EXPECT_EQ(status_of(read_until_close(fd)), 200);
  close(fd);
}

// The listen queue holds a burst of connections that the server has not accepted yet (httplib's
// own backlog is 5). TCP_INFO on a listening socket reports its backlog and queue length.
TEST(ServeBacklog, ABurstOf64ConnectsIsQueued) {
  struct Probe : server::GuardedHttpServer {
    int fd() const { return svr_sock_; }
  } probe;
  probe.configure(server::HttpLimits{}, -1, nullptr);
  const int port = probe.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  ASSERT_TRUE(probe.raise_backlog());
  tcp_info info{};
  socklen_t len = sizeof info;
  ASSERT_EQ(getsockopt(probe.fd(), IPPROTO_TCP, TCP_INFO, &info, &len), 0);
  EXPECT_GE(info.tcpi_sacked, 64u);  // sk_max_ack_backlog: 1024, or net.core.somaxconn if lower
  std::vector<int> fds;
  for (int i = 0; i < 64; ++i) fds.push_back(connect_loopback(port));  // nothing accepts them
  for (int fd : fds) EXPECT_GE(fd, 0);
  ASSERT_EQ(getsockopt(probe.fd(), IPPROTO_TCP, TCP_INFO, &info, &len), 0);
  EXPECT_EQ(info.tcpi_unacked, 64u);  // all 64 in the accept queue
  for (int fd : fds)
    if (fd >= 0) close(fd);
}

// SIGTERM ends the server promptly although clients are half-way through a head and a body and
// the deadlines for both are a minute.
TEST(ServeShutdown, SigtermIsPromptDespiteSlowClients) {
  const std::string model = fixture_model("qwen3moe-tiny");
  ASSERT_FALSE(model.empty());
  ServeProcess server({"-m", model, "--parallel", "1", "-c", "256", "--header-timeout", "60", "--body-timeout", "60"});
  ASSERT_TRUE(server.start());
  const int head = connect_loopback(server.port());
  const int body = connect_loopback(server.port());
  ASSERT_GE(head, 0);
  ASSERT_GE(body, 0);
  ASSERT_TRUE(send_bytes(head, "GET /health HTTP/1.1\r\nHost: 127"));
  ASSERT_TRUE(send_bytes(body, "POST /tokenize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50\r\n\r\n{"));
  auto c = server.client();
  EXPECT_EQ(get(c, "/health").status, 200);  // both slow connections are being read by now
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(server.stop(), 0) << server.log();
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(took, 10.0) << "SIGTERM waited for the slow clients' 60 s deadlines";
  close(head);
  close(body);
}

}  // namespace
}  // namespace hylo::test
