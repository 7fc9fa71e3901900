#include "clip/loss.hpp"

#include <cmath>

#include "clip/error.hpp"

namespace clip {

torch::Tensor clip_loss(const torch::Tensor& image, const torch::Tensor& text, const torch::Tensor& logit_scale) {
  if (image.sizes() != text.sizes() || image.dim() != 2)
    throw Error("CLIPLoss needs image and text features of one shape [batch, dim]");
  namespace F = torch::nn::functional;
  torch::Tensor img = F::normalize(image, F::NormalizeFuncOptions().dim(-1));
  torch::Tensor txt = F::normalize(text, F::NormalizeFuncOptions().dim(-1));
  torch::Tensor logits = logit_scale.exp() * torch::matmul(img, txt.t());
  torch::Tensor labels = torch::arange(image.size(0), torch::TensorOptions().dtype(torch::kLong).device(image.device()));
  return (F::cross_entropy(logits, labels) + F::cross_entropy(logits.t(), labels)) / 2;
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
