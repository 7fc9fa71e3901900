#pragma once
// One CLIP model shared by the encoders, the trainer and the evaluator of a
// flow through the flow's registry, under the name given by their
// `shared_as` parameter. Lives in the clip library so that both the clip and
// the finetune plugins reach it by name, with the same type.
#include <memory>
#include <shared_mutex>
#include <string>

#include "clip/model.hpp"

namespace clip {

struct SharedClip {
  clip::ClipModel model{nullptr};
  torch::Device device{torch::kCPU};
  std::string spec;  // what it was loaded from
  // Forward passes share it; an optimizer step takes it alone, so that
  // pipelined encoders never read weights half-updated.
  std::shared_mutex mutex;
};

}  // namespace clip
