// Elementwise arithmetic with NumPy/PyTorch broadcasting, unary math, clamp, where and the
// comparisons: pure functions over tensors (no autograd).
//
// Every op: F32 runs the Highway kernels (ops/elementwise_hwy.cc) split over the thread pool;
// F64 runs the plain-loop reference below it. Both operands of a binary op must share the dtype
// (F32 or F64). Inputs may have any strides; outputs are new contiguous tensors of the
// broadcast shape. Shape vocabulary: `out` = broadcast_shapes(a, b) (see ops/broadcast.h).
#pragma once

#include <cstdint>
#include <optional>

#include "framework/tensor.h"

namespace finch::ops {

// ---- binary, broadcasting: out [broadcast(a, b)] ----
Tensor add(const Tensor& a, const Tensor& b, double alpha = 1.0);  // a + alpha·b
Tensor sub(const Tensor& a, const Tensor& b, double alpha = 1.0);  // a − alpha·b
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& exponent);  // std::pow semantics (NaN for x<0, p∉ℤ)
// Comparisons → b8 [broadcast(a, b)].
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
// cond (b8) ? a : b, all three broadcast together.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

// ---- unary and scalar: out [x] ----
Tensor add_scalar(const Tensor& x, double s);
Tensor mul_scalar(const Tensor& x, double s);
Tensor pow_scalar(const Tensor& x, double exponent);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor abs(const Tensor& x);
// Either bound may be absent; with min > max every element becomes max (as torch).
Tensor clamp(const Tensor& x, std::optional<double> min, std::optional<double> max);

// ---- backward kernels (dy and x share a shape) ----
Tensor abs_backward(const Tensor& dy, const Tensor& x);  // dy·sgn(x), 0 at x == 0
// dy where min <= x <= max (bounds inclusive, as torch), else 0.
Tensor clamp_backward(const Tensor& dy, const Tensor& x, std::optional<double> min,
                      std::optional<double> max);
// d(a^b)/da · dy = dy·b·a^(b−1) (0 where b == 0) and d(a^b)/db · dy = dy·a^b·ln a (0 where
// a == 0 and b >= 0), as torch; all broadcast to `out`, the results have shape `out`.
Tensor pow_backward_base(const Tensor& dy, const Tensor& a, const Tensor& b);
Tensor pow_backward_exponent(const Tensor& dy, const Tensor& a, const Tensor& b);

// ---- plain-loop references (F32 and F64; any strides); kept for the cross-check tests ----
enum class BinaryOp : uint8_t { add, sub, mul, div, pow };
enum class CompareOp : uint8_t { eq, ne, lt, le, gt, ge };
enum class UnaryOp : uint8_t { neg, exp, log, sqrt, rsqrt, abs, add_scalar, mul_scalar, pow_scalar,
                               clamp };
// Parameters of the parameterized unary ops: add/mul_scalar (p0), pow_scalar (p0),
// clamp (p0 = min, p1 = max; ±inf when absent).
struct UnaryParams {
  double p0 = 0, p1 = 0;
};
Tensor binary_reference(BinaryOp op, const Tensor& a, const Tensor& b, double alpha = 1.0);
Tensor compare_reference(CompareOp op, const Tensor& a, const Tensor& b);
Tensor where_reference(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor unary_reference(UnaryOp op, const Tensor& x, UnaryParams p = {});

// ---- micro-kernels (ops/elementwise_hwy.cc): no validation, contiguous output ----
namespace kernels {
// out[i] = a[i·sa] op b[i·sb] for i < n (add/sub scale b by alpha). Strides 0 and 1 take the
// SIMD paths; anything else runs a scalar loop.
void binary_f32(BinaryOp op, float* out, const float* a, int64_t sa, const float* b, int64_t sb,
                int64_t n, float alpha);
void compare_f32(CompareOp op, bool* out, const float* a, int64_t sa, const float* b, int64_t sb,
                 int64_t n);
void where_f32(float* out, const bool* c, int64_t sc, const float* a, int64_t sa, const float* b,
               int64_t sb, int64_t n);
void unary_f32(UnaryOp op, float* out, const float* x, int64_t n, float p0, float p1);
// Σ x[0..n) with vector accumulators, returned in double.
double sum_f32(const float* x, int64_t n);
// acc[i] += x[i] (acc in double: sum_to accumulates many rows without drifting).
void accumulate_f32(double* acc, const float* x, int64_t n);
}  // namespace kernels

}  // namespace finch::ops
