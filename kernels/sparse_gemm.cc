// The plain C++ half of kernels/sparse_gemm.h: building the rows of nonzeros, and the scalar
// references of the four micro-kernels (plain loops, the order the Highway kernels also sum in).
#include <algorithm>
#include <cmath>
#include <limits>

#include "framework/error.h"
#include "kernels/requant.h"
#include "kernels/sparse_gemm.h"

namespace finch::quant::kernels {

namespace {

template <class T>
SparseRows<T> build_rows(const T* w, int64_t M, int64_t K) {
  // Column indices and row pointers are int32 (half the index bytes of int64, and what a gather
  // takes): a layer with 2^31 weights would be 8 GiB of fp32 anyway.
  if (M < 0 || K < 0 || K > std::numeric_limits<int32_t>::max() || M * K > std::numeric_limits<int32_t>::max())
    fail("sparse weights: expected at most 2^31 − 1 weights, found ", M, " × ", K);
  SparseRows<T> r;
  r.M = M, r.K = K;
  r.ptr.reserve(size_t(M + 1));
  r.ptr.push_back(0);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t k = 0; k < K; ++k)
      if (w[m * K + k] != T(0)) r.col.push_back(int32_t(k)), r.val.push_back(w[m * K + k]);
    r.ptr.push_back(int32_t(r.val.size()));
  }
  return r;
}

template <class T>
double zeros_in(const T* w, int64_t n) {
  int64_t z = 0;
  for (int64_t i = 0; i < n; ++i) z += w[i] == T(0);
  return n > 0 ? double(z) / double(n) : 0.0;
}

float activate(float v, FusedAct act) {
  // ops::relu / ops::relu6's formulas: NaN passes through.
  if (act == FusedAct::relu) return v < 0.0f ? 0.0f : v;
  if (act == FusedAct::relu6) return std::isnan(v) ? v : std::min(std::max(v, 0.0f), 6.0f);
  return v;
}

uint8_t code(int32_t acc, const qs8::RowQuant& q, const qs8::OutQuant& o) {
  const int32_t c = quant::requantize(acc, q.m, o.z_out, o.qmin, o.qmax);
  return o.u8 ? uint8_t(c) : uint8_t(int8_t(c));
}

// int32 sums that wrap (as the vector adds do) without signed overflow.
int32_t wrap_add(int32_t a, int32_t b) { return int32_t(uint32_t(a) + uint32_t(b)); }

}  // namespace

SparseRows<float> sparse_rows(const float* w, int64_t M, int64_t K) { return build_rows(w, M, K); }
SparseRows<int8_t> sparse_rows(const int8_t* w, int64_t M, int64_t K) { return build_rows(w, M, K); }
double zero_fraction(const float* w, int64_t n) { return zeros_in(w, n); }

SparseRows<int32_t> sparse_quads(const int8_t* w, int64_t M, int64_t C, int64_t taps) {
  const int64_t Cq = (C + 3) / 4;
  if (M < 0 || C < 0 || taps < 1 || Cq * taps > std::numeric_limits<int32_t>::max() ||
      M * Cq * taps > std::numeric_limits<int32_t>::max())
    fail("sparse weights: expected at most 2^31 − 1 weight quads, found ", M, " × ", Cq, " × ", taps);
  SparseRows<int32_t> r;
  r.M = M, r.K = Cq * taps;
  r.ptr.push_back(0);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t cq = 0; cq < Cq; ++cq)
      for (int64_t t = 0; t < taps; ++t) {
        uint32_t packed = 0;
        for (int64_t j = 0; j < 4 && 4 * cq + j < C; ++j)
          packed |= uint32_t(uint8_t(w[(m * C + 4 * cq + j) * taps + t])) << (8 * j);
        if (packed != 0) r.col.push_back(int32_t(cq * taps + t)), r.val.push_back(int32_t(packed));
      }
    r.ptr.push_back(int32_t(r.val.size()));
  }
  return r;
}
double zero_fraction(const int8_t* w, int64_t n) { return zeros_in(w, n); }

namespace sparse_ref {

void f32_spmm(const SparseRows<float>& w, const float* bias, FusedAct act, const float* x, const int64_t* koff,
              int64_t n0, int64_t n1, int64_t m0, int64_t m1, float* y, int64_t ldy) {
  for (int64_t m = m0; m < m1; ++m)
    for (int64_t n = n0; n < n1; ++n) {
      float acc = bias ? bias[m] : 0.0f;
      for (int32_t j = w.ptr[size_t(m)]; j < w.ptr[size_t(m + 1)]; ++j)
        acc = std::fma(w.val[size_t(j)], x[koff[w.col[size_t(j)]] + n], acc);
      y[m * ldy + n] = activate(acc, act);
    }
}

void f32_spmv(const SparseRows<float>& w, const float* bias, FusedAct act, const float* x, int64_t m0, int64_t m1,
              float* y) {
  for (int64_t m = m0; m < m1; ++m) {
    float acc = 0.0f;
    for (int32_t j = w.ptr[size_t(m)]; j < w.ptr[size_t(m + 1)]; ++j)
      acc = std::fma(w.val[size_t(j)], x[w.col[size_t(j)]], acc);
    y[m] = activate(acc + (bias ? bias[m] : 0.0f), act);
  }
}

void qs8_spmm(const SparseRows<int8_t>& w, const qs8::RowQuant* q, const qs8::OutQuant& o, const uint8_t* x,
              const int64_t* koff, int64_t n0, int64_t n1, int64_t m0, int64_t m1, uint8_t* out, int64_t ldy) {
  for (int64_t m = m0; m < m1; ++m)
    for (int64_t n = n0; n < n1; ++n) {
      int32_t acc = q[m].offset;
      for (int32_t j = w.ptr[size_t(m)]; j < w.ptr[size_t(m + 1)]; ++j)
        acc = wrap_add(acc, int32_t(w.val[size_t(j)]) * int32_t(x[koff[w.col[size_t(j)]] + n]));
      out[m * ldy + n] = code(acc, q[m], o);
    }
}

void qs8_spmv(const SparseRows<int8_t>& w, const qs8::RowQuant* q, const qs8::OutQuant& o, const int32_t* xi,
              int64_t m0, int64_t m1, uint8_t* out) {
  for (int64_t m = m0; m < m1; ++m) {
    int32_t acc = q[m].offset;
    for (int32_t j = w.ptr[size_t(m)]; j < w.ptr[size_t(m + 1)]; ++j)
      acc = wrap_add(acc, int32_t(w.val[size_t(j)]) * xi[w.col[size_t(j)]]);
    out[m] = code(acc, q[m], o);
  }
}

void qs8_spmm_quad(const SparseRows<int32_t>& w, const qs8::RowQuant* q, const qs8::OutQuant& o, const uint8_t* x,
                   const int64_t* koff, int64_t n0, int64_t n1, int64_t m0, int64_t m1, uint8_t* out, int64_t ldy) {
  for (int64_t m = m0; m < m1; ++m)
    for (int64_t n = n0; n < n1; ++n) {
      int32_t acc = q[m].offset;
      for (int32_t j = w.ptr[size_t(m)]; j < w.ptr[size_t(m + 1)]; ++j) {
        const uint8_t* p = x + koff[w.col[size_t(j)]] + 4 * n;
        const uint32_t packed = uint32_t(w.val[size_t(j)]);
        for (int b = 0; b < 4; ++b) acc = wrap_add(acc, int32_t(int8_t(uint8_t(packed >> (8 * b)))) * int32_t(p[b]));
      }
      out[m * ldy + n] = code(acc, q[m], o);
    }
}

}  // namespace sparse_ref

}  // namespace finch::quant::kernels
