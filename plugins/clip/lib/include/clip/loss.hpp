#pragma once
// CLIPLoss and the learning-rate schedules of fine-tuning.
// ATen's Tensor alone, not <torch/torch.h>: every file that includes this
// would otherwise pay that header's 8-9 s of template instantiation (GCC 12).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace clip {

// Symmetric cross-entropy over logits = exp(logit_scale) * normalize(image)
// @ normalize(text).T with labels = position in the batch, averaged over the
// image->text and text->image directions.
at::Tensor clip_loss(const at::Tensor& image_features, const at::Tensor& text_features,
                     const at::Tensor& logit_scale);

// The learning-rate multiplier at `step` (0-based) of `total`:
// constant, constant_with_warmup, linear (warmup then linear decay to 0) and
// cosine (warmup then half a cosine to 0), as transformers' schedulers.
double schedule_factor(const std::string& name, std::int64_t step, std::int64_t warmup, std::int64_t total);

}  // namespace clip
