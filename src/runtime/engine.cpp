#include "runtime/engine.h"

#include <algorithm>

#include "base/log.h"
#include "base/timer.h"
#include "ops/delta_net.h"
#include "runtime/stop.h"
#include "tokenizer/stream_decoder.h"

namespace hylo::runtime {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kContext:
      return "context";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kError:
      return "error";
  }
  return "?";
}

struct Engine::Slot {
  int id = 0;
  std::shared_ptr<Request> req;
  std::vector<int32_t> cached;         // tokens whose state is in memory
  int32_t snapshot_len = -1;           // length at which the recurrent state was snapshotted
  std::vector<float> snapshot_logits;  // logits of the last token before the snapshot
  uint64_t last_used = 0;              // slot_clock_ at its last admission (least recent is reused first)
  std::vector<uint64_t> block_hashes;  // of the request's prompt (prefix cache keys)
  PrefixCache::Match restore;          // to restore from the prefix cache before the next step

  // The request in progress.
  int32_t prompt_done = 0;  // prompt tokens in memory
  bool prefilling = false;
  bool replay_logits = false;  // the whole prompt was cached: sample from snapshot_logits
  int32_t last_token = -1;     // sampled, not yet fed
  std::vector<int32_t> history;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<tokenizer::StreamDecoder> decoder;
  std::unique_ptr<StopMatcher> stops;
  RequestResult result;
  double t_prefilled = 0;  // seconds since submit when the prompt was in memory
  bool first_token = true;
};

Engine::Engine(models::Model& model, const tokenizer::Tokenizer& tokenizer, ThreadPool& pool,
               const EngineOptions& options)
    : model_(model), tokenizer_(tokenizer), pool_(pool), options_(options) {
  options_.n_slots = std::max(1, options_.n_slots);
  // Every step must leave room for an aligned prefill chunk next to one decode row per slot.
  const int32_t min_batch = ops::kDeltaChunk + options_.n_slots;
  options_.n_batch = std::max(options_.n_batch, min_batch);
  options_.n_batch = (options_.n_batch + ops::kDeltaChunk - 1) / ops::kDeltaChunk * ops::kDeltaChunk;
  models::MemoryOptions mo;
  mo.n_seq = options_.n_slots;
  mo.n_ctx = options_.n_ctx;
  mo.kv_type = options_.kv_type;
  memory_ = std::make_unique<models::Memory>(model_.memory_layout(), mo);
  for (int i = 0; i < options_.n_slots; ++i) {
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->id = i;
  }
  if (!options_.cache.dir.empty()) options_.cache.identity = checkpoint_identity(model_, options_.kv_type);
  cache_ = std::make_unique<PrefixCache>(options_.cache);
  stats_.slots_total = options_.n_slots;
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

SubmitError Engine::submit(std::shared_ptr<Request> r) {
  SubmitError e;
  const int64_t n_vocab = model_.info().n_vocab;
  if (r->prompt.empty()) return {SubmitError::kInvalid, "the prompt is empty", 0, options_.n_ctx};
  for (int32_t t : r->prompt)
    if (t < 0 || t >= n_vocab)
      return {SubmitError::kInvalid, fmt::format("prompt token {} is outside the vocabulary [0, {})", t, n_vocab)};
  const int32_t n_prompt = static_cast<int32_t>(r->prompt.size());
  if (n_prompt >= options_.n_ctx)
    return {SubmitError::kContextExceeded,
            fmt::format("request ({} tokens) exceeds the available context size ({} tokens)", n_prompt, options_.n_ctx),
            n_prompt, options_.n_ctx};
  if (auto st = validate(r->sampling, n_vocab); !st.ok()) return {SubmitError::kInvalid, st.message()};
  if (r->n_probs < 0 || r->n_probs > 20) return {SubmitError::kInvalid, "top logprobs must be between 0 and 20"};
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return {SubmitError::kStopped, "the engine is shutting down"};
    const int free_slots = options_.n_slots - stats_.slots_busy;
    // Requests cancelled while waiting (their clients hung up) hold no place: they are dropped
    // at the scheduler's next look, whatever their position.
    const int waiting = live_waiting();
    if (waiting >= options_.max_queue + std::max(0, free_slots))
      return {SubmitError::kQueueFull, fmt::format("the request queue is full ({} waiting); try again later", waiting)};
    r->timer.reset();
    queue_.push_back(std::move(r));
    stats_.queued = waiting + 1;
  }
  cv_.notify_all();
  return e;
}

void Engine::poke() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.queued = live_waiting();
  }
  cv_.notify_all();
}

int Engine::live_waiting() const {
  return static_cast<int>(
      std::count_if(queue_.begin(), queue_.end(), [](const auto& r) { return !r->cancelled.load(); }));
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  EngineStats s = stats_;
  s.cache = cache_->stats();
  return s;
}

// Reuse must give the bits a prefill from scratch gives. Attention KV rows are exact at any length;
// a recurrent state is exact only where the prefill left it: the end of the prompt it was
// snapshotted at (the identical prompt again), or a block boundary (the prefix cache's job). The
// tokens decoded after a prompt went through the one-token form, not the chunked one.
int32_t Engine::live_reuse(const Slot& s, const std::vector<int32_t>& prompt) const {
  const int32_t n_prompt = static_cast<int32_t>(prompt.size());
  // The identical prompt again (a retry, another seed, n > 1): its state and logits are saved.
  if (s.snapshot_len == n_prompt && !s.snapshot_logits.empty() && static_cast<int32_t>(s.cached.size()) >= n_prompt &&
      std::equal(prompt.begin(), prompt.end(), s.cached.begin()))
    return n_prompt;
  if (memory_->has_recurrent()) return 0;
  // At least one prompt token must be fed for logits.
  int32_t cp = 0;
  const int32_t lim = std::min<int32_t>(static_cast<int32_t>(s.cached.size()), n_prompt - 1);
  while (cp < lim && s.cached[cp] == prompt[cp]) ++cp;
  return cp;
}

// Chooses a free slot for each queued request, reusing the longest cached prefix.
std::vector<std::shared_ptr<Request>> Engine::admit() {
  std::vector<std::shared_ptr<Request>> cancelled;
  // Cancelled requests leave the queue from anywhere in it, not only from the front.
  for (auto it = queue_.begin(); it != queue_.end();) {
    if ((*it)->cancelled.load()) {
      cancelled.push_back(std::move(*it));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  while (!queue_.empty()) {
    std::shared_ptr<Request> r = queue_.front();
    const int32_t n_prompt = static_cast<int32_t>(r->prompt.size());
    // The free slot whose own state serves most of the prompt; failing that (or if the shared
    // cache serves more), an empty slot, then the least recently used one, so another
    // conversation's state is given up last.
    Slot* best = nullptr;
    Slot* spare = nullptr;
    int32_t best_keep = 0;
    for (auto& s : slots_) {
      if (s->req) continue;
      const int32_t keep = live_reuse(*s, r->prompt);
      if (keep > best_keep) {
        best_keep = keep;
        best = s.get();
      }
      const bool empty = s->cached.empty(), spare_empty = spare != nullptr && spare->cached.empty();
      if (spare == nullptr || (empty && !spare_empty) || (empty == spare_empty && s->last_used < spare->last_used))
        spare = s.get();
    }
    if (spare == nullptr) break;  // all slots busy
    std::vector<uint64_t> hashes = PrefixCache::block_hashes(r->prompt);
    PrefixCache::Match match;
    if (best_keep < n_prompt) match = cache_->lookup(r->prompt, hashes, n_prompt - 1);
    const bool from_cache = match.n_tokens > best_keep;
    if (best == nullptr || from_cache) {
      best = spare;
      best_keep = from_cache ? match.n_tokens : 0;
    }
    queue_.pop_front();
    Slot& s = *best;
    s.last_used = ++slot_clock_;
    s.block_hashes = std::move(hashes);
    s.restore = {};
    if (from_cache) {
      // Restored on the engine thread before the next forward call, outside this lock.
      s.restore = match;
      s.cached.assign(r->prompt.begin(), r->prompt.begin() + best_keep);
      s.snapshot_len = -1;
      s.snapshot_logits.clear();
    } else {
      if (!memory_->truncate(s.id, best_keep).ok()) {
        memory_->clear(s.id);
        best_keep = 0;
      }
      s.cached.resize(best_keep);
      if (s.snapshot_len > best_keep) s.snapshot_len = -1;
    }
    s.req = std::move(r);
    s.prompt_done = best_keep;
    s.replay_logits = best_keep == n_prompt;
    s.prefilling = !s.replay_logits;
    s.last_token = -1;
    s.history = s.req->prompt;
    s.sampler = std::make_unique<Sampler>(s.req->sampling, model_.info().n_vocab);
    s.decoder = std::make_unique<tokenizer::StreamDecoder>(tokenizer_, s.req->show_special);
    s.stops = std::make_unique<StopMatcher>(s.req->stop);
    s.result = RequestResult{};
    s.result.n_prompt = n_prompt;
    s.result.n_cached = best_keep;
    s.result.seed = s.sampler->params().seed;
    s.result.queue_seconds = s.req->timer.seconds();
    s.first_token = true;
    stats_.prompt_tokens += static_cast<uint64_t>(n_prompt);
  }
  return cancelled;
}

void Engine::finish(Slot& s, FinishReason reason, const std::string& error) {
  if (!s.req) return;
  std::shared_ptr<Request> r = std::move(s.req);
  // Text held back for a possible stop string or an unfinished character is real output unless a
  // stop string matched.
  if (reason != FinishReason::kError && reason != FinishReason::kCancelled && !s.stops->stopped()) {
    std::string tail = s.stops->push(s.decoder->flush());
    tail += s.stops->flush();
    if (!tail.empty() && r->on_token) {
      TokenEvent ev;
      ev.text = std::move(tail);
      r->on_token(ev);
    }
  }
  s.result.reason = reason;
  s.result.error = error;
  s.result.stop_matched = s.stops->matched();
  const double now = r->timer.seconds();
  if (s.prefilling) {
    s.result.prefill_seconds = now - s.result.queue_seconds;
  } else {
    s.result.prefill_seconds = s.t_prefilled - s.result.queue_seconds;
    s.result.decode_seconds = now - s.t_prefilled;
  }
  s.prefilling = false;
  s.last_token = -1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.requests_done++;
  }
  if (r->on_done) r->on_done(s.result);
}

int32_t Engine::sample_next(Slot& s, float* row) {
  if (s.req->filter) {
    // Tokens this request may still produce: each sampled token is emitted, then the request
    // ends at max_tokens or when no position is left to feed it (see emit_token).
    int64_t left = int64_t{options_.n_ctx} - memory_->seq_len(s.id) + 1;
    if (s.req->max_tokens >= 0) left = std::min<int64_t>(left, s.req->max_tokens - s.result.n_generated);
    s.req->filter->mask(row, model_.info().n_vocab, static_cast<int32_t>(std::max<int64_t>(1, left)));
  }
  return s.sampler->sample(row, s.history);
}

void Engine::emit_token(Slot& s, int32_t token) {
  Request& r = *s.req;
  if (tokenizer_.is_eog(token) && !r.ignore_eos) {
    finish(s, FinishReason::kStop);
    return;
  }
  s.result.n_generated++;
  s.history.push_back(token);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.generated_tokens++;
    if (s.first_token) {
      stats_.ttft_seconds_sum += r.timer.seconds();
      stats_.ttft_count++;
    }
  }
  s.first_token = false;
  if (r.filter) r.filter->accept(token);
  TokenEvent ev;
  ev.token = token;
  ev.text = s.stops->push(s.decoder->push(token));
  ev.logprob = s.sampler->logprob(token);
  if (r.n_probs > 0) ev.top = s.sampler->top(r.n_probs);
  if (r.on_token) r.on_token(ev);
  if (s.stops->stopped()) {
    finish(s, FinishReason::kStop);
  } else if (r.max_tokens >= 0 && s.result.n_generated >= r.max_tokens) {
    finish(s, FinishReason::kLength);
  } else if (memory_->seq_len(s.id) >= options_.n_ctx) {
    finish(s, FinishReason::kContext);  // no position left to feed this token
  } else {
    s.last_token = token;
  }
}

bool Engine::step() {
  // State admitted from the prefix cache is put in place first, so a slot's record of what its
  // memory holds is true whatever happens next.
  for (auto& s : slots_)
    if (s->restore.n_tokens > 0) restore_from_cache(*s);
  // Cancelled requests leave first.
  for (auto& s : slots_)
    if (s->req && s->req->cancelled.load()) finish(*s, FinishReason::kCancelled);

  // Requests whose whole prompt was cached start from the saved logits, without a forward call.
  bool replayed = false;
  for (auto& s : slots_) {
    if (!s->req || !s->replay_logits) continue;
    s->replay_logits = false;
    replayed = true;
    s->t_prefilled = s->req->timer.seconds();
    if (s->req->max_tokens == 0) {
      finish(*s, FinishReason::kLength);
      continue;
    }
    // The filter masks in place: sample from a copy so the saved logits stay as computed.
    replay_row_.assign(s->snapshot_logits.begin(), s->snapshot_logits.end());
    emit_token(*s, sample_next(*s, replay_row_.data()));
  }

  std::vector<models::BatchRow> rows;
  std::vector<Slot*> logit_slots;  // slot of each logits row, in row order
  for (auto& s : slots_) {
    if (!s->req || s->prefilling || s->last_token < 0) continue;
    rows.push_back({s->id, memory_->seq_len(s->id), s->last_token, true});
    logit_slots.push_back(s.get());
  }
  int32_t budget = options_.n_batch - static_cast<int32_t>(rows.size());
  std::vector<std::pair<Slot*, int32_t>> prefills;  // slot, tokens this step
  for (auto& s : slots_) {
    if (!s->req || !s->prefilling || budget <= 0) continue;
    const int32_t remaining = static_cast<int32_t>(s->req->prompt.size()) - s->prompt_done;
    const int32_t pos0 = memory_->seq_len(s->id);
    int32_t n = remaining;
    if (remaining > budget) {
      // Split only at absolute multiples of the DeltaNet chunk (batch invariance).
      n = (pos0 + budget) / ops::kDeltaChunk * ops::kDeltaChunk - pos0;
      if (n <= 0) continue;
    }
    // Stop at the next checkpoint the prefix cache keeps (block-aligned, so the bits are unchanged).
    const int32_t boundary = cache_->next_boundary(pos0, static_cast<int32_t>(s->req->prompt.size()));
    if (boundary > 0 && boundary < pos0 + n) n = boundary - pos0;
    const bool last = n == remaining;
    for (int32_t i = 0; i < n; ++i)
      rows.push_back({s->id, pos0 + i, s->req->prompt[s->prompt_done + i], last && i == n - 1});
    if (last) logit_slots.push_back(s.get());
    prefills.emplace_back(s.get(), n);
    budget -= n;
  }
  if (rows.empty()) return replayed;

  // Prefill rows come after the decode rows, so the logits rows are in logit_slots order.
  const int64_t n_vocab = model_.info().n_vocab;
  logits_.resize(logit_slots.size() * static_cast<size_t>(n_vocab));
  Timer t;
  const Status st = model_.forward(rows, *memory_, pool_, logits_.data());
  const double dt = t.seconds();
  if (!st.ok()) {
    log_error("{}", st.message());
    for (auto& s : slots_)
      if (s->req) finish(*s, FinishReason::kError, st.message());
    return true;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t n_prefill = 0;
    for (const auto& [slot, n] : prefills) n_prefill += n;
    stats_.prefilled_tokens += static_cast<uint64_t>(n_prefill);
    // Attribute the step's time by row share.
    const double share = static_cast<double>(n_prefill) / static_cast<double>(rows.size());
    stats_.prefill_seconds += dt * share;
    stats_.decode_seconds += dt * (1 - share);
    stats_.memory_bytes = memory_->bytes_allocated();
  }
  // Bookkeeping of what is now in memory.
  for (const models::BatchRow& row : rows) slots_[row.seq]->cached.push_back(row.token);
  for (const auto& [slot, n] : prefills) {
    slot->prompt_done += n;
    const int32_t len = memory_->seq_len(slot->id), n_prompt = static_cast<int32_t>(slot->req->prompt.size());
    if (len > 0 && cache_->next_boundary(len - 1, n_prompt) == len)
      cache_->insert(slot->req->prompt, slot->block_hashes, *memory_, slot->id);
    if (slot->req->on_prefill) slot->req->on_prefill(slot->prompt_done, static_cast<int32_t>(slot->req->prompt.size()));
  }
  for (size_t i = 0; i < logit_slots.size(); ++i) {
    Slot& s = *logit_slots[i];
    if (!s.req) continue;
    if (s.prefilling) {
      s.prefilling = false;
      s.t_prefilled = s.req->timer.seconds();
      memory_->snapshot(s.id);  // lets a later request with this prompt rewind here
      s.snapshot_len = memory_->seq_len(s.id);
      s.snapshot_logits.assign(logits_.begin() + i * n_vocab, logits_.begin() + (i + 1) * n_vocab);
      if (s.req->max_tokens == 0) {
        finish(s, FinishReason::kLength);
        continue;
      }
    }
    emit_token(s, sample_next(s, logits_.data() + i * n_vocab));
  }
  return true;
}

void Engine::restore_from_cache(Slot& s) {
  const PrefixCache::Match m = s.restore;
  s.restore = {};
  if (Status st = cache_->restore(m, s.req ? std::span<const int32_t>(s.req->prompt) : std::span<const int32_t>(),
                                  s.block_hashes, *memory_, s.id);
      !st.ok()) {
    // Nothing is lost but time: the prompt is prefilled from the start.
    log_warn("{}; prefilling the prompt instead", st.message());
    memory_->clear(s.id);
    s.cached.clear();
    s.prompt_done = 0;
    s.result.n_cached = 0;
  }
}

void Engine::loop() {
  for (;;) {
    std::vector<std::shared_ptr<Request>> cancelled;
    {
      std::unique_lock<std::mutex> lock(mu_);
      for (;;) {
        if (stopping_) break;
        for (auto& r : admit()) cancelled.push_back(std::move(r));
        bool active = false;
        int busy = 0;
        for (const auto& s : slots_) {
          active = active || (s->req != nullptr);
          busy += s->req != nullptr;
        }
        stats_.slots_busy = busy;
        stats_.queued = live_waiting();
        if (active || !cancelled.empty()) break;
        cv_.wait(lock);
      }
    }
    for (auto& r : cancelled) {  // outside the lock: callbacks may call back into the engine
      RequestResult res;
      res.reason = FinishReason::kCancelled;
      res.n_prompt = static_cast<int32_t>(r->prompt.size());
      if (r->on_done) r->on_done(res);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;
    }
    step();
  }
  // Shutting down: nothing accepted is lost silently.
  for (auto& s : slots_)
    if (s->req) finish(*s, FinishReason::kError, "the engine is shutting down");
  std::deque<std::shared_ptr<Request>> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(queue_);
  }
  for (auto& r : left) {
    RequestResult res;
    res.reason = FinishReason::kError;
    res.error = "the engine is shutting down";
    if (r->on_done) r->on_done(res);
  }
}

}  // namespace hylo::runtime
