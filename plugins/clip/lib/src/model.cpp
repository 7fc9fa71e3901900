#include "clip/model.hpp"

#include <cmath>
#include <limits>

#include "clip/error.hpp"
#include "clip/kernels.hpp"

namespace clip {

namespace nn = torch::nn;

namespace {

// x + (r + r_bias) and its LayerNorm by `norm`, in one fused pass.
std::pair<torch::Tensor, torch::Tensor> add_norm(const torch::Tensor& x, const torch::Tensor& r,
                                                 const torch::Tensor& r_bias, const nn::LayerNorm& norm) {
  auto [sum, normed] = kernels::add_layer_norm(x, r, norm->weight, norm->bias, norm->options.eps(), r_bias);
  return {sum, normed};
}

// x [B, L, ...] at one position per batch item, `at` [B]: [B, ...].
torch::Tensor rows_at(const torch::Tensor& x, const torch::Tensor& at) {
  return x.index({torch::arange(x.size(0), at.options()), at});
}

}  // namespace

AttentionImpl::AttentionImpl(std::int64_t width, std::int64_t heads_) : heads(heads_), head_dim(width / heads_) {
  TORCH_CHECK(width % heads_ == 0, "attention width ", width, " is not divisible by ", heads_, " heads");
  q_proj = register_module("q_proj", nn::Linear(width, width));
  k_proj = register_module("k_proj", nn::Linear(width, width));
  v_proj = register_module("v_proj", nn::Linear(width, width));
  out_proj = register_module("out_proj", nn::Linear(width, width));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, bool causal) {
  return forward_without_out_bias(x, causal).add_(out_proj->bias);
}

torch::Tensor AttentionImpl::forward_without_out_bias(const torch::Tensor& x, bool causal) {
  const torch::Tensor qkv = kernels::packed_linear(x, {q_proj->weight, k_proj->weight, v_proj->weight},
                                                   {q_proj->bias, k_proj->bias, v_proj->bias});
  return kernels::linear(kernels::attention(qkv, heads, causal), out_proj->weight);
}

torch::Tensor AttentionImpl::forward_one_query_without_out_bias(const torch::Tensor& x, const torch::Tensor& at,
                                                                bool causal) {
  const auto b = x.size(0), l = x.size(1);
  const torch::Tensor kv = kernels::packed_linear(x, {k_proj->weight, v_proj->weight}, {k_proj->bias, v_proj->bias});
  const torch::Tensor q = kernels::linear(rows_at(x, at), q_proj->weight).add_(q_proj->bias);
  // [B, L, W] -> [B, L, heads, head_dim]
  auto split = [&](const torch::Tensor& t) { return t.reshape({b, l, heads, head_dim}); };
  const auto k_v = kv.chunk(2, -1);
  // One query per item: its scores as broadcast products summed over the head
  // dimension rather than a batched product of 1-row matrices (which LibTorch
  // runs as one small product per batch item and head).
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  torch::Tensor scores = (split(k_v[0]) * (q.reshape({b, 1, heads, head_dim}) * scale)).sum(-1);  // [B, L, heads]
  if (causal) {
    const torch::Tensor after = torch::arange(l, at.options()).unsqueeze(0) > at.unsqueeze(1);  // [B, L]
    scores = scores.masked_fill(after.unsqueeze(-1), -std::numeric_limits<float>::infinity());
  }
  const torch::Tensor probs = torch::softmax(scores, 1).unsqueeze(-1);  // over the L positions
  const torch::Tensor mixed = (probs * split(k_v[1])).sum(1);            // [B, heads, head_dim]
  return kernels::linear(mixed.reshape({b, heads * head_dim}), out_proj->weight);
}

MlpImpl::MlpImpl(std::int64_t width, std::int64_t hidden) {
  fc1 = register_module("fc1", nn::Linear(width, hidden));
  fc2 = register_module("fc2", nn::Linear(hidden, width));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) { return forward_without_out_bias(x).add_(fc2->bias); }

torch::Tensor MlpImpl::forward_without_out_bias(const torch::Tensor& x) {
  // fc1's bias is added inside quick_gelu's one pass, not by a pass of its own.
  return kernels::linear(kernels::quick_gelu(kernels::linear(x, fc1->weight), fc1->bias), fc2->weight);
}

EncoderLayerImpl::EncoderLayerImpl(std::int64_t width, std::int64_t heads, std::int64_t mlp_, double eps) {
  layer_norm1 = register_module("layer_norm1", nn::LayerNorm(nn::LayerNormOptions({width}).eps(eps)));
  self_attn = register_module("self_attn", Attention(width, heads));
  layer_norm2 = register_module("layer_norm2", nn::LayerNorm(nn::LayerNormOptions({width}).eps(eps)));
  mlp = register_module("mlp", Mlp(width, mlp_));
}

torch::Tensor EncoderLayerImpl::forward(const torch::Tensor& x, bool causal) {
  return forward_normed(x, layer_norm1(x), nullptr, causal).first;
}

std::pair<torch::Tensor, torch::Tensor> EncoderLayerImpl::forward_normed(const torch::Tensor& x, const torch::Tensor& normed,
                                                                         const nn::LayerNorm& next_norm, bool causal) {
  // The biases of the two layers that feed the residual adds (out_proj, fc2)
  // are added inside the fused add + LayerNorm.
  auto [h, h_normed] = add_norm(x, self_attn->forward_without_out_bias(normed, causal), self_attn->out_proj->bias,
                                layer_norm2);
  torch::Tensor m = mlp->forward_without_out_bias(h_normed);
  if (next_norm.is_empty()) return {h + m.add_(mlp->fc2->bias), torch::Tensor()};
  return add_norm(h, m, mlp->fc2->bias, next_norm);
}

torch::Tensor EncoderLayerImpl::forward_normed_at(const torch::Tensor& x, const torch::Tensor& normed,
                                                 const torch::Tensor& at, bool causal) {
  const torch::Tensor h = rows_at(x, at) +
                          self_attn->forward_one_query_without_out_bias(normed, at, causal).add_(self_attn->out_proj->bias);
  return h + mlp(layer_norm2(h));
}

EncoderImpl::EncoderImpl(std::int64_t width, std::int64_t heads, std::int64_t mlp, std::int64_t n, double eps) {
  for (std::int64_t i = 0; i < n; ++i) layers->push_back(EncoderLayer(width, heads, mlp, eps));
  register_module("layers", layers);
}

torch::Tensor EncoderImpl::forward(torch::Tensor x, bool causal) {
  // Each block's last residual add is fused with the next block's first
  // LayerNorm, so the loop carries both the sum and its normalized form.
  const auto n = layers->size();
  if (n == 0) return x;
  torch::Tensor normed = layers[0]->as<EncoderLayer>()->layer_norm1(x);
  for (std::size_t i = 0; i < n; ++i) {
    const nn::LayerNorm next = i + 1 < n ? layers[i + 1]->as<EncoderLayer>()->layer_norm1 : nn::LayerNorm(nullptr);
    std::tie(x, normed) = layers[i]->as<EncoderLayer>()->forward_normed(x, normed, next, causal);
  }
  return x;
}

torch::Tensor EncoderImpl::forward_at(torch::Tensor x, const torch::Tensor& at, bool causal) {
  TORCH_CHECK(x.dim() == 3 && at.dim() == 1 && at.size(0) == x.size(0) && at.scalar_type() == torch::kLong,
              "Encoder::forward_at takes x [batch, length, width] and one int64 position per batch item, got ",
              x.sizes(), " and ", at.sizes(), " ", at.scalar_type());
  TORCH_CHECK(at.numel() == 0 || (at.min().item<std::int64_t>() >= 0 && at.max().item<std::int64_t>() < x.size(1)),
              "Encoder::forward_at: a position lies outside the ", x.size(1), " tokens");
  const auto n = layers->size();
  if (n == 0) return rows_at(x, at);
  // As forward(), the last layer aside.
  torch::Tensor normed = layers[0]->as<EncoderLayer>()->layer_norm1(x);
  for (std::size_t i = 0; i + 1 < n; ++i)
    std::tie(x, normed) = layers[i]->as<EncoderLayer>()->forward_normed(
        x, normed, layers[i + 1]->as<EncoderLayer>()->layer_norm1, causal);
  return layers[n - 1]->as<EncoderLayer>()->forward_normed_at(x, normed, at, causal);
}

VisionEmbeddingsImpl::VisionEmbeddingsImpl(const VisionConfig& c) {
  TORCH_CHECK(c.image_size % c.patch_size == 0, "image size ", c.image_size, " is not a multiple of patch size ",
              c.patch_size);
  patch_embedding = register_module(
      "patch_embedding", nn::Conv2d(nn::Conv2dOptions(3, c.hidden_size, c.patch_size).stride(c.patch_size).bias(false)));
  class_embedding = register_parameter("class_embedding", torch::randn({c.hidden_size}) * 0.02);
  const auto grid = c.image_size / c.patch_size;
  position_embedding = register_module("position_embedding", nn::Embedding(grid * grid + 1, c.hidden_size));
}

torch::Tensor VisionEmbeddingsImpl::forward(const torch::Tensor& pixels) {
  const auto p = patch_embedding->options.kernel_size()->at(0);
  const auto grid = static_cast<std::int64_t>(std::lround(std::sqrt(position_embedding->weight.size(0) - 1)));
  TORCH_CHECK(pixels.dim() == 4 && pixels.size(1) == 3 && pixels.size(2) == grid * p && pixels.size(3) == grid * p,
              "the image tower takes pixels [batch, 3, ", grid * p, ", ", grid * p, "], got ", pixels.sizes());
  const auto b = pixels.size(0);
  // The stride-p convolution as one matrix product over the image cut into
  // p x p patches (a copy of the pixels): the same sums, at GEMM speed (ATen's
  // convolution took 0.2 s of a ViT-B/32 step forward and backward, the GEMM
  // about a third of that).
  torch::Tensor cut = pixels.reshape({b, 3, grid, p, grid, p}).permute({0, 2, 4, 1, 3, 5}).reshape({b, grid * grid, 3 * p * p});
  torch::Tensor patches = kernels::linear(cut, patch_embedding->weight.reshape({patch_embedding->weight.size(0), -1}));
  torch::Tensor cls = class_embedding.expand({b, 1, class_embedding.size(0)});
  return torch::cat({cls, patches}, 1) + position_embedding->weight.unsqueeze(0);
}

VisionTransformerImpl::VisionTransformerImpl(const VisionConfig& c) {
  embeddings = register_module("embeddings", VisionEmbeddings(c));
  pre_layrnorm = register_module("pre_layrnorm", nn::LayerNorm(nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps)));
  encoder = register_module("encoder", Encoder(c.hidden_size, c.num_heads, c.intermediate_size, c.num_layers, c.layer_norm_eps));
  post_layernorm = register_module("post_layernorm", nn::LayerNorm(nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps)));
}

torch::Tensor VisionTransformerImpl::forward(const torch::Tensor& pixels) {
  const torch::Tensor x = pre_layrnorm(embeddings(pixels));
  // The pooled output is the class token's (position 0).
  return post_layernorm(encoder->forward_at(x, torch::zeros({x.size(0)}, pixels.options().dtype(torch::kLong))));
}

TextEmbeddingsImpl::TextEmbeddingsImpl(const TextConfig& c) {
  token_embedding = register_module("token_embedding", nn::Embedding(c.vocab_size, c.hidden_size));
  position_embedding = register_module("position_embedding", nn::Embedding(c.max_positions, c.hidden_size));
}

torch::Tensor TextEmbeddingsImpl::forward(const torch::Tensor& ids) {
  const auto l = ids.size(1);
  return token_embedding(ids) + position_embedding->weight.narrow(0, 0, l).unsqueeze(0);
}

TextTransformerImpl::TextTransformerImpl(const TextConfig& c) {
  embeddings = register_module("embeddings", TextEmbeddings(c));
  encoder = register_module("encoder", Encoder(c.hidden_size, c.num_heads, c.intermediate_size, c.num_layers, c.layer_norm_eps));
  final_layer_norm = register_module("final_layer_norm", nn::LayerNorm(nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps)));
}

torch::Tensor TextTransformerImpl::forward(const torch::Tensor& ids) {
  const auto l = ids.size(1);
  TORCH_CHECK(l <= embeddings->position_embedding->weight.size(0), "text of ", l, " tokens is longer than the model's ",
              embeddings->position_embedding->weight.size(0), " positions");
  TORCH_CHECK(l > 0, "text of 0 tokens: a tokenized text holds at least its start and end tokens");
  // The features are the end-of-text token's, the largest id of each row.
  const torch::Tensor eot = ids.argmax(-1);
  // Attention is causal, so the tokens after the last end of text in the batch
  // (the padding up to 77) cannot reach any feature: they are left out, the
  // same numbers for a fraction of the work on captions of a few words.
  const std::int64_t used = ids.size(0) == 0 ? l : eot.max().item<std::int64_t>() + 1;
  return final_layer_norm(encoder->forward_at(embeddings(ids.narrow(1, 0, used)), eot, /*causal=*/true));
}

ClipModelImpl::ClipModelImpl(const ClipConfig& c) : config(c) {
  vision_model = register_module("vision_model", VisionTransformer(c.vision));
  text_model = register_module("text_model", TextTransformer(c.text));
  visual_projection = register_module("visual_projection", nn::Linear(nn::LinearOptions(c.vision.hidden_size, c.projection_dim).bias(false)));
  text_projection = register_module("text_projection", nn::Linear(nn::LinearOptions(c.text.hidden_size, c.projection_dim).bias(false)));
  logit_scale = register_parameter("logit_scale", torch::tensor(static_cast<float>(c.logit_scale_init)));
}

torch::Tensor ClipModelImpl::encode_image(const torch::Tensor& pixels) {
  return kernels::linear(vision_model(pixels), visual_projection->weight);
}

torch::Tensor ClipModelImpl::encode_text(const torch::Tensor& ids) {
  return kernels::linear(text_model(ids), text_projection->weight);
}

torch::Tensor ClipModelImpl::logits_per_image(const torch::Tensor& image, const torch::Tensor& text) {
  auto norm = [](const torch::Tensor& t) { return t / t.norm(2, -1, true); };
  return logit_scale.exp() * torch::matmul(norm(image), norm(text).t());
}

torch::Tensor encode_batched(ClipModel& model, const std::vector<torch::Tensor>& inputs, bool images,
                             std::int64_t batch_size, const torch::Device& device) {
  std::vector<torch::Tensor> outputs;
  const auto n = static_cast<std::int64_t>(inputs.size());
  for (std::int64_t start = 0; start < n; start += batch_size) {
    const std::int64_t stop = std::min(n, start + batch_size);
    torch::Tensor x;
    try {
      x = torch::stack(std::vector<torch::Tensor>(inputs.begin() + start, inputs.begin() + stop)).to(device);
    } catch (const std::exception& e) {
      throw Error("tensors cannot be batched (different shapes?): " + std::string(e.what()).substr(0, 200));
    }
    outputs.push_back(images ? model->encode_image(x.to(torch::kFloat)) : model->encode_text(x.to(torch::kLong)));
  }
  return outputs.size() == 1 ? outputs.front() : torch::cat(outputs);
}

}  // namespace clip
