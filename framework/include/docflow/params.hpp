#pragma once
// Executor parameters: the schema an executor declares (name, type, default,
// range, description) and the checked values it is constructed with.
#include <optional>
#include <string>
#include <vector>

#include "docarray/value.hpp"

namespace docflow {

enum class ParamType { Bool, Int, Double, String, List, Map, Any };

const char* param_type_name(ParamType type);

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::Any;
  std::optional<docarray::Value> default_value;  // none: the parameter is required
  std::string description;
  std::optional<double> minimum, maximum;        // for Int and Double
  std::vector<std::string> choices;              // for String: the allowed values
};

using ParamSchema = std::vector<ParamSpec>;

// The parameters an executor is constructed with, already checked against
// its schema and completed with defaults.
class Params {
 public:
  Params() = default;
  explicit Params(docarray::Value values) : values_(std::move(values)) {}

  bool has(const std::string& name) const { return values_.find(name) != nullptr; }
  const docarray::Value& get(const std::string& name) const;  // throws docflow::Error when absent
  bool get_bool(const std::string& name) const { return get(name).as_bool(); }
  std::int64_t get_int(const std::string& name) const { return get(name).as_int(); }
  double get_double(const std::string& name) const { return get(name).as_double(); }
  const std::string& get_string(const std::string& name) const { return get(name).as_string(); }
  const docarray::Value& values() const { return values_; }

 private:
  docarray::Value values_;
};

// Checks `given` (a map or null) against `schema`: unknown names (with a
// suggestion), wrong types, out-of-range numbers, choices, missing required
// parameters. An int is accepted where a double is expected. Returns the
// values completed with defaults; throws docflow::Error whose message names
// the parameter, what was expected and what was found.
docarray::Value check_params(const ParamSchema& schema, const docarray::Value& given, const std::string& executor);

}  // namespace docflow
