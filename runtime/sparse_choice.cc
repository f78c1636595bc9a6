// The names of runtime/sparse_choice.h and the load-time dispatch to the int8 and fp32 sparse
// prepares (quant_ops.cc, float_ops.cc); the crossover table itself is sparse_thresholds.cc.
#include "runtime/sparse_choice.h"

#include "framework/error.h"
#include "kernels/sparse_conv.h"
#include "runtime/op_table.h"

namespace finch::runtime {

SparseKernels sparse_kernels_from_name(const std::string& name, const std::string& what) {
  if (name == "dense") return SparseKernels::dense;
  if (name == "measured") return SparseKernels::measured;
  if (name == "always") return SparseKernels::always;
  fail(what, ": expected dense, measured or always, got '", name, "'");
}

const char* sparse_kernels_name(SparseKernels k) {
  return k == SparseKernels::dense ? "dense" : k == SparseKernels::measured ? "measured" : "always";
}

const char* sparse_shape_name(SparseShape s) {
  switch (s) {
    case SparseShape::conv1x1: return "conv1x1";
    case SparseShape::conv: return "conv";
    case SparseShape::linear: return "linear";
    case SparseShape::linear_row: return "linear_row";
  }
  return "?";
}

std::unique_ptr<NodeKernel> prepare_sparse(const Node& n, const Graph& g, SparseKernels mode, double* sparsity) {
  if (mode == SparseKernels::dense) return nullptr;
  if (n.op == "qconv2d" || n.op == "qlinear") return prepare_sparse_int8(n, g, mode, sparsity);
  if (n.op == "conv2d" || n.op == "linear") return prepare_sparse_f32(n, g, mode, sparsity);
  return nullptr;
}

SparseShape sparse_shape_of(bool conv, const ops::Conv2dParams& p, const Shape& w, const Shape& xs) {
  if (conv) {
    const bool direct = w.size() == 4 && w[2] == 1 && w[3] == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0;
    return direct ? SparseShape::conv1x1 : SparseShape::conv;
  }
  // The declared input's rows (dim 0 is the batch of capture, 1).
  const int64_t rows = w.size() == 2 && w[1] > 0 ? shape_numel(xs) / w[1] : 0;
  return rows >= quant::kernels::kSpmmRows ? SparseShape::linear : SparseShape::linear_row;
}

}  // namespace finch::runtime
