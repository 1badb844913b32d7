// A fake upstream server for router tests (in-process, on a free loopback port). What it does is
// picked by the request's "model": ok, tools, fail500, r429, hang (no answer until released),
// slowhead (answers once released), cut (the stream breaks off), stall (one chunk, then silence), endless (streams
// until the client hangs up). It logs every request and every stream whose client went away.
#pragma once

#include <httplib.h>

#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace hylo::test {

class FakeUpstream {
 public:
  struct Entry {
    std::string path, model, authorization;
    nlohmann::json body;
    bool has_private_header = false;
  };

  FakeUpstream();
  ~FakeUpstream();  // releases hanging handlers, stops
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Entry> entries() const;
  // "slowhead" requests answer (as "ok") once this is called.
  void release_slow();
  // Waits (bounded by timeout_s) until `n` streams saw their client go away.
  bool wait_for_hangups(int n, double timeout_s);

 private:
  void handle(const httplib::Request& req, httplib::Response& res);
  bool wait_released(double timeout_s);

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Entry> entries_;
  int hangups_ = 0;
  bool released_ = false, slow_released_ = false;
};

}  // namespace hylo::test
