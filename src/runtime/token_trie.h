// The vocabulary as byte tries, so that a constraint (JSON mode, grammars, tool calls) tests every
// token sharing a prefix in one walk. Knows tokens as bytes only; nothing about grammars.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace hylo::runtime {

// The vocabulary's byte strings as tries, so that a constraint tests every token sharing a prefix
// in one walk. Special tokens (<|im_end|>, <think>, ...) and tokens without bytes are left out.
class TokenTrie {
 public:
  struct Node {
    uint32_t first_child = 0, n_children = 0;  // children are contiguous in nodes()
    uint32_t first_token = 0, n_tokens = 0;    // tokens whose bytes end here, in token_ids()
    uint8_t byte = 0;                          // the edge from the parent
  };
  // What the tokens below a node are made of, so a constraint can allow a whole subtree at once
  // when every byte in it keeps its state (e.g. the inside of a string).
  struct Below {
    uint64_t ascii[2] = {0, 0};  // bytes < 0x80 on edges below the node
    bool high = false;           // bytes >= 0x80 below
    bool irregular = false;      // a token below is not whole UTF-8 characters
    uint32_t end = 0;            // the subtree's tokens are token_ids[first_token, end)
  };
  struct Trie {
    std::vector<Node> nodes;  // nodes[0] is the root
    std::vector<int32_t> token_ids;  // in depth-first order: a subtree's tokens are contiguous
    std::vector<Below> below;        // [nodes.size()]
  };

  // pieces[id]: the bytes of token id; include[id]: whether it may be generated at all.
  TokenTrie(const std::vector<std::string>& pieces, const std::vector<bool>& include, std::vector<int32_t> eog_ids,
            int32_t think_end_id);
  static std::unique_ptr<TokenTrie> from_tokenizer(const tokenizer::Tokenizer& tok);

  const Trie& all() const { return all_; }
  // Tokens with a quote, a backslash or a control byte, and the other ones (which can continue
  // any JSON string without changing its state).
  const Trie& string_unsafe() const { return unsafe_; }
  const std::vector<int32_t>& string_safe_ids() const { return safe_ids_; }
  const std::string& piece(int32_t id) const { return pieces_[static_cast<size_t>(id)]; }
  const std::vector<int32_t>& eog_ids() const { return eog_ids_; }
  int32_t think_end_id() const { return think_end_id_; }  // </think>, or -1
  int64_t n_vocab() const { return static_cast<int64_t>(pieces_.size()); }

 private:
  std::vector<std::string> pieces_;
  std::vector<int32_t> eog_ids_;
  int32_t think_end_id_ = -1;
  Trie all_, unsafe_;
  std::vector<int32_t> safe_ids_;
};

}  // namespace hylo::runtime
