#pragma once
// What the fused kernels share. Private to the clip library.
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace clip::kernels::detail {

// The kernels cover contiguous-or-not float32 CPU tensors; anything else
// (CUDA, half precision) takes the ATen reference path.
inline bool fusable(const torch::Tensor& t) {
  return t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.layout() == torch::kStrided;
}

// The gradients of biases and LayerNorm weights are sums over thousands of
// rows. Summed in float partials over blocks of kBlockRows rows and the
// blocks in double: close to a double sum's accuracy without converting
// every element to double.
constexpr std::int64_t kBlockRows = 32;

class ColumnSums {
 public:
  explicit ColumnSums(std::int64_t cols);
  float* partial() { return partial_.data(); }
  void flush();              // adds the partial sums into the totals and clears them
  torch::Tensor result();    // flushes, then the totals as a float tensor

 private:
  std::vector<float> partial_;
  std::vector<double> total_;
};

}  // namespace clip::kernels::detail
