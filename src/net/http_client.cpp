#include "net/http_client.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>

#include "base/strings.h"

namespace hylo::net {

namespace {

void set_timeout(double seconds, const std::function<void(time_t, time_t)>& set) {
  const double s = std::max(seconds, 0.001);
  const auto sec = static_cast<time_t>(s);
  set(sec, static_cast<time_t>((s - static_cast<double>(sec)) * 1e6));
}

std::unique_ptr<httplib::Client> make_client(const BaseUrl& base, const Timeouts& t, double read_timeout) {
  auto c = std::make_unique<httplib::Client>(base.origin);
  set_timeout(t.connect, [&](time_t s, time_t us) { c->set_connection_timeout(s, us); });
  set_timeout(read_timeout, [&](time_t s, time_t us) { c->set_read_timeout(s, us); });
  set_timeout(std::max(t.connect, 30.0), [&](time_t s, time_t us) { c->set_write_timeout(s, us); });
  c->set_keep_alive(false);
  return c;
}

using Clock = std::chrono::steady_clock;

}  // namespace

Result<BaseUrl> parse_base_url(const std::string& url) {
  std::string u(trim(url));
  if (u.empty()) return make_error("[net] URL is empty");
  if (u.find("://") == std::string::npos) u = "http://" + u;
  if (!starts_with(u, "http://") && !starts_with(u, "https://"))
    return make_error("[net] URL {}: only http:// and https:// are supported", url);
  const size_t host_begin = u.find("://") + 3;
  const size_t slash = u.find('/', host_begin);
  BaseUrl b;
  b.origin = u.substr(0, slash);
  if (slash != std::string::npos) b.prefix = u.substr(slash);
  while (!b.prefix.empty() && b.prefix.back() == '/') b.prefix.pop_back();
  if (host_begin >= b.origin.size()) return make_error("[net] URL {}: no host", url);
  if (b.prefix.find_first_of("?#") != std::string::npos)
    return make_error("[net] URL {}: a base URL has no query or fragment", url);
  return b;
}

Reply fetch(const BaseUrl& base, const std::string& method, const std::string& path, const httplib::Headers& headers,
            const std::string& body, const Timeouts& timeouts) {
  Reply r;
  auto client = make_client(base, timeouts, std::max(timeouts.first_byte, timeouts.idle));
  if (!client->is_valid()) {
    r.error = "not a valid URL";
    return r;
  }
  httplib::Request req;
  req.method = method;
  req.path = base.prefix + path;
  req.headers = headers;
  req.body = body;
  if (!body.empty() && !req.has_header("Content-Type")) req.set_header("Content-Type", "application/json");
  auto res = client->send(req);
  if (!res) {
    r.error = httplib::to_string(res.error());
    return r;
  }
  r.status = res->status;
  r.body = std::move(res->body);
  r.headers = res->headers;
  return r;
}

// Shared by the reading thread and the waiting caller; the thread keeps it alive after the
// Exchange is gone, until httplib returns.
struct Exchange::State {
  std::mutex mu;
  int efd = -1;  // written whenever something below changes
  std::unique_ptr<httplib::Client> client;
  std::atomic<bool> cancelled{false};
  bool head = false, done = false;
  int status = 0;
  httplib::Headers headers;
  std::string pending;  // body bytes not yet taken by next()
  std::string error;

  ~State() {
    if (efd >= 0) close(efd);
  }
  void notify() {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(efd, &one, sizeof one);
  }
};

std::shared_ptr<Exchange> Exchange::start(const BaseUrl& base, const std::string& method, const std::string& path,
                                          httplib::Headers headers, std::string body, const Timeouts& timeouts) {
  std::shared_ptr<Exchange> ex(new Exchange());
  ex->timeouts_ = timeouts;
  auto st = std::make_shared<State>();
  st->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  // httplib's own read timeout is only a backstop: wait_for() enforces the first-byte and idle
  // limits and cancels.
  st->client = make_client(base, timeouts, std::max(timeouts.first_byte, timeouts.idle) + 1);
  ex->state_ = st;
  auto req = std::make_shared<httplib::Request>();
  req->method = method;
  req->path = base.prefix + path;
  req->headers = std::move(headers);
  req->body = std::move(body);
  if (!req->body.empty() && !req->has_header("Content-Type")) req->set_header("Content-Type", "application/json");
  std::thread([st, req] {
    httplib::Request r = *req;
    r.response_handler = [st](const httplib::Response& res) {
      std::lock_guard<std::mutex> lock(st->mu);
      st->head = true;
      st->status = res.status;
      st->headers = res.headers;
      st->notify();
      return !st->cancelled.load();
    };
    r.content_receiver = [st](const char* data, size_t n, uint64_t, uint64_t) {
      std::lock_guard<std::mutex> lock(st->mu);
      st->pending.append(data, n);
      st->notify();
      return !st->cancelled.load();
    };
    httplib::Result res =
        st->client->is_valid() ? st->client->send(r) : httplib::Result{nullptr, httplib::Error::Connection};
    std::lock_guard<std::mutex> lock(st->mu);
    st->done = true;
    if (!res && st->error.empty())
      st->error = st->client->is_valid() ? httplib::to_string(res.error()) : "not a valid URL";
    st->notify();
  }).detach();
  return ex;
}

Exchange::~Exchange() { cancel(); }

void Exchange::cancel() {
  if (!state_ || state_->cancelled.exchange(true)) return;
  state_->client->stop();  // thread-safe: shuts the socket of a request in flight
}

int Exchange::status() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->status;
}
httplib::Headers Exchange::headers() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->headers;
}
std::string Exchange::error() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->error;
}

Exchange::Wait Exchange::wait_head(int watch_fd, int shutdown_fd) {
  return wait_for(/*head=*/true, nullptr, watch_fd, shutdown_fd);
}

Exchange::Wait Exchange::next(std::string* out, int watch_fd, int shutdown_fd) {
  return wait_for(/*head=*/false, out, watch_fd, shutdown_fd);
}

Exchange::Wait Exchange::wait_for(bool head, std::string* out, int watch_fd, int shutdown_fd) {
  State& st = *state_;
  const double limit = head ? timeouts_.first_byte : timeouts_.idle;
  const auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(limit));
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(st.mu);
      if (head) {
        if (st.head) return Wait::kReady;
        if (st.done) return Wait::kFailed;
      } else {
        if (!st.pending.empty()) {
          out->append(st.pending);
          st.pending.clear();
          return Wait::kReady;
        }
        if (st.done) return st.error.empty() ? Wait::kEnd : Wait::kFailed;
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      cancel();
      return Wait::kTimeout;
    }
    pollfd fds[3];
    nfds_t n = 0;
    fds[n++] = {st.efd, POLLIN, 0};
    const nfds_t watch_at = watch_fd >= 0 ? n : 3;
    if (watch_fd >= 0) fds[n++] = {watch_fd, POLLRDHUP, 0};
    const nfds_t shutdown_at = shutdown_fd >= 0 ? n : 3;
    if (shutdown_fd >= 0) fds[n++] = {shutdown_fd, POLLIN, 0};
    int rc;
    do {
      rc = poll(fds, n, static_cast<int>(std::min<long long>(left, 1 << 30)));
    } while (rc < 0 && errno == EINTR);
    if (rc <= 0) continue;  // the deadline is checked above
    if (watch_at < 3 && (fds[watch_at].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
      return Wait::kClientGone;  // the caller cancels, or keeps the exchange for a retry
    }
    if (shutdown_at < 3 && (fds[shutdown_at].revents & POLLIN) != 0) {
      cancel();
      return Wait::kShutdown;
    }
    uint64_t count;
    [[maybe_unused]] ssize_t r = read(st.efd, &count, sizeof count);
  }
}

}  // namespace hylo::net
