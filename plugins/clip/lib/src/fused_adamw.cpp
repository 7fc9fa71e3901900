#include "clip/fused_adamw.hpp"

#include <ATen/record_function.h>

#include <cmath>

#include "vector_math.hpp"

namespace clip {

namespace {

struct Update {
  float decay;       // 1 - lr * weight_decay
  float beta1, beta2;
  float rest1, rest2;  // 1 - beta, rounded from double as LibTorch's Scalar is
  float bias2_sqrt;  // sqrt(1 - beta2^step)
  float eps;
  float step_size;   // lr / (1 - beta1^step)
};

// The arithmetic of LibTorch's AdamW::step, in the same order, one element at
// a time.
CLIP_VECTOR_CLONES void adamw_update(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, std::int64_t n,
                                     Update u) {
  for (std::int64_t i = 0; i < n; ++i) {
    const float g = grad[i];
    const float m = exp_avg[i] * u.beta1 + u.rest1 * g;
    const float v = exp_avg_sq[i] * u.beta2 + u.rest2 * (g * g);
    const float denom = std::sqrt(v) / u.bias2_sqrt + u.eps;
    param[i] = param[i] * u.decay - u.step_size * (m / denom);
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
  }
}

bool fusable(const torch::optim::OptimizerParamGroup& group) {
  if (static_cast<const torch::optim::AdamWOptions&>(group.options()).amsgrad()) return false;
  for (const auto& p : group.params()) {
    if (!p.grad().defined()) continue;
    const auto& g = p.grad();
    if (!p.device().is_cpu() || p.scalar_type() != torch::kFloat || !p.is_contiguous() || g.is_sparse() ||
        g.scalar_type() != torch::kFloat || !g.device().is_cpu())
      return false;
  }
  return true;
}

}  // namespace

torch::Tensor FusedAdamW::step(LossClosure closure) {
  for (const auto& group : param_groups())
    if (!fusable(group)) return torch::optim::AdamW::step(std::move(closure));
  RECORD_FUNCTION("clip::FusedAdamW::step", std::vector<c10::IValue>());
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups()) {
    const auto& options = static_cast<const torch::optim::AdamWOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const torch::Tensor grad = p.grad().contiguous();
      const std::string key = c10::guts::to_string(p.unsafeGetTensorImpl());
      auto found = state_.find(key);
      if (found == state_.end()) {
        auto fresh = std::make_unique<torch::optim::AdamWParamState>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
        found = state_.emplace(key, std::move(fresh)).first;
      }
      auto& state = static_cast<torch::optim::AdamWParamState&>(*found->second);
      // A state loaded from a checkpoint may hold non-contiguous moments.
      if (!state.exp_avg().is_contiguous()) state.exp_avg(state.exp_avg().contiguous());
      if (!state.exp_avg_sq().is_contiguous()) state.exp_avg_sq(state.exp_avg_sq().contiguous());
      state.step(state.step() + 1);
      const auto [beta1, beta2] = options.betas();
      const double bias1 = 1 - std::pow(beta1, static_cast<double>(state.step()));
      const double bias2 = 1 - std::pow(beta2, static_cast<double>(state.step()));
      const Update u{static_cast<float>(1 - options.lr() * options.weight_decay()),
                     static_cast<float>(beta1),
                     static_cast<float>(beta2),
                     static_cast<float>(1 - beta1),
                     static_cast<float>(1 - beta2),
                     static_cast<float>(std::sqrt(bias2)),
                     static_cast<float>(options.eps()),
                     static_cast<float>(options.lr() / bias1)};
      adamw_update(p.data_ptr<float>(), grad.data_ptr<float>(), state.exp_avg().data_ptr<float>(),
                   state.exp_avg_sq().data_ptr<float>(), p.numel(), u);
      // Written through their pointers: count the change as LibTorch's in-place
      // ops do. Autograd checks saved tensors by this counter, and the kernels
      // key copies of a weight by it (a transposed copy kept for inference;
      // without the bump, an evaluation between epochs saw the weights from
      // before training).
      p.unsafeGetTensorImpl()->bump_version();
      state.exp_avg().unsafeGetTensorImpl()->bump_version();
      state.exp_avg_sq().unsafeGetTensorImpl()->bump_version();
    }
  }
  return loss;
}

void clear_gradients(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups())
    for (auto& p : group.params()) p.mutable_grad() = torch::Tensor();
}

}  // namespace clip
