// The generation engine: N sequence slots over one model, and a scheduler thread that batches
// the prefill chunks and decode steps of all active requests into each forward call
// (continuous batching). Used by `hylo run`, `hylo chat`, `hylo serve` and `hylo bench`.
//
// Results do not depend on what else is in the batch: the forward pass is batch-invariant, and
// prompts are split only at multiples of the DeltaNet chunk (absolute positions), so a request
// gets the same tokens alone or under load.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "models/model.h"
#include "runtime/prefix_cache.h"
#include "runtime/sampler.h"
#include "tokenizer/tokenizer.h"

namespace hylo::runtime {

enum class FinishReason {
  kStop,       // end-of-generation token or a stop string
  kLength,     // max_tokens reached
  kContext,    // the context is full (reported to API clients as "length")
  kCancelled,  // the client went away or asked to stop
  kError,
};
const char* finish_reason_name(FinishReason r);

struct TokenEvent {
  int32_t token = -1;
  std::string text;  // text released by this token (stop strings and split UTF-8 held back)
  float logprob = 0;
  std::vector<TokenProb> top;  // n_probs most likely tokens at this step
};

struct RequestResult {
  FinishReason reason = FinishReason::kStop;
  std::string error;         // for kError
  std::string stop_matched;  // the stop string that ended it, if any
  int32_t n_prompt = 0;      // prompt tokens
  int32_t n_cached = 0;      // prompt tokens reused (the slot's live state or the prefix cache)
  int32_t n_generated = 0;
  int32_t n_drafted = 0;   // speculative drafts verified
  int32_t n_accepted = 0;  // of which accepted
  double queue_seconds = 0, prefill_seconds = 0, decode_seconds = 0;
  uint64_t seed = 0;
  int slot = -1;  // the slot that ran it
};

// One slot as the scheduler last saw it (refreshed at every step; for status endpoints).
struct SlotState {
  int id = 0;
  bool busy = false;
  int32_t n_cached = 0;                                  // tokens whose state is in memory
  int32_t n_prompt = 0, n_decoded = 0, max_tokens = -1;  // the request in progress
};

// Restricts which tokens a request may generate next (e.g. JSON mode). Called on the engine
// thread, before each draw and after each token; implementations keep their own state.
class TokenFilter {
 public:
  virtual ~TokenFilter() = default;
  // Sets the logits ([n_vocab]) of tokens that may not come next to -inf; at least one must stay
  // finite. `tokens_left`: how many more tokens the request may produce, this one included
  // (max_tokens and the context, whichever ends first).
  virtual void mask(float* logits, int64_t n_vocab, int32_t tokens_left) = 0;
  // The token that was chosen (not called for the end-of-generation token that ends a request).
  virtual void accept(int32_t token) = 0;
};

// How an embedding is made of the prompt's final normed hidden states.
enum class Pooling { kNone, kMean, kLast };

// One generation. Callbacks run on the engine thread: keep them short.
struct Request {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  int32_t max_tokens = -1;  // < 0: until the context is full
  std::vector<std::string> stop;
  bool ignore_eos = false;
  int n_probs = 0;                      // top logprobs per token
  bool show_special = false;            // emit CONTROL tokens' text
  int n_draft = -1;                     // speculative drafts per step: -1 the engine's default, 0 off
  std::shared_ptr<TokenFilter> filter;  // optional constraint on the tokens generated
  // Scoring: the log-probability of each prompt token after the ones before it (with n_probs
  // alternatives), from the raw logits. The prompt is then prefilled from position 0 (no cached
  // prefix) in chunks of at most kPromptLogitRows rows, so the logits held stay bounded.
  bool prompt_logprobs = false;
  // Embedding: the prompt's hidden states pooled and L2-normalised ([n_embd]), given to
  // on_embedding after the prefill (set max_tokens 0). Prefilled like a scored prompt.
  Pooling pooling = Pooling::kNone;

  std::function<void(int32_t done, int32_t total)> on_prefill;  // after each prefill chunk
  // Scoring: events for prompt positions 1.. (token, logprob, top), one call per prefill chunk.
  std::function<void(const std::vector<TokenEvent>&)> on_prompt_tokens;
  std::function<void(const std::vector<float>&)> on_embedding;
  std::function<void(const TokenEvent&)> on_token;
  std::function<void(const RequestResult&)> on_done;  // exactly once

  std::atomic<bool> cancelled{false};
  Timer timer;  // started by Engine::submit
};

// Prompt rows whose logits one scoring request computes per forward call ([rows, n_vocab] floats
// held at once); a multiple of the DeltaNet chunk, so its splits keep results batch-invariant.
inline constexpr int32_t kPromptLogitRows = 64;

struct EngineOptions {
  int n_slots = 1;
  int32_t n_ctx = 4096;                   // positions per slot
  int32_t n_batch = 2048;                 // tokens per forward call (prefill budget); rounded to a multiple of 64
  int max_queue = 64;                     // waiting requests beyond the slots
  TensorType kv_type = TensorType::kF16;  // K (and V unless kv_type_v is set)
  std::optional<TensorType> kv_type_v;
  // Speculative decoding with the model's MTP (NextN) head: tokens drafted per step for requests
  // that do not choose (0: off). Needs a model with an MTP block (check_speculative).
  int n_draft = 0;
  PrefixCacheOptions cache;  // prefix checkpoints shared by all slots (max_bytes 0: off)
  // A request cancelled during its prefill (the client timed out) leaves its prompt prefilling on
  // idle capacity, for the identical retry to take over; false: the prefill stops at once.
  bool finish_abandoned_prefill = true;
};

// Drafts per verify step are at most this many: a verify run then stays far inside one DeltaNet
// chunk, and acceptance rarely carries further.
inline constexpr int kMaxDraft = 8;
// The default draft length of `--spec mtp`. With a per-token acceptance α the tokens per verify
// step are (1 − α^{k+1}) / (1 − α): 1.8 / 2.44 / 2.95 for k = 1 / 2 / 3 at α = 0.8, while each
// draft costs one MTP-head pass and, in a MoE, the verify pass reads more distinct experts; past
// two the extra tokens rarely pay for that.
inline constexpr int kDefaultDraft = 2;
// Clear error when n_draft asks for speculation the model cannot do.
Status check_speculative(const models::Model& model, int n_draft);

struct EngineStats {
  int slots_total = 0, slots_busy = 0, queued = 0;
  uint64_t requests_done = 0, prompt_tokens = 0, prefilled_tokens = 0, generated_tokens = 0;
  uint64_t drafted_tokens = 0, accepted_tokens = 0;  // speculative decoding
  double prefill_seconds = 0, decode_seconds = 0;    // busy time of the scheduler
  double ttft_seconds_sum = 0;
  uint64_t ttft_count = 0;
  uint64_t memory_bytes = 0;  // KV cache + recurrent state allocated
  PrefixCacheStats cache;
};

// Errors from submit() that an API maps to HTTP statuses.
struct SubmitError {
  enum Kind { kNone, kInvalid, kContextExceeded, kQueueFull, kStopped } kind = kNone;
  std::string message;
  int32_t n_prompt = 0, n_ctx = 0;
};

class Engine {
 public:
  Engine(models::Model& model, const tokenizer::Tokenizer& tokenizer, ThreadPool& pool, const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request (validated first); its callbacks then run on the engine thread.
  SubmitError submit(std::shared_ptr<Request> request);
  // Wakes the scheduler so it notices cancelled requests promptly.
  void poke();

  EngineStats stats() const;
  std::vector<SlotState> slot_states() const;
  const EngineOptions& options() const { return options_; }
  models::Model& model() { return model_; }
  const tokenizer::Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  struct Slot;
  void loop();
  bool step();  // one forward call; false if there was nothing to do
  // Assigns queued requests to free slots (under mu_); returns cancelled ones to report.
  std::vector<std::shared_ptr<Request>> admit();
  int live_waiting() const;  // queued and not cancelled (under mu_)
  void finish(Slot& slot, FinishReason reason, const std::string& error = {});
  // A cancelled request's prompt may go on prefilling for its retry (Slot::abandoned).
  bool may_abandon(const Slot& slot) const;
  // Reports a request cancelled during its prefill and keeps its prompt prefilling; an identical
  // request waiting for it, or prefilling the same prompt behind it in another slot, takes it over.
  void abandon(Slot& slot);
  // `request` continues the slot's abandoned prefill of the same prompt (count: a request new to
  // the engine, whose prompt tokens are added to the stats; under mu_ then).
  void take_over(Slot& slot, std::shared_ptr<Request> request, bool count);
  // Stops an abandoned prefill: the slot is free (its memory keeps the prefix done so far).
  void drop_abandoned(Slot& slot);
  // Sets up a slot for a newly admitted request (everything but the prompt's place in memory and
  // the stats).
  void begin_request(Slot& slot, std::shared_ptr<Request> request, int n_draft, int32_t n_cached);
  void emit_token(Slot& slot, int32_t token);
  int32_t sample_next(Slot& slot, float* row);  // applies the request's filter, then samples
  void mask_row(Slot& slot, float* row);        // the request's filter, if any
  int32_t slot_len(const Slot& slot) const;     // positions in memory that are not unverified drafts
  // Samples the tokens of a slot's forward rows [first logits row, + 1 + drafts): the drafts the
  // sampler agrees with and one more; rolls the memory back past the first rejected draft.
  void accept(Slot& slot, float* logits);
  // Feeds each speculative slot's new positions through the MTP head and drafts its next tokens.
  void draft();
  // Prompt tokens a free slot's live state can serve exactly for this prompt (see admit()).
  int32_t live_reuse(const Slot& slot, const std::vector<int32_t>& prompt) const;
  void restore_from_cache(Slot& slot);
  // Saves slot's state at its current length (a checkpoint boundary of r's prompt) in the prefix cache.
  void save_checkpoint(Slot& slot, const Request& r);

  models::Model& model_;
  const tokenizer::Tokenizer& tokenizer_;
  ThreadPool& pool_;
  EngineOptions options_;
  std::unique_ptr<models::Memory> memory_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::unique_ptr<PrefixCache> cache_;
  uint64_t slot_clock_ = 0;  // admissions so far: slots' recency

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Request>> queue_;
  bool stopping_ = false;
  EngineStats stats_;
  std::vector<SlotState> slot_states_;  // under mu_
  std::vector<float> logits_;
  std::vector<float> replay_row_;  // [n_vocab] scratch: a replayed snapshot row being masked
  std::vector<float> mtp_logits_, mtp_hidden_;
  std::thread thread_;
};

}  // namespace hylo::runtime
