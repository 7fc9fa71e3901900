// The residual add fused with the LayerNorm that reads its result.
#include "clip/kernels.hpp"

#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>

#include "kernels_common.hpp"
#include "vector_math.hpp"

namespace clip::kernels {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;
using detail::fusable;
using detail::ColumnSums;
using detail::kBlockRows;

// Sums of a row with 16 independent accumulators, a shape GCC vectorises
// without reassociating (it may not reorder one float sum).
constexpr std::int64_t kLanes = 16;

// Forward of one row: s = x + (r + r_bias), then mean, rstd and the
// normalized row.
CLIP_VECTOR_CLONES void add_layer_norm_row(const float* x, const float* r, const float* r_bias, const float* weight,
                                           const float* bias, float* sum, float* out, std::int64_t w, float eps,
                                           float* mean_out, float* rstd_out) {
  float acc[kLanes] = {};
  std::int64_t j = 0;
  for (; j + kLanes <= w; j += kLanes)
    for (std::int64_t k = 0; k < kLanes; ++k) {
      sum[j + k] = x[j + k] + (r[j + k] + r_bias[j + k]);
      acc[k] += sum[j + k];
    }
  float total = 0;
  for (; j < w; ++j) {
    sum[j] = x[j] + (r[j] + r_bias[j]);
    total += sum[j];
  }
  for (float a : acc) total += a;
  const float mean = total / static_cast<float>(w);
  float sq[kLanes] = {};
  j = 0;
  for (; j + kLanes <= w; j += kLanes)
    for (std::int64_t k = 0; k < kLanes; ++k) {
      const float d = sum[j + k] - mean;
      sq[k] += d * d;
    }
  float var = 0;
  for (; j < w; ++j) var += (sum[j] - mean) * (sum[j] - mean);
  for (float a : sq) var += a;
  const float rstd = 1.0f / std::sqrt(var / static_cast<float>(w) + eps);
  for (j = 0; j < w; ++j) out[j] = (sum[j] - mean) * rstd * weight[j] + bias[j];
  *mean_out = mean;
  *rstd_out = rstd;
}

// Backward of one row, given the gradient of the normalized row (dy) and of
// the sum itself (ds, from the residual path): dx = rstd (g - mean(g) -
// xhat mean(g xhat)) + ds with g = dy * weight; the weight and bias gradients
// added into the per-column partial sums of a ColumnSums, and so is dx for
// r_bias's gradient.
CLIP_VECTOR_CLONES void add_layer_norm_row_backward(const float* sum, const float* weight, const float* dy,
                                                    const float* ds, float* dx, float* dweight, float* dbias,
                                                    float* d_r_bias, std::int64_t w, float mean, float rstd) {
  float acc_g[kLanes] = {}, acc_gx[kLanes] = {};
  std::int64_t j = 0;
  for (; j + kLanes <= w; j += kLanes)
    for (std::int64_t k = 0; k < kLanes; ++k) {
      const float xhat = (sum[j + k] - mean) * rstd;
      const float g = dy[j + k] * weight[j + k];
      acc_g[k] += g;
      acc_gx[k] += g * xhat;
      dweight[j + k] += dy[j + k] * xhat;
      dbias[j + k] += dy[j + k];
    }
  float total_g = 0, total_gx = 0;
  for (; j < w; ++j) {
    const float xhat = (sum[j] - mean) * rstd;
    const float g = dy[j] * weight[j];
    total_g += g;
    total_gx += g * xhat;
    dweight[j] += dy[j] * xhat;
    dbias[j] += dy[j];
  }
  for (std::int64_t k = 0; k < kLanes; ++k) {
    total_g += acc_g[k];
    total_gx += acc_gx[k];
  }
  const float mean_g = total_g / static_cast<float>(w), mean_gx = total_gx / static_cast<float>(w);
  for (j = 0; j < w; ++j) {
    const float xhat = (sum[j] - mean) * rstd;
    dx[j] = rstd * (dy[j] * weight[j] - mean_g - xhat * mean_gx) + ds[j];
    d_r_bias[j] += dx[j];
  }
}

struct AddLayerNorm : torch::autograd::Function<AddLayerNorm> {
  static tensor_list forward(AutogradContext* ctx, const torch::Tensor& x_in, const torch::Tensor& r_in,
                             const torch::Tensor& r_bias_in, const torch::Tensor& weight_in,
                             const torch::Tensor& bias_in, double eps) {
    RECORD_FUNCTION("clip::add_layer_norm", std::vector<c10::IValue>());
    const torch::Tensor x = x_in.contiguous(), r = r_in.contiguous();
    const torch::Tensor weight = weight_in.contiguous(), bias = bias_in.contiguous();
    const std::int64_t w = x.size(-1), rows = x.numel() / w;
    const torch::Tensor r_bias = r_bias_in.contiguous();
    torch::Tensor sum = torch::empty_like(x), out = torch::empty_like(x);
    torch::Tensor stats = torch::empty({rows, 2}, x.options());  // mean, rstd
    const float *xp = x.data_ptr<float>(), *rp = r.data_ptr<float>();
    float *sp = sum.data_ptr<float>(), *op = out.data_ptr<float>(), *st = stats.data_ptr<float>();
    for (std::int64_t i = 0; i < rows; ++i)
      add_layer_norm_row(xp + i * w, rp + i * w, r_bias.data_ptr<float>(), weight.data_ptr<float>(),
                         bias.data_ptr<float>(), sp + i * w, op + i * w, w, static_cast<float>(eps), st + 2 * i,
                         st + 2 * i + 1);
    ctx->save_for_backward({sum, weight, stats});
    return {sum, out};
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    RECORD_FUNCTION("clip::add_layer_norm_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &sum = saved[0], &weight = saved[1], &stats = saved[2];
    const std::int64_t w = sum.size(-1), rows = sum.numel() / w;
    // Either output may have had no use downstream.
    const torch::Tensor ds = grads[0].defined() ? grads[0].contiguous() : torch::zeros_like(sum);
    const torch::Tensor dy = grads[1].defined() ? grads[1].contiguous() : torch::zeros_like(sum);
    torch::Tensor dx = torch::empty_like(sum);
    ColumnSums dweight(w), dbias(w), d_r_bias(w);
    const float* st = stats.data_ptr<float>();
    for (std::int64_t i = 0; i < rows; ++i) {
      add_layer_norm_row_backward(sum.data_ptr<float>() + i * w, weight.data_ptr<float>(), dy.data_ptr<float>() + i * w,
                                  ds.data_ptr<float>() + i * w, dx.data_ptr<float>() + i * w, dweight.partial(),
                                  dbias.partial(), d_r_bias.partial(), w, st[2 * i], st[2 * i + 1]);
      if ((i + 1) % kBlockRows == 0) {
        dweight.flush();
        dbias.flush();
        d_r_bias.flush();
      }
    }
    // x, r and r's bias all enter the sum alone, so all get its gradient.
    return {dx, dx, d_r_bias.result(), dweight.result(), dbias.result(), torch::Tensor()};
  }
};

}  // namespace

std::tuple<torch::Tensor, torch::Tensor> add_layer_norm_reference(const torch::Tensor& x, const torch::Tensor& r,
                                                                  const torch::Tensor& weight,
                                                                  const torch::Tensor& bias, double eps,
                                                                  const torch::Tensor& r_bias) {
  torch::Tensor sum = r_bias.defined() ? x + (r + r_bias) : x + r;
  return {sum, torch::layer_norm(sum, {x.size(-1)}, weight, bias, eps)};
}

std::tuple<torch::Tensor, torch::Tensor> add_layer_norm(const torch::Tensor& x, const torch::Tensor& r,
                                                        const torch::Tensor& weight, const torch::Tensor& bias,
                                                        double eps, const torch::Tensor& r_bias) {
  TORCH_CHECK(x.dim() >= 1 && x.sizes() == r.sizes() && weight.dim() == 1 && bias.dim() == 1 &&
                  weight.size(0) == x.size(-1) && bias.size(0) == x.size(-1),
              "add_layer_norm takes x and r of one shape and a weight and bias as wide as their last dimension, got ",
              x.sizes(), ", ", r.sizes(), ", ", weight.sizes(), " and ", bias.sizes());
  TORCH_CHECK(!r_bias.defined() || (r_bias.dim() == 1 && r_bias.size(0) == x.size(-1)),
              "add_layer_norm: r's bias must be as wide as the last dimension ", x.size(-1), ", got ", r_bias.sizes());
  if (!(fusable(x) && fusable(r) && fusable(weight) && fusable(bias) && (!r_bias.defined() || fusable(r_bias))) ||
      x.numel() == 0)
    return add_layer_norm_reference(x, r, weight, bias, eps, r_bias);
  // Without a bias, zeros (autograd's custom functions take no undefined
  // tensor); their gradient, a few hundred floats, is then dropped.
  auto out = AddLayerNorm::apply(x, r, r_bias.defined() ? r_bias : torch::zeros({x.size(-1)}, x.options()), weight,
                                 bias, eps);
  return {out[0], out[1]};
}

}  // namespace clip::kernels
