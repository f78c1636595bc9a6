// Integer requantization: the fixed-point arithmetic shared by the fake-quant simulation and the
// int8 runtime (bias quantization, the int32 accumulator -> int8 output step, the int8 + int8
// residual add, fused ReLU/ReLU6 bounds). Every rounding of an integer here is the one rule of
// docs/quantization.md: a single rounding shift of an exact 64-bit value, ties toward +infinity.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/qparams.h"

namespace finch::quant {

// A real multiplier m >= 0 as m ≈ multiplier · 2^-(31 + shift) with multiplier in [2^30, 2^31)
// (31 significant bits), or multiplier 0 for m == 0. shift < 0 when m >= 1.
struct FixedPointMultiplier {
  int32_t multiplier = 0;
  int shift = 0;
  int total_shift() const { return 31 + shift; }
  double value() const;  // multiplier · 2^-(31 + shift), exact in double
};

// m -> (multiplier, shift): the mantissa of m rounded to 31 bits (nearest, ties away from zero);
// a mantissa that rounds up to 2^31 is halved and the shift adjusted. Relative error <= 2^-31.
// Fails on m < 0, NaN or infinity.
FixedPointMultiplier quantize_multiplier(double m);

// The rounding rule: floor(v / 2^n + 1/2) for n >= 1 (round half toward +infinity, computed
// without overflow for any int64 v; 0 once n >= 64), and v · 2^-n saturated to int64 for n <= 0.
int64_t rounding_shift(int64_t v, int n);

// clamp(z_out + rounding_shift(int64(acc) · multiplier, 31 + shift), qmin, qmax).
int32_t requantize(int32_t acc, const FixedPointMultiplier& m, int32_t z_out, int32_t qmin, int32_t qmax);
// The same over an array: out[i] = requantize(acc[i], m, ...). Codes must fit the output type.
void requantize(const int32_t* acc, int64_t n, const FixedPointMultiplier& m, int32_t z_out, int32_t qmin,
                int32_t qmax, int8_t* out);
void requantize(const int32_t* acc, int64_t n, const FixedPointMultiplier& m, int32_t z_out, int32_t qmin,
                int32_t qmax, uint8_t* out);
// Per output channel: acc is [rows, C] (channels last, as a GEMM's output rows), m has C entries.
void requantize_per_channel(const int32_t* acc, int64_t rows, const std::vector<FixedPointMultiplier>& m,
                            int32_t z_out, int32_t qmin, int32_t qmax, int8_t* out);
void requantize_per_channel(const int32_t* acc, int64_t rows, const std::vector<FixedPointMultiplier>& m,
                            int32_t z_out, int32_t qmin, int32_t qmax, uint8_t* out);

// Real multipliers of a conv / linear output channel: m[c] = s_in · s_w[c] / s_out, in double
// from the f32 scales (s_w: one entry per output channel, or one for per-tensor weights).
std::vector<double> requant_multipliers(float s_in, const std::vector<float>& s_w, float s_out);
std::vector<FixedPointMultiplier> quantize_multipliers(const std::vector<double>& m);

// Bias in int32 with scale s_in · s_w and zero point 0: saturate_int32(round_half_even(b /
// (s_in · s_w))), the quotient in double. Fails on non-finite b or a non-positive scale.
int32_t quantize_bias(float b, float s_in, float s_w);
// One bias per output channel; s_w has b.size() entries, or one (per-tensor weights).
std::vector<int32_t> quantize_bias(const std::vector<float>& b, float s_in, const std::vector<float>& s_w);

// Element-wise add of two quantized tensors (residual connections): out = s_a/s_out · (q_a − z_a)
// + s_b/s_out · (q_b − z_b) + z_out. Each ratio is a FixedPointMultiplier; the two 64-bit products
// are brought to one total shift by left shifts of at most kMaxAddAlign bits (the multiplier of an
// operand whose shift lies further away is pre-rounded to fewer bits instead), summed exactly and
// rounded once. An all-integer alternative for targets without an FPU, unused: programs and the
// simulated model add by the f32 rule of docs/quantization.md §7 (reference::qadd), from which
// this can differ by one code on ties.
inline constexpr int kMaxAddAlign = 15;
struct AddRequant {
  int32_t a_multiplier = 0, b_multiplier = 0;
  int a_left = 0, b_left = 0;  // left shifts applied to each 64-bit product, <= kMaxAddAlign
  int total_shift = 0;         // the one rounding shift applied to the sum
};
// Fails on non-positive or non-finite scales.
AddRequant make_add_requant(float s_a, float s_b, float s_out);
// Inputs: |q - z| < 2^16 (any 8- or 16-bit codes), so each aligned product stays below 2^62.
int32_t requantize_add(int32_t q_a, int32_t z_a, int32_t q_b, int32_t z_b, const AddRequant& r, int32_t z_out,
                       int32_t qmin, int32_t qmax);
void requantize_add(const int8_t* a, int32_t z_a, const int8_t* b, int32_t z_b, int64_t n, const AddRequant& r,
                    int32_t z_out, int32_t qmin, int32_t qmax, int8_t* out);
void requantize_add(const uint8_t* a, int32_t z_a, const uint8_t* b, int32_t z_b, int64_t n, const AddRequant& r,
                    int32_t z_out, int32_t qmin, int32_t qmax, uint8_t* out);

// The output code range of a layer with a fused activation ("none", "relu", "relu6"): relu
// raises qmin to z_out (the code of 0); relu6 also lowers qmax to the code of 6.0, i.e.
// round_half_even(6 / s_out) + z_out in f32 as quantize() computes it.
QRange fused_activation_range(const std::string& activation, float s_out, int32_t z_out, QRange r);

}  // namespace finch::quant
