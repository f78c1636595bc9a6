// Matrix products: torch.matmul (1-D/2-D/batched with broadcast batch dims) and linear
// (x·Wᵀ + b with the bias fused into the GEMM), their backward kernels and scalar references.
// Shapes: x [..., IN], weight [OUT, IN], bias [OUT]; matmul a [..., M, K], b [..., K, N].
#pragma once

#include "framework/tensor.h"

namespace finch::ops {

// torch.matmul: 1-D·1-D is a dot product (0-d result); a 1-D operand is promoted to a matrix
// (row for a, column for b) and the added dim removed again; batch dims broadcast.
Tensor matmul(const Tensor& a, const Tensor& b);
// Gradients of matmul w.r.t. a and b (each of its operand's shape; undefined when not needed).
struct MatmulGrads {
  Tensor da, db;
};
MatmulGrads matmul_backward(const Tensor& dy, const Tensor& a, const Tensor& b, bool need_a,
                            bool need_b);
// Plain loops over the broadcast batch (any strides), F32/F64 — the reference for tests.
Tensor matmul_reference(const Tensor& a, const Tensor& b);

// y [..., OUT] = x [..., IN] · weightᵀ + bias, one GEMM (C is pre-filled with the bias, beta=1).
// bias may be undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);
struct LinearGrads {
  Tensor dx, dweight, dbias;
};
// dx = dy·W, dW = dyᵀ·x, db = Σ_rows dy; one GEMM each, only the ones asked for.
LinearGrads linear_backward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                            bool need_x, bool need_weight, bool need_bias);
Tensor linear_reference(const Tensor& x, const Tensor& weight, const Tensor& bias);

// Column sums of a contiguous [R, C] matrix: out[c] = Σ_r m[r, c], summed in row order (the
// result does not depend on the thread count). F32 accumulates in F32 lanes per column block.
Tensor sum_rows(const Tensor& m);

}  // namespace finch::ops
