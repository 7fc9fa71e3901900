#pragma once
// Joining branches: documents merged by id, as Jina's reduce does.
#include "docarray/document.hpp"

namespace docflow {

// Merges `from` into `into`: a field set in `from` and empty in `into` is
// taken; tags are merged key by key; scores and evaluations by name; chunks
// and matches are merged recursively by id (new ones appended).
void merge_document(docarray::Document& into, const docarray::Document& from);
// Documents of `from` whose id is in `into` are merged; the others appended.
void merge_arrays(docarray::DocumentArray& into, const docarray::DocumentArray& from);

}  // namespace docflow
