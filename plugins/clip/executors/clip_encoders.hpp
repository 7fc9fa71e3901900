#pragma once
// ClipImageEncoder and ClipTextEncoder: `tensor` -> `embedding` for the
// documents at a traversal path with a modality, batched. In inference mode
// no autograd graph is kept; in training mode the embeddings keep theirs, so
// that a trainer downstream can backpropagate into both towers.
#include "docflow/executor.hpp"
#include "clip/shared_model.hpp"

namespace docflow::clip_plugin {

using clip::SharedClip;

// The model published under `name`, or a new one loaded from `spec` on
// `device` and published. Two executors asking for one name with different
// specs is an error naming both.
std::shared_ptr<SharedClip> shared_clip(Executor& executor, const std::string& name, const std::string& spec,
                                        const std::string& device);

class ClipEncoder : public Executor {
 public:
  enum class Tower { Image, Text };
  ClipEncoder(ExecutorContext context, Tower tower);
  void open() override;

 private:
  void encode(Request& request);
  Tower tower_;
  std::shared_ptr<SharedClip> clip_;
  bool training_;
};

class ClipImageEncoder : public ClipEncoder {
 public:
  explicit ClipImageEncoder(ExecutorContext c) : ClipEncoder(std::move(c), Tower::Image) {}
};

class ClipTextEncoder : public ClipEncoder {
 public:
  explicit ClipTextEncoder(ExecutorContext c) : ClipEncoder(std::move(c), Tower::Text) {}
};

}  // namespace docflow::clip_plugin
