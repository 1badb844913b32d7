// Engine::Slot: one sequence's place in the engine, shared by engine.cpp (scheduling, prefill,
// sampling) and engine_speculative.cpp (MTP drafts and their verification). Private to the engine.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/engine.h"
#include "runtime/prefix_cache.h"
#include "runtime/sampler.h"
#include "runtime/stop.h"
#include "tokenizer/stream_decoder.h"

namespace hylo::runtime {

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
  // The client left during the prefill: `req` is then a callback-less copy of its prompt that
  // goes on prefilling on idle capacity, so that the identical retry takes it over (or finds the
  // whole prompt in the slot). It yields the slot and the batch to any real request.
  bool abandoned = false;
  // The identical request admitted to take this prefill over once its cancellation is handled
  // (admitted before the step that abandons it).
  std::shared_ptr<Request> takeover;
  bool replay_logits = false;  // the whole prompt was cached: sample from snapshot_logits
  int32_t last_token = -1;     // sampled, not yet fed
  std::vector<int32_t> history;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<tokenizer::StreamDecoder> decoder;
  std::unique_ptr<StopMatcher> stops;
  RequestResult result;
  double t_prefilled = 0;  // seconds since submit when the prompt was in memory
  bool first_token = true;
  std::vector<double> embed_sum;  // [n_embd] mean pooling: the hidden states summed so far

  // Speculative decoding. The MTP head's cache holds positions [0, mtp_len), each computed from
  // the real token and the trunk's hidden state of the position before; drafted rows may sit past
  // mtp_len and are overwritten. Drafts are fed after last_token in the next forward.
  int n_draft = 0;                              // drafts per step for this request (0: off)
  std::vector<int32_t> drafts;                  // [≤ n_draft]
  std::vector<std::vector<Candidate>> draft_q;  // proposal distribution of each draft (sampling)
  std::unique_ptr<Sampler> draft_sampler;
  int32_t mtp_len = 0;
  std::vector<float> mtp_carry;        // [n_embd] trunk hidden state of position mtp_len − 1
  int32_t mtp_carry_pos = -1;          // position of mtp_carry (-1: none)
  std::vector<float> snapshot_hidden;  // [n_embd] trunk hidden state of position snapshot_len − 1
  // Where this slot's rows sit in the step's trunk forward (row0 < 0: not in it).
  int64_t fwd_row0 = -1;
  int32_t fwd_pos0 = 0;
  int32_t len_override = -1;  // slot_len() while verifying (rows past it are unverified drafts)
  bool mtp_catch_up = false;  // the request ended this step: feed its last positions to the MTP head
  // Recent share of drafts accepted (moving average, from an even prior) and steps since drafting
  // paused.
  float accept_rate = 0.5f;
  int paused_steps = 0;
};

}  // namespace hylo::runtime
