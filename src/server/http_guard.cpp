// The connection loop in front of httplib (see http_guard.h for why it exists). Every wait here
// is a poll() on the client socket and the shutdown descriptor with a deadline, so neither a
// slow client nor a stopping server waits on the other.
#include "server/http_guard.h"

#include <malloc.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>

#include "base/log.h"

namespace hylo::server {

namespace {

using Clock = std::chrono::steady_clock;

thread_local int t_client_fd = -1;

// After a request this large, freed memory goes back to the system at once (the issue was RSS
// staying at the high-water mark of a few large requests across many allocator arenas).
constexpr size_t kTrimAfterBytes = 1u << 20;
// A server that is stopping gives a blocked write this long, then closes the connection.
constexpr double kShutdownWriteGrace = 1.0;
// A refused request's unread body is drained this long before closing, so that the close does
// not reset the connection before the client has read the answer (a "lingering close").
constexpr double kLingerSeconds = 1.0;

Clock::time_point after(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

bool readable_now(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) > 0;
}

enum class Ready { kReady, kTimeout, kShutdown };

// Waits until `fd` is ready for `events`, the deadline passes, or shutdown_fd becomes readable.
Ready wait_fd(int fd, short events, int shutdown_fd, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration<double, std::milli>(deadline - Clock::now()).count();
    const int ms = left <= 0 ? 0 : static_cast<int>(std::min(std::ceil(left), 3.6e6));
    pollfd p[2] = {{fd, events, 0}, {shutdown_fd, POLLIN, 0}};
    const int rc = poll(p, shutdown_fd >= 0 ? 2 : 1, ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return Ready::kReady;  // the next recv/send reports the error
    if (shutdown_fd >= 0 && (p[1].revents & POLLIN) != 0) return Ready::kShutdown;
    if (rc > 0) return Ready::kReady;
    if (ms == 0) return Ready::kTimeout;
  }
}

const char* reason_phrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    default:
      return "Error";
  }
}

// The request target of a head that may not parse: the second word of the first line.
std::string rough_target(const std::string& buf) {
  const size_t sp = buf.find(' ');
  if (sp == std::string::npos) return "/";
  const size_t end = buf.find_first_of(" \r\n", sp + 1);
  return buf.substr(sp + 1, std::min<size_t>(end == std::string::npos ? buf.size() : end, sp + 1 + 256) - sp - 1);
}

class Connection {
 public:
  Connection(int fd, int shutdown_fd, const HttpLimits& limits) : fd_(fd), shutdown_fd_(shutdown_fd), lim_(limits) {}

  enum class Next { kRequest, kClosed, kRefused };

  // Reads the next request into *request (normalised head + decoded body). For the first request
  // the head deadline counts from `accepted`; later ones may first idle for limits.idle_timeout.
  Next next(const Clock::time_point* accepted, std::string* request, bool* keep_alive, std::string* target,
            ApiError* error) {
    const Clock::time_point head_deadline =
        accepted ? *accepted +
                       std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(lim_.header_timeout))
                 : Clock::time_point{};
    if (buf_.empty()) {
      const Fill f = fill(accepted ? head_deadline : after(lim_.idle_timeout));
      if (f != Fill::kData) return Next::kClosed;  // idle, gone or stopping: nothing to answer
    }
    const Clock::time_point deadline = accepted ? head_deadline : after(lim_.header_timeout);
    size_t end;
    while ((end = find_head_end(buf_)) == std::string::npos) {
      if (buf_.size() > lim_.max_header_bytes) {
        *target = rough_target(buf_);
        *error = {ApiError::Kind::kHeadersTooLarge,
                  fmt::format("the request head is larger than {} bytes (--max-header-bytes)", lim_.max_header_bytes)};
        return Next::kRefused;
      }
      const Fill f = fill(deadline);
      if (f == Fill::kTimeout) {
        *target = rough_target(buf_);
        *error = {ApiError::Kind::kTimeout,
                  fmt::format("the request head did not arrive within {} s (--header-timeout)", lim_.header_timeout)};
        return Next::kRefused;
      }
      if (f != Fill::kData) return Next::kClosed;
    }
    auto parsed = parse_request_head(std::string_view(buf_).substr(0, end), lim_);
    if (auto* e = std::get_if<ApiError>(&parsed)) {
      *target = rough_target(buf_);
      *error = *e;
      return Next::kRefused;
    }
    RequestHead& h = std::get<RequestHead>(parsed);
    *target = h.target;
    *keep_alive = h.keep_alive;
    buf_.erase(0, end);
    const bool has_body = h.chunked || h.content_length > 0;
    if (h.expect_continue && has_body && !write_all("HTTP/1.1 100 Continue\r\n\r\n")) return Next::kClosed;

    const Clock::time_point body_start = Clock::now();
    size_t received = 0;  // raw body bytes, framing included
    auto body_deadline = [&] {
      return body_start + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(lim_.body_timeout + received / kBodyMinRate));
    };
    auto timed_out = [&](const std::string& got) {
      *error = {ApiError::Kind::kTimeout,
                fmt::format("the request body did not arrive in time ({} after {:.1f} s; --body-timeout {} s plus "
                            "1 s per {} KiB)",
                            got, std::chrono::duration<double>(Clock::now() - body_start).count(), lim_.body_timeout,
                            static_cast<int>(kBodyMinRate / 1024))};
      return Next::kRefused;
    };

    if (!h.chunked) {
      const auto need = static_cast<size_t>(h.content_length);
      *request = serialize_head(h, need);
      request->reserve(request->size() + need);
      while (received < need) {
        if (buf_.empty()) {
          const Fill f = fill(body_deadline());
          if (f == Fill::kTimeout) return timed_out(fmt::format("{} of {} bytes", received, need));
          if (f != Fill::kData) return Next::kClosed;
        }
        const size_t n = std::min(need - received, buf_.size());
        request->append(buf_, 0, n);
        buf_.erase(0, n);
        received += n;
      }
      return Next::kRequest;
    }

    ChunkedDecoder decoder(lim_);
    std::string body;
    while (!decoder.done()) {
      auto used = decoder.feed(buf_, &body);
      if (auto* e = std::get_if<ApiError>(&used)) {
        *error = *e;
        return Next::kRefused;
      }
      const size_t n = std::get<size_t>(used);
      buf_.erase(0, n);
      received += n;
      if (decoder.done()) break;
      const Fill f = fill(body_deadline());
      if (f == Fill::kTimeout) return timed_out(fmt::format("{} bytes of a chunked body", body.size()));
      if (f != Fill::kData) return Next::kClosed;
    }
    *request = serialize_head(h, body.size());
    *request += body;
    return Next::kRequest;
  }

  // Writes everything, waiting at most limits.write_timeout for the client to read (and at most
  // kShutdownWriteGrace once the server is stopping).
  bool write_all(std::string_view bytes) {
    Clock::time_point deadline = after(lim_.write_timeout);
    int watch = shutdown_fd_;
    while (!bytes.empty()) {
      const ssize_t w = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) {
        bytes.remove_prefix(static_cast<size_t>(w));
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        const Ready r = wait_fd(fd_, POLLOUT, watch, deadline);
        if (r == Ready::kTimeout) return false;
        if (r == Ready::kShutdown) {
          watch = -1;
          deadline = std::min(deadline, after(kShutdownWriteGrace));
        }
        continue;
      }
      return false;
    }
    return true;
  }

  // Answers a request refused before httplib saw it, then closes after a short lingering drain.
  void refuse(const std::string& body, const ApiError& e) {
    const int status = http_status(e);
    write_all(fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}", status,
        reason_phrase(status), body.size(), body));
    ::shutdown(fd_, SHUT_WR);
    const Clock::time_point until = after(kLingerSeconds);
    char scratch[16384];
    while (wait_fd(fd_, POLLIN, shutdown_fd_, until) == Ready::kReady)
      if (recv(fd_, scratch, sizeof scratch, MSG_DONTWAIT) <= 0) break;
  }

  int fd() const { return fd_; }
  const HttpLimits& limits() const { return lim_; }

 private:
  enum class Fill { kData, kEof, kTimeout, kShutdown, kError };

  // One recv() into buf_, after waiting for data until the deadline.
  Fill fill(Clock::time_point deadline) {
    for (;;) {
      const Ready r = wait_fd(fd_, POLLIN, shutdown_fd_, deadline);
      if (r == Ready::kTimeout) return Fill::kTimeout;
      if (r == Ready::kShutdown) return Fill::kShutdown;
      char chunk[65536];
      const ssize_t n = recv(fd_, chunk, sizeof chunk, MSG_DONTWAIT);
      if (n > 0) {
        buf_.append(chunk, static_cast<size_t>(n));
        return Fill::kData;
      }
      if (n == 0) return Fill::kEof;
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return Fill::kError;
    }
  }

  int fd_, shutdown_fd_;
  const HttpLimits& lim_;
  std::string buf_;  // received, not yet consumed (may hold the start of a pipelined request)
};

// One request for httplib: reads come from memory, writes go to the client with deadlines.
class RequestStream : public httplib::Stream {
 public:
  RequestStream(Connection& conn, std::string request) : conn_(conn), in_(std::move(request)) {}

  bool is_readable() const override { return at_ < in_.size(); }
  bool is_writable() const override {
    return wait_fd(conn_.fd(), POLLOUT, -1, after(conn_.limits().write_timeout)) == Ready::kReady;
  }
  ssize_t read(char* ptr, size_t size) override {
    const size_t n = std::min(size, in_.size() - at_);
    std::memcpy(ptr, in_.data() + at_, n);
    at_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    return conn_.write_all(std::string_view(ptr, size)) ? static_cast<ssize_t>(size) : -1;
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { endpoint(true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { endpoint(false, ip, port); }
  socket_t socket() const override { return conn_.fd(); }

 private:
  // Numeric address and port, as httplib itself reports them.
  void endpoint(bool peer, std::string& ip, int& port) const {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    auto* sa = reinterpret_cast<sockaddr*>(&ss);
    if ((peer ? getpeername(conn_.fd(), sa, &len) : getsockname(conn_.fd(), sa, &len)) != 0) return;
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (getnameinfo(sa, len, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0) return;
    ip = host;
    port = std::atoi(serv);
  }

  Connection& conn_;
  std::string in_;
  size_t at_ = 0;
};

}  // namespace

int current_client_socket() { return t_client_fd; }

void GuardedHttpServer::configure(const HttpLimits& limits, int shutdown_fd, FailureBody failure_body) {
  limits_ = limits;
  shutdown_fd_ = shutdown_fd;
  failure_body_ = std::move(failure_body);
  set_payload_max_length(limits.max_body_bytes);  // checked here first; httplib's check stays as a second line
}

httplib::Server& GuardedHttpServer::Get(const std::string& pattern, Handler handler) {
  routes_.emplace_back(std::regex(pattern), "GET");
  return httplib::Server::Get(pattern, std::move(handler));
}

httplib::Server& GuardedHttpServer::Post(const std::string& pattern, Handler handler) {
  routes_.emplace_back(std::regex(pattern), "POST");
  return httplib::Server::Post(pattern, std::move(handler));
}

std::string GuardedHttpServer::allowed_methods(const std::string& path) const {
  bool get = false, post = false;
  for (const auto& [pattern, method] : routes_) {
    if (!std::regex_match(path, pattern)) continue;
    get = get || method == "GET";
    post = post || method == "POST";
  }
  if (get && post) return "GET, HEAD, POST";
  return get ? "GET, HEAD" : post ? "POST" : "";
}

bool GuardedHttpServer::raise_backlog() { return ::listen(svr_sock_, limits_.backlog) == 0; }

bool GuardedHttpServer::process_and_close_socket(socket_t sock) {
  const Clock::time_point accepted = Clock::now();
  Connection conn(sock, shutdown_fd_, limits_);
  bool ok = true;
  for (size_t count = 0;; ++count) {
    std::string request, target;
    bool keep_alive = true;
    ApiError error;
    const Connection::Next next = conn.next(count == 0 ? &accepted : nullptr, &request, &keep_alive, &target, &error);
    if (next == Connection::Next::kClosed) break;
    if (next == Connection::Next::kRefused) {
      log_info("[server] refused a request for {}: {} {}", target, http_status(error), error.message);
      conn.refuse(failure_body_ ? failure_body_(target, error) : error.message, error);
      ok = false;
      break;
    }
    const bool last = count + 1 >= keep_alive_max_count_ || !keep_alive || readable_now(shutdown_fd_);
    const bool large = request.size() >= kTrimAfterBytes;
    bool closed = false;
    {
      RequestStream strm(conn, std::move(request));
      t_client_fd = sock;
      ok = process_request(strm, last, closed, nullptr);
      t_client_fd = -1;
    }
    if (large) malloc_trim(0);  // after the request's buffers (and httplib's copy) are freed
    if (!ok || closed || last) break;
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ok;
}

}  // namespace hylo::server
