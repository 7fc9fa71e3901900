#pragma once
// Loading and saving CLIP weights in the formats users bring:
// - Hugging Face: model.safetensors + config.json (a folder, or the file
//   with config.json beside it);
// - OpenAI: the TorchScript archives OpenAI ships (torch::jit::load) and plain
//   state-dict files (torch.save(model.state_dict())), with OpenAI's names,
//   the architecture inferred from the shapes as OpenAI's build_model does.
// The format is detected by content, not by extension. Every mismatch (a
// missing tensor, an unexpected one, a wrong shape) is a clip::Error naming
// the tensor, what was expected and what was found.
#include <map>
#include <optional>
#include <string>

#include "clip/model.hpp"

namespace clip {

enum class WeightFormat { Safetensors, TorchScript, StateDict };

struct LoadOptions {
  // Heads cannot be read from weights' shapes; OpenAI's build_model takes
  // width / 64. A config.json beside an OpenAI file, or these, override that.
  std::optional<std::int64_t> vision_heads, text_heads;
};

WeightFormat detect_format(const std::string& path);

// `spec` is a preset name (random weights), a folder, or a weights file.
ClipModel load_model(const std::string& spec, const LoadOptions& options = {});

// OpenAI names -> Hugging Face names (q, k, v split out of in_proj; the
// projections transposed). `config` receives the inferred architecture.
std::map<std::string, torch::Tensor> openai_to_hf(const std::map<std::string, torch::Tensor>& openai, ClipConfig& config,
                                                  const std::string& source);

// Copies `tensors` (Hugging Face names) into the model; strict: every
// parameter present with its shape, nothing unexpected.
void load_state(ClipModel& model, const std::map<std::string, torch::Tensor>& tensors, const std::string& source);

// Writes DIR/model.safetensors and DIR/config.json, loadable by
// transformers.CLIPModel.from_pretrained and by load_model(DIR).
void save_pretrained(ClipModel& model, const std::string& dir);

}  // namespace clip
