#pragma once
// Fused CPU kernels for the parts of a CLIP block that ATen runs as many
// memory-bound passes: quick_gelu, the residual add with the LayerNorm after
// it, and the attention core. Each is an autograd function with a
// hand-written backward, so training gets the saving too (one file each in
// src/: quick_gelu.cpp, add_layer_norm.cpp, attention.cpp).
//
// Why: with one intra-op thread, a ViT-B/32 training step spent about a
// third of its time outside matrix products, most of it in elementwise passes
// (x * sigmoid(1.702 x) is 3 passes forward and 5 backward in ATen) and in the
// [B, L, H, D] transposes attention needs for batched GEMMs. Here quick_gelu is
// one pass each way, and attention reads the heads where they lie in the
// [B, L, W] projections (BLAS takes the row stride), with the scale, the
// causal mask and the softmax in one pass over the scores.
//
// All fall back to the plain ATen expressions for anything but float32 CPU
// tensors (CUDA, half precision), so callers need no branch.
#include <torch/types.h>

#include <tuple>

namespace clip::kernels {

// OpenAI's quick_gelu of x + bias: u * sigmoid(1.702 u), u = x + bias, the
// bias (optional) over the last dimension. Taking the bias here lets the
// layer before run without its own bias pass, and its gradient comes out of
// the same backward pass.
torch::Tensor quick_gelu(const torch::Tensor& x, const torch::Tensor& bias = {});

// softmax(q k^T / sqrt(d) + causal mask) v for `heads` heads of d = W / heads
// columns each, from the packed projection qkv = [q | k | v], [B, L, 3W]
// (as packed_linear makes it); the result is [B, L, W]. `causal`: position i
// attends to positions <= i. The gradient comes back packed the same way.
torch::Tensor attention(const torch::Tensor& qkv, std::int64_t heads, bool causal);

// x [..., in] through several Linear layers at once: [..., sum of outs], the
// layers' outputs side by side (attention's q, k, v projections). One GEMM
// over the concatenated weights when autograd records (a wider product runs
// faster, and the input's gradient comes out of one product instead of three
// summed); without autograd each product is written into its columns of the
// result, so the weights are not copied on every call.
torch::Tensor packed_linear(const torch::Tensor& x, at::TensorList weights, at::TensorList biases);

// x [..., in] by weight [out, in]: x W^T, [..., out], a Linear layer without
// its bias (which callers fold into the pass after it). Without autograd and
// for a few rows (a short text or one image: serving's latency case), each
// output is an input row's dot product with a weight row in registers
// (docarray::row_products), since a BLAS sgemm copies the whole weight into
// its own layout first, which at a dozen rows costs more than the product;
// packed_linear does the same. Otherwise at::matmul.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight);

// The residual add of a pre-LayerNorm block fused with the LayerNorm that
// reads its result: returns (sum, layer_norm(sum)), sum = x + (r + r_bias),
// normalized over the last dimension with `weight` and `bias` (both [W]).
// r_bias (optional, [W]) is the bias of the layer that made r (attention's
// out_proj, the MLP's fc2), added here instead of in a pass of its own, its
// gradient summed in the same backward pass. One pass forward where ATen
// makes two or three, and one backward where ATen's LayerNorm backward is
// followed by a pass adding the residual path's gradient and one summing the
// bias's.
std::tuple<torch::Tensor, torch::Tensor> add_layer_norm(const torch::Tensor& x, const torch::Tensor& r,
                                                        const torch::Tensor& weight, const torch::Tensor& bias,
                                                        double eps, const torch::Tensor& r_bias = {});

// The same computations written with ATen operators: the reference that the
// tests compare the kernels with, and the path for other devices and dtypes.
torch::Tensor quick_gelu_reference(const torch::Tensor& x, const torch::Tensor& bias = {});
std::tuple<torch::Tensor, torch::Tensor> add_layer_norm_reference(const torch::Tensor& x, const torch::Tensor& r,
                                                                  const torch::Tensor& weight,
                                                                  const torch::Tensor& bias, double eps,
                                                                  const torch::Tensor& r_bias = {});
torch::Tensor attention_reference(const torch::Tensor& qkv, std::int64_t heads, bool causal);

// For tests and benchmarks: true runs causal attention's per-head products
// through BLAS even where the AVX-512 small-GEMM kernel would (the path of
// other CPUs and of head sizes that are not a multiple of 16), so both are
// checked on one machine.
namespace testing {
extern bool blas_attention;
}

}  // namespace clip::kernels
