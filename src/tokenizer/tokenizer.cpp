// Tokenizer: vocabulary loading and validation, encode (added tokens, NFC, regex split, byte-level
// BPE with a word cache) and decode.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <climits>
#include <mutex>
#include <unordered_map>

#include "gguf/gguf.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace hylo::tokenizer {
namespace {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Merge results per pre-token. Most text reuses a small set of words, so this turns BPE into a
// hash lookup. Sharded by hash so that concurrent encoders rarely wait on each other; a shard
// that grows past its limit is simply cleared (the cache is only an accelerator).
class WordCache {
 public:
  bool lookup(std::string_view word, size_t hash, std::vector<int32_t>* out) const {
    Shard& s = shards_[hash % kShards];
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.map.find(word);
    if (it == s.map.end()) return false;
    out->insert(out->end(), it->second.begin(), it->second.end());
    return true;
  }
  void insert(std::string_view word, size_t hash, std::vector<int32_t> ids) const {
    Shard& s = shards_[hash % kShards];
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.map.size() >= kMaxPerShard) s.map.clear();
    s.map.emplace(std::string(word), std::move(ids));
  }

 private:
  static constexpr size_t kShards = 16;
  static constexpr size_t kMaxPerShard = 1 << 15;
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
  };
  mutable std::array<Shard, kShards> shards_;
};

bool is_added_type(TokenType t) {
  return t == TokenType::kControl || t == TokenType::kUserDefined || t == TokenType::kUnknown;
}
bool is_hidden_type(TokenType t) { return t == TokenType::kControl || t == TokenType::kUnknown; }

}  // namespace

struct Tokenizer::Impl {
  Vocab vocab;
  std::vector<TokenType> types;
  std::vector<std::string> pieces;  // decoded bytes of every id ("" for unused rows)
  // Byte-level BPE tokens by vocabulary text (views into vocab.tokens); added tokens excluded.
  std::unordered_map<std::string_view, int32_t> bpe_ids;
  MergeTable merges;
  std::array<int32_t, 256> byte_ids{};
  PreTokenizer pre;

  // Added tokens grouped by first byte, longest first, for leftmost-longest matching.
  struct Added {
    std::string_view text;
    int32_t id;
    bool control;  // needs parse_special
  };
  std::array<std::vector<Added>, 256> added_by_byte;
  std::array<bool, 256> added_first{};

  std::vector<int32_t> eog;
  std::vector<bool> eog_flag;
  WordCache cache;

  Status build();
  void encode_plain(std::string_view text, std::vector<int32_t>* out) const;
  void encode_valid(std::string_view text, std::vector<int32_t>* out) const;
  void encode_word(std::string_view word, std::vector<int32_t>* out) const;
};

Status Tokenizer::Impl::build() {
  const size_t n = vocab.tokens.size();
  if (vocab.model != "gpt2")
    return make_error("[tokenizer] unsupported tokenizer.ggml.model '{}' (only byte-level BPE 'gpt2' is supported)",
                      vocab.model);
  if (n == 0) return make_error("[tokenizer] tokenizer.ggml.tokens is missing or empty");
  if (n > static_cast<size_t>(INT32_MAX)) return make_error("[tokenizer] vocabulary too large: {} tokens", n);
  if (vocab.token_types.size() != n)
    return make_error("[tokenizer] tokenizer.ggml.token_type has {} entries, tokenizer.ggml.tokens has {}",
                      vocab.token_types.size(), n);
  HYLO_ASSIGN_OR_RETURN(PreTokenizerKind kind, pre_tokenizer_kind(vocab.pre));
  HYLO_ASSIGN_OR_RETURN(pre, PreTokenizer::create(kind));
  for (const auto& [name, id] : {std::pair{"bos", vocab.bos_id}, {"eos", vocab.eos_id}, {"padding", vocab.pad_id}})
    if (id < -1 || id >= static_cast<int64_t>(n))
      return make_error("[tokenizer] tokenizer.ggml.{}_token_id = {} is outside the vocabulary (0..{})", name, id,
                        n - 1);

  types.resize(n);
  pieces.resize(n);
  bpe_ids.reserve(n);
  for (size_t id = 0; id < n; ++id) {
    const int32_t t = vocab.token_types[id];
    if (t < 0 || t > static_cast<int32_t>(TokenType::kByte))
      return make_error("[tokenizer] token {} ('{}'): unknown token type {}", id, vocab.tokens[id], t);
    types[id] = static_cast<TokenType>(t);
    const std::string& text = vocab.tokens[id];
    if (is_added_type(types[id])) {
      if (text.empty()) return make_error("[tokenizer] added token {} has empty text", id);
      pieces[id] = text;
      const auto first = static_cast<uint8_t>(text[0]);
      added_by_byte[first].push_back({text, static_cast<int32_t>(id), types[id] != TokenType::kUserDefined});
      added_first[first] = true;
    } else if (types[id] != TokenType::kUnused) {
      // Normal tokens are stored byte-level encoded; a code point outside the byte table is kept
      // as its own UTF-8 (such a token cannot come out of encode anyway).
      if (!byte_level_decode(text, &pieces[id])) pieces[id] = text;
      bpe_ids.emplace(text, static_cast<int32_t>(id));  // first occurrence wins
    }
  }
  for (auto& list : added_by_byte)
    std::stable_sort(list.begin(), list.end(),
                     [](const Added& a, const Added& b) { return a.text.size() > b.text.size(); });

  for (int b = 0; b < 256; ++b) {
    const std::string sym = byte_level_encode(std::string_view(reinterpret_cast<const char*>(&b), 1));
    auto it = bpe_ids.find(sym);
    if (it == bpe_ids.end())
      return make_error("[tokenizer] byte-level vocabulary lacks the token for byte 0x{:02X} ('{}')", b, sym);
    byte_ids[b] = it->second;
  }

  merges.reserve(vocab.merges.size());
  std::string joined;
  for (size_t rank = 0; rank < vocab.merges.size(); ++rank) {
    const std::string& m = vocab.merges[rank];
    const size_t sp = m.find(' ', 1);
    if (sp == std::string::npos || sp + 1 >= m.size())
      return make_error("[tokenizer] merge {} ('{}') is not of the form 'A B'", rank, m);
    const std::string_view left(m.data(), sp), right(m.data() + sp + 1, m.size() - sp - 1);
    auto l = bpe_ids.find(left), r = bpe_ids.find(right);
    if (l == bpe_ids.end() || r == bpe_ids.end())
      return make_error("[tokenizer] merge {} ('{}') references unknown token '{}'", rank, m,
                        l == bpe_ids.end() ? left : right);
    joined.assign(left).append(right);
    auto res = bpe_ids.find(joined);
    if (res == bpe_ids.end())
      return make_error("[tokenizer] merge {} ('{}'): the merged token '{}' is not in the vocabulary", rank, m, joined);
    merges.insert(l->second, r->second, static_cast<int32_t>(rank), res->second);
  }

  // llama.cpp's end-of-generation set for this family. (llama.cpp also forces a plain "</s>"
  // vocabulary entry to EOG; HF does not, and neither do we.)
  eog_flag.assign(n, false);
  auto add_eog = [&](int32_t id) {
    if (id >= 0 && !eog_flag[id]) {
      eog_flag[id] = true;
      eog.push_back(id);
    }
  };
  add_eog(vocab.eos_id);
  for (const char* name : {"<|im_end|>", "<|endoftext|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"})
    for (const Added& a : added_by_byte['<'])
      if (a.text == name) add_eog(a.id);
  std::sort(eog.begin(), eog.end());
  return ok_status();
}

void Tokenizer::Impl::encode_word(std::string_view word, std::vector<int32_t>* out) const {
  if (word.size() == 1) {
    out->push_back(byte_ids[static_cast<uint8_t>(word[0])]);
    return;
  }
  const size_t hash = StringHash{}(word);
  if (cache.lookup(word, hash, out)) return;
  std::vector<int32_t> symbols(word.size());
  for (size_t i = 0; i < word.size(); ++i) symbols[i] = byte_ids[static_cast<uint8_t>(word[i])];
  bpe_merge(merges, &symbols);
  out->insert(out->end(), symbols.begin(), symbols.end());
  cache.insert(word, hash, std::move(symbols));
}

void Tokenizer::Impl::encode_valid(std::string_view text, std::vector<int32_t>* out) const {
  std::string normalized;
  if (may_need_nfc(text)) {
    normalized = nfc_normalize(text);
    text = normalized;
  }
  std::vector<std::string_view> words;
  words.reserve(text.size() / 4 + 1);
  pre.split(text, &words);
  for (std::string_view w : words) encode_word(w, out);
}

void Tokenizer::Impl::encode_plain(std::string_view text, std::vector<int32_t>* out) const {
  // Valid runs go through normalisation and the regex; each invalid byte becomes its own token.
  size_t run = 0, pos = 0;
  while (pos < text.size()) {
    uint32_t cp;
    if (static_cast<uint8_t>(text[pos]) < 0x80) {
      ++pos;
    } else if (!utf8_decode(text, pos, &cp)) {
      encode_valid(text.substr(run, pos - run), out);
      out->push_back(byte_ids[static_cast<uint8_t>(text[pos])]);
      run = ++pos;
    }
  }
  encode_valid(text.substr(run), out);
}

Result<Tokenizer> Tokenizer::from_vocab(Vocab vocab) {
  auto impl = std::make_shared<Impl>();
  impl->vocab = std::move(vocab);
  HYLO_TRY(impl->build());
  Tokenizer t;
  t.impl_ = std::move(impl);
  return t;
}

Result<Tokenizer> Tokenizer::from_gguf(const gguf::File& file) {
  Vocab v;
  const std::string& name = file.path();
  auto model = file.get_string("tokenizer.ggml.model");
  if (!model) return make_error("[tokenizer] {}: tokenizer.ggml.model is missing", name);
  v.model = *model;
  auto pre = file.get_string("tokenizer.ggml.pre");
  if (!pre) return make_error("[tokenizer] {}: tokenizer.ggml.pre is missing", name);
  v.pre = *pre;

  const gguf::Array* tokens = file.get_array("tokenizer.ggml.tokens");
  if (tokens == nullptr || tokens->elem_type != gguf::ValueType::kString)
    return make_error("[tokenizer] {}: tokenizer.ggml.tokens is missing or not a string array", name);
  v.tokens = tokens->strings;

  const gguf::Array* types = file.get_array("tokenizer.ggml.token_type");
  if (types == nullptr || !gguf::is_integer(types->elem_type))
    return make_error("[tokenizer] {}: tokenizer.ggml.token_type is missing or not an integer array", name);
  v.token_types.reserve(types->size());
  for (int64_t t : types->ints) v.token_types.push_back(static_cast<int32_t>(std::clamp<int64_t>(t, -1, 1000)));
  for (uint64_t t : types->uints) v.token_types.push_back(static_cast<int32_t>(std::min<uint64_t>(t, 1000)));

  const gguf::Array* merges = file.get_array("tokenizer.ggml.merges");
  if (merges == nullptr || merges->elem_type != gguf::ValueType::kString)
    return make_error("[tokenizer] {}: tokenizer.ggml.merges is missing or not a string array", name);
  v.merges = merges->strings;

  auto id_of = [&](const char* key, int32_t* out) -> Status {
    const gguf::Value* val = file.find(key);
    if (val == nullptr) return ok_status();
    auto i = val->as_int();
    if (!i || *i < 0 || *i > INT32_MAX)
      return make_error("[tokenizer] {}: {} must be a non-negative integer, got {}", name, key, val->to_string());
    *out = static_cast<int32_t>(*i);
    return ok_status();
  };
  HYLO_TRY(id_of("tokenizer.ggml.bos_token_id", &v.bos_id));
  HYLO_TRY(id_of("tokenizer.ggml.eos_token_id", &v.eos_id));
  HYLO_TRY(id_of("tokenizer.ggml.padding_token_id", &v.pad_id));
  v.add_bos = file.get_bool("tokenizer.ggml.add_bos_token").value_or(false);
  v.chat_template = file.get_string("tokenizer.chat_template").value_or("");

  auto t = from_vocab(std::move(v));
  if (!t.ok()) return make_error("{} ({})", t.message(), name);
  return t;
}

Result<Tokenizer> Tokenizer::from_gguf_file(const std::string& path) {
  HYLO_ASSIGN_OR_RETURN(gguf::File file, gguf::File::open(path));
  return from_gguf(file);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special) const {
  const Impl& m = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 1);
  size_t segment = 0;
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<uint8_t>(text[i]);
    const Impl::Added* match = nullptr;
    if (m.added_first[c]) {
      for (const Impl::Added& a : m.added_by_byte[c]) {
        if ((!a.control || parse_special) && text.substr(i, a.text.size()) == a.text) {
          match = &a;
          break;
        }
      }
    }
    if (match == nullptr) {
      ++i;
      continue;
    }
    m.encode_plain(text.substr(segment, i - segment), &out);
    out.push_back(match->id);
    i += match->text.size();
    segment = i;
  }
  m.encode_plain(text.substr(segment), &out);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool show_special) const {
  const Impl& m = *impl_;
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || id >= n_vocab()) continue;
    if (!show_special && is_hidden_type(m.types[id])) continue;
    out += m.pieces[id];
  }
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id) const {
  if (id < 0 || id >= n_vocab()) return {};
  return impl_->pieces[id];
}

const std::string& Tokenizer::token_text(int32_t id) const {
  static const std::string empty;
  if (id < 0 || id >= n_vocab()) return empty;
  return impl_->vocab.tokens[id];
}

TokenType Tokenizer::token_type(int32_t id) const {
  if (id < 0 || id >= n_vocab()) return TokenType::kUndefined;
  return impl_->types[id];
}

int32_t Tokenizer::n_vocab() const { return static_cast<int32_t>(impl_->types.size()); }
int32_t Tokenizer::bos_id() const { return impl_->vocab.bos_id; }
int32_t Tokenizer::eos_id() const { return impl_->vocab.eos_id; }
int32_t Tokenizer::pad_id() const { return impl_->vocab.pad_id; }
bool Tokenizer::add_bos() const { return impl_->vocab.add_bos; }
bool Tokenizer::is_eog(int32_t id) const { return id >= 0 && id < n_vocab() && impl_->eog_flag[id]; }
const std::vector<int32_t>& Tokenizer::eog_ids() const { return impl_->eog; }
bool Tokenizer::is_special(int32_t id) const { return is_added_type(token_type(id)); }
bool Tokenizer::is_control(int32_t id) const { return is_hidden_type(token_type(id)); }
const std::string& Tokenizer::chat_template() const { return impl_->vocab.chat_template; }
PreTokenizerKind Tokenizer::pre_tokenizer() const { return impl_->pre.kind(); }

std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  const Impl& m = *impl_;
  if (text.empty()) return std::nullopt;
  for (const Impl::Added& a : m.added_by_byte[static_cast<uint8_t>(text[0])])
    if (a.text == text) return a.id;
  auto it = m.bpe_ids.find(byte_level_encode(text));
  if (it == m.bpe_ids.end()) return std::nullopt;
  return it->second;
}

}  // namespace hylo::tokenizer
