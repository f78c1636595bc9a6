// Internal: the Highway kernels behind quantize / fake_quantize / fake_quantize_mask (one
// contiguous f32 run each). Not part of the public API; quant/quantize.cc and its tests use them.
#pragma once

#include <cstdint>

namespace finch::quant::kernels {

// Parameters of one run of n elements. per_element: scale[i] and zero[i] belong to element i
// (arrays of n); otherwise scale[0] and zero[0] apply to every element. Zero points are passed as
// floats (exact: |z| <= 65535) so the kernels stay in f32 until the final conversion.
struct QuantArgs {
  const float* scale;
  const float* zero;
  bool per_element;
  float qmin, qmax;
};

// q[i] = clamp(round_half_even(x[i] / s) + z, qmin, qmax); NaN -> z. The codes must fit T.
void quantize_f32_i8(const float* x, int8_t* q, int64_t n, const QuantArgs& a);
void quantize_f32_u8(const float* x, uint8_t* q, int64_t n, const QuantArgs& a);
void quantize_f32_i16(const float* x, int16_t* q, int64_t n, const QuantArgs& a);
void quantize_f32_i32(const float* x, int32_t* q, int64_t n, const QuantArgs& a);
// y[i] = (code - z) * s with the code above; NaN stays NaN.
void fake_quantize_f32(const float* x, float* y, int64_t n, const QuantArgs& a);
// m[i] = 1 where round_half_even(x[i] / s) + z lies in [qmin, qmax] (not clamped), else 0.
void fake_quantize_mask_f32(const float* x, uint8_t* m, int64_t n, const QuantArgs& a);

}  // namespace finch::quant::kernels
