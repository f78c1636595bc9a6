// The static int8 LSTM (torch.nn.LSTM gate order i, f, g, o; optional proj_size): int8 input and
// hidden state, int16 cell state with scale 2^-k, Q3.12 gate pre-activations, Q0.15 gates. The
// scalar reference (the specification, docs/quantization.md "Integer LSTM and GRU"), the fast
// operator (packed int8 dot kernels + one gate pass; equal bit for bit), and calibration from
// observed float ranges.
//
// Shape vocabulary: T steps, B batch, IN input features, H hidden (cell) size, P proj_size (0 =
// none), HO = P ? P : H the size of h (output and recurrent input), G = 4H gate rows.
// Sequences are time major: x [T, B, IN], y [T, B, HO]; states h [B, HO] (i8), c [B, H] (i16).
// lengths [B] (each in [0, T]) or null (all T): steps t >= lengths[b] leave h, c of sample b
// unchanged and write y = z_h (the code of 0.0), as the float layers do with packed sequences.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/qs8_rnn.h"

namespace finch::quant::kernels {

struct QLstmCell {
  int64_t IN = 0, H = 0, P = 0;
  QAct x, h;        // input codes; hidden state = output codes
  int k_cell = 11;  // cell state c = code · 2^-k_cell, k_cell in [0, 15]
  QMatrix ih, hh;   // [4H, IN] with s_x; [4H, HO] with s_h: multipliers to Q3.12
  FixedPointMultiplier m_out;  // o·tanh(c') (Q0.30) -> h codes (P = 0) or m codes (P > 0)
  QAct m;           // P > 0: the projection's input o·tanh(c') as int8
  QMatrix proj;     // P > 0: [P, H], multipliers s_m · s_w[p] / s_h, bias optional
  int64_t hidden_out() const { return P > 0 ? P : H; }
};

// Every field consistent (shapes, scales, k_cell, multiplier ranges): a finch::Error otherwise.
void check_qlstm_cell(const QLstmCell& p);

// ---- the element steps (docs/quantization.md), public for the QAT simulation ----
// c' = clamp(rounding_shift(f·c·2^15 + i·g·2^k, 30), -32768, 32767): f, i, g Q0.15, c and c' · 2^-k.
inline int16_t qlstm_cell_update(int16_t f, int16_t c, int16_t i, int16_t g, int k) {
  const int64_t v = int64_t(int32_t(f) * int32_t(c)) * 32768 + int64_t(int32_t(i) * int32_t(g)) * (int64_t(1) << k);
  return int16_t(std::clamp<int64_t>(rounding_shift(v, 30), -32768, 32767));
}
// The cell state (scale 2^-k) as a Q3.12 tanh input: rounding right shift by k − 12, or a
// saturating left shift by 12 − k.
inline int16_t qlstm_cell_to_q12(int16_t c, int k) {
  const int64_t v = k >= 12 ? rounding_shift(c, k - 12) : int64_t(c) * (int64_t(1) << (12 - k));
  return int16_t(std::clamp<int64_t>(v, -32768, 32767));
}
// One sample's gate pass: pre [4H] Q3.12 pre-activations (i, f, g, o), c [H] in/out, out [H]
// = requantize(o · tanh(c'), m_out, z_out, -128, 127).
void qlstm_gates_reference(int64_t H, const int16_t* pre, int k, const FixedPointMultiplier& m_out, int32_t z_out,
                           int16_t* c, int8_t* out);

// ---- the reference (plain loops; what the operator is tested against) ----
// One step for B samples: x [B, IN], h [B, HO], c [B, H] -> h_new [B, HO], c_new [B, H].
void qlstm_step_reference(const QLstmCell& p, int64_t B, const int8_t* x, const int8_t* h, const int16_t* c,
                          int8_t* h_new, int16_t* c_new);
// T steps (see lengths above): h, c are the initial states on entry and the final ones on return.
void qlstm_sequence_reference(const QLstmCell& p, int64_t T, int64_t B, const int8_t* x, const int64_t* lengths,
                              int8_t* h, int16_t* c, int8_t* y);

// ---- the operator ----
class QLstm {
 public:
  explicit QLstm(QLstmCell cell);  // checks the cell, packs the weights once
  // As qlstm_sequence_reference, bit for bit. The input GEMM of all T·B rows runs first, then
  // per step one recurrent GEMV per sample and the gate pass.
  void run(int64_t T, int64_t B, const int8_t* x, const int64_t* lengths, int8_t* h, int16_t* c, int8_t* y) const;
  const QLstmCell& cell() const { return p_; }

 private:
  QLstmCell p_;
  PackedRows ih_, hh_, proj_;  // packed once for the dot kernel
};

// ---- calibration: observed float ranges -> the cell (a pure function) ----
struct QLstmRanges {
  float x_lo = 0, x_hi = 0;  // input
  float h_lo = 0, h_hi = 0;  // hidden state / output
  float c_absmax = 0;        // max |c| over the calibration data
  float m_lo = 0, m_hi = 0;  // P > 0: o·tanh(c) before the projection
};
// Float weights in PyTorch's layout: w_ih [4H, IN], w_hh [4H, HO], b_ih, b_hh [4H] (or both
// empty), w_proj [P, H] (P > 0) or empty. x, h (and m) get int8 affine qparams of their ranges
// (kernels/qparams.h), weights int8 symmetric narrow per row, biases int32 at s_x·s_w (b_ih)
// and s_h·s_w (b_hh), k_cell the largest k in [0, 15] with c_absmax · 2^k <= 32767.
QLstmCell qlstm_calibrate(int64_t IN, int64_t H, int64_t P, const std::vector<float>& w_ih,
                          const std::vector<float>& w_hh, const std::vector<float>& b_ih,
                          const std::vector<float>& b_hh, const std::vector<float>& w_proj, const QLstmRanges& r);
// The cell-state exponent rule above, alone.
int cell_exponent(float c_absmax);

}  // namespace finch::quant::kernels
