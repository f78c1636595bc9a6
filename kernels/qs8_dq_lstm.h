// The dynamic int8 LSTM, as PyTorch's quantize_dynamic and ONNX Runtime's DynamicQuantizeLSTM
// run it: int8 weights (symmetric narrow, per gate row), each step's x and h rows quantized at
// run time (int8 affine from their own min/max, one row at a time), int32 dot products on the
// int8 dot kernels (QDynamicLinear), f32 gates and cell (ops::lstm_gates_forward_f32).
// With a projection (PyTorch's proj_size, LSTMP) the cell output m = o·tanh(c') goes through a
// third dynamic linear, h' = dq(m)·W_hrᵀ (int8 per-row W_hr, m's row quantized per call).
//
// Shapes: T steps, B batch, IN inputs, H hidden (cell) units, P projection (1 <= P < H), HO the
// width of h and y (P with a projection, H without); x [T, B, IN], y [T, B, HO], h [B, HO],
// c [B, H], all f32; lengths [B] in [0, T] or null: steps past a length keep h, c and write y = 0.
// The specification of one step is reference::dq_lstm_step (kernels/reference.h).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "kernels/qs8_dq_linear.h"

namespace finch::quant::kernels {

class QDynamicLstm {
 public:
  // Float weights in PyTorch's layout: w_ih [4H, IN], w_hh [4H, HO], b_ih, b_hh [4H] (or both
  // empty; the two are summed once in f32 and added with the input GEMM's output), w_hr [P, H]
  // or empty (no projection; HO = H). Each is quantized here (quantize_matrix).
  QDynamicLstm(int64_t IN, int64_t H, const std::vector<float>& w_ih, const std::vector<float>& w_hh,
               const std::vector<float>& b_ih, const std::vector<float>& b_hh, const std::vector<float>& w_hr = {},
               int64_t P = 0);
  // From linears already int8 (a program's dq_lstm): ih [4H, IN] carrying the summed bias, hh
  // [4H, HO] and hr [P, H] without bias (or none). Sizes that do not fit: a finch::Error sentence.
  QDynamicLstm(QDynamicLinear ih, QDynamicLinear hh, std::optional<QDynamicLinear> hr);

  int64_t input_size() const { return IN_; }
  int64_t hidden_size() const { return H_; }
  int64_t output_size() const { return HO_; }  // P with a projection, H without

  // Caller-owned buffers of step(): one per concurrent caller; steps then allocate nothing.
  struct Scratch {
    QDynamicLinear::Scratch lin;
    std::vector<float> gx, gh, g, m, c_new, tanh_c;
  };
  // One sample, one step: x [IN], h [HO], c [H] -> h_out [HO], c_out [H] (h_out may be h, c_out c).
  void step(const float* x, const float* h, const float* c, float* h_out, float* c_out, Scratch& s) const;
  // The input side of n steps at once: gx [n, 4H], row i = dq(x_i)·W_ihᵀ + b for x_i = x + i·x_stride
  // (QDynamicLinear::run_rows: bit-identical to step()'s per-row call, with rows sharing each
  // weight load). x does not depend on h, so only the recurrent side is left in the time loop.
  void input_gates(const float* x, int64_t n, int64_t x_stride, float* gx) const { ih_.run_rows(x, n, x_stride, gx); }
  // step() given its input side gx [4H] (a row of input_gates): bit-identical to step(x, ...).
  void step_gx(const float* gx, const float* h, const float* c, float* h_out, float* c_out, Scratch& s) const;
  void run(int64_t T, int64_t B, const float* x, const int64_t* lengths, float* h, float* c, float* y) const;
  // The gate pre-activations of one sample: dq(x)·W_ihᵀ + b + dq(h)·W_hhᵀ (f32 sum of the two
  // QDynamicLinear outputs, in that order) -> gates [4H]. What the reference test checks.
  void gates(const float* x, const float* h, float* gates) const;

 private:
  void gates(const float* x, const float* h, float* g, Scratch& s) const;

  int64_t IN_, H_, HO_;
  QDynamicLinear ih_, hh_;
  std::optional<QDynamicLinear> hr_;
};

}  // namespace finch::quant::kernels
