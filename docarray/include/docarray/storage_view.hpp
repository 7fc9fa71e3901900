#pragma once
// A contiguous CPU tensor over part of an existing storage, built directly
// (one TensorImpl, no dispatcher op, no allocation of data): the way to give
// many documents views of one buffer cheaply, as a mapped file's tensors or
// an index's rows of its search matrix. The tensor keeps the storage alive.
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace docarray {

// `offset` in elements of `type` from the storage's start.
at::Tensor storage_view(const c10::Storage& storage, std::int64_t offset, c10::IntArrayRef sizes, c10::ScalarType type);

}  // namespace docarray
