#include "evaluation_set.hpp"

#include <ATen/ops/tensor.h>

#include "docflow/error.hpp"
#include "fashion_mnist.hpp"
#include "pairs.hpp"

namespace docflow::finetune {
namespace {

docarray::Document query(const std::string& text, const clip::Tokenizer& tokenizer, const Params& params) {
  docarray::Document d;
  d.text = text;
  d.modality = "text";
  d.tensor = at::tensor(tokenizer.tokenize(text, static_cast<std::size_t>(params.get_int("context_length")), true),
                        at::kLong);
  return d;
}

}  // namespace

EvaluationSet fashion_evaluation_set(const Params& params, const clip::Tokenizer& tokenizer) {
  EvaluationSet set;
  FashionMnist data = load_fashion_mnist(params.get_string("path"), params.get_string("split"));
  const std::int64_t limit = params.get_int("limit");
  const std::int64_t n = limit < 0 ? data.count : std::min(limit, data.count);
  const int size = static_cast<int>(params.get_int("image_size"));
  for (std::int64_t i = 0; i < n; ++i) {
    docarray::Document d("image-" + std::to_string(i));
    d.modality = "image";
    d.tensor = image_tensor(data, i, size);
    d.tags["label"] = static_cast<int>(data.labels[static_cast<std::size_t>(i)]);
    ++set.per_label[d.tags.find("label")->dump()];
    set.index.append(std::move(d));
  }
  for (int label = 0; label < 10; ++label)
    for (const auto& q : evaluation_queries(label)) {
      docarray::Document d = query(q, tokenizer, params);
      d.tags["label"] = label;
      set.queries.append(std::move(d));
    }
  set.description = std::to_string(set.queries.size()) + " held-out queries against " + std::to_string(set.index.size()) +
                    " Fashion-MNIST " + params.get_string("split") + " images";
  return set;
}

EvaluationSet pair_evaluation_set(const Params& params, const clip::Tokenizer& tokenizer) {
  const PairSourceOptions o = pair_source_options(params, "data");
  std::vector<PairRecord> records = load_pairs(o);
  const std::int64_t limit = params.get_int("limit");
  if (limit >= 0 && static_cast<std::size_t>(limit) < records.size()) records.resize(static_cast<std::size_t>(limit));
  const bool by_label = !o.label_column.empty();
  const int size = static_cast<int>(params.get_int("image_size"));
  EvaluationSet set;
  // One index entry per distinct image: several captions may describe one.
  std::map<std::string, std::int64_t> image_rows;  // uri (or record) -> row in the index
  for (const PairRecord& r : records) {
    const std::string key = r.image.uri.empty() ? r.where : r.image.uri;
    auto [it, fresh] = image_rows.emplace(key, static_cast<std::int64_t>(image_rows.size()));
    const std::string image_id = "image-" + std::to_string(it->second);
    if (fresh) {
      docarray::Document d(image_id);
      d.modality = "image";
      d.uri = r.image.uri;
      d.tensor = pair_image_tensor(r, size);
      if (by_label) {
        d.tags["label"] = *r.label;
        ++set.per_label[d.tags.find("label")->dump()];
      }
      set.index.append(std::move(d));
    }
    set.query_image.push_back(it->second);
    docarray::Document q = query(r.caption, tokenizer, params);
    if (by_label) {
      q.tags["label"] = *r.label;
    } else {
      docarray::Document truth(q.id);
      truth.matches.append(docarray::Document(image_id));
      set.ground_truth.append(std::move(truth));
    }
    set.queries.append(std::move(q));
  }
  set.description = std::to_string(set.queries.size()) + " held-out captions against " + std::to_string(set.index.size()) +
                    " images from " + o.path + (by_label ? " (relevant: the same label)" : " (relevant: the caption's own image)");
  return set;
}

}  // namespace docflow::finetune
