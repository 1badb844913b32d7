// Embeddings: OpenAI POST /v1/embeddings and Ollama POST /api/embed. Each input is prefilled and
// its final normed hidden states pooled (--pooling mean or last) and L2-normalised; nothing is
// generated. Served with --embeddings, as llama-server does.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>

#include "base/result.h"
#include "server/request.h"
#include "server/response_writer.h"

namespace hylo::server {

// input: a string, an array of strings, an array of token ids or an array of such arrays.
Result<GenerationRequest> parse_openai_embeddings(const nlohmann::ordered_json& body, const ApiContext& ctx);
// input: a string or an array of strings.
Result<GenerationRequest> parse_ollama_embed(const nlohmann::ordered_json& body, const ApiContext& ctx);
// The older POST /api/embeddings: one "prompt", answered {"embedding": [...]}.
Result<GenerationRequest> parse_ollama_embeddings_legacy(const nlohmann::ordered_json& body, const ApiContext& ctx);

std::shared_ptr<ResponseWriter> openai_embeddings_writer(const GenerationRequest& req, const ApiContext& ctx);
std::shared_ptr<ResponseWriter> ollama_embed_writer(const GenerationRequest& req, const ApiContext& ctx);
std::shared_ptr<ResponseWriter> ollama_embeddings_legacy_writer(const GenerationRequest& req, const ApiContext& ctx);

}  // namespace hylo::server
