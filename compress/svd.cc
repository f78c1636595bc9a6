// Thin SVD through LAPACK's dgesdd (divide and conquer), called on the row-major matrix as the
// column-major transpose, so no copy into Fortran order is needed.
#include "compress/svd.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>

#include "framework/error.h"

// gfortran's ABI: every CHARACTER argument adds a hidden length after the declared ones.
extern "C" void dgesdd_(const char* jobz, const int* m, const int* n, double* a, const int* lda, double* s,
                        double* u, const int* ldu, double* vt, const int* ldvt, double* work, const int* lwork,
                        int* iwork, int* info, size_t jobz_len);

namespace finch::compress {

Svd svd(const std::vector<double>& a, int64_t m, int64_t n) {
  if (m < 1 || n < 1 || m > INT_MAX / 2 || n > INT_MAX / 2 || int64_t(a.size()) != m * n)
    fail("svd: expected a matrix of ", m, "×", n, " values with both sizes in 1..2^30, found ", a.size(),
         " values");
  for (double v : a)
    if (!std::isfinite(v)) fail("svd: the matrix holds a NaN or infinity; a diverged weight cannot be factorized");
  // Row-major A [m, n] is column-major B = Aᵀ [n, m]. dgesdd gives B = U' S V'ᵀ, so
  // A = V' S U'ᵀ: the buffer of V'ᵀ (k×m, column-major) read row-major is A's U [m, k], and the
  // buffer of U' (n×k, column-major) read row-major is A's Vt [k, n].
  Svd d;
  d.m = m, d.n = n, d.k = std::min(m, n);
  std::vector<double> b = a;
  d.s.assign(size_t(d.k), 0.0);
  d.u.assign(size_t(m * d.k), 0.0);
  d.vt.assign(size_t(d.k * n), 0.0);
  const int bm = int(n), bn = int(m), ldu = int(n), ldvt = int(d.k);
  std::vector<int> iwork(static_cast<size_t>(8 * d.k));
  int info = 0, lwork = -1;
  double query = 0;
  dgesdd_("S", &bm, &bn, b.data(), &bm, d.s.data(), d.vt.data(), &ldu, d.u.data(), &ldvt, &query, &lwork,
          iwork.data(), &info, 1);
  if (info != 0) fail("svd: LAPACK dgesdd rejected the workspace query (info ", info, ")");
  lwork = int(query) + 1;
  std::vector<double> work(static_cast<size_t>(lwork));
  dgesdd_("S", &bm, &bn, b.data(), &bm, d.s.data(), d.vt.data(), &ldu, d.u.data(), &ldvt, work.data(), &lwork,
          iwork.data(), &info, 1);
  if (info != 0)
    fail("svd: LAPACK dgesdd did not converge on a ", m, "×", n, " matrix (info ", info, ")");
  return d;
}

std::vector<double> reconstruct(const Svd& d, int64_t r) {
  FINCH_CHECK(r >= 0 && r <= d.k, "reconstruct: rank ", r, " outside 0..", d.k);
  std::vector<double> out(size_t(d.m * d.n), 0.0);
  for (int64_t i = 0; i < d.m; ++i)
    for (int64_t j = 0; j < r; ++j) {
      const double us = d.u[size_t(i * d.k + j)] * d.s[size_t(j)];
      const double* v = &d.vt[size_t(j * d.n)];
      double* o = &out[size_t(i * d.n)];
      for (int64_t c = 0; c < d.n; ++c) o[c] += us * v[c];
    }
  return out;
}

}  // namespace finch::compress
