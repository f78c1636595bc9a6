// Batch norm and layer norm: fused forward and backward kernels (F32 fast path through
// Highway, F64 through the same loops in double) and the plain-loop references they are
// checked against.
//
// Shape vocabulary: N batch, C channels, S = product of the spatial dims after C (1 for
// [N, C]), M = N·S values per channel; for layer norm R rows × D = product of normalized_shape.
#pragma once

#include <array>
#include <cstdint>

#include "framework/tensor.h"

namespace finch::ops {

// ---- batch norm over x [N, C, *] ----
struct BatchNormResult {
  Tensor y;            // x's shape, contiguous
  Tensor save_mean;    // [C] the mean used to normalize (batch mean, or running mean in eval)
  Tensor save_invstd;  // [C] 1/sqrt(var + eps) used to normalize
};

// training: normalizes with the batch mean and biased variance, and when running_mean /
// running_var are defined updates them in place: r = (1-momentum)·r + momentum·stat, with the
// unbiased variance (as torch). !training: normalizes with running_mean/var (both required).
// weight/bias [C] are optional (undefined = 1 / 0).
BatchNormResult batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                           const Tensor& weight, const Tensor& bias, bool training,
                           double momentum, double eps);

struct NormGrads {
  Tensor dx, dweight, dbias;  // undefined where not asked for
};
// needs = {dx, dweight, dbias}. training selects the batch-statistics formula (the mean and
// variance depend on x); otherwise the statistics are constants and dx = dy·w·invstd.
NormGrads batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                              const Tensor& save_mean, const Tensor& save_invstd, bool training,
                              std::array<bool, 3> needs = {true, true, true});

// Plain-loop references with the same contracts (computed in double, returned in x's dtype).
BatchNormResult batch_norm_reference(const Tensor& x, const Tensor& running_mean,
                                     const Tensor& running_var, const Tensor& weight,
                                     const Tensor& bias, bool training, double momentum,
                                     double eps);
NormGrads batch_norm_backward_reference(const Tensor& dy, const Tensor& x, const Tensor& weight,
                                        const Tensor& save_mean, const Tensor& save_invstd,
                                        bool training);

// ---- layer norm over the trailing dims of x [..., normalized_shape] ----
struct LayerNormResult {
  Tensor y;     // x's shape
  Tensor mean;  // [R] per-row mean
  Tensor rstd;  // [R] per-row 1/sqrt(var + eps) (biased variance)
};
// weight/bias have shape normalized_shape (optional).
LayerNormResult layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                           const Tensor& bias, double eps);
NormGrads layer_norm_backward(const Tensor& dy, const Tensor& x, const Shape& normalized_shape,
                              const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                              std::array<bool, 3> needs = {true, true, true});

LayerNormResult layer_norm_reference(const Tensor& x, const Shape& normalized_shape,
                                     const Tensor& weight, const Tensor& bias, double eps);
NormGrads layer_norm_backward_reference(const Tensor& dy, const Tensor& x,
                                        const Shape& normalized_shape, const Tensor& weight,
                                        const Tensor& mean, const Tensor& rstd);

// ---- Highway row kernels (ops/norm_hwy.cc); F32, contiguous, no validation ----
namespace norm_kernels {
// Σ x[i].
double sum(const float* x, int64_t n);
// Σ (x[i] - mean)².
double sum_sq_dev(const float* x, int64_t n, float mean);
// y[i] = a·x[i] + b.
void scale_shift(const float* x, float* y, int64_t n, float a, float b);
// *sdy += Σ dy[i]; *sdyx += Σ dy[i]·(x[i] - mean).
void sum_dy_dyx(const float* dy, const float* x, int64_t n, float mean, double* sdy,
                double* sdyx);
// dx[i] = a·dy[i] + b·x[i] + c.
void affine2(const float* dy, const float* x, float* dx, int64_t n, float a, float b, float c);
// Layer-norm forward row: y = ((x - mean)·rstd)·w + b (w / b may be null).
void ln_forward_row(const float* x, const float* w, const float* b, float* y, int64_t n,
                    float mean, float rstd);
// Layer-norm backward row, pass 1: with xhat = (x - mean)·rstd and g = dy·w (w may be null),
// returns Σg in *sg and Σg·xhat in *sgx; when dw/db are non-null accumulates dw += dy·xhat and
// db += dy.
void ln_backward_sums(const float* dy, const float* x, const float* w, int64_t n, float mean,
                      float rstd, double* sg, double* sgx, float* dw, float* db);
// Pass 2: dx = rstd·(g - sg/n - xhat·sgx/n).
void ln_backward_dx(const float* dy, const float* x, const float* w, float* dx, int64_t n,
                    float mean, float rstd, float mg, float mgx);
}  // namespace norm_kernels

}  // namespace finch::ops
