// Differentiable fake quantization: the forward is quant::fake_quantize (exactly the integer
// spec's codes, docs/quantization.md), the backward a straight-through estimate.
#pragma once

#include "framework/tensor.h"
#include "kernels/qparams.h"

namespace finch::quant {

// x̂ = (clamp(round(x / s) + z, qmin, qmax) − z)·s with the straight-through estimator
// (Bengio et al. 2013, as PyTorch's FakeQuantize): dx = dy where x was inside the range, 0 where
// it was clamped. x: f32.
Tensor fake_quant(const Tensor& x, const QParams& p);

// LSQ, learned step size (Esser et al. 2019): the same forward with the scale taken from the
// learnable f32 tensor `scale` ([1] per-tensor, [C] per-channel along p.axis; p supplies the
// zero points and range, its own scales are ignored). Gradients:
//   dx = dy inside the range, 0 outside;
//   ds = g · Σ dy · (round(x/s) − x/s inside, q_clamped − z outside),
//   g = 1/√(n · Q) with n the elements per scale and Q = qmax − z, the paper's gradient scale
//   that keeps the step size's updates in proportion to the weights'.
// Scales must stay positive; the caller clamps them after each optimizer step (kMinScale).
Tensor fake_quant_lsq(const Tensor& x, const Tensor& scale, const QParams& p);

}  // namespace finch::quant
