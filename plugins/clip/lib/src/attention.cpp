// Multi-head attention over heads read in place in [B, L, W] projections.
#include "clip/kernels.hpp"

#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>
#include <cblas.h>

#include <dlfcn.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels_common.hpp"
#include "vector_math.hpp"

namespace clip::kernels {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;
using detail::fusable;
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

// Row-major C[m x n] = alpha op(A) op(B) + beta C, leading dimensions given, so
// that one head's [L, d] columns inside a [L, W] row-major matrix are read in
// place (leading dimension W).
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
          std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b,
              static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

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
  float scale;  // of the scores, 1 / sqrt(dim)
  explicit Shape(const torch::Tensor& q, std::int64_t h)
      : batch(q.size(0)), length(q.size(1)), width(q.size(2)), heads(h), dim(q.size(2) / h),
        scale(1.0f / std::sqrt(static_cast<float>(dim))) {}
  // Offset of head h of batch item b inside a [B, L, W] tensor.
  std::int64_t head(std::int64_t b, std::int64_t h) const { return b * length * width + h * dim; }
  // Offset of the [L, L] probabilities of (b, h) inside [B, H, L, L].
  std::int64_t probs(std::int64_t b, std::int64_t h) const { return (b * heads + h) * length * length; }
};

struct Attention : torch::autograd::Function<Attention> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q_in, const torch::Tensor& k_in,
                               const torch::Tensor& v_in, std::int64_t heads, bool causal) {
    RECORD_FUNCTION("clip::attention", std::vector<c10::IValue>());
    const torch::Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
    const Shape s(q, heads);
    const auto L = s.length, W = s.width, D = s.dim;
    torch::Tensor probs = torch::empty({s.batch, heads, L, L}, q.options());
    torch::Tensor out = torch::empty_like(q);
    const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
    float *pp = probs.data_ptr<float>(), *op = out.data_ptr<float>();
    const SingleThreadedBlas one_thread;
    for (std::int64_t b = 0; b < s.batch; ++b) {
      for (std::int64_t h = 0; h < heads; ++h) {
        float* p = pp + s.probs(b, h);
        gemm(false, true, L, L, D, s.scale, qp + s.head(b, h), W, kp + s.head(b, h), W, 0, p, L);
        for (std::int64_t i = 0; i < L; ++i) softmax_row(p + i * L, causal ? i + 1 : L, L);
        gemm(false, false, L, D, L, 1, p, L, vp + s.head(b, h), W, 0, op + s.head(b, h), W);
      }
    }
    ctx->save_for_backward({q, k, v, probs});
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["causal"] = causal;
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    RECORD_FUNCTION("clip::attention_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &probs = saved[3];
    const bool causal = ctx->saved_data["causal"].toBool();
    const Shape s(q, ctx->saved_data["heads"].toInt());
    const auto L = s.length, W = s.width, D = s.dim;
    const torch::Tensor dout = grads[0].contiguous();
    torch::Tensor dq = torch::empty_like(q), dk = torch::empty_like(k), dv = torch::empty_like(v);
    std::vector<float> ds(static_cast<std::size_t>(L * L));
    const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
    const float *pp = probs.data_ptr<float>(), *gp = dout.data_ptr<float>();
    float *dqp = dq.data_ptr<float>(), *dkp = dk.data_ptr<float>(), *dvp = dv.data_ptr<float>();
    const SingleThreadedBlas one_thread;
    for (std::int64_t b = 0; b < s.batch; ++b) {
      for (std::int64_t h = 0; h < s.heads; ++h) {
        const float* p = pp + s.probs(b, h);
        const std::int64_t at = s.head(b, h);
        gemm(true, false, L, D, L, 1, p, L, gp + at, W, 0, dvp + at, W);         // dv = p^T dout
        gemm(false, true, L, L, D, 1, gp + at, W, vp + at, W, 0, ds.data(), L);  // dp = dout v^T
        for (std::int64_t i = 0; i < L; ++i) softmax_row_backward(p + i * L, ds.data() + i * L, causal ? i + 1 : L, L, s.scale);
        gemm(false, false, L, D, L, 1, ds.data(), L, kp + at, W, 0, dqp + at, W);  // dq = ds k
        gemm(true, false, L, D, L, 1, ds.data(), L, qp + at, W, 0, dkp + at, W);   // dk = ds^T q
      }
    }
    return {dq, dk, dv, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  std::int64_t heads, bool causal) {
  const auto b = q.size(0), l = q.size(1), w = q.size(2), d = w / heads;
  auto split = [&](const torch::Tensor& t) { return t.reshape({b, l, heads, d}).transpose(1, 2); };
  torch::Tensor scores = torch::matmul(split(q) * (1.0 / std::sqrt(static_cast<double>(d))), split(k).transpose(-2, -1));
  if (causal)
    scores = scores + torch::full({l, l}, -std::numeric_limits<float>::infinity(), q.options()).triu(1);
  return torch::matmul(torch::softmax(scores, -1), split(v)).transpose(1, 2).reshape({b, l, w});
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, std::int64_t heads,
                        bool causal) {
  TORCH_CHECK(q.dim() == 3 && q.sizes() == k.sizes() && q.sizes() == v.sizes(),
              "attention takes q, k and v of the same [batch, length, width] shape, got ", q.sizes(), ", ", k.sizes(),
              " and ", v.sizes());
  TORCH_CHECK(heads > 0 && q.size(2) % heads == 0, "attention width ", q.size(2), " is not divisible by ", heads,
              " heads");
  if (!(fusable(q) && fusable(k) && fusable(v)) || q.numel() == 0) return attention_reference(q, k, v, heads, causal);
  return Attention::apply(q, k, v, heads, causal);
}

}  // namespace clip::kernels
