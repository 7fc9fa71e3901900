// Several Linear layers over the same input as one product (attention's q, k
// and v projections).
#include "clip/kernels.hpp"

#include <ATen/record_function.h>

#include <algorithm>
#include <vector>

#include "blas.hpp"
#include "few_rows_linear.hpp"
#include "kernels_common.hpp"

namespace clip::kernels {

namespace {

// x, the weights and the biases, one list to test them all with.
std::vector<torch::Tensor> all_inputs(const torch::Tensor& x, at::TensorList weights, at::TensorList biases) {
  std::vector<torch::Tensor> all{x};
  all.insert(all.end(), weights.begin(), weights.end());
  all.insert(all.end(), biases.begin(), biases.end());
  return all;
}

}  // namespace

torch::Tensor packed_linear(const torch::Tensor& x, at::TensorList weights, at::TensorList biases) {
  TORCH_CHECK(!weights.empty() && weights.size() == biases.size(), "packed_linear takes one bias per weight, got ",
              weights.size(), " weights and ", biases.size(), " biases");
  const std::int64_t in = x.size(-1);
  std::int64_t total = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    TORCH_CHECK(weights[i].dim() == 2 && weights[i].size(1) == in, "packed_linear: weight ", i, " is ",
                weights[i].sizes(), ", expected [out, ", in, "]");
    TORCH_CHECK(biases[i].dim() == 1 && biases[i].size(0) == weights[i].size(0), "packed_linear: bias ", i, " is ",
                biases[i].sizes(), ", expected [", weights[i].size(0), "]");
    total += weights[i].size(0);
  }
  const torch::Tensor bias = at::cat(biases);
  const auto inputs = all_inputs(x, weights, biases);
  const bool needs_grad = at::GradMode::is_enabled() &&
                          std::any_of(inputs.begin(), inputs.end(), [](const auto& t) { return t.requires_grad(); });
  const bool fusable = std::all_of(inputs.begin(), inputs.end(), [](const auto& t) { return detail::fusable(t); });
  if (needs_grad || !fusable || x.numel() == 0) {
    // One product over the concatenated weights (bigger, so faster, than one
    // per layer; the concatenation's backward hands each weight its rows of
    // the gradient), and the bias added in place as nn::Linear does.
    return at::matmul(x, at::cat(weights).t()).add_(bias);
  }
  // Without autograd, each product is written into its columns of the
  // result, so the weights are not copied on every call (inference).
  RECORD_FUNCTION("clip::packed_linear", std::vector<c10::IValue>());
  const torch::Tensor rows = x.reshape({-1, in}).contiguous();
  torch::Tensor out = at::empty({rows.size(0), total}, x.options());
  std::int64_t column = 0;
  for (const auto& w_in : weights) {
    const torch::Tensor w = w_in.contiguous();
    if (detail::own_product(rows.size(0), in, w.size(0)))
      detail::few_rows_linear(rows.data_ptr<float>(), rows.size(0), in, w, out.data_ptr<float>() + column, total);
    else
      detail::gemm(false, true, rows.size(0), w.size(0), in, 1, rows.data_ptr<float>(), in, w.data_ptr<float>(), in, 0,
                   out.data_ptr<float>() + column, total);
    column += w.size(0);
  }
  out.add_(bias);
  auto sizes = x.sizes().vec();
  sizes.back() = total;
  return out.view(sizes);
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight) {
  TORCH_CHECK(weight.dim() == 2 && x.dim() >= 1 && weight.size(1) == x.size(-1), "linear: weight is ", weight.sizes(),
              ", input ", x.sizes(), ", expected weight [out, ", x.dim() >= 1 ? x.size(-1) : 0, "]");
  const bool needs_grad = at::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad());
  const std::int64_t in = x.size(-1), rows = in == 0 ? 0 : x.numel() / in;
  if (needs_grad || !detail::fusable(x) || !detail::fusable(weight) || !detail::own_product(rows, in, weight.size(0)))
    return at::matmul(x, weight.t());
  RECORD_FUNCTION("clip::linear", std::vector<c10::IValue>());
  const torch::Tensor x_rows = x.reshape({rows, in}).contiguous(), w = weight.contiguous();
  torch::Tensor out = at::empty({rows, w.size(0)}, x.options());
  detail::few_rows_linear(x_rows.data_ptr<float>(), rows, in, w, out.data_ptr<float>(), w.size(0));
  auto sizes = x.sizes().vec();
  sizes.back() = w.size(0);
  return out.view(sizes);
}

}  // namespace clip::kernels
