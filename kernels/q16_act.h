// Integer sigmoid and tanh of the int8 LSTM/GRU cells: int16 Q3.12 in, int16 Q0.15 out, by one
// correctly rounded table entry per input code (docs/quantization.md, "Integer LSTM and GRU").
//
// Formats: Q3.12 is x = q / 2^12 (q int16, so x in [-8, 8)); Q0.15 is y = q / 2^15.
//   q16_sigmoid(q) = clamp(rne(2^15 · σ(q / 2^12)), 0, 32767)
//   q16_tanh(q)    = clamp(rne(2^15 · tanh(q / 2^12)), -32767, 32767)
// Each entry is the exact function rounded once: error <= 2^-16 against the float function at
// the same input (2^-15 where tanh is clamped to 32767, above x = 7.97), tested exhaustively,
// so the cell's only approximation is the 16-bit grid.
// The tables (65536 entries each, 128 KB) are built once from double evaluations (not long
// double: that is software quad precision on aarch64). No entry lies within 1e-6 of a code of
// a rounding tie (tested), far beyond any libm's error on double exp/tanh (~1e-16 relative),
// so every platform builds the same tables.
#pragma once

#include <cstdint>

namespace finch::quant::kernels {

inline constexpr int kGateFracBits = 12;  // gate pre-activations: Q3.12
inline constexpr int kActFracBits = 15;   // activated gates: Q0.15

// The 65536-entry tables, indexed by uint16_t(q) (q = 0 at index 0, -1 at 65535).
const int16_t* q16_sigmoid_table();
const int16_t* q16_tanh_table();

inline int16_t q16_sigmoid(int16_t q) { return q16_sigmoid_table()[uint16_t(q)]; }
inline int16_t q16_tanh(int16_t q) { return q16_tanh_table()[uint16_t(q)]; }

// The float value each entry approximates (double), for the tests and the doc's error bound.
double q16_sigmoid_exact(int16_t q);
double q16_tanh_exact(int16_t q);

}  // namespace finch::quant::kernels
