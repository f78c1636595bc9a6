// Finite-difference gradchecks for the elementwise rules, with broadcasting in every binary rule.
#include <gtest/gtest.h>

#include "autograd/functional.h"
#include "framework/grad_mode.h"
#include "tests/autograd/gradcheck_case.h"

using namespace finch;
using finch::test::check_grad;
using finch::test::leaf;
using V = std::vector<Tensor>;

namespace {
// A leaf with values in [lo, lo + width): away from poles, kinks and domain edges.
Tensor positive_leaf(const Shape& s, uint64_t seed, double lo = 0.5, double width = 1.5) {
  Generator g(seed);
  Tensor t = rand(s, g, DType::f64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = lo + width * p[i];
  t.set_requires_grad(true);
  return t;
}

const std::vector<std::pair<Shape, Shape>> kShapes = {
    {{3, 4}, {3, 4}},        // same shape
    {{3, 4}, {4}},           // row
    {{3, 1}, {3, 4}},        // column
    {{2, 3, 1, 1}, {2, 3, 2, 3}},  // [N, C, 1, 1] vs [N, C, H, W]
    {{}, {2, 3}},            // 0-d
    {{2, 1, 3}, {4, 1}},     // both broadcast
};
}  // namespace

GRADCHECK_TEST(add, Broadcasting) {
  for (const auto& [sa, sb] : kShapes) {
    check_grad("add", [](const V& in) { return V{add(in[0], in[1])}; }, {leaf(sa, 1), leaf(sb, 2)});
    check_grad("add", [](const V& in) { return V{add(in[0], in[1], -2.5)}; }, {leaf(sa, 3), leaf(sb, 4)});
  }
  check_grad("add", [](const V& in) { return V{in[0] + in[1]}; }, {leaf({2, 3}, 5), leaf({3}, 6)});
  // Only one operand requires grad.
  const Tensor c = zeros({3}, DType::f64);
  check_grad("add", [c](const V& in) { return V{add(c, in[0])}; }, {leaf({2, 3}, 7)});
}

GRADCHECK_TEST(sub, Broadcasting) {
  for (const auto& [sa, sb] : kShapes) {
    check_grad("sub", [](const V& in) { return V{sub(in[0], in[1])}; }, {leaf(sa, 11), leaf(sb, 12)});
    check_grad("sub", [](const V& in) { return V{sub(in[0], in[1], 0.5)}; }, {leaf(sb, 13), leaf(sa, 14)});
  }
  check_grad("sub", [](const V& in) { return V{in[0] - in[1]}; }, {leaf({4, 1}, 15), leaf({3}, 16)});
}

GRADCHECK_TEST(mul, Broadcasting) {
  for (const auto& [sa, sb] : kShapes)
    check_grad("mul", [](const V& in) { return V{mul(in[0], in[1])}; }, {leaf(sa, 21), leaf(sb, 22)});
  check_grad("mul", [](const V& in) { return V{in[0] * in[1]}; }, {leaf({2, 3}, 23), leaf({2, 1}, 24)});
  // x * x: one tensor feeding both inputs.
  check_grad("mul", [](const V& in) { return V{in[0] * in[0]}; }, {leaf({5}, 25)});
}

GRADCHECK_TEST(div, Broadcasting) {
  for (const auto& [sa, sb] : kShapes)
    check_grad("div", [](const V& in) { return V{div(in[0], in[1])}; },
               {leaf(sa, 31), positive_leaf(sb, 32)});
  check_grad("div", [](const V& in) { return V{in[0] / in[1]}; },
             {leaf({3, 2}, 33), positive_leaf({3, 1}, 34, -2.0, 1.0)});
}

GRADCHECK_TEST(neg, Basic) {
  check_grad("neg", [](const V& in) { return V{neg(in[0])}; }, {leaf({3, 4}, 41)});
  check_grad("neg", [](const V& in) { return V{-in[0]}; }, {leaf({}, 42)});
}

GRADCHECK_TEST(add_scalar, Basic) {
  check_grad("add_scalar", [](const V& in) { return V{add(in[0], 1.5)}; }, {leaf({3, 4}, 51)});
  check_grad("add_scalar", [](const V& in) { return V{in[0] + 2.0}; }, {leaf({5}, 52)});
  check_grad("add_scalar", [](const V& in) { return V{in[0] - 2.0}; }, {leaf({}, 53)});
}

GRADCHECK_TEST(mul_scalar, Basic) {
  check_grad("mul_scalar", [](const V& in) { return V{mul(in[0], -3.0)}; }, {leaf({3, 4}, 61)});
  check_grad("mul_scalar", [](const V& in) { return V{2.0 * in[0]}; }, {leaf({5}, 62)});
  check_grad("mul_scalar", [](const V& in) { return V{in[0] / 4.0}; }, {leaf({2, 2}, 63)});
}

GRADCHECK_TEST(pow_scalar, Exponents) {
  for (double e : {2.0, 3.0, 1.0, 0.0, -1.0, -2.0})
    check_grad("pow_scalar", [e](const V& in) { return V{pow(in[0], e)}; },
               {positive_leaf({7}, 71, 0.3, 2.0)});
  for (double e : {2.0, 3.0})  // integer exponents on negative bases
    check_grad("pow_scalar", [e](const V& in) { return V{pow(in[0], e)}; }, {leaf({7}, 72)});
  for (double e : {0.5, -0.5, 1.7, -2.3})
    check_grad("pow_scalar", [e](const V& in) { return V{pow(in[0], e)}; },
               {positive_leaf({7}, 73)});
}

GRADCHECK_TEST(pow, TensorExponent) {
  check_grad("pow", [](const V& in) { return V{pow(in[0], in[1])}; },
             {positive_leaf({3, 4}, 81), leaf({3, 4}, 82)});
  check_grad("pow", [](const V& in) { return V{pow(in[0], in[1])}; },
             {positive_leaf({3, 1}, 83), leaf({4}, 84)});
  check_grad("pow", [](const V& in) { return V{pow(in[0], in[1])}; },
             {positive_leaf({2, 3}, 85), leaf({}, 86)});
}

GRADCHECK_TEST(exp, Basic) {
  check_grad("exp", [](const V& in) { return V{exp(in[0])}; }, {leaf({3, 4}, 91)});
}

GRADCHECK_TEST(log, Basic) {
  check_grad("log", [](const V& in) { return V{log(in[0])}; }, {positive_leaf({3, 4}, 101)});
}

GRADCHECK_TEST(sqrt, Basic) {
  check_grad("sqrt", [](const V& in) { return V{sqrt(in[0])}; }, {positive_leaf({3, 4}, 111)});
}

GRADCHECK_TEST(rsqrt, Basic) {
  check_grad("rsqrt", [](const V& in) { return V{rsqrt(in[0])}; }, {positive_leaf({3, 4}, 121)});
}

GRADCHECK_TEST(abs, Basic) {
  check_grad("abs", [](const V& in) { return V{abs(in[0])}; }, {leaf({4, 5}, 131)});
}

GRADCHECK_TEST(clamp, Limits) {
  check_grad("clamp", [](const V& in) { return V{clamp(in[0], -0.5, 0.7)}; }, {leaf({5, 6}, 141)});
  check_grad("clamp", [](const V& in) { return V{clamp(in[0], 0.1, std::nullopt)}; },
             {leaf({5, 6}, 142)});
  check_grad("clamp", [](const V& in) { return V{clamp(in[0], std::nullopt, -0.2)}; },
             {leaf({5, 6}, 143)});
  check_grad("clamp", [](const V& in) { return V{clamp(in[0], 1.0, -1.0)}; }, {leaf({6}, 144)});
}

GRADCHECK_TEST(where, Broadcasting) {
  Generator g(150);
  const Tensor cond = gt(randn({3, 1, 4}, g, DType::f64), zeros({}, DType::f64));
  check_grad("where", [cond](const V& in) { return V{where(cond, in[0], in[1])}; },
             {leaf({2, 4}, 151), leaf({3, 2, 1}, 152)});
  check_grad("where", [cond](const V& in) { return V{where(cond, in[0], in[1])}; },
             {leaf({3, 2, 4}, 153), leaf({}, 154)});
}

TEST(ElementwiseAutograd, DtypeRulesAndComparisons) {
  Tensor a = leaf({3}, 160);
  EXPECT_THROW(add(a, zeros({3}, DType::f32)), Error);
  EXPECT_THROW(mul(zeros({3}, DType::f32), a), Error);
  // Scalars adopt the tensor's dtype.
  EXPECT_EQ((zeros({3}, DType::f32) * 2.0).dtype(), DType::f32);
  EXPECT_EQ((a + 1.0).dtype(), DType::f64);
  // Comparisons record nothing and give b8.
  const Tensor c = lt(a, zeros({}, DType::f64));
  EXPECT_EQ(c.dtype(), DType::b8);
  EXPECT_FALSE(c.requires_grad());
  EXPECT_EQ(c.grad_fn(), nullptr);
  // Error for incompatible shapes names the op.
  try {
    add(leaf({2, 3}, 1), leaf({4}, 2));
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "add: shapes [2, 3] and [4] cannot be broadcast (dim -1: 3 vs 4)");
  }
}
