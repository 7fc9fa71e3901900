#include "docflow/merge.hpp"

namespace docflow {

namespace {
void take_if_empty(std::string& into, const std::string& from) {
  if (into.empty()) into = from;
}
}  // namespace

void merge_document(docarray::Document& into, const docarray::Document& from) {
  take_if_empty(into.parent_id, from.parent_id);
  take_if_empty(into.text, from.text);
  take_if_empty(into.uri, from.uri);
  take_if_empty(into.mime_type, from.mime_type);
  take_if_empty(into.blob, from.blob);
  take_if_empty(into.modality, from.modality);
  if (into.granularity == 0) into.granularity = from.granularity;
  if (into.adjacency == 0) into.adjacency = from.adjacency;
  if (into.weight == 0.0) into.weight = from.weight;
  if (!into.tensor.defined()) into.tensor = from.tensor;
  if (!into.embedding.defined()) into.embedding = from.embedding;
  if (from.tags.is_map()) {
    for (const auto& [k, v] : from.tags.as_map())
      if (!into.tags.contains(k)) into.tags[k] = v;
  }
  for (const auto& [k, v] : from.scores) into.scores.emplace(k, v);
  for (const auto& [k, v] : from.evaluations) into.evaluations.emplace(k, v);
  merge_arrays(into.chunks, from.chunks);
  merge_arrays(into.matches, from.matches);
}

void merge_arrays(docarray::DocumentArray& into, const docarray::DocumentArray& from) {
  for (const auto& d : from) {
    if (docarray::Document* existing = into.find(d.id)) merge_document(*existing, d);
    else into.append(d);
  }
}

}  // namespace docflow
