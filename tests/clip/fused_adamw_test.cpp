// FusedAdamW against LibTorch's AdamW: the same parameters after several
// steps, checkpoints that load across the two, the fallback paths.
#include <boost/test/unit_test.hpp>

#include "../support/temp_dir.hpp"
#include "clip/fused_adamw.hpp"

namespace {

// Two groups as the trainer builds them: matrices with decay, vectors without.
std::vector<torch::Tensor> make_parameters() {
  torch::manual_seed(3);
  return {torch::randn({64, 48}).requires_grad_(), torch::randn({48}).requires_grad_(),
          torch::randn({5, 7, 3}).requires_grad_(), torch::randn({1}).requires_grad_()};
}

template <typename Optimizer>
std::unique_ptr<Optimizer> make_optimizer(const std::vector<torch::Tensor>& p, bool amsgrad = false) {
  auto options = [&](double decay) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(1e-2).betas({0.9, 0.98}).eps(1e-6).weight_decay(decay).amsgrad(amsgrad));
  };
  return std::make_unique<Optimizer>(std::vector<torch::optim::OptimizerParamGroup>{
      torch::optim::OptimizerParamGroup({p[0], p[2]}, options(0.1)),
      torch::optim::OptimizerParamGroup({p[1], p[3]}, options(0.0))});
}

// Gradients of a fixed function of the parameters (different at every step
// since the parameters move); `skip` leaves one parameter without a gradient.
void backward(const std::vector<torch::Tensor>& p, int skip = -1) {
  torch::Tensor loss = torch::zeros({});
  for (std::size_t i = 0; i < p.size(); ++i)
    if (static_cast<int>(i) != skip) loss = loss + (p[i].sin() * p[i] * static_cast<double>(i + 1)).sum();
  loss.backward();
}

template <typename Optimizer>
void steps(Optimizer& opt, const std::vector<torch::Tensor>& p, int n, int skip = -1) {
  for (int i = 0; i < n; ++i) {
    clip::clear_gradients(opt);
    backward(p, skip);
    opt.step();
  }
}

double max_difference(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>());
  return worst;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fused_adamw)

BOOST_AUTO_TEST_CASE(follows_libtorch_adamw_step_for_step) {
  auto fused_p = make_parameters(), plain_p = make_parameters();
  auto fused = make_optimizer<clip::FusedAdamW>(fused_p);
  auto plain = make_optimizer<torch::optim::AdamW>(plain_p);
  const auto start = make_parameters();
  steps(*fused, fused_p, 20);
  steps(*plain, plain_p, 20);
  BOOST_TEST(max_difference(fused_p, start) > 0.05);        // it did move the parameters
  BOOST_TEST(max_difference(fused_p, plain_p) < 1e-5);      // the way AdamW does
}

BOOST_AUTO_TEST_CASE(a_step_counts_as_a_change_of_each_parameter_it_moves) {
  // As LibTorch's in-place ops: autograd's saved-tensor checks and the
  // kernels' copies of a weight go by the version counter.
  auto fused_p = make_parameters(), plain_p = make_parameters();
  auto fused = make_optimizer<clip::FusedAdamW>(fused_p);
  auto plain = make_optimizer<torch::optim::AdamW>(plain_p);
  std::vector<std::int64_t> before;
  for (const auto& t : fused_p) before.push_back(t._version());
  steps(*fused, fused_p, 1, /*skip=*/3);
  steps(*plain, plain_p, 1, /*skip=*/3);
  for (std::size_t i = 0; i < fused_p.size(); ++i) BOOST_TEST_CONTEXT("parameter " << i) {
      BOOST_TEST((fused_p[i]._version() > before[i]) == (plain_p[i]._version() > before[i]));
      BOOST_TEST((fused_p[i]._version() > before[i]) == (i != 3));
    }
}

BOOST_AUTO_TEST_CASE(a_parameter_without_gradient_is_left_alone) {
  auto p = make_parameters();
  auto opt = make_optimizer<clip::FusedAdamW>(p);
  const torch::Tensor before = p[2].detach().clone();
  steps(*opt, p, 3, /*skip=*/2);
  BOOST_TEST(torch::equal(p[2], before));  // no decay applied either, as in AdamW
  BOOST_TEST(!p[2].grad().defined());
}

BOOST_AUTO_TEST_CASE(checkpoints_load_across_fused_and_libtorch_adamw) {
  docflow::testing::TempDir dir;
  const std::string file = (dir.path() / "optimizer.pt").string();
  auto fused_p = make_parameters();
  auto fused = make_optimizer<clip::FusedAdamW>(fused_p);
  steps(*fused, fused_p, 5);
  torch::save(*fused, file);

  // Resume the same parameters under LibTorch's AdamW and under FusedAdamW.
  std::vector<torch::Tensor> a, b;
  for (const auto& t : fused_p) {
    a.push_back(t.detach().clone().requires_grad_());
    b.push_back(t.detach().clone().requires_grad_());
  }
  auto plain = make_optimizer<torch::optim::AdamW>(a);
  auto fused_again = make_optimizer<clip::FusedAdamW>(b);
  torch::load(*plain, file);
  torch::load(*fused_again, file);
  steps(*plain, a, 5);
  steps(*fused_again, b, 5);
  steps(*fused, fused_p, 5);  // the uninterrupted run
  BOOST_TEST(max_difference(a, fused_p) < 1e-5);
  BOOST_TEST(max_difference(b, fused_p) == 0.0);  // bit for bit: same loop, same state
}

BOOST_AUTO_TEST_CASE(amsgrad_takes_libtorchs_step) {
  auto fused_p = make_parameters(), plain_p = make_parameters();
  auto fused = make_optimizer<clip::FusedAdamW>(fused_p, /*amsgrad=*/true);
  auto plain = make_optimizer<torch::optim::AdamW>(plain_p, /*amsgrad=*/true);
  steps(*fused, fused_p, 5);
  steps(*plain, plain_p, 5);
  BOOST_TEST(max_difference(fused_p, plain_p) == 0.0);
}

BOOST_AUTO_TEST_CASE(clear_gradients_drops_them) {
  auto p = make_parameters();
  auto opt = make_optimizer<clip::FusedAdamW>(p);
  backward(p);
  BOOST_TEST(p[0].grad().defined());
  clip::clear_gradients(*opt);
  for (const auto& t : p) BOOST_TEST(!t.grad().defined());
}

BOOST_AUTO_TEST_SUITE_END()
