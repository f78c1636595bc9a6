// Reductions (sum, mean, max/argmax, var) over any set of dims, their backward kernels, and the
// scalar references the fast paths are checked against.
//
// Shape vocabulary: a reduction is planned on the input with adjacent dims of the same kind
// merged, giving groups K (kept) and R (reduced); the two hot layouts are
//   [O, R]     rows: reduce the contiguous last group (softmax-like, layer-norm statistics)
//   [R, K]     columns: reduce an outer group (bias / batch-norm gradients over N, H, W)
// and a general plan is a sequence of those two steps, innermost reduced group first.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "framework/tensor.h"

namespace finch::ops {

// dims empty = all dims; negative dims count from the end; duplicates are an error.
// F32 and F64 (F32 accumulates in blocks, see reduce.cc); outputs are new contiguous tensors.
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Values and i64 indices of the max along dim (the first maximum wins, NaN counts as the
// largest, as torch.max). An empty dim is an error, as in torch.
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
// Σ (x - mean)² / max(0, n - correction) over dims (torch.var semantics).
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1,
           bool keepdim = false);

// --- backward kernels ---
// dy has the reduced shape (with or without keepdim); returns dy broadcast back to in_shape,
// multiplied by `scale` (1 for sum, 1/n for mean).
Tensor reduce_backward(const Tensor& dy, const Shape& in_shape, const std::vector<int64_t>& dims,
                       bool keepdim, double scale = 1.0);
// dx = zeros(in_shape) with dy scattered to indices along dim (max's gradient).
Tensor max_backward(const Tensor& dy, const Tensor& indices, const Shape& in_shape, int64_t dim,
                    bool keepdim);
// dx = dy · 2 (x - mean) / (n - correction), mean over dims.
Tensor var_backward(const Tensor& dy, const Tensor& x, const std::vector<int64_t>& dims,
                    int64_t correction, bool keepdim);

// --- helpers shared with the shape ops ---
// The sorted, wrapped, de-duplicated-checked dims (all dims when `dims` is empty).
std::vector<int64_t> normalize_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op);
// The output shape of a reduction over `dims` (normalized).
Shape reduced_shape(const Shape& in, const std::vector<int64_t>& dims, bool keepdim);
// Number of elements reduced into each output element.
int64_t reduced_count(const Shape& in, const std::vector<int64_t>& dims);

// --- references: plain odometer loops over the input, double accumulation ---
Tensor sum_reference(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
Tensor var_reference(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction,
                     bool keepdim);
std::pair<Tensor, Tensor> max_reference(const Tensor& x, int64_t dim, bool keepdim);

// --- Highway kernels (ops/reduce_hwy.cc), exposed for the per-target tests ---
// Σ x[0..n) with 4 vector accumulators.
float row_sum_f32(const float* x, int64_t n);
// out[r] = Σ of row r of a contiguous [rows, n] (n up to a few thousand; no f64 blocking).
void row_sums_f32(const float* x, int64_t rows, int64_t n, float* out);
// Max (NaN is the largest) and its first index for each row of a contiguous [rows, n], n >= 1.
void row_max_f32(const float* x, int64_t rows, int64_t n, float* vals, int64_t* idx);
// Σ (x[i] − m)² for i < n, and its column form out[k] = Σ_r (x[r·ld + k] − m[k])².
float row_sqdev_f32(const float* x, int64_t n, float m);
void col_sqdev_f32(const float* x, int64_t rows, int64_t inner, int64_t ld, const float* m,
                   float* out);
// out[k] (+)= Σ_r x[r·ld + k] for k < inner, r < rows.
void col_sum_f32(const float* x, int64_t rows, int64_t inner, int64_t ld, float* out,
                 bool accumulate);

}  // namespace finch::ops
