// Scaled dot-product attention (torch.nn.functional.scaled_dot_product_attention, torch 2.x
// semantics): forward, backward and the scalar reference.
//
// Shape vocabulary: [...] batch dims (e.g. [B, heads]), Lq queries, Lk keys, D query/key width,
// Dv value width.
//   S = q·kᵀ·scale (+ float mask | −∞ where the bool mask is false or j > i when causal)
//   P = softmax_rows(S),  O = P·v
// Rows whose every key is masked produce zeros in O and P (and get zero gradients). torch
// returns NaN there; a zero row is what a padded query should see, and NaN would poison the
// whole batch in training. Variable-length batches are expressed through the mask, e.g. a key
// padding mask of shape [B, 1, 1, Lk].
#pragma once

#include <optional>

#include "framework/tensor.h"

namespace finch::ops {

struct AttentionOutput {
  Tensor out;    // O [..., Lq, Dv]
  Tensor probs;  // P [..., Lq, Lk] (saved for backward; zero rows where fully masked)
};

// q [..., Lq, D], k [..., Lk, D], v [..., Lk, Dv] with equal batch dims [...] (any strides;
// views whose last dim is contiguous, such as transposed head views, are read in place).
// mask: undefined, b8 (true = attend) or a float tensor of q's dtype (added to the scores),
// broadcastable to [..., Lq, Lk]. is_causal additionally masks keys j > i (combined with `mask`
// when both are given). scale defaults to 1/sqrt(D). F32 and F64; parallel over the batch dims.
AttentionOutput scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const Tensor& mask = Tensor(),
                                             bool is_causal = false,
                                             std::optional<double> scale = std::nullopt);
AttentionOutput scaled_dot_product_attention_reference(const Tensor& q, const Tensor& k,
                                                       const Tensor& v,
                                                       const Tensor& mask = Tensor(),
                                                       bool is_causal = false,
                                                       std::optional<double> scale = std::nullopt);

struct AttentionNeeds {
  bool q = true, k = true, v = true, mask = false;  // mask: float masks only
};
struct AttentionGrads {
  Tensor dq, dk, dv;
  Tensor dmask;  // dS summed to the mask's shape (only when needs.mask)
};
// dout [..., Lq, Dv] and the forward's probs P back to q, k, v (and a float mask):
//   dV = Pᵀ·dO,  dP = dO·Vᵀ,  dS = P ⊙ (dP − rowsum(dP ⊙ P)),  dQ = dS·K·scale,  dK = dSᵀ·Q·scale
AttentionGrads scaled_dot_product_attention_backward(const Tensor& dout, const Tensor& q,
                                                     const Tensor& k, const Tensor& v,
                                                     const Tensor& probs, const Tensor& mask,
                                                     std::optional<double> scale,
                                                     const AttentionNeeds& needs = {});
AttentionGrads scaled_dot_product_attention_backward_reference(
    const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& probs,
    const Tensor& mask, std::optional<double> scale, const AttentionNeeds& needs = {});

// --- the row kernels (Highway), exposed for tests ---
// In place over `rows` rows of `n` scores each (row stride ld >= n): s ← softmax(s + bias).
// bias (optional) is an additive [rows, n] block with row stride bias_ld (0: one row shared by
// all rows) — a float mask as is, a bool mask as 0/−∞. With causal, row r keeps only its first
// r + 1 scores (the rest become 0). −∞ scores give 0; a row that is all −∞ becomes all zeros.
void softmax_rows_f32(int64_t rows, int64_t n, int64_t ld, float* s, const float* bias = nullptr,
                      int64_t bias_ld = 0, bool causal = false);
// In place: dp ← p ⊙ (dp − Σ_j dp_j p_j), row by row (both with row stride ld >= n).
void softmax_backward_rows_f32(int64_t rows, int64_t n, int64_t ld, const float* p, float* dp);

}  // namespace finch::ops
