#include "docarray/limits.hpp"

#include <charconv>
#include <cstdint>

#include "docarray/error.hpp"

namespace docarray {
namespace {

struct Entry {
  const char* name;
  const char* what;
  std::uint64_t max;  // the largest value the field's type holds
  std::uint64_t Limits::*wide;
  std::uint32_t Limits::*narrow;
};

const Entry kEntries[] = {
    {"depth", "nesting of documents, tags and YAML", UINT32_MAX, nullptr, &Limits::depth},
    {"tensor_elements", "elements of one tensor in a document file", UINT64_MAX, &Limits::tensor_elements, nullptr},
    {"image_pixels", "pixels (width x height) of one decoded image", UINT64_MAX, &Limits::image_pixels, nullptr},
    {"text_bytes", "bytes of one text a tokenizer reads", UINT64_MAX, &Limits::text_bytes, nullptr},
    {"yaml_nodes", "nodes a flow file expands to after aliases", UINT64_MAX, &Limits::yaml_nodes, nullptr},
    {"model_header_bytes", "bytes of a safetensors header or config.json", UINT64_MAX, &Limits::model_header_bytes,
     nullptr},
};

std::uint64_t value_of(const Entry& e) { return e.wide ? limits().*e.wide : limits().*e.narrow; }

const Entry& entry(const std::string& name) {
  for (const auto& e : kEntries)
    if (name == e.name) return e;
  std::string known;
  for (const auto& e : kEntries) known += (known.empty() ? "" : ", ") + std::string(e.name);
  throw Error("unknown limit '" + name + "' (known: " + known + ")");
}

}  // namespace

Limits& limits() {
  static Limits instance;
  return instance;
}

std::vector<std::string> limit_names() {
  std::vector<std::string> out;
  for (const auto& e : kEntries) out.push_back(std::string(e.name) + "=" + std::to_string(value_of(e)) + "  " + e.what);
  return out;
}

void set_limit(const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos) throw Error("--input-limit expects NAME=VALUE, found '" + assignment + "'");
  const Entry& e = entry(assignment.substr(0, eq));
  const std::string text = assignment.substr(eq + 1);
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v == 0 || v > e.max)
    throw Error("--input-limit " + std::string(e.name) + " expects a positive integer up to " + std::to_string(e.max) +
                ", found '" + text + "'");
  if (e.wide) limits().*e.wide = v;
  else limits().*e.narrow = static_cast<std::uint32_t>(v);
}

void check_depth(std::uint32_t depth, const std::string& field, const char* what) {
  if (depth > limits().depth)
    throw Error("field '" + field + "': " + std::string(what) + " nested deeper than " + limit_hint("depth"));
}

std::string limit_hint(const std::string& name) {
  return "the " + name + " limit (" + std::to_string(value_of(entry(name))) + "; raise it with --input-limit " + name +
         "=N)";
}

}  // namespace docarray
