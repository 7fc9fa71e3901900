#pragma once
// Document: the unit of data that flows through docflow, modelled on
// DocArray 0.21 (the data model of Jina 3).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "docarray/document_array.hpp"
#include "docarray/value.hpp"

namespace docarray {

struct NamedScore {
  double value = 0.0;
  std::string op_name;
  std::string description;
  std::string ref_id;
  friend bool operator==(const NamedScore& a, const NamedScore& b) {
    return a.value == b.value && a.op_name == b.op_name && a.description == b.description &&
           a.ref_id == b.ref_id;
  }
};

using Scores = std::map<std::string, NamedScore>;

// 32 lowercase hex characters from a random 128-bit number, as DocArray's uuid4().hex.
std::string random_id();

class Document {
 public:
  Document();                       // with a fresh random id
  explicit Document(std::string id);

  std::string id;
  std::string parent_id;
  std::int32_t granularity = 0;
  std::int32_t adjacency = 0;
  std::string text;
  std::string uri;
  std::string mime_type;
  std::string blob;  // raw bytes
  at::Tensor tensor;
  at::Tensor embedding;
  std::string modality;
  double weight = 0.0;
  Value tags;  // null or a map
  Scores scores;
  Scores evaluations;
  DocumentArray chunks;
  DocumentArray matches;

  // Appends a chunk, setting its parent_id to this id and its granularity to
  // this granularity + 1 (DocArray's ChunkArray does the same). Returns it.
  Document& add_chunk(Document chunk);
  // Appends a match, setting its adjacency to this adjacency + 1.
  Document& add_match(Document match);

  bool has_tensor() const { return tensor.defined(); }
  bool has_embedding() const { return embedding.defined(); }

  // The tag `key`, or nullptr when absent. Set tags with tags["key"] = ...
  const Value* find_tag(const std::string& key) const { return tags.find(key); }
};

// Field-by-field equality, tensors compared by dtype, shape and values.
bool equal(const Document& a, const Document& b);
bool equal(const DocumentArray& a, const DocumentArray& b);
// Equality of tensors: both undefined, or same dtype, shape and values
// (NaN equal to NaN).
bool tensor_equal(const at::Tensor& a, const at::Tensor& b);

}  // namespace docarray
