#include "kernels_common.hpp"

#include "vector_math.hpp"

namespace clip::kernels::detail {

namespace {

CLIP_VECTOR_CLONES void add_and_clear(float* partial, double* total, std::int64_t n) {
  for (std::int64_t j = 0; j < n; ++j) {
    total[j] += partial[j];
    partial[j] = 0;
  }
}

}  // namespace

ColumnSums::ColumnSums(std::int64_t cols)
    : partial_(static_cast<std::size_t>(cols)), total_(static_cast<std::size_t>(cols)) {}

void ColumnSums::flush() { add_and_clear(partial_.data(), total_.data(), static_cast<std::int64_t>(total_.size())); }

torch::Tensor ColumnSums::result() {
  flush();
  return torch::tensor(std::vector<float>(total_.begin(), total_.end()));
}

}  // namespace clip::kernels::detail
