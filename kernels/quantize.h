// Tensor quantization primitives over QParams (no autograd): float -> integer codes, codes ->
// float, and fake quantization (the two composed, in float), per-tensor or per-channel.
// The rounding rule is the one of docs/quantization.md: q = clamp(round_half_even(x / s) + z,
// qmin, qmax) with the division done in f32 (x / s correctly rounded, not x * (1/s)), so the
// fake-quant forward and the integer runtime produce the same codes for the same input.
#pragma once

#include "framework/tensor.h"
#include "kernels/qparams.h"

namespace finch::quant {

// x: f32 (any shape; per-channel: p.axis < x.dim() and x.size(p.axis) == p.channels()).
// Returns codes as i8 (qmin >= -128 and qmax <= 127), u8 (0 <= qmin, qmax <= 255), else i16/i32.
Tensor quantize(const Tensor& x, const QParams& p);
// q: any integer dtype -> f32 values (q - z) * s.
Tensor dequantize(const Tensor& q, const QParams& p);
// dequantize(quantize(x)) computed in one pass in f32: (clamp(round(x / s) + z, qmin, qmax) - z) * s.
Tensor fake_quantize(const Tensor& x, const QParams& p);
// The mask of elements that fake_quantize did not clamp (round(x / s) + z inside [qmin, qmax]):
// where the straight-through gradient passes. bool, same shape as x.
Tensor fake_quantize_mask(const Tensor& x, const QParams& p);

// Scalar references of the above (plain loops): the kernels are tested against them.
namespace reference {
Tensor quantize(const Tensor& x, const QParams& p);
Tensor fake_quantize(const Tensor& x, const QParams& p);
}  // namespace reference

}  // namespace finch::quant
