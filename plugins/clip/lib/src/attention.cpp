// Multi-head attention over heads read in place in the packed [B, L, 3W]
// q|k|v projection.
#include "clip/kernels.hpp"

#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <thread>
#include <vector>

#include "blas.hpp"
#include "kernels_common.hpp"
#include "small_gemm.hpp"
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
  SingleThreadedBlas() : saved_(detail::blas_threads()) {
    if (saved_ > 1) detail::set_blas_threads(1);
  }
  ~SingleThreadedBlas() {
    if (saved_ > 1) detail::set_blas_threads(saved_);
  }
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;
  // The BLAS threads there were: the cores the per-head loop may use instead.
  int threads() const { return saved_; }

 private:
  const int saved_;
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
  std::int64_t ld;       // row stride of the packed q|k|v input, 3 W
  bool small_gemm;       // the per-head products in the small-GEMM kernel, not BLAS
  std::int64_t padded;   // row stride of the [L, L] score matrices (a multiple of 16 for the kernel)
  float scale;           // of the scores, 1 / sqrt(dim)
  Shape(const torch::Tensor& qkv, std::int64_t h, bool small)
      : batch(qkv.size(0)), length(qkv.size(1)), width(qkv.size(2) / 3), heads(h), dim(qkv.size(2) / 3 / h),
        ld(qkv.size(2)), small_gemm(small), padded(small ? (length + 15) / 16 * 16 : length),
        scale(1.0f / std::sqrt(static_cast<float>(dim))) {}
  // Offset of head h of batch item b's query inside the packed [B, L, 3W]
  // input; its key lies `width` further, its value 2 `width`.
  std::int64_t head(std::int64_t b, std::int64_t h) const { return b * length * ld + h * dim; }
  // Offset of head h of batch item b inside the [B, L, W] output.
  std::int64_t out(std::int64_t b, std::int64_t h) const { return b * length * width + h * dim; }
  // Offset of the [L, padded] probabilities of (b, h) inside [B, H, L, padded].
  std::int64_t probs(std::int64_t b, std::int64_t h) const { return (b * heads + h) * length * padded; }
};

// Whether the per-head products run in the small-GEMM kernel rather than
// through BLAS, one call each: for causal attention (the text tower), where
// the kernel skips the zero triangle of the scores, on AVX-512 machines, for
// head sizes it covers (a multiple of 16 columns: 64 in every CLIP).
// Measured per B/32 layer at batch 32, forward + backward: text 17.4 ms
// against BLAS's 24.0; the image tower's full 50 x 50 scores 20.2 ms against
// BLAS's 18.1 (OpenBLAS's own small-matrix kernels read the strided heads
// without copies, where this one pads the rows to 64 and transposes k and v),
// so it stays with BLAS.
bool small_gemm_for(std::int64_t dim, bool causal) {
  return causal && detail::small_gemm_available() && dim % 16 == 0 && !testing::blas_attention;
}

// The six per-head products of attention, forward and backward, for one
// (batch item, head): q, k, v, dq, dk, dv rows `ld` apart, o and do rows
// `width` apart, p and dp rows `padded` apart.
class HeadProducts {
 public:
  HeadProducts(const Shape& s, bool causal)
      : s_(s), causal_(causal), transposed_(static_cast<std::size_t>(s.small_gemm ? s.dim * s.padded : 0), 0.0f) {}

  // p = scale q k^T (only the causal lower triangle when causal)
  void scores(const float* q, const float* k, float* p) { product_abt(q, s_.ld, k, p, s_.scale); }
  // o = p v
  void mix(const float* p, const float* v, float* o) { product_ab(p, false, v, s_.ld, o, s_.width); }
  // dv = p^T do
  void grad_values(const float* p, const float* d_out, float* dv) { product_ab(p, true, d_out, s_.width, dv, s_.ld); }
  // dp = do v^T
  void grad_probs(const float* d_out, const float* v, float* dp) { product_abt(d_out, s_.width, v, dp, 1); }
  // dq = ds k
  void grad_queries(const float* ds, const float* k, float* dq) { product_ab(ds, false, k, s_.ld, dq, s_.ld); }
  // dk = ds^T q
  void grad_keys(const float* ds, const float* q, float* dk) { product_ab(ds, true, q, s_.ld, dk, s_.ld); }

 private:
  using Zeros = detail::SmallGemm::Zeros;

  // c [L, padded] = alpha a b^T: a [L, dim] rows lda apart, b a head ([L, dim]
  // rows ld apart).
  void product_abt(const float* a, std::int64_t lda, const float* b, float* c, float alpha) {
    const auto L = s_.length, D = s_.dim, P = s_.padded;
    if (!s_.small_gemm) return gemm(false, true, L, L, D, alpha, a, lda, b, s_.ld, 0, c, P);
    // The kernel reads B by rows: b^T into [dim, padded], its padding columns
    // staying 0.
    for (std::int64_t j = 0; j < L; ++j)
      for (std::int64_t d = 0; d < D; ++d) transposed_[d * P + j] = b[j * s_.ld + d];
    detail::SmallGemm g;
    g.m = L, g.n = P, g.k = D, g.a = a, g.a_row = lda, g.b = transposed_.data(), g.ldb = P, g.c = c, g.ldc = P;
    g.alpha = alpha, g.lower_c_only = causal_;
    detail::small_gemm(g);
  }

  // c [L, dim] = op(a) b, a an [L, L] score matrix (rows `padded` apart),
  // transposed or not, b a head ([L, dim] rows ldb apart).
  void product_ab(const float* a, bool trans_a, const float* b, std::int64_t ldb, float* c, std::int64_t ldc) {
    const auto L = s_.length, D = s_.dim, P = s_.padded;
    if (!s_.small_gemm) return gemm(trans_a, false, L, D, L, 1, a, P, b, ldb, 0, c, ldc);
    detail::SmallGemm g;
    g.m = L, g.n = D, g.k = L, g.a = a, g.a_row = trans_a ? 1 : P, g.a_col = trans_a ? P : 1;
    g.b = b, g.ldb = ldb, g.c = c, g.ldc = ldc;
    // Causal scores are 0 above the diagonal: in a's rows after it, in a^T's
    // rows before it.
    if (causal_) g.a_zeros = trans_a ? Zeros::before_diagonal : Zeros::after_diagonal;
    detail::small_gemm(g);
  }

  const Shape& s_;
  bool causal_;
  std::vector<float> transposed_;
};

// Runs fn(products, b, h) for every (batch item, head), split over
// `threads` threads, each with its own HeadProducts (its scratch). The
// (b, h) problems write disjoint memory. With BLAS pinned to one thread for
// the small per-head products, this is what keeps the other cores busy;
// below about a million multiply-adds a thread costs more than it saves.
template <typename Fn>
void for_each_head(const Shape& s, bool causal, int threads, const Fn& fn) {
  const std::int64_t n = s.batch * s.heads;
  const double work = static_cast<double>(n) * s.length * s.padded * s.dim;
  const std::int64_t parts = std::min<std::int64_t>({threads, n, std::max<std::int64_t>(1, static_cast<std::int64_t>(work / 1e6))});
  auto run = [&](std::int64_t begin, std::int64_t end) {
    HeadProducts products(s, causal);
    for (std::int64_t t = begin; t < end; ++t) fn(products, t / s.heads, t % s.heads);
  };
  if (parts <= 1) return run(0, n);
  const std::int64_t step = (n + parts - 1) / parts;
  std::vector<std::thread> helpers;
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(parts));
  for (std::int64_t k = 1; k < parts; ++k)
    helpers.emplace_back([&, k] {
      try {
        run(k * step, std::min(n, (k + 1) * step));
      } catch (...) {
        errors[static_cast<std::size_t>(k)] = std::current_exception();
      }
    });
  try {
    run(0, std::min(n, step));
  } catch (...) {
    errors[0] = std::current_exception();
  }
  for (auto& h : helpers) h.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// One head's forward: p = softmax(scale q k^T) (kept where `p` points), o = p v.
void head_forward(const Shape& s, bool causal, HeadProducts& products, const float* xp, std::int64_t b, std::int64_t h,
                  float* p, float* op) {
  const float *q = xp + s.head(b, h), *k = q + s.width, *v = q + 2 * s.width;
  products.scores(q, k, p);
  for (std::int64_t i = 0; i < s.length; ++i) softmax_row(p + i * s.padded, causal ? i + 1 : s.length, s.padded);
  products.mix(p, v, op + s.out(b, h));
}

// Inference (no gradient wanted): the same products, each head's
// probabilities in a scratch block that stays in cache, instead of a
// [batch, heads, L, L] tensor that only the backward reads.
torch::Tensor attention_inference(const torch::Tensor& qkv_in, std::int64_t heads, bool causal) {
  RECORD_FUNCTION("clip::attention_inference", std::vector<c10::IValue>());
  const torch::Tensor qkv = qkv_in.contiguous();
  const Shape s(qkv, heads, small_gemm_for(qkv.size(2) / 3 / heads, causal));
  torch::Tensor out = torch::empty({s.batch, s.length, s.width}, qkv.options());
  const float* xp = qkv.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const SingleThreadedBlas one_thread;
  for_each_head(s, causal, one_thread.threads(), [&](HeadProducts& products, std::int64_t b, std::int64_t h) {
    thread_local std::vector<float> probs;
    probs.resize(static_cast<std::size_t>(s.length * s.padded));
    head_forward(s, causal, products, xp, b, h, probs.data(), op);
  });
  return out;
}

struct Attention : torch::autograd::Function<Attention> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& qkv_in, std::int64_t heads, bool causal) {
    RECORD_FUNCTION("clip::attention", std::vector<c10::IValue>());
    const torch::Tensor qkv = qkv_in.contiguous();
    const Shape s(qkv, heads, small_gemm_for(qkv.size(2) / 3 / heads, causal));
    const auto L = s.length, P = s.padded, W = s.width;
    torch::Tensor probs = torch::empty({s.batch, heads, L, P}, qkv.options());
    torch::Tensor out = torch::empty({s.batch, L, W}, qkv.options());
    const float* xp = qkv.data_ptr<float>();
    float *pp = probs.data_ptr<float>(), *op = out.data_ptr<float>();
    const SingleThreadedBlas one_thread;
    for_each_head(s, causal, one_thread.threads(), [&](HeadProducts& products, std::int64_t b, std::int64_t h) {
      head_forward(s, causal, products, xp, b, h, pp + s.probs(b, h), op);
    });
    ctx->save_for_backward({qkv, probs});
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["causal"] = causal;
    ctx->saved_data["small_gemm"] = s.small_gemm;
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    RECORD_FUNCTION("clip::attention_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &qkv = saved[0], &probs = saved[1];
    const bool causal = ctx->saved_data["causal"].toBool();
    const auto heads = ctx->saved_data["heads"].toInt();
    const Shape s(qkv, heads, ctx->saved_data["small_gemm"].toBool());  // the path the forward took
    const auto L = s.length, P = s.padded, W = s.width;
    const torch::Tensor dout = grads[0].contiguous();
    // One gradient for the packed input, so the projection before gets it
    // without a copy.
    torch::Tensor dqkv = torch::empty_like(qkv);
    const float *xp = qkv.data_ptr<float>(), *pp = probs.data_ptr<float>(), *gp = dout.data_ptr<float>();
    float* dp = dqkv.data_ptr<float>();
    const SingleThreadedBlas one_thread;
    for_each_head(s, causal, one_thread.threads(), [&](HeadProducts& products, std::int64_t b, std::int64_t h) {
      thread_local std::vector<float> ds;  // the score gradients of one head
      ds.resize(static_cast<std::size_t>(L * P));
      const float* p = pp + s.probs(b, h);
      const float *q = xp + s.head(b, h), *k = q + W, *v = q + 2 * W, *g = gp + s.out(b, h);
      float *dq = dp + s.head(b, h), *dk = dq + W, *dv = dq + 2 * W;
      products.grad_values(p, g, dv);
      products.grad_probs(g, v, ds.data());
      for (std::int64_t i = 0; i < L; ++i)
        softmax_row_backward(p + i * P, ds.data() + i * P, causal ? i + 1 : L, P, s.scale);
      products.grad_queries(ds.data(), k, dq);
      products.grad_keys(ds.data(), q, dk);
    });
    return {dqkv, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

namespace testing {
bool blas_attention = false;
}

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
  if (!(at::GradMode::is_enabled() && qkv.requires_grad())) return attention_inference(qkv, heads, causal);
  return Attention::apply(qkv, heads, causal);
}

}  // namespace clip::kernels
