// Gather-with-grad, proven on two real processes over c10d/Gloo: with the
// gradient through the gather, two ranks with half a batch each give one
// process's gradients on the whole batch; without it, 1/N of them. The
// ranks average their gradients with GradientReducer as the trainer does:
// started from backward's hooks (with the gradient through the gather) or
// after backward (without), a lookup table's touched rows only, a
// parameter nothing reached as zeros.
#include <boost/test/unit_test.hpp>
#include <torch/torch.h>

#include "../support/run_command.hpp"
#include "../support/temp_dir.hpp"
#include "clip/loss.hpp"
#include "gather_case.hpp"
#include "cli/rank_launcher.hpp"

using docflow::testing::run_command;
using docflow::testing::TempDir;

namespace {

// One process on the whole batch, as gather_worker builds it.
std::vector<torch::Tensor> single_process_gradients() {
  docflow::testing::GatherCase c;
  clip::clip_loss(c.image_features(0, c.kBatch), c.text_features(0, c.kBatch), c.scale).backward();
  return c.gradients();
}

std::vector<torch::Tensor> two_rank_gradients(bool with_grad) {
  TempDir dir;
  const int port = docflow::cli::free_loopback_port();
  const std::string out = dir.file("grads.pt"), flag = with_grad ? "1" : "0";
  auto worker = [&](int rank) {
    return std::string(GATHER_WORKER) + " " + std::to_string(rank) + " 2 " + std::to_string(port) + " " + flag + " " + out;
  };
  // Both ranks at once; the shell waits for both and fails if either did.
  const auto r = run_command("(" + worker(1) + " & " + worker(0) + "; a=$?; wait $!; b=$?; exit $((a|b)))");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  std::vector<torch::Tensor> grads;
  torch::load(grads, out);
  return grads;
}

}  // namespace

BOOST_AUTO_TEST_CASE(two_ranks_gathering_with_gradients_give_one_process_gradients) {
  const auto reference = single_process_gradients();
  const auto two = two_rank_gradients(true);
  BOOST_REQUIRE(two.size() == reference.size());
  for (std::size_t i = 0; i < two.size(); ++i) {
    BOOST_TEST_MESSAGE("tensor " << i << ": max difference " << (two[i] - reference[i]).abs().max().item<double>());
    BOOST_TEST(torch::allclose(two[i], reference[i], 1e-5, 1e-6));
  }
}

BOOST_AUTO_TEST_CASE(without_the_gradient_through_the_gather_they_come_out_scaled_by_one_over_n) {
  const auto reference = single_process_gradients();
  const auto two = two_rank_gradients(false);
  BOOST_REQUIRE(two.size() == reference.size());
  // The towers' weights reach the loss through the gathered features: half.
  for (std::size_t i : {0, 1, 3}) {
    BOOST_TEST(!torch::allclose(two[i], reference[i], 1e-3, 1e-6));
    BOOST_TEST(torch::allclose(two[i], reference[i] / 2, 1e-5, 1e-6));
  }
  // The logit scale reaches it directly on every rank: whole.
  BOOST_TEST(torch::allclose(two[2], reference[2], 1e-5, 1e-6));
  BOOST_TEST(torch::equal(two[4], torch::zeros({3})));
}
