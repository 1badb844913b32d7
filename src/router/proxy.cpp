// The upstream half of the router: one attempt on one upstream (request built or translated,
// head awaited with timeouts, error statuses read), then the answer written back whole or
// streamed as it arrives. A stream that breaks off ends with an explicit error event.
#include <cstdlib>

#include "base/log.h"
#include "net/http_client.h"
#include "router/router.h"
#include "router/translate.h"

namespace hylo::router {

namespace {

constexpr size_t kMaxErrorBody = 64 << 10;      // read of an error answer
constexpr size_t kMaxWholeAnswer = 256u << 20;  // a non-streamed answer held in memory

std::string stream_error_event(Api api, const std::string& message) {
  if (api == Api::kOllama)
    return ojson{{"error", message}}.dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n";
  const ojson e = {{"error", {{"message", message}, {"type", "upstream_error"}, {"param", nullptr}, {"code", 502}}}};
  return "data: " + e.dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n\n";
}

}  // namespace

// Holds one of an upstream's concurrency places for as long as its answer is being written.
class Router::InFlight {
 public:
  explicit InFlight(std::atomic<int>* counter) : counter_(counter) {}
  ~InFlight() { counter_->fetch_sub(1); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  std::atomic<int>* counter_;
};

namespace {

// Drains a streamed upstream answer into the client's chunked response.
class StreamPump {
 public:
  StreamPump(std::shared_ptr<net::Exchange> ex, std::shared_ptr<void> place, Api api, bool translate, bool chat,
             std::string model, std::string upstream, int client_fd, int shutdown_fd,
             std::function<void(const std::string&)> count_event)
      : ex_(std::move(ex)),
        place_(std::move(place)),
        api_(api),
        translate_(translate),
        translator_(chat, std::move(model)),
        scanner_(api == Api::kOpenAI),
        upstream_(std::move(upstream)),
        client_fd_(client_fd),
        shutdown_fd_(shutdown_fd),
        count_event_(std::move(count_event)) {}

  bool step(httplib::DataSink& sink) {
    for (;;) {
      std::string in;
      switch (ex_->next(&in, client_fd_, shutdown_fd_)) {
        case net::Exchange::Wait::kReady: {
          std::string out;
          if (translate_) {
            out = translator_.feed(in);
            if (translator_.failed() || translator_.complete()) return finish(sink, out);
          } else {
            scanner_.feed(in);
            out = std::move(in);
          }
          if (out.empty()) continue;
          if (!sink.write(out.data(), out.size())) return gone();
          return true;
        }
        case net::Exchange::Wait::kEnd: {
          std::string out = translate_ ? translator_.finish() : "";
          const bool whole = translate_ ? translator_.complete() || translator_.failed() : scanner_.complete();
          if (!whole) {
            count_event_("stream_cut");
            out += stream_error_event(
                api_, "upstream " + upstream_ + ": the stream ended before the answer was complete (truncated)");
          }
          return finish(sink, out);
        }
        case net::Exchange::Wait::kFailed:
          count_event_("stream_cut");
          return finish(sink, stream_error_event(
                                  api_, "upstream " + upstream_ + ": the stream broke off (" + ex_->error() + ")"));
        case net::Exchange::Wait::kTimeout:
          count_event_("stream_timeout");
          return finish(sink, stream_error_event(api_, fmt::format("upstream {}: nothing received for {:g} s "
                                                                   "(idle timeout); the answer is incomplete",
                                                                   upstream_, ex_->timeouts().idle)));
        case net::Exchange::Wait::kClientGone:
          return gone();
        case net::Exchange::Wait::kShutdown:
          return finish(sink, stream_error_event(api_, "the server is shutting down"));
      }
    }
  }

 private:
  bool finish(httplib::DataSink& sink, const std::string& out) {
    ex_->cancel();
    if (!out.empty() && !sink.write(out.data(), out.size())) return gone();
    sink.done();
    return true;
  }
  bool gone() {
    ex_->cancel();  // the upstream request ends with the client's
    count_event_("client_gone");
    return false;
  }

  std::shared_ptr<net::Exchange> ex_;
  std::shared_ptr<void> place_;
  Api api_;
  bool translate_;
  SseToNdjson translator_;
  StreamEndScanner scanner_;
  std::string upstream_;
  int client_fd_, shutdown_fd_;
  std::function<void(const std::string&)> count_event_;
};

}  // namespace

Router::Outcome Router::try_upstream(int index, const Call& call, const RoutePlan& plan, const std::string& reason,
                                     httplib::Response& res, std::optional<Failure>* failure) {
  const Upstream& u = config_.upstreams[static_cast<size_t>(index)];
  auto fail = [&](std::string kind, std::string message) {
    *failure = Failure{u.name, std::move(kind), std::move(message)};
    return Outcome::kAnswered;
  };
  const ojson& in = *call.body;
  const std::string client_model =
      in.contains("model") && in["model"].is_string() ? in["model"].get<std::string>() : "";
  const std::string model = u.model.empty() ? client_model : u.model;
  const bool chat = call.kind == Kind::kChat;
  bool translate = false, stream = false;
  std::string path;
  ojson body;
  if (call.api == Api::kOpenAI) {
    path = std::string(u.api == UpstreamApi::kOpenAI ? "" : "/v1") + (chat ? "/chat/completions" : "/completions");
    body = in;
    body["model"] = model;
    stream = in.value("stream", false);
  } else if (u.api == UpstreamApi::kOllama) {
    path = chat ? "/api/chat" : "/api/generate";
    body = in;
    body["model"] = model;
    stream = in.value("stream", true);
  } else {
    auto t = ollama_to_openai(in, chat, model);
    if (!t.ok()) {
      reply_route_error(res, call.api, 400, t.message());
      return Outcome::kAnswered;
    }
    path = t->path;
    body = std::move(t->body);
    translate = true;
    stream = body.value("stream", false);
  }

  httplib::Headers headers = {{"Content-Type", "application/json"}};
  if (stream)
    headers.emplace("Accept", translate || call.api == Api::kOpenAI ? "text/event-stream" : "application/x-ndjson");
  if (!u.key_env.empty()) {
    const char* key = std::getenv(u.key_env.c_str());
    if (key == nullptr || *key == '\0')
      return fail("config", fmt::format("its API key variable {} is not set", u.key_env));
    headers.emplace("Authorization", std::string("Bearer ") + key);
  }

  std::string text = body.dump(-1, ' ', false, ojson::error_handler_t::replace);
  const std::string key = u.name + "\n" + path + "\n" + text;
  std::shared_ptr<net::Exchange> ex;
  std::shared_ptr<InFlight> place;
  if (auto parked = take_parked(key)) {
    count_event("coalesced");
    log_info("[router] upstream {}: a repeated request takes over the one its client left", u.name);
    ex = std::move(parked->exchange);
    place = std::move(parked->place);
  } else {
    std::atomic<int>& counter = in_flight_[static_cast<size_t>(index)];
    if (counter.fetch_add(1) >= u.max_concurrent) {
      counter.fetch_sub(1);
      return fail("busy", fmt::format("its max_concurrent limit of {} requests is reached", u.max_concurrent));
    }
    place = std::make_shared<InFlight>(&counter);
    ex = net::Exchange::start(u.url, "POST", path, std::move(headers), std::move(text), u.timeouts);
  }
  switch (ex->wait_head(call.client_fd, call.shutdown_fd)) {
    case net::Exchange::Wait::kReady:
      break;
    case net::Exchange::Wait::kClientGone:
      count_event("client_gone");
      park(key, std::move(ex), std::move(place), u.timeouts.first_byte);
      res.status = 499;
      return Outcome::kAnswered;
    case net::Exchange::Wait::kShutdown:
      reply_route_error(res, call.api, 503, "the server is shutting down");
      return Outcome::kAnswered;
    case net::Exchange::Wait::kTimeout:
      return fail("timeout", fmt::format("no answer within {:g} s (first_byte_timeout)", u.timeouts.first_byte));
    default:
      return fail("unreachable", fmt::format("cannot reach {} ({})", u.url.text(), ex->error()));
  }

  // Reads the rest of a body; false when it broke off or took too long (the failure is set).
  auto read_all = [&](std::string* out, size_t limit) {
    for (;;) {
      switch (ex->next(out, call.client_fd, call.shutdown_fd)) {
        case net::Exchange::Wait::kReady:
          if (out->size() > limit) {
            fail("invalid", fmt::format("its answer is larger than {} bytes", limit));
            return false;
          }
          continue;
        case net::Exchange::Wait::kEnd:
          return true;
        case net::Exchange::Wait::kTimeout:
          fail("timeout", fmt::format("the answer stalled for {:g} s (idle_timeout)", u.timeouts.idle));
          return false;
        case net::Exchange::Wait::kClientGone:
          count_event("client_gone");
          res.status = 499;
          return false;
        case net::Exchange::Wait::kShutdown:
          reply_route_error(res, call.api, 503, "the server is shutting down");
          return false;
        case net::Exchange::Wait::kFailed:
          fail("unreachable", "the answer broke off (" + ex->error() + ")");
          return false;
      }
    }
  };

  const int status = ex->status();
  const std::string content_type =
      ex->headers().count("Content-Type") ? ex->headers().find("Content-Type")->second : "";
  if (status == 429 || status >= 500 || status < 200) {
    std::string err;
    if (!read_all(&err, kMaxErrorBody) && !*failure) return Outcome::kAnswered;
    return fail(status == 429 ? "http_429" : "http_5xx", fmt::format("HTTP {}: {}", status, error_message_of(err)));
  }
  res.set_header("X-Hylo-Route", u.name);
  std::string why = reason;
  for (char& c : why)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  res.set_header("X-Hylo-Route-Reason", why.substr(0, 300));
  log_info("[router] model '{}' -> {} ({})", client_model, u.name, reason);
  (void)plan;

  if (status >= 300) {  // the request itself was refused there: the client's error, no fallback
    std::string err;
    if (!read_all(&err, kMaxErrorBody)) return Outcome::kAnswered;
    count(u.name);
    const std::string message = fmt::format("upstream {}: HTTP {}: {}", u.name, status, error_message_of(err));
    if (!translate && call.api == Api::kOpenAI && content_type.find("json") != std::string::npos) {
      res.status = status;
      res.set_content(err, "application/json");
    } else {
      reply_route_error(res, call.api, status, message);
    }
    return Outcome::kAnswered;
  }

  if (!stream) {
    std::string whole;
    if (!read_all(&whole, kMaxWholeAnswer)) return Outcome::kAnswered;  // a failure falls back
    if (translate) {
      const ojson answer = ojson::parse(whole, nullptr, /*allow_exceptions=*/false);
      if (!answer.is_object()) return fail("invalid", "its answer is not JSON");
      res.status = 200;
      res.set_content(
          openai_to_ollama_answer(answer, chat, client_model, 0).dump(-1, ' ', false, ojson::error_handler_t::replace),
          "application/json");
    } else {
      res.status = 200;
      res.set_content(whole, content_type.empty() ? "application/json" : content_type);
    }
    count(u.name);
    return Outcome::kAnswered;
  }

  count(u.name);
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  const char* type = call.api == Api::kOllama ? "application/x-ndjson" : "text/event-stream";
  auto pump = std::make_shared<StreamPump>(ex, place, call.api, translate, chat, client_model, u.name, call.client_fd,
                                           call.shutdown_fd, [this](const std::string& e) { count_event(e); });
  res.set_chunked_content_provider(type, [pump](size_t, httplib::DataSink& sink) { return pump->step(sink); });
  return Outcome::kAnswered;
}

void Router::park(const std::string& key, std::shared_ptr<net::Exchange> ex, std::shared_ptr<InFlight> place,
                  double seconds) {
  constexpr size_t kMaxParked = 64;
  const auto now = std::chrono::steady_clock::now();
  std::vector<Parked> dropped;  // cancelled outside the lock (by their destructors)
  {
    std::lock_guard<std::mutex> lock(parked_mu_);
    for (auto it = parked_.begin(); it != parked_.end();) {
      if (it->second.until <= now || parked_.size() >= kMaxParked) {
        dropped.push_back(std::move(it->second));
        it = parked_.erase(it);
      } else {
        ++it;
      }
    }
    auto until =
        now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
    auto [it, fresh] = parked_.try_emplace(key, Parked{ex, place, until});
    if (!fresh) dropped.push_back(Parked{std::move(ex), std::move(place), until});  // one is enough
  }
  count_event("parked");
}

std::optional<Router::Parked> Router::take_parked(const std::string& key) {
  std::lock_guard<std::mutex> lock(parked_mu_);
  auto it = parked_.find(key);
  if (it == parked_.end()) return std::nullopt;
  Parked p = std::move(it->second);
  parked_.erase(it);
  if (p.until <= std::chrono::steady_clock::now()) return std::nullopt;
  return p;
}

}  // namespace hylo::router
