// The server's side of upstream routing: what the router needs to know of the local engine (its
// context, measured prefill speed, the prompt's token count under the local tokenizer), asked
// before a generation request runs here.
#include <cstring>

#include "router/router.h"
#include "server/http_guard.h"
#include "server/server.h"

namespace hylo::server {

namespace {

// The request's prompt length as the local handler would count it; nullopt when it cannot be
// read (the local handler then answers with the reason).
std::optional<int64_t> count_prompt_tokens(const Backend& b, Result<GenerationRequest> parsed) {
  if (!parsed.ok()) return std::nullopt;
  const GenerationRequest& g = *parsed;
  int64_t longest = 0;
  if (g.is_chat()) {
    auto text =
        b.chat_template->render(g.messages, g.tools, /*add_generation_prompt=*/true, g.enable_thinking, b.special);
    if (!text.ok()) return std::nullopt;
    longest = static_cast<int64_t>(b.tokenizer->encode(*text, /*parse_special=*/true).size());
  } else {
    for (const PromptInput& p : g.prompts) {
      const int64_t n = p.is_tokens ? static_cast<int64_t>(p.tokens.size())
                                    : static_cast<int64_t>(b.tokenizer->encode(p.text, /*parse_special=*/true).size());
      longest = std::max(longest, n);
    }
  }
  return longest + static_cast<int64_t>(g.context_prefix.size());
}

}  // namespace

bool Server::route_elsewhere(ApiFamily family, const char* endpoint, RequestParser parse, const httplib::Request& req,
                             const nlohmann::ordered_json& body, const std::shared_ptr<Backend>& b,
                             httplib::Response& res) {
  router::Call call;
  call.api = family == ApiFamily::kOllama ? router::Api::kOllama : router::Api::kOpenAI;
  call.kind = std::strcmp(endpoint, "chat") == 0 || std::strcmp(endpoint, "api_chat") == 0 ? router::Kind::kChat
                                                                                           : router::Kind::kCompletion;
  call.req = &req;
  call.body = &body;
  call.client_fd = current_client_socket();
  call.shutdown_fd = shutdown_fd_;
  if (b) {
    call.local.available = true;
    call.local.n_ctx = b->n_ctx;
    const runtime::EngineStats s = b->engine->stats();
    if (s.prefill_seconds > 0 && s.prefilled_tokens > 0)
      call.local.prefill_tokens_per_second = static_cast<double>(s.prefilled_tokens) / s.prefill_seconds;
    call.local.count_prompt_tokens = [&] { return count_prompt_tokens(*b, parse(body, ctx_)); };
  } else {
    call.local.unavailable_why = models_ ? "this server's local models are asked for by name (GET /v1/models)"
                                 : opt_.gateway ? "there is no local model (gateway mode)"
                                                : "the local model is still loading";
  }
  return opt_.router->serve(call, res) == router::Router::Outcome::kAnswered;
}

std::string Server::router_metrics() const { return opt_.router->metrics(); }

}  // namespace hylo::server
