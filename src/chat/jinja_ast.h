// Syntax tree of the Jinja subset: expressions and statements as the parser produces them and
// the interpreter walks them. Plain data, no behaviour.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_value.h"

namespace hylo::chat::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  kLiteral,  // literal
  kName,     // name
  kList,     // children = items
  kTuple,    // children = items
  kDict,     // children = key0, value0, key1, value1, ...
  kGetAttr,  // children[0].name   (x.y)
  kGetItem,  // children[0][children[1]]
  kSlice,    // children[0][children[1]:children[2]:children[3]] (null parts allowed)
  kCall,     // children[0](children[1..], kwargs)
  kFilter,   // children[0] | name(children[1..], kwargs)
  kTest,     // children[0] is [not] name(children[1..], kwargs)
  kUnary,    // name = "-" | "+" | "not"; children[0]
  kBinary,   // name = operator ("+", "-", "*", "/", "//", "%", "**", "and", "or"); children[0..1]
  kConcat,   // children joined with ~
  kCompare,  // children[0] ops[0] children[1] ops[1] children[2] ... (chained)
  kCond,     // children[0] if children[1] else children[2] (children[2] may be null)
};

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  int line = 0;
  Value literal;
  std::string name;
  std::vector<ExprPtr> children;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;  // kCompare: "==", "!=", "<", "<=", ">", ">=", "in", "notin"
  bool negated = false;          // kTest
  int depth = 1;                 // height of this subtree (bounded by the parser)
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class StmtKind {
  kText,         // text
  kOutput,       // {{ expr }}
  kIf,           // conds[i] -> bodies[i], else_body
  kFor,          // for targets in expr [if filter] body [else else_body]
  kSet,          // set targets / ns.attr = expr
  kSetBlock,     // set target [| filter] body endset
  kMacro,        // macro name(params = defaults) body
  kFilterBlock,  // filter expr(body)
  kWith,         // with targets = values: body in a new scope
  kScope,        // block name: body rendered in place
  kBreak,
  kContinue,
};

struct Stmt {
  StmtKind kind = StmtKind::kText;
  int line = 0;
  std::string text;                  // kText; kSet/kSetBlock: attribute for "ns.attr" targets
  ExprPtr expr;                      // kOutput, kFor (iterable), kSet (value), kFilterBlock / kSetBlock (filter)
  ExprPtr filter;                    // kFor: the "if" condition
  std::vector<std::string> targets;  // kFor / kSet / kSetBlock / kWith names; kMacro: parameter names
  std::vector<ExprPtr> values;       // kWith values; kMacro: defaults (null = none)
  std::vector<ExprPtr> conds;        // kIf
  std::vector<Body> bodies;          // kIf
  Body body, else_body;
  std::string name;  // kMacro / kScope
};

}  // namespace hylo::chat::jinja
