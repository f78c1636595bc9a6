// Which conv2d/linear/qconv2d/qlinear nodes of a program run on the sparse kernels
// (kernels/sparse_conv.h): those whose constant weight has at least the crossover sparsity that
// bench/bench_sparse.cc measured for that kind of layer, from the table checked in beside this
// (runtime/sparse_thresholds.cc), never a guess.
#pragma once

#include <string>

#include "ops/conv.h"

namespace finch::runtime {

// dense: never (the A/B baseline); measured: where the table says sparse is faster; always: every
// node that can (grouped and depthwise convs never can), for tests and benchmarks.
enum class SparseKernels { dense, measured, always };
// "dense", "measured" or "always"; fails with a sentence naming `what` on anything else.
SparseKernels sparse_kernels_from_name(const std::string& name, const std::string& what);
const char* sparse_kernels_name(SparseKernels k);

// The sparse kernel's shapes, which cross over at different sparsities:
//   conv1x1     a 1×1 stride-1 unpadded conv (reads its CHW planes in place)
//   conv        any other conv with groups 1 (an im2col copy first)
//   linear      a Linear over >= kSpmmRows input rows (SpMM over the transposed rows)
//   linear_row  a Linear over fewer rows (a gathered dot per output)
enum class SparseShape { conv1x1, conv, linear, linear_row };
const char* sparse_shape_name(SparseShape s);
// The shape of a conv (params p, weight [O, I, kh, kw]) or of a Linear (weight [O, I]) over a
// declared input of shape xs: its row of the crossover table. The fp32 and int8 prepares share it.
SparseShape sparse_shape_of(bool conv, const ops::Conv2dParams& p, const Shape& w, const Shape& xs);

// The measured crossover: the least sparsity at which the sparse kernel beat the dense one for
// this precision (int8 or fp32) and shape; above 1 where it never did.
double sparse_crossover(bool int8, SparseShape s);
// Whether a node of this shape whose weight has `sparsity` (a fraction of zeros) runs sparse.
inline bool choose_sparse(SparseKernels mode, bool int8, SparseShape s, double sparsity) {
  if (mode == SparseKernels::always) return true;
  return mode == SparseKernels::measured && sparsity >= sparse_crossover(int8, s);
}

}  // namespace finch::runtime
