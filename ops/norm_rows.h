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

// Batch norm's input x [N, C, *] as [N, C, S] (S = the product of the dims after C), F32 or F64;
// `op` names the caller in the error (batch_norm, sync_batch_norm, their backward).
struct BnDims {
  int64_t N, C, S;
};
inline BnDims bn_dims(const Tensor& x, const char* op) {
  if (x.dim() < 2) fail(op, ": expected an input [N, C, *] with at least 2 dims, got shape ", shape_str(x.shape()));
  if (x.dtype() != DType::f32 && x.dtype() != DType::f64)
    fail(op, ": expected an F32 or F64 input, got ", dtype_name(x.dtype()));
  BnDims d{x.size(0), x.size(1), 1};
  for (int64_t i = 2; i < x.dim(); ++i) d.S *= x.size(i);
  return d;
}

// A running statistic: undefined, or a contiguous tensor of x's dtype with one value per channel.
inline void check_running(const Tensor& r, const Tensor& x, int64_t C, const char* op, const char* name) {
  if (!r.defined()) return;
  if (r.numel() != C || r.dtype() != x.dtype() || !r.is_contiguous())
    fail(op, ": expected ", name, " to be a contiguous ", dtype_name(x.dtype()), " tensor of ", C,
         " elements (one per channel), got shape ", shape_str(r.shape()), " ", dtype_name(r.dtype()),
         r.is_contiguous() ? "" : " (non-contiguous)");
}

template <typename T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace finch::ops::norm_detail
