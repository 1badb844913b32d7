#include "server/json_fields.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "server/request.h"

namespace hylo::server {

namespace {

std::string range_text(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{}", v);
}

// Follows a SAX parse to name where it failed: "options.temperature", "messages[2].content".
// Used only after a DOM parse failed, to turn nlohmann's "number overflow parsing '1e400'" into
// a message that names the field.
class PathTracker : public nlohmann::json_sax<ojson> {
 public:
  std::string where;  // the path at the error
  std::string token;  // the offending token

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool string(string_t&) override { return value(); }
  bool binary(binary_t&) override { return value(); }
  bool start_object(std::size_t) override {
    stack_.push_back({false, 0, {}});
    return true;
  }
  bool key(string_t& k) override {
    stack_.back().key = k;
    return true;
  }
  bool end_object() override { return end(); }
  bool start_array(std::size_t) override {
    stack_.push_back({true, 0, {}});
    return true;
  }
  bool end_array() override { return end(); }
  bool parse_error(std::size_t, const std::string& last_token, const nlohmann::detail::exception&) override {
    for (const Frame& f : stack_) {
      if (f.array)
        where += fmt::format("[{}]", f.index);
      else
        where += (where.empty() ? "" : ".") + f.key;
    }
    token = last_token;
    return false;
  }

 private:
  struct Frame {
    bool array;
    size_t index;
    std::string key;
  };
  bool value() {
    if (!stack_.empty() && stack_.back().array) ++stack_.back().index;
    return true;
  }
  bool end() {
    stack_.pop_back();
    return value();
  }
  std::vector<Frame> stack_;
};

}  // namespace

bool FieldReader::has(std::string_view key) const { return get(key) != nullptr; }

const ojson* FieldReader::get(std::string_view key) const {
  if (!obj_.is_object()) return nullptr;
  auto it = obj_.find(key);
  if (it == obj_.end() || it->is_null()) return nullptr;
  return &*it;
}

Result<std::optional<double>> FieldReader::number(std::string_view key, double lo, double hi) const {
  const ojson* v = get(key);
  if (v == nullptr) return std::optional<double>();
  if (!v->is_number()) return make_error("{} must be a number", name(key));
  const double d = v->get<double>();
  if (!std::isfinite(d) || d < lo || d > hi)
    return make_error("{} must be between {} and {}", name(key), range_text(lo), range_text(hi));
  return std::optional<double>(d);
}

Result<std::optional<int64_t>> FieldReader::integer(std::string_view key, int64_t lo, int64_t hi) const {
  const ojson* v = get(key);
  if (v == nullptr) return std::optional<int64_t>();
  int64_t i = 0;
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      return make_error("{} must be between {} and {}", name(key), lo, hi);
    i = v->get<int64_t>();
  } else if (v->is_number_float()) {
    // JavaScript clients may send 1.0 for 1; a fraction is an error.
    const double d = v->get<double>();
    if (!std::isfinite(d) || d != std::floor(d)) return make_error("{} must be an integer", name(key));
    if (d < static_cast<double>(lo) || d > static_cast<double>(hi))
      return make_error("{} must be between {} and {}", name(key), lo, hi);
    i = static_cast<int64_t>(d);
  } else {
    return make_error("{} must be an integer", name(key));
  }
  if (i < lo || i > hi) return make_error("{} must be between {} and {}", name(key), lo, hi);
  return std::optional<int64_t>(i);
}

Result<std::optional<bool>> FieldReader::boolean(std::string_view key) const {
  const ojson* v = get(key);
  if (v == nullptr) return std::optional<bool>();
  if (!v->is_boolean()) return make_error("{} must be a boolean", name(key));
  return std::optional<bool>(v->get<bool>());
}

Result<std::optional<std::string>> FieldReader::string(std::string_view key) const {
  const ojson* v = get(key);
  if (v == nullptr) return std::optional<std::string>();
  if (!v->is_string()) return make_error("{} must be a string", name(key));
  return std::optional<std::string>(v->get<std::string>());
}

Result<std::vector<std::string>> FieldReader::string_or_list(std::string_view key, size_t max_items) const {
  std::vector<std::string> out;
  const ojson* v = get(key);
  if (v == nullptr) return out;
  if (v->is_string()) {
    out.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string()) return make_error("{}[{}] must be a string", name(key), i);
      out.push_back((*v)[i].get<std::string>());
    }
  } else {
    return make_error("{} must be a string or an array of strings", name(key));
  }
  if (out.size() > max_items) return make_error("{} may hold at most {} strings", name(key), max_items);
  for (const auto& s : out)
    if (s.empty()) return make_error("{} must not contain empty strings", name(key));
  return out;
}

Result<const ojson*> FieldReader::object(std::string_view key) const {
  const ojson* v = get(key);
  if (v != nullptr && !v->is_object()) return make_error("{} must be an object", name(key));
  return v;
}

Result<const ojson*> FieldReader::array(std::string_view key) const {
  const ojson* v = get(key);
  if (v != nullptr && !v->is_array()) return make_error("{} must be an array", name(key));
  return v;
}

// Deepest nesting of arrays and objects in JSON text (strings skipped). Parsing is iterative, but
// the chat template and dumps recurse, so a body nested 100000 levels deep is refused up front.
size_t json_nesting(std::string_view text) {
  size_t depth = 0, max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return max_depth;
}

Result<ojson> parse_body(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos)
    return make_error("the request body is empty: send a JSON object (Content-Type: application/json)");
  if (json_nesting(body) > kMaxJsonNesting)
    return make_error("the request body nests arrays and objects deeper than {} levels", kMaxJsonNesting);
  ojson j;
  try {
    j = ojson::parse(body);
  } catch (const ojson::out_of_range& e) {
    // A number beyond a double's range (1e400): say which field, as for any invalid value.
    PathTracker tracker;
    ojson::sax_parse(body, &tracker);
    const std::string field = tracker.where.empty() ? "a number" : tracker.where;
    return make_error("{} is out of range: {} does not fit a double", field, tracker.token.substr(0, 64));
  } catch (const ojson::exception& e) {
    // nlohmann's text starts with "[json.exception.parse_error.101] "; the rest says where.
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    return make_error("invalid JSON in the request body: {}", what);
  }
  if (!j.is_object()) return make_error("the request body must be a JSON object");
  return j;
}

std::string dump_json(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

Result<LlamaSamplingFields> read_llama_sampling(const FieldReader& r, int64_t n_vocab, SamplingOverrides* s) {
  constexpr int64_t kMaxInt32 = std::numeric_limits<int32_t>::max();
  HYLO_ASSIGN_OR_RETURN(auto temperature, r.number("temperature", 0, 100));
  HYLO_ASSIGN_OR_RETURN(auto top_k, r.integer("top_k", -1, kMaxInt32));
  HYLO_ASSIGN_OR_RETURN(auto top_p, r.number("top_p", 0, 1));
  HYLO_ASSIGN_OR_RETURN(auto min_p, r.number("min_p", 0, 1));
  HYLO_ASSIGN_OR_RETURN(auto repeat_penalty, r.number("repeat_penalty", 0, 100));
  HYLO_ASSIGN_OR_RETURN(auto repeat_last_n, r.integer("repeat_last_n", -1, kMaxInt32));
  HYLO_ASSIGN_OR_RETURN(auto presence, r.number("presence_penalty", -100, 100));
  HYLO_ASSIGN_OR_RETURN(auto frequency, r.number("frequency_penalty", -100, 100));
  HYLO_ASSIGN_OR_RETURN(auto seed,
                        r.integer("seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()));
  if (temperature) s->temperature = static_cast<float>(*temperature);
  if (top_k) s->top_k = static_cast<int32_t>(std::min<int64_t>(std::max<int64_t>(*top_k, 0), n_vocab));
  if (min_p) s->min_p = static_cast<float>(*min_p);
  if (repeat_penalty) {
    if (*repeat_penalty <= 0) return make_error("{} must be greater than 0", r.name("repeat_penalty"));
    s->repeat_penalty = static_cast<float>(*repeat_penalty);
  }
  if (repeat_last_n) s->repeat_last_n = static_cast<int32_t>(*repeat_last_n);
  if (presence) s->presence_penalty = static_cast<float>(*presence);
  if (frequency) s->frequency_penalty = static_cast<float>(*frequency);
  return LlamaSamplingFields{top_p, seed};
}

Status read_prompts(const ojson& prompt, int64_t n_vocab, int max_prompts, std::vector<PromptInput>* out) {
  constexpr const char* kShape =
      "prompt must be a string, an array of strings, an array of token ids or an array of such arrays";
  auto token_list = [&](const ojson& a) -> Result<PromptInput> {
    PromptInput p;
    p.is_tokens = true;
    for (const auto& t : a) {
      const int64_t v = t.is_number_integer() ? t.get<int64_t>() : -1;
      if (v < 0 || v >= n_vocab) return make_error("prompt token ids must be integers in [0, {})", n_vocab);
      p.tokens.push_back(static_cast<int32_t>(v));
    }
    return p;
  };
  if (prompt.is_string()) {
    out->push_back({prompt.get<std::string>(), {}, false});
  } else if (prompt.is_array() && !prompt.empty() && prompt[0].is_number()) {
    HYLO_ASSIGN_OR_RETURN(PromptInput p, token_list(prompt));
    out->push_back(std::move(p));
  } else if (prompt.is_array() && !prompt.empty()) {
    for (const auto& item : prompt) {
      if (item.is_string()) {
        out->push_back({item.get<std::string>(), {}, false});
      } else if (item.is_array()) {
        HYLO_ASSIGN_OR_RETURN(PromptInput p, token_list(item));
        out->push_back(std::move(p));
      } else {
        return make_error("{}", kShape);
      }
    }
  } else {
    return make_error("{}", kShape);
  }
  if (out->size() > static_cast<size_t>(max_prompts))
    return make_error("prompt may hold at most {} prompts", max_prompts);
  return ok_status();
}

}  // namespace hylo::server
