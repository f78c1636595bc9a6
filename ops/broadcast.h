// Broadcasting (NumPy/PyTorch rules): the result shape of two operands, the strided loop that
// walks broadcast operands without materializing them, and sum_to, which folds a gradient back
// to an operand's shape.
//
// Shape vocabulary: `out` is the broadcast result shape; an operand of rank r < out.size() is
// aligned to the trailing dims; size-1 dims (and missing leading dims) repeat with stride 0.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "framework/tensor.h"

namespace finch::ops {

// The broadcast of two shapes; throws naming `op` and the first incompatible dim, e.g.
// "add: shapes [2, 3] and [4] cannot be broadcast (dim -1: 3 vs 4)".
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Element strides of `t` read as broadcast to `out` (length out.size(); 0 on repeated dims).
// The caller guarantees t's shape broadcasts to `out`.
Shape broadcast_strides(const Tensor& t, const Shape& out);

// g [out] summed over the dims where `shape` was broadcast, returned with exactly `shape`
// (g itself when the shapes already agree). The gradient of every broadcasting op goes through
// here. F32 and F64; any strides. Fast for the bias patterns ([C] from [N, C] or
// [N, C, H, W]); deterministic for a given thread count.
Tensor sum_to(const Tensor& g, const Shape& shape);
// Plain-loop reference of sum_to (f64 accumulation), for tests.
Tensor sum_to_reference(const Tensor& g, const Shape& shape);

// A coalesced strided loop over up to 4 operands (operand 0 is usually the output). Dims of
// size 1 are dropped and adjacent dims merge when every operand is linear across them, so a
// same-shape contiguous op becomes one flat row and [N, C, H, W] + [1, C, 1, 1] becomes
// [N·C rows of H·W] with the second operand's inner stride 0.
struct StridedLoop {
  Shape shape;                       // coalesced sizes (at least one dim)
  std::vector<Shape> strides;        // per operand, in elements, same length as shape
  int64_t numel = 0;
};
StridedLoop make_strided_loop(const Shape& out, const std::vector<Shape>& operand_strides);

// Calls row(n, offsets, inner_strides) for every innermost run of the loop, splitting the flat
// element range [0, numel) across the pool (chunks of at least `grain` elements). offsets[k] is
// operand k's element offset at the start of the run.
using RowFn = std::function<void(int64_t n, const int64_t* offsets, const int64_t* inner)>;
void for_each_row(const StridedLoop& loop, int64_t grain, const RowFn& row);

}  // namespace finch::ops
