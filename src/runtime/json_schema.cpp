#include "runtime/json_schema.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "base/check.h"

namespace hylo::runtime {

namespace {

using json = nlohmann::ordered_json;

constexpr int kMaxCount = 1024;  // minItems, maxItems, minLength, maxLength

// Bounded whitespace so a model cannot pad forever; numbers bounded so they parse as doubles.
constexpr const char* kPrimitives = R"(ws ::= [ \t\n]{0,4}
char ::= [^"\\\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})
string ::= "\"" char* "\""
integer ::= "-"? ("0" | [1-9] [0-9]{0,15})
number ::= "-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,2})?
boolean ::= "true" | "false"
null ::= "null"
value ::= object | array | string | number | boolean | null
object ::= "{" ws (string ws ":" ws value (ws "," ws string ws ":" ws value)*)? ws "}"
array ::= "[" ws (value (ws "," ws value)*)? ws "]"
)";

// Formats cheap to write as grammars (RFC 3339 dates and times, RFC 4122 UUIDs).
const std::map<std::string, std::string>& format_rules() {
  static const std::map<std::string, std::string> rules = {
      {"date", R"("\"" fmt-date "\"")"},
      {"time", R"("\"" fmt-time "\"")"},
      {"date-time", R"("\"" fmt-date "T" fmt-time "\"")"},
      {"uuid", R"("\"" [0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12} "\"")"},
  };
  return rules;
}
constexpr const char* kFormatPrimitives = R"(fmt-date ::= [0-9]{4} "-" ("0" [1-9] | "1" [0-2]) "-" ("0" [1-9] | [1-2] [0-9] | "3" [0-1])
fmt-time ::= ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9]{1,6})? ("Z" | [+-] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9])
)";

// Keywords that do not constrain the text.
const std::set<std::string>& annotations() {
  static const std::set<std::string> s = {"title",    "description", "default",   "examples",   "$schema",
                                          "$id",      "$comment",    "deprecated", "readOnly",  "writeOnly",
                                          "$defs",    "definitions", "contentMediaType", "contentEncoding"};
  return s;
}

// A GBNF literal for bytes.
std::string literal(const std::string& bytes) {
  std::string out = "\"";
  for (char ch : bytes) {
    const auto c = static_cast<uint8_t>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20) {
      out += fmt::format("\\x{:02X}", c);
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

// A GBNF class item for one code point.
std::string class_char(uint32_t cp) {
  if (cp == '"' || cp == '\\' || cp == ']' || cp == '[' || cp == '-' || cp == '^') return fmt::format("\\{}", static_cast<char>(cp));
  if (cp < 0x20 || cp > 0x7E) return fmt::format("\\U{:08X}", cp);
  return std::string(1, static_cast<char>(cp));
}

std::vector<uint32_t> code_points(const std::string& s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<uint8_t>(s[i]);
    const int n = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : 4;
    uint32_t cp = n == 1 ? b : b & (0x7F >> n);
    for (int k = 1; k < n && i + static_cast<size_t>(k) < s.size(); ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + static_cast<size_t>(k)]) & 0x3F);
    out.push_back(cp);
    i += static_cast<size_t>(n);
  }
  return out;
}

class Converter {
 public:
  explicit Converter(const json& root) : root_(root) {}

  // The grammar of values valid against `node` (a part of the root schema), then `suffix`.
  Result<std::string> run(const json& node, const std::string& path, const std::string& suffix = "") {
    HYLO_ASSIGN_OR_RETURN(std::string body, visit(node, "root", path));
    std::string out = fmt::format("root ::= {}{}\n", body, suffix.empty() ? "" : " " + literal(suffix));
    for (const auto& [name, def] : rules_) out += fmt::format("{} ::= {}\n", name, def);
    out += kPrimitives;
    if (uses_formats_) out += kFormatPrimitives;
    return out;
  }

 private:
  std::string new_rule(const std::string& hint, std::string def) {
    std::string base;
    for (char c : hint) base += (std::isalnum(static_cast<unsigned char>(c)) || c == '-') ? c : '-';
    if (base.empty()) base = "r";
    std::string name = base;
    for (int i = 2; rules_.count(name) || reserved(name); ++i) name = fmt::format("{}-{}", base, i);
    rules_[name] = std::move(def);
    return name;
  }
  static bool reserved(const std::string& n) {
    static const std::set<std::string> r = {"root", "ws", "char", "string", "integer", "number", "boolean",
                                             "null", "value", "object", "array", "fmt-date", "fmt-time"};
    return r.count(n) > 0;
  }
  static Error unsupported(const std::string& path, const std::string& keyword, const std::string& why = "") {
    return make_error("[json_schema] {}: unsupported keyword '{}'{}", path, keyword, why.empty() ? "" : " (" + why + ")");
  }

  Result<int> count(const json& s, const char* key, const std::string& path) const {
    const json& v = s[key];
    if (!v.is_number_integer() || v.get<int64_t>() < 0)
      return make_error("[json_schema] {}: '{}' must be a non-negative integer", path, key);
    if (v.get<int64_t>() > kMaxCount)
      return unsupported(path, key, fmt::format("values above {} are not supported", kMaxCount));
    return static_cast<int>(v.get<int64_t>());
  }

  // A GBNF expression for values valid against `s`.
  Result<std::string> visit(const json& s, const std::string& hint, const std::string& path) {
    if (s.is_boolean()) {
      if (!s.get<bool>()) return make_error("[json_schema] {}: the schema false admits no value", path);
      return std::string("value");
    }
    if (!s.is_object()) return make_error("[json_schema] {}: a schema must be an object or a boolean", path);
    static const std::set<std::string> kKnown = {
        "type", "properties", "required", "additionalProperties", "enum", "const", "items", "minItems",
        "maxItems", "minLength", "maxLength", "format", "anyOf", "oneOf", "allOf", "$ref"};
    for (const auto& [key, value] : s.items())
      if (!kKnown.count(key) && !annotations().count(key)) return unsupported(path, key);
    if (s.contains("$ref")) return ref(s, path);
    if (s.contains("const")) return literal(s["const"].dump());
    if (s.contains("enum")) {
      if (!s["enum"].is_array() || s["enum"].empty())
        return make_error("[json_schema] {}: 'enum' must be a non-empty array", path);
      std::string alts;
      for (const json& v : s["enum"]) alts += (alts.empty() ? "" : " | ") + literal(v.dump());
      return "(" + alts + ")";
    }
    for (const char* key : {"anyOf", "oneOf", "allOf"}) {
      if (!s.contains(key)) continue;
      if (!s[key].is_array() || s[key].empty())
        return make_error("[json_schema] {}: '{}' must be a non-empty array", path, key);
      for (const char* other : {"type", "properties", "items", "anyOf", "oneOf", "allOf"})
        if (other != std::string(key) && s.contains(other))
          return unsupported(path, key, fmt::format("together with '{}'", other));
      if (std::string(key) == "allOf") {
        if (s[key].size() != 1) return unsupported(path, key, "with more than one schema");
        return visit(s[key][0], hint, path + "/allOf/0");
      }
      std::string alts;
      for (size_t i = 0; i < s[key].size(); ++i) {
        HYLO_ASSIGN_OR_RETURN(std::string e, visit(s[key][i], hint, fmt::format("{}/{}/{}", path, key, i)));
        alts += (alts.empty() ? "" : " | ") + e;
      }
      return new_rule(hint, alts);
    }
    std::vector<std::string> types;
    if (s.contains("type")) {
      if (s["type"].is_string()) {
        types.push_back(s["type"].get<std::string>());
      } else if (s["type"].is_array() && !s["type"].empty()) {
        for (const json& t : s["type"]) {
          if (!t.is_string()) return make_error("[json_schema] {}: 'type' must be a string or a list of strings", path);
          types.push_back(t.get<std::string>());
        }
      } else {
        return make_error("[json_schema] {}: 'type' must be a string or a list of strings", path);
      }
    } else if (s.contains("properties") || s.contains("required") || s.contains("additionalProperties")) {
      types.push_back("object");
    } else if (s.contains("items") || s.contains("minItems") || s.contains("maxItems")) {
      types.push_back("array");
    } else if (s.contains("minLength") || s.contains("maxLength") || s.contains("format")) {
      types.push_back("string");
    } else {
      return std::string("value");
    }
    std::string alts;
    for (const std::string& t : types) {
      std::string e;
      if (t == "object") {
        HYLO_ASSIGN_OR_RETURN(e, object(s, hint, path));
      } else if (t == "array") {
        HYLO_ASSIGN_OR_RETURN(e, array(s, hint, path));
      } else if (t == "string") {
        HYLO_ASSIGN_OR_RETURN(e, string(s, path));
      } else if (t == "number" || t == "integer" || t == "boolean" || t == "null") {
        e = t;
      } else {
        return make_error("[json_schema] {}: unknown type '{}'", path, t);
      }
      alts += (alts.empty() ? "" : " | ") + e;
    }
    return types.size() == 1 ? alts : "(" + alts + ")";
  }

  Result<std::string> ref(const json& s, const std::string& path) {
    if (!s["$ref"].is_string()) return make_error("[json_schema] {}: '$ref' must be a string", path);
    const std::string target = s["$ref"].get<std::string>();
    if (auto it = refs_.find(target); it != refs_.end()) return it->second;
    const json* node = nullptr;
    std::string name;
    for (const char* prefix : {"#/$defs/", "#/definitions/"}) {
      const std::string p = prefix;
      if (target.rfind(p, 0) != 0) continue;
      name = target.substr(p.size());
      const std::string container = p.substr(2, p.size() - 3);
      if (root_.is_object() && root_.contains(container) && root_[container].is_object() &&
          root_[container].contains(name))
        node = &root_[container][name];
    }
    if (target == "#") node = &root_, name = "root";
    if (node == nullptr)
      return unsupported(path, "$ref", "'" + target + "': only #, #/$defs/NAME and #/definitions/NAME are supported");
    // Named before it is visited, so a recursive definition refers to its own rule.
    const std::string rule = new_rule("def-" + name, "");
    refs_[target] = rule;
    HYLO_ASSIGN_OR_RETURN(std::string body, visit(*node, rule, target));
    rules_[rule] = body;
    return rule;
  }

  Result<std::string> string(const json& s, const std::string& path) {
    if (s.contains("format")) {
      if (!s["format"].is_string()) return make_error("[json_schema] {}: 'format' must be a string", path);
      const auto it = format_rules().find(s["format"].get<std::string>());
      if (it == format_rules().end())
        return unsupported(path, "format", "'" + s["format"].get<std::string>() + "'; supported: date, time, date-time, uuid");
      if (s.contains("minLength") || s.contains("maxLength")) return unsupported(path, "minLength", "with a format");
      uses_formats_ = true;
      return it->second;
    }
    if (!s.contains("minLength") && !s.contains("maxLength")) return std::string("string");
    int min = 0, max = -1;
    if (s.contains("minLength")) {
      HYLO_ASSIGN_OR_RETURN(min, count(s, "minLength", path));
    }
    if (s.contains("maxLength")) {
      HYLO_ASSIGN_OR_RETURN(max, count(s, "maxLength", path));
    }
    if (max >= 0 && max < min) return make_error("[json_schema] {}: maxLength < minLength", path);
    return max < 0 ? fmt::format("\"\\\"\" char{{{},}} \"\\\"\"", min) : fmt::format("\"\\\"\" char{{{},{}}} \"\\\"\"", min, max);
  }

  Result<std::string> array(const json& s, const std::string& hint, const std::string& path) {
    std::string item = "value";
    if (s.contains("items")) {
      HYLO_ASSIGN_OR_RETURN(item, visit(s["items"], hint + "-item", path + "/items"));
    }
    int min = 0, max = -1;
    if (s.contains("minItems")) {
      HYLO_ASSIGN_OR_RETURN(min, count(s, "minItems", path));
    }
    if (s.contains("maxItems")) {
      HYLO_ASSIGN_OR_RETURN(max, count(s, "maxItems", path));
    }
    if (max >= 0 && max < min) return make_error("[json_schema] {}: maxItems < minItems", path);
    if (max == 0) return std::string(R"("[" ws "]")");
    const std::string more = fmt::format("(ws \",\" ws {})", item);
    const std::string rest = max < 0 ? fmt::format("{}{{{},}}", more, std::max(0, min - 1))
                                     : fmt::format("{}{{{},{}}}", more, std::max(0, min - 1), max - 1);
    const std::string body = fmt::format("{} {}", item, rest);
    return new_rule(hint + "-array", min > 0 ? fmt::format(R"("[" ws {} ws "]")", body)
                                             : fmt::format(R"("[" ws ({})? ws "]")", body));
  }

  // A key that is none of `known` (so additional properties cannot repeat a declared one): a
  // trie over the known keys' characters, leaving it at any character that no key continues with.
  std::string other_key(const std::string& hint, const std::vector<std::string>& known) {
    if (known.empty()) return "string";
    struct Node {
      std::map<uint32_t, int> children;
      bool terminal = false;
    };
    std::vector<Node> nodes(1);
    for (const std::string& k : known) {
      int n = 0;
      for (uint32_t cp : code_points(k)) {
        auto it = nodes[static_cast<size_t>(n)].children.find(cp);
        if (it == nodes[static_cast<size_t>(n)].children.end()) {
          nodes.emplace_back();
          it = nodes[static_cast<size_t>(n)].children.emplace(cp, static_cast<int>(nodes.size()) - 1).first;
        }
        n = it->second;
      }
      nodes[static_cast<size_t>(n)].terminal = true;
    }
    // Escapes are left out of such keys: "\u0061" could spell a declared one.
    const std::string free_char = R"([^"\\\x00-\x1F])";
    std::vector<std::string> names(nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) names[i] = new_rule(hint + "-key", "");
    for (size_t i = 0; i < nodes.size(); ++i) {
      std::string alts;
      std::string excluded = "\"\\\\\\x00-\\x1F";
      for (const auto& [cp, child] : nodes[i].children) {
        alts += (alts.empty() ? "" : " | ") + fmt::format("[{}] {}", class_char(cp), names[static_cast<size_t>(child)]);
        excluded += class_char(cp);
      }
      alts += (alts.empty() ? "" : " | ") + fmt::format("[^{}] {}* \"\\\"\"", excluded, free_char);
      if (!nodes[i].terminal) alts += " | \"\\\"\"";
      rules_[names[i]] = alts;
    }
    return "\"\\\"\" " + names[0];
  }

  Result<std::string> object(const json& s, const std::string& hint, const std::string& path) {
    struct Prop {
      std::string name, kv;
      bool required = false;
    };
    std::vector<Prop> props;
    if (s.contains("properties")) {
      if (!s["properties"].is_object()) return make_error("[json_schema] {}: 'properties' must be an object", path);
      for (const auto& [key, sub] : s["properties"].items()) {
        HYLO_ASSIGN_OR_RETURN(std::string v, visit(sub, hint + "-" + key, path + "/properties/" + key));
        props.push_back({key, fmt::format(R"({} ws ":" ws {})", literal(json(key).dump()), v), false});
      }
    }
    std::string extra_value;  // empty: no additional properties
    if (s.contains("additionalProperties")) {
      const json& a = s["additionalProperties"];
      if (!(a.is_boolean() && !a.get<bool>())) {
        HYLO_ASSIGN_OR_RETURN(extra_value, visit(a, hint + "-additional", path + "/additionalProperties"));
      }
    }
    if (s.contains("required")) {
      if (!s["required"].is_array()) return make_error("[json_schema] {}: 'required' must be an array", path);
      for (const json& r : s["required"]) {
        if (!r.is_string()) return make_error("[json_schema] {}: 'required' must hold strings", path);
        const std::string name = r.get<std::string>();
        auto it = std::find_if(props.begin(), props.end(), [&](const Prop& p) { return p.name == name; });
        if (it == props.end()) {
          // Required but not described: any value the additional properties admit.
          if (s.contains("additionalProperties") && extra_value.empty())
            return make_error("[json_schema] {}: '{}' is required but additionalProperties is false", path, name);
          props.push_back({name, fmt::format(R"({} ws ":" ws {})", literal(json(name).dump()),
                                             extra_value.empty() ? "value" : extra_value), true});
        } else {
          it->required = true;
        }
      }
    }
    // S(i): properties i.. with no comma before the first written one. Required ones must be
    // written; after the declared ones, any number of additional ones when allowed.
    std::string extras_tail, extras_first;
    if (!extra_value.empty()) {
      std::vector<std::string> known;
      for (const Prop& p : props) known.push_back(p.name);
      const std::string kv = fmt::format(R"({} ws ":" ws {})", other_key(hint, known), extra_value);
      extras_tail = new_rule(hint + "-extra", fmt::format(R"((ws "," ws {})*)", kv));
      extras_first = fmt::format("({} {})?", kv, extras_tail);
    }
    std::string next = extras_first;  // S(i+1); empty: nothing may follow
    std::string tail = extras_tail;   // T(i+1): what may follow a written property, commas included
    for (size_t i = props.size(); i-- > 0;) {
      const std::string with = tail.empty() ? props[i].kv : fmt::format("{} {}", props[i].kv, tail);
      std::string s_i = with;
      if (!props[i].required) s_i = next.empty() ? fmt::format("({})?", with) : fmt::format("{} | {}", with, next);
      next = new_rule(hint + "-props", s_i);
      const std::string t_i = props[i].required ? fmt::format(R"(ws "," ws {})", props[i].kv)
                                                : fmt::format(R"((ws "," ws {})?)", props[i].kv);
      tail = new_rule(hint + "-rest", tail.empty() ? t_i : fmt::format("{} {}", t_i, tail));
    }
    return new_rule(hint + "-object", fmt::format(R"("{{" ws {} ws "}}")", next.empty() ? "" : next));
  }

  const json& root_;
  std::map<std::string, std::string> rules_;
  std::map<std::string, std::string> refs_;
  bool uses_formats_ = false;
};

}  // namespace

Result<std::string> json_schema_to_gbnf(const nlohmann::ordered_json& schema) {
  return Converter(schema).run(schema, "#");
}

Result<std::string> xml_parameter_gbnf(const nlohmann::ordered_json& schema, const nlohmann::ordered_json& root,
                                       const std::string& path, const std::string& suffix) {
  if (!schema.is_object()) return std::string();
  std::vector<std::string> types;
  if (schema.contains("type") && schema["type"].is_string()) types.push_back(schema["type"].get<std::string>());
  if (schema.contains("type") && schema["type"].is_array())
    for (const json& t : schema["type"])
      if (t.is_string()) types.push_back(t.get<std::string>());
  const bool stringish = types.empty() || std::find(types.begin(), types.end(), "string") != types.end();
  // Strings are written raw: an enum of strings is a choice of raw texts.
  std::vector<json> choices;
  if (schema.contains("enum") && schema["enum"].is_array()) choices.assign(schema["enum"].begin(), schema["enum"].end());
  if (schema.contains("const")) choices = {schema["const"]};
  if (!choices.empty() && stringish && (types.empty() || types == std::vector<std::string>{"string"}) &&
      std::all_of(choices.begin(), choices.end(), [](const json& v) { return v.is_string(); })) {
    std::string alts;
    for (const json& v : choices) alts += (alts.empty() ? "" : " | ") + literal(v.get<std::string>());
    return fmt::format("root ::= ({}) {}\n", alts, literal(suffix));
  }
  if (stringish) return std::string();  // free text
  return Converter(root).run(schema, path, suffix);
}

std::string json_object_gbnf() { return std::string("root ::= object\n") + kPrimitives; }

std::shared_ptr<const Grammar> json_object_grammar() {
  static const std::shared_ptr<const Grammar> g = [] {
    auto parsed = Grammar::parse(json_object_gbnf());
    HYLO_CHECK(parsed.ok(), "{}", parsed.message());
    return *parsed;
  }();
  return g;
}

}  // namespace hylo::runtime
