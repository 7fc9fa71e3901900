#pragma once
// What RetrievalEvaluator retrieves: an index of images and text queries,
// tokenized and preprocessed once, with their relevance: by the `label` tag
// (Fashion-MNIST's classes, or a label column), or by ground truth (each
// caption's own image) when the data has no labels.
#include <map>
#include <string>

#include "clip/tokenizer.hpp"
#include "docarray/document_array.hpp"
#include "docflow/params.hpp"

namespace docflow::finetune {

struct EvaluationSet {
  docarray::DocumentArray index, queries;
  docarray::DocumentArray ground_truth;   // aligned with queries; empty when relevance is by label
  std::map<std::string, int> per_label;   // images per label, for recall
  std::vector<std::int64_t> query_image;  // pairs: each query's own image (row of index), for val_loss
  std::string description;                // "20 held-out queries against 1000 test images"
};

// Fashion-MNIST's test split with captions from templates training never saw.
EvaluationSet fashion_evaluation_set(const Params& params, const clip::Tokenizer& tokenizer);
// A user's held-out pairs (params: data, format, columns, limit, image_size).
EvaluationSet pair_evaluation_set(const Params& params, const clip::Tokenizer& tokenizer);

}  // namespace docflow::finetune
