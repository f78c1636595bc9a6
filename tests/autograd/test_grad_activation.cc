// Finite-difference gradchecks for the activation rules (inputs spread over every region).
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/functional.h"
#include "tests/autograd/gradcheck_case.h"

using namespace finch;
using finch::test::check_grad;
using V = std::vector<Tensor>;

namespace {
// Spread over [-scale·3, scale·3] and nudged away from the kinks at 0, ±3 and 6 so that central
// differences never straddle one.
Tensor act_leaf(const Shape& s, uint64_t seed, double scale = 3.0) {
  Tensor t = finch::test::leaf(s, seed, scale);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i)
    for (double k : {0.0, 3.0, -3.0, 6.0})
      if (std::fabs(p[i] - k) < 1e-3) p[i] = k + 0.01;
  return t;
}
}  // namespace

GRADCHECK_TEST(relu, Basic) {
  check_grad("relu", [](const V& in) { return V{relu(in[0])}; }, {act_leaf({4, 6}, 1)});
}
GRADCHECK_TEST(relu6, Basic) {
  check_grad("relu6", [](const V& in) { return V{relu6(in[0])}; }, {act_leaf({4, 6}, 2, 4.0)});
}
GRADCHECK_TEST(leaky_relu, Basic) {
  check_grad("leaky_relu", [](const V& in) { return V{leaky_relu(in[0])}; }, {act_leaf({4, 6}, 3)});
  check_grad("leaky_relu", [](const V& in) { return V{leaky_relu(in[0], 0.2)}; }, {act_leaf({7}, 4)});
}
GRADCHECK_TEST(sigmoid, Basic) {
  check_grad("sigmoid", [](const V& in) { return V{sigmoid(in[0])}; }, {act_leaf({4, 6}, 5)});
}
GRADCHECK_TEST(tanh, Basic) {
  check_grad("tanh", [](const V& in) { return V{tanh(in[0])}; }, {act_leaf({4, 6}, 6)});
}
GRADCHECK_TEST(gelu, Basic) {
  check_grad("gelu", [](const V& in) { return V{gelu(in[0])}; }, {act_leaf({4, 6}, 7)});
}
GRADCHECK_TEST(gelu_tanh, Basic) {
  check_grad("gelu_tanh", [](const V& in) { return V{gelu(in[0], "tanh")}; }, {act_leaf({4, 6}, 8)});
}
GRADCHECK_TEST(silu, Basic) {
  check_grad("silu", [](const V& in) { return V{silu(in[0])}; }, {act_leaf({4, 6}, 9)});
}
GRADCHECK_TEST(hardswish, Basic) {
  check_grad("hardswish", [](const V& in) { return V{hardswish(in[0])}; }, {act_leaf({5, 6}, 10, 4.0)});
}
GRADCHECK_TEST(hardsigmoid, Basic) {
  check_grad("hardsigmoid", [](const V& in) { return V{hardsigmoid(in[0])}; },
             {act_leaf({5, 6}, 11, 4.0)});
}

TEST(ActivationAutograd, ComposedChainAndErrors) {
  // A small chain through several rules at once (the engine sums through all of them).
  check_grad("sigmoid",
             [](const V& in) { return V{sigmoid(gelu(in[0]) * in[1] + tanh(in[0]))}; },
             {finch::test::leaf({3, 4}, 20), finch::test::leaf({4}, 21)});
  EXPECT_THROW(gelu(finch::test::leaf({2}, 1), "fast"), Error);
}
