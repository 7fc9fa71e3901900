#include "clip/safetensors.hpp"
#include "docflow/error.hpp"
#include "executors.hpp"

namespace docflow::finetune {

std::optional<double> wise_ft_alpha(Executor& e) {
  auto m = run_metrics(e);
  std::lock_guard<std::mutex> lock(m->mutex);
  return m->wise_ft_alpha;
}

WiSEFT::WiSEFT(ExecutorContext c) : Executor(std::move(c)) {}

void WiSEFT::open() {
  // Opened after the encoders loaded the model and before any training (or
  // any resumed state): these are the starting weights.
  clip_ = registry().get<clip::SharedClip>(params().get_string("shared_as"));
  std::shared_lock<std::shared_mutex> lock(clip_->mutex);
  for (const auto& p : clip_->model->named_parameters(true)) start_[p.key()] = p.value().detach().clone();
}

void WiSEFT::on_event(const Event& e) {
  if (e.kind != Event::Kind::EndOfStream) return;
  const double alpha = params().get_double("alpha");
  {
    std::unique_lock<std::shared_mutex> lock(clip_->mutex);
    torch::NoGradGuard no_grad;
    for (auto& p : clip_->model->named_parameters(true)) {
      const torch::Tensor& start = start_.at(p.key());
      // alpha * fine-tuned + (1 - alpha) * start, exact at alpha 0 and 1.
      if (alpha == 0.0) p.value().copy_(start);
      else if (alpha != 1.0) p.value().mul_(alpha).add_(start, 1.0 - alpha);
    }
  }
  auto m = run_metrics(*this);
  {
    std::lock_guard<std::mutex> lock(m->mutex);
    m->wise_ft_alpha = alpha;
  }
  log().info(name(), "WiSE-FT: the weights are now " + std::to_string(alpha) + " x fine-tuned + " +
                         std::to_string(1.0 - alpha) + " x starting");
}

// The starting weights: a resumed run's encoders may not reproduce them (a
// preset's random initialisation), so the checkpoint carries them.
void WiSEFT::save_state(const std::filesystem::path& dir) {
  clip::write_safetensors((dir / "start.safetensors").string(), start_);
}

void WiSEFT::load_state(const std::filesystem::path& dir) {
  const std::string file = (dir / "start.safetensors").string();
  for (auto& [name, tensor] : clip::read_safetensors(file).tensors) {
    auto it = start_.find(name);
    if (it == start_.end() || !it->second.sizes().equals(tensor.sizes()))
      throw Error(file + ": tensor '" + name + "' does not match the model");
    it->second.copy_(tensor);
  }
}

}  // namespace docflow::finetune
