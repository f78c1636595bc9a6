// The backward engine itself: accumulation, diamonds, retain_graph, NoGradGuard, detach, leaf
// .grad across calls, non-scalar and multiple roots, the raw-view guard, shape checks.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/node.h"
#include "framework/grad_mode.h"

using namespace finch;

namespace {
Tensor leaf_of(const std::vector<double>& v, const Shape& s) {
  Tensor t = from_vector<double>(v, s);
  t.set_requires_grad(true);
  return t;
}
std::vector<double> grad_of(const Tensor& t) { return t.grad().to_vector<double>(); }
}  // namespace

TEST(Engine, TensorUsedTwiceAccumulates) {
  Tensor x = leaf_of({1.5, -2.0, 3.0}, {3});
  Tensor y = x * x;  // both inputs of one node are the same leaf
  backward(y, ones({3}, DType::f64));
  EXPECT_EQ(grad_of(x), (std::vector<double>{3.0, -4.0, 6.0}));
}

TEST(Engine, DiamondGraph) {
  // x → a = 3x → (b = exp(a), c = a²) → y = b + c: both paths meet again at a.
  Tensor x = leaf_of({0.1, -0.2}, {2});
  Tensor a = x * 3.0;
  Tensor y = exp(a) + a * a;
  backward(y, ones({2}, DType::f64));
  const auto g = grad_of(x);
  for (int i = 0; i < 2; ++i) {
    const double xv = i == 0 ? 0.1 : -0.2;
    EXPECT_NEAR(g[i], 3.0 * (std::exp(3 * xv) + 2 * 3 * xv), 1e-12);
  }
  EXPECT_FALSE(a.grad().defined());  // non-leaves keep no .grad
}

TEST(Engine, RetainGraph) {
  Tensor x = leaf_of({2.0}, {});
  Tensor y = x * x;
  backward(y);
  EXPECT_EQ(x.grad().item(), 4.0);
  try {
    backward(y);
    FAIL() << "a second backward through a freed graph must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("retain_graph"), std::string::npos) << e.what();
  }

  Tensor z = leaf_of({3.0}, {});
  Tensor w = z * z;
  backward(w, Tensor(), /*retain_graph=*/true);
  EXPECT_EQ(z.grad().item(), 6.0);
  backward(w);  // allowed: the first call kept the saved tensors
  EXPECT_EQ(z.grad().item(), 12.0);
}

TEST(Engine, NoGradGuardRecordsNothing) {
  Tensor x = leaf_of({1.0, 2.0}, {2});
  Tensor y;
  {
    NoGradGuard ng;
    y = relu(x * 2.0 + x);
    EXPECT_FALSE(GradMode::enabled());
  }
  EXPECT_TRUE(GradMode::enabled());
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn(), nullptr);
  EXPECT_THROW(backward(y, ones({2}, DType::f64)), Error);
}

TEST(Engine, DetachCutsTheGraph) {
  Tensor x = leaf_of({2.0, 5.0}, {2});
  Tensor d = x.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.storage(), x.storage());  // shares the data
  Tensor y = d * x;                     // only the x path carries gradient
  backward(y, ones({2}, DType::f64));
  EXPECT_EQ(grad_of(x), (std::vector<double>{2.0, 5.0}));
}

TEST(Engine, LeafGradAccumulatesAcrossCalls) {
  Tensor x = leaf_of({1.0, 1.0}, {2});
  backward(x * 3.0, ones({2}, DType::f64));
  backward(x * 3.0, ones({2}, DType::f64));
  EXPECT_EQ(grad_of(x), (std::vector<double>{6.0, 6.0}));
  // The first gradient was copied, not aliased: mutating the seed does not change .grad.
  Tensor seed = ones({2}, DType::f64);
  Tensor z = leaf_of({0.0, 0.0}, {2});
  backward(z + 0.0, seed);
  seed.fill_(7.0);
  EXPECT_EQ(grad_of(z), (std::vector<double>{1.0, 1.0}));
}

TEST(Engine, NonScalarRootNeedsAGradient) {
  Tensor x = leaf_of({1.0, 2.0, 3.0}, {3});
  Tensor y = x * 2.0;
  try {
    backward(y);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("non-scalar"), std::string::npos) << e.what();
  }
  EXPECT_THROW(backward(y, ones({2}, DType::f64)), Error);  // wrong seed shape
  backward(y, from_vector<double>({1, 10, 100}, {3}));
  EXPECT_EQ(grad_of(x), (std::vector<double>{2.0, 20.0, 200.0}));
}

TEST(Engine, MultipleRoots) {
  Tensor x = leaf_of({1.0, 2.0}, {2});
  Tensor y1 = x * x;   // dy1/dx = 2x
  Tensor y2 = x * 5.0; // dy2/dx = 5
  backward({y1, y2}, {ones({2}, DType::f64), full({2}, 2.0, DType::f64)});
  EXPECT_EQ(grad_of(x), (std::vector<double>{2.0 + 10.0, 4.0 + 10.0}));
  // A scalar root may omit its gradient next to a non-scalar one.
  Tensor s = leaf_of({3.0}, {});
  Tensor r1 = s * s, r2 = s * x;
  backward({r1, r2}, {Tensor(), ones({2}, DType::f64)});
  EXPECT_EQ(s.grad().item(), 6.0 + 3.0);
}

TEST(Engine, RootThatFeedsAnotherRootAndLeafRoot) {
  Tensor x = leaf_of({1.0, 2.0}, {2});
  Tensor y1 = x * 2.0;
  Tensor y2 = y1 * 3.0;  // y1 is both a root and an input of y2
  backward({y1, y2}, {ones({2}, DType::f64), ones({2}, DType::f64)});
  EXPECT_EQ(grad_of(x), (std::vector<double>{2.0 + 6.0, 2.0 + 6.0}));
  Tensor l = leaf_of({4.0}, {1});
  backward(l, from_vector<double>({0.5}, {1}));  // a leaf root gets the seed itself
  EXPECT_EQ(grad_of(l), (std::vector<double>{0.5}));
}

TEST(Engine, RootWithoutGradThrows) {
  const Tensor c = ones({2}, DType::f64);
  EXPECT_THROW(backward(c, ones({2}, DType::f64)), Error);
}

TEST(Engine, OnlyInputsThatRequireGradGetOne) {
  Tensor x = leaf_of({1.0, 2.0}, {2});
  Tensor c = from_vector<double>({3.0, 4.0}, {2});
  backward(x * c, ones({2}, DType::f64));
  EXPECT_EQ(grad_of(x), (std::vector<double>{3.0, 4.0}));
  EXPECT_FALSE(c.grad().defined());
}

TEST(Engine, RawViewGuard) {
  Tensor x = leaf_of({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_THROW(x.reshape({3, 2}), Error);
  EXPECT_THROW(x.view({6}), Error);
  {
    NoGradGuard ng;
    EXPECT_EQ(x.reshape({3, 2}).shape(), (Shape{3, 2}));
  }
  EXPECT_EQ(x.detach().reshape({6}).numel(), 6);
}

TEST(Engine, GradientShapeAndCountAreChecked) {
  Tensor x = leaf_of({1.0, 2.0}, {2});
  Tensor y;
  {
    NoGradGuard ng;
    y = x.clone();
  }
  // A rule that returns a gradient of the wrong shape is reported, naming the node.
  autograd::record("neg", {x}, {y}, [](const autograd::Grads&, const autograd::Needs&) {
    return autograd::Grads{zeros({3}, DType::f64)};
  });
  try {
    backward(y, ones({2}, DType::f64));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shape"), std::string::npos) << e.what();
  }
  Tensor y2;
  {
    NoGradGuard ng;
    y2 = x.clone();
  }
  autograd::record("neg", {x}, {y2}, [](const autograd::Grads& g, const autograd::Needs&) {
    return autograd::Grads{g[0], g[0]};  // two gradients for one input
  });
  EXPECT_THROW(backward(y2, ones({2}, DType::f64)), Error);
}

TEST(Engine, NeedsAndZeroFilledOutputGrads) {
  Tensor x = leaf_of({1.0}, {1});
  Tensor c = from_vector<double>({2.0}, {1});
  Tensor o1, o2;
  {
    NoGradGuard ng;
    o1 = x.clone();
    o2 = x.clone();
  }
  autograd::Needs seen;
  autograd::Grads got;
  autograd::record("add", {x, c}, {o1, o2}, [&](const autograd::Grads& g, const autograd::Needs& n) {
    seen = n;
    got = g;
    return autograd::Grads{g[0], Tensor()};
  });
  backward(o1, ones({1}, DType::f64));  // o2 gets no gradient: the rule sees zeros
  EXPECT_EQ(seen, (autograd::Needs{true, false}));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].to_vector<double>(), (std::vector<double>{0.0}));
  EXPECT_EQ(grad_of(x), (std::vector<double>{1.0}));
}

TEST(Engine, SavedTensorsFreedWithoutRetainGraph) {
  Tensor x = leaf_of({1.0, 2.0}, {2});
  std::weak_ptr<Storage> saved;
  Tensor y;
  {
    Tensor a = x * 2.0;  // exp saves its output; only the graph holds `e` after this scope
    Tensor e = exp(a);
    saved = e.storage();
    y = e * 1.0;
  }
  EXPECT_FALSE(saved.expired());
  backward(y, ones({2}, DType::f64));
  EXPECT_TRUE(saved.expired()) << "backward without retain_graph must free saved tensors";
}
