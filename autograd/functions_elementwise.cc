// Differentiable elementwise ops: arithmetic with broadcasting, unary math, clamp, where, and
// the (non-differentiable) comparisons. Broadcasting backward rules fold with ops::sum_to.
#include <cmath>

#include "autograd/capture.h"
#include "autograd/functional.h"
#include "autograd/node.h"
#include "framework/grad_mode.h"
#include "ops/broadcast.h"
#include "ops/elementwise.h"
#include "ops/op_attrs.h"

namespace finch {

using autograd::Grads;
using autograd::Needs;

namespace {

// Both operands must share a floating dtype (no implicit promotion; scalars adopt the tensor's).
void check_operands(const Tensor& a, const Tensor& b, const char* op) {
  if (!a.defined() || !b.defined()) fail(op, ": an operand is an undefined tensor");
  if (a.dtype() != b.dtype())
    fail(op, ": both operands must have the same dtype, got ", dtype_name(a.dtype()), " and ",
         dtype_name(b.dtype()), " (convert one with to_dtype)");
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b, double alpha) {
  autograd::CaptureScope cap;
  check_operands(a, b, "add");
  const bool rec = autograd::should_record({a, b});
  NoGradGuard ng;
  Tensor y = ops::add(a, b, alpha);
  if (cap.active()) cap.record("add", {a, b}, {y}, {{ops::attr::alpha.name, alpha}, {ops::attr::act.name, "none"}});
  if (rec)
    autograd::record("add", {a, b}, {y},
                     [sa = a.shape(), sb = b.shape(), alpha](const Grads& g, const Needs& need) {
                       Grads d(2);
                       if (need[0]) d[0] = ops::sum_to(g[0], sa);
                       if (need[1])
                         d[1] = ops::sum_to(alpha == 1.0 ? g[0] : ops::mul_scalar(g[0], alpha), sb);
                       return d;
                     });
  return y;
}

Tensor sub(const Tensor& a, const Tensor& b, double alpha) {
  autograd::CaptureScope cap;
  check_operands(a, b, "sub");
  const bool rec = autograd::should_record({a, b});
  NoGradGuard ng;
  Tensor y = ops::sub(a, b, alpha);
  if (cap.active()) cap.record("sub", {a, b}, {y}, {{ops::attr::alpha.name, alpha}, {ops::attr::act.name, "none"}});
  if (rec)
    autograd::record("sub", {a, b}, {y},
                     [sa = a.shape(), sb = b.shape(), alpha](const Grads& g, const Needs& need) {
                       Grads d(2);
                       if (need[0]) d[0] = ops::sum_to(g[0], sa);
                       if (need[1]) d[1] = ops::sum_to(ops::mul_scalar(g[0], -alpha), sb);
                       return d;
                     });
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  autograd::CaptureScope cap;
  check_operands(a, b, "mul");
  const bool rec = autograd::should_record({a, b});
  NoGradGuard ng;
  Tensor y = ops::mul(a, b);
  if (cap.active()) cap.record("mul", {a, b}, {y});
  if (rec)
    autograd::record("mul", {a, b}, {y},
                     [a = a.detach(), b = b.detach()](const Grads& g, const Needs& need) {
                       Grads d(2);
                       if (need[0]) d[0] = ops::sum_to(ops::mul(g[0], b), a.shape());
                       if (need[1]) d[1] = ops::sum_to(ops::mul(g[0], a), b.shape());
                       return d;
                     });
  return y;
}

Tensor div(const Tensor& a, const Tensor& b) {
  autograd::CaptureScope cap;
  check_operands(a, b, "div");
  const bool rec = autograd::should_record({a, b});
  NoGradGuard ng;
  Tensor y = ops::div(a, b);
  if (cap.active()) cap.record("div", {a, b}, {y});
  if (rec)
    autograd::record("div", {a, b}, {y},
                     [a = a.detach(), b = b.detach()](const Grads& g, const Needs& need) {
                       Grads d(2);
                       const Tensor ga = ops::div(g[0], b);  // dL/da = g/b
                       if (need[0]) d[0] = ops::sum_to(ga, a.shape());
                       // dL/db = −g·a/b² = −(g/b)·a/b
                       if (need[1]) d[1] = ops::sum_to(ops::neg(ops::div(ops::mul(ga, a), b)), b.shape());
                       return d;
                     });
  return y;
}

Tensor add(const Tensor& a, double s) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({a});
  NoGradGuard ng;
  Tensor y = ops::add_scalar(a, s);
  if (cap.active()) cap.record("add_scalar", {a}, {y}, {{ops::attr::value.name, s}});
  if (rec)
    autograd::record("add_scalar", {a}, {y}, [](const Grads& g, const Needs&) { return Grads{g[0]}; });
  return y;
}

Tensor mul(const Tensor& a, double s) {
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({a});
  NoGradGuard ng;
  Tensor y = ops::mul_scalar(a, s);
  if (cap.active()) cap.record("mul_scalar", {a}, {y}, {{ops::attr::value.name, s}});
  if (rec)
    autograd::record("mul_scalar", {a}, {y},
                     [s](const Grads& g, const Needs&) { return Grads{ops::mul_scalar(g[0], s)}; });
  return y;
}

Tensor neg(const Tensor& a) {
  const bool rec = autograd::should_record({a});
  NoGradGuard ng;
  Tensor y = ops::neg(a);
  if (rec) autograd::record("neg", {a}, {y}, [](const Grads& g, const Needs&) { return Grads{ops::neg(g[0])}; });
  return y;
}

Tensor pow(const Tensor& a, double e) {
  const bool rec = autograd::should_record({a});
  NoGradGuard ng;
  Tensor y = ops::pow_scalar(a, e);
  if (rec)
    autograd::record("pow_scalar", {a}, {y}, [a = a.detach(), e](const Grads& g, const Needs&) {
      // d(a^e)/da = e·a^(e−1); exponent 0 has gradient 0 everywhere (as torch, even at a = 0).
      if (e == 0.0) return Grads{ops::mul_scalar(g[0], 0.0)};
      return Grads{ops::mul(g[0], ops::mul_scalar(ops::pow_scalar(a, e - 1.0), e))};
    });
  return y;
}

Tensor pow(const Tensor& a, const Tensor& exponent) {
  check_operands(a, exponent, "pow");
  const bool rec = autograd::should_record({a, exponent});
  NoGradGuard ng;
  Tensor y = ops::pow(a, exponent);
  if (rec)
    autograd::record("pow", {a, exponent}, {y},
                     [a = a.detach(), b = exponent.detach()](const Grads& g, const Needs& need) {
                       Grads d(2);
                       if (need[0]) d[0] = ops::sum_to(ops::pow_backward_base(g[0], a, b), a.shape());
                       if (need[1])
                         d[1] = ops::sum_to(ops::pow_backward_exponent(g[0], a, b), b.shape());
                       return d;
                     });
  return y;
}

Tensor exp(const Tensor& a) {
  const bool rec = autograd::should_record({a});
  NoGradGuard ng;
  Tensor y = ops::exp(a);
  if (rec)
    autograd::record("exp", {a}, {y},
                     [y = y.detach()](const Grads& g, const Needs&) { return Grads{ops::mul(g[0], y)}; });
  return y;
}

Tensor log(const Tensor& a) {
  const bool rec = autograd::should_record({a});
  NoGradGuard ng;
  Tensor y = ops::log(a);
  if (rec)
    autograd::record("log", {a}, {y},
                     [a = a.detach()](const Grads& g, const Needs&) { return Grads{ops::div(g[0], a)}; });
  return y;
}

Tensor sqrt(const Tensor& a) {
  const bool rec = autograd::should_record({a});
  NoGradGuard ng;
  Tensor y = ops::sqrt(a);
  if (rec)
    autograd::record("sqrt", {a}, {y}, [y = y.detach()](const Grads& g, const Needs&) {
      return Grads{ops::div(ops::mul_scalar(g[0], 0.5), y)};  // g / (2·√a)
    });
  return y;
}

Tensor rsqrt(const Tensor& a) {
  const bool rec = autograd::should_record({a});
  NoGradGuard ng;
  Tensor y = ops::rsqrt(a);
  if (rec)
    autograd::record("rsqrt", {a}, {y}, [y = y.detach()](const Grads& g, const Needs&) {
      // d(a^−½)/da = −½·a^−3/2 = −½·y³
      return Grads{ops::mul(ops::mul_scalar(g[0], -0.5), ops::pow_scalar(y, 3.0))};
    });
  return y;
}

Tensor abs(const Tensor& a) {
  const bool rec = autograd::should_record({a});
  NoGradGuard ng;
  Tensor y = ops::abs(a);
  if (rec)
    autograd::record("abs", {a}, {y}, [a = a.detach()](const Grads& g, const Needs&) {
      return Grads{ops::abs_backward(g[0], a)};
    });
  return y;
}

Tensor clamp(const Tensor& a, std::optional<double> min, std::optional<double> max) {
  const bool rec = autograd::should_record({a});
  NoGradGuard ng;
  Tensor y = ops::clamp(a, min, max);
  if (rec)
    autograd::record("clamp", {a}, {y}, [a = a.detach(), min, max](const Grads& g, const Needs&) {
      return Grads{ops::clamp_backward(g[0], a, min, max)};
    });
  return y;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_operands(a, b, "where");
  const bool rec = autograd::should_record({a, b});
  NoGradGuard ng;
  Tensor y = ops::where(cond, a, b);
  if (rec)
    autograd::record("where", {a, b}, {y},
                     [c = cond.detach(), sa = a.shape(), sb = b.shape()](const Grads& g,
                                                                         const Needs& need) {
                       Grads d(2);
                       const Tensor zero = zeros({}, g[0].dtype());
                       if (need[0]) d[0] = ops::sum_to(ops::where(c, g[0], zero), sa);
                       if (need[1]) d[1] = ops::sum_to(ops::where(c, zero, g[0]), sb);
                       return d;
                     });
  return y;
}

// Comparisons: boolean results carry no gradient, so nothing is recorded.
Tensor eq(const Tensor& a, const Tensor& b) { return ops::eq(a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return ops::ne(a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return ops::lt(a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return ops::le(a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return ops::gt(a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return ops::ge(a, b); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, double s) { return add(a, s); }
Tensor operator-(const Tensor& a, double s) { return add(a, -s); }
Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
Tensor operator/(const Tensor& a, double s) { return mul(a, 1.0 / s); }
Tensor operator*(double s, const Tensor& a) { return mul(a, s); }

}  // namespace finch
