// The dynamic int8 LSTM, as PyTorch's quantize_dynamic and ONNX Runtime's DynamicQuantizeLSTM
// run it: int8 weights (symmetric narrow, per gate row), each step's x and h rows quantized at
// run time (int8 affine from their own min/max, one row at a time), int32 dot products on the
// int8 dot kernels (QDynamicLinear), f32 gates and cell (ops::lstm_gates_forward_f32).
//
// Shapes: T steps, B batch, IN inputs, H hidden; x [T, B, IN], y [T, B, H], h, c [B, H], all
// f32; lengths [B] in [0, T] or null: steps past a length keep h, c and write y = 0.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/qs8_dq_linear.h"

namespace finch::quant::kernels {

class QDynamicLstm {
 public:
  // Float weights in PyTorch's layout: w_ih [4H, IN], w_hh [4H, H], b_ih, b_hh [4H] (or both
  // empty; the two are summed once in f32 and added with the input GEMM's output).
  QDynamicLstm(int64_t IN, int64_t H, const std::vector<float>& w_ih, const std::vector<float>& w_hh,
               const std::vector<float>& b_ih, const std::vector<float>& b_hh);
  void run(int64_t T, int64_t B, const float* x, const int64_t* lengths, float* h, float* c, float* y) const;
  // The gate pre-activations of one sample: dq(x)·W_ihᵀ + b + dq(h)·W_hhᵀ (f32 sum of the two
  // QDynamicLinear outputs, in that order) -> gates [4H]. What the reference test checks.
  void gates(const float* x, const float* h, float* gates) const;

 private:
  // Per-sequence buffers: the two linears' scratch and their f32 outputs.
  struct Scratch {
    QDynamicLinear::Scratch lin;
    std::vector<float> gx, gh;
  };
  void gates(const float* x, const float* h, float* g, Scratch& s) const;

  int64_t IN_, H_;
  QDynamicLinear ih_, hh_;
};

}  // namespace finch::quant::kernels
