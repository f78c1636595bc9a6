// softmax / log_softmax along any dim and their backward kernels, with the scalar references.
//
// Shape vocabulary: around the softmax dim the contiguous input is [O, R, I] (outer, the softmax
// dim, inner). I == 1 is the row case (attention scores, classifier logits): Highway over the
// contiguous row, parallel over rows. I > 1 runs the column kernel: vectors along I, walking R
// with stride I, so no permute copy is made.
#pragma once

#include <cstdint>

#include "framework/tensor.h"

namespace finch::ops {

// Numerically stable: subtracts the max of each slice before exp. F32 (Highway) and F64.
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// dx = y ⊙ (dy − Σ dy⊙y) with y = softmax(x).
Tensor softmax_backward(const Tensor& dy, const Tensor& y, int64_t dim);
// dx = dy − exp(y) ⊙ Σ dy with y = log_softmax(x).
Tensor log_softmax_backward(const Tensor& dy, const Tensor& y, int64_t dim);

// References: plain loops in f64 over [O, R, I], any float dtype in, same dtype out.
Tensor softmax_reference(const Tensor& x, int64_t dim, bool log);
Tensor softmax_backward_reference(const Tensor& dy, const Tensor& y, int64_t dim, bool log);

// Highway kernels (ops/softmax_hwy.cc), exposed for the per-target tests.
// Rows: x, y [rows, n] contiguous.
void softmax_rows_f32(const float* x, float* y, int64_t rows, int64_t n, bool log);
void softmax_backward_rows_f32(const float* dy, const float* y, float* dx, int64_t rows,
                               int64_t n, bool log);
// Columns k0 <= k < k1 of one [R, I] slice (stride I between the R entries).
void softmax_cols_f32(const float* x, float* y, int64_t r, int64_t inner, int64_t k0, int64_t k1,
                      bool log);
void softmax_backward_cols_f32(const float* dy, const float* y, float* dx, int64_t r,
                               int64_t inner, int64_t k0, int64_t k1, bool log);

}  // namespace finch::ops
