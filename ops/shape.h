// Shape ops that copy: cat, index_select, pad, their backward kernels, and a parallel strided
// copy helper. (Pure views — reshape, permute, slice, expand — are Tensor members.)
//
// Shape vocabulary: around a dim, a contiguous tensor is [O, D, I] (outer, the dim, inner).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/tensor.h"

namespace finch::ops {

// Concatenates along dim (negative counts from the end). All inputs share dtype and every
// other size; inputs may have any strides. Empty 1-D tensors are skipped like torch's legacy
// rule. Returns a new contiguous tensor.
Tensor cat(const std::vector<Tensor>& xs, int64_t dim);

// out = x gathered at `index` (1-D or 0-d, I64 or I32) along dim; out.size(dim) = index.numel().
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// dx = zeros(in_shape); dx[..., index[j], ...] += dy[..., j, ...] (index_add: repeats add up).
Tensor index_select_backward(const Tensor& dy, const Shape& in_shape, int64_t dim,
                             const Tensor& index);

// pads = {last_lo, last_hi, second_last_lo, second_last_hi, ...} (torch.nn.functional.pad).
// mode "constant" (negative pads crop), "reflect" (pad < size) or "replicate" (size > 0).
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, const std::string& mode = "constant",
           double value = 0.0);
// The adjoint: every output element's gradient goes back to the input element it was read
// from (summed where reflect/replicate read one element several times).
Tensor pad_backward(const Tensor& dy, const Shape& in_shape, const std::vector<int64_t>& pads,
                    const std::string& mode);

// dst = src elementwise (same shape and dtype, any strides), parallel over the outer dims.
void strided_copy(const Tensor& dst, const Tensor& src);

// References: per-element loops with Tensor::get/set (tests only).
Tensor pad_reference(const Tensor& x, const std::vector<int64_t>& pads, const std::string& mode,
                     double value);
Tensor index_select_reference(const Tensor& x, int64_t dim, const Tensor& index);

}  // namespace finch::ops
