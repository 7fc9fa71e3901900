#pragma once
// AdamW with the whole update of a parameter in one pass over its memory.
//
// LibTorch 1.13's AdamW runs each step as about eight ATen passes per
// parameter (decay, two moment updates, sqrt, divide, add eps, addcdiv), each
// reading and writing the parameter's size again: for ViT-B/32's 151 M
// parameters that is about 0.7 s of a 10 s step on one core. This subclass
// keeps AdamW's options, state (AdamWParamState, the same keys) and
// serialization, so a checkpoint written by one loads in the other, and
// computes the same update in one loop (PyTorch 2 added the same idea as
// `fused=True`). Anything the loop does not cover (amsgrad, non-float32 or
// non-CPU parameters, sparse gradients) takes LibTorch's own step.
#include <torch/optim/adamw.h>

namespace clip {

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

// Drops the gradients of every parameter the optimizer holds (PyTorch 2's
// zero_grad(set_to_none=True)): the next backward pass writes them fresh,
// where zeroed gradients cost a pass to zero and a pass to add into.
void clear_gradients(torch::optim::Optimizer& optimizer);

}  // namespace clip
