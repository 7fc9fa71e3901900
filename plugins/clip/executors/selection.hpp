#pragma once
// The documents an executor of this plugin works on: those at its
// `traversal_path` whose modality is its `modality` ("" takes every one).
#include <vector>

#include "docflow/executor.hpp"

namespace docflow::clip_plugin {

inline std::vector<docarray::Document*> selected_documents(Request& request, const Params& params) {
  const std::string& modality = params.get_string("modality");
  std::vector<docarray::Document*> out;
  for (docarray::Document* d : request.docs.traverse_flat(params.get_string("traversal_path")))
    if (modality.empty() || d->modality == modality) out.push_back(d);
  return out;
}

}  // namespace docflow::clip_plugin
