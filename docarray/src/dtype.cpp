#include "docarray/dtype.hpp"

#include <utility>

#include "docarray/error.hpp"

namespace docarray {
namespace {
const std::pair<const char*, c10::ScalarType> kDtypes[] = {
    {"float32", c10::ScalarType::Float},  {"float64", c10::ScalarType::Double},
    {"float16", c10::ScalarType::Half},   {"bfloat16", c10::ScalarType::BFloat16},
    {"int8", c10::ScalarType::Char},      {"int16", c10::ScalarType::Short},
    {"int32", c10::ScalarType::Int},      {"int64", c10::ScalarType::Long},
    {"uint8", c10::ScalarType::Byte},     {"bool", c10::ScalarType::Bool},
};

std::string supported() {
  std::string out;
  for (const auto& [name, type] : kDtypes) out += (out.empty() ? "" : ", ") + std::string(name);
  return out;
}
}  // namespace

std::string dtype_name(c10::ScalarType type) {
  for (const auto& [name, t] : kDtypes) {
    if (t == type) return name;
  }
  throw Error(std::string("tensor dtype ") + c10::toString(type) +
              " cannot be stored in a document file (supported: " + supported() + ")");
}

c10::ScalarType dtype_from_name(const std::string& name) {
  for (const auto& [n, t] : kDtypes) {
    if (name == n) return t;
  }
  throw Error("unknown tensor dtype '" + name + "' (supported: " + supported() + ")");
}

}  // namespace docarray
