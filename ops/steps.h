// Per-sample sequence lengths over the last (time) axis of a padded batch x [B, ..., T]: zero
// the steps past each sample's length (mask_steps), and average each sample over its own
// valid steps (mean_steps). The all-convolutional series models (models/series_conv.h) use
// them so that a padded batch gives what each sample gives alone; they are ops of the program
// (runtime/ops.md) so that a program computes them from its lengths input instead of holding
// the capture example's mask as a constant.
#pragma once

#include <cstdint>

#include "framework/tensor.h"

namespace finch::ops {

// Throws finch::Error (naming `where`) unless lengths is an i64/i32 [B] tensor with every
// length in [1, T].
void check_step_lengths(const Tensor& lengths, int64_t B, int64_t T, const char* where);

// y = x with x[b, ..., t] replaced by `fill` for t >= lengths[b]. Any dtype (integer codes:
// `fill` is the zero point). x [B, ..., T] (at least 2-d), lengths [B].
Tensor mask_steps(const Tensor& x, const Tensor& lengths, double fill = 0.0);

// y[b, c] = Σ_{t < lengths[b]} x[b, c, t] / lengths[b], summed in f64 in step order, rounded
// once. x f32 [B, C, T], lengths [B] (undefined: every sample has all T steps) -> f32 [B, C].
Tensor mean_steps(const Tensor& x, const Tensor& lengths);
// The gradient of mean_steps: dx[b, c, t] = g[b, c] / lengths[b] for t < lengths[b], else 0.
Tensor mean_steps_backward(const Tensor& g, const Tensor& lengths, int64_t T);

}  // namespace finch::ops
