#pragma once
// A JSON-like value for Document tags. Integers stay integers through every
// format (protobuf turning them into floats was a long-standing Jina
// complaint); maps keep insertion order, as Python dicts do.
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace docarray {

class Value {
 public:
  using List = std::vector<Value>;
  using Map = std::vector<std::pair<std::string, Value>>;
  enum class Type { Null, Bool, Int, Double, String, List, Map };

  Value() = default;
  Value(std::nullptr_t) {}
  Value(bool b) : v_(b) {}
  Value(int i) : v_(static_cast<std::int64_t>(i)) {}
  Value(long i) : v_(static_cast<std::int64_t>(i)) {}
  Value(long long i) : v_(static_cast<std::int64_t>(i)) {}
  Value(unsigned i) : v_(static_cast<std::int64_t>(i)) {}
  Value(unsigned long i) : v_(static_cast<std::int64_t>(i)) {}
  Value(double d) : v_(d) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(List l) : v_(std::move(l)) {}
  Value(Map m) : v_(std::move(m)) {}

  static Value list(std::initializer_list<Value> items = {}) { return Value(List(items)); }
  static Value map() { return Value(Map{}); }

  Type type() const { return static_cast<Type>(v_.index()); }
  const char* type_name() const;
  bool is_null() const { return type() == Type::Null; }
  bool is_bool() const { return type() == Type::Bool; }
  bool is_int() const { return type() == Type::Int; }
  bool is_double() const { return type() == Type::Double; }
  bool is_number() const { return is_int() || is_double(); }
  bool is_string() const { return type() == Type::String; }
  bool is_list() const { return type() == Type::List; }
  bool is_map() const { return type() == Type::Map; }

  // Typed access; a wrong type throws docarray::Error naming both types.
  bool as_bool() const;
  std::int64_t as_int() const;
  double as_double() const;  // ints convert
  const std::string& as_string() const;
  const List& as_list() const;
  List& as_list();
  const Map& as_map() const;
  Map& as_map();

  // Map access. `operator[]` on a null value turns it into a map first.
  Value& operator[](const std::string& key);
  const Value* find(const std::string& key) const;
  bool contains(const std::string& key) const { return find(key) != nullptr; }
  bool erase(const std::string& key);
  std::size_t size() const;  // elements of a list or map, 0 otherwise

  // Deep equality; 1 and 1.0 are different values (types are kept).
  friend bool operator==(const Value& a, const Value& b) { return a.v_ == b.v_; }
  friend bool operator!=(const Value& a, const Value& b) { return !(a == b); }

  // Compact JSON text, for messages and summaries.
  std::string dump() const;

 private:
  std::variant<std::monostate, bool, std::int64_t, double, std::string, List, Map> v_;
};

}  // namespace docarray
