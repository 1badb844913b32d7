#include "server/tool_call_filter.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace hylo::server {
namespace {

constexpr std::string_view kOpenTag = "<tool_call>";
constexpr std::string_view kCloseTag = "</tool_call>";
constexpr std::string_view kClose = "\n</tool_call>";  // what follows the arguments (Hermes)

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

}  // namespace

ToolCallFilter::ToolCallFilter(std::shared_ptr<const TokenTrie> trie, chat::ToolCallFormat format,
                               std::vector<std::string> names, std::vector<std::pair<std::string, int32_t>> markup,
                               bool wait_for_think_end)
    : trie_(std::move(trie)),
      format_(format),
      names_(std::move(names)),
      markup_(std::move(markup)),
      stage_(wait_for_think_end && trie_->think_end_id() >= 0 ? Stage::kReasoning : Stage::kOpen) {
  for (const std::string& name : names_) {
    if (format_ == chat::ToolCallFormat::kXml) {
      opens_.push_back(std::string(kOpenTag) + "\n<function=" + name + ">\n");
    } else {
      // The name as a JSON string: names are validated as plain identifiers, but quote anyway.
      opens_.push_back(std::string(kOpenTag) + "\n{\"name\": " + nlohmann::json(name).dump() + ", \"arguments\": {");
    }
  }
}

std::vector<std::pair<std::string, int32_t>> ToolCallFilter::markup_of(const tokenizer::Tokenizer& tok) {
  std::vector<std::pair<std::string, int32_t>> out;
  for (std::string_view tag : {kOpenTag, kCloseTag})
    if (auto id = tok.find_token(std::string(tag))) out.emplace_back(std::string(tag), *id);
  return out;
}

void ToolCallFilter::allow_forced(const std::vector<std::string>& texts, std::vector<uint8_t>* allowed) const {
  const TokenTrie::Trie& trie = trie_->all();
  for (const std::string& text : texts) {
    if (!starts_with(text, written_) || text.size() == written_.size()) continue;
    const std::string_view rest = std::string_view(text).substr(written_.size());
    // The longest tokens that spell a prefix of the rest: the text is fixed, only its
    // tokenisation could vary, and the fewest tokens keep the budget arithmetic simple.
    size_t best_len = 0;
    const TokenTrie::Node* best = nullptr;
    uint32_t node = 0;
    for (size_t i = 0; i < rest.size(); ++i) {  // down the trie along the rest
      const TokenTrie::Node& n = trie.nodes[node];
      uint32_t next = 0;
      for (uint32_t k = 0; k < n.n_children && next == 0; ++k)
        if (trie.nodes[n.first_child + k].byte == static_cast<uint8_t>(rest[i])) next = n.first_child + k;
      if (next == 0) break;
      node = next;
      if (trie.nodes[node].n_tokens > 0) {
        best = &trie.nodes[node];
        best_len = i + 1;
      }
    }
    int32_t markup_id = -1;
    for (const auto& [piece, id] : markup_) {
      if (starts_with(rest, piece) && piece.size() > best_len && id >= 0 && static_cast<size_t>(id) < allowed->size()) {
        markup_id = id;
        best_len = piece.size();
      }
    }
    if (markup_id >= 0) {
      (*allowed)[static_cast<size_t>(markup_id)] = 1;
    } else if (best != nullptr) {
      for (uint32_t k = 0; k < best->n_tokens; ++k)
        (*allowed)[static_cast<size_t>(trie.token_ids[best->first_token + k])] = 1;
    }
  }
}

void ToolCallFilter::mask(float* logits, int64_t n_vocab, int32_t tokens_left) {
  switch (stage_) {
    case Stage::kReasoning:
    case Stage::kFree:
      return;
    case Stage::kArguments: {
      // Leave room for the closing `\n</tool_call>` (two tokens where </tool_call> is one; at
      // most one per byte otherwise) and the end-of-generation token.
      const bool one_token_close =
          std::any_of(markup_.begin(), markup_.end(), [](const auto& m) { return m.first == kCloseTag; });
      const int32_t reserve = (one_token_close ? 2 : static_cast<int32_t>(kClose.size())) + 1;
      arguments_->mask(logits, n_vocab, std::max<int32_t>(1, tokens_left - reserve));
      return;
    }
    default:
      break;
  }
  allowed_.assign(static_cast<size_t>(n_vocab), 0);
  if (stage_ == Stage::kOpen) {
    allow_forced(opens_, &allowed_);
  } else if (stage_ == Stage::kClose) {
    allow_forced({std::string(kClose)}, &allowed_);
  } else {  // kEnd
    for (int32_t id : trie_->eog_ids())
      if (id >= 0 && id < n_vocab) allowed_[static_cast<size_t>(id)] = 1;
  }
  if (std::find(allowed_.begin(), allowed_.end(), 1) == allowed_.end()) return;  // nothing fits: leave it be
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (int64_t id = 0; id < n_vocab; ++id)
    if (!allowed_[static_cast<size_t>(id)]) logits[id] = kNegInf;
}

void ToolCallFilter::accept(int32_t token) {
  switch (stage_) {
    case Stage::kReasoning:
      if (token == trie_->think_end_id()) stage_ = Stage::kOpen;
      return;
    case Stage::kFree:
    case Stage::kEnd:
      return;
    case Stage::kArguments:
      arguments_->accept(token);
      if (arguments_->broken()) {
        stage_ = Stage::kFree;
      } else if (arguments_->state().done()) {
        stage_ = Stage::kClose;
        written_.clear();
      }
      return;
    case Stage::kOpen:
    case Stage::kClose:
      break;
  }
  if (token < 0 || token >= trie_->n_vocab()) {
    stage_ = Stage::kFree;
    return;
  }
  written_ += trie_->piece(token);
  if (stage_ == Stage::kClose) {
    if (written_ == kClose)
      stage_ = Stage::kEnd;
    else if (!starts_with(kClose, written_))
      stage_ = Stage::kFree;
    return;
  }
  bool consistent = false;
  for (size_t i = 0; i < opens_.size(); ++i) {
    if (written_ == opens_[i]) {
      chosen_ = names_[i];
      if (format_ == chat::ToolCallFormat::kXml) {
        stage_ = Stage::kFree;
      } else {
        // The document so far, from its '{': `{"name": "NAME", "arguments": {`.
        JsonState start;
        start.push(opens_[i].substr(kOpenTag.size() + 1));
        arguments_ = std::make_unique<JsonFilter>(trie_, start);
        stage_ = Stage::kArguments;
      }
      return;
    }
    consistent = consistent || starts_with(opens_[i], written_);
  }
  if (!consistent) stage_ = Stage::kFree;  // an unexpected token came through: stop constraining
}

}  // namespace hylo::server
