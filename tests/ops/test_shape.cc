// Tests of the copying shape ops: cat, index_select (+ backward), pad (+ backward), and the
// strided copy, against element-by-element references.
#include <gtest/gtest.h>

#include "framework/random.h"
#include "ops/shape.h"

namespace finch {
namespace {

void expect_equal(const Tensor& got, const Tensor& want) {
  ASSERT_EQ(got.shape(), want.shape());
  ASSERT_EQ(got.dtype(), want.dtype());
  EXPECT_EQ(got.to_vector<double>(), want.to_vector<double>());
}

double dot(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += x[i] * y[i];
  return s;
}

TEST(Cat, EveryDimWithMixedStrides) {
  Generator gen(1);
  for (DType dt : {DType::f32, DType::f64, DType::i64}) {
    Tensor a = randn({2, 3, 4}, gen).to(dt);
    Tensor b = randn({4, 3, 2}, gen).to(dt).permute({2, 1, 0});  // [2, 3, 4], strided
    Tensor c = randn({2, 3, 9}, gen).to(dt).slice(2, 1, 9, 2);    // [2, 3, 4], step 2
    for (int64_t d : {0, 1, 2, -1, -3}) {
      Tensor y = ops::cat({a, b, c}, d);
      const int64_t dd = d < 0 ? d + 3 : d;
      ASSERT_EQ(y.size(dd), 3 * a.size(dd));
      expect_equal(y.narrow(dd, 0, a.size(dd)).contiguous(), a.contiguous());
      expect_equal(y.narrow(dd, a.size(dd), a.size(dd)).contiguous(), b.contiguous());
      expect_equal(y.narrow(dd, 2 * a.size(dd), a.size(dd)).contiguous(), c.contiguous());
      EXPECT_TRUE(y.is_contiguous());
    }
  }
  // different sizes along the cat dim, and an empty part
  Tensor p = randn({3, 1}, gen), q = randn({3, 5}, gen), e = zeros({3, 0});
  Tensor y = ops::cat({p, e, q}, 1);
  ASSERT_EQ(y.shape(), (Shape{3, 6}));
  EXPECT_EQ(y.get({2, 0}), p.get({2, 0}));
  EXPECT_EQ(y.get({1, 5}), q.get({1, 4}));
  // torch's legacy rule: an empty 1-D tensor is skipped
  EXPECT_EQ(ops::cat({zeros({0}), q}, 0).shape(), q.shape());
}

TEST(Cat, BadInputsAreErrors) {
  EXPECT_THROW(ops::cat({}, 0), Error);
  EXPECT_THROW(ops::cat({zeros({2, 3}), zeros({2, 4})}, 0), Error);
  EXPECT_THROW(ops::cat({zeros({2, 3}), zeros({2, 3}, DType::f64)}, 0), Error);
  EXPECT_THROW(ops::cat({zeros({2, 3}), zeros({2, 3})}, 2), Error);
  EXPECT_THROW(ops::cat({scalar_tensor(1.0), scalar_tensor(2.0)}, 0), Error);
}

TEST(IndexSelect, MatchesReferenceEveryDim) {
  Generator gen(2);
  for (DType it : {DType::i64, DType::i32})
    for (const Shape& s : std::vector<Shape>{{5}, {4, 6}, {3, 5, 7}})
      for (int64_t d = 0; d < int64_t(s.size()); ++d) {
        Tensor x = randn(s, gen);
        Tensor idx = randint(0, s[size_t(d)], {9}, gen, it);
        expect_equal(ops::index_select(x, d, idx), ops::index_select_reference(x, d, idx));
        expect_equal(ops::index_select(x, d - int64_t(s.size()), idx), ops::index_select_reference(x, d, idx));
        if (s.size() > 1) {
          Tensor xt = x.transpose(0, int64_t(s.size()) - 1);
          idx = randint(0, xt.size(d), {9}, gen, it);
          expect_equal(ops::index_select(xt, d, idx), ops::index_select_reference(xt, d, idx));
        }
      }
  Tensor x = randn({4, 3}, gen);
  EXPECT_EQ(ops::index_select(x, 0, zeros({0}, DType::i64)).shape(), (Shape{0, 3}));
  EXPECT_THROW(ops::index_select(x, 0, from_vector<int64_t>({4}, {1})), Error);
  EXPECT_THROW(ops::index_select(x, 0, from_vector<int64_t>({-1}, {1})), Error);
  EXPECT_THROW(ops::index_select(x, 0, zeros({2})), Error);
}

TEST(IndexSelect, BackwardAddsRepeatedIndices) {
  Generator gen(3);
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor idx = from_vector<int64_t>({2, 0, 2, 2, 1}, {5});
    Tensor dy = randn({3, 5, 4}, gen, dt);
    Tensor dx = ops::index_select_backward(dy, {3, 4, 4}, 1, idx);
    for (int64_t o = 0; o < 3; ++o)
      for (int64_t k = 0; k < 4; ++k) {
        EXPECT_NEAR(dx.get({o, 2, k}), dy.get({o, 0, k}) + dy.get({o, 2, k}) + dy.get({o, 3, k}), 1e-6);
        EXPECT_NEAR(dx.get({o, 0, k}), dy.get({o, 1, k}), 1e-6);
        EXPECT_NEAR(dx.get({o, 1, k}), dy.get({o, 4, k}), 1e-6);
        EXPECT_EQ(dx.get({o, 3, k}), 0.0);
      }
    // the adjoint identity <index_select(x), dy> = <x, backward(dy)>
    Tensor x = randn({3, 4, 4}, gen, dt);
    EXPECT_NEAR(dot(ops::index_select(x, 1, idx), dy), dot(x, dx), 1e-4);
  }
}

TEST(Pad, MatchesReferenceEveryMode) {
  Generator gen(4);
  const std::vector<std::vector<int64_t>> pad_sets = {{1, 2}, {0, 0}, {2, 1, 1, 3}, {3, 3, 0, 2, 1, 1},
                                                      {1, 0, 2, 0}};
  for (const std::string mode : {"constant", "reflect", "replicate"})
    for (const Shape& s : std::vector<Shape>{{2, 4, 5}, {1, 3, 6, 4}, {5, 4, 4}})
      for (const auto& pads : pad_sets) {
        if (pads.size() / 2 > s.size()) continue;
        SCOPED_TRACE(mode + " " + shape_str(s) + " pads " + shape_str(pads));
        Tensor x = randn(s, gen);
        expect_equal(ops::pad(x, pads, mode, 0.5), ops::pad_reference(x, pads, mode, 0.5));
        Tensor xt = x.transpose(-1, -2).contiguous().transpose(-1, -2);  // strided input
        expect_equal(ops::pad(xt, pads, mode, 0.5), ops::pad_reference(xt, pads, mode, 0.5));
        // the backward is the adjoint of the forward
        Tensor xd = randn(s, gen, DType::f64);
        Tensor y = ops::pad(xd, pads, mode, 0.0);
        Tensor dy = randn(y.shape(), gen, DType::f64);
        EXPECT_NEAR(dot(y, dy), dot(xd, ops::pad_backward(dy, s, pads, mode)), 1e-9);
      }
}

TEST(Pad, ConstantCropsWithNegativePadsAndChecksArguments) {
  Tensor x = arange(0, 12).view({3, 4});
  Tensor y = ops::pad(x, {-1, 1, 0, -1}, "constant", 9.5);
  ASSERT_EQ(y.shape(), (Shape{2, 4}));
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{1, 2, 3, 9.5, 5, 6, 7, 9.5}));
  expect_equal(y, ops::pad_reference(x, {-1, 1, 0, -1}, "constant", 9.5));
  EXPECT_THROW(ops::pad(x, {1}, "constant"), Error);
  EXPECT_THROW(ops::pad(x, {4, 0}, "reflect"), Error);  // pad >= size
  EXPECT_THROW(ops::pad(x, {1, 1}, "wrap"), Error);
  EXPECT_THROW(ops::pad(x, {1, 1, 1, 1, 1, 1}, "constant"), Error);
  EXPECT_THROW(ops::pad(x, {-5, 0}, "constant"), Error);
  EXPECT_EQ(ops::pad(x.to(DType::i32), {1, 1}, "replicate").get({2, 5}), 11.0);
}

TEST(StridedCopy, AnyStridesAnyDtype) {
  Generator gen(5);
  for (DType dt : {DType::f32, DType::f64, DType::i8, DType::i16, DType::i64}) {
    Tensor src = randint(-100, 100, {5, 6, 7}, gen, DType::i64).to(dt);
    for (const Tensor& view : {src.permute({2, 0, 1}), src.slice(2, 1, 7, 3), src.select(1, 2)}) {
      const Shape& v = view.shape();
      Tensor dst = view.dim() == 2 ? zeros({v[1], v[0]}, dt).t()
                                   : zeros({v[2], v[0], v[1]}, dt).permute({1, 2, 0});
      ops::strided_copy(dst, view);
      EXPECT_EQ(dst.to_vector<double>(), view.to_vector<double>());
    }
  }
}

}  // namespace
}  // namespace finch
