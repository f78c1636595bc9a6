// The GRU cell's fused elementwise passes (torch.nn.GRU, gates r, z, n), forward and backward,
// with the scalar reference the Highway kernels are checked against.
//
// Shape vocabulary: B batch rows, H hidden size; gi, gh [B, 3H] hold the gate pre-activations
// split the way torch computes them, because r multiplies only the hidden part of n:
//   gi = x·W_ihᵀ + b_ih,  gh = h·W_hhᵀ + b_hh              (slices r | z | n, each H wide)
//   r = σ(gi_r + gh_r),  z = σ(gi_z + gh_z),  n = tanh(gi_n + r ⊙ gh_n)
//   h' = (1 − z) ⊙ n + z ⊙ h
// Backward (a_* the pre-activations):
//   dn = dh'·(1 − z),  dz = dh'·(h − n),  dh = dh'·z (+ dgh·W_hh, done by the caller's GEMM)
//   da_n = dn·(1 − n²),  da_z = dz·z(1 − z),  da_r = da_n·gh_n·r(1 − r)
//   dgi = [da_r, da_z, da_n],  dgh = [da_r, da_z, da_n·r]
#pragma once

#include <cstdint>

namespace finch::ops {

// gi [B, 3H] in: pre-activations; out: the activated r, z, n (what backward needs).
// gh [B, 3H] (read only), h [B, H] -> h_new [B, H]. Contiguous rows. Best Highway target,
// parallel over B.
void gru_gates_forward_f32(int64_t B, int64_t H, float* gi, const float* gh, const float* h,
                           float* h_new);
// dh_new [B, H], gates = activated r, z, n [B, 3H], gh [B, 3H] (only its n slice is read), h
// [B, H] -> dgi, dgh [B, 3H] and dh [B, H] = dh'·z (the direct path; may alias dh_new).
void gru_gates_backward_f32(int64_t B, int64_t H, const float* dh_new, const float* gates,
                            const float* gh, const float* h, float* dgi, float* dgh, float* dh);

// Plain loops with the same contracts (F32 for the cross-check, F64 for the gradcheck path).
void gru_gates_forward_reference(int64_t B, int64_t H, float* gi, const float* gh,
                                 const float* h, float* h_new);
void gru_gates_forward_reference(int64_t B, int64_t H, double* gi, const double* gh,
                                 const double* h, double* h_new);
void gru_gates_backward_reference(int64_t B, int64_t H, const float* dh_new, const float* gates,
                                  const float* gh, const float* h, float* dgi, float* dgh,
                                  float* dh);
void gru_gates_backward_reference(int64_t B, int64_t H, const double* dh_new,
                                  const double* gates, const double* gh, const double* h,
                                  double* dgi, double* dgh, double* dh);

}  // namespace finch::ops
