#include "server/tool_call_filter.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "runtime/json_schema.h"

namespace hylo::server {
namespace {

constexpr std::string_view kOpenTag = "<tool_call>";
constexpr std::string_view kCloseTag = "</tool_call>";
constexpr std::string_view kHermesClose = "}\n</tool_call>";             // after the arguments
constexpr std::string_view kXmlCallClose = "</function>\n</tool_call>";  // after the parameters
constexpr std::string_view kXmlParamClose = "\n</parameter>\n";          // after a value
constexpr std::string_view kParamEnd = "</parameter>";

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

}  // namespace

ToolCallFilter::ToolCallFilter(std::shared_ptr<const TokenTrie> trie, chat::ToolCallFormat format,
                               std::vector<ToolSpec> tools, std::vector<std::pair<std::string, int32_t>> markup,
                               bool wait_for_think_end)
    : trie_(std::move(trie)),
      format_(format),
      tools_(std::move(tools)),
      markup_(std::move(markup)),
      stage_(wait_for_think_end && trie_->think_end_id() >= 0 ? Stage::kReasoning : Stage::kForced) {
  std::vector<std::string> opens;
  for (const ToolSpec& t : tools_) {
    if (format_ == chat::ToolCallFormat::kXml)
      opens.push_back(std::string(kOpenTag) + "\n<function=" + t.name + ">\n");
    else  // the name as a JSON string
      opens.push_back(std::string(kOpenTag) + "\n{\"name\": " + nlohmann::json(t.name).dump() + ", \"arguments\": ");
  }
  forced_ = std::move(opens);
  const bool xml = format_ == chat::ToolCallFormat::kXml;
  reserve_call_close_ = forced_tokens(xml ? kXmlCallClose : kHermesClose) + 1;
  reserve_param_close_ = xml ? forced_tokens(kXmlParamClose) : 0;
}

std::vector<std::pair<std::string, int32_t>> ToolCallFilter::markup_of(const tokenizer::Tokenizer& tok) {
  std::vector<std::pair<std::string, int32_t>> out;
  for (std::string_view tag : {kOpenTag, kCloseTag})
    if (auto id = tok.find_token(std::string(tag))) out.emplace_back(std::string(tag), *id);
  return out;
}

std::pair<int32_t, size_t> ToolCallFilter::longest_prefix_token(std::string_view text) const {
  const TokenTrie::Trie& trie = trie_->all();
  std::pair<int32_t, size_t> best{-1, 0};
  uint32_t node = 0;
  for (size_t i = 0; i < text.size(); ++i) {  // down the trie along the text
    const TokenTrie::Node& n = trie.nodes[node];
    uint32_t next = 0;
    for (uint32_t k = 0; k < n.n_children && next == 0; ++k)
      if (trie.nodes[n.first_child + k].byte == static_cast<uint8_t>(text[i])) next = n.first_child + k;
    if (next == 0) break;
    node = next;
    if (trie.nodes[node].n_tokens > 0) best = {trie.token_ids[trie.nodes[node].first_token], i + 1};
  }
  for (const auto& [piece, id] : markup_)
    if (starts_with(text, piece) && piece.size() > best.second && id >= 0) best = {id, piece.size()};
  return best;
}

int32_t ToolCallFilter::forced_tokens(std::string_view text) const {
  int32_t n = 0;
  while (!text.empty()) {
    const auto [id, len] = longest_prefix_token(text);
    if (id < 0) return n + static_cast<int32_t>(text.size());  // not writable: count bytes
    text.remove_prefix(len);
    ++n;
  }
  return n;
}

void ToolCallFilter::allow_forced(const std::vector<std::string>& texts, std::vector<uint8_t>* allowed) const {
  // Only the longest tokens: the text is fixed, only its tokenisation could vary, and the fewest
  // tokens keep the budget arithmetic (forced_tokens) exact.
  const TokenTrie::Trie& trie = trie_->all();
  for (const std::string& text : texts) {
    if (!starts_with(text, written_) || text.size() == written_.size()) continue;
    const std::string_view rest = std::string_view(text).substr(written_.size());
    const auto [id, len] = longest_prefix_token(rest);
    if (id < 0) continue;
    bool from_markup = false;
    for (const auto& m : markup_) from_markup = from_markup || (m.second == id && m.first.size() == len);
    if (from_markup) {
      if (static_cast<size_t>(id) < allowed->size()) (*allowed)[static_cast<size_t>(id)] = 1;
      continue;
    }
    uint32_t node = 0;  // every token whose bytes are exactly rest[0, len)
    for (size_t i = 0; i < len; ++i) {
      const TokenTrie::Node& n = trie.nodes[node];
      for (uint32_t k = 0; k < n.n_children; ++k)
        if (trie.nodes[n.first_child + k].byte == static_cast<uint8_t>(rest[i])) node = n.first_child + k;
    }
    const TokenTrie::Node& m = trie.nodes[node];
    for (uint32_t k = 0; k < m.n_tokens; ++k) {
      const auto t = static_cast<size_t>(trie.token_ids[m.first_token + k]);
      if (t < allowed->size()) (*allowed)[t] = 1;
    }
  }
}

int32_t ToolCallFilter::required_reserve() const {
  if (!tool_ || format_ != chat::ToolCallFormat::kXml) return 0;
  const ToolSpec& t = tools_[*tool_];
  int32_t need = 0;
  for (const std::string& r : t.required) {
    if (std::find(written_params_.begin(), written_params_.end(), r) != written_params_.end()) continue;
    need += forced_tokens("<parameter=" + r + ">\n") + 1 + reserve_param_close_;
  }
  return need;
}

void ToolCallFilter::narrow_for_budget(int32_t tokens_left) {
  if (purpose_ != Purpose::kXmlNext || forced_.size() == 1 || !written_.empty()) return;
  const ToolSpec& tool = tools_[*tool_];
  auto required = [&](const std::string& p) {
    return std::find(tool.required.begin(), tool.required.end(), p) != tool.required.end();
  };
  // An optional parameter needs its opening, one value token and its closing, and room must stay
  // for the required ones still missing and the call's closing.
  int32_t need = 0;
  for (size_t i = 0; i < forced_.size(); ++i)
    if (!next_params_[i].empty() && !required(next_params_[i]))
      need = std::max(need, reserve_call_close_ + reserve_param_close_ + 1 + forced_tokens(forced_[i]));
  if (tokens_left >= need + required_reserve()) return;
  std::vector<std::string> keep;
  std::vector<std::string> keep_params;
  for (size_t i = 0; i < forced_.size(); ++i) {
    if (!next_params_[i].empty() && !required(next_params_[i])) continue;
    keep.push_back(forced_[i]);
    keep_params.push_back(next_params_[i]);
  }
  if (!keep.empty()) {
    forced_ = std::move(keep);
    next_params_ = std::move(keep_params);
  }
}

void ToolCallFilter::mask(float* logits, int64_t n_vocab, int32_t tokens_left) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  switch (stage_) {
    case Stage::kReasoning:
    case Stage::kFree:
      return;
    case Stage::kArguments:
    case Stage::kTypedValue:
      arguments_->mask(logits, n_vocab, std::max<int32_t>(1, tokens_left - reserve_call_close_ - required_reserve()));
      return;
    case Stage::kValue:
      if (tokens_left > reserve_param_close_ + reserve_call_close_ + required_reserve()) {
        for (int32_t id : trie_->eog_ids())  // the call is not closed yet
          if (id >= 0 && id < n_vocab) logits[id] = kNegInf;
        return;
      }
      force(Purpose::kXmlParamClose, {std::string(kXmlParamClose)});  // out of budget: close it now
      break;
    case Stage::kForced:
    case Stage::kEnd:
      break;
  }
  allowed_.assign(static_cast<size_t>(n_vocab), 0);
  if (stage_ == Stage::kForced) {
    narrow_for_budget(tokens_left);
    allow_forced(forced_, &allowed_);
  } else {  // kEnd
    for (int32_t id : trie_->eog_ids())
      if (id >= 0 && id < n_vocab) allowed_[static_cast<size_t>(id)] = 1;
  }
  if (std::find(allowed_.begin(), allowed_.end(), 1) == allowed_.end()) return;  // nothing fits: leave it be
  for (int64_t id = 0; id < n_vocab; ++id)
    if (!allowed_[static_cast<size_t>(id)]) logits[id] = kNegInf;
}

void ToolCallFilter::force(Purpose purpose, std::vector<std::string> texts) {
  stage_ = Stage::kForced;
  purpose_ = purpose;
  forced_ = std::move(texts);
  written_.clear();
}

void ToolCallFilter::forced_complete(size_t which) {
  const bool xml = format_ == chat::ToolCallFormat::kXml;
  switch (purpose_) {
    case Purpose::kOpen: {
      tool_ = which;
      chosen_ = tools_[which].name;
      if (!xml) {
        arguments_ = std::make_unique<runtime::GrammarFilter>(
            trie_, tools_[which].arguments ? tools_[which].arguments : runtime::json_object_grammar());
        stage_ = Stage::kArguments;
        return;
      }
      break;  // to the parameters
    }
    case Purpose::kHermesClose:
      stage_ = Stage::kEnd;
      return;
    case Purpose::kXmlNext:
      if (which < next_params_.size() && !next_params_[which].empty()) {
        written_params_.push_back(next_params_[which]);
        const ToolSpec& t = tools_[*tool_];
        const auto at = static_cast<size_t>(std::find(t.parameters.begin(), t.parameters.end(), next_params_[which]) -
                                            t.parameters.begin());
        if (at < t.values.size() && t.values[at]) {
          arguments_ = std::make_unique<runtime::GrammarFilter>(trie_, t.values[at]);
          stage_ = Stage::kTypedValue;
          return;
        }
      }
      if (forced_[which] == kXmlCallClose) {
        stage_ = Stage::kEnd;
      } else {
        stage_ = Stage::kValue;
        written_.clear();
      }
      return;
    case Purpose::kXmlParamClose:
      break;  // to the next parameter or the closing
  }
  // The parameters not written yet; the closing once no required one is missing.
  const ToolSpec& tool = tools_[*tool_];
  auto written = [&](const std::string& p) {
    return std::find(written_params_.begin(), written_params_.end(), p) != written_params_.end();
  };
  std::vector<std::string> next;
  next_params_.clear();
  for (const std::string& p : tool.parameters) {
    if (written(p)) continue;
    next.push_back("<parameter=" + p + ">\n");
    next_params_.push_back(p);
  }
  if (std::all_of(tool.required.begin(), tool.required.end(), written) || next.empty()) {
    next.emplace_back(kXmlCallClose);
    next_params_.emplace_back();
  }
  force(Purpose::kXmlNext, std::move(next));
}

void ToolCallFilter::accept(int32_t token) {
  switch (stage_) {
    case Stage::kReasoning:
      if (token == trie_->think_end_id()) stage_ = Stage::kForced;
      return;
    case Stage::kFree:
    case Stage::kEnd:
      return;
    case Stage::kArguments:
      arguments_->accept(token);
      if (arguments_->broken())
        stage_ = Stage::kFree;
      else if (arguments_->complete() && !arguments_->can_continue())
        force(Purpose::kHermesClose, {std::string(kHermesClose)});
      return;
    case Stage::kTypedValue:
      arguments_->accept(token);
      if (arguments_->broken()) {
        stage_ = Stage::kFree;
      } else if (arguments_->complete() && !arguments_->can_continue()) {
        purpose_ = Purpose::kXmlParamClose;  // the grammar wrote the closing tag
        forced_complete(0);
      }
      return;
    case Stage::kValue: {
      if (token < 0 || token >= trie_->n_vocab()) return;
      written_ += trie_->piece(token);
      const size_t end = written_.find(kParamEnd);
      if (end == std::string::npos) return;
      // The model closed the value itself; a newline follows the tag.
      const std::string tail = written_.substr(end + kParamEnd.size());
      if (tail.empty()) {
        force(Purpose::kXmlParamClose, {"\n"});
      } else if (tail == "\n") {
        purpose_ = Purpose::kXmlParamClose;  // as if the forced closing had been written
        forced_complete(0);
      } else {
        stage_ = Stage::kFree;
      }
      return;
    }
    case Stage::kForced:
      break;
  }
  if (token < 0 || token >= trie_->n_vocab()) {
    stage_ = Stage::kFree;
    return;
  }
  written_ += trie_->piece(token);
  bool consistent = false;
  for (size_t i = 0; i < forced_.size(); ++i) {
    if (written_ == forced_[i]) {
      forced_complete(i);
      return;
    }
    consistent = consistent || starts_with(forced_[i], written_);
  }
  if (!consistent) stage_ = Stage::kFree;  // an unexpected token came through: stop constraining
}

}  // namespace hylo::server
