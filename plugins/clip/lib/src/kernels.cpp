#include "clip/kernels.hpp"

#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>
#include <cblas.h>

#include <dlfcn.h>

#include <cmath>
#include <vector>

#include "vector_math.hpp"

namespace clip::kernels {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;
using detail::fast_exp;
using detail::fast_sigmoid;

constexpr float kGeluSlope = 1.702f;

bool fusable(const torch::Tensor& t) {
  return t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.layout() == torch::kStrided;
}

// ---- column sums -------------------------------------------------------------

// The gradients of biases and LayerNorm weights are sums over thousands of
// rows. Summed in float partials over blocks of kBlockRows rows and the
// blocks in double: close to a double sum's accuracy without converting
// every element to double.
constexpr std::int64_t kBlockRows = 32;

CLIP_VECTOR_CLONES void add_and_clear(float* partial, double* total, std::int64_t n) {
  for (std::int64_t j = 0; j < n; ++j) {
    total[j] += partial[j];
    partial[j] = 0;
  }
}

class ColumnSums {
 public:
  explicit ColumnSums(std::int64_t cols) : partial_(static_cast<std::size_t>(cols)), total_(static_cast<std::size_t>(cols)) {}
  float* partial() { return partial_.data(); }
  void flush() { add_and_clear(partial_.data(), total_.data(), static_cast<std::int64_t>(total_.size())); }
  torch::Tensor result() {
    flush();
    return torch::tensor(std::vector<float>(total_.begin(), total_.end()));
  }

 private:
  std::vector<float> partial_;
  std::vector<double> total_;
};

// ---- quick_gelu --------------------------------------------------------------

// y = u s(a u), u = x + bias (bias over the last dimension, `cols` wide).
CLIP_VECTOR_CLONES void gelu_forward(const float* x, const float* bias, float* y, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    for (std::int64_t j = 0; j < cols; ++j) {
      const float u = xr[j] + bias[j];
      yr[j] = u * fast_sigmoid(kGeluSlope * u);
    }
  }
}

// d/du u s(au) = s + a u s (1 - s), the sigmoid recomputed rather than stored;
// the bias gradient (the column sums of dx) accumulated in the same pass.
CLIP_VECTOR_CLONES void gelu_backward(const float* x, const float* bias, const float* g, float* dx, float* dbias,
                                      std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    const float* gr = g + r * cols;
    float* dr = dx + r * cols;
    for (std::int64_t j = 0; j < cols; ++j) {
      const float u = xr[j] + bias[j];
      const float s = fast_sigmoid(kGeluSlope * u);
      dr[j] = gr[j] * (s + kGeluSlope * u * s * (1.0f - s));
      dbias[j] += dr[j];
    }
  }
}

struct QuickGelu : torch::autograd::Function<QuickGelu> {
  // Without a bias the caller passes a zero row and has_bias false (apply
  // takes no undefined tensors); that row then gets no gradient.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& input, const torch::Tensor& bias,
                               bool has_bias) {
    RECORD_FUNCTION("clip::quick_gelu", std::vector<c10::IValue>());
    torch::Tensor x = input.contiguous();
    const torch::Tensor b = bias.contiguous();
    torch::Tensor y = torch::empty_like(x);
    const std::int64_t cols = b.numel(), rows = cols == 0 ? 0 : x.numel() / cols;
    gelu_forward(x.data_ptr<float>(), b.data_ptr<float>(), y.data_ptr<float>(), rows, cols);
    ctx->save_for_backward({x, b});
    ctx->saved_data["has_bias"] = has_bias;
    return y;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    RECORD_FUNCTION("clip::quick_gelu_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &x = saved[0], &b = saved[1];
    const torch::Tensor g = grads[0].contiguous();
    const std::int64_t cols = b.numel(), rows = cols == 0 ? 0 : x.numel() / cols;
    torch::Tensor dx = torch::empty_like(x);
    ColumnSums dbias(cols);
    for (std::int64_t r = 0; r < rows; r += kBlockRows) {
      const std::int64_t at = r * cols;
      gelu_backward(x.data_ptr<float>() + at, b.data_ptr<float>(), g.data_ptr<float>() + at, dx.data_ptr<float>() + at,
                    dbias.partial(), std::min(kBlockRows, rows - r), cols);
      dbias.flush();
    }
    if (!ctx->saved_data["has_bias"].toBool()) return {dx, torch::Tensor(), torch::Tensor()};
    return {dx, dbias.result(), torch::Tensor()};
  }
};

// ---- residual add + LayerNorm ----------------------------------------------

// Sums of a row with 16 independent accumulators, a shape GCC vectorises
// without reassociating (it may not reorder one float sum).
constexpr std::int64_t kLanes = 16;

// Forward of one row: s = x + r, then mean, rstd and the normalized row.
CLIP_VECTOR_CLONES void add_layer_norm_row(const float* x, const float* r, const float* weight, const float* bias,
                                           float* sum, float* out, std::int64_t w, float eps, float* mean_out,
                                           float* rstd_out) {
  float acc[kLanes] = {};
  std::int64_t j = 0;
  for (; j + kLanes <= w; j += kLanes)
    for (std::int64_t k = 0; k < kLanes; ++k) {
      sum[j + k] = x[j + k] + r[j + k];
      acc[k] += sum[j + k];
    }
  float total = 0;
  for (; j < w; ++j) {
    sum[j] = x[j] + r[j];
    total += sum[j];
  }
  for (float a : acc) total += a;
  const float mean = total / static_cast<float>(w);
  float sq[kLanes] = {};
  j = 0;
  for (; j + kLanes <= w; j += kLanes)
    for (std::int64_t k = 0; k < kLanes; ++k) {
      const float d = sum[j + k] - mean;
      sq[k] += d * d;
    }
  float var = 0;
  for (; j < w; ++j) var += (sum[j] - mean) * (sum[j] - mean);
  for (float a : sq) var += a;
  const float rstd = 1.0f / std::sqrt(var / static_cast<float>(w) + eps);
  for (j = 0; j < w; ++j) out[j] = (sum[j] - mean) * rstd * weight[j] + bias[j];
  *mean_out = mean;
  *rstd_out = rstd;
}

// Backward of one row, given the gradient of the normalized row (dy) and of
// the sum itself (ds, from the residual path): dx = rstd (g - mean(g) -
// xhat mean(g xhat)) + ds with g = dy * weight; the weight and bias gradients
// accumulated into per-column double sums.
CLIP_VECTOR_CLONES void add_layer_norm_row_backward(const float* sum, const float* weight, const float* dy,
                                                    const float* ds, float* dx, float* dweight, float* dbias,
                                                    std::int64_t w, float mean, float rstd) {
  float acc_g[kLanes] = {}, acc_gx[kLanes] = {};
  std::int64_t j = 0;
  for (; j + kLanes <= w; j += kLanes)
    for (std::int64_t k = 0; k < kLanes; ++k) {
      const float xhat = (sum[j + k] - mean) * rstd;
      const float g = dy[j + k] * weight[j + k];
      acc_g[k] += g;
      acc_gx[k] += g * xhat;
      dweight[j + k] += dy[j + k] * xhat;
      dbias[j + k] += dy[j + k];
    }
  float total_g = 0, total_gx = 0;
  for (; j < w; ++j) {
    const float xhat = (sum[j] - mean) * rstd;
    const float g = dy[j] * weight[j];
    total_g += g;
    total_gx += g * xhat;
    dweight[j] += dy[j] * xhat;
    dbias[j] += dy[j];
  }
  for (std::int64_t k = 0; k < kLanes; ++k) {
    total_g += acc_g[k];
    total_gx += acc_gx[k];
  }
  const float mean_g = total_g / static_cast<float>(w), mean_gx = total_gx / static_cast<float>(w);
  for (j = 0; j < w; ++j) {
    const float xhat = (sum[j] - mean) * rstd;
    dx[j] = rstd * (dy[j] * weight[j] - mean_g - xhat * mean_gx) + ds[j];
  }
}

struct AddLayerNorm : torch::autograd::Function<AddLayerNorm> {
  static tensor_list forward(AutogradContext* ctx, const torch::Tensor& x_in, const torch::Tensor& r_in,
                             const torch::Tensor& weight_in, const torch::Tensor& bias_in, double eps) {
    RECORD_FUNCTION("clip::add_layer_norm", std::vector<c10::IValue>());
    const torch::Tensor x = x_in.contiguous(), r = r_in.contiguous();
    const torch::Tensor weight = weight_in.contiguous(), bias = bias_in.contiguous();
    const std::int64_t w = x.size(-1), rows = x.numel() / w;
    torch::Tensor sum = torch::empty_like(x), out = torch::empty_like(x);
    torch::Tensor stats = torch::empty({rows, 2}, x.options());  // mean, rstd
    const float *xp = x.data_ptr<float>(), *rp = r.data_ptr<float>();
    float *sp = sum.data_ptr<float>(), *op = out.data_ptr<float>(), *st = stats.data_ptr<float>();
    for (std::int64_t i = 0; i < rows; ++i)
      add_layer_norm_row(xp + i * w, rp + i * w, weight.data_ptr<float>(), bias.data_ptr<float>(), sp + i * w,
                         op + i * w, w, static_cast<float>(eps), st + 2 * i, st + 2 * i + 1);
    ctx->save_for_backward({sum, weight, stats});
    return {sum, out};
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    RECORD_FUNCTION("clip::add_layer_norm_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &sum = saved[0], &weight = saved[1], &stats = saved[2];
    const std::int64_t w = sum.size(-1), rows = sum.numel() / w;
    // Either output may have had no use downstream.
    const torch::Tensor ds = grads[0].defined() ? grads[0].contiguous() : torch::zeros_like(sum);
    const torch::Tensor dy = grads[1].defined() ? grads[1].contiguous() : torch::zeros_like(sum);
    torch::Tensor dx = torch::empty_like(sum);
    ColumnSums dweight(w), dbias(w);
    const float* st = stats.data_ptr<float>();
    for (std::int64_t i = 0; i < rows; ++i) {
      add_layer_norm_row_backward(sum.data_ptr<float>() + i * w, weight.data_ptr<float>(), dy.data_ptr<float>() + i * w,
                                  ds.data_ptr<float>() + i * w, dx.data_ptr<float>() + i * w, dweight.partial(),
                                  dbias.partial(), w, st[2 * i], st[2 * i + 1]);
      if ((i + 1) % kBlockRows == 0) {
        dweight.flush();
        dbias.flush();
      }
    }
    return {dx, dx, dweight.result(), dbias.result(), torch::Tensor()};
  }
};

// ---- attention ---------------------------------------------------------------

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
  explicit Shape(const torch::Tensor& q, std::int64_t h)
      : batch(q.size(0)), length(q.size(1)), width(q.size(2)), heads(h), dim(q.size(2) / h) {}
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
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    torch::Tensor probs = torch::empty({s.batch, heads, L, L}, q.options());
    torch::Tensor out = torch::empty_like(q);
    const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
    float *pp = probs.data_ptr<float>(), *op = out.data_ptr<float>();
    const SingleThreadedBlas one_thread;
    for (std::int64_t b = 0; b < s.batch; ++b) {
      for (std::int64_t h = 0; h < heads; ++h) {
        float* p = pp + s.probs(b, h);
        gemm(false, true, L, L, D, scale, qp + s.head(b, h), W, kp + s.head(b, h), W, 0, p, L);
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
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
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
        for (std::int64_t i = 0; i < L; ++i) softmax_row_backward(p + i * L, ds.data() + i * L, causal ? i + 1 : L, L, scale);
        gemm(false, false, L, D, L, 1, ds.data(), L, kp + at, W, 0, dqp + at, W);  // dq = ds k
        gemm(true, false, L, D, L, 1, ds.data(), L, qp + at, W, 0, dkp + at, W);   // dk = ds^T q
      }
    }
    return {dq, dk, dv, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor quick_gelu_reference(const torch::Tensor& x, const torch::Tensor& bias) {
  const torch::Tensor u = bias.defined() ? x + bias : x;
  return u * torch::sigmoid(kGeluSlope * u);
}

std::tuple<torch::Tensor, torch::Tensor> add_layer_norm_reference(const torch::Tensor& x, const torch::Tensor& r,
                                                                  const torch::Tensor& weight,
                                                                  const torch::Tensor& bias, double eps) {
  torch::Tensor sum = x + r;
  return {sum, torch::layer_norm(sum, {x.size(-1)}, weight, bias, eps)};
}

torch::Tensor attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  std::int64_t heads, bool causal) {
  const auto b = q.size(0), l = q.size(1), w = q.size(2), d = w / heads;
  auto split = [&](const torch::Tensor& t) { return t.reshape({b, l, heads, d}).transpose(1, 2); };
  torch::Tensor scores = torch::matmul(split(q) * (1.0 / std::sqrt(static_cast<double>(d))), split(k).transpose(-2, -1));
  if (causal)
    scores = scores + torch::full({l, l}, -std::numeric_limits<float>::infinity(), q.options()).triu(1);
  return torch::matmul(torch::softmax(scores, -1), split(v)).transpose(1, 2).reshape({b, l, w});
}

torch::Tensor quick_gelu(const torch::Tensor& x, const torch::Tensor& bias) {
  if (bias.defined())
    TORCH_CHECK(bias.dim() == 1 && x.dim() >= 1 && bias.size(0) == x.size(-1), "quick_gelu's bias of shape ",
                bias.sizes(), " does not match the last dimension of ", x.sizes());
  const bool fused = fusable(x) && (!bias.defined() || fusable(bias)) && x.dim() >= 1 && x.numel() > 0;
  if (!fused) return quick_gelu_reference(x, bias);
  return bias.defined() ? QuickGelu::apply(x, bias, true) : QuickGelu::apply(x, torch::zeros({x.size(-1)}, x.options()), false);
}

std::tuple<torch::Tensor, torch::Tensor> add_layer_norm(const torch::Tensor& x, const torch::Tensor& r,
                                                        const torch::Tensor& weight, const torch::Tensor& bias,
                                                        double eps) {
  TORCH_CHECK(x.dim() >= 1 && x.sizes() == r.sizes() && weight.dim() == 1 && bias.dim() == 1 &&
                  weight.size(0) == x.size(-1) && bias.size(0) == x.size(-1),
              "add_layer_norm takes x and r of one shape and a weight and bias as wide as their last dimension, got ",
              x.sizes(), ", ", r.sizes(), ", ", weight.sizes(), " and ", bias.sizes());
  if (!(fusable(x) && fusable(r) && fusable(weight) && fusable(bias)) || x.numel() == 0)
    return add_layer_norm_reference(x, r, weight, bias, eps);
  auto out = AddLayerNorm::apply(x, r, weight, bias, eps);
  return {out[0], out[1]};
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
