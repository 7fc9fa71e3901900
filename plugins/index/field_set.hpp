#pragma once
// A set of Document fields named in a parameter ("tensor, blob"), for the
// fields an indexer leaves out of what it stores or returns.
#include <string>

#include "docarray/document.hpp"

namespace docflow::index {

struct FieldSet {
  bool embedding = false, tensor = false, blob = false, text = false, uri = false, tags = false, chunks = false;

  // Parses "tensor, blob"; `allowed` is the comma-separated list of names
  // accepted. Throws docflow::Error naming `what` and the unknown field.
  static FieldSet parse(const std::string& names, const std::string& what, const std::string& allowed);
  bool empty() const { return !(embedding || tensor || blob || text || uri || tags || chunks); }
  // Clears the fields in the set.
  void clear_in(docarray::Document& d) const;
};

}  // namespace docflow::index
