// The dynamic int8 GRU (the GRU counterpart of qs8_dq_lstm.h, as PyTorch's quantize_dynamic runs
// nn.GRU): int8 weights per gate row, each step's x and h rows quantized at run time through
// QDynamicLinear, f32 gates (torch.nn.GRU's equations, gate order r, z, n):
//   gx = dq(x)·W_ihᵀ + b_ih, gh = dq(h)·W_hhᵀ + b_hh        (kept apart: n needs gh_n alone)
//   r = σ(gx_r + gh_r), z = σ(gx_z + gh_z), n = tanh(gx_n + r·gh_n), h' = (1 − z)·n + z·h
// The gates are ops::gru_gates_forward_f32, the fp32 GRU's own code, so a program's dq_gru (which
// runs step()) and this class cannot differ in the last bits.
// Shapes: x [T, B, IN], y [T, B, H], h [B, H], f32; lengths as qs8_dq_lstm.h.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/qs8_dq_linear.h"

namespace finch::quant::kernels {

class QDynamicGru {
 public:
  // w_ih [3H, IN], w_hh [3H, H], b_ih, b_hh [3H] or both empty.
  QDynamicGru(int64_t IN, int64_t H, const std::vector<float>& w_ih, const std::vector<float>& w_hh,
              const std::vector<float>& b_ih, const std::vector<float>& b_hh);
  // From linears already int8 (a program's dq_gru): ih [3H, IN] carrying b_ih, hh [3H, H]
  // carrying b_hh. Sizes that do not fit: a finch::Error sentence.
  QDynamicGru(QDynamicLinear ih, QDynamicLinear hh);

  int64_t input_size() const { return IN_; }
  int64_t hidden_size() const { return H_; }

  // Caller-owned buffers of step(): one per concurrent caller; steps then allocate nothing.
  struct Scratch {
    QDynamicLinear::Scratch lin;
    std::vector<float> gx, gh;
  };
  // One sample, one step: x [IN], h [H] -> h_out [H] (h_out may be h).
  void step(const float* x, const float* h, float* h_out, Scratch& s) const;
  // The input side of n steps at once: gx [n, 3H], row i = dq(x_i)·W_ihᵀ + b_ih for x_i = x + i·x_stride
  // (QDynamicLinear::run_rows, bit-identical to step()'s per-row call).
  void input_gates(const float* x, int64_t n, int64_t x_stride, float* gx) const { ih_.run_rows(x, n, x_stride, gx); }
  // step() given its input side gx [3H] (a row of input_gates): bit-identical to step(x, ...).
  // gx is overwritten (ops::gru_gates_forward_f32 activates the gates in place).
  void step_gx(float* gx, const float* h, float* h_out, Scratch& s) const;
  void run(int64_t T, int64_t B, const float* x, const int64_t* lengths, float* h, float* y) const;
  // gx, gh [3H] of one sample (the two QDynamicLinear outputs).
  void gates(const float* x, const float* h, float* gx, float* gh) const;

 private:

  int64_t IN_, H_;
  QDynamicLinear ih_, hh_;
};

}  // namespace finch::quant::kernels
