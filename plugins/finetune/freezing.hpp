#pragma once
// Which CLIP parameters the trainer updates: `freeze` a whole tower
// ("vision" or "text"), and/or train only the last `trainable_blocks`
// transformer blocks of each tower (with its final LayerNorm and projection;
// embeddings stay frozen). logit_scale always trains. -1: every block.
#include <cstdint>
#include <string>

#include "clip/config.hpp"

namespace docflow::finetune {

bool is_trainable(const std::string& parameter, const clip::ClipConfig& config, const std::string& freeze,
                  std::int64_t trainable_blocks);

}  // namespace docflow::finetune
