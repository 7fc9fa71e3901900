#pragma once
// The gather-with-grad check's batch, the same in the test (one process,
// the whole batch) and in gather_worker (each rank, its rows): two "towers"
// of one linear map each, the text one fed through a lookup table (an
// embedding: each example touches two of its rows, so the ranks touch
// different rows), a logit scale, a parameter nothing uses, and seeded
// inputs.
#include <torch/torch.h>

namespace docflow::testing {

struct GatherCase {
  static constexpr std::int64_t kBatch = 8, kIn = 6, kDim = 4, kVocab = 40;
  torch::Tensor w_image, w_text, scale, table, unused, x_image, x_text, tokens;

  GatherCase() {
    torch::manual_seed(7);
    w_image = torch::randn({kIn, kDim}).requires_grad_(true);
    w_text = torch::randn({kIn, kDim}).requires_grad_(true);
    scale = torch::full({}, 2.0).requires_grad_(true);
    x_image = torch::randn({kBatch, kIn});
    x_text = torch::randn({kBatch, kIn});
    table = torch::randn({kVocab, kIn}).requires_grad_(true);
    unused = torch::randn({3}).requires_grad_(true);
    tokens = torch::randint(kVocab, {kBatch, 2});
  }
  // Rows [from, from + n) of the batch through each tower.
  torch::Tensor image_features(std::int64_t from, std::int64_t n) const { return torch::matmul(x_image.narrow(0, from, n), w_image); }
  torch::Tensor text_features(std::int64_t from, std::int64_t n) const {
    const torch::Tensor looked_up = table.index_select(0, tokens.narrow(0, from, n).reshape({-1})).view({n, 2, kIn}).sum(1);
    return torch::matmul(x_text.narrow(0, from, n) + looked_up, w_text);
  }
  // The parameters in the order a model would register them.
  std::vector<torch::Tensor> parameters() const { return {unused, w_image, table, w_text, scale}; }
  // The parameters' gradients, in a fixed order (scale as one element; the
  // unused parameter's as zeros, what the ranks agree on).
  std::vector<torch::Tensor> gradients() const {
    return {w_image.grad(), w_text.grad(), scale.grad().reshape({1}), table.grad(),
            unused.grad().defined() ? unused.grad() : torch::zeros_like(unused)};
  }
};

}  // namespace docflow::testing
