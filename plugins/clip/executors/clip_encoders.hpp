#pragma once
// ClipImageEncoder and ClipTextEncoder: `tensor` -> `embedding` for the
// documents at a traversal path with a modality, batched. In inference mode
// no autograd graph is kept; in training mode the embeddings keep theirs, so
// that a trainer downstream can backpropagate into both towers.
#include "docflow/executor.hpp"
#include "shared_model.hpp"

namespace docflow::clip_plugin {

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
