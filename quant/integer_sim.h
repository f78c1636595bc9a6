// The integer arithmetic of docs/quantization.md for Conv2d/Linear units, computed exactly on
// the CPU in the simulated model: input codes, int8 weight codes, int32 bias, an exact integer
// accumulation (f64 convolution: every partial sum is an integer far below 2^53), and the
// fixed-point requantization with its single rounding. Its output, dequantized, is what the
// int8 program produces, bit for bit, so the simulated model's eval accuracy is the deployed one.
#pragma once

#include "autograd/functional.h"
#include "framework/tensor.h"
#include "kernels/qparams.h"

namespace finch::quant {

// x̂: the unit's input, already on the grid of `in` (it came out of a fake-quant with those
// parameters). w, bias: the deployed (folded) float weight and bias; wq: the weight's
// parameters; out: the unit's output parameters. Returns (code − z_out)·s_out as f32.
Tensor integer_conv2d(const Tensor& x_hat, const QParams& in, const Tensor& w, const QParams& wq,
                      const Tensor& bias, const QParams& out, const Conv2dParams& opt);
// x̂ [N, in_features] (any leading dims), w [out, in].
Tensor integer_linear(const Tensor& x_hat, const QParams& in, const Tensor& w, const QParams& wq,
                      const Tensor& bias, const QParams& out);

}  // namespace finch::quant
