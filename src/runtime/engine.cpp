#include "runtime/engine.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "base/check.h"
#include "base/log.h"
#include "base/timer.h"
#include "ops/delta_net.h"
#include "runtime/engine_slot.h"
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

Engine::Engine(models::Model& model, const tokenizer::Tokenizer& tokenizer, ThreadPool& pool,
               const EngineOptions& options)
    : model_(model), tokenizer_(tokenizer), pool_(pool), options_(options) {
  // Two engines on one model would interleave their forward calls and read each other's rows.
  HYLO_CHECK(model_.claim(), "the model already has an engine; one engine per model");
  options_.n_slots = std::max(1, options_.n_slots);
  // Every step must leave room for an aligned prefill chunk next to the decode rows of every slot.
  HYLO_CHECK(check_speculative(model_, options_.n_draft).ok(), "speculative options not checked");
  // Every row's hidden state feeds the MTP head when a request drafts.
  model_.options().keep_all_hidden = model_.has_mtp();
  const int32_t min_batch = ops::kDeltaChunk + options_.n_slots * (1 + (model_.has_mtp() ? kMaxDraft : 0));
  options_.n_batch = std::max(options_.n_batch, min_batch);
  options_.n_batch = (options_.n_batch + ops::kDeltaChunk - 1) / ops::kDeltaChunk * ops::kDeltaChunk;
  models::MemoryOptions mo;
  mo.n_seq = options_.n_slots;
  mo.n_ctx = options_.n_ctx;
  mo.kv_type = options_.kv_type;
  mo.kv_type_v = options_.kv_type_v;
  memory_ = std::make_unique<models::Memory>(model_.memory_layout(), mo);
  for (int i = 0; i < options_.n_slots; ++i) {
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->id = i;
  }
  if (!options_.cache.dir.empty())
    options_.cache.identity =
        checkpoint_identity(model_, options_.kv_type, options_.kv_type_v.value_or(options_.kv_type));
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
  model_.release();
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
  if (r->n_draft > 0)
    if (auto st = check_speculative(model_, r->n_draft); !st.ok()) return {SubmitError::kInvalid, st.message()};
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

std::vector<SlotState> Engine::slot_states() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (slot_states_.empty()) {  // before the scheduler's first look
    std::vector<SlotState> idle(slots_.size());
    for (size_t i = 0; i < idle.size(); ++i) idle[i].id = static_cast<int>(i);
    return idle;
  }
  return slot_states_;
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
    const int n_draft = r->n_draft >= 0 ? r->n_draft : options_.n_draft;
    // Scoring and embeddings read every prompt position's output: nothing is reused.
    const bool reads_every_position = r->prompt_logprobs || r->pooling != Pooling::kNone;
    // The retry of a prompt whose client left during its prefill takes that prefill over where it
    // is: at once if it is abandoned already, else in the step that abandons it.
    if (!reads_every_position) {
      auto same = std::find_if(slots_.begin(), slots_.end(), [&](const auto& s) {
        const bool cancelled = s->req && s->req->cancelled.load() && !s->takeover && may_abandon(*s);
        return (s->abandoned || cancelled) && s->req->prompt == r->prompt;
      });
      if (same != slots_.end()) {
        queue_.pop_front();
        if ((*same)->abandoned)
          take_over(**same, std::move(r), true);
        else
          (*same)->takeover = std::move(r);
        continue;
      }
    }
    // The free slot whose own state serves most of the prompt; failing that (or if the shared
    // cache serves more), an empty slot, then the least recently used one, so another
    // conversation's state is given up last. An abandoned prefill gives its slot up last of all.
    Slot* best = nullptr;
    Slot* spare = nullptr;
    Slot* abandoned = nullptr;
    int32_t best_keep = 0;
    for (auto& s : slots_) {
      if (s->abandoned && (abandoned == nullptr || s->last_used < abandoned->last_used)) abandoned = s.get();
      if (s->req) continue;
      const int32_t keep = reads_every_position ? 0 : live_reuse(*s, r->prompt);
      if (keep > best_keep) {
        best_keep = keep;
        best = s.get();
      }
      const bool empty = s->cached.empty(), spare_empty = spare != nullptr && spare->cached.empty();
      if (spare == nullptr || (empty && !spare_empty) || (empty == spare_empty && s->last_used < spare->last_used))
        spare = s.get();
    }
    if (spare == nullptr) {
      if (abandoned == nullptr) break;  // all slots busy
      drop_abandoned(*abandoned);
      spare = abandoned;
    }
    std::vector<uint64_t> hashes = PrefixCache::block_hashes(r->prompt);
    PrefixCache::Match match;
    if (best_keep < n_prompt && !reads_every_position) match = cache_->lookup(r->prompt, hashes, n_prompt - 1);
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
    int slot_draft = n_draft;
    if (from_cache) {
      // Restored on the engine thread before the next forward call, outside this lock.
      s.restore = match;
      s.cached.assign(r->prompt.begin(), r->prompt.begin() + best_keep);
      s.snapshot_len = -1;
      s.snapshot_logits.clear();
      // The MTP head continues from the checkpoint if it kept the head's state (restore_from_cache).
      s.mtp_len = 0;
      s.mtp_carry_pos = -1;
    } else {
      if (slot_draft > 0 && best_keep > 0) {
        // Drafts depend on the MTP head's cache: reuse only a prefix it holds exactly, with the
        // trunk's hidden state of the position before the first new one.
        if (s.mtp_len >= best_keep && best_keep == s.snapshot_len && !s.snapshot_hidden.empty()) {
          s.mtp_carry = s.snapshot_hidden;
          s.mtp_carry_pos = best_keep - 1;
        } else if (!(s.mtp_len >= best_keep && s.mtp_carry_pos == best_keep - 1)) {
          best_keep = 0;
        }
      }
      if (!memory_->truncate(s.id, best_keep).ok()) {
        memory_->clear(s.id);
        best_keep = 0;
      }
      s.cached.resize(best_keep);
      if (s.snapshot_len > best_keep) s.snapshot_len = -1;
      s.mtp_len = std::min(s.mtp_len, best_keep);
      if (s.mtp_carry_pos != s.mtp_len - 1) s.mtp_carry_pos = -1;
    }
    begin_request(s, std::move(r), slot_draft, best_keep);
    stats_.prompt_tokens += static_cast<uint64_t>(n_prompt);
    s.prompt_done = best_keep;
    s.replay_logits = best_keep == n_prompt;
    s.prefilling = !s.replay_logits;
  }
  return cancelled;
}

void Engine::begin_request(Slot& s, std::shared_ptr<Request> r, int n_draft, int32_t n_cached) {
  const int32_t n_prompt = static_cast<int32_t>(r->prompt.size());
  s.n_draft = n_draft;
  s.drafts.clear();
  s.draft_q.clear();
  s.draft_sampler.reset();
  s.len_override = -1;
  s.accept_rate = 0.5f;
  s.paused_steps = 0;
  s.req = std::move(r);
  s.last_token = -1;
  s.history = s.req->prompt;
  s.sampler = std::make_unique<Sampler>(s.req->sampling, model_.info().n_vocab);
  s.decoder = std::make_unique<tokenizer::StreamDecoder>(tokenizer_, s.req->show_special);
  s.stops = std::make_unique<StopMatcher>(s.req->stop);
  s.result = RequestResult{};
  s.result.n_prompt = n_prompt;
  s.result.n_cached = n_cached;
  s.result.seed = s.sampler->params().seed;
  s.result.slot = s.id;
  if (n_draft > 0 && s.req->sampling.temperature > 0) {
    // Proposal q: the request's temperature and truncation without penalties, on its own stream.
    SamplingParams q = s.req->sampling;
    q.repeat_penalty = 1.0f;
    q.presence_penalty = q.frequency_penalty = 0.0f;
    q.logit_bias.clear();
    q.random_seed = false;
    q.seed = s.result.seed ^ 0x9e3779b97f4a7c15ull;
    s.draft_sampler = std::make_unique<Sampler>(q, model_.info().n_vocab);
  }
  s.result.queue_seconds = s.req->timer.seconds();
  s.first_token = true;
  s.embed_sum.assign(s.req->pooling == Pooling::kMean ? static_cast<size_t>(model_.info().n_embd) : 0, 0.0);
}


void Engine::finish(Slot& s, FinishReason reason, const std::string& error) {
  if (!s.req) return;
  std::shared_ptr<Request> r = std::move(s.req);
  const bool abandoned = std::exchange(s.abandoned, false);  // reported when its client left
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
  s.drafts.clear();
  if (abandoned) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.requests_done++;
  }
  if (r->on_done) r->on_done(s.result);
}

bool Engine::may_abandon(const Slot& s) const {
  return options_.finish_abandoned_prefill && s.prefilling && !s.req->prompt_logprobs &&
         s.req->pooling == Pooling::kNone;
}

void Engine::abandon(Slot& s) {
  // A copy without callbacks: nothing reaches the client after its answer (cancelled), and the
  // prefill ends at the prompt's end (max_tokens 0) with the state and logits kept in the slot.
  auto rest = std::make_shared<Request>();
  rest->prompt = s.req->prompt;
  rest->max_tokens = 0;
  const int32_t done = s.prompt_done;
  finish(s, FinishReason::kCancelled);
  s.req = std::move(rest);
  s.prefilling = true;
  s.abandoned = true;
  log_debug("[engine] slot {}: the client left at {} of {} prompt tokens; the prefill goes on while the slot is idle",
            s.id, done, s.req->prompt.size());
  if (s.takeover) {
    std::shared_ptr<Request> r = std::exchange(s.takeover, nullptr);
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.prompt_tokens += r->prompt.size();
    }
    take_over(s, std::move(r), false);
    return;
  }
  // The retry came before the cancellation and went to another slot: it moves here if more of its
  // prompt is done here (its own slot keeps what it did, as a free slot's state); if not, this
  // prefill serves no one.
  for (auto& other : slots_) {
    Slot& b = *other;
    if (&b == &s || !b.req || b.abandoned || b.req->cancelled.load() || !may_abandon(b) ||
        b.req->prompt != s.req->prompt)
      continue;
    if (b.prompt_done >= s.prompt_done) {
      drop_abandoned(s);
      return;
    }
    std::shared_ptr<Request> r = std::move(b.req);
    b.prefilling = false;
    b.last_token = -1;
    take_over(s, std::move(r), false);
    return;
  }
}

void Engine::take_over(Slot& s, std::shared_ptr<Request> r, bool count) {
  const int n_draft = r->n_draft >= 0 ? r->n_draft : options_.n_draft;
  s.abandoned = false;
  s.last_used = ++slot_clock_;
  // It drafts only if the abandoned prefill kept the MTP head in step.
  begin_request(s, std::move(r), s.n_draft > 0 ? n_draft : 0, s.prompt_done);
  if (count) stats_.prompt_tokens += s.req->prompt.size();
  log_debug("[engine] slot {}: a retry takes over its abandoned prefill at {} of {} tokens", s.id, s.prompt_done,
            s.req->prompt.size());
}

void Engine::drop_abandoned(Slot& s) {
  log_debug("[engine] slot {}: an abandoned prefill gives its slot up at {} of {} tokens", s.id, s.prompt_done,
            s.req->prompt.size());
  s.req.reset();
  s.abandoned = false;
  s.prefilling = false;
  s.last_token = -1;
}

int32_t Engine::slot_len(const Slot& s) const { return s.len_override >= 0 ? s.len_override : memory_->seq_len(s.id); }

void Engine::mask_row(Slot& s, float* row) {
  if (s.req->filter) {
    // Tokens this request may still produce: each sampled token is emitted, then the request
    // ends at max_tokens or when no position is left to feed it (see emit_token).
    int64_t left = int64_t{options_.n_ctx} - slot_len(s) + 1;
    if (s.req->max_tokens >= 0) left = std::min<int64_t>(left, s.req->max_tokens - s.result.n_generated);
    s.req->filter->mask(row, model_.info().n_vocab, static_cast<int32_t>(std::max<int64_t>(1, left)));
  }
}

int32_t Engine::sample_next(Slot& s, float* row) {
  mask_row(s, row);
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
  } else if (slot_len(s) >= options_.n_ctx) {
    finish(s, FinishReason::kContext);  // no position left to feed this token
  } else {
    s.last_token = token;
  }
}

namespace {

// A prompt token's log-probability under one row of raw logits ([n_vocab]), and the n most likely
// tokens (log-softmax without temperature: the model's own distribution).
TokenEvent score_token(const float* row, int64_t n_vocab, int32_t token, int n_top) {
  float max_logit = row[0];
  for (int64_t v = 1; v < n_vocab; ++v) max_logit = std::max(max_logit, row[v]);
  double sum = 0;
  for (int64_t v = 0; v < n_vocab; ++v) sum += std::exp(static_cast<double>(row[v] - max_logit));
  const double log_norm = max_logit + std::log(sum);
  TokenEvent ev;
  ev.token = token;
  ev.logprob = static_cast<float>(row[token] - log_norm);
  if (n_top > 0) {
    std::vector<int32_t> ids(static_cast<size_t>(n_vocab));
    for (int64_t v = 0; v < n_vocab; ++v) ids[static_cast<size_t>(v)] = static_cast<int32_t>(v);
    const auto k = static_cast<ptrdiff_t>(std::min<int64_t>(n_top, n_vocab));
    std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                      [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    for (ptrdiff_t j = 0; j < k; ++j) ev.top.push_back({ids[j], static_cast<float>(row[ids[j]] - log_norm)});
  }
  return ev;
}

}  // namespace

bool Engine::step() {
  // State admitted from the prefix cache is put in place first, so a slot's record of what its
  // memory holds is true whatever happens next.
  for (auto& s : slots_)
    if (s->restore.n_tokens > 0) restore_from_cache(*s);
  // Cancelled requests leave first; a prompt abandoned half-way goes on prefilling for its retry.
  for (auto& s : slots_) {
    if (!s->req || s->abandoned || !s->req->cancelled.load()) continue;
    if (may_abandon(*s)) {
      abandon(*s);
    } else {
      finish(*s, FinishReason::kCancelled);
      if (s->takeover) {  // not expected (admit() checks may_abandon): it waits again
        std::lock_guard<std::mutex> lock(mu_);
        queue_.push_front(std::exchange(s->takeover, nullptr));
      }
    }
  }

  // Requests whose whole prompt was cached start from the saved logits, without a forward call.
  bool replayed = false;
  for (auto& s : slots_) {
    s->fwd_row0 = -1;
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
  if (replayed) draft();

  std::vector<models::BatchRow> rows;
  // What each logits row is for, in row order: a slot's next token (followed by one verify row
  // per draft), or (scoring) the prompt token after prompt position `prompt_pos`.
  struct LogitRow {
    Slot* slot;
    int32_t prompt_pos = -1;
  };
  std::vector<LogitRow> logit_rows;
  std::vector<std::pair<Slot*, size_t>> sample_slots;  // slot, its first sampling logits row, in row order
  for (auto& s : slots_) {
    if (!s->req || s->prefilling || s->last_token < 0) continue;
    const int32_t pos0 = memory_->seq_len(s->id);
    s->fwd_row0 = static_cast<int64_t>(rows.size());
    s->fwd_pos0 = pos0;
    rows.push_back({s->id, pos0, s->last_token, true});
    for (size_t i = 0; i < s->drafts.size(); ++i)
      rows.push_back({s->id, pos0 + 1 + static_cast<int32_t>(i), s->drafts[i], true});
    if (!s->drafts.empty())
      HYLO_CHECK(memory_->arm_checkpoints(s->id, 1 + static_cast<int32_t>(s->drafts.size())).ok());
    sample_slots.emplace_back(s.get(), logit_rows.size());
    logit_rows.insert(logit_rows.end(), 1 + s->drafts.size(), LogitRow{s.get()});
  }
  int32_t budget = options_.n_batch - static_cast<int32_t>(rows.size());
  std::vector<std::pair<Slot*, int32_t>> prefills;  // slot, tokens this step
  // Two passes over the slots: live clients' prompts first, then abandoned prefills take what
  // budget is left.
  for (size_t k = 0; k < 2 * slots_.size(); ++k) {
    Slot* s = slots_[k % slots_.size()].get();
    if (s->abandoned != (k >= slots_.size())) continue;
    if (!s->req || !s->prefilling || budget <= 0) continue;
    const int32_t remaining = static_cast<int32_t>(s->req->prompt.size()) - s->prompt_done;
    const int32_t pos0 = memory_->seq_len(s->id);
    const bool scoring = s->req->prompt_logprobs || s->req->pooling == Pooling::kMean;
    const int32_t room = scoring ? std::min(budget, kPromptLogitRows) : budget;
    int32_t n = remaining;
    if (remaining > room) {
      // Split only at absolute multiples of the DeltaNet chunk (batch invariance).
      n = (pos0 + room) / ops::kDeltaChunk * ops::kDeltaChunk - pos0;
      if (n <= 0) continue;
    }
    // Stop at the next checkpoint the prefix cache keeps (block-aligned, so the bits are unchanged).
    const int32_t boundary = cache_->next_boundary(pos0, static_cast<int32_t>(s->req->prompt.size()));
    if (boundary > 0 && boundary < pos0 + n) n = boundary - pos0;
    const bool last = n == remaining;
    s->fwd_row0 = static_cast<int64_t>(rows.size());
    s->fwd_pos0 = pos0;
    for (int32_t i = 0; i < n; ++i) {
      const bool sample_row = last && i == n - 1;
      rows.push_back({s->id, pos0 + i, s->req->prompt[s->prompt_done + i], sample_row || scoring});
      if (scoring && !sample_row) logit_rows.push_back({s, s->prompt_done + i});
    }
    if (last) {
      sample_slots.emplace_back(s, logit_rows.size());
      logit_rows.push_back({s});
    }
    prefills.emplace_back(s, n);
    budget -= n;
  }
  if (rows.empty()) return replayed;

  // Prefill rows come after the decode rows, so the logits rows are in logit_rows order.
  const int64_t n_vocab = model_.info().n_vocab;
  logits_.resize(logit_rows.size() * static_cast<size_t>(n_vocab));
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
  // Bookkeeping of what is now in memory (rejected drafts are taken out again in accept()).
  for (const models::BatchRow& row : rows) slots_[row.seq]->cached.push_back(row.token);
  // Prefix cache checkpoints at the block boundaries this step reached: saved after draft(), once
  // the MTP head (if any) has caught up with the new positions.
  struct CachePoint {
    Slot* slot;
    std::shared_ptr<Request> req;  // kept: the request may finish before the save
  };
  std::vector<CachePoint> cache_points;
  for (const auto& [slot, n] : prefills) {
    slot->prompt_done += n;
    const int32_t len = memory_->seq_len(slot->id), n_prompt = static_cast<int32_t>(slot->req->prompt.size());
    if (len > 0 && cache_->next_boundary(len - 1, n_prompt) == len) cache_points.push_back({slot, slot->req});
    if (slot->req->on_prefill) slot->req->on_prefill(slot->prompt_done, static_cast<int32_t>(slot->req->prompt.size()));
  }
  // Scoring rows first (they precede their slot's sampling row): one event list per slot.
  const int64_t n_embd = model_.info().n_embd;
  auto add_hidden = [&](Slot& slot, size_t i) {  // mean pooling: one more position
    const float* h = model_.last_hidden().data() + i * static_cast<size_t>(n_embd);
    for (int64_t e = 0; e < n_embd; ++e) slot.embed_sum[static_cast<size_t>(e)] += h[e];
  };
  std::vector<std::pair<Slot*, std::vector<TokenEvent>>> scored;
  for (size_t i = 0; i < logit_rows.size(); ++i) {
    const LogitRow& lr = logit_rows[i];
    if (lr.prompt_pos < 0 || !lr.slot->req) continue;
    if (lr.slot->req->pooling == Pooling::kMean) add_hidden(*lr.slot, i);
    if (!lr.slot->req->prompt_logprobs) continue;
    if (scored.empty() || scored.back().first != lr.slot) scored.emplace_back(lr.slot, std::vector<TokenEvent>{});
    const int32_t next = lr.slot->req->prompt[static_cast<size_t>(lr.prompt_pos) + 1];
    scored.back().second.push_back(score_token(logits_.data() + i * n_vocab, n_vocab, next, lr.slot->req->n_probs));
  }
  for (auto& [slot, events] : scored)
    if (slot->req->on_prompt_tokens && !events.empty()) slot->req->on_prompt_tokens(events);
  for (const auto& [sp, i] : sample_slots) {
    Slot& s = *sp;
    if (!s.req) continue;
    if (s.prefilling) {
      s.prefilling = false;
      s.t_prefilled = s.req->timer.seconds();
      memory_->snapshot(s.id);  // lets a later request with this prompt rewind here
      s.snapshot_len = memory_->seq_len(s.id);
      s.snapshot_logits.assign(logits_.begin() + i * n_vocab, logits_.begin() + (i + 1) * n_vocab);
      s.snapshot_hidden.clear();
      if (!model_.all_hidden().empty()) {
        const int64_t row = s.fwd_row0 + (memory_->seq_len(s.id) - 1 - s.fwd_pos0);
        const float* h = model_.all_hidden().data() + row * model_.info().n_embd;
        s.snapshot_hidden.assign(h, h + model_.info().n_embd);
      }
      if (s.req->pooling != Pooling::kNone) {
        std::vector<float> embedding(static_cast<size_t>(n_embd));
        if (s.req->pooling == Pooling::kMean) {
          add_hidden(s, i);
          const double n = static_cast<double>(s.req->prompt.size());
          for (int64_t e = 0; e < n_embd; ++e)
            embedding[static_cast<size_t>(e)] = static_cast<float>(s.embed_sum[static_cast<size_t>(e)] / n);
        } else {
          const float* h = model_.last_hidden().data() + i * static_cast<size_t>(n_embd);
          embedding.assign(h, h + n_embd);
        }
        double norm = 0;
        for (float v : embedding) norm += static_cast<double>(v) * v;
        norm = std::sqrt(norm);
        if (norm > 0)
          for (float& v : embedding) v = static_cast<float>(v / norm);
        if (s.req->on_embedding) s.req->on_embedding(embedding);
      }
      if (s.req->max_tokens == 0) {
        s.mtp_catch_up = s.n_draft > 0;  // the head keeps up, so a request continuing this prompt drafts
        finish(s, FinishReason::kLength);
        continue;
      }
      emit_token(s, sample_next(s, logits_.data() + i * n_vocab));
      continue;
    }
    accept(s, logits_.data() + i * n_vocab);
  }
  draft();
  for (const CachePoint& c : cache_points) save_checkpoint(*c.slot, *c.req);
  return true;
}

void Engine::save_checkpoint(Slot& s, const Request& r) {
  // The memory is still at the boundary: a request that just ended its prompt has sampled a token
  // but not fed it. The MTP head's state goes with it when the head holds every position.
  const int32_t len = memory_->seq_len(s.id);
  std::span<const float> hidden;
  if (s.n_draft > 0 && s.mtp_len >= len && s.mtp_carry_pos == len - 1) hidden = s.mtp_carry;
  cache_->insert(r.prompt, s.block_hashes, *memory_, s.id, hidden);
}

void Engine::restore_from_cache(Slot& s) {
  const PrefixCache::Match m = s.restore;
  s.restore = {};
  std::vector<float> mtp_hidden;
  if (Status st = cache_->restore(m, s.req ? std::span<const int32_t>(s.req->prompt) : std::span<const int32_t>(),
                                  s.block_hashes, *memory_, s.id, &mtp_hidden);
      !st.ok()) {
    // Nothing is lost but time: the prompt is prefilled from the start.
    log_warn("{}; prefilling the prompt instead", st.message());
    memory_->clear(s.id);
    s.cached.clear();
    s.prompt_done = 0;
    s.result.n_cached = 0;
    return;
  }
  if (s.n_draft <= 0) return;
  // Drafting goes on from the checkpoint when it kept the MTP head's state: the head's KV rows of
  // every restored position and the trunk's hidden state of the last. Otherwise this request
  // decodes without drafts (the same tokens, without the speed-up).
  const int32_t len = memory_->seq_len(s.id);
  bool head_complete = !mtp_hidden.empty();
  for (const auto& kv : model_.memory_layout().kv)
    if (kv.layer >= model_.info().n_layer) head_complete = head_complete && memory_->kv(kv.layer, s.id).size() >= len;
  if (head_complete) {
    s.mtp_len = len;
    s.mtp_carry = std::move(mtp_hidden);
    s.mtp_carry_pos = len - 1;
  } else {
    log_debug("[spec] slot {}: the checkpoint of {} tokens has no MTP state; this request decodes without drafts", s.id,
              len);
    s.n_draft = 0;
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
          busy += s->req != nullptr && !s->abandoned;
        }
        stats_.slots_busy = busy;
        stats_.queued = live_waiting();
        slot_states_.resize(slots_.size());
        for (size_t i = 0; i < slots_.size(); ++i) {
          const Slot& s = *slots_[i];
          SlotState& st = slot_states_[i];
          st.id = s.id;
          st.busy = s.req != nullptr && !s.abandoned;
          st.n_cached = static_cast<int32_t>(s.cached.size());
          st.n_prompt = st.busy ? static_cast<int32_t>(s.req->prompt.size()) : 0;
          st.n_decoded = st.busy ? s.result.n_generated : 0;
          st.max_tokens = st.busy ? s.req->max_tokens : -1;
        }
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
  for (auto& s : slots_)
    if (s->takeover) left.push_back(std::exchange(s->takeover, nullptr));
  for (auto& r : left) {
    RequestResult res;
    res.reason = FinishReason::kError;
    res.error = "the engine is shutting down";
    if (r->on_done) r->on_done(res);
  }
}

}  // namespace hylo::runtime
