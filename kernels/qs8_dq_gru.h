// The dynamic int8 GRU (the GRU counterpart of qs8_dq_lstm.h, as PyTorch's quantize_dynamic runs
// nn.GRU): int8 weights per gate row, each step's x and h rows quantized at run time through
// QDynamicLinear, f32 gates (torch.nn.GRU's equations, gate order r, z, n):
//   gx = dq(x)·W_ihᵀ + b_ih, gh = dq(h)·W_hhᵀ + b_hh        (kept apart: n needs gh_n alone)
//   r = σ(gx_r + gh_r), z = σ(gx_z + gh_z), n = tanh(gx_n + r·gh_n), h' = (1 − z)·n + z·h
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
  void run(int64_t T, int64_t B, const float* x, const int64_t* lengths, float* h, float* y) const;
  // gx, gh [3H] of one sample (the two QDynamicLinear outputs).
  void gates(const float* x, const float* h, float* gx, float* gh) const;

 private:
  // The same into caller-owned buffers: run keeps one Scratch per sequence.
  void gates(const float* x, const float* h, float* gx, float* gh, QDynamicLinear::Scratch& s) const;

  int64_t IN_, H_;
  QDynamicLinear ih_, hh_;
};

}  // namespace finch::quant::kernels
