#pragma once
// One CLIP model shared by the encoders (and the trainer) of a flow through
// the flow's registry, under the name given by their `shared_as` parameter.
#include <memory>
#include <shared_mutex>
#include <string>

#include "clip/model.hpp"
#include "docflow/executor.hpp"

namespace docflow::clip_plugin {

struct SharedClip {
  clip::ClipModel model{nullptr};
  torch::Device device{torch::kCPU};
  std::string spec;  // what it was loaded from
  // Forward passes share it; an optimizer step takes it alone, so that
  // pipelined encoders never read weights half-updated.
  std::shared_mutex mutex;
};

// The model published under `name`, or a new one loaded from `spec` on
// `device` and published. Two executors asking for one name with different
// specs is an error naming both.
std::shared_ptr<SharedClip> shared_clip(Executor& executor, const std::string& name, const std::string& spec,
                                        const std::string& device);

}  // namespace docflow::clip_plugin
