#include <boost/test/unit_test.hpp>

#include <cmath>

#include "clip/error.hpp"
#include "clip/loss.hpp"

namespace tt = boost::test_tools;

BOOST_AUTO_TEST_SUITE(clip_loss)

BOOST_AUTO_TEST_CASE(hand_computed_case) {
  // Two orthogonal pairs, already unit length; scale exp(0) = 1.
  torch::Tensor img = torch::tensor({{1.0, 0.0}, {0.0, 1.0}}, torch::kDouble);
  torch::Tensor txt = torch::tensor({{1.0, 0.0}, {0.0, 1.0}}, torch::kDouble);
  torch::Tensor scale = torch::zeros({}, torch::kDouble);
  // logits = I: each row's cross-entropy is -log(e / (e + 1)) in both directions.
  const double expected = -std::log(std::exp(1.0) / (std::exp(1.0) + 1.0));
  BOOST_TEST(clip::clip_loss(img, txt, scale).item<double>() == expected, tt::tolerance(1e-12));
  // Scaling the features changes nothing (they are normalised); the scale does.
  BOOST_TEST(clip::clip_loss(img * 3, txt * 0.5, scale).item<double>() == expected, tt::tolerance(1e-12));
  torch::Tensor s2 = torch::full({}, std::log(2.0), torch::kDouble);
  const double sharper = -std::log(std::exp(2.0) / (std::exp(2.0) + 1.0));
  BOOST_TEST(clip::clip_loss(img, txt, s2).item<double>() == sharper, tt::tolerance(1e-12));
  BOOST_CHECK_THROW(clip::clip_loss(img, torch::zeros({3, 2}, torch::kDouble), scale), clip::Error);
}

BOOST_AUTO_TEST_CASE(gradient_matches_finite_differences) {
  torch::manual_seed(3);
  torch::Tensor img = torch::randn({4, 5}, torch::kDouble).requires_grad_(true);
  torch::Tensor txt = torch::randn({4, 5}, torch::kDouble).requires_grad_(true);
  torch::Tensor scale = torch::full({}, 0.7, torch::kDouble).requires_grad_(true);
  clip::clip_loss(img, txt, scale).backward();
  const double h = 1e-6;
  auto numeric = [&](torch::Tensor& t, std::int64_t flat) {
    torch::NoGradGuard no_grad;
    torch::Tensor view = t.view({-1});
    const double orig = view[flat].item<double>();
    view[flat] = orig + h;
    const double up = clip::clip_loss(img, txt, scale).item<double>();
    view[flat] = orig - h;
    const double down = clip::clip_loss(img, txt, scale).item<double>();
    view[flat] = orig;
    return (up - down) / (2 * h);
  };
  for (std::int64_t i = 0; i < 20; ++i) {
    BOOST_TEST(img.grad().view({-1})[i].item<double>() == numeric(img, i), tt::tolerance(1e-6));
    BOOST_TEST(txt.grad().view({-1})[i].item<double>() == numeric(txt, i), tt::tolerance(1e-6));
  }
  BOOST_TEST(scale.grad().item<double>() == numeric(scale, 0), tt::tolerance(1e-6));
}

BOOST_AUTO_TEST_CASE(scheduler_values_at_chosen_steps) {
  BOOST_TEST(clip::schedule_factor("constant", 5, 10, 100) == 1.0);
  BOOST_TEST(clip::schedule_factor("constant_with_warmup", 5, 10, 100) == 0.5);
  BOOST_TEST(clip::schedule_factor("constant_with_warmup", 50, 10, 100) == 1.0);
  BOOST_TEST(clip::schedule_factor("linear", 0, 10, 100) == 0.0);
  BOOST_TEST(clip::schedule_factor("linear", 10, 10, 100) == 1.0);
  BOOST_TEST(clip::schedule_factor("linear", 55, 10, 100) == 0.5);
  BOOST_TEST(clip::schedule_factor("linear", 100, 10, 100) == 0.0);
  BOOST_TEST(clip::schedule_factor("cosine", 10, 10, 100) == 1.0);
  BOOST_TEST(clip::schedule_factor("cosine", 55, 10, 100) == 0.5, tt::tolerance(1e-12));
  BOOST_TEST(clip::schedule_factor("cosine", 100, 10, 100) == 0.0, tt::tolerance(1e-12));
  BOOST_CHECK_THROW(clip::schedule_factor("exponential", 1, 0, 10), clip::Error);
}

BOOST_AUTO_TEST_SUITE_END()
