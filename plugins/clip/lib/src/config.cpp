#include "clip/config.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <type_traits>

#include "clip/error.hpp"
#include "docarray/limits.hpp"

namespace clip {
namespace {

ClipConfig vit(std::int64_t vw, std::int64_t vl, std::int64_t patch, std::int64_t image, std::int64_t tw,
               std::int64_t tl, std::int64_t proj) {
  ClipConfig c;
  c.vision = VisionConfig{vw, 4 * vw, vw / 64, vl, image, patch, 1e-5};
  c.text = TextConfig{tw, 4 * tw, tw / 64, tl, 77, 49408, 49407, 1e-5};
  c.projection_dim = proj;
  return c;
}

}  // namespace

std::int64_t parameter_count(const ClipConfig& c) {
  auto block = [](std::int64_t w, std::int64_t m) { return 4 * (w * w + w) + 2 * w * m + m + w + 4 * w; };
  const auto& v = c.vision;
  const auto& t = c.text;
  const auto grid = v.image_size / v.patch_size;
  std::int64_t n = 3 * v.patch_size * v.patch_size * v.hidden_size + v.hidden_size + (grid * grid + 1) * v.hidden_size +
                   4 * v.hidden_size + v.num_layers * block(v.hidden_size, v.intermediate_size);
  n += t.vocab_size * t.hidden_size + t.max_positions * t.hidden_size + 2 * t.hidden_size +
       t.num_layers * block(t.hidden_size, t.intermediate_size);
  return n + (v.hidden_size + t.hidden_size) * c.projection_dim + 1;
}

ClipConfig preset(const std::string& name) {
  if (name == "openai/clip-vit-base-patch32" || name == "ViT-B/32") return vit(768, 12, 32, 224, 512, 12, 512);
  if (name == "openai/clip-vit-base-patch16" || name == "ViT-B/16") return vit(768, 12, 16, 224, 512, 12, 512);
  if (name == "openai/clip-vit-large-patch14" || name == "ViT-L/14") return vit(1024, 24, 14, 224, 768, 12, 768);
  if (name == "tiny") {
    // The reference fixture's sizes (../shared/fixtures/clip-tiny).
    ClipConfig c = vit(64, 2, 8, 32, 32, 2, 32);
    c.text.num_heads = 2;
    return c;
  }
  if (name == "small") {
    // Small enough to fine-tune on a 2-core CPU in minutes.
    ClipConfig c = vit(128, 4, 8, 32, 128, 4, 128);
    c.vision.num_heads = c.text.num_heads = 2;
    return c;
  }
  std::string names;
  for (const auto& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
  throw Error("unknown CLIP preset '" + name + "' (presets: " + names + "; or give a folder of weights)");
}

std::vector<std::string> preset_names() {
  return {"openai/clip-vit-base-patch32", "openai/clip-vit-base-patch16", "openai/clip-vit-large-patch14", "small",
          "tiny"};
}

std::string describe_presets() {
  std::ostringstream out;
  out << "presets (vision width x layers / patch / image; text width x layers; projection; parameters):\n";
  for (const auto& n : preset_names()) {
    ClipConfig c = preset(n);
    out << "  " << n << ": vision " << c.vision.hidden_size << "x" << c.vision.num_layers << " /" << c.vision.patch_size
        << " /" << c.vision.image_size << "px, text " << c.text.hidden_size << "x" << c.text.num_layers << ", projection "
        << c.projection_dim << ", " << (parameter_count(c) + 500000) / 1000000 << "M parameters\n";
  }
  return out.str();
}

ClipConfig load_config(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error("cannot read CLIP config " + path);
  std::error_code ec;
  if (std::filesystem::file_size(path, ec) > docarray::limits().model_header_bytes)
    throw Error(path + ": larger than " + docarray::limit_hint("model_header_bytes") + "; not a config.json?");
  nlohmann::json j;
  try {
    const int max_depth = static_cast<int>(docarray::limits().depth);
    j = nlohmann::json::parse(f, [max_depth](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
      if (depth > max_depth) throw Error("nested deeper than " + docarray::limit_hint("depth"));
      return true;
    });
  } catch (const std::exception& e) {
    throw Error(path + ": invalid JSON: " + e.what());
  }
  auto get = [&](const nlohmann::json& obj, const char* section, const char* key, auto fallback) {
    using T = decltype(fallback);
    if (!obj.contains(key)) return fallback;
    const nlohmann::json& value = obj.at(key);
    auto wrong = [&](const std::string& why) {
      return Error(path + ": field " + section + key + " " + why + ": " + value.dump());
    };
    if constexpr (std::is_integral_v<T>) {
      // Integers only, and in range: nlohmann's get<long>() of 1e31 (what a
      // number too long for 64 bits parses as) is a float-to-int conversion
      // out of range, undefined behaviour (found by fuzz_model_files).
      if (value.is_number_unsigned()) {
        if (value.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))
          throw wrong("is out of range");
        return static_cast<T>(value.get<std::uint64_t>());
      }
      if (!value.is_number_integer()) throw wrong("must be an integer");
      const std::int64_t v = value.get<std::int64_t>();
      if (v < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
          v > static_cast<std::int64_t>(std::numeric_limits<T>::max()))
        throw wrong("is out of range");
      return static_cast<T>(v);
    } else {
      if (!value.is_number()) throw wrong("must be a number");
      return value.get<T>();
    }
  };
  if (!j.is_object()) throw Error(path + ": expected a JSON object, found " + j.type_name());
  for (const char* section : {"vision_config", "text_config"})
    if (j.contains(section) && !j[section].is_object())
      throw Error(path + ": " + section + " must be an object, found " + j[section].type_name());
  ClipConfig c;
  const nlohmann::json v = j.value("vision_config", nlohmann::json::object());
  const nlohmann::json t = j.value("text_config", nlohmann::json::object());
  c.vision.hidden_size = get(v, "vision_config.", "hidden_size", c.vision.hidden_size);
  c.vision.intermediate_size = get(v, "vision_config.", "intermediate_size", c.vision.intermediate_size);
  c.vision.num_heads = get(v, "vision_config.", "num_attention_heads", c.vision.num_heads);
  c.vision.num_layers = get(v, "vision_config.", "num_hidden_layers", c.vision.num_layers);
  c.vision.image_size = get(v, "vision_config.", "image_size", c.vision.image_size);
  c.vision.patch_size = get(v, "vision_config.", "patch_size", c.vision.patch_size);
  c.vision.layer_norm_eps = get(v, "vision_config.", "layer_norm_eps", c.vision.layer_norm_eps);
  c.text.hidden_size = get(t, "text_config.", "hidden_size", c.text.hidden_size);
  c.text.intermediate_size = get(t, "text_config.", "intermediate_size", c.text.intermediate_size);
  c.text.num_heads = get(t, "text_config.", "num_attention_heads", c.text.num_heads);
  c.text.num_layers = get(t, "text_config.", "num_hidden_layers", c.text.num_layers);
  c.text.max_positions = get(t, "text_config.", "max_position_embeddings", c.text.max_positions);
  c.text.vocab_size = get(t, "text_config.", "vocab_size", c.text.vocab_size);
  c.text.eos_token_id = get(t, "text_config.", "eos_token_id", c.text.eos_token_id);
  c.text.layer_norm_eps = get(t, "text_config.", "layer_norm_eps", c.text.layer_norm_eps);
  c.projection_dim = get(j, "", "projection_dim", c.projection_dim);
  c.logit_scale_init = get(j, "", "logit_scale_init_value", c.logit_scale_init);
  // Every size within what any CLIP uses (ViT-bigG: width 1664, 48 layers)
  // with a wide margin, so that a hostile or mistyped config.json is refused
  // here instead of allocating gigabytes (or dividing by a zero patch size)
  // before the weights are compared with it.
  struct Bound {
    const char* what;
    std::int64_t value, minimum, maximum;
  };
  const Bound bounds[] = {
      {"vision_config.hidden_size", c.vision.hidden_size, 1, 1 << 16},
      {"vision_config.intermediate_size", c.vision.intermediate_size, 1, 1 << 18},
      {"vision_config.num_attention_heads", c.vision.num_heads, 1, 1 << 12},
      {"vision_config.num_hidden_layers", c.vision.num_layers, 0, 1024},
      {"vision_config.image_size", c.vision.image_size, 1, 1 << 13},
      {"vision_config.patch_size", c.vision.patch_size, 1, c.vision.image_size},
      {"text_config.hidden_size", c.text.hidden_size, 1, 1 << 16},
      {"text_config.intermediate_size", c.text.intermediate_size, 1, 1 << 18},
      {"text_config.num_attention_heads", c.text.num_heads, 1, 1 << 12},
      {"text_config.num_hidden_layers", c.text.num_layers, 0, 1024},
      {"text_config.max_position_embeddings", c.text.max_positions, 1, 1 << 16},
      {"text_config.vocab_size", c.text.vocab_size, 1, 1 << 24},
      {"projection_dim", c.projection_dim, 1, 1 << 16},
  };
  for (const auto& b : bounds)
    if (b.value < b.minimum || b.value > b.maximum)
      throw Error(path + ": " + b.what + " must be between " + std::to_string(b.minimum) + " and " +
                  std::to_string(b.maximum) + ", found " + std::to_string(b.value));
  if (c.vision.hidden_size % c.vision.num_heads || c.text.hidden_size % c.text.num_heads)
    throw Error(path + ": hidden_size must be a multiple of num_attention_heads");
  return c;
}

void save_config(const ClipConfig& c, const std::string& path) {
  nlohmann::ordered_json j;
  j["architectures"] = {"CLIPModel"};
  j["model_type"] = "clip";
  j["projection_dim"] = c.projection_dim;
  j["logit_scale_init_value"] = c.logit_scale_init;
  j["text_config"] = {{"hidden_size", c.text.hidden_size},
                      {"intermediate_size", c.text.intermediate_size},
                      {"num_attention_heads", c.text.num_heads},
                      {"num_hidden_layers", c.text.num_layers},
                      {"max_position_embeddings", c.text.max_positions},
                      {"vocab_size", c.text.vocab_size},
                      {"hidden_act", "quick_gelu"},
                      {"layer_norm_eps", c.text.layer_norm_eps},
                      {"bos_token_id", 49406},
                      {"eos_token_id", c.text.eos_token_id},
                      {"pad_token_id", 1},
                      {"projection_dim", c.projection_dim}};
  j["vision_config"] = {{"hidden_size", c.vision.hidden_size},
                        {"intermediate_size", c.vision.intermediate_size},
                        {"num_attention_heads", c.vision.num_heads},
                        {"num_hidden_layers", c.vision.num_layers},
                        {"image_size", c.vision.image_size},
                        {"patch_size", c.vision.patch_size},
                        {"hidden_act", "quick_gelu"},
                        {"layer_norm_eps", c.vision.layer_norm_eps},
                        {"num_channels", 3},
                        {"projection_dim", c.projection_dim}};
  j["torch_dtype"] = "float32";
  std::ofstream f(path);
  f << j.dump(2) << "\n";
  if (!f) throw Error("cannot write " + path);
}

}  // namespace clip
