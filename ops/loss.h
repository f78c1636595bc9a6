// Losses: fused log-softmax + NLL cross entropy (with ignore_index and label smoothing),
// binary cross entropy with logits (with pos_weight), and mean squared error — forward,
// backward, and plain-loop references.
//
// Shape vocabulary: N batch, C classes, S = product of the dims after C (1 for [N, C]);
// a "sample" is one (n, s) pair with one target class.
#pragma once

#include <cstdint>

#include "framework/tensor.h"

namespace finch {

// How a loss reduces over its samples (torch's `reduction=`): one enum for the kernels and the
// autograd losses. In namespace finch (not finch::ops) so an unqualified
// cross_entropy(logits, target, Reduction::mean, ...) finds only autograd's function.
enum class Reduction { none, mean, sum };

namespace ops {

using finch::Reduction;

// ---- cross entropy: logits [N, C] / [N, C, d...] / [C], target i64 [N] / [N, d...] / [] ----
struct CrossEntropyResult {
  Tensor loss;         // target's shape (none) or a 0-d scalar (mean, sum)
  Tensor lse;          // [N·S] log-sum-exp per sample (saved for the backward)
  double count = 0;    // number of samples whose target is not ignore_index
};
// loss_i = (1-ε)·(lse_i - x_i[t_i]) + ε·(lse_i - mean_c x_i[c]); ignored samples give 0 and
// are left out of the mean's denominator (all ignored → mean is NaN, as torch).
CrossEntropyResult cross_entropy(const Tensor& logits, const Tensor& target,
                                 Reduction reduction, int64_t ignore_index,
                                 double label_smoothing);
// dlogits = g_i·(softmax_i - (1-ε)·onehot(t_i) - ε/C), g_i the loss gradient for sample i.
Tensor cross_entropy_backward(const Tensor& grad_loss, const Tensor& logits, const Tensor& target,
                              const Tensor& lse, double count, Reduction reduction,
                              int64_t ignore_index, double label_smoothing);

CrossEntropyResult cross_entropy_reference(const Tensor& logits, const Tensor& target,
                                           Reduction reduction, int64_t ignore_index,
                                           double label_smoothing);
Tensor cross_entropy_backward_reference(const Tensor& grad_loss, const Tensor& logits,
                                        const Tensor& target, Reduction reduction,
                                        int64_t ignore_index, double label_smoothing);

// ---- binary cross entropy with logits: x, t of one shape; pos_weight [C] (C = last dim) ----
// l = (1-t)·x + (1 + (pw-1)·t)·softplus(-x), softplus(-x) = max(-x, 0) + log1p(exp(-|x|)).
Tensor bce_with_logits(const Tensor& x, const Tensor& target, const Tensor& pos_weight,
                       Reduction reduction);
struct BceGrads {
  Tensor dx, dtarget, dpos_weight;  // undefined where not asked for
};
BceGrads bce_with_logits_backward(const Tensor& grad_loss, const Tensor& x, const Tensor& target,
                                  const Tensor& pos_weight, Reduction reduction,
                                  bool need_dx, bool need_dtarget, bool need_dpos_weight);
Tensor bce_with_logits_reference(const Tensor& x, const Tensor& target, const Tensor& pos_weight,
                                 Reduction reduction);

// ---- mean squared error: input, target of one shape ----
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction);
// Returns d(input); d(target) is its negation.
Tensor mse_loss_backward(const Tensor& grad_loss, const Tensor& input, const Tensor& target,
                         Reduction reduction);
Tensor mse_loss_reference(const Tensor& input, const Tensor& target, Reduction reduction);

// ---- Highway row kernels for F32 contiguous rows (ops/loss_hwy.cc), no validation ----
namespace loss_kernels {
// max_c x[c], and Σ_c exp(x[c] - max) and Σ_c x[c] (both in double).
void row_stats(const float* x, int64_t C, float* max, double* sumexp, double* sumx);
// dx[c] = g·exp(x[c] - lse) + off.
void row_softmax_grad(const float* x, float* dx, int64_t C, float lse, float g, float off);
}  // namespace loss_kernels

}  // namespace ops
}  // namespace finch
