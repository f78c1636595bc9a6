// Elementwise operators: validation, broadcasting, dispatch to the F32 Highway kernels or the
// plain-loop references (F64, and the cross-check tests).
#include "ops/elementwise.h"

#include <cmath>
#include <limits>

#include "framework/parallel.h"
#include "ops/broadcast.h"

namespace finch::ops {

namespace {

// Elements per parallel chunk: below this a thread hand-off costs more than the work.
constexpr int64_t kGrain = int64_t(1) << 15;

const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add: return "add";
    case BinaryOp::sub: return "sub";
    case BinaryOp::mul: return "mul";
    case BinaryOp::div: return "div";
    case BinaryOp::pow: return "pow";
  }
  return "?";
}
const char* compare_name(CompareOp op) {
  static const char* names[] = {"eq", "ne", "lt", "le", "gt", "ge"};
  return names[int(op)];
}

void check_float(const Tensor& t, const char* op, const char* what) {
  if (!t.defined()) fail(op, ": ", what, " is an undefined tensor");
  if (t.dtype() != DType::f32 && t.dtype() != DType::f64)
    fail(op, ": expected ", what, " to be F32 or F64, got ", dtype_name(t.dtype()));
}

// Comparisons also take integer and bool tensors (labels, argmax results, token ids): only the
// 16-bit floats, which have no C++ comparison here, are refused.
void check_compare_pair(const Tensor& a, const Tensor& b, const char* op) {
  for (const Tensor* t : {&a, &b}) {
    const char* what = t == &a ? "the first operand" : "the second operand";
    if (!t->defined()) fail(op, ": ", what, " is an undefined tensor");
    if (t->dtype() == DType::f16 || t->dtype() == DType::bf16)
      fail(op, ": expected ", what, " to be a float (F32, F64), integer or bool tensor, got ", dtype_name(t->dtype()),
           " (convert it with to_dtype)");
  }
  if (a.dtype() != b.dtype())
    fail(op, ": both operands must have the same dtype, got ", dtype_name(a.dtype()), " and ",
         dtype_name(b.dtype()), " (convert one with to_dtype)");
}

void check_pair(const Tensor& a, const Tensor& b, const char* op) {
  check_float(a, op, "the first operand");
  check_float(b, op, "the second operand");
  if (a.dtype() != b.dtype())
    fail(op, ": both operands must have the same dtype, got ", dtype_name(a.dtype()), " and ",
         dtype_name(b.dtype()), " (convert one with to_dtype)");
}

template <typename T>
T apply_binary(BinaryOp op, T a, T b, T alpha) {
  switch (op) {
    case BinaryOp::add: return a + alpha * b;
    case BinaryOp::sub: return a - alpha * b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
    case BinaryOp::pow: return std::pow(a, b);
  }
  return T(0);
}

template <typename T>
bool apply_compare(CompareOp op, T a, T b) {
  switch (op) {
    case CompareOp::eq: return a == b;
    case CompareOp::ne: return a != b;
    case CompareOp::lt: return a < b;
    case CompareOp::le: return a <= b;
    case CompareOp::gt: return a > b;
    case CompareOp::ge: return a >= b;
  }
  return false;
}

template <typename T>
T apply_unary(UnaryOp op, T x, T p0, T p1) {
  switch (op) {
    case UnaryOp::neg: return -x;
    case UnaryOp::exp: return std::exp(x);
    case UnaryOp::log: return std::log(x);
    case UnaryOp::sqrt: return std::sqrt(x);
    case UnaryOp::rsqrt: return T(1) / std::sqrt(x);
    case UnaryOp::abs: return std::abs(x);
    case UnaryOp::add_scalar: return x + p0;
    case UnaryOp::mul_scalar: return x * p0;
    case UnaryOp::pow_scalar: return std::pow(x, p0);
    case UnaryOp::clamp: return std::isnan(x) ? x : std::min(std::max(x, p0), p1);
  }
  return T(0);
}

// Plain loop over the broadcast output: fn(out_index, offsets of each input).
template <typename F>
void reference_loop(const Shape& out, const std::vector<const Tensor*>& ins, F&& fn) {
  std::vector<Shape> st;
  for (const Tensor* t : ins) st.push_back(broadcast_strides(*t, out));
  std::vector<int64_t> off(ins.size());
  for_each_index(out, [&](int64_t i, const Shape& idx) {
    for (size_t k = 0; k < ins.size(); ++k) {
      off[k] = 0;
      for (size_t d = 0; d < idx.size(); ++d) off[k] += idx[d] * st[k][d];
    }
    fn(i, off.data());
  });
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b, double alpha) {
  const char* name = binary_name(op);
  check_pair(a, b, name);
  if (a.dtype() != DType::f32) return binary_reference(op, a, b, alpha);
  const Shape out_shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = empty(out_shape, DType::f32);
  const StridedLoop L = make_strided_loop(
      out_shape, {out.strides(), broadcast_strides(a, out_shape), broadcast_strides(b, out_shape)});
  float* po = out.data<float>();
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  const float fa = float(alpha);
  for_each_row(L, kGrain, [&](int64_t n, const int64_t* off, const int64_t* in) {
    kernels::binary_f32(op, po + off[0], pa + off[1], in[1], pb + off[2], in[2], n, fa);
  });
  return out;
}

Tensor compare(CompareOp op, const Tensor& a, const Tensor& b) {
  const char* name = compare_name(op);
  check_compare_pair(a, b, name);
  if (a.dtype() != DType::f32) return compare_reference(op, a, b);
  const Shape out_shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = empty(out_shape, DType::b8);
  const StridedLoop L = make_strided_loop(
      out_shape, {out.strides(), broadcast_strides(a, out_shape), broadcast_strides(b, out_shape)});
  bool* po = out.data<bool>();
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  for_each_row(L, kGrain, [&](int64_t n, const int64_t* off, const int64_t* in) {
    kernels::compare_f32(op, po + off[0], pa + off[1], in[1], pb + off[2], in[2], n);
  });
  return out;
}

Tensor unary(UnaryOp op, const Tensor& x, UnaryParams p, const char* name) {
  check_float(x, name, "the input");
  if (x.dtype() != DType::f32) return unary_reference(op, x, p);
  const Tensor xc = x.contiguous();
  Tensor out = empty(x.shape(), DType::f32);
  const float* px = xc.data<float>();
  float* po = out.data<float>();
  const float p0 = float(p.p0), p1 = float(p.p1);
  parallel_for(0, x.numel(), kGrain, [&](int64_t b, int64_t e) {
    kernels::unary_f32(op, po + b, px + b, e - b, p0, p1);
  });
  return out;
}

}  // namespace

// ---- references ----

Tensor binary_reference(BinaryOp op, const Tensor& a, const Tensor& b, double alpha) {
  check_pair(a, b, binary_name(op));
  const Shape out_shape = broadcast_shapes(a.shape(), b.shape(), binary_name(op));
  Tensor out = empty(out_shape, a.dtype());
  visit_dtype(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      const T* pa = a.data<T>();
      const T* pb = b.data<T>();
      T* po = out.data<T>();
      reference_loop(out_shape, {&a, &b}, [&](int64_t i, const int64_t* off) {
        po[i] = apply_binary<T>(op, pa[off[0]], pb[off[1]], T(alpha));
      });
    }
  });
  return out;
}

Tensor compare_reference(CompareOp op, const Tensor& a, const Tensor& b) {
  check_compare_pair(a, b, compare_name(op));
  const Shape out_shape = broadcast_shapes(a.shape(), b.shape(), compare_name(op));
  Tensor out = empty(out_shape, DType::b8);
  bool* po = out.data<bool>();
  visit_dtype(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_arithmetic_v<T>) {
      const T* pa = a.data<T>();
      const T* pb = b.data<T>();
      reference_loop(out_shape, {&a, &b}, [&](int64_t i, const int64_t* off) {
        po[i] = apply_compare<T>(op, pa[off[0]], pb[off[1]]);
      });
    }
  });
  return out;
}

Tensor where_reference(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_pair(a, b, "where");
  const Shape out_shape =
      broadcast_shapes(cond.shape(), broadcast_shapes(a.shape(), b.shape(), "where"), "where");
  Tensor out = empty(out_shape, a.dtype());
  const bool* pc = cond.data<bool>();
  visit_dtype(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      const T* pa = a.data<T>();
      const T* pb = b.data<T>();
      T* po = out.data<T>();
      reference_loop(out_shape, {&cond, &a, &b}, [&](int64_t i, const int64_t* off) {
        po[i] = pc[off[0]] ? pa[off[1]] : pb[off[2]];
      });
    }
  });
  return out;
}

Tensor unary_reference(UnaryOp op, const Tensor& x, UnaryParams p) {
  check_float(x, "unary_reference", "the input");
  Tensor out = empty(x.shape(), x.dtype());
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      const T* px = x.data<T>();
      T* po = out.data<T>();
      reference_loop(x.shape(), {&x}, [&](int64_t i, const int64_t* off) {
        po[i] = apply_unary<T>(op, px[off[0]], T(p.p0), T(p.p1));
      });
    }
  });
  return out;
}

// ---- binary ----
Tensor add(const Tensor& a, const Tensor& b, double alpha) { return binary(BinaryOp::add, a, b, alpha); }
Tensor sub(const Tensor& a, const Tensor& b, double alpha) { return binary(BinaryOp::sub, a, b, alpha); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::mul, a, b, 1.0); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::div, a, b, 1.0); }
Tensor pow(const Tensor& a, const Tensor& e) { return binary(BinaryOp::pow, a, e, 1.0); }
Tensor eq(const Tensor& a, const Tensor& b) { return compare(CompareOp::eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare(CompareOp::ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare(CompareOp::lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return compare(CompareOp::le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare(CompareOp::gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare(CompareOp::ge, a, b); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  if (!cond.defined() || cond.dtype() != DType::b8)
    fail("where: expected a b8 condition, got ",
         cond.defined() ? dtype_name(cond.dtype()) : "an undefined tensor");
  check_pair(a, b, "where");
  if (a.dtype() != DType::f32) return where_reference(cond, a, b);
  const Shape out_shape =
      broadcast_shapes(cond.shape(), broadcast_shapes(a.shape(), b.shape(), "where"), "where");
  Tensor out = empty(out_shape, DType::f32);
  const StridedLoop L =
      make_strided_loop(out_shape, {out.strides(), broadcast_strides(cond, out_shape),
                                    broadcast_strides(a, out_shape), broadcast_strides(b, out_shape)});
  float* po = out.data<float>();
  const bool* pc = cond.data<bool>();
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  for_each_row(L, kGrain, [&](int64_t n, const int64_t* off, const int64_t* in) {
    kernels::where_f32(po + off[0], pc + off[1], in[1], pa + off[2], in[2], pb + off[3], in[3], n);
  });
  return out;
}

// ---- unary ----
Tensor add_scalar(const Tensor& x, double s) {
  // Integer tensors (a batch's lengths, shortened by a model's valid convolutions) add a whole
  // number exactly; the sum must stay in the dtype's range.
  if (x.dtype() == DType::i64 || x.dtype() == DType::i32) {
    const double lim = x.dtype() == DType::i64 ? 9.0e15 : 2147483647.0;
    if (s != std::floor(s) || std::fabs(s) > lim)
      fail("add: expected a whole number to add to an ", dtype_name(x.dtype()), " tensor, got ", s);
    const Tensor xc = x.contiguous();
    Tensor out = empty(x.shape(), x.dtype());
    visit_dtype(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_integral_v<T>) {
        const T* px = xc.data<T>();
        T* po = out.data<T>();
        for (int64_t i = 0; i < x.numel(); ++i) {
          const double v = double(px[i]) + s;
          if (std::fabs(v) > lim) fail("add: ", px[i], " + ", s, " leaves the range of ", dtype_name(x.dtype()));
          po[i] = T(px[i] + T(s));
        }
      }
    });
    return out;
  }
  return unary(UnaryOp::add_scalar, x, {s, 0}, "add");
}
Tensor mul_scalar(const Tensor& x, double s) { return unary(UnaryOp::mul_scalar, x, {s, 0}, "mul"); }
Tensor pow_scalar(const Tensor& x, double e) { return unary(UnaryOp::pow_scalar, x, {e, 0}, "pow"); }
Tensor neg(const Tensor& x) { return unary(UnaryOp::neg, x, {}, "neg"); }
Tensor exp(const Tensor& x) { return unary(UnaryOp::exp, x, {}, "exp"); }
Tensor log(const Tensor& x) { return unary(UnaryOp::log, x, {}, "log"); }
Tensor sqrt(const Tensor& x) { return unary(UnaryOp::sqrt, x, {}, "sqrt"); }
Tensor rsqrt(const Tensor& x) { return unary(UnaryOp::rsqrt, x, {}, "rsqrt"); }
Tensor abs(const Tensor& x) { return unary(UnaryOp::abs, x, {}, "abs"); }

Tensor clamp(const Tensor& x, std::optional<double> min, std::optional<double> max) {
  const double inf = std::numeric_limits<double>::infinity();
  return unary(UnaryOp::clamp, x, {min.value_or(-inf), max.value_or(inf)}, "clamp");
}

// ---- backward kernels: plain loops (cheap, memory bound; the compiler vectorizes them) ----

namespace {
template <typename F>
Tensor same_shape_map(const Tensor& dy, const Tensor& x, const char* op, F&& f) {
  check_pair(dy, x, op);
  if (dy.shape() != x.shape())
    fail(op, ": expected the gradient and the input to have the same shape, got ",
         shape_str(dy.shape()), " and ", shape_str(x.shape()));
  const Tensor g = dy.contiguous(), xc = x.contiguous();
  Tensor out = empty(x.shape(), x.dtype());
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      const T* pg = g.data<T>();
      const T* px = xc.data<T>();
      T* po = out.data<T>();
      parallel_for(0, x.numel(), kGrain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) po[i] = f(pg[i], px[i]);
      });
    }
  });
  return out;
}
}  // namespace

Tensor abs_backward(const Tensor& dy, const Tensor& x) {
  return same_shape_map(dy, x, "abs_backward", [](auto g, auto v) {
    using T = decltype(v);
    return v > T(0) ? g : v < T(0) ? -g : T(0);
  });
}

Tensor clamp_backward(const Tensor& dy, const Tensor& x, std::optional<double> min,
                      std::optional<double> max) {
  const double inf = std::numeric_limits<double>::infinity();
  const double lo = min.value_or(-inf), hi = max.value_or(inf);
  return same_shape_map(dy, x, "clamp_backward", [lo, hi](auto g, auto v) {
    using T = decltype(v);
    return (v >= T(lo) && v <= T(hi)) ? g : T(0);
  });
}

namespace {
template <typename F>
Tensor pow_backward(const Tensor& dy, const Tensor& a, const Tensor& b, const char* op, F&& f) {
  check_pair(a, b, op);
  check_pair(dy, a, op);
  const Shape out_shape = broadcast_shapes(a.shape(), b.shape(), op);
  if (dy.shape() != out_shape)
    fail(op, ": expected a gradient of shape ", shape_str(out_shape), ", got ",
         shape_str(dy.shape()));
  Tensor out = empty(out_shape, a.dtype());
  visit_dtype(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      const T* pg = dy.data<T>();
      const T* pa = a.data<T>();
      const T* pb = b.data<T>();
      T* po = out.data<T>();
      reference_loop(out_shape, {&dy, &a, &b}, [&](int64_t i, const int64_t* off) {
        po[i] = f(pg[off[0]], pa[off[1]], pb[off[2]]);
      });
    }
  });
  return out;
}
}  // namespace

Tensor pow_backward_base(const Tensor& dy, const Tensor& a, const Tensor& b) {
  return pow_backward(dy, a, b, "pow_backward", [](auto g, auto x, auto p) {
    using T = decltype(x);
    return p == T(0) ? T(0) : g * p * std::pow(x, p - T(1));
  });
}

Tensor pow_backward_exponent(const Tensor& dy, const Tensor& a, const Tensor& b) {
  return pow_backward(dy, a, b, "pow_backward", [](auto g, auto x, auto p) {
    using T = decltype(x);
    return (x == T(0) && p >= T(0)) ? T(0) : g * std::pow(x, p) * std::log(x);
  });
}

}  // namespace finch::ops
