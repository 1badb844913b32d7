#include "server/model_manager.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "base/log.h"
#include "base/strings.h"
#include "base/timer.h"

namespace hylo::server {

// --- ModelLease, ModelTicket ---------------------------------------------------------------

ModelLease::~ModelLease() {
  backend_.reset();  // before the use ends: when it is the last, nothing else holds the model
  manager_->release(name_, keep_alive_);
}

ModelTicket::ModelTicket() : efd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

ModelTicket::~ModelTicket() {
  if (efd_ >= 0) close(efd_);
}

bool ModelTicket::done() const {
  std::lock_guard<std::mutex> lock(mu_);
  return done_;
}

std::shared_ptr<ModelLease> ModelTicket::lease() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lease_;
}

std::optional<ApiError> ModelTicket::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

void ModelTicket::resolve(std::shared_ptr<ModelLease> lease, std::optional<ApiError> error) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    lease_ = std::move(lease);
    error_ = std::move(error);
    done_ = true;
  }
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(efd_, &one, sizeof one);
}

ModelTicket::Wake ModelTicket::wait(int client_fd, int shutdown_fd, int timeout_ms) const {
  if (done()) return Wake::kReady;
  pollfd fds[3];
  nfds_t n = 0;
  fds[n++] = {efd_, POLLIN, 0};
  const nfds_t client_at = client_fd >= 0 ? n : 3;
  if (client_fd >= 0) fds[n++] = {client_fd, POLLRDHUP, 0};
  const nfds_t shutdown_at = shutdown_fd >= 0 ? n : 3;
  if (shutdown_fd >= 0) fds[n++] = {shutdown_fd, POLLIN, 0};
  int rc;
  do {
    rc = poll(fds, n, timeout_ms);
  } while (rc < 0 && errno == EINTR);
  if (done()) return Wake::kReady;
  if (rc <= 0) return Wake::kTimeout;
  if (client_at < 3 && (fds[client_at].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) return Wake::kClientGone;
  if (shutdown_at < 3 && (fds[shutdown_at].revents & POLLIN) != 0) return Wake::kShutdown;
  return Wake::kTimeout;
}

// --- ModelManager ---------------------------------------------------------------------------

ModelManager::ModelManager(std::vector<ModelDefinition> catalog, ModelHooks hooks, ModelManagerOptions options)
    : catalog_(std::move(catalog)), hooks_(std::move(hooks)), opt_(options) {
  for (const ModelDefinition& d : catalog_) {
    Entry& e = entries_[d.name];
    e.def = &d;
    std::error_code ec;
    const std::filesystem::path p = std::filesystem::weakly_canonical(d.file, ec);
    e.file_key = ec ? d.file : p.string();
  }
}

ModelManager::~ModelManager() { stop(); }

void ModelManager::start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
}

void ModelManager::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    if (thread_.get_id() == std::this_thread::get_id())
      thread_.detach();
    else
      thread_.join();
  }
}

const ModelDefinition* ModelManager::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second.def;
}

std::vector<std::string> ModelManager::names() const {
  std::vector<std::string> out;
  for (const ModelDefinition& d : catalog_) out.push_back(d.name);
  return out;
}

ApiError ModelManager::unknown(const std::string& name) const {
  std::string list;
  size_t shown = 0;
  for (const ModelDefinition& d : catalog_) {
    if (shown++ == 50) {
      list += fmt::format(" and {} more (GET /v1/models)", catalog_.size() - 50);
      break;
    }
    list += (list.empty() ? "" : ", ") + d.name;
  }
  ApiError e{ApiError::Kind::kModelNotFound,
             fmt::format("model '{}' not found; this server has: {}", name.substr(0, 200), list.empty() ? "none" : list)};
  e.param = "model";
  return e;
}

std::shared_ptr<ModelTicket> ModelManager::acquire(const std::string& name, std::optional<double> keep_alive) {
  auto ticket = std::make_shared<ModelTicket>();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    ticket->resolve(nullptr, unknown(name));
    return ticket;
  }
  if (stopping_) {
    ticket->resolve(nullptr, ApiError{ApiError::Kind::kShuttingDown, "the server is shutting down"});
    return ticket;
  }
  Entry& e = it->second;
  ++e.requests;
  e.unload_when_idle = false;  // asked for again
  if (e.state == Entry::State::kLoaded) {
    ticket->resolve(lease_locked(e, keep_alive), std::nullopt);
    return ticket;
  }
  e.waiters.emplace_back(ticket, keep_alive);
  if (e.state == Entry::State::kUnloaded) {
    e.state = Entry::State::kQueued;
    load_queue_.push_back(name);
    cv_.notify_all();
  }
  return ticket;
}

std::shared_ptr<ModelLease> ModelManager::lease_locked(Entry& e, std::optional<double> keep_alive) {
  ++e.active;
  e.last_used = Clock::now();
  e.expires.reset();
  return std::shared_ptr<ModelLease>(new ModelLease(shared_from_this(), e.def->name, e.backend, keep_alive));
}

double ModelManager::keep_alive_of(const Entry& e, std::optional<double> asked) const {
  if (asked) return *asked;
  if (e.def->keep_alive) return *e.def->keep_alive;
  return opt_.keep_alive;
}

void ModelManager::release(const std::string& name, std::optional<double> keep_alive) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Entry& e = entries_.at(name);
    if (e.active > 0) --e.active;
    e.last_used = Clock::now();
    if (e.active > 0) return;
    const double k = keep_alive_of(e, keep_alive);
    if (e.unload_when_idle || k == 0)
      e.expires = e.last_used;
    else if (k < 0)
      e.expires.reset();
    else
      e.expires = e.last_used + std::chrono::microseconds(static_cast<int64_t>(std::min(k, 1e9) * 1e6));
  }
  cv_.notify_all();
}

bool ModelManager::unload(const std::string& name) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(name);
    if (it == entries_.end()) return false;
    Entry& e = it->second;
    if (e.state == Entry::State::kUnloaded) return false;
    e.unload_when_idle = true;
    if (e.state == Entry::State::kLoaded && e.active == 0) e.expires = Clock::now();
  }
  cv_.notify_all();
  return true;
}

std::string ModelManager::most_recent() const {
  std::lock_guard<std::mutex> lock(mu_);
  const Entry* best = nullptr;
  for (const auto& [name, e] : entries_)
    if (e.state == Entry::State::kLoaded && (!best || e.last_used > best->last_used)) best = &e;
  return best ? best->def->name : "";
}

std::optional<std::vector<std::string>> ModelManager::make_room(const std::string& name, uint64_t need,
                                                                std::string* refusal) {
  uint64_t used = 0;
  int loaded = 0;
  std::vector<const Entry*> idle;
  for (const auto& [n, e] : entries_) {
    if (n == name || (e.state != Entry::State::kLoaded && e.state != Entry::State::kLoading)) continue;
    used += e.charge;
    ++loaded;
    if (e.state == Entry::State::kLoaded && e.active == 0) idle.push_back(&e);
  }
  std::sort(idle.begin(), idle.end(), [](const Entry* a, const Entry* b) { return a->last_used < b->last_used; });
  std::vector<std::string> victims;
  // One file is loaded once: another name of it gives way when idle, else the request waits its turn.
  const std::string& file = entries_.at(name).file_key;
  for (const auto& [n, e] : entries_) {
    if (n == name || e.file_key != file || (e.state != Entry::State::kLoaded && e.state != Entry::State::kLoading))
      continue;
    if (e.state == Entry::State::kLoading || e.active > 0) {
      *refusal = fmt::format("cannot load model '{}': its file is loaded as model '{}' ({}), and one file is loaded "
                             "once; try again when that has finished",
                             name, n, e.state == Entry::State::kLoading ? "loading"
                                                                        : fmt::format("{} request(s) running", e.active));
      return std::nullopt;
    }
    victims.push_back(n);
    used -= e.charge;
    --loaded;
    idle.erase(std::remove(idle.begin(), idle.end(), &e), idle.end());
  }
  size_t next = 0;
  auto over = [&] { return used + need > opt_.memory_limit || (opt_.max_loaded > 0 && loaded + 1 > opt_.max_loaded); };
  while (over()) {
    if (next == idle.size()) {
      std::string holders;
      for (const auto& [n, e] : entries_) {
        if (n == name || (e.state != Entry::State::kLoaded && e.state != Entry::State::kLoading)) continue;
        if (std::find(victims.begin(), victims.end(), n) != victims.end()) continue;
        holders += fmt::format("{}'{}' ({}, {})", holders.empty() ? "" : ", ", n, format_bytes(e.charge),
                               e.state == Entry::State::kLoading ? "loading"
                                                                 : fmt::format("{} request(s) running", e.active));
      }
      if (opt_.max_loaded > 0 && loaded + 1 > opt_.max_loaded && used + need <= opt_.memory_limit)
        *refusal = fmt::format("cannot load model '{}': {} models are loaded (--models-max) and none is idle: {}; "
                               "try again when one has finished",
                               name, opt_.max_loaded, holders);
      else
        *refusal = fmt::format(
            "not enough memory to load model '{}' ({} needed, {} of the {} limit free): held by {}; try again when "
            "one of them has finished",
            name, format_bytes(need), format_bytes(opt_.memory_limit > used ? opt_.memory_limit - used : 0),
            format_bytes(opt_.memory_limit), holders.empty() ? "nothing else" : holders);
      return std::nullopt;
    }
    const Entry* v = idle[next++];
    victims.push_back(v->def->name);
    used -= v->charge;
    --loaded;
  }
  return victims;
}

void ModelManager::unload_now(std::unique_lock<std::mutex>& lock, Entry& e, const char* reason) {
  std::shared_ptr<Backend> b = std::move(e.backend);
  e.state = Entry::State::kUnloaded;
  e.charge = 0;
  e.expires.reset();
  e.unload_when_idle = false;
  ++e.unloads[reason];
  const std::string name = e.def->name;
  lock.unlock();
  std::weak_ptr<Backend> gone = b;
  b.reset();
  // A listing may hold it for a moment; memory counts as free only once it is.
  for (int i = 0; i < 100000 && !gone.expired(); ++i) std::this_thread::sleep_for(std::chrono::microseconds(100));
  log_info("[models] unloaded '{}' ({})", name, reason);
  lock.lock();
}

void ModelManager::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  auto fail = [&](Entry& e, const ApiError& error) {
    e.state = Entry::State::kUnloaded;
    e.charge = 0;
    e.last_error = error.message;
    for (auto& [t, ka] : e.waiters) t->resolve(nullptr, error);
    e.waiters.clear();
  };
  while (!stopping_) {
    // Idle models whose keep-alive ran out.
    bool unloaded = false;
    const Clock::time_point now = Clock::now();
    for (auto& [n, e] : entries_) {
      if (e.state == Entry::State::kLoaded && e.active == 0 && e.expires && *e.expires <= now) {
        unload_now(lock, e, e.unload_when_idle ? "request" : "idle");
        unloaded = true;
        break;
      }
    }
    if (unloaded) continue;
    if (!load_queue_.empty()) {
      const std::string name = load_queue_.front();
      load_queue_.pop_front();
      Entry& e = entries_.at(name);
      if (e.state != Entry::State::kQueued) continue;
      if (!e.plan) {
        lock.unlock();
        Result<ModelPlan> p = hooks_.plan(*e.def);
        lock.lock();
        if (!p.ok()) {
          fail(e, ApiError::internal(fmt::format("cannot load model '{}': {}", name, p.message())));
          continue;
        }
        e.plan = std::move(*p);
      }
      const uint64_t need = e.plan->memory_bytes;
      if (need > opt_.memory_limit) {
        ApiError err{ApiError::Kind::kNoMemory,
                     fmt::format("model '{}' needs {} (weights, KV cache for {} slot(s) of {} tokens, buffers), more "
                                 "than the {} all models may use (--models-memory); give it a smaller context",
                                 name, format_bytes(need), e.plan->n_slots, e.plan->n_ctx,
                                 format_bytes(opt_.memory_limit))};
        fail(e, err);
        continue;
      }
      bool refused = false;
      for (int round = 0; round < 64; ++round) {
        std::string refusal;
        auto victims = make_room(name, need, &refusal);
        if (!victims) {
          log_warn("[models] {}", refusal);
          fail(e, ApiError{ApiError::Kind::kNoMemory, refusal});
          refused = true;
          break;
        }
        if (victims->empty()) break;
        for (const std::string& v : *victims) {
          Entry& ve = entries_.at(v);
          if (ve.state == Entry::State::kLoaded && ve.active == 0)
            unload_now(lock, ve, ve.file_key == e.file_key ? "same_file" : "memory");
        }
      }
      if (refused) continue;
      e.state = Entry::State::kLoading;
      e.charge = need;
      const ModelPlan plan = *e.plan;
      lock.unlock();
      log_info("[models] loading '{}' from {} ({}, {} slot(s) of {} tokens)", name, e.def->file, format_bytes(need),
               plan.n_slots, plan.n_ctx);
      Timer timer;
      Result<std::shared_ptr<Backend>> b = hooks_.load(*e.def, plan);
      const double seconds = timer.seconds();
      lock.lock();
      if (!b.ok()) {
        log_warn("[models] cannot load '{}': {}", name, b.message());
        fail(e, ApiError::internal(fmt::format("cannot load model '{}': {}", name, b.message())));
        continue;
      }
      e.backend = std::move(*b);
      e.state = Entry::State::kLoaded;
      ++e.loads;
      e.load_seconds = seconds;
      e.last_error.clear();
      e.last_used = Clock::now();
      log_info("[models] loaded '{}' in {:.2f} s", name, seconds);
      // A ticket whose client left may hold the last reference to its lease, whose end takes mu_:
      // the tickets are resolved and let go with the lock released.
      auto waiters = std::move(e.waiters);
      e.waiters.clear();
      std::vector<std::shared_ptr<ModelLease>> leases;
      for (auto& [t, ka] : waiters) leases.push_back(lease_locked(e, ka));
      if (waiters.empty()) e.expires = e.last_used + std::chrono::microseconds(
                                                         static_cast<int64_t>(std::max(0.0, keep_alive_of(e, {})) * 1e6));
      lock.unlock();
      for (size_t i = 0; i < waiters.size(); ++i) waiters[i].first->resolve(std::move(leases[i]), std::nullopt);
      waiters.clear();
      leases.clear();
      lock.lock();
      continue;
    }
    std::optional<Clock::time_point> next;
    for (const auto& [n, e] : entries_)
      if (e.state == Entry::State::kLoaded && e.active == 0 && e.expires && (!next || *e.expires < *next))
        next = e.expires;
    if (next)
      cv_.wait_until(lock, *next);
    else
      cv_.wait(lock);
  }
  for (auto& [n, e] : entries_) {
    for (auto& [t, ka] : e.waiters) t->resolve(nullptr, ApiError{ApiError::Kind::kShuttingDown, "the server is shutting down"});
    e.waiters.clear();
    if (e.state == Entry::State::kLoaded) unload_now(lock, e, "shutdown");
  }
}

std::vector<ModelManager::Status> ModelManager::status(bool with_plans) const {
  std::vector<Status> out;
  std::lock_guard<std::mutex> lock(mu_);
  const auto steady_now = Clock::now();
  const auto wall_now = std::chrono::system_clock::now();
  for (const ModelDefinition& d : catalog_) {
    const Entry& e = entries_.at(d.name);
    Status s;
    s.definition = &d;
    if (with_plans) s.plan = e.plan;
    s.state = e.state == Entry::State::kLoaded                                           ? "loaded"
              : e.state == Entry::State::kLoading || e.state == Entry::State::kQueued ? "loading"
                                                                                        : "unloaded";
    s.active = e.active;
    s.memory_bytes = e.charge;
    s.backend = e.backend;
    if (e.state == Entry::State::kLoaded) {
      if (e.active > 0) {
        const double k = keep_alive_of(e, std::nullopt);
        s.forever = k < 0;
        s.expires = wall_now + std::chrono::microseconds(static_cast<int64_t>(std::max(0.0, std::min(k, 1e9)) * 1e6));
      } else if (!e.expires) {
        s.forever = true;
      } else {
        s.expires = wall_now + std::chrono::duration_cast<std::chrono::system_clock::duration>(*e.expires - steady_now);
      }
    }
    s.loads = e.loads;
    s.requests = e.requests;
    s.unloads = e.unloads;
    s.load_seconds = e.load_seconds;
    s.last_error = e.last_error;
    out.push_back(std::move(s));
  }
  return out;
}

Result<ModelPlan> ModelManager::plan_of(const std::string& name) {
  const ModelDefinition* d = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(name);
    if (it == entries_.end()) return make_error("unknown model '{}'", name);
    if (it->second.plan) return *it->second.plan;
    d = it->second.def;
  }
  HYLO_ASSIGN_OR_RETURN(ModelPlan p, hooks_.plan(*d));
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = entries_.at(name);
  if (!e.plan) e.plan = p;
  return *e.plan;
}

std::string ModelManager::metrics() const {
  std::string out;
  const std::vector<Status> all = status(false);
  auto family = [&](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  uint64_t used = 0;
  for (const Status& s : all) used += s.memory_bytes;
  family("hylo_models_memory_limit_bytes", "gauge", "Memory all loaded models may hold together (--models-memory)");
  out += fmt::format("hylo_models_memory_limit_bytes {}\n", opt_.memory_limit);
  family("hylo_models_memory_used_bytes", "gauge", "Memory counted for the models loaded or loading");
  out += fmt::format("hylo_models_memory_used_bytes {}\n", used);
  family("hylo_models_loaded", "gauge", "1 while the model is loaded");
  for (const Status& s : all)
    out += fmt::format("hylo_models_loaded{{model=\"{}\"}} {}\n", prometheus_label(s.definition->name), s.state == "loaded" ? 1 : 0);
  family("hylo_models_memory_bytes", "gauge", "Memory counted for the model (cost model estimate)");
  for (const Status& s : all)
    out += fmt::format("hylo_models_memory_bytes{{model=\"{}\"}} {}\n", prometheus_label(s.definition->name), s.memory_bytes);
  family("hylo_models_requests_total", "counter", "Requests that asked for the model");
  for (const Status& s : all)
    out += fmt::format("hylo_models_requests_total{{model=\"{}\"}} {}\n", prometheus_label(s.definition->name), s.requests);
  family("hylo_models_active_requests", "gauge", "Requests using the model now");
  for (const Status& s : all)
    out += fmt::format("hylo_models_active_requests{{model=\"{}\"}} {}\n", prometheus_label(s.definition->name), s.active);
  family("hylo_models_loads_total", "counter", "Times the model was loaded");
  for (const Status& s : all)
    out += fmt::format("hylo_models_loads_total{{model=\"{}\"}} {}\n", prometheus_label(s.definition->name), s.loads);
  family("hylo_models_load_seconds", "gauge", "Duration of the model's last load");
  for (const Status& s : all)
    out += fmt::format("hylo_models_load_seconds{{model=\"{}\"}} {:.3f}\n", prometheus_label(s.definition->name), s.load_seconds);
  family("hylo_models_unloads_total", "counter", "Times the model was unloaded, by reason (idle, memory, same_file, request)");
  for (const Status& s : all)
    for (const auto& [reason, n] : s.unloads)
      out += fmt::format("hylo_models_unloads_total{{model=\"{}\",reason=\"{}\"}} {}\n", prometheus_label(s.definition->name),
                         reason, n);
  family("hylo_models_generated_tokens_total", "counter", "Tokens the model generated since it was loaded");
  for (const Status& s : all)
    if (s.backend)
      out += fmt::format("hylo_models_generated_tokens_total{{model=\"{}\"}} {}\n", prometheus_label(s.definition->name),
                         s.backend->engine->stats().generated_tokens);
  family("hylo_models_prompt_tokens_total", "counter", "Prompt tokens the model read since it was loaded");
  for (const Status& s : all)
    if (s.backend)
      out += fmt::format("hylo_models_prompt_tokens_total{{model=\"{}\"}} {}\n", prometheus_label(s.definition->name),
                         s.backend->engine->stats().prompt_tokens);
  return out;
}

}  // namespace hylo::server
