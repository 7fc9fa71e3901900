#include "field_set.hpp"

#include <sstream>

#include "docflow/error.hpp"

namespace docflow::index {

namespace {
std::string trimmed(const std::string& s) {
  const auto b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}
}  // namespace

FieldSet FieldSet::parse(const std::string& names, const std::string& what, const std::string& allowed) {
  FieldSet set;
  std::istringstream in(names);
  for (std::string name; std::getline(in, name, ',');) {
    name = trimmed(name);
    if (name.empty()) continue;
    const bool known = (", " + allowed + ",").find(", " + name + ",") != std::string::npos;
    bool* field = name == "embedding" ? &set.embedding : name == "tensor" ? &set.tensor : name == "blob" ? &set.blob
                  : name == "text"    ? &set.text      : name == "uri"    ? &set.uri    : name == "tags" ? &set.tags
                  : name == "chunks"  ? &set.chunks    : nullptr;
    if (!known || field == nullptr) throw Error(what + ": unknown field '" + name + "' (expected some of: " + allowed + ")");
    *field = true;
  }
  return set;
}

void FieldSet::clear_in(docarray::Document& d) const {
  if (embedding) d.embedding = at::Tensor();
  if (tensor) d.tensor = at::Tensor();
  if (blob) {
    d.blob.clear();
    d.mime_type.clear();
  }
  if (text) d.text.clear();
  if (uri) d.uri.clear();
  if (tags) d.tags = docarray::Value();
  if (chunks) d.chunks = {};
}

}  // namespace docflow::index
