// Many models in one server: loads a catalog's models on demand, keeps each loaded while requests
// use it and for its keep-alive after (Ollama's semantics), and admits a load only when the cost
// model's memory figure fits beside the models already loaded, unloading the least recently used
// idle ones first, or refusing with the names of those that hold the memory. One copy per name,
// and one load or unload at a time, on the manager's own thread. Loading itself is the app's
// (ModelHooks): the server does not know how a session is opened.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "server/api_error.h"
#include "server/backend.h"
#include "server/model_catalog.h"

namespace hylo::server {

// What a definition will hold once loaded, worked out from the file's header before loading.
struct ModelPlan {
  ModelDescription description;
  int32_t n_ctx = 0;  // per slot
  int n_slots = 1;
  uint64_t memory_bytes = 0;  // weights + KV cache + recurrent state + buffers + prefix cache
  uint64_t cache_bytes = 0;   // of which the prefix cache's budget
  std::string ctx_reason;
};

struct ModelHooks {
  std::function<Result<ModelPlan>(const ModelDefinition&)> plan;
  // Loads the model as planned; the Backend owns what it borrows (Backend::owner).
  std::function<Result<std::shared_ptr<Backend>>(const ModelDefinition&, const ModelPlan&)> load;
};

struct ModelManagerOptions {
  uint64_t memory_limit = 0;  // bytes all loaded models may hold together
  double keep_alive = 300;    // seconds an idle model stays loaded (< 0: forever), unless it or a request says
  int max_loaded = 0;         // > 0: at most this many models loaded at once
};

class ModelManager;

// A model in use: loaded, and not unloaded while this is held. Dropping it ends the use (the
// keep-alive starts when the last one goes).
class ModelLease {
 public:
  ~ModelLease();
  ModelLease(const ModelLease&) = delete;
  ModelLease& operator=(const ModelLease&) = delete;
  const std::shared_ptr<Backend>& backend() const { return backend_; }
  const std::string& name() const { return name_; }

 private:
  friend class ModelManager;
  ModelLease(std::shared_ptr<ModelManager> m, std::string name, std::shared_ptr<Backend> b,
             std::optional<double> keep_alive)
      : manager_(std::move(m)), name_(std::move(name)), backend_(std::move(b)), keep_alive_(keep_alive) {}
  std::shared_ptr<ModelManager> manager_;
  std::string name_;
  std::shared_ptr<Backend> backend_;
  std::optional<double> keep_alive_;
};

// A request for a model: resolved at once when it is loaded, else when its load ends.
class ModelTicket {
 public:
  ModelTicket();
  ~ModelTicket();
  ModelTicket(const ModelTicket&) = delete;
  ModelTicket& operator=(const ModelTicket&) = delete;
  bool done() const;
  // Blocks until resolved, the client hangs up, the shutdown descriptor is readable, or
  // timeout_ms passes (-1: no timeout). Returns "resolved", "timeout", "gone" or "shutdown".
  enum class Wake { kReady, kTimeout, kClientGone, kShutdown };
  Wake wait(int client_fd, int shutdown_fd, int timeout_ms) const;
  // Once done: the lease, or the error.
  std::shared_ptr<ModelLease> lease() const;
  std::optional<ApiError> error() const;

 private:
  friend class ModelManager;
  void resolve(std::shared_ptr<ModelLease> lease, std::optional<ApiError> error);
  mutable std::mutex mu_;
  bool done_ = false;
  std::shared_ptr<ModelLease> lease_;
  std::optional<ApiError> error_;
  int efd_ = -1;
};

class ModelManager : public std::enable_shared_from_this<ModelManager> {
 public:
  ModelManager(std::vector<ModelDefinition> catalog, ModelHooks hooks, ModelManagerOptions options);
  ~ModelManager();  // unloads everything (call once no lease is held)
  ModelManager(const ModelManager&) = delete;
  ModelManager& operator=(const ModelManager&) = delete;

  void start();  // the manager's thread
  void stop();   // fails waiting tickets, unloads every model, joins the thread

  const std::vector<ModelDefinition>& catalog() const { return catalog_; }
  const ModelDefinition* find(const std::string& name) const;
  std::vector<std::string> names() const;
  // "unknown model 'x'; this server has: a, b, c"
  ApiError unknown(const std::string& name) const;

  // Asks for a model (loading it when needed). `keep_alive` (seconds, < 0 forever) is how long it
  // stays loaded after this use; nullopt: its definition's or the server's.
  std::shared_ptr<ModelTicket> acquire(const std::string& name, std::optional<double> keep_alive = std::nullopt);
  // Unloads the model now when idle, else once its running requests finish. False: not loaded.
  bool unload(const std::string& name);
  // The most recently used loaded model ("": none).
  std::string most_recent() const;

  // What each model is: plan (when worked out), state, expiry. For the listing endpoints.
  struct Status {
    const ModelDefinition* definition = nullptr;
    std::optional<ModelPlan> plan;
    std::string state;  // "unloaded", "loading", "loaded"
    int active = 0;     // requests using it
    bool forever = false;
    std::chrono::system_clock::time_point expires;
    uint64_t memory_bytes = 0;           // counted against the limit while loaded or loading
    std::shared_ptr<Backend> backend;    // loaded: for engine statistics (do not keep)
    uint64_t loads = 0, requests = 0;
    std::map<std::string, uint64_t> unloads;  // by reason: idle, memory, request
    double load_seconds = 0;                  // of the last load
    std::string last_error;
  };
  std::vector<Status> status(bool with_plans) const;
  // The plan of one model (worked out now when needed).
  Result<ModelPlan> plan_of(const std::string& name);
  uint64_t memory_limit() const { return opt_.memory_limit; }
  std::string metrics() const;  // Prometheus lines, per model

 private:
  friend class ModelLease;
  using Clock = std::chrono::steady_clock;
  struct Entry {
    const ModelDefinition* def = nullptr;
    std::string file_key;  // the file's canonical path: two names of one file are never both loaded
    std::optional<ModelPlan> plan;
    enum class State { kUnloaded, kQueued, kLoading, kLoaded } state = State::kUnloaded;
    std::shared_ptr<Backend> backend;
    uint64_t charge = 0;
    int active = 0;
    Clock::time_point last_used{};
    std::optional<Clock::time_point> expires;  // nullopt: never (while idle)
    bool unload_when_idle = false;
    std::vector<std::pair<std::shared_ptr<ModelTicket>, std::optional<double>>> waiters;
    uint64_t loads = 0, requests = 0;
    std::map<std::string, uint64_t> unloads;
    double load_seconds = 0;
    std::string last_error;
  };
  void release(const std::string& name, std::optional<double> keep_alive);
  void loop();
  std::shared_ptr<ModelLease> lease_locked(Entry& e, std::optional<double> keep_alive);
  double keep_alive_of(const Entry& e, std::optional<double> asked) const;
  // Under mu_: models to unload so that `need` more bytes fit (and one more model under
  // max_loaded), least recently used first; nullopt with the refusal when busy models hold it.
  std::optional<std::vector<std::string>> make_room(const std::string& name, uint64_t need, std::string* refusal);
  void unload_now(std::unique_lock<std::mutex>& lock, Entry& e, const char* reason);

  std::vector<ModelDefinition> catalog_;
  ModelHooks hooks_;
  ModelManagerOptions opt_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Entry> entries_;
  std::deque<std::string> load_queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace hylo::server
