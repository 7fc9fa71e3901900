#include "clip_encoders.hpp"
#include "selection.hpp"

#include <torch/cuda.h>
#include <torch/utils.h>

#include "clip/error.hpp"
#include "clip/weights.hpp"
#include "docflow/error.hpp"

namespace docflow::clip_plugin {

std::shared_ptr<SharedClip> shared_clip(Executor& executor, const std::string& name, const std::string& spec,
                                        const std::string& device) {
  if (auto existing = executor.registry().find<SharedClip>(name)) {
    if (existing->spec != spec)
      throw Error("shared model '" + name + "' was loaded from '" + existing->spec + "', but this executor asks for '" +
                  spec + "'; give them the same `model` or different `shared_as`");
    return existing;
  }
  if (device != "cpu" && !torch::cuda::is_available())
    throw Error("device '" + device + "' asked for, but CUDA is not available here (use device: cpu)");
  auto holder = std::make_shared<SharedClip>();
  holder->spec = spec;
  holder->device = torch::Device(device);
  // A preset starts from random weights: seed them, so that the same flow
  // and data give the same run.
  torch::manual_seed(0);
  holder->model = clip::load_model(spec);
  holder->model->to(holder->device);
  executor.log().info(executor.name(), "loaded CLIP '" + spec + "' on " + device + " as shared model '" + name + "'");
  executor.registry().publish(name, holder);
  return holder;
}

ClipEncoder::ClipEncoder(ExecutorContext context, Tower tower)
    : Executor(std::move(context)), tower_(tower), training_(params().get_string("mode") == "training") {
  on("*", [this](Request& r) { encode(r); });
}

void ClipEncoder::open() {
  clip_ = shared_clip(*this, params().get_string("shared_as"), params().get_string("model"), params().get_string("device"));
  if (!training_) clip_->model->eval();
}

void ClipEncoder::encode(Request& request) {
  std::vector<docarray::Document*> docs;
  for (docarray::Document* d : selected_documents(request, params()))
    if (d->tensor.defined()) docs.push_back(d);
  if (docs.empty()) return;
  std::vector<torch::Tensor> inputs;
  for (const docarray::Document* d : docs) inputs.push_back(d->tensor);
  std::optional<torch::NoGradGuard> no_grad;
  if (!training_) no_grad.emplace();
  torch::Tensor e;
  {
    std::shared_lock<std::shared_mutex> lock(clip_->mutex);
    try {
      e = clip::encode_batched(clip_->model, inputs, tower_ == Tower::Image, params().get_int("batch_size"), clip_->device);
    } catch (const clip::Error& err) {
      throw Error(std::string("documents' ") + err.what());
    }
  }
  if (params().get_bool("normalize")) e = e / e.norm(2, -1, true);
  if (!training_) e = e.to(torch::kCPU);
  for (std::size_t i = 0; i < docs.size(); ++i) docs[i]->embedding = e[static_cast<std::int64_t>(i)];
}

}  // namespace docflow::clip_plugin
