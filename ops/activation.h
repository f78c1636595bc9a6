// Activation functions and their backward kernels: pure functions over tensors (no autograd).
//
// F32 runs the Highway kernels in ops/activation_hwy.cc over the thread pool; F64 runs the
// plain-loop references. Formulas follow PyTorch 1.13 exactly (gelu's erf and tanh forms,
// hardswish's and relu6's boundary conventions). Every op maps x [any shape] to y [same shape];
// each backward maps dy [same shape] and the saved tensor named in its signature to dx.
#pragma once

#include <cstdint>
#include <string>

#include "framework/tensor.h"

namespace finch::ops {

Tensor relu(const Tensor& x);
Tensor relu6(const Tensor& x);  // min(max(x, 0), 6)
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
// 1 / (1 + e^−x), computed from e^−|x| so it neither overflows nor loses the small side.
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
// approximate "none": x·Φ(x) = 0.5·x·(1 + erf(x/√2)); "tanh": 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))).
Tensor gelu(const Tensor& x, const std::string& approximate = "none");
Tensor silu(const Tensor& x);         // x·sigmoid(x)
Tensor hardswish(const Tensor& x);    // x·min(max(x + 3, 0), 6)/6
Tensor hardsigmoid(const Tensor& x);  // min(max(x + 3, 0), 6)/6

// Backward kernels. The saved tensor is the output y where that is cheaper and exact.
Tensor relu_backward(const Tensor& dy, const Tensor& y);  // dy where y > 0 (y or x both work)
Tensor relu6_backward(const Tensor& dy, const Tensor& x);  // dy where 0 < x < 6 (as torch)
Tensor leaky_relu_backward(const Tensor& dy, const Tensor& x, double negative_slope = 0.01);
Tensor sigmoid_backward(const Tensor& dy, const Tensor& y);  // dy·y·(1 − y)
Tensor tanh_backward(const Tensor& dy, const Tensor& y);     // dy·(1 − y²)
Tensor gelu_backward(const Tensor& dy, const Tensor& x, const std::string& approximate = "none");
Tensor silu_backward(const Tensor& dy, const Tensor& x);
Tensor hardswish_backward(const Tensor& dy, const Tensor& x);
Tensor hardsigmoid_backward(const Tensor& dy, const Tensor& x);

// ---- references and micro-kernels, shared by the operators and the cross-check tests ----
enum class ActivationOp : uint8_t { relu, relu6, leaky_relu, sigmoid, tanh, gelu, gelu_tanh, silu,
                                    hardswish, hardsigmoid };
// Plain loops with std:: math, F32 or F64, any strides; `param` is leaky_relu's slope.
Tensor activation_reference(ActivationOp op, const Tensor& x, double param = 0.0);
// z is the tensor the op's backward saves (y for relu, sigmoid, tanh; x for the others).
Tensor activation_backward_reference(ActivationOp op, const Tensor& dy, const Tensor& z,
                                     double param = 0.0);

namespace kernels {
// y[i] = act(x[i]), i < n; contiguous; no validation.
void activation_f32(ActivationOp op, float* y, const float* x, int64_t n, float param);
// dx[i] = act'(…)·dy[i] from the saved z (see activation_backward_reference).
void activation_backward_f32(ActivationOp op, float* dx, const float* dy, const float* z,
                             int64_t n, float param);
}  // namespace kernels

}  // namespace finch::ops
