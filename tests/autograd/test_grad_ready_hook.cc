// The per-leaf "gradient ready" hook (autograd::GradReadyScope) that data-parallel training
// uses to start reducing gradients while backward still runs.
#include <gtest/gtest.h>

#include <vector>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/node.h"

using namespace finch;
using autograd::GradReadyScope;

namespace {
Tensor leaf(double v) {
  Tensor t = from_vector<double>({v}, {1});
  t.set_requires_grad(true);
  return t;
}
}  // namespace

TEST(GradReadyHook, CalledOncePerLeafLatestLayerFirstWithTheFinishedGradient) {
  Tensor x = from_vector<double>({3.0}, {1});
  Tensor w1 = leaf(2.0), w2 = leaf(5.0);
  // w1 is used twice (h = x·w1, y = h·w2 + w1): its hook must come once, after both parts.
  std::vector<std::pair<const void*, double>> calls;
  {
    GradReadyScope scope([&](const Tensor& t) { calls.push_back({t.impl(), t.grad().item()}); });
    Tensor h = x * w1;
    Tensor y = sum(h * w2 + w1);
    backward(y);
  }
  ASSERT_EQ(calls.size(), 2u);
  // w2's accumulator was created later (at h·w2) than w1's (at x·w1), so it runs first.
  EXPECT_EQ(calls[0].first, w2.impl());
  EXPECT_EQ(calls[0].second, 6.0);  // dy/dw2 = h = 6
  EXPECT_EQ(calls[1].first, w1.impl());
  EXPECT_EQ(calls[1].second, 16.0);  // dy/dw1 = x·w2 + 1 = 16
}

TEST(GradReadyHook, ScopesNestAndEnd) {
  Tensor w = leaf(1.0);
  int outer = 0, inner = 0;
  {
    GradReadyScope a([&](const Tensor&) { ++outer; });
    {
      GradReadyScope b([&](const Tensor&) { ++inner; });
      backward(sum(w * 2.0));
    }
    backward(sum(w * 3.0));
  }
  backward(sum(w * 4.0));  // no scope: nothing is called
  EXPECT_EQ(inner, 1);
  EXPECT_EQ(outer, 1);
  EXPECT_EQ(w.grad().item(), 9.0);
}
