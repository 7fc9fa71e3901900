#include "docflow/params.hpp"

#include <cmath>
#include <sstream>

#include "docflow/error.hpp"

namespace docflow {

const char* param_type_name(ParamType type) {
  switch (type) {
    case ParamType::Bool: return "bool";
    case ParamType::Int: return "int";
    case ParamType::Double: return "double";
    case ParamType::String: return "string";
    case ParamType::List: return "list";
    case ParamType::Map: return "map";
    case ParamType::Any: return "any";
  }
  return "any";
}

const docarray::Value& Params::get(const std::string& name) const {
  const docarray::Value* v = values_.find(name);
  if (!v) throw Error("parameter '" + name + "' is not set and has no default");
  return *v;
}

namespace {

std::string found(const docarray::Value& v) {
  std::string text = v.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return std::string(v.type_name()) + " " + text;
}

bool type_ok(ParamType t, docarray::Value& v) {
  switch (t) {
    case ParamType::Bool: return v.is_bool();
    case ParamType::Int: return v.is_int();
    case ParamType::Double:
      if (v.is_int()) v = docarray::Value(v.as_double());  // 1 where 1.0 is expected is fine
      return v.is_double();
    case ParamType::String: return v.is_string();
    case ParamType::List: return v.is_list();
    case ParamType::Map: return v.is_map();
    case ParamType::Any: return true;
  }
  return true;
}

std::string fmt(double d) {
  std::ostringstream s;
  s << d;
  return s.str();
}

}  // namespace

docarray::Value check_params(const ParamSchema& schema, const docarray::Value& given, const std::string& executor) {
  const std::string who = "executor '" + executor + "'";
  if (!given.is_null() && !given.is_map())
    throw Error(who + ": `with` must be a map of parameters, found " + found(given));
  std::vector<std::string> names;
  for (const auto& p : schema) names.push_back(p.name);
  if (given.is_map()) {
    for (const auto& [key, value] : given.as_map()) {
      bool known = false;
      for (const auto& p : schema) known = known || p.name == key;
      if (known) continue;
      std::string hint = closest_match(key, names);
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      throw Error(who + ": unknown parameter '" + key + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                  "; its parameters are: " + (list.empty() ? "none" : list));
    }
  }
  docarray::Value out = docarray::Value::map();
  for (const auto& p : schema) {
    const docarray::Value* v = given.find(p.name);
    if (!v || v->is_null()) {
      if (!p.default_value)
        throw Error(who + ": parameter '" + p.name + "' (" + param_type_name(p.type) + ") is required: " + p.description);
      out[p.name] = *p.default_value;
      continue;
    }
    docarray::Value value = *v;
    if (!type_ok(p.type, value))
      throw Error(who + ": parameter '" + p.name + "' expects " + param_type_name(p.type) + ", found " + found(*v));
    if (value.is_number()) {
      double d = value.as_double();
      if (p.minimum && d < *p.minimum)
        throw Error(who + ": parameter '" + p.name + "' must be at least " + fmt(*p.minimum) + ", found " + found(*v));
      if (p.maximum && d > *p.maximum)
        throw Error(who + ": parameter '" + p.name + "' must be at most " + fmt(*p.maximum) + ", found " + found(*v));
    }
    if (!p.choices.empty() && value.is_string()) {
      bool ok = false;
      std::string list;
      for (const auto& c : p.choices) {
        ok = ok || c == value.as_string();
        list += (list.empty() ? "" : ", ") + c;
      }
      if (!ok)
        throw Error(who + ": parameter '" + p.name + "' must be one of " + list + ", found " + found(*v));
    }
    out[p.name] = std::move(value);
  }
  return out;
}

}  // namespace docflow
