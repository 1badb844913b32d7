#include "router/config.h"


#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "base/strings.h"
#include "base/yaml_reader.h"

namespace hylo::router {

namespace {

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' && c != ':') return false;
  return true;
}

Status finish_upstream(Upstream* u, const std::string& url, const std::string& where) {
  auto base = net::parse_base_url(url);
  if (!base.ok()) return make_error("[router] {}: {}", where, base.message().substr(6));
  u->url = *base;
  u->api = ends_with(base->prefix, "/v1") ? UpstreamApi::kOpenAI : UpstreamApi::kOllama;
  return ok_status();
}



Status read_local(const YamlReader& r, const YAML::Node& node, RouterConfig* c) {
  if (!node.IsMap()) return r.error(node, "local", "a mapping expected");
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string k = it->first.Scalar();
    const std::string key = "local." + k;
    if (k == "max_prompt_tokens") {
      HYLO_ASSIGN_OR_RETURN(c->max_local_prompt_tokens, r.count(it->second, key, 1, int64_t{1} << 40));
    } else if (k == "prefill_tokens_per_second") {
      HYLO_ASSIGN_OR_RETURN(double v, r.scalar<double>(it->second, key, "a number"));
      if (!std::isfinite(v) || v <= 0) return r.error(it->second, key, "a positive speed expected");
      c->prefill_tokens_per_second = v;
    } else if (k == "private_by_default") {
      HYLO_ASSIGN_OR_RETURN(c->private_by_default, r.scalar<bool>(it->second, key, "true or false"));
    } else {
      return r.unknown(it->first, key, "max_prompt_tokens, prefill_tokens_per_second, private_by_default");
    }
  }
  return ok_status();
}

Status read_upstream(const YamlReader& r, const std::string& name, const YAML::Node& node, RouterConfig* c) {
  const std::string base = "upstreams." + name;
  if (!valid_name(name)) return r.error(node, base, "a name of letters, digits, '-', '_', '.' or ':' expected");
  if (!node.IsMap()) return r.error(node, base, "a mapping expected");
  Upstream u;
  u.name = name;
  std::string url;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string k = it->first.Scalar();
    const std::string key = base + "." + k;
    const YAML::Node& v = it->second;
    if (k == "url") {
      HYLO_ASSIGN_OR_RETURN(url, r.scalar<std::string>(v, key, "a URL"));
      HYLO_TRY(finish_upstream(&u, url, fmt::format("{}: {}", r.source(), yaml_at(v, key))));
    } else if (k == "model") {
      HYLO_ASSIGN_OR_RETURN(u.model, r.scalar<std::string>(v, key, "a model name"));
    } else if (k == "ctx") {
      HYLO_ASSIGN_OR_RETURN(u.ctx, r.count(v, key, 1, int64_t{1} << 30));
    } else if (k == "key_env") {
      HYLO_ASSIGN_OR_RETURN(u.key_env, r.scalar<std::string>(v, key, "an environment variable name"));
    } else if (k == "max_concurrent") {
      HYLO_ASSIGN_OR_RETURN(int64_t n, r.count(v, key, 1, 4096));
      u.max_concurrent = static_cast<int>(n);
    } else if (k == "connect_timeout") {
      HYLO_ASSIGN_OR_RETURN(u.timeouts.connect, r.seconds(v, key));
    } else if (k == "first_byte_timeout") {
      HYLO_ASSIGN_OR_RETURN(u.timeouts.first_byte, r.seconds(v, key));
    } else if (k == "idle_timeout") {
      HYLO_ASSIGN_OR_RETURN(u.timeouts.idle, r.seconds(v, key));
    } else if (k == "api_key" || k == "key") {
      return r.error(it->first, key,
                     "API keys are not written in the routes file: name the environment variable that holds it "
                     "with key_env");
    } else {
      return r.unknown(it->first, key,
                       "url, model, ctx, key_env, max_concurrent, connect_timeout, first_byte_timeout, idle_timeout");
    }
  }
  if (url.empty()) return r.error(node, base, "url is required");
  c->upstreams.push_back(std::move(u));
  return ok_status();
}

Status read_alias(const YamlReader& r, const std::string& name, const YAML::Node& node, RouterConfig* c) {
  const std::string base = "aliases." + name;
  if (!valid_name(name)) return r.error(node, base, "a name of letters, digits, '-', '_', '.' or ':' expected");
  Alias a;
  a.name = name;
  if (node.IsScalar()) {
    a.route = node.Scalar();
  } else if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      const std::string k = it->first.Scalar();
      const std::string key = base + "." + k;
      if (k == "route") {
        HYLO_ASSIGN_OR_RETURN(a.route, r.scalar<std::string>(it->second, key, "a route name"));
      } else if (k == "private") {
        HYLO_ASSIGN_OR_RETURN(a.is_private, r.scalar<bool>(it->second, key, "true or false"));
      } else {
        return r.unknown(it->first, key, "route, private");
      }
    }
  } else {
    return r.error(node, base, "a route name or a mapping expected");
  }
  if (a.route.empty()) return r.error(node, base, "route is required");
  c->aliases.push_back(std::move(a));
  return ok_status();
}

Status read_client(const YamlReader& r, const std::string& name, const YAML::Node& node, RouterConfig* c) {
  const std::string base = "clients." + name;
  if (!valid_name(name)) return r.error(node, base, "a name of letters, digits, '-', '_', '.' or ':' expected");
  if (!node.IsMap()) return r.error(node, base, "a mapping expected (key_env, private, timeout)");
  Client cl;
  cl.name = name;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string k = it->first.Scalar();
    const std::string key = base + "." + k;
    if (k == "key_env") {
      HYLO_ASSIGN_OR_RETURN(cl.key_env, r.scalar<std::string>(it->second, key, "an environment variable name"));
    } else if (k == "private") {
      HYLO_ASSIGN_OR_RETURN(cl.is_private, r.scalar<bool>(it->second, key, "true or false"));
    } else if (k == "timeout") {
      HYLO_ASSIGN_OR_RETURN(double s, r.seconds(it->second, key));
      cl.budget_seconds = s;
    } else if (k == "api_key" || k == "key") {
      return r.error(it->first, key,
                     "API keys are not written in the routes file: name the environment variable that holds it "
                     "with key_env");
    } else {
      return r.unknown(it->first, key, "key_env, private, timeout");
    }
  }
  if (cl.key_env.empty()) return r.error(node, base, "key_env is required (the environment variable with its key)");
  c->clients.push_back(std::move(cl));
  return ok_status();
}

}  // namespace

int RouterConfig::find_upstream(const std::string& name) const {
  for (size_t i = 0; i < upstreams.size(); ++i)
    if (upstreams[i].name == name) return static_cast<int>(i);
  return -1;
}

const Alias* RouterConfig::find_alias(const std::string& name) const {
  for (const Alias& a : aliases)
    if (a.name == name) return &a;
  return nullptr;
}

const Client* RouterConfig::find_client(const std::string& name) const {
  for (const Client& cl : clients)
    if (cl.name == name) return &cl;
  return nullptr;
}

Result<Upstream> parse_upstream_flag(const std::string& spec) {
  const size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0)
    return make_error("[router] --upstream {}: NAME=URL[,model=M,ctx=N,key-env=VAR] expected", spec);
  Upstream u;
  u.name = std::string(trim(spec.substr(0, eq)));
  if (!valid_name(u.name))
    return make_error("[router] --upstream {}: the name '{}' must be letters, digits, '-', '_', '.' or ':'", spec,
                      u.name);
  const std::vector<std::string> parts = split(spec.substr(eq + 1), ',');
  const std::string where = "--upstream " + u.name;
  HYLO_TRY(finish_upstream(&u, parts[0], where));
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string p(trim(parts[i]));
    const size_t e = p.find('=');
    const std::string k = p.substr(0, e), v = e == std::string::npos ? "" : p.substr(e + 1);
    if (e == std::string::npos || v.empty())
      return make_error("[router] {}: '{}' is not KEY=VALUE (model, ctx, key-env)", where, p);
    if (k == "model") {
      u.model = v;
    } else if (k == "ctx") {
      char* end = nullptr;
      const long long n = std::strtoll(v.c_str(), &end, 10);
      if (*end != '\0' || n < 1 || n > (1LL << 30))
        return make_error("[router] {}: ctx={} is not a token count in [1, 2^30]", where, v);
      u.ctx = n;
    } else if (k == "key-env" || k == "key_env") {
      u.key_env = v;
    } else if (k == "key" || k == "api-key") {
      return make_error(
          "[router] {}: API keys are not given on the command line: key-env=VAR names the "
          "environment variable that holds it",
          where);
    } else {
      return make_error("[router] {}: unknown option '{}' (model, ctx, key-env)", where, k);
    }
  }
  return u;
}

Result<RouterConfig> parse_routes(const std::string& text, const std::string& source_name) {
  YamlReader r("router", source_name);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return make_error("[router] {}: line {}: {}", source_name, e.mark.line + 1, e.msg);
  }
  RouterConfig c;
  if (root.IsNull()) return c;
  if (!root.IsMap())
    return make_error("[router] {}: the file must be a mapping (local, upstreams, aliases, clients)", source_name);
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string k = it->first.Scalar();
    if (k == "local") {
      HYLO_TRY(read_local(r, it->second, &c));
    } else if (k == "upstreams") {
      if (!it->second.IsMap()) return r.error(it->second, k, "a mapping of upstream names expected");
      for (auto u = it->second.begin(); u != it->second.end(); ++u)
        HYLO_TRY(read_upstream(r, u->first.Scalar(), u->second, &c));
    } else if (k == "aliases") {
      if (!it->second.IsMap()) return r.error(it->second, k, "a mapping of model names expected");
      for (auto a = it->second.begin(); a != it->second.end(); ++a)
        HYLO_TRY(read_alias(r, a->first.Scalar(), a->second, &c));
    } else if (k == "clients") {
      if (!it->second.IsMap()) return r.error(it->second, k, "a mapping of client names expected");
      for (auto a = it->second.begin(); a != it->second.end(); ++a)
        HYLO_TRY(read_client(r, a->first.Scalar(), a->second, &c));
    } else {
      return r.unknown(it->first, k, "local, upstreams, aliases, clients");
    }
  }
  return c;
}

Result<RouterConfig> load_routes_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error("[router] cannot read the routes file {}", path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (ss.str().size() > (1u << 20)) return make_error("[router] {}: larger than 1 MiB", path);
  return parse_routes(ss.str(), path);
}

Status validate(const RouterConfig& c) {
  // An upstream may be called "cloud": the name then means every upstream, as without it.
  std::set<std::string> names = {"local", "auto"};
  for (const Upstream& u : c.upstreams) {
    if (!names.insert(u.name).second)
      return make_error("[router] upstream '{}': the name is used twice or is reserved (local, auto)", u.name);
  }
  names.insert("cloud");
  for (const Alias& a : c.aliases) {
    if (!names.insert(a.name).second)
      return make_error("[router] alias '{}': the name is used twice or names an upstream or a built-in alias", a.name);
    if (a.route != "local" && a.route != "cloud" && a.route != "auto" && c.find_upstream(a.route) < 0)
      return make_error("[router] alias '{}': route '{}' is neither local, cloud, auto nor an upstream", a.name,
                        a.route);
  }
  std::set<std::string> clients;
  for (const Client& cl : c.clients) {
    if (!clients.insert(cl.name).second) return make_error("[router] client '{}': the name is used twice", cl.name);
  }
  return ok_status();
}

Status check_client_keys(const RouterConfig& c) {
  for (const Client& cl : c.clients) {
    const char* key = std::getenv(cl.key_env.c_str());
    if (key == nullptr || *key == '\0')
      return make_error("[router] client '{}': environment variable {} (its API key) is not set", cl.name,
                        cl.key_env);
  }
  return ok_status();
}

Result<RouterConfig> build_config(const std::string& routes_file, const std::vector<std::string>& upstream_flags) {
  RouterConfig c;
  if (!routes_file.empty()) {
    HYLO_ASSIGN_OR_RETURN(c, load_routes_file(routes_file));
  }
  for (const std::string& f : upstream_flags) {
    HYLO_ASSIGN_OR_RETURN(Upstream u, parse_upstream_flag(f));
    c.upstreams.push_back(std::move(u));
  }
  HYLO_TRY(validate(c));
  return c;
}

}  // namespace hylo::router
