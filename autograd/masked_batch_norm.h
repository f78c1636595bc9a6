// Training-mode batch norm over the valid steps of a padded batch: the batch statistics count only
// the steps a mask marks valid, so padding (whatever its values) changes neither the output at
// the valid steps nor the running statistics, and a padded batch normalizes as the concatenation
// of its unpadded sequences would (torch: BatchNorm1d on the packed steps). nn::BatchNorm calls it
// in training mode while an nn::StepMask is active (autograd/nn/sequence.h).
#pragma once

#include "framework/tensor.h"

namespace finch {

// x [N, C, T]; mask [N, 1, T] with 1 at valid steps and 0 at padding (any dtype; no gradient);
// running_mean/var [C] (or undefined) updated in place with the unbiased variance as torch does;
// weight/bias [C] or undefined. With n = Σ mask (n >= 2, else one sentence):
//   mean_c = Σ_{b,t} m·x / n     var_c = Σ_{b,t} m·(x − mean_c)² / n
//   y = (x − mean_c) / sqrt(var_c + eps) · weight_c + bias_c      (at every step; padding's y is
//                                                                  whatever, the caller masks it)
// Composed from differentiable primitives, so its gradient is theirs: the padded steps' x get
// only what their own y receives, and the statistics' gradients flow through the valid steps.
Tensor masked_batch_norm(const Tensor& x, const Tensor& mask, const Tensor& running_mean, const Tensor& running_var,
                         const Tensor& weight, const Tensor& bias, double momentum, double eps);

}  // namespace finch
