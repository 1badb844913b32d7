// Helpers for the chat fixture cases (fixtures/chat/cases.jsonl).
#pragma once

#include <optional>
#include <string>

#include "chat/chat_template.h"
#include "common/fixtures.h"

namespace hylo::test {

// The special tokens HF passes for the Qwen3 tokenizer (tokenizer_config.json).
inline chat::SpecialTokens qwen_special_tokens() {
  chat::SpecialTokens s;
  s.eos = "<|im_end|>";
  s.pad = "<|endoftext|>";
  s.additional = {"<|im_start|>",   "<|im_end|>",     "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
                  "<|box_end|>",    "<|quad_start|>", "<|quad_end|>",         "<|vision_start|>",   "<|vision_end|>",
                  "<|vision_pad|>", "<|image_pad|>",  "<|video_pad|>"};
  return s;
}

inline std::optional<bool> optional_bool(const nlohmann::ordered_json& j) {
  if (j.is_null()) return std::nullopt;
  return j.get<bool>();
}

}  // namespace hylo::test
