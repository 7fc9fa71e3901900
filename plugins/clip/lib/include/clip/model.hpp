#pragma once
// CLIP in the LibTorch frontend's style: the same computation as OpenAI's
// reference implementation, with module names that are Hugging Face's
// CLIPModel names, so that named_parameters() are the safetensors keys
// (vision_model.embeddings.patch_embedding.weight, ...).
// The frontend's module classes this uses, not all of <torch/torch.h> (data
// loaders, optimizers, serialization): about 7 s less in every file that
// includes this (GCC 12).
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "clip/config.hpp"

namespace clip {

// Multi-head self-attention with separate q, k, v projections; `causal`:
// position i attends to positions <= i (the text tower).
struct AttentionImpl : torch::nn::Module {
  AttentionImpl(std::int64_t width, std::int64_t heads);
  torch::Tensor forward(const torch::Tensor& x, bool causal = false);
  // forward() less out_proj's bias, for a caller that adds it in a fused pass.
  torch::Tensor forward_without_out_bias(const torch::Tensor& x, bool causal = false);
  // forward_without_out_bias(x) at one position per batch item, `at` [B]
  // (int64): every token's key and value, the query of that token only.
  // [B, width].
  torch::Tensor forward_one_query_without_out_bias(const torch::Tensor& x, const torch::Tensor& at, bool causal);
  std::int64_t heads, head_dim;
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
};
TORCH_MODULE(Attention);

// fc1 -> quick_gelu (x * sigmoid(1.702 x)) -> fc2.
struct MlpImpl : torch::nn::Module {
  MlpImpl(std::int64_t width, std::int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);
  // forward() less fc2's bias, for a caller that adds it in a fused pass.
  torch::Tensor forward_without_out_bias(const torch::Tensor& x);
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

// A pre-LayerNorm residual block.
struct EncoderLayerImpl : torch::nn::Module {
  EncoderLayerImpl(std::int64_t width, std::int64_t heads, std::int64_t mlp, double eps);
  torch::Tensor forward(const torch::Tensor& x, bool causal = false);
  // The block given x and layer_norm1(x) already computed; returns the output
  // and, when next_norm is given, next_norm(output) from the same fused pass.
  std::pair<torch::Tensor, torch::Tensor> forward_normed(const torch::Tensor& x, const torch::Tensor& normed,
                                                         const torch::nn::LayerNorm& next_norm, bool causal);
  // forward_normed's output at one position per batch item, `at` [B]
  // (int64), computed for that position only (the others' keys and values
  // aside). [B, width].
  torch::Tensor forward_normed_at(const torch::Tensor& x, const torch::Tensor& normed, const torch::Tensor& at,
                                  bool causal);
  torch::nn::LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(EncoderLayer);

struct EncoderImpl : torch::nn::Module {
  EncoderImpl(std::int64_t width, std::int64_t heads, std::int64_t mlp, std::int64_t layers, double eps);
  torch::Tensor forward(torch::Tensor x, bool causal = false);
  // forward(x) at one position per batch item, `at` [B] (int64), as the
  // towers read it (the class token, the end-of-text token): the last layer
  // runs for those positions only, which saves about 10/12 of its work (only
  // the keys and values are needed from the other positions). [B, width].
  torch::Tensor forward_at(torch::Tensor x, const torch::Tensor& at, bool causal = false);
  torch::nn::ModuleList layers;
};
TORCH_MODULE(Encoder);

struct VisionEmbeddingsImpl : torch::nn::Module {
  explicit VisionEmbeddingsImpl(const VisionConfig& c);
  torch::Tensor forward(const torch::Tensor& pixels);
  torch::nn::Conv2d patch_embedding{nullptr};  // no bias
  torch::Tensor class_embedding;
  torch::nn::Embedding position_embedding{nullptr};
};
TORCH_MODULE(VisionEmbeddings);

// The image tower: pixels [B, 3, S, S] -> pooled class token [B, width].
struct VisionTransformerImpl : torch::nn::Module {
  explicit VisionTransformerImpl(const VisionConfig& c);
  torch::Tensor forward(const torch::Tensor& pixels);
  VisionEmbeddings embeddings{nullptr};
  torch::nn::LayerNorm pre_layrnorm{nullptr};  // (sic), as Hugging Face spells it
  Encoder encoder{nullptr};
  torch::nn::LayerNorm post_layernorm{nullptr};
};
TORCH_MODULE(VisionTransformer);

struct TextEmbeddingsImpl : torch::nn::Module {
  explicit TextEmbeddingsImpl(const TextConfig& c);
  torch::Tensor forward(const torch::Tensor& ids);
  torch::nn::Embedding token_embedding{nullptr}, position_embedding{nullptr};
};
TORCH_MODULE(TextEmbeddings);

// The text tower: ids [B, L] -> the features at the end-of-text token (the
// argmax of the ids, as OpenAI pools) [B, width]. Causal mask.
struct TextTransformerImpl : torch::nn::Module {
  explicit TextTransformerImpl(const TextConfig& c);
  torch::Tensor forward(const torch::Tensor& ids);
  TextEmbeddings embeddings{nullptr};
  Encoder encoder{nullptr};
  torch::nn::LayerNorm final_layer_norm{nullptr};
};
TORCH_MODULE(TextTransformer);

struct ClipModelImpl : torch::nn::Module {
  explicit ClipModelImpl(const ClipConfig& c);
  // Projected, not normalised, features.
  torch::Tensor encode_image(const torch::Tensor& pixels);
  torch::Tensor encode_text(const torch::Tensor& ids);
  // exp(logit_scale) * normalize(image) @ normalize(text).T
  torch::Tensor logits_per_image(const torch::Tensor& image_features, const torch::Tensor& text_features);

  ClipConfig config;
  VisionTransformer vision_model{nullptr};
  TextTransformer text_model{nullptr};
  torch::nn::Linear visual_projection{nullptr}, text_projection{nullptr};
  torch::Tensor logit_scale;
};
TORCH_MODULE(ClipModel);

// Runs one tower over `inputs` (image tensors [3, S, S], or token ids [L]) in
// batches of at most `batch_size` on `device`, and returns the projected
// features [N, projection] on that device (with their autograd graph when
// grad mode is on). Throws clip::Error when the inputs cannot be stacked.
torch::Tensor encode_batched(ClipModel& model, const std::vector<torch::Tensor>& inputs, bool images,
                             std::int64_t batch_size, const torch::Device& device);

}  // namespace clip
