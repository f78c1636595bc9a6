// OpenBLAS calls behind one row-major interface.
#include "ops/gemm.h"

#include <cblas.h>

namespace finch::ops {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc) {
  if (M == 0 || N == 0) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}

void dgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
           const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C,
           int64_t ldc) {
  if (M == 0 || N == 0) return;
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}

namespace {
// BLAS takes a row-major matrix whose last dim has stride 1 and whose rows are >= cols apart;
// a transposed view is the same memory read the other way, so flip the flag instead of copying.
Tensor blas_operand(const Tensor& t, bool& trans) {
  if (t.stride(1) == 1 && t.stride(0) >= std::max<int64_t>(t.size(1), 1)) return t;
  if (t.stride(0) == 1 && t.stride(1) >= std::max<int64_t>(t.size(0), 1)) {
    trans = !trans;
    return t.t();
  }
  return t.contiguous();
}
}  // namespace

Tensor mm(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  if (a.dim() != 2 || b.dim() != 2)
    fail("mm: expected 2-D operands, got shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()));
  if (a.dtype() != b.dtype() || (a.dtype() != DType::f32 && a.dtype() != DType::f64))
    fail("mm: expected two F32 or two F64 tensors, got ", dtype_name(a.dtype()), " and ",
         dtype_name(b.dtype()));
  const int64_t M = trans_a ? a.size(1) : a.size(0), K = trans_a ? a.size(0) : a.size(1);
  const int64_t Kb = trans_b ? b.size(1) : b.size(0), N = trans_b ? b.size(0) : b.size(1);
  if (K != Kb)
    fail("mm: inner dimensions differ: ", shape_str(a.shape()), (trans_a ? "ᵀ" : ""), " times ",
         shape_str(b.shape()), (trans_b ? "ᵀ" : ""), " (", K, " vs ", Kb, ")");
  Tensor out = empty({M, N}, a.dtype());
  if (K == 0) return out.zero_();
  bool ta = trans_a, tb = trans_b;
  const Tensor A = blas_operand(a, ta), B = blas_operand(b, tb);
  if (a.dtype() == DType::f32)
    sgemm(ta, tb, M, N, K, 1.0f, A.data<float>(), A.stride(0), B.data<float>(), B.stride(0), 0.0f,
          out.data<float>(), N);
  else
    dgemm(ta, tb, M, N, K, 1.0, A.data<double>(), A.stride(0), B.data<double>(), B.stride(0), 0.0,
          out.data<double>(), N);
  return out;
}

}  // namespace finch::ops
