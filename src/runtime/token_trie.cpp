#include "runtime/token_trie.h"

#include <algorithm>
#include <string_view>
#include <utility>

namespace hylo::runtime {

namespace {

// Builds a trie over (piece, id) pairs sorted by piece; children of a node are allocated together.
void build(const std::vector<std::pair<std::string_view, int32_t>>& sorted, size_t lo, size_t hi, size_t depth,
           uint32_t node, TokenTrie::Trie* t) {
  size_t i = lo;
  t->nodes[node].first_token = static_cast<uint32_t>(t->token_ids.size());
  while (i < hi && sorted[i].first.size() == depth) t->token_ids.push_back(sorted[i++].second);
  t->nodes[node].n_tokens = static_cast<uint32_t>(t->token_ids.size()) - t->nodes[node].first_token;
  // Groups by the next byte.
  std::vector<std::pair<size_t, size_t>> groups;
  while (i < hi) {
    const uint8_t b = static_cast<uint8_t>(sorted[i].first[depth]);
    size_t j = i;
    while (j < hi && static_cast<uint8_t>(sorted[j].first[depth]) == b) ++j;
    groups.emplace_back(i, j);
    i = j;
  }
  const uint32_t first = static_cast<uint32_t>(t->nodes.size());
  t->nodes[node].first_child = first;
  t->nodes[node].n_children = static_cast<uint32_t>(groups.size());
  for (const auto& [a, b] : groups) {
    TokenTrie::Node n;
    n.byte = static_cast<uint8_t>(sorted[a].first[depth]);
    t->nodes.push_back(n);
  }
  for (size_t g = 0; g < groups.size(); ++g)
    build(sorted, groups[g].first, groups[g].second, depth + 1, first + static_cast<uint32_t>(g), t);
}

// Whole UTF-8 characters only (no cut or overlong sequence).
bool whole_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<uint8_t>(s[i]);
    const size_t n = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 && b >= 0xC2 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 && b <= 0xF4 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<uint8_t>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

TokenTrie::Trie make_trie(std::vector<std::pair<std::string_view, int32_t>> entries) {
  std::sort(entries.begin(), entries.end());
  TokenTrie::Trie t;
  t.nodes.emplace_back();
  build(entries, 0, entries.size(), 0, 0, &t);
  std::vector<bool> regular_end(t.nodes.size(), true);  // the tokens ending at a node are whole characters
  {
    std::vector<std::pair<uint32_t, std::string>> stack = {{0, ""}};
    while (!stack.empty()) {
      auto [n, path] = std::move(stack.back());
      stack.pop_back();
      if (t.nodes[n].n_tokens > 0) regular_end[n] = whole_utf8(path);
      for (uint32_t k = 0; k < t.nodes[n].n_children; ++k) {
        const uint32_t child = t.nodes[n].first_child + k;
        stack.emplace_back(child, path + static_cast<char>(t.nodes[child].byte));
      }
    }
  }
  // Children come after their parent: summarise from the last node back.
  t.below.resize(t.nodes.size());
  for (size_t i = t.nodes.size(); i-- > 0;) {
    const TokenTrie::Node& n = t.nodes[i];
    TokenTrie::Below& b = t.below[i];
    b.end = n.first_token + n.n_tokens;
    for (uint32_t k = 0; k < n.n_children; ++k) {
      const uint32_t c = n.first_child + k;
      const TokenTrie::Below& cb = t.below[c];
      const uint8_t byte = t.nodes[c].byte;
      if (byte < 0x80)
        b.ascii[byte >> 6] |= uint64_t{1} << (byte & 63);
      else
        b.high = true;
      b.ascii[0] |= cb.ascii[0];
      b.ascii[1] |= cb.ascii[1];
      b.high = b.high || cb.high;
      b.irregular = b.irregular || cb.irregular || !regular_end[c];
      b.end = std::max(b.end, cb.end);
    }
  }
  return t;
}

bool string_safe(std::string_view piece) {
  for (char ch : piece) {
    const auto c = static_cast<uint8_t>(ch);
    if (c < 0x20 || c == '"' || c == '\\') return false;
  }
  return true;
}

}  // namespace

TokenTrie::TokenTrie(const std::vector<std::string>& pieces, const std::vector<bool>& include,
                     std::vector<int32_t> eog_ids, int32_t think_end_id)
    : pieces_(pieces), eog_ids_(std::move(eog_ids)), think_end_id_(think_end_id) {
  std::vector<std::pair<std::string_view, int32_t>> all, unsafe;
  for (size_t id = 0; id < pieces_.size(); ++id) {
    if (!include[id] || pieces_[id].empty()) continue;
    all.emplace_back(pieces_[id], static_cast<int32_t>(id));
    if (string_safe(pieces_[id]))
      safe_ids_.push_back(static_cast<int32_t>(id));
    else
      unsafe.emplace_back(pieces_[id], static_cast<int32_t>(id));
  }
  all_ = make_trie(std::move(all));
  unsafe_ = make_trie(std::move(unsafe));
}

std::unique_ptr<TokenTrie> TokenTrie::from_tokenizer(const tokenizer::Tokenizer& tok) {
  const int32_t n = tok.n_vocab();
  std::vector<std::string> pieces(static_cast<size_t>(n));
  std::vector<bool> include(static_cast<size_t>(n));
  for (int32_t id = 0; id < n; ++id) {
    pieces[id] = tok.token_to_piece(id);
    include[id] = !tok.is_special(id) && tok.token_type(id) != tokenizer::TokenType::kUnused;
  }
  const int32_t think_end = tok.find_token("</think>").value_or(-1);
  return std::make_unique<TokenTrie>(pieces, include, tok.eog_ids(), think_end);
}

}  // namespace hylo::runtime
