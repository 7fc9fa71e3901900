// quick_gelu (x * sigmoid(1.702 x)) with the bias of the layer before, one
// pass each way.
#include "clip/kernels.hpp"

#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include "kernels_common.hpp"
#include "vector_math.hpp"

namespace clip::kernels {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;
using detail::fusable;
using detail::ColumnSums;
using clip::detail::fast_sigmoid;
using detail::kBlockRows;

constexpr float kGeluSlope = 1.702f;

// y = u s(a u), u = x + bias (bias over the last dimension, `cols` wide).
CLIP_VECTOR_CLONES void gelu_forward(const float* x, const float* bias, float* y, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    for (std::int64_t j = 0; j < cols; ++j) {
      const float u = xr[j] + bias[j];
      yr[j] = u * fast_sigmoid(kGeluSlope * u);
    }
  }
}

// d/du u s(au) = s + a u s (1 - s), the sigmoid recomputed rather than stored;
// the bias gradient (the column sums of dx) accumulated in the same pass.
CLIP_VECTOR_CLONES void gelu_backward(const float* x, const float* bias, const float* g, float* dx, float* dbias,
                                      std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    const float* gr = g + r * cols;
    float* dr = dx + r * cols;
    for (std::int64_t j = 0; j < cols; ++j) {
      const float u = xr[j] + bias[j];
      const float s = fast_sigmoid(kGeluSlope * u);
      dr[j] = gr[j] * (s + kGeluSlope * u * s * (1.0f - s));
      dbias[j] += dr[j];
    }
  }
}

struct QuickGelu : torch::autograd::Function<QuickGelu> {
  // Without a bias the caller passes a zero row and has_bias false (apply
  // takes no undefined tensors); that row then gets no gradient.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& input, const torch::Tensor& bias,
                               bool has_bias) {
    RECORD_FUNCTION("clip::quick_gelu", std::vector<c10::IValue>());
    torch::Tensor x = input.contiguous();
    const torch::Tensor b = bias.contiguous();
    torch::Tensor y = torch::empty_like(x);
    const std::int64_t cols = b.numel(), rows = cols == 0 ? 0 : x.numel() / cols;
    gelu_forward(x.data_ptr<float>(), b.data_ptr<float>(), y.data_ptr<float>(), rows, cols);
    ctx->save_for_backward({x, b});
    ctx->saved_data["has_bias"] = has_bias;
    return y;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    RECORD_FUNCTION("clip::quick_gelu_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &x = saved[0], &b = saved[1];
    const torch::Tensor g = grads[0].contiguous();
    const std::int64_t cols = b.numel(), rows = cols == 0 ? 0 : x.numel() / cols;
    torch::Tensor dx = torch::empty_like(x);
    ColumnSums dbias(cols);
    for (std::int64_t r = 0; r < rows; r += kBlockRows) {
      const std::int64_t at = r * cols;
      gelu_backward(x.data_ptr<float>() + at, b.data_ptr<float>(), g.data_ptr<float>() + at, dx.data_ptr<float>() + at,
                    dbias.partial(), std::min(kBlockRows, rows - r), cols);
      dbias.flush();
    }
    if (!ctx->saved_data["has_bias"].toBool()) return {dx, torch::Tensor(), torch::Tensor()};
    return {dx, dbias.result(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor quick_gelu_reference(const torch::Tensor& x, const torch::Tensor& bias) {
  const torch::Tensor u = bias.defined() ? x + bias : x;
  return u * torch::sigmoid(kGeluSlope * u);
}

torch::Tensor quick_gelu(const torch::Tensor& x, const torch::Tensor& bias) {
  if (bias.defined())
    TORCH_CHECK(bias.dim() == 1 && x.dim() >= 1 && bias.size(0) == x.size(-1), "quick_gelu's bias of shape ",
                bias.sizes(), " does not match the last dimension of ", x.sizes());
  const bool fused = fusable(x) && (!bias.defined() || fusable(bias)) && x.dim() >= 1 && x.numel() > 0;
  if (!fused) return quick_gelu_reference(x, bias);
  return bias.defined() ? QuickGelu::apply(x, bias, true) : QuickGelu::apply(x, torch::zeros({x.size(-1)}, x.options()), false);
}

}  // namespace clip::kernels
