// The fused kernels against the same computations in ATen operators: values
// and gradients, causal and not, at shapes the models use and at edges
// (one position, one head, extreme inputs), and the fallback for other dtypes.
#include <boost/test/unit_test.hpp>

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
    std::vector<torch::Tensor> qkv = {torch::randn({b, l, w}) * scale, torch::randn({b, l, w}) * scale,
                                      torch::randn({b, l, w})};
    torch::Tensor upstream = torch::randn({b, l, w});
    auto fused = run([&](auto& x) { return kernels::attention(x[0], x[1], x[2], heads, causal); }, qkv, upstream);
    auto reference =
        run([&](auto& x) { return kernels::attention_reference(x[0], x[1], x[2], heads, causal); }, qkv, upstream);
    BOOST_TEST(relative_error(fused.out, reference.out) < 1e-5);
    for (int i = 0; i < 3; ++i) {
      BOOST_TEST_CONTEXT("gradient of input " << i) {
        BOOST_TEST(torch::isfinite(fused.grads[i]).all().item<bool>());
        BOOST_TEST(relative_error(fused.grads[i], reference.grads[i]) < 1e-4);
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
          auto [sum, normed] = f(v[0], v[1], v[2], v[3], 1e-5);
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

BOOST_AUTO_TEST_CASE(add_layer_norm_with_only_the_normalized_output_used) {
  std::vector<torch::Tensor> in = {torch::randn({4, 64}), torch::randn({4, 64}), torch::rand({64}), torch::randn({64})};
  torch::Tensor up = torch::randn({4, 64});
  auto fused = run([](auto& v) { return std::get<1>(kernels::add_layer_norm(v[0], v[1], v[2], v[3], 1e-5)); }, in, up);
  auto reference =
      run([](auto& v) { return std::get<1>(kernels::add_layer_norm_reference(v[0], v[1], v[2], v[3], 1e-5)); }, in, up);
  for (int i = 0; i < 4; ++i) BOOST_TEST(relative_error(fused.grads[i], reference.grads[i]) < 1e-5);
  BOOST_CHECK_THROW(kernels::add_layer_norm(in[0], in[1], torch::ones({63}), in[3], 1e-5), c10::Error);
}

BOOST_AUTO_TEST_CASE(attention_matches_aten_at_the_models_shapes) {
  check_attention(3, 50, 768, 12, false);  // ViT-B/32's image tower
  check_attention(3, 77, 512, 8, true);    // its text tower
  check_attention(5, 17, 128, 2, false);   // the small preset
  check_attention(5, 77, 128, 2, true);
}

BOOST_AUTO_TEST_CASE(attention_at_the_edges) {
  check_attention(2, 1, 64, 1, true);   // one position: softmax of one score
  check_attention(2, 1, 64, 1, false);
  check_attention(1, 9, 24, 3, true);   // odd sizes, tiny heads
  check_attention(2, 33, 64, 1, false);
  check_attention(2, 20, 64, 2, true, 30);  // scores in the hundreds: softmax saturates, no NaN
}

BOOST_AUTO_TEST_CASE(attention_of_non_contiguous_projections) {
  torch::Tensor q = torch::randn({7, 2, 64}).transpose(0, 1), k = torch::randn({2, 7, 64}), v = torch::randn({2, 7, 64});
  BOOST_TEST(relative_error(kernels::attention(q, k, v, 4, true), kernels::attention_reference(q, k, v, 4, true)) < 1e-5);
}

BOOST_AUTO_TEST_CASE(other_dtypes_take_the_aten_path) {
  torch::Tensor q = torch::randn({2, 5, 16}, torch::kDouble), k = torch::randn({2, 5, 16}, torch::kDouble),
                v = torch::randn({2, 5, 16}, torch::kDouble);
  torch::Tensor out = kernels::attention(q, k, v, 2, true);
  BOOST_TEST(out.scalar_type() == torch::kDouble);
  BOOST_TEST(torch::allclose(out, kernels::attention_reference(q, k, v, 2, true)));
  BOOST_TEST(kernels::quick_gelu(q).scalar_type() == torch::kDouble);
}

BOOST_AUTO_TEST_CASE(mismatched_shapes_are_an_error) {
  torch::Tensor a = torch::randn({2, 5, 16}), b = torch::randn({2, 6, 16});
  BOOST_CHECK_THROW(kernels::attention(a, b, a, 2, false), c10::Error);
  BOOST_CHECK_THROW(kernels::attention(a, a, a, 3, false), c10::Error);  // 16 columns into 3 heads
}

BOOST_AUTO_TEST_SUITE_END()
