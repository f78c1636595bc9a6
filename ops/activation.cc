// Activation operators: validation and dispatch to the F32 Highway kernels or the references.
#include "ops/activation.h"

#include <cmath>

#include "framework/parallel.h"

namespace finch::ops {

namespace {

// Transcendental activations cost ~10–20 ns per element; 8K elements amortize a hand-off.
constexpr int64_t kGrain = int64_t(1) << 13;

const char* act_name(ActivationOp op) {
  static const char* names[] = {"relu", "relu6", "leaky_relu", "sigmoid", "tanh", "gelu",
                                "gelu", "silu", "hardswish", "hardsigmoid"};
  return names[int(op)];
}

void check_float(const Tensor& t, const char* op) {
  if (!t.defined()) fail(op, ": the input is an undefined tensor");
  if (t.dtype() != DType::f32 && t.dtype() != DType::f64)
    fail(op, ": expected an F32 or F64 tensor, got ", dtype_name(t.dtype()));
}

ActivationOp gelu_op(const std::string& approximate) {
  if (approximate == "none") return ActivationOp::gelu;
  if (approximate == "tanh") return ActivationOp::gelu_tanh;
  fail("gelu: approximate must be \"none\" or \"tanh\", got \"", approximate, "\"");
}

template <typename T>
T sigmoid_ref(T x) {
  // Stable on both sides: exp only ever sees −|x|.
  const T e = std::exp(-std::abs(x));
  return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

template <typename T>
T act_ref(ActivationOp op, T x, T p) {
  if (std::isnan(x)) return x;  // every activation propagates NaN, as torch
  constexpr T kBeta = T(0.79788456080286535588);  // √(2/π)
  constexpr T kKappa = T(0.044715);
  switch (op) {
    case ActivationOp::relu: return x > T(0) ? x : T(0);
    case ActivationOp::relu6: return std::min(std::max(x, T(0)), T(6));
    case ActivationOp::leaky_relu: return x > T(0) ? x : x * p;
    case ActivationOp::sigmoid: return sigmoid_ref(x);
    case ActivationOp::tanh: return std::tanh(x);
    case ActivationOp::gelu: return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
    case ActivationOp::gelu_tanh:
      return T(0.5) * x * (T(1) + std::tanh(kBeta * (x + kKappa * x * x * x)));
    case ActivationOp::silu: return x * sigmoid_ref(x);
    case ActivationOp::hardswish: return x * std::min(std::max(x + T(3), T(0)), T(6)) / T(6);
    case ActivationOp::hardsigmoid: return std::min(std::max(x + T(3), T(0)), T(6)) / T(6);
  }
  return T(0);
}

template <typename T>
T act_grad_ref(ActivationOp op, T g, T z, T p) {
  constexpr T kBeta = T(0.79788456080286535588);
  constexpr T kKappa = T(0.044715);
  switch (op) {
    case ActivationOp::relu: return z > T(0) ? g : T(0);
    case ActivationOp::relu6: return (z > T(0) && z < T(6)) ? g : T(0);
    case ActivationOp::leaky_relu: return z > T(0) ? g : g * p;
    case ActivationOp::sigmoid: return g * (T(1) - z) * z;
    case ActivationOp::tanh: return g * (T(1) - z * z);
    case ActivationOp::gelu: {
      const T cdf = T(0.5) * (T(1) + std::erf(z * T(0.70710678118654752440)));
      const T pdf = std::exp(T(-0.5) * z * z) * T(0.39894228040143267794);
      return g * (cdf + z * pdf);
    }
    case ActivationOp::gelu_tanh: {
      const T th = std::tanh(kBeta * (z + kKappa * z * z * z));
      const T left_d = T(0.5) * (T(1) + th);
      const T right_d = T(0.5) * z * (T(1) - th * th) * kBeta * (T(1) + T(3) * kKappa * z * z);
      return g * (left_d + right_d);
    }
    case ActivationOp::silu: {
      const T s = sigmoid_ref(z);
      return g * s * (T(1) + z * (T(1) - s));
    }
    case ActivationOp::hardswish:
      return z < T(-3) ? T(0) : z <= T(3) ? g * (z / T(3) + T(0.5)) : g;
    case ActivationOp::hardsigmoid: return (z > T(-3) && z < T(3)) ? g / T(6) : T(0);
  }
  return T(0);
}

Tensor forward(ActivationOp op, const Tensor& x, double param) {
  check_float(x, act_name(op));
  if (x.dtype() != DType::f32) return activation_reference(op, x, param);
  const Tensor xc = x.contiguous();
  Tensor y = empty(x.shape(), DType::f32);
  const float* px = xc.data<float>();
  float* py = y.data<float>();
  const float p = float(param);
  parallel_for(0, x.numel(), kGrain, [&](int64_t b, int64_t e) {
    kernels::activation_f32(op, py + b, px + b, e - b, p);
  });
  return y;
}

void check_backward(const Tensor& dy, const Tensor& z, const char* op) {
  check_float(dy, op);
  check_float(z, op);
  if (dy.dtype() != z.dtype())
    fail(op, "_backward: the gradient is ", dtype_name(dy.dtype()), " but the saved tensor is ",
         dtype_name(z.dtype()));
  if (dy.shape() != z.shape())
    fail(op, "_backward: expected the gradient and the saved tensor to have the same shape, got ",
         shape_str(dy.shape()), " and ", shape_str(z.shape()));
}

Tensor backward(ActivationOp op, const Tensor& dy, const Tensor& z, double param) {
  check_backward(dy, z, act_name(op));
  if (z.dtype() != DType::f32) return activation_backward_reference(op, dy, z, param);
  const Tensor gc = dy.contiguous(), zc = z.contiguous();
  Tensor dx = empty(z.shape(), DType::f32);
  const float* pg = gc.data<float>();
  const float* pz = zc.data<float>();
  float* pd = dx.data<float>();
  const float p = float(param);
  parallel_for(0, z.numel(), kGrain, [&](int64_t b, int64_t e) {
    kernels::activation_backward_f32(op, pd + b, pg + b, pz + b, e - b, p);
  });
  return dx;
}

}  // namespace

Tensor activation_reference(ActivationOp op, const Tensor& x, double param) {
  check_float(x, act_name(op));
  const Tensor xc = x.contiguous();
  Tensor y = empty(x.shape(), x.dtype());
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      const T* px = xc.data<T>();
      T* py = y.data<T>();
      for (int64_t i = 0; i < x.numel(); ++i) py[i] = act_ref<T>(op, px[i], T(param));
    }
  });
  return y;
}

Tensor activation_backward_reference(ActivationOp op, const Tensor& dy, const Tensor& z,
                                     double param) {
  check_backward(dy, z, act_name(op));
  const Tensor gc = dy.contiguous(), zc = z.contiguous();
  Tensor dx = empty(z.shape(), z.dtype());
  visit_dtype(z.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      const T* pg = gc.data<T>();
      const T* pz = zc.data<T>();
      T* pd = dx.data<T>();
      for (int64_t i = 0; i < z.numel(); ++i) pd[i] = act_grad_ref<T>(op, pg[i], pz[i], T(param));
    }
  });
  return dx;
}

Tensor relu(const Tensor& x) { return forward(ActivationOp::relu, x, 0); }
Tensor relu6(const Tensor& x) { return forward(ActivationOp::relu6, x, 0); }
Tensor leaky_relu(const Tensor& x, double s) { return forward(ActivationOp::leaky_relu, x, s); }
Tensor sigmoid(const Tensor& x) { return forward(ActivationOp::sigmoid, x, 0); }
Tensor tanh(const Tensor& x) { return forward(ActivationOp::tanh, x, 0); }
Tensor gelu(const Tensor& x, const std::string& approximate) {
  return forward(gelu_op(approximate), x, 0);
}
Tensor silu(const Tensor& x) { return forward(ActivationOp::silu, x, 0); }
Tensor hardswish(const Tensor& x) { return forward(ActivationOp::hardswish, x, 0); }
Tensor hardsigmoid(const Tensor& x) { return forward(ActivationOp::hardsigmoid, x, 0); }

Tensor relu_backward(const Tensor& dy, const Tensor& y) { return backward(ActivationOp::relu, dy, y, 0); }
Tensor relu6_backward(const Tensor& dy, const Tensor& x) { return backward(ActivationOp::relu6, dy, x, 0); }
Tensor leaky_relu_backward(const Tensor& dy, const Tensor& x, double s) {
  return backward(ActivationOp::leaky_relu, dy, x, s);
}
Tensor sigmoid_backward(const Tensor& dy, const Tensor& y) {
  return backward(ActivationOp::sigmoid, dy, y, 0);
}
Tensor tanh_backward(const Tensor& dy, const Tensor& y) { return backward(ActivationOp::tanh, dy, y, 0); }
Tensor gelu_backward(const Tensor& dy, const Tensor& x, const std::string& approximate) {
  return backward(gelu_op(approximate), dy, x, 0);
}
Tensor silu_backward(const Tensor& dy, const Tensor& x) { return backward(ActivationOp::silu, dy, x, 0); }
Tensor hardswish_backward(const Tensor& dy, const Tensor& x) {
  return backward(ActivationOp::hardswish, dy, x, 0);
}
Tensor hardsigmoid_backward(const Tensor& dy, const Tensor& x) {
  return backward(ActivationOp::hardsigmoid, dy, x, 0);
}

}  // namespace finch::ops
