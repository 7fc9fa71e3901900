#include "feature_gather.hpp"

namespace docflow::finetune {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct GatherWithGrad : torch::autograd::Function<GatherWithGrad> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& local, ProcessGroup* group) {
    ctx->saved_data["group"] = reinterpret_cast<std::int64_t>(group);
    ctx->saved_data["rows"] = local.size(0);
    return torch::cat(group->allgather(local.detach()), 0);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto* group = reinterpret_cast<ProcessGroup*>(ctx->saved_data["group"].toInt());
    const std::int64_t rows = ctx->saved_data["rows"].toInt();
    // Gloo in LibTorch 1.13 has no reduce_scatter: sum everything, keep our slice.
    std::vector<torch::Tensor> summed{grads[0].contiguous().clone()};
    group->allreduce(summed, ProcessGroup::Op::Sum);
    return {summed[0].narrow(0, group->rank() * rows, rows), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor gather_features(ProcessGroup& group, const torch::Tensor& local, bool with_grad) {
  if (group.size() == 1) return local;
  if (with_grad) return GatherWithGrad::apply(local, &group);
  std::vector<torch::Tensor> parts = group.allgather(local.detach());
  parts[static_cast<std::size_t>(group.rank())] = local;  // only our own rows keep their graph
  return torch::cat(parts, 0);
}

torch::Tensor local_clip_loss(const torch::Tensor& image, const torch::Tensor& text, const torch::Tensor& all_image,
                              const torch::Tensor& all_text, const torch::Tensor& logit_scale, std::int64_t offset) {
  namespace F = torch::nn::functional;
  auto norm = [](const torch::Tensor& t) { return F::normalize(t, F::NormalizeFuncOptions().dim(-1)); };
  const torch::Tensor scale = logit_scale.exp();
  const torch::Tensor per_image = scale * torch::matmul(norm(image), norm(all_text).t());
  const torch::Tensor per_text = scale * torch::matmul(norm(text), norm(all_image).t());
  const torch::Tensor labels = torch::arange(offset, offset + image.size(0), torch::TensorOptions().dtype(torch::kLong));
  return (F::cross_entropy(per_image, labels) + F::cross_entropy(per_text, labels)) / 2;
}

}  // namespace docflow::finetune
