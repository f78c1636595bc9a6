// Thin singular value decomposition of a dense f64 matrix, through LAPACK's dgesdd (OpenBLAS
// ships LAPACK, so nothing new is linked): the one factorization low-rank compression needs.
#pragma once

#include <cstdint>
#include <vector>

namespace finch::compress {

// A [M, N] (row-major) = U [M, K] · diag(S) · Vt [K, N], K = min(M, N), S descending and ≥ 0.
// U's columns and Vt's rows are orthonormal. All three are row-major.
struct Svd {
  int64_t m = 0, n = 0, k = 0;
  std::vector<double> u, s, vt;
};

// Computed in f64 (the small singular values that decide a rank are the ones f32 loses).
// Throws finch::Error when LAPACK does not converge or the matrix holds a NaN/infinity.
Svd svd(const std::vector<double>& a, int64_t m, int64_t n);

// U_r diag(S_r) Vt_r, the best rank-r approximation (Eckart–Young), row-major [M, N].
std::vector<double> reconstruct(const Svd& d, int64_t r);

}  // namespace finch::compress
