// llama-server's own API: POST /completion (its native fields and answer, with `timings`),
// POST /infill (fill-in-the-middle for code models) and GET /slots. The OpenAI-compatible
// endpoints it also serves are openai_api.h's.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "base/result.h"
#include "runtime/engine.h"
#include "server/request.h"
#include "server/response_writer.h"

namespace hylo::server {

// POST /completion: prompt (a string or token ids), n_predict, stream, temperature, top_k, top_p,
// min_p, repeat_penalty, repeat_last_n, presence_penalty, frequency_penalty, stop, seed,
// cache_prompt, n_probs, ignore_eos, return_tokens.
Result<GenerationRequest> parse_llama_completion(const nlohmann::ordered_json& body, const ApiContext& ctx);
// POST /infill: input_prefix, input_suffix, input_extra ([{filename, text}]), prompt (the start of
// the middle), and /completion's sampling fields.
Result<GenerationRequest> parse_llama_infill(const nlohmann::ordered_json& body, const ApiContext& ctx);

// Answers of both, whole or streamed ("data: {...}" events; the last has "stop": true).
std::shared_ptr<ResponseWriter> llama_completion_writer(const GenerationRequest& req, const ApiContext& ctx);

// GET /slots: each slot's state as llama-server shows it (the prompt text is not shown).
nlohmann::ordered_json llama_slots(const std::vector<runtime::SlotState>& slots, const ApiContext& ctx);

}  // namespace hylo::server
