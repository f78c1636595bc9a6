// Activation kernels (forward and backward) vs the F64 references on every Highway target:
// the edge sweep, large |x| stability, boundary conventions, non-contiguous inputs, F64 path.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ops/activation.h"
#include "ops/elementwise.h"
#include "tests/ops/test_util.h"

using namespace finch;
using finch::test::expect_close;
using finch::test::for_each_target;
using finch::test::random_tensor;
using ops::ActivationOp;

namespace {

struct Case {
  ActivationOp op;
  const char* name;
  bool saves_output;  // backward takes y instead of x
  double atol, rtol;  // forward and backward tolerance vs the F64 reference
};

// Tolerances: relu/relu6/leaky/hard* are exact up to the f32 rounding of one multiply/divide;
// sigmoid/silu use Highway Exp (1 ulp) and one division; tanh uses Highway Tanh (Expm1, ≤ 4 ulp);
// gelu's erf is A&S 7.1.26 (|error| ≤ 1.5e-7 absolute, torch uses the same), hence its atol.
const Case kCases[] = {
    {ActivationOp::relu, "relu", true, 0, 0},
    {ActivationOp::relu6, "relu6", false, 0, 0},
    {ActivationOp::leaky_relu, "leaky_relu", false, 0, 1.2e-7},
    {ActivationOp::sigmoid, "sigmoid", true, 1e-37, 1e-6},
    {ActivationOp::tanh, "tanh", true, 1e-7, 1e-6},
    {ActivationOp::gelu, "gelu", false, 1e-6, 1e-6},
    // gelu_tanh's forward 1 + tanh(u) cancels for x ≲ −2 (as in torch's float kernel).
    {ActivationOp::gelu_tanh, "gelu_tanh", false, 2e-7, 2e-6},
    // silu's backward 1 + x(1 − s) crosses zero near x ≈ −1.28: an ulp of 1 times |dy|·s.
    {ActivationOp::silu, "silu", false, 1e-7, 1e-6},
    {ActivationOp::hardswish, "hardswish", false, 1e-7, 2.4e-7},
    {ActivationOp::hardsigmoid, "hardsigmoid", false, 1e-7, 2.4e-7},
};

double param_of(ActivationOp op) { return op == ActivationOp::leaky_relu ? 0.1 : 0.0; }

Tensor forward(ActivationOp op, const Tensor& x) {
  switch (op) {
    case ActivationOp::relu: return ops::relu(x);
    case ActivationOp::relu6: return ops::relu6(x);
    case ActivationOp::leaky_relu: return ops::leaky_relu(x, 0.1);
    case ActivationOp::sigmoid: return ops::sigmoid(x);
    case ActivationOp::tanh: return ops::tanh(x);
    case ActivationOp::gelu: return ops::gelu(x);
    case ActivationOp::gelu_tanh: return ops::gelu(x, "tanh");
    case ActivationOp::silu: return ops::silu(x);
    case ActivationOp::hardswish: return ops::hardswish(x);
    case ActivationOp::hardsigmoid: return ops::hardsigmoid(x);
  }
  return Tensor();
}

Tensor backward(ActivationOp op, const Tensor& dy, const Tensor& z) {
  switch (op) {
    case ActivationOp::relu: return ops::relu_backward(dy, z);
    case ActivationOp::relu6: return ops::relu6_backward(dy, z);
    case ActivationOp::leaky_relu: return ops::leaky_relu_backward(dy, z, 0.1);
    case ActivationOp::sigmoid: return ops::sigmoid_backward(dy, z);
    case ActivationOp::tanh: return ops::tanh_backward(dy, z);
    case ActivationOp::gelu: return ops::gelu_backward(dy, z);
    case ActivationOp::gelu_tanh: return ops::gelu_backward(dy, z, "tanh");
    case ActivationOp::silu: return ops::silu_backward(dy, z);
    case ActivationOp::hardswish: return ops::hardswish_backward(dy, z);
    case ActivationOp::hardsigmoid: return ops::hardsigmoid_backward(dy, z);
  }
  return Tensor();
}

void check_case(const Case& c, const Tensor& x, const std::string& what) {
  const Tensor y = forward(c.op, x);
  const Tensor x64 = x.to(DType::f64);
  const Tensor yref = ops::activation_reference(c.op, x64, param_of(c.op)).to(DType::f32);
  expect_close(y, yref, c.atol, c.rtol, what + " " + c.name + " forward",
               test::NonFinite::must_match);
  // Backward from the same saved tensor in both (the f32 y for output-saving rules).
  const Tensor dy = random_tensor(x.shape(), 777);
  const Tensor z = c.saves_output ? y : x;
  const Tensor dx = backward(c.op, dy, z);
  const Tensor dxref = ops::activation_backward_reference(c.op, dy.to(DType::f64), z.to(DType::f64),
                                                          param_of(c.op));
  expect_close(dx, dxref.to(DType::f32), c.atol, c.rtol + 1e-6, what + " " + c.name + " backward",
               test::NonFinite::must_match);
}

}  // namespace

TEST(Activation, EdgeSweepAllTargets) {
  for_each_target([] {
    for (int64_t n : test::edge_sizes()) {
      const Tensor x = random_tensor({n}, 200 + uint64_t(n), 4.0);
      for (const Case& c : kCases) check_case(c, x, "n=" + std::to_string(n));
    }
  });
}

TEST(Activation, BoundariesAndLargeMagnitudesAllTargets) {
  // Exact kinks (0, ±3, 6), values near them, and magnitudes where naive formulas overflow.
  const Tensor x = from_vector<float>({0.0f, -0.0f, 3.0f, -3.0f, 6.0f, 2.999f, -2.999f, 6.001f,
                                       1e-8f, -1e-8f, 9.0f, -9.0f, 15.0f, -15.0f, 20.0f, -20.0f,
                                       50.0f, -50.0f, 88.0f, -88.0f, 100.0f, -100.0f, 1e4f, -1e4f},
                                      {24});
  for_each_target([&] {
    for (const Case& c : kCases) check_case(c, x, "edges");
  });
}

TEST(Activation, SigmoidTanhStableForLargeInputs) {
  const float inf = std::numeric_limits<float>::infinity();
  const Tensor x = from_vector<float>({-inf, -1e4f, -200.0f, -100.0f, 100.0f, 200.0f, 1e4f, inf}, {8});
  for_each_target([&] {
    const auto s = ops::sigmoid(x).to_vector<float>();
    const auto t = ops::tanh(x).to_vector<float>();
    const auto si = ops::silu(x).to_vector<float>();
    for (size_t i = 0; i < s.size(); ++i) {
      EXPECT_FALSE(std::isnan(s[i])) << i;
      EXPECT_FALSE(std::isnan(t[i])) << i;
      EXPECT_GE(s[i], 0.0f);
      EXPECT_LE(s[i], 1.0f);
      EXPECT_EQ(std::fabs(t[i]), 1.0f) << i;
    }
    EXPECT_EQ(s[0], 0.0f);
    EXPECT_EQ(s[7], 1.0f);
    EXPECT_EQ(s[4], 1.0f);
    EXPECT_GT(s[3], 0.0f);  // e^−100 ≈ 3.7e−44 survives as a subnormal, not 1 − 1
    EXPECT_LT(s[3], 1e-42f);
    EXPECT_EQ(si[6], 1e4f);
    EXPECT_FALSE(std::isnan(si[1]));
    // NaN goes through.
    const float nan = std::numeric_limits<float>::quiet_NaN();
    EXPECT_TRUE(std::isnan(ops::sigmoid(from_vector<float>({nan}, {1})).item()));
    EXPECT_TRUE(std::isnan(ops::tanh(from_vector<float>({nan}, {1})).item()));
  });
}

TEST(Activation, NanPropagatesAllTargets) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor x = from_vector<float>({nan, 1.0f, nan, -1.0f, nan}, {5});
  for_each_target([&] {
    for (const Case& c : kCases) {
      const auto y = forward(c.op, x).to_vector<float>();
      EXPECT_TRUE(std::isnan(y[0]) && std::isnan(y[2]) && std::isnan(y[4])) << c.name;
      EXPECT_FALSE(std::isnan(y[1]) || std::isnan(y[3])) << c.name;
    }
  });
}

TEST(Activation, BoundaryConventionsMatchTorch) {
  const Tensor x = from_vector<double>({-3, 0, 3, 6}, {4});
  const Tensor g = ones({4}, DType::f64);
  // relu6 (hardtanh) passes strictly inside (0, 6); hardsigmoid strictly inside (−3, 3);
  // hardswish is 0 below −3, x/3 + 0.5 on [−3, 3] (so −0.5 at −3, 1.5 at 3), 1 above.
  EXPECT_EQ(ops::relu6_backward(g, x).to_vector<double>(), (std::vector<double>{0, 0, 1, 0}));
  EXPECT_EQ(ops::hardsigmoid_backward(g, x).to_vector<double>(),
            (std::vector<double>{0, 1.0 / 6, 0, 0}));
  EXPECT_EQ(ops::hardswish_backward(g, x).to_vector<double>(), (std::vector<double>{-0.5, 0.5, 1.5, 1}));
  EXPECT_EQ(ops::relu_backward(g, ops::relu(x)).to_vector<double>(), (std::vector<double>{0, 0, 1, 1}));
  const Tensor xf = x.to(DType::f32), gf = g.to(DType::f32);
  EXPECT_EQ(ops::relu6_backward(gf, xf).to_vector<double>(), (std::vector<double>{0, 0, 1, 0}));
  EXPECT_EQ(ops::hardswish_backward(gf, xf).to_vector<double>(),
            (std::vector<double>{-0.5, 0.5, 1.5, 1}));
}

TEST(Activation, NonContiguousAndF64) {
  const Tensor base = random_tensor({12, 7}, 300, 3.0);
  const Tensor t = base.t();
  for (const Case& c : kCases) {
    expect_close(forward(c.op, t),
                 ops::activation_reference(c.op, t.to(DType::f64), param_of(c.op)).to(DType::f32),
                 c.atol, c.rtol, std::string(c.name) + " transposed", test::NonFinite::must_match);
    const Tensor x64 = random_tensor({5, 3}, 301, 3.0, 0.0, DType::f64);
    const Tensor y64 = forward(c.op, x64);
    EXPECT_EQ(y64.dtype(), DType::f64);
    expect_close(y64, ops::activation_reference(c.op, x64, param_of(c.op)), 0, 0,
                 std::string(c.name) + " f64", test::NonFinite::must_match);
  }
}

TEST(Activation, Errors) {
  EXPECT_THROW(ops::gelu(zeros({2}), "erf"), Error);
  EXPECT_THROW(ops::relu(zeros({2}, DType::i32)), Error);
  EXPECT_THROW(ops::relu_backward(zeros({2}), zeros({3})), Error);
  EXPECT_THROW(ops::sigmoid_backward(zeros({2}), zeros({2}, DType::f64)), Error);
}
