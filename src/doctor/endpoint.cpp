#include "doctor/endpoint.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "base/strings.h"
#include "doctor/config.h"
#include "doctor/profiles.h"
#include "net/http_client.h"

namespace hylo::doctor {
namespace {

using json = nlohmann::json;

struct Reply {
  int status = 0;  // 0: no HTTP answer (connection failed)
  std::string error;
  json body;  // discarded unless the answer was JSON
};

// The server's root: an OpenAI base URL ends in /v1, the other endpoints live beside it.
Result<net::BaseUrl> parse_url(const std::string& url) {
  auto base = net::parse_base_url(url);
  if (!base.ok()) return make_error("[doctor] endpoint {}: {}", url, base.message().substr(6));
  if (ends_with(base->prefix, "/v1")) base->prefix.resize(base->prefix.size() - 3);
  return base;
}

std::optional<int64_t> int_field(const json& o, const char* key) {
  if (!o.is_object()) return std::nullopt;
  auto it = o.find(key);
  if (it == o.end()) return std::nullopt;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number()) {
    const double d = it->get<double>();
    if (std::isfinite(d) && std::fabs(d) < 9e18) return static_cast<int64_t>(std::llround(d));
  }
  return std::nullopt;
}

std::optional<std::string> string_field(const json& o, const char* key) {
  if (!o.is_object()) return std::nullopt;
  auto it = o.find(key);
  if (it == o.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// Context sizes a server reports are echoed into arithmetic: reject nonsense early.
Status check_ctx(const std::optional<int64_t>& v, const std::string& url, const char* what) {
  if (v && (*v < 1 || *v > kMaxCtx)) return make_error("[doctor] endpoint {}: {} = {} is implausible", url, what, *v);
  return ok_status();
}

class Endpoint {
 public:
  Endpoint(net::BaseUrl url, double timeout_seconds) : url_(std::move(url)) {
    timeouts_.connect = timeouts_.first_byte = timeouts_.idle = timeout_seconds;
  }

  Reply get(const std::string& path) { return finish(net::fetch(url_, "GET", path, {}, "", timeouts_)); }
  Reply post(const std::string& path, const json& body) {
    return finish(net::fetch(url_, "POST", path, {{"Content-Type", "application/json"}}, body.dump(), timeouts_));
  }

 private:
  static Reply finish(const net::Reply& res) {
    Reply r;
    r.status = res.status;
    r.error = res.error;
    if (res.status != 0) r.body = json::parse(res.body, nullptr, /*allow_exceptions=*/false);
    return r;
  }

  net::BaseUrl url_;
  net::Timeouts timeouts_;
};

// GET /v1/models: llama-server and hylo add a "meta" object with the trained context.
void read_models(const Reply& r, EndpointInfo* info) {
  if (r.status != 200 || !r.body.is_object() || !r.body.contains("data") || !r.body["data"].is_array() ||
      r.body["data"].empty())
    return;
  const json& m = r.body["data"][0];
  info->model_id = string_field(m, "id").value_or("");
  if (string_field(m, "owned_by") == std::optional<std::string>("hylo")) info->server = "hylo";
  std::string line = fmt::format("GET /v1/models: id {}", info->model_id.empty() ? "?" : info->model_id);
  if (m.contains("meta") && m["meta"].is_object()) {
    const json& meta = m["meta"];
    info->n_ctx_train = int_field(meta, "n_ctx_train");
    info->n_params = int_field(meta, "n_params");
    info->size_bytes = int_field(meta, "size");
    if (auto n_ctx = int_field(meta, "n_ctx")) {
      info->n_ctx = n_ctx;
      info->n_ctx_source = "GET /v1/models meta.n_ctx";
      line += fmt::format(", meta.n_ctx {}", *n_ctx);
    }
    if (info->n_ctx_train) line += fmt::format(", meta.n_ctx_train {}", *info->n_ctx_train);
  }
  info->read.push_back(line);
}

// GET /props: the slot context (n_ctx is per slot) and the number of slots.
bool read_props(Endpoint& ep, EndpointInfo* info) {
  const Reply r = ep.get("/props");
  if (r.status != 200 || !r.body.is_object()) return false;
  const json& b = r.body;
  std::optional<int64_t> n_ctx;
  if (b.contains("default_generation_settings")) n_ctx = int_field(b["default_generation_settings"], "n_ctx");
  std::string source = "GET /props default_generation_settings.n_ctx";
  if (!n_ctx) {
    n_ctx = int_field(b, "n_ctx");
    source = "GET /props n_ctx";
  }
  const std::optional<int64_t> slots = int_field(b, "total_slots");
  if (!n_ctx && !slots) return false;
  if (info->server != "hylo") info->server = "llama-server";
  if (n_ctx) {
    info->n_ctx = n_ctx;
    info->n_ctx_source = source;
  }
  info->parallel = slots;
  info->model_path = string_field(b, "model_path");
  info->read.push_back(fmt::format("GET /props: n_ctx {}, total_slots {}", n_ctx ? std::to_string(*n_ctx) : "?",
                                   slots ? std::to_string(*slots) : "?"));
  return true;
}

// Ollama: GET /api/ps lists loaded models with the context they run at; POST /api/show gives
// the GGUF metadata (model_info) and the Modelfile parameters.
Status read_ollama(Endpoint& ep, const std::string& hint, EndpointInfo* info) {
  const Reply ps = ep.get("/api/ps");
  if (ps.status != 200 || !ps.body.is_object() || !ps.body.contains("models") || !ps.body["models"].is_array())
    return make_error("[doctor] endpoint {}: not hylo, llama-server or Ollama (GET /props and GET /api/ps: HTTP {})",
                      info->url, ps.status);
  info->server = "ollama";
  const json* running = nullptr;
  for (const json& m : ps.body["models"]) {
    const std::string name = string_field(m, "name").value_or(string_field(m, "model").value_or(""));
    if (running == nullptr || (!hint.empty() && name == hint)) running = &m;
  }
  std::string name = hint;
  if (running != nullptr) {
    name = string_field(*running, "name").value_or(string_field(*running, "model").value_or(hint));
    if (auto ctx = int_field(*running, "context_length")) {
      info->n_ctx = ctx;
      info->n_ctx_source = "GET /api/ps context_length";
    }
    info->size_bytes = int_field(*running, "size");
    if (running->contains("details"))
      info->quant = string_field((*running)["details"], "quantization_level").value_or("");
    info->read.push_back(fmt::format("GET /api/ps: {} loaded, context_length {}", name,
                                     info->n_ctx ? std::to_string(*info->n_ctx) : "?"));
  } else {
    info->read.push_back("GET /api/ps: no model loaded");
  }
  if (name.empty()) return ok_status();
  info->model_id = name;

  const Reply show = ep.post("/api/show", json{{"model", name}, {"name", name}});
  if (show.status != 200 || !show.body.is_object()) {
    info->read.push_back(fmt::format("POST /api/show {}: HTTP {}", name, show.status));
    return ok_status();
  }
  const json& b = show.body;
  if (b.contains("model_info")) {
    HYLO_ASSIGN_OR_RETURN(info->model_info, metadata_from_json(b["model_info"], "Ollama model_info of " + name));
  }
  if (info->quant.empty() && b.contains("details"))
    info->quant = string_field(b["details"], "quantization_level").value_or("");
  std::string line = fmt::format("POST /api/show {}: {} metadata keys", name, info->model_info.values().size());
  // "parameters" is the Modelfile PARAMETER block as text: "num_ctx 131072\nstop ...".
  if (auto params = string_field(b, "parameters")) {
    for (const std::string& l : split(*params, '\n')) {
      const std::string_view t = trim(l);
      if (!starts_with(t, "num_ctx")) continue;
      auto v = parse_count(trim(t.substr(7)), "Ollama parameter num_ctx", 1, kMaxCtx);
      if (!v.ok()) return v.error();
      line += fmt::format(", parameter num_ctx {}", *v);
      if (!info->n_ctx) {
        info->n_ctx = *v;
        info->n_ctx_source = "POST /api/show parameters num_ctx";
      }
    }
  }
  info->read.push_back(line);
  return ok_status();
}

}  // namespace

Result<EndpointInfo> read_endpoint(const std::string& url, const std::string& model_hint, double timeout_seconds) {
  HYLO_ASSIGN_OR_RETURN(net::BaseUrl parsed, parse_url(url));
  EndpointInfo info;
  info.url = url;
  Endpoint ep(std::move(parsed), timeout_seconds);

  // First request doubles as the reachability check.
  const Reply probe = ep.get("/v1/models");
  if (probe.status == 0)
    return make_error("[doctor] endpoint {}: no answer (httplib error: {}); is the server running and the URL right?",
                      url, probe.error);
  read_models(probe, &info);
  // hylo reports its context in /v1/models; llama-server in /props; Ollama in its own API.
  if (!read_props(ep, &info)) {
    if (info.n_ctx) {
      if (info.server.empty()) info.server = "llama-server";
    } else {
      HYLO_TRY(read_ollama(ep, model_hint, &info));
    }
  }

  HYLO_TRY(check_ctx(info.n_ctx, url, "n_ctx"));
  HYLO_TRY(check_ctx(info.n_ctx_train, url, "n_ctx_train"));
  if (info.parallel && (*info.parallel < 1 || *info.parallel > kMaxParallel))
    return make_error("[doctor] endpoint {}: total_slots = {} is implausible", url, *info.parallel);
  return info;
}

}  // namespace hylo::doctor
