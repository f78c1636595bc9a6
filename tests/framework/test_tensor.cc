// Tensor metadata, views that share storage, copies across layouts and dtypes, factories.
#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "framework/grad_mode.h"
#include "framework/random.h"
#include "framework/tensor.h"

using namespace finch;

TEST(Tensor, FactoriesAndShape) {
  Tensor t = zeros({2, 3, 4});
  EXPECT_EQ(t.dim(), 3);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.strides(), (Shape{12, 4, 1}));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.get({1, 2, 3}), 0.0);
  EXPECT_EQ(full({2}, 3.5).get({1}), 3.5);
  Tensor a = arange(0, 10, 3, DType::i32);
  EXPECT_EQ(a.to_vector<int>(), (std::vector<int>{0, 3, 6, 9}));
  EXPECT_EQ(scalar_tensor(2.0).item(), 2.0);
}

TEST(Tensor, ViewsShareStorage) {
  Tensor t = arange(24).reshape({2, 3, 4});
  Tensor p = t.permute({2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_FALSE(p.is_contiguous());
  EXPECT_EQ(p.storage(), t.storage());
  EXPECT_EQ(p.get({3, 1, 2}), t.get({1, 2, 3}));
  p.set({0, 0, 0}, 100);
  EXPECT_EQ(t.get({0, 0, 0}), 100);

  Tensor s = t.slice(2, 1, 4, 2);  // columns 1 and 3
  EXPECT_EQ(s.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(s.get({1, 2, 1}), 23);
  Tensor n = t.narrow(1, 1, 2);
  EXPECT_EQ(n.get({0, 0, 0}), 4);
  Tensor sel = t.select(0, 1);
  EXPECT_EQ(sel.shape(), (Shape{3, 4}));
  EXPECT_EQ(sel.get({0, 0}), 12);

  Tensor e = arange(3).reshape({3, 1}).expand({3, 4});
  EXPECT_EQ(e.strides(), (Shape{1, 0}));
  EXPECT_EQ(e.get({2, 3}), 2);
  EXPECT_EQ(t.unsqueeze(1).shape(), (Shape{2, 1, 3, 4}));
  EXPECT_EQ(t.unsqueeze(1).squeeze(1).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(t.flatten(1).shape(), (Shape{2, 12}));
  EXPECT_EQ(t.view({-1, 4}).shape(), (Shape{6, 4}));
}

TEST(Tensor, ContiguousCopiesPermutedData) {
  Tensor t = arange(6).reshape({2, 3});
  Tensor c = t.t().contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_EQ(c.to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  // view() refuses an incompatible layout; reshape() copies.
  EXPECT_THROW(t.t().view({6}), Error);
  EXPECT_EQ(t.t().reshape({6}).to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

TEST(Tensor, DtypeConversions) {
  Tensor t = from_vector<float>({1.5f, -2.25f, 65504.f, 1e-8f}, {4});
  EXPECT_EQ(t.to(DType::f16).to(DType::f32).to_vector<float>(),
            (std::vector<float>{1.5f, -2.25f, 65504.f, 0.f}));
  EXPECT_EQ(t.to(DType::i32).to_vector<int>(), (std::vector<int>{1, -2, 65504, 0}));
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.0f / 3.0f)), 0.333251953125f);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f / 3.0f)), 0.333984375f);
  // Round half to even on a tie: 1 + 2^-11 is halfway between 1 and 1 + 2^-10.
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.0f + 1.0f / 2048)), 1.0f);
  for (float v : {6.1035156e-05f, 5.9604645e-08f, 3.0e-6f, -7.5e-7f}) {
    const float back = f16_to_f32(f32_to_f16(v));
    EXPECT_NEAR(back, v, 6e-8) << v;
  }
}

TEST(Tensor, CopyBroadcastsAndConverts) {
  Tensor dst = zeros({2, 3}, DType::f64);
  dst.copy_(from_vector<int32_t>({1, 2, 3}, {3}));
  EXPECT_EQ(dst.to_vector<double>(), (std::vector<double>{1, 2, 3, 1, 2, 3}));
}

TEST(Tensor, ErrorsAreSentences) {
  Tensor t = zeros({2, 3});
  try {
    t.reshape({4, 2});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("reshape: shape [4, 2] is invalid for a tensor of 6"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(t.get({2, 0}), Error);
  EXPECT_THROW(t.data<int32_t>(), Error);
  EXPECT_THROW(t.permute({0, 0}), Error);
}

TEST(Tensor, RawViewsRefuseToDropGradients) {
  Tensor w = zeros({2, 2});
  w.set_requires_grad(true);
  EXPECT_THROW(w.reshape({4}), Error);
  NoGradGuard ng;
  EXPECT_EQ(w.reshape({4}).numel(), 4);
}

TEST(Tensor, Printing) {
  EXPECT_EQ(arange(4).reshape({2, 2}).str(), "tensor([[0., 1.],\n        [2., 3.]])");
  EXPECT_EQ(arange(3, DType::i64).str(), "tensor([0, 1, 2], dtype=I64)");
}

TEST(Random, SeededAndRestorable) {
  Generator g(42);
  Tensor a = randn({100}, g);
  auto st = g.state();
  Tensor b = rand({7}, g);
  g.set_state(st);
  EXPECT_EQ(rand({7}, g).to_vector<float>(), b.to_vector<float>());
  Generator g2(42);
  EXPECT_EQ(randn({100}, g2).to_vector<float>(), a.to_vector<float>());
  Tensor r = randint(-3, 4, {1000}, g);
  for (int64_t v : r.to_vector<int64_t>()) {
    EXPECT_GE(v, -3);
    EXPECT_LT(v, 4);
  }
  auto p = randperm(10, g).to_vector<int64_t>();
  std::sort(p.begin(), p.end());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(p[size_t(i)], i);
}

TEST(Tensor, ZeroDimAndEmptyViews) {
  Tensor s = scalar_tensor(3.0);
  EXPECT_EQ(s.view({1, 1}).get({0, 0}), 3.0);
  EXPECT_EQ(s.reshape({1}).shape(), (Shape{1}));
  Tensor e = empty({2, 0, 3});
  EXPECT_TRUE(e.is_contiguous());
  EXPECT_EQ(e.view({0, 6}).shape(), (Shape{0, 6}));
  Tensor t = zeros({2, 3});
  EXPECT_FALSE(t.squeeze(0).is_same(t));  // a view is always a new handle
}

// int64 values above 2^53 (a generator's state words in a checkpoint) survive a round trip
// through a tensor bit for bit, also through a strided view.
TEST(Tensor, Int64RoundTripIsExact) {
  const std::vector<int64_t> v{std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(),
                               (int64_t(1) << 53) + 1, -((int64_t(1) << 60) + 7)};
  const Tensor t = from_vector<int64_t>(v, {2, 2});
  EXPECT_EQ(t.to_vector<int64_t>(), v);
  EXPECT_EQ(t.t().to_vector<int64_t>(), (std::vector<int64_t>{v[0], v[2], v[1], v[3]}));
}

TEST(Tensor, FirstNonFiniteFindsNaNAndInfinityInEveryFloatDtype) {
  for (DType d : {DType::f32, DType::f64, DType::f16, DType::bf16}) {
    Tensor t = zeros({3, 4}, d);
    EXPECT_EQ(first_non_finite(t), -1) << dtype_name(d);
    t.set({2, 1}, std::numeric_limits<double>::infinity());
    EXPECT_EQ(first_non_finite(t), 9) << dtype_name(d);
    t.set({0, 3}, std::numeric_limits<double>::quiet_NaN());
    EXPECT_EQ(first_non_finite(t), 3) << dtype_name(d);
    EXPECT_EQ(first_non_finite(t.t()), 5) << "strided view: row-major index of the view";
  }
  EXPECT_EQ(first_non_finite(zeros({4}, DType::i32)), -1);
}
