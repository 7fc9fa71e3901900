#pragma once
// The documents an executor of this plugin works on: those at its
// `traversal_path` whose modality is its `modality` ("" takes every one).
// A document without a modality (Jina users send `{"text": "..."}`) counts
// as text when it has text, and as an image when it has a uri, blob or
// tensor but no text.
#include <vector>

#include "docflow/executor.hpp"

namespace docflow::clip_plugin {

inline const std::string& modality_of(const docarray::Document& d) {
  static const std::string kText = "text", kImage = "image", kNone;
  if (!d.modality.empty()) return d.modality;
  if (!d.text.empty()) return kText;
  if (!d.uri.empty() || !d.blob.empty() || d.tensor.defined()) return kImage;
  return kNone;
}

inline std::vector<docarray::Document*> selected_documents(Request& request, const Params& params) {
  const std::string& modality = params.get_string("modality");
  std::vector<docarray::Document*> out;
  for (docarray::Document* d : request.docs.traverse_flat(params.get_string("traversal_path")))
    if (modality.empty() || modality_of(*d) == modality) out.push_back(d);
  return out;
}

}  // namespace docflow::clip_plugin
