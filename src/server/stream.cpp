#include "server/stream.h"

#include <cmath>

namespace hylo::server {

namespace {

// One streamed response: drains the generation, writes what the writer makes of it, waits.
class Pump {
 public:
  Pump(std::shared_ptr<Generation> g, std::shared_ptr<ResponseWriter> w, const StreamSettings& s)
      : g_(std::move(g)), w_(std::move(w)), s_(s) {}

  // One call of httplib's content provider: writes something (or finishes); false ends the
  // connection (the client is gone).
  bool step(httplib::DataSink& sink) {
    if (!begun_) {
      begun_ = true;
      return send(sink, w_->stream_begin(*g_));
    }
    const int timeout_ms = s_.ping_interval > 0 ? static_cast<int>(std::ceil(s_.ping_interval * 1000)) : -1;
    for (;;) {
      updates_.clear();
      g_->drain(&updates_);
      std::string out;
      for (const Update& u : updates_) out += w_->stream_update(*g_, u);
      if (g_->error()) {  // one choice failed: the answer is an error, the rest is stopped
        g_->cancel();
        out += w_->stream_error(*g_->error());
        return finish(sink, out);
      }
      if (g_->finished()) return finish(sink, out + w_->stream_end(*g_));
      if (!out.empty()) return send(sink, out);
      switch (g_->wait(s_.client_fd, s_.shutdown_fd, timeout_ms)) {
        case Generation::Wake::kEvents:
          continue;
        case Generation::Wake::kTimeout: {
          const std::string ping = w_->keepalive();
          if (ping.empty()) continue;
          if (s_.metrics) s_.metrics->count_ping();
          return send(sink, ping);
        }
        case Generation::Wake::kClientGone:
          return gone();
        case Generation::Wake::kShutdown:
          g_->cancel();
          return finish(sink, w_->stream_error({ApiError::Kind::kShuttingDown, "the server is shutting down"}));
      }
    }
  }

 private:
  bool send(httplib::DataSink& sink, const std::string& bytes) {
    if (bytes.empty() || sink.write(bytes.data(), bytes.size())) return true;
    return gone();
  }
  bool finish(httplib::DataSink& sink, const std::string& bytes) {
    if (!send(sink, bytes)) return false;
    sink.done();
    return true;
  }
  bool gone() {
    g_->cancel();
    if (s_.metrics) s_.metrics->count_client_gone();
    return false;
  }

  std::shared_ptr<Generation> g_;
  std::shared_ptr<ResponseWriter> w_;
  StreamSettings s_;
  bool begun_ = false;
  std::vector<Update> updates_;
};

// The same, for a stream that begins before its model is loaded.
class PendingPump {
 public:
  PendingPump(std::shared_ptr<ModelTicket> t, std::shared_ptr<ResponseWriter> early,
              std::function<StartedGeneration()> start, const StreamSettings& s)
      : ticket_(std::move(t)), early_(std::move(early)), start_(std::move(start)), s_(s) {}

  bool step(httplib::DataSink& sink) {
    if (pump_) return pump_->step(sink);
    const int timeout_ms = s_.ping_interval > 0 ? static_cast<int>(std::ceil(s_.ping_interval * 1000)) : -1;
    for (;;) {
      switch (ticket_->wait(s_.client_fd, s_.shutdown_fd, timeout_ms)) {
        case ModelTicket::Wake::kReady: {
          StartedGeneration st = start_();
          ticket_.reset();  // the generation holds the model now
          if (st.error) return finish(sink, early_->stream_error(*st.error));
          pump_ = std::make_unique<Pump>(std::move(st.generation), std::move(st.writer), s_);
          return pump_->step(sink);
        }
        case ModelTicket::Wake::kTimeout: {
          const std::string ping = early_->keepalive();
          if (ping.empty()) continue;
          if (s_.metrics) s_.metrics->count_ping();
          if (sink.write(ping.data(), ping.size())) return true;
          return gone();
        }
        case ModelTicket::Wake::kClientGone:
          return gone();
        case ModelTicket::Wake::kShutdown:
          return finish(sink, early_->stream_error({ApiError::Kind::kShuttingDown, "the server is shutting down"}));
      }
    }
  }

 private:
  bool finish(httplib::DataSink& sink, const std::string& bytes) {
    if (!bytes.empty() && !sink.write(bytes.data(), bytes.size())) return gone();
    sink.done();
    return true;
  }
  bool gone() {
    if (s_.metrics) s_.metrics->count_client_gone();
    return false;
  }

  std::shared_ptr<ModelTicket> ticket_;
  std::shared_ptr<ResponseWriter> early_;
  std::function<StartedGeneration()> start_;
  StreamSettings s_;
  std::unique_ptr<Pump> pump_;
};

}  // namespace

void stream_after_load(httplib::Response& res, std::shared_ptr<ModelTicket> ticket,
                       std::shared_ptr<ResponseWriter> early, std::function<StartedGeneration()> start,
                       const StreamSettings& settings) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  const char* type = early->stream_content_type();
  auto pump = std::make_shared<PendingPump>(std::move(ticket), std::move(early), std::move(start), settings);
  res.set_chunked_content_provider(type, [pump](size_t, httplib::DataSink& sink) { return pump->step(sink); });
}

void stream_generation(httplib::Response& res, std::shared_ptr<Generation> g, std::shared_ptr<ResponseWriter> writer,
                       const StreamSettings& settings) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");  // reverse proxies: do not buffer the stream
  const char* type = writer->stream_content_type();
  auto pump = std::make_shared<Pump>(std::move(g), std::move(writer), settings);
  // The provider owns the pump (and the generation): when httplib drops it, unfinished choices
  // are cancelled by ~Generation.
  res.set_chunked_content_provider(type, [pump](size_t, httplib::DataSink& sink) { return pump->step(sink); });
}

WaitOutcome wait_for_answer(Generation& g, const StreamSettings& s) {
  std::vector<Update> scratch;
  for (;;) {
    scratch.clear();
    g.drain(&scratch);
    if (g.error() || g.finished()) return WaitOutcome::kFinished;
    switch (g.wait(s.client_fd, s.shutdown_fd, -1)) {
      case Generation::Wake::kEvents:
      case Generation::Wake::kTimeout:
        break;
      case Generation::Wake::kClientGone:
        g.cancel();
        if (s.metrics) s.metrics->count_client_gone();
        return WaitOutcome::kClientGone;
      case Generation::Wake::kShutdown:
        g.cancel();
        return WaitOutcome::kShutdown;
    }
  }
}

}  // namespace hylo::server
