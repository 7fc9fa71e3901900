// Multi-head attention over heads read in place in the packed [B, L, 3W]
// q|k|v projection.
#include "clip/kernels.hpp"

#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <dlfcn.h>

#include <cmath>
#include <limits>
#include <vector>

#include "blas.hpp"
#include "kernels_common.hpp"
#include "vector_math.hpp"

namespace clip::kernels {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;
using detail::fusable;
using detail::gemm;
using clip::detail::fast_exp;

// OpenBLAS splits a product over its threads from about 64^3 multiply-adds
// up, and the per-head products here (50 x 50 x 64, 77 x 77 x 64) are just
// above that: each call then pays a thread hand-off worth more than the
// split gains. For the attention loops the library runs them on the calling
// thread (never more threads than configured, only fewer). Looked up at run
// time, since libblas.so.3 may be another BLAS. The setting is global: when
// two encoders run attention at once, one may see the other's 1 and leave it
// alone, but every guard that lowers the count restores it, so it ends where
// it started, and no product ever runs on more threads than configured.
class SingleThreadedBlas {
 public:
  SingleThreadedBlas() {
    if (set_ && get_ && (saved_ = get_()) > 1) set_(1);
  }
  ~SingleThreadedBlas() {
    if (saved_ > 1) set_(saved_);
  }
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  using Set = void (*)(int);
  using Get = int (*)();
  static inline Set set_ = reinterpret_cast<Set>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  static inline Get get_ = reinterpret_cast<Get>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  int saved_ = 0;
};

// Softmax over the first `n` entries of one row of scores; the rest (masked by
// causality) become 0.
CLIP_VECTOR_CLONES void softmax_row(float* s, std::int64_t n, std::int64_t length) {
  float max = s[0];
  for (std::int64_t j = 1; j < n; ++j) max = s[j] > max ? s[j] : max;
  float sum = 0;
  for (std::int64_t j = 0; j < n; ++j) {
    s[j] = fast_exp(s[j] - max);
    sum += s[j];
  }
  const float inv = 1.0f / sum;
  for (std::int64_t j = 0; j < n; ++j) s[j] *= inv;
  for (std::int64_t j = n; j < length; ++j) s[j] = 0;
}

// Softmax backward, with the score scale folded in: ds = scale p (dp - <dp, p>),
// written over dp; the masked entries (p = 0) get 0.
CLIP_VECTOR_CLONES void softmax_row_backward(const float* p, float* dp, std::int64_t n, std::int64_t length,
                                             float scale) {
  float dot = 0;
  for (std::int64_t j = 0; j < n; ++j) dot += dp[j] * p[j];
  for (std::int64_t j = 0; j < n; ++j) dp[j] = scale * p[j] * (dp[j] - dot);
  for (std::int64_t j = n; j < length; ++j) dp[j] = 0;
}

struct Shape {
  std::int64_t batch, length, width, heads, dim;
  std::int64_t ld;  // row stride of the packed q|k|v input, 3 W
  float scale;      // of the scores, 1 / sqrt(dim)
  explicit Shape(const torch::Tensor& qkv, std::int64_t h)
      : batch(qkv.size(0)), length(qkv.size(1)), width(qkv.size(2) / 3), heads(h), dim(qkv.size(2) / 3 / h),
        ld(qkv.size(2)), scale(1.0f / std::sqrt(static_cast<float>(dim))) {}
  // Offset of head h of batch item b's query inside the packed [B, L, 3W]
  // input; its key lies `width` further, its value 2 `width`.
  std::int64_t head(std::int64_t b, std::int64_t h) const { return b * length * ld + h * dim; }
  // Offset of head h of batch item b inside the [B, L, W] output.
  std::int64_t out(std::int64_t b, std::int64_t h) const { return b * length * width + h * dim; }
  // Offset of the [L, L] probabilities of (b, h) inside [B, H, L, L].
  std::int64_t probs(std::int64_t b, std::int64_t h) const { return (b * heads + h) * length * length; }
};

struct Attention : torch::autograd::Function<Attention> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& qkv_in, std::int64_t heads, bool causal) {
    RECORD_FUNCTION("clip::attention", std::vector<c10::IValue>());
    const torch::Tensor qkv = qkv_in.contiguous();
    const Shape s(qkv, heads);
    const auto L = s.length, W = s.width, D = s.dim, ld = s.ld;
    torch::Tensor probs = torch::empty({s.batch, heads, L, L}, qkv.options());
    torch::Tensor out = torch::empty({s.batch, L, W}, qkv.options());
    const float* xp = qkv.data_ptr<float>();
    float *pp = probs.data_ptr<float>(), *op = out.data_ptr<float>();
    const SingleThreadedBlas one_thread;
    for (std::int64_t b = 0; b < s.batch; ++b) {
      for (std::int64_t h = 0; h < heads; ++h) {
        const float *q = xp + s.head(b, h), *k = q + W, *v = q + 2 * W;
        float* p = pp + s.probs(b, h);
        gemm(false, true, L, L, D, s.scale, q, ld, k, ld, 0, p, L);
        for (std::int64_t i = 0; i < L; ++i) softmax_row(p + i * L, causal ? i + 1 : L, L);
        gemm(false, false, L, D, L, 1, p, L, v, ld, 0, op + s.out(b, h), W);
      }
    }
    ctx->save_for_backward({qkv, probs});
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["causal"] = causal;
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    RECORD_FUNCTION("clip::attention_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &qkv = saved[0], &probs = saved[1];
    const bool causal = ctx->saved_data["causal"].toBool();
    const Shape s(qkv, ctx->saved_data["heads"].toInt());
    const auto L = s.length, W = s.width, D = s.dim, ld = s.ld;
    const torch::Tensor dout = grads[0].contiguous();
    // One gradient for the packed input, so the projection before gets it
    // without a copy.
    torch::Tensor dqkv = torch::empty_like(qkv);
    std::vector<float> ds(static_cast<std::size_t>(L * L));
    const float *xp = qkv.data_ptr<float>(), *pp = probs.data_ptr<float>(), *gp = dout.data_ptr<float>();
    float* dp = dqkv.data_ptr<float>();
    const SingleThreadedBlas one_thread;
    for (std::int64_t b = 0; b < s.batch; ++b) {
      for (std::int64_t h = 0; h < s.heads; ++h) {
        const float* p = pp + s.probs(b, h);
        const float *q = xp + s.head(b, h), *k = q + W, *v = q + 2 * W, *g = gp + s.out(b, h);
        float *dq = dp + s.head(b, h), *dk = dq + W, *dv = dq + 2 * W;
        gemm(true, false, L, D, L, 1, p, L, g, W, 0, dv, ld);           // dv = p^T dout
        gemm(false, true, L, L, D, 1, g, W, v, ld, 0, ds.data(), L);    // dp = dout v^T
        for (std::int64_t i = 0; i < L; ++i) softmax_row_backward(p + i * L, ds.data() + i * L, causal ? i + 1 : L, L, s.scale);
        gemm(false, false, L, D, L, 1, ds.data(), L, k, ld, 0, dq, ld);  // dq = ds k
        gemm(true, false, L, D, L, 1, ds.data(), L, q, ld, 0, dk, ld);   // dk = ds^T q
      }
    }
    return {dqkv, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor attention_reference(const torch::Tensor& qkv, std::int64_t heads, bool causal) {
  const auto b = qkv.size(0), l = qkv.size(1), w = qkv.size(2) / 3, d = w / heads;
  auto split = [&](const torch::Tensor& t) { return t.reshape({b, l, heads, d}).transpose(1, 2); };
  const auto parts = qkv.chunk(3, -1);
  torch::Tensor scores =
      torch::matmul(split(parts[0]) * (1.0 / std::sqrt(static_cast<double>(d))), split(parts[1]).transpose(-2, -1));
  if (causal)
    scores = scores + torch::full({l, l}, -std::numeric_limits<float>::infinity(), qkv.options()).triu(1);
  return torch::matmul(torch::softmax(scores, -1), split(parts[2])).transpose(1, 2).reshape({b, l, w});
}

torch::Tensor attention(const torch::Tensor& qkv, std::int64_t heads, bool causal) {
  TORCH_CHECK(qkv.dim() == 3 && qkv.size(2) % 3 == 0,
              "attention takes the packed q|k|v projection, [batch, length, 3 width], got ", qkv.sizes());
  TORCH_CHECK(heads > 0 && (qkv.size(2) / 3) % heads == 0, "attention width ", qkv.size(2) / 3,
              " is not divisible by ", heads, " heads");
  if (!fusable(qkv) || qkv.numel() == 0) return attention_reference(qkv, heads, causal);
  return Attention::apply(qkv, heads, causal);
}

}  // namespace clip::kernels
