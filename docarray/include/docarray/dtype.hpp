#pragma once
// Tensor dtype names as numpy and DocArray spell them ("float32", "int64", ...).
#include <c10/core/ScalarType.h>

#include <string>

namespace docarray {

// "float32" for at::kFloat and so on; throws docarray::Error for a dtype
// that docarray files cannot hold (complex, quantized).
std::string dtype_name(c10::ScalarType type);
// The inverse; throws docarray::Error naming the supported dtypes.
c10::ScalarType dtype_from_name(const std::string& name);

}  // namespace docarray
