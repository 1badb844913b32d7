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
