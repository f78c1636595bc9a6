// Per-sample lengths over the last (time) axis of a padded batch (ops/steps.h), differentiable
// and recorded by graph capture as the program ops mask_steps / mean_steps
// (autograd/functions_steps.cc). lengths i64 [B], each in [1, T]; no gradient flows to it.
#pragma once

#include "framework/tensor.h"

namespace finch {

// x [B, ..., T] with the steps t >= lengths[b] zeroed.
Tensor mask_steps(const Tensor& x, const Tensor& lengths);
// The mean of x [B, C, T] over each sample's valid steps -> [B, C]; undefined lengths: all T
// steps (the same f64 sum, so a padded-free batch gives the bits a batch with lengths gives).
Tensor mean_steps(const Tensor& x, const Tensor& lengths);

}  // namespace finch
