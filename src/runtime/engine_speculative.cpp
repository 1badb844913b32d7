// Speculative decoding with the model's MTP (NextN) head: drafting after each forward and
// verifying the drafts against the trunk's rows (standard speculative sampling).
#include <algorithm>
#include <utility>

#include "base/check.h"
#include "base/log.h"
#include "base/timer.h"
#include "runtime/engine.h"
#include "runtime/engine_slot.h"

namespace hylo::runtime {

namespace {
// Drafts that are rejected cost a verify row and an MTP pass each: while fewer than this share is
// accepted a request drafts nothing, except one probe draft every kProbeEvery steps (so a stretch
// of predictable text turns drafting back on). Depends on the request's own history only.
constexpr float kMinAcceptRate = 0.2f;
constexpr int kProbeEvery = 8;
}  // namespace

Status check_speculative(const models::Model& model, int n_draft) {
  if (n_draft < 0 || n_draft > kMaxDraft)
    return make_error("[spec] --draft {}: drafts per step must be between 1 and {}", n_draft, kMaxDraft);
  if (n_draft > 0 && !model.has_mtp())
    return make_error(
        "[spec] {}: the model has no MTP (NextN) block, so it cannot draft tokens for --spec mtp; "
        "use a GGUF converted with its MTP tensors (qwen3next.nextn_predict_layers > 0)",
        model.info().path);
  return ok_status();
}

void Engine::accept(Slot& s, float* logits) {
  const int64_t n_vocab = model_.info().n_vocab;
  const int k = static_cast<int>(s.drafts.size());
  const bool stochastic = s.draft_sampler != nullptr;
  int accepted = 0;
  for (int i = 0; i <= k && s.req; ++i) {
    // Rows past this one are unverified: the request sees the length it would have without them.
    s.len_override = s.fwd_pos0 + i + 1;
    float* row = logits + i * n_vocab;
    int32_t token;
    bool agreed;
    if (i < k && stochastic) {
      mask_row(s, row);
      s.sampler->distribution(row, s.history);
      const DraftVerdict v = s.sampler->verify(s.draft_q[i], s.drafts[i]);
      token = v.token;
      agreed = v.accepted;
    } else {
      // Greedy (or the last row): the very draw decoding without drafts makes.
      token = sample_next(s, row);
      agreed = i < k && token == s.drafts[i];
    }
    if (i < k) {  // counted before the token is emitted: emitting it may end the request
      s.result.n_drafted++;
      s.result.n_accepted += agreed;
      std::lock_guard<std::mutex> lock(mu_);
      stats_.drafted_tokens++;
      stats_.accepted_tokens += agreed;
    }
    emit_token(s, token);
    if (!agreed || !s.req) break;
    ++accepted;
  }
  s.len_override = -1;
  if (k > 0) {
    s.accept_rate = 0.7f * s.accept_rate + 0.3f * static_cast<float>(accepted) / static_cast<float>(k);
    const int32_t keep = s.fwd_pos0 + 1 + accepted;
    HYLO_CHECK(memory_->rollback(s.id, keep).ok());
    s.cached.resize(keep);
  }
  // A finished request's last positions still go through the MTP head, so that a request
  // continuing this conversation can draft at once (see admit()).
  s.mtp_catch_up = !s.req && s.n_draft > 0;
  s.drafts.clear();
  s.draft_q.clear();
}

// The MTP head's row for position p pairs the token at p with the trunk's hidden state of p − 1
// (spec §5.4). After each forward a speculative slot feeds its new positions, up to and including
// the sampled token not yet in the trunk, whose row's logits give the first draft; each further
// draft feeds the previous one with the head's own hidden state. All slots go in one batch per
// draft step, so a slot's drafts do not depend on the others.
void Engine::draft() {
  if (!model_.has_mtp()) return;
  const int64_t E = model_.info().n_embd, V = model_.info().n_vocab;
  const std::vector<float>& trunk_hidden = model_.all_hidden();
  std::vector<models::BatchRow> rows;
  std::vector<float> hidden;
  std::vector<std::pair<Slot*, int>> drafting;  // slot, drafts wanted
  std::vector<float> zeros(E, 0.0f);
  for (auto& sp : slots_) {
    Slot& s = *sp;
    const bool catch_up = std::exchange(s.mtp_catch_up, false);
    if (s.n_draft <= 0 || (!s.req && !catch_up)) continue;
    const int32_t end = memory_->seq_len(s.id);
    const bool with_last = s.req && !s.prefilling && s.last_token >= 0;
    // The trunk's hidden state of position q: from this step's forward, or the carried one.
    auto trunk_row = [&](int32_t q) -> const float* {
      if (q < 0) return zeros.data();
      if (s.fwd_row0 >= 0 && q >= s.fwd_pos0 && q < end) {
        HYLO_CHECK(static_cast<size_t>((s.fwd_row0 + q - s.fwd_pos0 + 1) * E) <= trunk_hidden.size(),
                   "slot {}: row {} pos {} of {} rows", s.id, s.fwd_row0, q, trunk_hidden.size() / E);
        return trunk_hidden.data() + (s.fwd_row0 + q - s.fwd_pos0) * E;
      }
      if (q == s.mtp_carry_pos) return s.mtp_carry.data();
      return nullptr;
    };
    const int32_t first = s.mtp_len;
    const int32_t last = with_last ? end : end - 1;
    bool complete = true;
    for (int32_t p = first; p <= last && complete; ++p) complete = trunk_row(p - 1) != nullptr;
    if (!complete) {
      // Cannot happen by construction (admit() keeps only exact prefixes); drafting is then off.
      log_warn("[spec] slot {}: the MTP head lacks hidden states from position {}; drafting stops", s.id, first);
      s.n_draft = 0;
      continue;
    }
    for (int32_t p = first; p <= last; ++p) {
      const int32_t token = p < end ? s.cached[p] : s.last_token;
      rows.push_back({s.id, p, token, false});
      const float* h = trunk_row(p - 1);
      hidden.insert(hidden.end(), h, h + E);
    }
    // Carry the trunk's hidden state of the last position in memory: the next prefill chunk's
    // first row needs it, and so does a later request that continues this sequence.
    if (const float* h = trunk_row(end - 1); end > 0 && h != nullptr && h != s.mtp_carry.data()) {
      s.mtp_carry.assign(h, h + E);
      s.mtp_carry_pos = end - 1;
    }
    if (last < first) continue;
    // Drafts: not past the context, max_tokens (this step emits up to drafts + 1 tokens), the limit.
    int k = with_last ? s.n_draft : 0;
    if (k > 0 && s.accept_rate < kMinAcceptRate) k = ++s.paused_steps % kProbeEvery == 0 ? 1 : 0;
    k = std::min(k, options_.n_ctx - 1 - end);
    if (s.req && s.req->max_tokens >= 0) k = std::min(k, s.req->max_tokens - s.result.n_generated - 1);
    if (k > 0) {
      rows.back().logits = true;
      drafting.emplace_back(&s, k);
    }
    s.mtp_len = last + 1;
  }
  if (rows.empty()) return;
  Timer t;
  mtp_logits_.resize(drafting.size() * static_cast<size_t>(V));
  Status st = model_.forward_mtp(rows, hidden.data(), *memory_, pool_, mtp_logits_.data());
  // Row of each drafting slot in the batch just run (its last row).
  std::vector<int64_t> last_row;
  for (auto& [sp, k] : drafting) {
    int64_t r = -1;
    for (size_t i = 0; i < rows.size(); ++i)
      if (rows[i].seq == sp->id) r = static_cast<int64_t>(i);
    last_row.push_back(r);
  }
  for (int j = 0; st.ok(); ++j) {
    // Draw draft j of each slot still drafting from the logits just computed.
    std::vector<models::BatchRow> next;
    std::vector<float> next_hidden;
    std::vector<std::pair<Slot*, int>> still;
    std::vector<int64_t> still_row;
    for (size_t i = 0; i < drafting.size(); ++i) {
      auto [sp, k] = drafting[i];
      Slot& s = *sp;
      float* row = mtp_logits_.data() + i * V;
      int32_t d;
      if (s.draft_sampler) {
        s.draft_q.push_back(s.draft_sampler->distribution(row, {}));
        d = s.draft_sampler->draw();
      } else {
        d = static_cast<int32_t>(std::max_element(row, row + V) - row);
      }
      s.drafts.push_back(d);
      if (static_cast<int>(s.drafts.size()) < k) {
        const int32_t pos = memory_->seq_len(s.id) + static_cast<int32_t>(s.drafts.size());
        next.push_back({s.id, pos, d, true});
        const float* h = model_.last_hidden().data() + last_row[i] * E;
        next_hidden.insert(next_hidden.end(), h, h + E);
        still.emplace_back(&s, k);
        still_row.push_back(static_cast<int64_t>(next.size()) - 1);
      }
    }
    if (next.empty()) break;
    drafting = std::move(still);
    last_row = std::move(still_row);
    mtp_logits_.resize(drafting.size() * static_cast<size_t>(V));
    st = model_.forward_mtp(next, next_hidden.data(), *memory_, pool_, mtp_logits_.data());
  }
  if (!st.ok()) {
    // Drafts only speed decoding up: without them every token is still exact.
    log_error("{}", st.message());
    for (auto& s : slots_) {
      s->drafts.clear();
      s->draft_q.clear();
      s->n_draft = 0;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.decode_seconds += t.seconds();
}

}  // namespace hylo::runtime
