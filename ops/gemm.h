// fp32/f64 GEMM through OpenBLAS, plus the scalar reference it is checked against.
// C[M, N] = alpha · op(A)[M, K] · op(B)[K, N] + beta · C, row-major with leading dimensions.
#pragma once

#include <cstdint>
#include <type_traits>

#include "framework/tensor.h"

namespace finch::ops {

// Row-major sgemm; op(A) = Aᵀ when trans_a (A is then stored [K, M] with leading dim lda).
// Safe to call from inside parallel_for (the pool switches OpenBLAS to one thread there).
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc);
void dgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
           const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C,
           int64_t ldc);

// sgemm or dgemm by element type with alpha = 1, for kernels templated on F32/F64.
template <typename T>
void gemm_t(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda,
            const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>)
    sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
  else
    dgemm(ta, tb, M, N, K, 1.0, A, lda, B, ldb, beta, C, ldc);
}

// Plain triple loop with the same contract (the reference for tests).
template <typename T>
void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                    const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      T acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        const T a = trans_a ? A[k * lda + m] : A[m * lda + k];
        const T b = trans_b ? B[n * ldb + k] : B[k * ldb + n];
        acc += a * b;
      }
      C[m * ldc + n] = alpha * acc + (beta == T(0) ? T(0) : beta * C[m * ldc + n]);
    }
}

// Tensor-level: a [M, K] (or [K, M] with trans_a) times b, for F32 and F64 2-D tensors with
// any strides (copied to contiguous when BLAS cannot take them). Returns a new [M, N] tensor.
Tensor mm(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);

}  // namespace finch::ops
