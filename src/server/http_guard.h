// cpp-httplib with the limits `hylo serve` needs in front of it. Each connection is read here
// first: the request head within a deadline and checked strictly (http_framing.h), the whole body
// (Content-Length or chunked) with a size limit and a progress deadline, every wait also ending
// at shutdown. httplib then parses a normalised copy (one Content-Length, no transfer or content
// coding) from memory and routes and answers it as before.
//
// Why not httplib alone: the linked 0.11 applies its payload limit to Content-Length bodies only
// (measured: a 300 MB chunked body was accepted, RSS 86 -> 930 MB), decompresses gzip bodies
// before any limit (a 102 KB body expanding to 100 MB was accepted), has no header count or size
// limit (2.5 MB of headers accepted) and no deadline for a whole head or body (its read timeout
// restarts with every byte: 1 byte/s kept a connection forever), takes the first of conflicting
// Content-Lengths, and listens with a backlog of 5 (bursts of 60 connects saw 1 s SYN retries).
// Why not Boost.Beast (Debian's libboost-dev): it has all of these as parser options, but moving
// every route, the SSE streaming and the tests to it is a rewrite of the server; this layer is
// ~600 lines with the framing, keeps httplib's routing and responses, and plugs in through
// httplib's virtual process_and_close_socket. Cost: one more copy of each request in memory (the
// body is held whole before routing anyway). Gain besides: handlers get the client's socket
// directly instead of scanning /proc for it on every request.
#pragma once

#include <httplib.h>

#include <functional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "server/api_error.h"
#include "server/http_framing.h"

namespace hylo::server {

class GuardedHttpServer : public httplib::Server {
 public:
  // The body of the answer to a request refused here (target: the request's path, when known).
  using FailureBody = std::function<std::string(const std::string& target, const ApiError& e)>;

  // Call before bind(). shutdown_fd becomes readable when the server stops: every wait ends then.
  void configure(const HttpLimits& limits, int shutdown_fd, FailureBody failure_body);
  // After binding: raises the listen backlog from httplib's 5 to limits.backlog.
  bool raise_backlog();

  // httplib's registration, remembering each route's method so that a request with another one
  // can be answered 405 with an Allow header instead of 404.
  using httplib::Server::Get;
  using httplib::Server::Post;
  httplib::Server& Get(const std::string& pattern, Handler handler);
  httplib::Server& Post(const std::string& pattern, Handler handler);
  // The methods routed for `path` ("GET, HEAD" or "POST"), "" when none.
  std::string allowed_methods(const std::string& path) const;

 private:
  bool process_and_close_socket(socket_t sock) override;

  HttpLimits limits_;
  std::vector<std::pair<std::regex, std::string>> routes_;  // pattern, method
  int shutdown_fd_ = -1;
  FailureBody failure_body_;
};

// The socket of the connection whose request this thread is handling (-1 outside a request):
// handlers use it to notice the client hanging up while they wait for the engine.
int current_client_socket();

}  // namespace hylo::server
