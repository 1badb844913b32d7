// The HTTP client of hylo's outgoing calls (router upstreams, doctor's endpoint probe): base-URL
// parsing, whole requests, and streamed exchanges whose bytes are handed over as they arrive,
// with connect, first-byte and idle timeouts and cancellation. Built on cpp-httplib; not a server.
#pragma once

#include <httplib.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "base/result.h"

namespace hylo::net {

// "http://host:port/prefix" split into httplib's client part and the path prefix (no trailing
// slash). The scheme may be omitted (http assumed); only http and https are accepted.
struct BaseUrl {
  std::string origin;  // "http://host:port"
  std::string prefix;  // "" or "/v1", "/openai/v1", ...
  std::string text() const { return origin + prefix; }
};
Result<BaseUrl> parse_base_url(const std::string& url);

struct Timeouts {
  double connect = 5;      // seconds to open the connection
  double first_byte = 60;  // seconds from the request until the response head
  double idle = 60;        // seconds of silence inside a streamed body
};

struct Reply {
  int status = 0;     // 0: no HTTP answer (see error)
  std::string error;  // why there was no answer
  std::string body;
  httplib::Headers headers;
};

// One request, the whole answer read into memory (bounded by the timeouts, not by size: for small
// control requests such as /v1/models and /props).
Reply fetch(const BaseUrl& base, const std::string& method, const std::string& path, const httplib::Headers& headers,
            const std::string& body, const Timeouts& timeouts);

// A request whose response is read on its own thread and handed over piece by piece. The caller
// waits with wait_head() / next(), watching its own client's socket and a shutdown descriptor, so
// a hang-up or a stop cancels the upstream request at once. Destroying it cancels it too.
class Exchange {
 public:
  static std::shared_ptr<Exchange> start(const BaseUrl& base, const std::string& method, const std::string& path,
                                         httplib::Headers headers, std::string body, const Timeouts& timeouts);
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  enum class Wait {
    kReady,       // wait_head: the head arrived (status(), headers()); next: bytes in *out
    kEnd,         // next: the body is complete
    kFailed,      // no head, or the body broke off (error())
    kTimeout,     // first byte or idle timeout (the request is cancelled)
    kClientGone,  // watch_fd hung up (not cancelled: the caller decides; destroying it cancels)
    kShutdown,    // shutdown_fd became readable (the request is cancelled)
  };
  Wait wait_head(int watch_fd, int shutdown_fd);
  // Waits for body bytes, appending them to *out.
  Wait next(std::string* out, int watch_fd, int shutdown_fd);
  void cancel();

  int status() const;
  httplib::Headers headers() const;
  std::string error() const;
  const Timeouts& timeouts() const { return timeouts_; }

 private:
  struct State;
  Exchange() = default;
  Wait wait_for(bool head, std::string* out, int watch_fd, int shutdown_fd);

  std::shared_ptr<State> state_;
  Timeouts timeouts_;
};

}  // namespace hylo::net
