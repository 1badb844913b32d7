#include "apps/generate.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <future>

#include "apps/progress.h"
#include "chat/output_parser.h"

namespace hylo::apps {
namespace {

std::atomic<runtime::Request*> g_active{nullptr};

void on_sigint(int) {
  if (runtime::Request* r = g_active.load()) r->cancelled.store(true);
}

// Restores the previous SIGINT disposition when the generation ends.
class SigintGuard {
 public:
  explicit SigintGuard(runtime::Request* r) {
    g_active.store(r);
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_);
  }
  ~SigintGuard() {
    sigaction(SIGINT, &old_, nullptr);
    g_active.store(nullptr);
  }

 private:
  struct sigaction old_ {};
};

}  // namespace

bool stdin_is_tty() { return isatty(STDIN_FILENO) == 1; }

void SamplingFlags::add(CLI::App& app) {
  app.add_option("--temp", temperature, "Temperature (0: greedy)");
  app.add_option("--top-k", top_k, "Top-k (0: off)");
  app.add_option("--top-p", top_p, "Top-p (1: off)");
  app.add_option("--min-p", min_p, "Min-p (0: off)");
  app.add_option("--repeat-penalty", repeat_penalty, "Repetition penalty (1: off)");
  app.add_option("--repeat-last-n", repeat_last_n, "Tokens the penalties look back (-1: all)");
  app.add_option("--presence-penalty", presence_penalty, "Presence penalty");
  app.add_option("--frequency-penalty", frequency_penalty, "Frequency penalty");
  app.add_option("-s,--seed", seed, "Random seed (same seed and prompt give the same output)");
}

Status SamplingFlags::apply(runtime::SamplingParams* p) const {
  if (temperature) p->temperature = *temperature;
  if (top_k) p->top_k = *top_k;
  if (top_p) p->top_p = *top_p;
  if (min_p) p->min_p = *min_p;
  if (repeat_penalty) p->repeat_penalty = *repeat_penalty;
  if (repeat_last_n) p->repeat_last_n = *repeat_last_n;
  if (presence_penalty) p->presence_penalty = *presence_penalty;
  if (frequency_penalty) p->frequency_penalty = *frequency_penalty;
  if (seed) {
    p->seed = *seed;
    p->random_seed = false;
  } else {
    p->random_seed = true;
  }
  return ok_status();
}

Result<GenerationResult> generate(Session& s, const Generation& g, std::ostream& out) {
  auto req = std::make_shared<runtime::Request>();
  req->prompt = g.prompt;
  req->sampling = g.sampling;
  req->max_tokens = g.max_tokens;
  req->stop = g.stop;
  req->filter = g.filter;
  const bool tty = stdout_is_tty();
  chat::OutputParserOptions po;
  po.format = s.chat_template->tool_call_format();
  po.thinking_open = g.thinking_open;
  po.parse_reasoning = g.parse_output;
  po.parse_tool_calls = g.parse_output;
  chat::OutputParser parser(po);
  GenerationResult result;
  bool in_reasoning = false;
  auto print = [&](const std::vector<chat::OutputEvent>& events) {
    for (const auto& e : events) {
      // A tool call prints once complete.
      if (e.kind == chat::OutputEvent::Kind::kToolCallBegin || e.kind == chat::OutputEvent::Kind::kToolCallArguments)
        continue;
      if (e.kind == chat::OutputEvent::Kind::kReasoning) {
        result.reasoning += e.text;
        if (!g.show_reasoning) continue;
        if (!in_reasoning) out << (tty ? "\033[2m" : "<think>\n");
        in_reasoning = true;
        out << e.text;
      } else {
        if (in_reasoning) out << (tty ? "\033[0m\n\n" : "\n</think>\n\n");
        in_reasoning = false;
        if (e.kind == chat::OutputEvent::Kind::kContent) {
          result.content += e.text;
          out << e.text;
        } else {
          out << "\n[tool call] " << e.tool_call.name << " " << e.tool_call.arguments << "\n";
        }
      }
    }
    out.flush();
  };
  std::unique_ptr<Progress> progress;
  if (g.prompt.size() >= 256) progress = std::make_unique<Progress>("prefill", g.prompt.size(), "tok");
  req->on_prefill = [&](int32_t done, int32_t total) {
    if (progress) {
      progress->update(done);
      if (done == total) progress->finish();
    }
  };
  req->on_token = [&](const runtime::TokenEvent& ev) {
    if (ev.token >= 0) result.tokens.push_back(ev.token);
    if (!ev.text.empty()) print(parser.push(ev.text));
  };
  std::promise<runtime::RequestResult> done;
  req->on_done = [&](const runtime::RequestResult& r) { done.set_value(r); };
  auto fut = done.get_future();
  {
    SigintGuard guard(req.get());
    const runtime::SubmitError err = s.engine->submit(req);
    if (err.kind != runtime::SubmitError::kNone) return make_error("[run] {}", err.message);
    while (fut.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
      if (req->cancelled.load()) s.engine->poke();
    }
  }
  static_cast<runtime::RequestResult&>(result) = fut.get();
  if (progress) progress->finish();
  print(parser.finish());
  if (in_reasoning) out << (tty ? "\033[0m" : "\n</think>");
  out << "\n";
  out.flush();
  return result;
}

void print_summary(const char* tag, const runtime::RequestResult& r) {
  const double pp = r.prefill_seconds > 0 ? (r.n_prompt - r.n_cached) / r.prefill_seconds : 0;
  const double tg = r.decode_seconds > 0 ? r.n_generated / r.decode_seconds : 0;
  std::fprintf(stderr, "[%s] prompt %d tokens (%d cached), prefill %.1f tok/s | %d generated, decode %.1f tok/s | %s%s%s\n",
               tag, r.n_prompt, r.n_cached, pp, r.n_generated, tg, runtime::finish_reason_name(r.reason),
               r.error.empty() ? "" : ": ", r.error.c_str());
  if (r.n_drafted > 0)
    std::fprintf(stderr, "[%s] speculative: %d drafted, %d accepted (%.1f%%)\n", tag, r.n_drafted, r.n_accepted,
                 100.0 * r.n_accepted / r.n_drafted);
}

}  // namespace hylo::apps
