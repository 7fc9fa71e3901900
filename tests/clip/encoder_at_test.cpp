// Encoder::forward_at, which runs the last layer for the one position a tower
// reads (the class token, the end-of-text token), against forward() read at
// that position: the same values and the same gradients for every parameter
// and the input, causal and not.
#include <algorithm>

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "clip/model.hpp"

namespace {

double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(1e-30, b.abs().max().item<double>());
}

struct Result {
  torch::Tensor out, input_grad;
  std::vector<torch::Tensor> param_grads;
};

template <typename F>
Result run(clip::Encoder& encoder, const torch::Tensor& x, const torch::Tensor& upstream, F f) {
  encoder->zero_grad();
  torch::Tensor leaf = x.detach().clone().requires_grad_();
  torch::Tensor out = f(leaf);
  out.backward(upstream);
  Result r{out.detach(), leaf.grad(), {}};
  for (const auto& p : encoder->parameters()) r.param_grads.push_back(p.grad().defined() ? p.grad().clone() : p.grad());
  return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(encoder_at)

// layers 0 (the input itself), 1 (only the shortened layer) and 3.
BOOST_DATA_TEST_CASE(matches_the_full_forward_at_those_positions,
                     boost::unit_test::data::make({0, 1, 3}) * boost::unit_test::data::make({false, true}), layers,
                     causal) {
  torch::manual_seed(7);
  const std::int64_t b = 5, l = 9, w = 32, heads = 2, mlp = 64;
  clip::Encoder encoder(w, heads, mlp, layers, 1e-5);
  const torch::Tensor x = torch::randn({b, l, w});
  const torch::Tensor at = torch::tensor({0, 8, 3, 3, 5}, torch::kLong);  // first, last, repeated
  const torch::Tensor upstream = torch::randn({b, w});
  const torch::Tensor batch = torch::arange(b, torch::kLong);

  const Result full = run(encoder, x, upstream, [&](const torch::Tensor& in) {
    return encoder->forward(in, causal).index({batch, at});
  });
  const Result short_cut = run(encoder, x, upstream, [&](const torch::Tensor& in) {
    return encoder->forward_at(in, at, causal);
  });
  BOOST_TEST(relative_error(short_cut.out, full.out) < 1e-5);
  BOOST_TEST(relative_error(short_cut.input_grad, full.input_grad) < 1e-5);
  const auto names = encoder->named_parameters().keys();
  BOOST_REQUIRE_EQUAL(short_cut.param_grads.size(), full.param_grads.size());
  double largest = 0;
  for (const auto& g : full.param_grads) largest = std::max(largest, g.abs().max().item<double>());
  for (std::size_t i = 0; i < full.param_grads.size(); ++i) {
    BOOST_TEST_CONTEXT(names[i]) {
      BOOST_REQUIRE(full.param_grads[i].defined());
      BOOST_REQUIRE(short_cut.param_grads[i].defined());
      if (names[i].find("k_proj.bias") != std::string::npos) {
        // Its true gradient is 0: the same vector added to every key moves
        // all of a query's scores by one amount, which the softmax ignores.
        // Both sides hold rounding noise only.
        BOOST_TEST(short_cut.param_grads[i].abs().max().item<double>() < 1e-5 * largest);
        BOOST_TEST(full.param_grads[i].abs().max().item<double>() < 1e-5 * largest);
      } else {
        BOOST_TEST(relative_error(short_cut.param_grads[i], full.param_grads[i]) < 1e-4);
      }
    }
  }
}

// The text tower leaves out the tokens after the batch's last end of text
// (causal attention: they reach no feature) and runs its last layer for the
// end-of-text token only; against the whole 77-token forward read there.
BOOST_AUTO_TEST_CASE(the_text_tower_matches_its_full_computation) {
  torch::manual_seed(11);
  clip::TextConfig c = clip::preset("tiny").text;
  clip::TextTransformer text(c);
  torch::Tensor ids = torch::randint(1, c.vocab_size - 1, {3, c.max_positions}, torch::kLong);
  const torch::Tensor eot = torch::tensor({3, 12, 6}, torch::kLong);
  const torch::Tensor batch = torch::arange(3, torch::kLong);
  ids.index_put_({batch, eot}, c.vocab_size - 1);  // the largest id, as <|endoftext|>
  const torch::Tensor upstream = torch::randn({3, c.hidden_size});

  auto grads_of = [&](const torch::Tensor& out) {
    text->zero_grad();
    out.backward(upstream);
    std::vector<torch::Tensor> g;
    for (const auto& p : text->parameters()) g.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    return g;
  };
  const torch::Tensor full = text->final_layer_norm(
      text->encoder->forward(text->embeddings(ids), /*causal=*/true).index({batch, eot}));
  const auto full_grads = grads_of(full);
  const torch::Tensor fast = text(ids);
  const auto fast_grads = grads_of(fast);
  BOOST_TEST(relative_error(fast.detach(), full.detach()) < 1e-5);
  const auto names = text->named_parameters().keys();
  for (std::size_t i = 0; i < names.size(); ++i) {
    BOOST_TEST_CONTEXT(names[i]) {
      if (names[i].find("k_proj.bias") != std::string::npos) continue;  // 0 in truth, noise on both sides (above)
      BOOST_TEST(relative_error(fast_grads[i], full_grads[i]) < 1e-4);
    }
  }
  // The tokens after the last end of text got no gradient on either side.
  const torch::Tensor positions = text->embeddings->position_embedding->weight;
  const auto at = std::find(names.begin(), names.end(), "embeddings.position_embedding.weight") - names.begin();
  BOOST_TEST(fast_grads[at].narrow(0, 13, positions.size(0) - 13).abs().max().item<double>() == 0.0);
}

BOOST_AUTO_TEST_CASE(positions_must_fit_the_batch_and_the_length) {
  clip::Encoder encoder(32, 2, 64, 1, 1e-5);
  const torch::Tensor x = torch::randn({2, 4, 32});
  BOOST_CHECK_THROW(encoder->forward_at(x, torch::tensor({0, 4}, torch::kLong)), c10::Error);      // past the end
  BOOST_CHECK_THROW(encoder->forward_at(x, torch::tensor({-1, 0}, torch::kLong)), c10::Error);     // negative
  BOOST_CHECK_THROW(encoder->forward_at(x, torch::tensor({0, 1, 2}, torch::kLong)), c10::Error);   // not one per item
  BOOST_CHECK_THROW(encoder->forward_at(x, torch::tensor({0.0, 1.0})), c10::Error);                // not int64
}

BOOST_AUTO_TEST_SUITE_END()
