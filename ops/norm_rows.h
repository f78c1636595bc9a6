// Internal to ops/batch_norm.cc and ops/layer_norm.cc: the row primitives both norms run on
// (Highway kernels of ops/norm_hwy.cc for F32 runs long enough to fill vectors, the same loops in
// double for F64 and short runs) and the check of an optional affine parameter.
#pragma once

#include <cstdint>
#include <type_traits>

#include "framework/error.h"
#include "ops/norm.h"

namespace finch::ops::norm_detail {

constexpr int64_t kMinSimdRun = 8;

template <typename T>
double run_sum(const T* x, int64_t n) {
  if constexpr (std::is_same_v<T, float>)
    if (n >= kMinSimdRun) return norm_kernels::sum(x, n);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return s;
}

template <typename T>
double run_sum_sq_dev(const T* x, int64_t n, T mean) {
  if constexpr (std::is_same_v<T, float>)
    if (n >= kMinSimdRun) return norm_kernels::sum_sq_dev(x, n, mean);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(x[i] - mean) * double(x[i] - mean);
  return s;
}

template <typename T>
void run_scale_shift(const T* x, T* y, int64_t n, T a, T b) {
  if constexpr (std::is_same_v<T, float>)
    if (n >= kMinSimdRun) return norm_kernels::scale_shift(x, y, n, a, b);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * a + b;
}

template <typename T>
void run_sum_dy_dyx(const T* dy, const T* x, int64_t n, T mean, double* sdy, double* sdyx) {
  if constexpr (std::is_same_v<T, float>)
    if (n >= kMinSimdRun) return norm_kernels::sum_dy_dyx(dy, x, n, mean, sdy, sdyx);
  double s = 0, p = 0;
  for (int64_t i = 0; i < n; ++i) {
    s += dy[i];
    p += double(dy[i]) * double(x[i] - mean);
  }
  *sdy += s;
  *sdyx += p;
}

template <typename T>
void run_affine2(const T* dy, const T* x, T* dx, int64_t n, T a, T b, T c) {
  if constexpr (std::is_same_v<T, float>)
    if (n >= kMinSimdRun) return norm_kernels::affine2(dy, x, dx, n, a, b, c);
  for (int64_t i = 0; i < n; ++i) dx[i] = a * dy[i] + (b * x[i] + c);
}

// Optional per-channel / per-feature parameter: contiguous, x's dtype, `numel` values.
inline Tensor param(const Tensor& t, DType dtype, int64_t numel, const char* op, const char* name) {
  if (!t.defined()) return t;
  if (t.numel() != numel)
    fail(op, ": expected ", name, " with ", numel, " elements, got shape ", shape_str(t.shape()));
  if (t.dtype() != dtype)
    fail(op, ": expected ", name, " of dtype ", dtype_name(dtype), " (the input's), got ",
         dtype_name(t.dtype()));
  return t.contiguous();
}

template <typename T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace finch::ops::norm_detail
