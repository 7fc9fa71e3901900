#pragma once
// CLIP's sizes: from a Hugging Face config.json, from presets, or inferred
// from OpenAI weights' shapes.
#include <cstdint>
#include <string>
#include <vector>

namespace clip {

struct VisionConfig {
  std::int64_t hidden_size = 768, intermediate_size = 3072, num_heads = 12, num_layers = 12;
  std::int64_t image_size = 224, patch_size = 32;
  double layer_norm_eps = 1e-5;
};

struct TextConfig {
  std::int64_t hidden_size = 512, intermediate_size = 2048, num_heads = 8, num_layers = 12;
  std::int64_t max_positions = 77, vocab_size = 49408;
  std::int64_t eos_token_id = 49407;
  double layer_norm_eps = 1e-5;
};

struct ClipConfig {
  VisionConfig vision;
  TextConfig text;
  std::int64_t projection_dim = 512;
  double logit_scale_init = 2.6592;  // ln(1 / 0.07)
};

// The named presets: openai/clip-vit-base-patch32 (also "ViT-B/32"),
// openai/clip-vit-base-patch16 ("ViT-B/16"), openai/clip-vit-large-patch14
// ("ViT-L/14"), and small ones for tests and this CPU: "tiny" (the
// reference fixture's sizes) and "small" (the demo's).
ClipConfig preset(const std::string& name);
std::vector<std::string> preset_names();
// One line per preset: name, widths, layers, patch, image size, parameters.
std::string describe_presets();

// Reads a Hugging Face CLIPModel config.json; throws clip::Error naming the
// file and the field at fault.
ClipConfig load_config(const std::string& path);

// The parameters a model of this configuration has.
std::int64_t parameter_count(const ClipConfig& config);
// Writes it so that transformers.CLIPModel.from_pretrained reads it.
void save_config(const ClipConfig& config, const std::string& path);

}  // namespace clip
