// A generation endpoint as the server's route files see it: its API family's parser and writer.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "server/response_writer.h"
#include "server/server.h"

namespace hylo::server {

struct Server::Endpoint {
  const char* name;
  ApiFamily family;
  Result<GenerationRequest> (*parse)(const nlohmann::ordered_json& body, const ApiContext& ctx);
  std::shared_ptr<ResponseWriter> (*writer)(const GenerationRequest& req, const ApiContext& ctx);
  // Ollama: a request without a prompt only loads the model; its answer (or nullopt).
  std::optional<nlohmann::ordered_json> (*load_only)(const nlohmann::ordered_json& body, const ApiContext& ctx) =
      nullptr;
};

}  // namespace hylo::server
