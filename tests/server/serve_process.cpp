#include "serve_process.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>

#include "common/fixtures.h"

namespace hylo::test {

ServeProcess::~ServeProcess() {
  if (pid_ > 0) stop();
  if (reader_.joinable()) reader_.join();
}

bool ServeProcess::start(bool wait_ready_too) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  std::vector<std::string> argv_s = {hylo_binary(), "serve", "--port", "0"};
  argv_s.insert(argv_s.end(), args_.begin(), args_.end());
  pid_ = fork();
  if (pid_ == 0) {
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    close(fds[1]);
    bool key_given = false;
    for (const auto& a : args_) key_given = key_given || a == "--api-key";
    if (!key_given) unsetenv("HYLO_API_KEY");
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  err_fd_ = fds[0];
  reader_ = std::thread([this] { read_log(); });
  if (!wait_for_log("listening on http://")) {
    ADD_FAILURE() << "hylo serve did not print its URL:\n" << log();
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    const size_t at = log_.find("listening on http://");
    const size_t colon = log_.find(':', at + 20);
    port_ = std::atoi(log_.c_str() + colon + 1);
  }
  return !wait_ready_too || wait_ready();
}

bool ServeProcess::wait_ready() {
  httplib::Client c = client();
  for (int attempt = 0; attempt < 3000; ++attempt) {
    auto res = c.Get("/health");
    if (res && res->status == 200) return true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (eof_) break;  // the process is gone
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "hylo serve did not become ready:\n" << log();
  return false;
}

int ServeProcess::stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  return wait_exit();
}

int ServeProcess::wait_exit() {
  if (pid_ <= 0) return -1;
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  if (reader_.joinable()) reader_.join();
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

httplib::Client ServeProcess::client() const {
  httplib::Client c("127.0.0.1", port_);
  c.set_read_timeout(120, 0);
  c.set_connection_timeout(10, 0);
  return c;
}

std::string ServeProcess::log() const {
  std::lock_guard<std::mutex> lock(mu_);
  return log_;
}

bool ServeProcess::wait_for_log(const std::string& needle, double timeout_s) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::duration<double>(timeout_s), [&] {
    return log_.find(needle) != std::string::npos || eof_;
  }) && log_.find(needle) != std::string::npos;
}

void ServeProcess::read_log() {
  char buf[4096];
  for (;;) {
    const ssize_t n = read(err_fd_, buf, sizeof buf);
    if (n <= 0) break;
    std::lock_guard<std::mutex> lock(mu_);
    log_.append(buf, static_cast<size_t>(n));
    cv_.notify_all();
  }
  close(err_fd_);
  std::lock_guard<std::mutex> lock(mu_);
  eof_ = true;
  cv_.notify_all();
}

namespace {

HttpReply reply_of(const httplib::Result& r) {
  HttpReply out;
  if (!r) return out;
  out.status = r->status;
  out.body = r->body;
  out.headers = r->headers;
  out.json = nlohmann::json::parse(out.body, nullptr, /*allow_exceptions=*/false);
  return out;
}

}  // namespace

HttpReply get(httplib::Client& c, const std::string& path, const httplib::Headers& headers) {
  return reply_of(c.Get(path, headers));
}

HttpReply post_json(httplib::Client& c, const std::string& path, const nlohmann::json& body,
                    const httplib::Headers& headers) {
  return reply_of(c.Post(path, headers, body.dump(), "application/json"));
}

HttpReply post_stream(httplib::Client& c, const std::string& path, const nlohmann::json& body,
                      const std::function<bool(const std::string&)>& on_event, bool ndjson,
                      const httplib::Headers& headers) {
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.headers = headers;
  req.set_header("Content-Type", "application/json");
  req.body = body.dump();
  std::string all, pending;
  const std::string separator = ndjson ? "\n" : "\n\n";
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    all.append(data, n);
    pending.append(data, n);
    for (size_t at; (at = pending.find(separator)) != std::string::npos;) {
      const std::string event = pending.substr(0, at);
      pending.erase(0, at + separator.size());
      if (!on_event(event)) return false;
    }
    return true;
  };
  auto r = c.send(req);
  HttpReply out;
  out.body = all;
  if (r) {
    out.status = r->status;
    out.headers = r->headers;
    if (out.body.empty()) out.body = r->body;
  }
  out.json = nlohmann::json::parse(out.body, nullptr, false);
  return out;
}

int connect_loopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{60, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool send_bytes(int fd, const std::string& bytes) {
  size_t at = 0;
  while (at < bytes.size()) {
    const ssize_t n = send(fd, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
    if (n <= 0) return false;
    at += static_cast<size_t>(n);
  }
  return true;
}

std::string read_until_close(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string raw_exchange(int port, const std::string& request) {
  const int fd = connect_loopback(port);
  if (fd < 0) return {};
  send_bytes(fd, request);
  std::string out = read_until_close(fd);
  close(fd);
  return out;
}

int status_of(const std::string& response) {
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return 0;
  return std::atoi(response.c_str() + 9);
}

std::string body_of(const std::string& response) {
  const size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? std::string() : response.substr(at + 4);
}

uint64_t rss_bytes(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  return 0;
}

}  // namespace hylo::test
