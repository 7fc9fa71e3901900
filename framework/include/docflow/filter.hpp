#pragma once
// `when:` conditions in DocArray's query language: {field: {$op: value}}
// with $eq $neq $gt $gte $lt $lte $in $nin $regex $exists, combined with
// $and, $or, $not. Fields: id, parent_id, text, uri, mime_type, modality,
// granularity, adjacency, weight, and tags.NAME (DocArray's tags__NAME too,
// nested with more dots).
#include <memory>
#include <string>

#include "docarray/document.hpp"
#include "docflow/error.hpp"

namespace docflow {

class Filter {
 public:
  // Throws ConfigError at `where` naming the operator or field at fault.
  static Filter parse(const docarray::Value& spec, const Location& where);
  bool matches(const docarray::Document& doc) const;

  struct Node;

 private:
  std::shared_ptr<const Node> root_;
};

}  // namespace docflow
