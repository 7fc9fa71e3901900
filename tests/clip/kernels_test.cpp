// The fused kernels against the same computations in ATen operators: values
// and gradients, causal and not, at shapes the models use and at edges
// (one position, one head, extreme inputs), and the fallback for other dtypes.
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "clip/fused_adamw.hpp"
#include "clip/kernels.hpp"

namespace kernels = clip::kernels;

namespace {

// Largest |a - b| relative to the largest |b| (so tiny entries do not dominate).
double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(1e-30, b.abs().max().item<double>());
}

struct Grads {
  torch::Tensor out;
  std::vector<torch::Tensor> grads;
};

// Runs f on fresh leaf copies of inputs and backpropagates a fixed random
// upstream gradient.
template <typename F>
Grads run(F f, const std::vector<torch::Tensor>& inputs, const torch::Tensor& upstream) {
  std::vector<torch::Tensor> leaves;
  for (const auto& t : inputs) leaves.push_back(t.detach().clone().requires_grad_());
  torch::Tensor out = f(leaves);
  out.backward(upstream);
  Grads r{out.detach(), {}};
  for (const auto& l : leaves) r.grads.push_back(l.grad());
  return r;
}

void check_attention(std::int64_t b, std::int64_t l, std::int64_t w, std::int64_t heads, bool causal, double scale = 1) {
  BOOST_TEST_CONTEXT("b " << b << " l " << l << " w " << w << " heads " << heads << " causal " << causal << " scale "
                          << scale) {
    torch::manual_seed(b * 1000 + l * 10 + heads);
    // q and k scaled, v not: [q | k | v] packed as packed_linear makes it.
    torch::Tensor qkv = torch::randn({b, l, 3 * w}) * torch::cat({torch::full({2 * w}, scale), torch::ones({w})});
    torch::Tensor upstream = torch::randn({b, l, w});
    auto fused = run([&](auto& x) { return kernels::attention(x[0], heads, causal); }, {qkv}, upstream);
    // The truth: ATen's operators in double precision. With scores in the
    // hundreds the softmax saturates and float rounding alone reaches 1e-4 in
    // the gradients, so there the bound is twice ATen's own error in float.
    auto reference = run([&](auto& x) { return kernels::attention_reference(x[0], heads, causal); },
                         {qkv.to(torch::kDouble)}, upstream.to(torch::kDouble));
    auto aten_float = run([&](auto& x) { return kernels::attention_reference(x[0], heads, causal); }, {qkv}, upstream);
    BOOST_TEST(relative_error(fused.out, reference.out) < 1e-5);
    {
      // Inference (no gradient wanted) takes its own path: per-head scratch
      // probabilities, no autograd node. The same products in the same order.
      torch::InferenceMode inference;
      const torch::Tensor inferred = kernels::attention(qkv, heads, causal);
      BOOST_TEST(torch::equal(inferred, fused.out));
    }
    {
      torch::NoGradGuard no_grad;
      BOOST_TEST(torch::equal(kernels::attention(qkv, heads, causal), fused.out));
    }
    const auto fused_grads = fused.grads[0].chunk(3, -1), reference_grads = reference.grads[0].chunk(3, -1),
               aten_grads = aten_float.grads[0].chunk(3, -1);
    for (int i = 0; i < 3; ++i) {
      BOOST_TEST_CONTEXT("gradient of " << "qkv"[i]) {
        BOOST_TEST(torch::isfinite(fused_grads[i]).all().item<bool>());
        // ATen's own error moves with the BLAS kernels: with OpenBLAS's
        // AVX-512 ones it set a bound the saturated case (scale 30) met;
        // with its SSE3 ones (what it picks on a CPU model it does not know)
        // ATen erred less and the fused path's unchanged 1.2e-4 failed a
        // floor of 1e-4. Saturated scores get a floor of 2.5e-4.
        const double floor = scale > 1 ? 2.5e-4 : 1e-4;
        const double bound = std::max(floor, 2 * relative_error(aten_grads[i], reference_grads[i]));
        BOOST_TEST(relative_error(fused_grads[i], reference_grads[i]) < bound);
      }
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(kernels_parity)

BOOST_AUTO_TEST_CASE(quick_gelu_matches_aten_values_and_gradients) {
  torch::manual_seed(1);
  // Ordinary activations, and extremes where the exponential saturates.
  torch::Tensor x = torch::cat({torch::randn({4, 77, 2048}).view({-1}) * 3,
                                torch::tensor({-1000.0f, -90.0f, -52.0f, -10.0f, 0.0f, 1e-30f, 10.0f, 52.0f, 90.0f, 1000.0f})});
  torch::Tensor upstream = torch::randn_like(x);
  auto fused = run([](auto& v) { return kernels::quick_gelu(v[0]); }, {x}, upstream);
  auto reference = run([](auto& v) { return kernels::quick_gelu_reference(v[0]); }, {x}, upstream);
  BOOST_TEST(torch::isfinite(fused.out).all().item<bool>());
  BOOST_TEST(torch::isfinite(fused.grads[0]).all().item<bool>());
  BOOST_TEST(torch::allclose(fused.out, reference.out, 1e-5, 1e-6));
  BOOST_TEST(torch::allclose(fused.grads[0], reference.grads[0], 1e-5, 1e-6));
  // The saturated ends exactly: x for large x, 0 for very negative x; slope 1 and 0.
  BOOST_TEST(fused.out[-1].item<float>() == 1000.0f);
  BOOST_TEST(std::abs(fused.out[-10].item<float>()) < 1e-30);
}

BOOST_AUTO_TEST_CASE(quick_gelu_with_a_bias_gives_its_gradient_too) {
  torch::manual_seed(2);
  torch::Tensor x = torch::randn({6, 50, 3072}), bias = torch::randn({3072}), upstream = torch::randn({6, 50, 3072});
  auto fused = run([](auto& v) { return kernels::quick_gelu(v[0], v[1]); }, {x, bias}, upstream);
  auto reference = run([](auto& v) { return kernels::quick_gelu_reference(v[0], v[1]); }, {x, bias}, upstream);
  BOOST_TEST(torch::allclose(fused.out, reference.out, 1e-5, 1e-6));
  BOOST_TEST(torch::allclose(fused.grads[0], reference.grads[0], 1e-5, 1e-6));
  BOOST_TEST(relative_error(fused.grads[1], reference.grads[1]) < 1e-5);  // column sums over 300 rows
  BOOST_CHECK_THROW(kernels::quick_gelu(x, torch::randn({3071})), c10::Error);
}

BOOST_AUTO_TEST_CASE(quick_gelu_of_a_non_contiguous_tensor) {
  torch::Tensor x = torch::randn({64, 48}).t();
  BOOST_TEST(torch::allclose(kernels::quick_gelu(x), kernels::quick_gelu_reference(x), 1e-5, 1e-6));
}

BOOST_AUTO_TEST_CASE(add_layer_norm_matches_aten_values_and_gradients) {
  for (std::int64_t w : {768, 512, 128, 24, 7}) {  // widths with and without a 16-wide remainder
    BOOST_TEST_CONTEXT("width " << w) {
      torch::manual_seed(w);
      // An offset and scale so the mean and variance are not the trivial ones.
      std::vector<torch::Tensor> in = {torch::randn({3, 11, w}) * 2 + 1, torch::randn({3, 11, w}),
                                       torch::randn({w}), torch::randn({w})};
      torch::Tensor up_sum = torch::randn({3, 11, w}), up_norm = torch::randn({3, 11, w});
      auto both = [&](auto f) {
        return run([&](auto& v) {
          auto [sum, normed] = f(v[0], v[1], v[2], v[3], 1e-5, torch::Tensor());
          // One scalar using both outputs, weighted by fixed upstream gradients.
          return (sum * up_sum).sum() + (normed * up_norm).sum();
        }, in, torch::ones({}));
      };
      auto fused = both(kernels::add_layer_norm);
      auto reference = both(kernels::add_layer_norm_reference);
      BOOST_TEST(std::abs(fused.out.item<double>() - reference.out.item<double>()) < 1e-3);
      auto [sum, normed] = kernels::add_layer_norm(in[0], in[1], in[2], in[3], 1e-5);
      auto [ref_sum, ref_normed] = kernels::add_layer_norm_reference(in[0], in[1], in[2], in[3], 1e-5);
      BOOST_TEST(torch::equal(sum, ref_sum));
      BOOST_TEST(relative_error(normed, ref_normed) < 1e-5);
      for (int i = 0; i < 4; ++i)
        BOOST_TEST_CONTEXT("gradient of input " << i) { BOOST_TEST(relative_error(fused.grads[i], reference.grads[i]) < 1e-5); }
    }
  }
}

// With the residual branch's bias folded in: the same as adding it first.
BOOST_AUTO_TEST_CASE(add_layer_norm_with_the_residual_branchs_bias) {
  for (std::int64_t w : {768, 24}) {
    BOOST_TEST_CONTEXT("width " << w) {
      torch::manual_seed(w + 1);
      std::vector<torch::Tensor> in = {torch::randn({5, 33, w}) * 2 + 1, torch::randn({5, 33, w}), torch::randn({w}),
                                       torch::randn({w}), torch::randn({w}) * 3};
      torch::Tensor up_sum = torch::randn({5, 33, w}), up_norm = torch::randn({5, 33, w});
      auto both = [&](auto f) {
        return run([&](auto& v) {
          auto [sum, normed] = f(v[0], v[1], v[2], v[3], 1e-5, v[4]);
          return (sum * up_sum).sum() + (normed * up_norm).sum();
        }, in, torch::ones({}));
      };
      auto fused = both(kernels::add_layer_norm);
      auto reference = both(kernels::add_layer_norm_reference);
      for (int i = 0; i < 5; ++i)
        BOOST_TEST_CONTEXT("gradient of input " << i) { BOOST_TEST(relative_error(fused.grads[i], reference.grads[i]) < 1e-5); }
      auto [sum, normed] = kernels::add_layer_norm(in[0], in[1], in[2], in[3], 1e-5, in[4]);
      auto [ref_sum, ref_normed] = kernels::add_layer_norm_reference(in[0], in[1], in[2], in[3], 1e-5, in[4]);
      BOOST_TEST(torch::equal(sum, ref_sum));
      BOOST_TEST(relative_error(normed, ref_normed) < 1e-5);
    }
  }
  torch::Tensor x = torch::randn({2, 8});
  BOOST_CHECK_THROW(kernels::add_layer_norm(x, x, torch::ones({8}), torch::zeros({8}), 1e-5, torch::ones({7})), c10::Error);
}

BOOST_AUTO_TEST_CASE(add_layer_norm_with_only_the_normalized_output_used) {
  std::vector<torch::Tensor> in = {torch::randn({4, 64}), torch::randn({4, 64}), torch::rand({64}), torch::randn({64})};
  torch::Tensor up = torch::randn({4, 64});
  auto fused = run([](auto& v) { return std::get<1>(kernels::add_layer_norm(v[0], v[1], v[2], v[3], 1e-5)); }, in, up);
  auto reference =
      run([](auto& v) { return std::get<1>(kernels::add_layer_norm_reference(v[0], v[1], v[2], v[3], 1e-5)); }, in, up);
  for (int i = 0; i < 4; ++i) BOOST_TEST(relative_error(fused.grads[i], reference.grads[i]) < 1e-5);
  BOOST_CHECK_THROW(kernels::add_layer_norm(in[0], in[1], torch::ones({63}), in[3], 1e-5), c10::Error);
}

// Both ways of running the per-head products: the AVX-512 small-GEMM kernel
// (where this CPU has it) and BLAS.
struct PerHeadProducts {
  explicit PerHeadProducts(bool blas) { kernels::testing::blas_attention = blas; }
  ~PerHeadProducts() { kernels::testing::blas_attention = false; }
};

BOOST_DATA_TEST_CASE(attention_matches_aten_at_the_models_shapes, boost::unit_test::data::make({false, true}), blas) {
  const PerHeadProducts path(blas);
  check_attention(3, 50, 768, 12, false);  // ViT-B/32's image tower
  check_attention(3, 77, 512, 8, true);    // its text tower
  check_attention(5, 17, 128, 2, false);   // the small preset
  check_attention(5, 77, 128, 2, true);
  check_attention(1, 197, 128, 2, false);  // ViT-B/16's 197 positions: score rows wider than one 64-column block
  check_attention(1, 197, 128, 2, true);
}

BOOST_DATA_TEST_CASE(attention_at_the_edges, boost::unit_test::data::make({false, true}), blas) {
  const PerHeadProducts path(blas);
  check_attention(2, 1, 64, 1, true);   // one position: softmax of one score
  check_attention(2, 1, 64, 1, false);
  check_attention(1, 9, 24, 3, true);   // odd sizes, tiny heads (8 columns: BLAS on either path)
  check_attention(2, 33, 64, 1, false);
  check_attention(2, 16, 96, 3, true);  // rows exactly one 16-column block: no padding
  check_attention(2, 20, 64, 2, true, 30);  // scores in the hundreds: softmax saturates, no NaN
}

BOOST_AUTO_TEST_CASE(attention_of_a_non_contiguous_projection) {
  torch::Tensor qkv = torch::randn({7, 2, 192}).transpose(0, 1);
  BOOST_TEST(relative_error(kernels::attention(qkv, 4, true), kernels::attention_reference(qkv, 4, true)) < 1e-5);
}

BOOST_AUTO_TEST_CASE(other_dtypes_take_the_aten_path) {
  torch::Tensor qkv = torch::randn({2, 5, 48}, torch::kDouble);
  torch::Tensor out = kernels::attention(qkv, 2, true);
  BOOST_TEST(out.scalar_type() == torch::kDouble);
  BOOST_TEST(torch::allclose(out, kernels::attention_reference(qkv, 2, true)));
  BOOST_TEST(kernels::quick_gelu(qkv).scalar_type() == torch::kDouble);
}

BOOST_AUTO_TEST_CASE(mismatched_shapes_are_an_error) {
  BOOST_CHECK_THROW(kernels::attention(torch::randn({2, 5, 16}), 2, false), c10::Error);  // not 3 x a width
  BOOST_CHECK_THROW(kernels::attention(torch::randn({2, 5, 48}), 3, false), c10::Error);  // 16 columns into 3 heads
  BOOST_CHECK_THROW(kernels::attention(torch::randn({5, 48}), 2, false), c10::Error);     // no batch dimension
}

// packed_linear against the three Linear layers it stands for: values with
// and without autograd (two code paths), and every weight's and bias's
// gradient.
BOOST_AUTO_TEST_CASE(packed_linear_matches_separate_layers) {
  torch::manual_seed(7);
  const std::int64_t in = 48;
  std::vector<torch::Tensor> inputs = {torch::randn({3, 11, in}), torch::randn({in, in}), torch::randn({32, in}),
                                       torch::randn({16, in}),    torch::randn({in}),     torch::randn({32}),
                                       torch::randn({16})};
  torch::Tensor upstream = torch::randn({3, 11, in + 32 + 16});
  auto packed = run([](auto& v) { return kernels::packed_linear(v[0], {v[1], v[2], v[3]}, {v[4], v[5], v[6]}); },
                    inputs, upstream);
  auto separate = run(
      [](auto& v) {
        return torch::cat({torch::linear(v[0], v[1], v[4]), torch::linear(v[0], v[2], v[5]), torch::linear(v[0], v[3], v[6])},
                          -1);
      },
      inputs, upstream);
  BOOST_TEST(relative_error(packed.out, separate.out) < 1e-5);
  for (int i = 0; i < 7; ++i) BOOST_TEST_CONTEXT("gradient of input " << i) {
      BOOST_TEST(relative_error(packed.grads[i], separate.grads[i]) < 1e-5);
    }
  torch::NoGradGuard inference;  // the path that writes each product into its columns
  torch::Tensor out = kernels::packed_linear(inputs[0], {inputs[1], inputs[2], inputs[3]}, {inputs[4], inputs[5], inputs[6]});
  BOOST_TEST(out.sizes() == upstream.sizes());
  BOOST_TEST(relative_error(out, separate.out) < 1e-5);
  // A non-contiguous input and weight on that path too.
  torch::Tensor xt = inputs[0].transpose(0, 1), wt = inputs[1].t();
  BOOST_TEST(relative_error(kernels::packed_linear(xt, {wt}, {inputs[4]}), torch::linear(xt, wt, inputs[4])) < 1e-5);
}

BOOST_AUTO_TEST_CASE(packed_linear_rejects_mismatched_layers) {
  torch::Tensor x = torch::randn({2, 8});
  BOOST_CHECK_THROW(kernels::packed_linear(x, {torch::randn({4, 7})}, {torch::randn({4})}), c10::Error);
  BOOST_CHECK_THROW(kernels::packed_linear(x, {torch::randn({4, 8})}, {torch::randn({5})}), c10::Error);
  BOOST_CHECK_THROW(kernels::packed_linear(x, {torch::randn({4, 8})}, {}), c10::Error);
}

// kernels::linear: without autograd, a few rows go through row products (one
// weight row's dot products with every input row, the weight rows split with
// a helper thread), or, for weights of 256 inputs or fewer and outputs in
// sixteens, up to 2048 rows through small_gemm over a transposed copy of the
// weight; everything else, and anything with a gradient, through at::matmul. Both against a double-precision product, over row counts on
// either side of the cut-over (32 rows; 80 with 512 inputs and more), input
// sizes that are and are not a multiple of a vector, and outputs too few to
// split.
namespace {

// OpenBLAS's thread count, set for one test and restored: the split over
// the helper runs only where BLAS is configured for two or more cores.
class BlasThreads {
 public:
  explicit BlasThreads(int n) {
    if (set_ && get_) {
      saved_ = get_();
      set_(n);
    }
  }
  ~BlasThreads() {
    if (saved_ > 0) set_(saved_);
  }
  BlasThreads(const BlasThreads&) = delete;
  BlasThreads& operator=(const BlasThreads&) = delete;
  bool available() const { return saved_ > 0; }

 private:
  using Set = void (*)(int);
  using Get = int (*)();
  Set set_ = reinterpret_cast<Set>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  Get get_ = reinterpret_cast<Get>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  int saved_ = 0;
};

double linear_error(const torch::Tensor& x, const torch::Tensor& w) {
  torch::NoGradGuard inference;
  const torch::Tensor expected = at::matmul(x.to(torch::kDouble), w.to(torch::kDouble).t());
  const torch::Tensor got = kernels::linear(x, w);
  if (got.sizes() != expected.sizes() || got.scalar_type() != x.scalar_type()) return 1e30;
  return relative_error(got.to(torch::kDouble), expected);
}

}  // namespace

BOOST_DATA_TEST_CASE(linear_matches_a_double_product,
                     boost::unit_test::data::make({1, 3, 12, 17, 32, 33, 50, 77, 80, 81, 300}) *
                         boost::unit_test::data::make({48, 50, 128, 512, 770}),
                     rows, in) {
  BlasThreads two(2);
  if (!two.available()) BOOST_TEST_MESSAGE("not OpenBLAS: the split over the helper thread is not exercised");
  torch::manual_seed(rows * 1000 + in);
  for (const std::int64_t out : {16, 40, 1536}) BOOST_TEST_CONTEXT(rows << " x " << in << " by " << out << " x " << in) {
      const torch::Tensor x = torch::randn({rows, in}), w = torch::randn({out, in});
      BOOST_TEST(linear_error(x, w) < 1e-5);
      // Batch dimensions, and a non-contiguous input and weight.
      BOOST_TEST(linear_error(x.reshape({1, rows, in}), w) < 1e-5);
      BOOST_TEST(linear_error(torch::randn({in, rows}).t(), torch::randn({in, out}).t()) < 1e-5);
    }
}

BOOST_AUTO_TEST_CASE(linear_keeps_the_gradient_where_autograd_records) {
  torch::manual_seed(3);
  const std::vector<torch::Tensor> inputs = {torch::randn({2, 6, 64}), torch::randn({96, 64})};
  const torch::Tensor upstream = torch::randn({2, 6, 96});
  auto ours = run([](auto& v) { return kernels::linear(v[0], v[1]); }, inputs, upstream);
  auto reference = run([](auto& v) { return torch::linear(v[0], v[1]); }, inputs, upstream);
  BOOST_TEST(relative_error(ours.out, reference.out) < 1e-5);
  for (int i = 0; i < 2; ++i) BOOST_TEST_CONTEXT("gradient of input " << i) {
      BOOST_TEST(relative_error(ours.grads[i], reference.grads[i]) < 1e-5);
    }
  // Other dtypes take ATen's product.
  torch::NoGradGuard inference;
  const torch::Tensor xd = torch::randn({4, 64}, torch::kDouble), wd = torch::randn({8, 64}, torch::kDouble);
  BOOST_TEST(relative_error(kernels::linear(xd, wd), at::matmul(xd, wd.t())) < 1e-12);
  BOOST_CHECK_THROW(kernels::linear(torch::randn({4, 64}), torch::randn({8, 63})), c10::Error);
}

// Weights of short rows (CLIP small's 128 inputs) go through a transposed
// copy kept beside the weight: it must follow the weight wherever it
// changes, and never answer for another weight.
BOOST_AUTO_TEST_CASE(linear_follows_its_weight_through_changes) {
  torch::manual_seed(11);
  torch::NoGradGuard inference;
  const torch::Tensor x = torch::randn({12, 128});
  torch::Tensor w = torch::randn({512, 128});
  BOOST_TEST(linear_error(x, w) < 1e-5);
  w.mul_(-3);  // in place, as an optimizer step or a load of new weights does
  BOOST_TEST(linear_error(x, w) < 1e-5);
  w.copy_(torch::randn({512, 128}));
  BOOST_TEST(linear_error(x, w) < 1e-5);
  w.set_(torch::randn({512, 128}));  // another storage under the same tensor
  BOOST_TEST(linear_error(x, w) < 1e-5);
  // A view made anew at each call (the patch embedding's reshape), and a
  // slice of rows of a bigger weight, which shares its storage.
  const torch::Tensor big = torch::randn({1024, 2, 64});
  BOOST_TEST(linear_error(x, big.reshape({1024, 128})) < 1e-5);
  BOOST_TEST(linear_error(x, big.reshape({1024, 128}).narrow(0, 512, 256)) < 1e-5);
  big.add_(1);
  BOOST_TEST(linear_error(x, big.reshape({1024, 128})) < 1e-5);
  // A training step between two evaluations, as the fine-tuning flow runs:
  // FusedAdamW writes the weight through its pointer.
  {
    torch::Tensor trained = torch::randn({512, 128}).requires_grad_();
    clip::FusedAdamW optimizer({trained}, torch::optim::AdamWOptions(0.1));
    BOOST_TEST(linear_error(x, trained) < 1e-5);
    const torch::Tensor before = trained.detach().clone();
    {
      torch::AutoGradMode training(true);
      (trained * trained).sum().backward();
    }
    optimizer.step();
    BOOST_TEST((trained - before).abs().max().item<double>() > 0.05);
    BOOST_TEST(linear_error(x, trained) < 1e-5);
  }
  // Either side of the cut-over to BLAS for short rows (2048 rows).
  BOOST_TEST(linear_error(torch::randn({2048, 128}), w) < 1e-5);
  BOOST_TEST(linear_error(torch::randn({2049, 128}), w) < 1e-5);
  // Weights made and freed one after another (their addresses are reused).
  for (int i = 0; i < 20; ++i) BOOST_TEST(linear_error(x, torch::randn({256, 128})) < 1e-5);
  // A weight made under InferenceMode has no version counter: still right.
  torch::Tensor frozen;
  {
    c10::InferenceMode mode;
    frozen = torch::randn({256, 128});
  }
  BOOST_TEST(linear_error(x, frozen) < 1e-5);
  BOOST_TEST(linear_error(torch::randn({300, 128}), frozen) < 1e-5);
}

// Products from several threads at once: one holds the helper, the others
// run alone; every result is right.
BOOST_AUTO_TEST_CASE(linear_from_several_threads_at_once) {
  BlasThreads two(2);
  torch::manual_seed(5);
  const torch::Tensor w = torch::randn({1536, 512});
  std::vector<torch::Tensor> xs;
  for (int t = 0; t < 4; ++t) xs.push_back(torch::randn({12, 512}));
  std::vector<double> errors(xs.size(), 1e30);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < xs.size(); ++t)
    threads.emplace_back([&, t] {
      double worst = 0;
      for (int i = 0; i < 50; ++i) worst = std::max(worst, linear_error(xs[t], w));
      errors[t] = worst;
    });
  for (auto& t : threads) t.join();
  for (double e : errors) BOOST_TEST(e < 1e-5);
}

// A child forked after the helper thread started has no such thread: its
// products must still complete, with their helper of its own; and the
// transposed copies made before the fork serve it too.
BOOST_AUTO_TEST_CASE(linear_in_a_forked_child) {
  BlasThreads two(2);
  torch::manual_seed(9);
  const torch::Tensor x = torch::randn({12, 512}), w = torch::randn({1536, 512});
  const torch::Tensor x_short = torch::randn({12, 128}), w_short = torch::randn({512, 128});
  BOOST_TEST(linear_error(x, w) < 1e-5);  // the parent's helper is running now
  BOOST_TEST(linear_error(x_short, w_short) < 1e-5);  // and w_short has a transposed copy
  const pid_t child = ::fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    alarm(60);  // a child that hung waiting for a helper would be killed, and fail below
    const bool right = linear_error(x, w) < 1e-5 && linear_error(x * 2, w) < 1e-5 &&
                       linear_error(x_short, w_short) < 1e-5 && linear_error(x_short, w_short * 2) < 1e-5;
    ::_exit(right ? 0 : 1);
  }
  int status = 0;
  BOOST_REQUIRE(::waitpid(child, &status, 0) == child);
  BOOST_TEST(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 0);
  BOOST_TEST(linear_error(x, w) < 1e-5);
}

BOOST_AUTO_TEST_SUITE_END()
