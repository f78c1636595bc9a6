// The static int8 GRU (torch.nn.GRU gate order r, z, n): int8 input and hidden state, Q3.12 gate
// pre-activations, Q0.15 gates, the reset product r ⊙ (W_hn h + b_hn) as its own fixed-point step.
// Reference (docs/quantization.md "Integer LSTM and GRU"), fast operator (bit for bit), calibration.
//
// Shape vocabulary: T steps, B batch, IN input features, H hidden size, G = 3H gate rows.
// x [T, B, IN] i8, y [T, B, H] i8, h [B, H] i8; lengths as for the LSTM (qs8_lstm.h).
//   r = σ(sat(gx_r + gh_r)), z = σ(sat(gx_z + gh_z))           gx, gh: Q3.12 of each GEMM (+ bias)
//   n = tanh(sat(rounding_shift(gx_n · 2^15 + r · gh_n, 15)))
//   h' = clamp(z_h + rounding_shift((2^15 − z) · n · M + z · (h − z_h) · 2^(N − 15), N), -128, 127)
// with (M, N) the fixed-point form of 2^-30 / s_h (15 <= N <= 54, checked).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/qs8_rnn.h"

namespace finch::quant::kernels {

struct QGruCell {
  int64_t IN = 0, H = 0;
  QAct x, h;
  QMatrix ih, hh;               // [3H, IN] with s_x; [3H, H] with s_h: multipliers to Q3.12
  FixedPointMultiplier m_out;   // 2^-30 / s_h
};

void check_qgru_cell(const QGruCell& p);

// The element steps, public for the QAT simulation.
// n's pre-activation: sat16(rounding_shift(gx_n · 2^15 + r · gh_n, 15)).
inline int16_t qgru_n_preact(int16_t gx_n, int16_t r, int16_t gh_n) {
  const int64_t v = int64_t(gx_n) * 32768 + int64_t(int32_t(r) * int32_t(gh_n));
  return int16_t(std::clamp<int64_t>(rounding_shift(v, 15), -32768, 32767));
}
// h' = (1 − z) · n + z · h as int8 codes (see above).
inline int8_t qgru_h_update(int16_t z, int16_t n, int8_t h, int32_t z_h, const FixedPointMultiplier& m) {
  const int N = m.total_shift();
  const int64_t v = int64_t((32768 - int32_t(z)) * int32_t(n)) * m.multiplier +
                    int64_t(int32_t(z) * (int32_t(h) - z_h)) * (int64_t(1) << (N - 15));
  return int8_t(std::clamp<int64_t>(rounding_shift(v, N), -128 - int64_t(z_h), 127 - int64_t(z_h)) + z_h);
}
// One sample's gate pass: gx, gh [3H] Q3.12 (r, z, n), h [H] in/out.
void qgru_gates_reference(int64_t H, const int16_t* gx, const int16_t* gh, const FixedPointMultiplier& m_out,
                          int32_t z_h, int8_t* h);

void qgru_step_reference(const QGruCell& p, int64_t B, const int8_t* x, const int8_t* h, int8_t* h_new);
void qgru_sequence_reference(const QGruCell& p, int64_t T, int64_t B, const int8_t* x, const int64_t* lengths,
                             int8_t* h, int8_t* y);

class QGru {
 public:
  explicit QGru(QGruCell cell);
  void run(int64_t T, int64_t B, const int8_t* x, const int64_t* lengths, int8_t* h, int8_t* y) const;
  const QGruCell& cell() const { return p_; }

 private:
  QGruCell p_;
  PackedRows ih_, hh_;
};

struct QGruRanges {
  float x_lo = 0, x_hi = 0, h_lo = 0, h_hi = 0;
};
// w_ih [3H, IN], w_hh [3H, H], b_ih, b_hh [3H] or both empty. The h range is clipped to [-1, 1]
// (a GRU's state is a convex mix of tanh values and h0) before its qparams.
QGruCell qgru_calibrate(int64_t IN, int64_t H, const std::vector<float>& w_ih, const std::vector<float>& w_hh,
                        const std::vector<float>& b_ih, const std::vector<float>& b_hh, const QGruRanges& r);

}  // namespace finch::quant::kernels
