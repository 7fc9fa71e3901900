#pragma once
// The gather-with-grad check's batch, the same in the test (one process,
// the whole batch) and in gather_worker (each rank, its rows): two "towers"
// of one linear map each, a logit scale, and seeded inputs.
#include <torch/torch.h>

namespace docflow::testing {

struct GatherCase {
  static constexpr std::int64_t kBatch = 8, kIn = 6, kDim = 4;
  torch::Tensor w_image, w_text, scale, x_image, x_text;

  GatherCase() {
    torch::manual_seed(7);
    w_image = torch::randn({kIn, kDim}).requires_grad_(true);
    w_text = torch::randn({kIn, kDim}).requires_grad_(true);
    scale = torch::full({}, 2.0).requires_grad_(true);
    x_image = torch::randn({kBatch, kIn});
    x_text = torch::randn({kBatch, kIn});
  }
  // The parameters' gradients, in a fixed order (scale as one element).
  std::vector<torch::Tensor> gradients() const { return {w_image.grad(), w_text.grad(), scale.grad().reshape({1})}; }
};

}  // namespace docflow::testing
