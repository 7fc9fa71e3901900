#include "docflow/filter.hpp"

#include <algorithm>
#include <optional>
#include <regex>
#include <vector>

namespace docflow {

struct Filter::Node {
  enum class Kind { And, Or, Not, Compare } kind;
  std::vector<Node> children;
  std::string field, op;
  docarray::Value operand;
  std::shared_ptr<std::regex> regex;
};

namespace {

using docarray::Value;
using Node = Filter::Node;

const std::vector<std::string> kOps = {"$eq", "$neq", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$regex", "$exists"};
const std::vector<std::string> kFields = {"id", "parent_id", "text", "uri", "mime_type", "modality",
                                          "granularity", "adjacency", "weight"};

[[noreturn]] void bad(const Location& where, const std::string& what) { throw ConfigError(where, "when: " + what); }

Node parse_node(const Value& spec, const Location& where);

Node parse_field(const std::string& field, const Value& cond, const Location& where) {
  bool tag = field.rfind("tags.", 0) == 0 || field.rfind("tags__", 0) == 0;
  if (!tag && std::find(kFields.begin(), kFields.end(), field) == kFields.end()) {
    std::string hint = closest_match(field, kFields);
    bad(where, "unknown field '" + field + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                   "; fields are id, parent_id, text, uri, mime_type, modality, granularity, adjacency, weight, "
                   "tags.NAME");
  }
  Node and_node{Node::Kind::And, {}, {}, {}, {}, nullptr};
  if (!cond.is_map() || cond.size() == 0 || cond.as_map().front().first.rfind("$", 0) != 0) {
    and_node.children.push_back(Node{Node::Kind::Compare, {}, field, "$eq", cond, nullptr});
    return and_node;
  }
  for (const auto& [op, operand] : cond.as_map()) {
    if (std::find(kOps.begin(), kOps.end(), op) == kOps.end()) {
      std::string hint = closest_match(op, kOps);
      bad(where, "unknown operator '" + op + "' on field '" + field + "'" +
                     (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
    }
    Node n{Node::Kind::Compare, {}, field, op, operand, nullptr};
    if ((op == "$in" || op == "$nin") && !operand.is_list())
      bad(where, op + " on field '" + field + "' needs a list, found " + operand.dump());
    if (op == "$exists" && !operand.is_bool())
      bad(where, "$exists on field '" + field + "' needs true or false, found " + operand.dump());
    if (op == "$regex") {
      if (!operand.is_string()) bad(where, "$regex on field '" + field + "' needs a string, found " + operand.dump());
      try {
        n.regex = std::make_shared<std::regex>(operand.as_string());
      } catch (const std::regex_error& e) {
        bad(where, "$regex '" + operand.as_string() + "' is not a valid regular expression: " + e.what());
      }
    }
    and_node.children.push_back(std::move(n));
  }
  return and_node;
}

Node parse_node(const Value& spec, const Location& where) {
  if (!spec.is_map() || spec.size() == 0) bad(where, "expected a map of conditions, found " + spec.dump());
  Node all{Node::Kind::And, {}, {}, {}, {}, nullptr};
  for (const auto& [key, value] : spec.as_map()) {
    if (key == "$and" || key == "$or") {
      if (!value.is_list() || value.size() == 0) bad(where, key + " needs a non-empty list of conditions");
      Node n{key == "$and" ? Node::Kind::And : Node::Kind::Or, {}, {}, {}, {}, nullptr};
      for (const auto& item : value.as_list()) n.children.push_back(parse_node(item, where));
      all.children.push_back(std::move(n));
    } else if (key == "$not") {
      Node n{Node::Kind::Not, {}, {}, {}, {}, nullptr};
      n.children.push_back(parse_node(value, where));
      all.children.push_back(std::move(n));
    } else if (key.rfind("$", 0) == 0) {
      bad(where, "unknown combinator '" + key + "' (expected $and, $or, $not)");
    } else {
      all.children.push_back(parse_field(key, value, where));
    }
  }
  return all;
}

const Value* tag_path(const Value& tags, const std::string& path) {
  const Value* v = &tags;
  std::size_t start = 0;
  while (v && start <= path.size()) {
    std::size_t dot = path.find('.', start);
    v = v->find(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return v;
}

// The field's value, or nullopt when the document does not set it.
std::optional<Value> field_value(const docarray::Document& d, const std::string& f) {
  if (f.rfind("tags.", 0) == 0 || f.rfind("tags__", 0) == 0) {
    std::string path = f.substr(f[4] == '.' ? 5 : 6);
    for (std::size_t p; (p = path.find("__")) != std::string::npos;) path.replace(p, 2, ".");
    const Value* v = tag_path(d.tags, path);
    return v ? std::optional<Value>(*v) : std::nullopt;
  }
  auto str = [](const std::string& s) { return s.empty() ? std::nullopt : std::optional<Value>(s); };
  if (f == "id") return str(d.id);
  if (f == "parent_id") return str(d.parent_id);
  if (f == "text") return str(d.text);
  if (f == "uri") return str(d.uri);
  if (f == "mime_type") return str(d.mime_type);
  if (f == "modality") return str(d.modality);
  if (f == "granularity") return Value(d.granularity);
  if (f == "adjacency") return Value(d.adjacency);
  if (f == "weight") return Value(d.weight);
  return std::nullopt;
}

bool equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return a.as_double() == b.as_double();
  return a == b;
}

// -1, 0, 1, or nullopt when the two cannot be ordered.
std::optional<int> order(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return a.as_double() < b.as_double() ? -1 : a.as_double() > b.as_double();
  if (a.is_string() && b.is_string()) return a.as_string().compare(b.as_string()) < 0 ? -1 : a.as_string() > b.as_string();
  return std::nullopt;
}

bool eval(const Node& n, const docarray::Document& d) {
  switch (n.kind) {
    case Node::Kind::And:
      for (const auto& c : n.children)
        if (!eval(c, d)) return false;
      return true;
    case Node::Kind::Or:
      for (const auto& c : n.children)
        if (eval(c, d)) return true;
      return false;
    case Node::Kind::Not: return !eval(n.children.front(), d);
    case Node::Kind::Compare: break;
  }
  std::optional<Value> v = field_value(d, n.field);
  if (n.op == "$exists") return v.has_value() == n.operand.as_bool();
  if (n.op == "$neq") return !v || !equal(*v, n.operand);
  if (n.op == "$nin") {
    if (!v) return true;
    for (const auto& item : n.operand.as_list())
      if (equal(*v, item)) return false;
    return true;
  }
  if (!v) return false;
  if (n.op == "$eq") return equal(*v, n.operand);
  if (n.op == "$in") {
    for (const auto& item : n.operand.as_list())
      if (equal(*v, item)) return true;
    return false;
  }
  if (n.op == "$regex") return v->is_string() && std::regex_search(v->as_string(), *n.regex);
  std::optional<int> c = order(*v, n.operand);
  if (!c) return false;
  if (n.op == "$gt") return *c > 0;
  if (n.op == "$gte") return *c >= 0;
  if (n.op == "$lt") return *c < 0;
  return *c <= 0;  // $lte
}

}  // namespace

Filter Filter::parse(const Value& spec, const Location& where) {
  Filter f;
  f.root_ = std::make_shared<Node>(parse_node(spec, where));
  return f;
}

bool Filter::matches(const docarray::Document& doc) const { return !root_ || eval(*root_, doc); }

}  // namespace docflow
