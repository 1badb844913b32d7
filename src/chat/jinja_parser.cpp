// Recursive-descent Jinja parser (statements: if, for, set, macro, filter, with, block, break,
// continue; the full expression grammar of jinja2 without recursive loops and call blocks).
#include "chat/jinja_parser.h"

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>

namespace hylo::chat::jinja {
namespace {

// Deeply nested input ("((((...") must not exhaust the C++ stack.
constexpr int kMaxNesting = 100;
constexpr int kMaxExprDepth = 256;

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : t_(tokens) {}

  Body parse_template() {
    std::string end;
    Body body = subparse({}, &end);
    return body;
  }

 private:
  // --- token helpers -------------------------------------------------------------------------
  const Token& cur() const { return t_[pos_]; }
  const Token& peek(size_t n = 1) const { return t_[std::min(pos_ + n, t_.size() - 1)]; }
  const Token& next() {
    const Token& tok = t_[pos_];
    if (pos_ + 1 < t_.size()) ++pos_;
    return tok;
  }
  bool is_op(const char* op) const { return cur().kind == TokenKind::kOp && cur().text == op; }
  bool is_name(const char* name) const { return cur().kind == TokenKind::kName && cur().text == name; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  [[noreturn]] void error(const std::string& msg) const { throw TemplateError{msg, cur().line}; }
  std::string describe(const Token& tok) const {
    switch (tok.kind) {
      case TokenKind::kEof:
        return "end of template";
      case TokenKind::kBlockEnd:
        return "end of statement block";
      case TokenKind::kVarEnd:
        return "end of print statement";
      case TokenKind::kData:
        return "template data";
      case TokenKind::kString:
        return "string literal";
      default:
        return "'" + tok.text + "'";
    }
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) error(fmt::format("expected '{}', got {}", op, describe(cur())));
  }
  std::string expect_name() {
    if (cur().kind != TokenKind::kName) error(fmt::format("expected a name, got {}", describe(cur())));
    return next().text;
  }
  void expect_block_end() {
    if (cur().kind != TokenKind::kBlockEnd)
      error(fmt::format("expected end of statement block, got {}", describe(cur())));
    next();
  }
  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxNesting) p.error("template nesting too deep");
    }
    ~DepthGuard() { --p.depth_; }
  };

  ExprPtr node(ExprKind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }
  // Records the depth of a completed node. Long operator chains (a + b + c ...) and postfix
  // chains are built iteratively, so this is what keeps evaluation and destruction shallow.
  ExprPtr finish(ExprPtr e) {
    int depth = 0;
    for (const auto& c : e->children)
      if (c) depth = std::max(depth, c->depth);
    for (const auto& [k, v] : e->kwargs) depth = std::max(depth, v->depth);
    e->depth = depth + 1;
    if (e->depth > kMaxExprDepth) throw TemplateError{"expression nested too deeply", e->line};
    return e;
  }

  // --- statements ------------------------------------------------------------------------------
  // Parses until a block tag whose name is in `end_tags` (left after its name) or the end.
  Body subparse(std::initializer_list<const char*> end_tags, std::string* end_found) {
    DepthGuard guard(*this);
    Body body;
    while (cur().kind != TokenKind::kEof) {
      const Token& tok = cur();
      if (tok.kind == TokenKind::kData) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kText;
        s->line = tok.line;
        s->text = tok.text;
        body.push_back(std::move(s));
        next();
      } else if (tok.kind == TokenKind::kVarBegin) {
        next();
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kOutput;
        s->line = tok.line;
        s->expr = parse_tuple();
        if (cur().kind != TokenKind::kVarEnd)
          error(fmt::format("expected end of print statement, got {}", describe(cur())));
        next();
        body.push_back(std::move(s));
      } else if (tok.kind == TokenKind::kBlockBegin) {
        next();
        if (cur().kind != TokenKind::kName) error("tag name expected");
        for (const char* end : end_tags) {
          if (cur().text == end) {
            *end_found = next().text;
            return body;
          }
        }
        body.push_back(parse_statement());
      } else {
        error(fmt::format("unexpected {}", describe(tok)));
      }
    }
    if (end_tags.size() != 0) {
      std::string expected;
      for (const char* e : end_tags) expected += std::string(expected.empty() ? "" : " or ") + "'" + e + "'";
      error(fmt::format("unexpected end of template, expected {}", expected));
    }
    return body;
  }

  StmtPtr parse_statement() {
    const Token& tok = cur();
    auto s = std::make_unique<Stmt>();
    s->line = tok.line;
    const std::string tag = next().text;
    std::string end;
    if (tag == "if") {
      s->kind = StmtKind::kIf;
      while (true) {
        s->conds.push_back(parse_tuple());
        expect_block_end();
        s->bodies.push_back(subparse({"elif", "else", "endif"}, &end));
        if (end != "elif") break;
      }
      if (end == "else") {
        expect_block_end();
        s->else_body = subparse({"endif"}, &end);
      }
      expect_block_end();
    } else if (tag == "for") {
      s->kind = StmtKind::kFor;
      s->targets = parse_target_names();
      if (!skip_name("in")) error(fmt::format("expected 'in', got {}", describe(cur())));
      s->expr = parse_tuple(/*with_condexpr=*/false);
      if (skip_name("if")) s->filter = parse_expression();
      if (is_name("recursive")) error("recursive loops are not supported");
      expect_block_end();
      ++loop_depth_;
      s->body = subparse({"endfor", "else"}, &end);
      --loop_depth_;
      if (end == "else") {
        expect_block_end();
        s->else_body = subparse({"endfor"}, &end);
      }
      expect_block_end();
    } else if (tag == "set") {
      parse_set_target(*s);
      if (skip_op("=")) {
        s->kind = StmtKind::kSet;
        s->expr = parse_tuple();
        expect_block_end();
      } else {
        s->kind = StmtKind::kSetBlock;
        if (s->targets.size() != 1) error("a block assignment needs exactly one target");
        if (is_op("|")) s->expr = parse_filter_chain(nullptr);
        expect_block_end();
        s->body = subparse({"endset"}, &end);
        expect_block_end();
      }
    } else if (tag == "macro") {
      s->kind = StmtKind::kMacro;
      s->name = expect_name();
      expect_op("(");
      while (!is_op(")")) {
        if (!s->targets.empty()) expect_op(",");
        if (is_op(")")) break;
        s->targets.push_back(expect_name());
        s->values.push_back(skip_op("=") ? parse_expression() : nullptr);
      }
      expect_op(")");
      expect_block_end();
      const int saved = loop_depth_;
      loop_depth_ = 0;
      s->body = subparse({"endmacro"}, &end);
      loop_depth_ = saved;
      if (cur().kind == TokenKind::kName) next();  // {% endmacro name %}
      expect_block_end();
    } else if (tag == "filter") {
      s->kind = StmtKind::kFilterBlock;
      s->expr = parse_filter_chain(nullptr, /*leading_pipe=*/false);
      expect_block_end();
      s->body = subparse({"endfilter"}, &end);
      expect_block_end();
    } else if (tag == "with") {
      s->kind = StmtKind::kWith;
      while (cur().kind != TokenKind::kBlockEnd) {
        if (!s->targets.empty()) expect_op(",");
        s->targets.push_back(expect_name());
        expect_op("=");
        s->values.push_back(parse_expression());
      }
      expect_block_end();
      s->body = subparse({"endwith"}, &end);
      expect_block_end();
    } else if (tag == "block") {
      s->kind = StmtKind::kScope;
      s->name = expect_name();
      while (cur().kind == TokenKind::kName) next();  // "scoped", "required"
      expect_block_end();
      s->body = subparse({"endblock"}, &end);
      if (cur().kind == TokenKind::kName) next();
      expect_block_end();
    } else if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) throw TemplateError{fmt::format("'{}' outside of a loop", tag), s->line};
      s->kind = tag == "break" ? StmtKind::kBreak : StmtKind::kContinue;
      expect_block_end();
    } else {
      throw TemplateError{fmt::format("unknown or unsupported tag '{}'", tag), s->line};
    }
    return s;
  }

  // for-loop targets: a name or a tuple of names, optionally parenthesised.
  std::vector<std::string> parse_target_names() {
    std::vector<std::string> names;
    const bool paren = skip_op("(");
    do {
      if (paren && is_op(")")) break;
      names.push_back(expect_name());
    } while (skip_op(","));
    if (paren) expect_op(")");
    return names;
  }

  // set targets: "x", "a, b" or "ns.attr" (stored as targets = {ns}, text = attr).
  void parse_set_target(Stmt& s) {
    if (cur().kind == TokenKind::kName && peek().kind == TokenKind::kOp && peek().text == ".") {
      s.targets.push_back(next().text);
      next();
      s.text = expect_name();
      return;
    }
    s.targets = parse_target_names();
  }

  // --- expressions -----------------------------------------------------------------------------
  ExprPtr parse_expression(bool with_condexpr = true) { return with_condexpr ? parse_condexpr() : parse_or(); }

  // Comma-separated expressions: a tuple if there is a comma, else the single expression.
  ExprPtr parse_tuple(bool with_condexpr = true) {
    const int line = cur().line;
    std::vector<ExprPtr> items;
    bool comma = false;
    while (true) {
      if (!items.empty()) {
        if (!skip_op(",")) break;
        comma = true;
      }
      if (is_tuple_end()) break;
      items.push_back(parse_expression(with_condexpr));
    }
    if (!comma) {
      if (items.empty()) error(fmt::format("expected an expression, got {}", describe(cur())));
      return std::move(items[0]);
    }
    auto e = node(ExprKind::kTuple, line);
    e->children = std::move(items);
    return finish(std::move(e));
  }
  bool is_tuple_end() const {
    const Token& tok = cur();
    return tok.kind == TokenKind::kVarEnd || tok.kind == TokenKind::kBlockEnd || tok.kind == TokenKind::kEof ||
           (tok.kind == TokenKind::kOp && (tok.text == ")" || tok.text == "]" || tok.text == "}")) ||
           (tok.kind == TokenKind::kName && (tok.text == "in" || tok.text == "if" || tok.text == "recursive"));
  }

  ExprPtr parse_condexpr() {
    DepthGuard guard(*this);
    ExprPtr expr = parse_or();
    while (is_name("if")) {
      const int line = next().line;
      auto e = node(ExprKind::kCond, line);
      ExprPtr cond = parse_or();
      ExprPtr otherwise = skip_name("else") ? parse_condexpr() : nullptr;
      e->children.push_back(std::move(expr));
      e->children.push_back(std::move(cond));
      e->children.push_back(std::move(otherwise));
      expr = finish(std::move(e));
    }
    return expr;
  }

  ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r, int line) {
    auto e = node(ExprKind::kBinary, line);
    e->name = op;
    e->children.push_back(std::move(l));
    e->children.push_back(std::move(r));
    return finish(std::move(e));
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      const int line = next().line;
      left = binary("or", std::move(left), parse_and(), line);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      const int line = next().line;
      left = binary("and", std::move(left), parse_not(), line);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      auto e = node(ExprKind::kUnary, next().line);
      e->name = "not";
      e->children.push_back(parse_not());
      return finish(std::move(e));
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const int line = cur().line;
    ExprPtr first = parse_math1();
    std::vector<std::string> ops;
    std::vector<ExprPtr> operands;
    while (true) {
      std::string op;
      if (cur().kind == TokenKind::kOp && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                           cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
        op = next().text;
      } else if (skip_name("in")) {
        op = "in";
      } else if (is_name("not") && peek().kind == TokenKind::kName && peek().text == "in") {
        next();
        next();
        op = "notin";
      } else {
        break;
      }
      ops.push_back(op);
      operands.push_back(parse_math1());
    }
    if (ops.empty()) return first;
    auto e = node(ExprKind::kCompare, line);
    e->children.push_back(std::move(first));
    for (auto& o : operands) e->children.push_back(std::move(o));
    e->ops = std::move(ops);
    return finish(std::move(e));
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& op = next();
      left = binary(op.text, std::move(left), parse_concat(), op.line);
    }
    return left;
  }

  ExprPtr parse_concat() {
    const int line = cur().line;
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    auto e = node(ExprKind::kConcat, line);
    e->children.push_back(std::move(first));
    while (skip_op("~")) e->children.push_back(parse_math2());
    return finish(std::move(e));
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& op = next();
      left = binary(op.text, std::move(left), parse_pow(), op.line);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary();
    while (is_op("**")) {
      const int line = next().line;
      left = binary("**", std::move(left), parse_unary(), line);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter = true) {
    DepthGuard guard(*this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      const Token& op = next();
      e = node(ExprKind::kUnary, op.line);
      e->name = op.text;
      e->children.push_back(parse_unary(false));
      e = finish(std::move(e));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    const Token& tok = cur();
    auto lit = [&](Value v) {
      auto e = node(ExprKind::kLiteral, tok.line);
      e->literal = std::move(v);
      return e;
    };
    switch (tok.kind) {
      case TokenKind::kName: {
        next();
        if (tok.text == "true" || tok.text == "True") return lit(Value(true));
        if (tok.text == "false" || tok.text == "False") return lit(Value(false));
        if (tok.text == "none" || tok.text == "None") return lit(Value::none());
        auto e = node(ExprKind::kName, tok.line);
        e->name = tok.text;
        return e;
      }
      case TokenKind::kString: {
        std::string s = next().text;
        while (cur().kind == TokenKind::kString) s += next().text;  // adjacent literals concatenate
        return lit(Value(std::move(s)));
      }
      case TokenKind::kInt:
        return lit(Value(next().int_value));
      case TokenKind::kFloat:
        return lit(Value(next().float_value));
      case TokenKind::kOp:
        if (tok.text == "(") {
          next();
          if (skip_op(")")) {
            auto e = node(ExprKind::kTuple, tok.line);
            return e;
          }
          ExprPtr inner = parse_tuple();
          expect_op(")");
          return inner;
        }
        if (tok.text == "[") {
          next();
          auto e = node(ExprKind::kList, tok.line);
          while (!is_op("]")) {
            if (!e->children.empty()) expect_op(",");
            if (is_op("]")) break;
            e->children.push_back(parse_expression());
          }
          expect_op("]");
          return finish(std::move(e));
        }
        if (tok.text == "{") {
          next();
          auto e = node(ExprKind::kDict, tok.line);
          while (!is_op("}")) {
            if (!e->children.empty()) expect_op(",");
            if (is_op("}")) break;
            e->children.push_back(parse_expression());
            expect_op(":");
            e->children.push_back(parse_expression());
          }
          expect_op("}");
          return finish(std::move(e));
        }
        break;
      default:
        break;
    }
    error(fmt::format("unexpected {}", describe(tok)));
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (is_op(".")) {
        const int line = next().line;
        if (cur().kind == TokenKind::kInt) {  // x.0 is x[0]
          auto g = node(ExprKind::kGetItem, line);
          auto idx = node(ExprKind::kLiteral, line);
          idx->literal = Value(next().int_value);
          g->children.push_back(std::move(e));
          g->children.push_back(std::move(idx));
          e = finish(std::move(g));
          continue;
        }
        auto g = node(ExprKind::kGetAttr, line);
        g->name = expect_name();
        g->children.push_back(std::move(e));
        e = finish(std::move(g));
      } else if (is_op("[")) {
        e = parse_subscript(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr obj) {
    const int line = next().line;  // [
    ExprPtr parts[3];
    int n_colons = 0;
    bool slice = false;
    while (!is_op("]")) {
      if (skip_op(":")) {
        slice = true;
        if (++n_colons > 2) error("invalid slice");
        continue;
      }
      if (parts[n_colons]) error(fmt::format("unexpected {}", describe(cur())));
      parts[n_colons] = parse_tuple();
    }
    expect_op("]");
    if (!slice) {
      if (!parts[0]) error("empty subscript");
      auto g = node(ExprKind::kGetItem, line);
      g->children.push_back(std::move(obj));
      g->children.push_back(std::move(parts[0]));
      return finish(std::move(g));
    }
    auto s = node(ExprKind::kSlice, line);
    s->children.push_back(std::move(obj));
    for (auto& p : parts) s->children.push_back(std::move(p));
    return finish(std::move(s));
  }

  // "(args, name=value)" into e->children (after the existing ones) and e->kwargs.
  void parse_call_args(Expr& e) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) expect_op(",");
      first = false;
      if (is_op(")")) break;
      if (is_op("*") || is_op("**")) error("*args / **kwargs in calls are not supported");
      if (cur().kind == TokenKind::kName && peek().kind == TokenKind::kOp && peek().text == "=") {
        std::string key = next().text;
        next();
        e.kwargs.emplace_back(std::move(key), parse_expression());
      } else {
        if (!e.kwargs.empty()) error("positional argument after keyword argument");
        e.children.push_back(parse_expression());
      }
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto c = node(ExprKind::kCall, cur().line);
    c->children.push_back(std::move(callee));
    parse_call_args(*c);
    return finish(std::move(c));
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        e = parse_filter_chain(std::move(e));
      } else if (is_name("is")) {
        e = parse_test(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  // One or more "| name(args)" applied to `e` (null inside {% filter %} / {% set x | f %}).
  ExprPtr parse_filter_chain(ExprPtr e, bool leading_pipe = true) {
    bool first = true;
    while ((first && !leading_pipe) || is_op("|")) {
      if (!(first && !leading_pipe)) next();
      first = false;
      auto f = node(ExprKind::kFilter, cur().line);
      f->name = expect_name();
      while (is_op(".")) {
        next();
        f->name += '.';
        f->name += expect_name();
      }
      f->children.push_back(std::move(e));
      if (is_op("(")) parse_call_args(*f);
      e = finish(std::move(f));
    }
    return e;
  }

  ExprPtr parse_test(ExprPtr e) {
    const int line = next().line;  // is
    auto t = node(ExprKind::kTest, line);
    t->negated = skip_name("not");
    t->name = expect_name();
    while (is_op(".")) {
      next();
      t->name += '.';
      t->name += expect_name();
    }
    t->children.push_back(std::move(e));
    const Token& tok = cur();
    if (is_op("(")) {
      parse_call_args(*t);
    } else if ((tok.kind == TokenKind::kName || tok.kind == TokenKind::kString || tok.kind == TokenKind::kInt ||
                tok.kind == TokenKind::kFloat || is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      // "x is divisibleby 3", "x is sameas false": one argument without parentheses.
      if (is_name("is")) error("You cannot chain multiple tests with is");
      t->children.push_back(parse_postfix(parse_primary()));
    }
    return finish(std::move(t));
  }

  const std::vector<Token>& t_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Body parse(const std::vector<Token>& tokens) { return Parser(tokens).parse_template(); }

}  // namespace hylo::chat::jinja
