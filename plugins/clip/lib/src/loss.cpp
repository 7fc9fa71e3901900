#include "clip/loss.hpp"

#include <ATen/TensorOperators.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/cross_entropy_loss.h>
#include <ATen/ops/matmul.h>

#include <algorithm>
#include <cmath>

#include "clip/error.hpp"

namespace clip {

namespace {
// torch::nn::functional::normalize(x, {.p = 2, .dim = -1}), op for op (its eps 1e-12).
at::Tensor l2_normalized(const at::Tensor& x) { return x / x.norm(2.0, {-1}, true).clamp_min(1e-12).expand_as(x); }
}  // namespace

at::Tensor clip_loss(const at::Tensor& image, const at::Tensor& text, const at::Tensor& logit_scale) {
  if (image.sizes() != text.sizes() || image.dim() != 2)
    throw Error("CLIPLoss needs image and text features of one shape [batch, dim]");
  const at::Tensor logits = logit_scale.exp() * at::matmul(l2_normalized(image), l2_normalized(text).t());
  const at::Tensor labels = at::arange(image.size(0), at::TensorOptions().dtype(at::kLong).device(image.device()));
  // F::cross_entropy's defaults: mean over the batch, no weights, no label smoothing.
  return (at::cross_entropy_loss(logits, labels) + at::cross_entropy_loss(logits.t(), labels)) / 2;
}

double schedule_factor(const std::string& name, std::int64_t step, std::int64_t warmup, std::int64_t total) {
  if (name == "constant") return 1.0;
  if (step < warmup) return static_cast<double>(step) / std::max<std::int64_t>(1, warmup);
  if (name == "constant_with_warmup") return 1.0;
  const double progress = static_cast<double>(step - warmup) / std::max<std::int64_t>(1, total - warmup);
  if (name == "linear") return std::max(0.0, 1.0 - progress);
  if (name == "cosine") return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
  throw Error("unknown scheduler '" + name + "' (constant, constant_with_warmup, linear, cosine)");
}

}  // namespace clip
