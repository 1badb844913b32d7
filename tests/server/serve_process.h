// A `hylo serve` child process for end-to-end tests: started with --port 0 on a fixture model,
// its URL read from stderr ("listening on http://HOST:PORT"), ready once /health answers 200.
#pragma once

#include <httplib.h>
#include <sys/types.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace hylo::test {

class ServeProcess {
 public:
  // `args` follow "hylo serve" ("-m", path, "--parallel", "4", ...); "--port 0" is added.
  explicit ServeProcess(std::vector<std::string> args) : args_(std::move(args)) {}
  ~ServeProcess();
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  // Starts the process and waits for its URL; with `wait_ready`, also for /health = 200.
  bool start(bool wait_ready = true);
  // Polls /health a bounded number of times until it answers 200.
  bool wait_ready();
  // SIGTERM, then the exit status (-1 if it did not exit normally).
  int stop();
  // Waits for the process to exit by itself; its exit status.
  int wait_exit();

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  httplib::Client client() const;
  std::string log() const;
  // Waits (on the log reader, bounded by `timeout_s`) until stderr contains `needle`.
  bool wait_for_log(const std::string& needle, double timeout_s = 60);

 private:
  void read_log();

  std::vector<std::string> args_;
  pid_t pid_ = -1;
  int err_fd_ = -1;
  int port_ = 0;
  std::thread reader_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string log_;
  bool eof_ = false;
};

// Raw HTTP over one loopback connection, for requests httplib's client will not send. Reads are
// bounded by a 60 s receive timeout (a safety net, not a timing assumption).
int connect_loopback(int port);  // -1 on failure
bool send_bytes(int fd, const std::string& bytes);
std::string read_until_close(int fd);
// Sends `request` on a new connection and reads until the server closes it.
std::string raw_exchange(int port, const std::string& request);
int status_of(const std::string& response);  // the status of a raw response, 0 if none
std::string body_of(const std::string& response);
// A process's resident memory (VmRSS) in bytes, 0 if unknown.
uint64_t rss_bytes(pid_t pid);

struct HttpReply {
  int status = 0;  // 0: no answer (connection failed or the caller hung up)
  std::string body;
  nlohmann::json json;  // the body parsed (discarded when it is not JSON)
  httplib::Headers headers;
};

HttpReply get(httplib::Client& c, const std::string& path, const httplib::Headers& headers = {});
HttpReply post_json(httplib::Client& c, const std::string& path, const nlohmann::json& body,
                    const httplib::Headers& headers = {});
// Streams a POST. `on_event` gets each server-sent event ("data: {...}", ": ping") or, with
// ndjson, each line; returning false hangs up. The reply's body holds everything received.
HttpReply post_stream(httplib::Client& c, const std::string& path, const nlohmann::json& body,
                      const std::function<bool(const std::string&)>& on_event, bool ndjson = false,
                      const httplib::Headers& headers = {});

}  // namespace hylo::test
