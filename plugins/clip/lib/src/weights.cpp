#include "clip/weights.hpp"

#include <torch/script.h>
#include <torch/serialize.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string_view>
#include <sstream>

#include "clip/error.hpp"
#include "clip/safetensors.hpp"

namespace fs = std::filesystem;

namespace clip {
namespace {

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream o;
  o << s;
  return o.str();
}

std::vector<char> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot read " + path);
  return std::vector<char>((std::istreambuf_iterator<char>(f)), {});
}

std::map<std::string, torch::Tensor> read_torchscript(const std::string& path) {
  torch::jit::Module m;
  try {
    m = torch::jit::load(path, torch::kCPU);
  } catch (const std::exception& e) {
    throw Error(path + ": cannot load the TorchScript archive: " + std::string(e.what()).substr(0, 300));
  }
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : m.named_parameters(true)) out[p.name] = p.value;
  for (const auto& b : m.named_buffers(true)) out[b.name] = b.value;
  return out;
}

std::map<std::string, torch::Tensor> read_state_dict(const std::string& path) {
  torch::IValue v;
  try {
    v = torch::pickle_load(read_all(path));
  } catch (const std::exception& e) {
    throw Error(path + ": cannot read the state dict: " + std::string(e.what()).substr(0, 300));
  }
  if (!v.isGenericDict()) throw Error(path + ": expected a state dict (a dict of name -> tensor)");
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : v.toGenericDict()) {
    if (!item.key().isString()) throw Error(path + ": a state-dict key is not a string");
    if (item.value().isTensor()) out[item.key().toStringRef()] = item.value().toTensor();
  }
  return out;
}

int count_blocks(const std::map<std::string, torch::Tensor>& sd, const std::string& prefix) {
  std::regex re("^" + prefix + R"(resblocks\.(\d+)\.)");
  int n = 0;
  for (const auto& [k, v] : sd) {
    std::smatch m;
    if (!std::regex_search(k, m, re)) continue;
    // A block index is bounded like a config's layer count; std::stoi of
    // a longer one would throw out_of_range with no name.
    const int block = m[1].length() > 4 ? 1024 : std::stoi(m[1]);
    if (block >= 1024)
      throw Error("tensor '" + k + "': block index " + m[1].str() + " is beyond 1023 (at most 1024 layers)");
    n = std::max(n, block + 1);
  }
  return n;
}

const torch::Tensor& need(const std::map<std::string, torch::Tensor>& sd, const std::string& name,
                          const std::string& source) {
  auto it = sd.find(name);
  if (it == sd.end()) throw Error(source + ": missing tensor '" + name + "' (OpenAI naming)");
  return it->second;
}

}  // namespace

WeightFormat detect_format(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot read " + path);
  char head[9] = {};
  f.read(head, 9);
  if (f.gcount() >= 4 && std::memcmp(head, "PK\x03\x04", 4) == 0) {
    // Both are zip archives; only TorchScript ones carry code.
    std::vector<char> all = read_all(path);
    std::string_view text(all.data(), all.size());
    return text.find("/code/") != std::string_view::npos || text.find("constants.pkl") != std::string_view::npos
               ? WeightFormat::TorchScript
               : WeightFormat::StateDict;
  }
  if (f.gcount() == 9 && head[8] == '{') return WeightFormat::Safetensors;
  throw Error(path + ": unknown weights format (expected safetensors, a TorchScript archive or a torch.save state dict)");
}

std::map<std::string, torch::Tensor> openai_to_hf(const std::map<std::string, torch::Tensor>& sd, ClipConfig& c,
                                                  const std::string& source) {
  std::map<std::string, torch::Tensor> out;
  // The architecture, as OpenAI's build_model reads it.
  const torch::Tensor& conv = need(sd, "visual.conv1.weight", source);
  const torch::Tensor& vpos = need(sd, "visual.positional_embedding", source);
  c.vision.hidden_size = conv.size(0);
  c.vision.patch_size = conv.size(-1);
  const auto grid = static_cast<std::int64_t>(std::lround(std::sqrt(static_cast<double>(vpos.size(0) - 1))));
  c.vision.image_size = grid * c.vision.patch_size;
  c.vision.num_layers = count_blocks(sd, "visual.transformer.");
  c.vision.num_heads = std::max<std::int64_t>(1, c.vision.hidden_size / 64);
  c.projection_dim = need(sd, "text_projection", source).size(1);
  c.text.max_positions = need(sd, "positional_embedding", source).size(0);
  c.text.vocab_size = need(sd, "token_embedding.weight", source).size(0);
  c.text.hidden_size = need(sd, "ln_final.weight", source).size(0);
  c.text.num_heads = std::max<std::int64_t>(1, c.text.hidden_size / 64);
  c.text.num_layers = count_blocks(sd, "transformer.");
  c.vision.intermediate_size = need(sd, "visual.transformer.resblocks.0.mlp.c_fc.weight", source).size(0);
  c.text.intermediate_size = need(sd, "transformer.resblocks.0.mlp.c_fc.weight", source).size(0);

  auto block = [&](const std::string& from, const std::string& to, std::int64_t width) {
    torch::Tensor w = need(sd, from + "attn.in_proj_weight", source), b = need(sd, from + "attn.in_proj_bias", source);
    const char* names[] = {"q_proj", "k_proj", "v_proj"};
    for (int i = 0; i < 3; ++i) {
      out[to + "self_attn." + names[i] + ".weight"] = w.narrow(0, i * width, width);
      out[to + "self_attn." + names[i] + ".bias"] = b.narrow(0, i * width, width);
    }
    for (const char* p : {"weight", "bias"}) {
      out[to + "self_attn.out_proj." + p] = need(sd, from + "attn.out_proj." + p, source);
      out[to + "layer_norm1." + p] = need(sd, from + "ln_1." + p, source);
      out[to + "layer_norm2." + p] = need(sd, from + "ln_2." + p, source);
      out[to + "mlp.fc1." + p] = need(sd, from + "mlp.c_fc." + p, source);
      out[to + "mlp.fc2." + p] = need(sd, from + "mlp.c_proj." + p, source);
    }
  };
  out["vision_model.embeddings.patch_embedding.weight"] = conv;
  out["vision_model.embeddings.class_embedding"] = need(sd, "visual.class_embedding", source);
  out["vision_model.embeddings.position_embedding.weight"] = vpos;
  for (const char* p : {"weight", "bias"}) {
    out[std::string("vision_model.pre_layrnorm.") + p] = need(sd, std::string("visual.ln_pre.") + p, source);
    out[std::string("vision_model.post_layernorm.") + p] = need(sd, std::string("visual.ln_post.") + p, source);
    out[std::string("text_model.final_layer_norm.") + p] = need(sd, std::string("ln_final.") + p, source);
  }
  for (std::int64_t i = 0; i < c.vision.num_layers; ++i)
    block("visual.transformer.resblocks." + std::to_string(i) + ".", "vision_model.encoder.layers." + std::to_string(i) + ".",
          c.vision.hidden_size);
  for (std::int64_t i = 0; i < c.text.num_layers; ++i)
    block("transformer.resblocks." + std::to_string(i) + ".", "text_model.encoder.layers." + std::to_string(i) + ".",
          c.text.hidden_size);
  out["text_model.embeddings.token_embedding.weight"] = need(sd, "token_embedding.weight", source);
  out["text_model.embeddings.position_embedding.weight"] = need(sd, "positional_embedding", source);
  out["visual_projection.weight"] = need(sd, "visual.proj", source).t();
  out["text_projection.weight"] = need(sd, "text_projection", source).t();
  out["logit_scale"] = need(sd, "logit_scale", source);

  // Anything we did not map is unexpected.
  std::regex known(R"(^(visual\.(conv1|class_embedding|positional_embedding|ln_pre|ln_post|proj|transformer\.resblocks\.\d+\.(attn\.(in_proj_weight|in_proj_bias|out_proj\.\w+)|ln_[12]\.\w+|mlp\.c_(fc|proj)\.\w+))|transformer\.resblocks\.\d+\.(attn\.(in_proj_weight|in_proj_bias|out_proj\.\w+)|ln_[12]\.\w+|mlp\.c_(fc|proj)\.\w+)|token_embedding|positional_embedding|ln_final|text_projection|logit_scale)(\.\w+)?$)");
  for (const auto& [k, v] : sd)
    if (!std::regex_match(k, known)) throw Error(source + ": unexpected tensor '" + k + "' for an OpenAI CLIP");
  return out;
}

void load_state(ClipModel& model, const std::map<std::string, torch::Tensor>& tensors, const std::string& source) {
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  for (auto& p : model->named_parameters(true)) {
    auto it = tensors.find(p.key());
    if (it == tensors.end()) throw Error(source + ": missing tensor '" + p.key() + "' of shape " + shape_str(p.value().sizes()));
    if (it->second.sizes() != p.value().sizes())
      throw Error(source + ": tensor '" + p.key() + "' has shape " + shape_str(it->second.sizes()) + ", the model expects " +
                  shape_str(p.value().sizes()));
    p.value().copy_(it->second.to(p.value().dtype()));
    used.insert(p.key());
  }
  for (const auto& [k, v] : tensors) {
    // Hugging Face checkpoints may carry position_ids buffers; they are arange() and not weights.
    if (used.count(k) || k.find("position_ids") != std::string::npos) continue;
    throw Error(source + ": unexpected tensor '" + k + "' of shape " + shape_str(v.sizes()));
  }
}

ClipModel load_model(const std::string& spec, const LoadOptions& opt) {
  fs::path path(spec);
  if (!fs::exists(path)) {
    try {
      return ClipModel(preset(spec));
    } catch (const Error&) {
      throw Error("'" + spec + "' is neither a weights file or folder nor a preset (" + describe_presets() + ")");
    }
  }
  fs::path file = path;
  if (fs::is_directory(path)) {
    for (const char* name : {"model.safetensors", "model.pt", "pytorch_model.pt"})
      if (fs::exists(path / name)) {
        file = path / name;
        break;
      }
    if (fs::is_directory(file)) throw Error(spec + ": no model.safetensors in this folder");
  }
  fs::path config_file = file.parent_path() / "config.json";
  const std::string source = file.string();
  WeightFormat format = detect_format(source);
  ClipConfig config;
  std::map<std::string, torch::Tensor> tensors;
  if (format == WeightFormat::Safetensors) {
    if (!fs::exists(config_file)) throw Error(source + ": a safetensors model needs config.json beside it");
    config = load_config(config_file.string());
    tensors = read_safetensors(source).tensors;
  } else {
    auto raw = format == WeightFormat::TorchScript ? read_torchscript(source) : read_state_dict(source);
    tensors = openai_to_hf(raw, config, source);
    if (fs::exists(config_file)) {
      ClipConfig given = load_config(config_file.string());
      config.vision.num_heads = given.vision.num_heads;
      config.text.num_heads = given.text.num_heads;
    }
  }
  if (opt.vision_heads) config.vision.num_heads = *opt.vision_heads;
  if (opt.text_heads) config.text.num_heads = *opt.text_heads;
  // Before the model is allocated: a config.json that asks for more
  // parameters than the file holds is refused (it would allocate, then fail).
  std::int64_t held = 0;
  for (const auto& [name, t] : tensors) held += t.numel();
  const std::int64_t wanted = parameter_count(config);
  if (wanted > held + held / 100 + 1024)
    throw Error(source + ": its configuration describes " + std::to_string(wanted) + " parameters, the weights hold " +
                std::to_string(held) + ": config.json and the weights disagree");
  ClipModel model(config);
  load_state(model, tensors, source);
  return model;
}

void save_pretrained(ClipModel& model, const std::string& dir) {
  fs::create_directories(dir);
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& p : model->named_parameters(true)) tensors[p.key()] = p.value();
  // Write beside, then rename: a crash never leaves a half-written model.
  const fs::path target = fs::path(dir) / "model.safetensors", tmp = fs::path(dir) / "model.safetensors.tmp";
  write_safetensors(tmp.string(), tensors);
  fs::rename(tmp, target);
  save_config(model->config, (fs::path(dir) / "config.json").string());
}

}  // namespace clip
