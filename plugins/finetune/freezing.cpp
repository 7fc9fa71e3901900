#include "freezing.hpp"

namespace docflow::finetune {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// The block index of "TOWER.encoder.layers.N.…", or -1.
std::int64_t block_of(const std::string& name, const std::string& tower) {
  const std::string prefix = tower + ".encoder.layers.";
  if (!starts_with(name, prefix)) return -1;
  return std::stoll(name.substr(prefix.size(), name.find('.', prefix.size()) - prefix.size()));
}

}  // namespace

bool is_trainable(const std::string& name, const clip::ClipConfig& config, const std::string& freeze,
                  std::int64_t trainable_blocks) {
  if (name == "logit_scale") return true;
  const bool vision = starts_with(name, "vision_model.") || name == "visual_projection.weight";
  const bool text = starts_with(name, "text_model.") || name == "text_projection.weight";
  if ((freeze == "vision" && vision) || (freeze == "text" && text)) return false;
  if (trainable_blocks < 0) return true;
  const std::string tower = vision ? "vision_model" : "text_model";
  const std::int64_t layers = vision ? config.vision.num_layers : config.text.num_layers;
  const std::int64_t block = block_of(name, tower);
  if (block >= 0) return block >= layers - trainable_blocks;
  // Outside the blocks: what comes after them trains, what comes before does not.
  return name == "visual_projection.weight" || name == "text_projection.weight" ||
         starts_with(name, "vision_model.post_layernorm.") || starts_with(name, "text_model.final_layer_norm.");
}

}  // namespace docflow::finetune
