#pragma once
// The features of every rank's share of a batch, for a CLIPLoss over the
// whole global batch (open_clip's gather_features).
#include <torch/torch.h>

#include "docflow/process_group.hpp"

namespace docflow::finetune {

// Every rank's `local` [b, d] concatenated in rank order [world * b, d].
// with_grad: the gather is differentiable (open_clip's gather_with_grad):
// its backward sums the gathered features' gradients over the ranks and
// returns this rank's slice, so with averaged parameter gradients N ranks
// give exactly one process's gradients. Without it only this rank's own
// slice carries a gradient, and the feature gradients come out scaled by
// 1/N (kept for the test that shows it, and for open_clip parity).
torch::Tensor gather_features(ProcessGroup& group, const torch::Tensor& local, bool with_grad);

// CLIPLoss of this rank's rows against every rank's (open_clip's
// local_loss): logits [b, world * b], labels offset by rank * b.
torch::Tensor local_clip_loss(const torch::Tensor& image, const torch::Tensor& text, const torch::Tensor& all_image,
                              const torch::Tensor& all_text, const torch::Tensor& logit_scale, std::int64_t offset);

}  // namespace docflow::finetune
