#pragma once
// Documents that use every field, for round-trip tests.
#include <ATen/ATen.h>

#include "docarray/document.hpp"

namespace docflow::testing {

inline docarray::Document full_document(int seed) {
  using docarray::Document;
  using docarray::Value;
  at::manual_seed(seed);
  Document d;
  d.text = "a photo of a pullover \xE2\x9C\x93 #" + std::to_string(seed);
  d.uri = "images/" + std::to_string(seed) + ".png";
  d.mime_type = "image/png";
  d.blob = std::string("\x00\x01\xff\xfe binary", 11);
  d.tensor = at::randn({3, 4, 2});
  d.embedding = at::randn({8}, at::kDouble);
  d.modality = "image";
  d.weight = 0.25 * seed;
  d.granularity = 0;
  d.adjacency = 0;
  d.tags["label"] = 3;
  d.tags["big"] = static_cast<long long>(9007199254740993LL);  // not representable as a double
  d.tags["ratio"] = 0.5;
  d.tags["one_as_double"] = 1.0;
  d.tags["name"] = "shirt";
  d.tags["ok"] = true;
  d.tags["nothing"] = nullptr;
  d.tags["list"] = Value::list({1, "two", 3.5, Value::list({false})});
  d.tags["nested"]["deep"]["x"] = -7;
  d.scores["cosine"] = {0.125, "cosine", "distance", "abc"};
  d.evaluations["precision_at_k"] = {0.5, "precision_at_k", "", ""};
  Document chunk;
  chunk.text = "chunk text";
  chunk.modality = "text";
  chunk.tensor = at::arange(77, at::kLong);
  Document grandchild;
  grandchild.embedding = at::ones({2, 2}, at::kHalf);
  chunk.add_chunk(grandchild);
  d.add_chunk(chunk);
  Document m;
  m.uri = "match.png";
  m.embedding = at::tensor({1, 0, 1}).to(at::kBool);
  m.scores["euclidean"].value = 1.5;
  d.add_match(m);
  return d;
}

}  // namespace docflow::testing
