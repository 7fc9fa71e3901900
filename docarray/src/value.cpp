#include "docarray/value.hpp"

#include <nlohmann/json.hpp>

#include "docarray/error.hpp"

namespace docarray {
namespace {
const char* kTypeNames[] = {"null", "bool", "int", "double", "string", "list", "map"};

[[noreturn]] void wrong_type(const Value& v, const char* wanted) {
  throw Error(std::string("tag value is a ") + v.type_name() + ", expected a " + wanted + ": " +
              v.dump());
}

nlohmann::ordered_json to_json(const Value& v) {
  switch (v.type()) {
    case Value::Type::Null: return nullptr;
    case Value::Type::Bool: return v.as_bool();
    case Value::Type::Int: return v.as_int();
    case Value::Type::Double: return v.as_double();
    case Value::Type::String: return v.as_string();
    case Value::Type::List: {
      auto out = nlohmann::ordered_json::array();
      for (const auto& item : v.as_list()) out.push_back(to_json(item));
      return out;
    }
    case Value::Type::Map: {
      auto out = nlohmann::ordered_json::object();
      for (const auto& [k, item] : v.as_map()) out[k] = to_json(item);
      return out;
    }
  }
  return nullptr;
}
}  // namespace

const char* Value::type_name() const { return kTypeNames[v_.index()]; }

bool Value::as_bool() const {
  if (!is_bool()) wrong_type(*this, "bool");
  return std::get<bool>(v_);
}
std::int64_t Value::as_int() const {
  if (!is_int()) wrong_type(*this, "int");
  return std::get<std::int64_t>(v_);
}
double Value::as_double() const {
  if (is_int()) return static_cast<double>(std::get<std::int64_t>(v_));
  if (!is_double()) wrong_type(*this, "number");
  return std::get<double>(v_);
}
const std::string& Value::as_string() const {
  if (!is_string()) wrong_type(*this, "string");
  return std::get<std::string>(v_);
}
const Value::List& Value::as_list() const {
  if (!is_list()) wrong_type(*this, "list");
  return std::get<List>(v_);
}
Value::List& Value::as_list() {
  if (!is_list()) wrong_type(*this, "list");
  return std::get<List>(v_);
}
const Value::Map& Value::as_map() const {
  if (!is_map()) wrong_type(*this, "map");
  return std::get<Map>(v_);
}
Value::Map& Value::as_map() {
  if (!is_map()) wrong_type(*this, "map");
  return std::get<Map>(v_);
}

Value& Value::operator[](const std::string& key) {
  if (is_null()) v_ = Map{};
  auto& m = as_map();
  for (auto& [k, v] : m) {
    if (k == key) return v;
  }
  m.emplace_back(key, Value());
  return m.back().second;
}

const Value* Value::find(const std::string& key) const {
  if (!is_map()) return nullptr;
  for (const auto& [k, v] : std::get<Map>(v_)) {
    if (k == key) return &v;
  }
  return nullptr;
}

bool Value::erase(const std::string& key) {
  if (!is_map()) return false;
  auto& m = std::get<Map>(v_);
  for (auto it = m.begin(); it != m.end(); ++it) {
    if (it->first == key) {
      m.erase(it);
      return true;
    }
  }
  return false;
}

std::size_t Value::size() const {
  if (is_list()) return std::get<List>(v_).size();
  if (is_map()) return std::get<Map>(v_).size();
  return 0;
}

// For messages and logs: a string with invalid UTF-8 (from a hostile file)
// shows U+FFFD where the broken bytes were instead of throwing.
std::string Value::dump() const {
  return to_json(*this).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace docarray
