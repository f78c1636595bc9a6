// Cross-checks of the reductions (sum, mean, max/argmax, var) against the f64 references, on
// every compiled Highway target: edge sizes, every subset of dims, keepdim, strided inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "framework/parallel.h"
#include "framework/random.h"
#include "ops/reduce.h"
#include "tests/ops/test_util.h"

namespace finch {
namespace {

const std::vector<int64_t> kSizes = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 63, 64,
                                     65, 127, 128, 129, 255, 256, 257, 4095, 4096, 4097, 9001};

using test::for_each_target;

// NaN/inf in the reference must be met exactly (max/argmax propagate them).
void expect_close(const Tensor& got, const Tensor& want, double atol, double rtol) {
  test::expect_close(got, want, atol, rtol, shape_str(got.shape()), test::NonFinite::must_match);
}

std::vector<std::vector<int64_t>> all_dim_subsets(int64_t nd) {
  std::vector<std::vector<int64_t>> out;
  for (int64_t m = 1; m < (int64_t(1) << nd); ++m) {
    std::vector<int64_t> d;
    for (int64_t i = 0; i < nd; ++i)
      if (m & (int64_t(1) << i)) d.push_back(i);
    out.push_back(d);
  }
  return out;
}

TEST(Reduce, RowSumKernelEverySize) {
  Generator gen(1);
  for_each_target([&] {
    for (int64_t n : kSizes) {
      Tensor x = randn({n + 1}, gen);
      const float* p = x.data<float>() + 1;  // misaligned start
      double want = 0, mag = 0;
      for (int64_t i = 0; i < n; ++i) {
        want += p[i];
        mag += std::abs(p[i]);
      }
      EXPECT_NEAR(ops::row_sum_f32(p, n), want, 1e-6 + 2e-6 * mag) << "n=" << n;
      if (n > 3) {  // the multi-row kernel: three rows of n / 3
        const int64_t m = n / 3;
        float out[3];
        ops::row_sums_f32(p, 3, m, out);
        for (int64_t r = 0; r < 3; ++r) {
          double w = 0, a = 0;
          for (int64_t i = 0; i < m; ++i) {
            w += p[r * m + i];
            a += std::abs(p[r * m + i]);
          }
          EXPECT_NEAR(out[r], w, 1e-6 + 2e-6 * a) << "rows of " << m;
        }
      }
    }
  });
}

TEST(Reduce, ColSumKernelStridedAndAccumulating) {
  Generator gen(2);
  for_each_target([&] {
    for (int64_t inner : kSizes) {
      if (inner > 300) continue;
      for (int64_t rows : {1, 2, 3, 7, 33}) {
        const int64_t ld = inner + 3;
        Tensor x = randn({rows * ld}, gen);
        std::vector<float> out(size_t(inner), 1.5f);
        ops::col_sum_f32(x.data<float>(), rows, inner, ld, out.data(), true);
        for (int64_t k = 0; k < inner; ++k) {
          double want = 1.5;
          for (int64_t r = 0; r < rows; ++r) want += x.data<float>()[r * ld + k];
          ASSERT_NEAR(out[size_t(k)], want, 1e-4) << "inner=" << inner << " rows=" << rows;
        }
        ops::col_sum_f32(x.data<float>(), rows, inner, ld, out.data(), false);
        for (int64_t k = 0; k < inner; ++k) {
          double want = 0;
          for (int64_t r = 0; r < rows; ++r) want += x.data<float>()[r * ld + k];
          ASSERT_NEAR(out[size_t(k)], want, 1e-4) << "inner=" << inner << " rows=" << rows;
        }
      }
    }
  });
}

TEST(Reduce, SumMeanEveryDimSubsetMatchReference) {
  const std::vector<Shape> shapes = {{7}, {3, 5}, {2, 3, 4}, {4, 1, 5, 3}, {2, 33, 17}, {3, 4097},
                                     {2, 5, 3, 9}, {65, 2}};
  Generator gen(3);
  for_each_target([&] {
    for (DType dt : {DType::f32, DType::f64}) {
      for (const Shape& s : shapes) {
        Tensor x = randn(s, gen, dt);
        for (const auto& dims : all_dim_subsets(int64_t(s.size())))
          for (bool keep : {false, true}) {
            SCOPED_TRACE(shape_str(s) + " dims " + shape_str(dims) + (keep ? " keep" : ""));
            const Tensor want = ops::sum_reference(x, dims, keep);
            const double n = double(ops::reduced_count(s, dims));
            expect_close(ops::sum(x, dims, keep), want, 1e-5 * std::sqrt(n), 1e-5);
            const auto w = want.to_vector<double>();
            const auto m = ops::mean(x, dims, keep).to_vector<double>();
            for (size_t i = 0; i < w.size(); ++i) ASSERT_NEAR(m[i], w[i] / n, 1e-5 * std::sqrt(n) / n + 1e-5 * std::abs(w[i] / n));
          }
      }
    }
  });
}

TEST(Reduce, EdgeSizesAlongRowsColumnsAndMiddle) {
  // Every edge size as the reduced extent of the row step ([3, n] over dim 1), the column step
  // ([n, 5] over dim 0, and [4, n] over dim 0 for wide columns) and a middle dim ([2, n, 3]).
  Generator gen(10);
  for_each_target([&] {
    for (int64_t n : kSizes) {
      SCOPED_TRACE("n=" + std::to_string(n));
      const std::vector<std::pair<Shape, int64_t>> cases = {{{3, n}, 1}, {{n, 5}, 0}, {{4, n}, 0}, {{2, n, 3}, 1}};
      for (const auto& [s, d] : cases) {
        Tensor x = randn(s, gen);
        const double tol = 1e-5 * std::sqrt(double(n));
        expect_close(ops::sum(x, {d}), ops::sum_reference(x, {d}, false), tol, 1e-5);
        const Tensor m = ops::mean(x, {d}, true);
        const Tensor ms = ops::sum_reference(x, {d}, true);
        ASSERT_EQ(m.shape(), ms.shape());
        const auto mv = m.to_vector<double>(), sv = ms.to_vector<double>();
        for (size_t i = 0; i < mv.size(); ++i) ASSERT_NEAR(mv[i], sv[i] / double(s[size_t(d)]), tol / double(s[size_t(d)]) + 1e-6);
        expect_close(ops::var(x, {d}), ops::var_reference(x, {d}, 1, false), 1e-5, 1e-4);
        auto [v, i] = ops::max(x, d);
        auto [rv, ri] = ops::max_reference(x, d, false);
        expect_close(v, rv, 0, 0);
        EXPECT_EQ(i.to_vector<int64_t>(), ri.to_vector<int64_t>());
      }
    }
  });
}

TEST(Reduce, MeanIsSumOverCount) {
  Generator gen(4);
  Tensor x = randn({4, 6, 5}, gen, DType::f64);
  const Tensor m = ops::mean(x, {0, 2}, false);
  const Tensor s = ops::sum_reference(x, {0, 2}, false);
  for (int64_t i = 0; i < 6; ++i) EXPECT_NEAR(m.get({i}), s.get({i}) / 20.0, 1e-12);
}

TEST(Reduce, NonContiguousAndNegativeDims) {
  Generator gen(5);
  for_each_target([&] {
    Tensor base = randn({6, 9, 10}, gen);
    const std::vector<Tensor> views = {base.permute({2, 0, 1}), base.slice(1, 1, 9, 2),
                                       base.transpose(0, 2).slice(0, 0, 10, 3),
                                       base.select(1, 4).expand({3, 6, 10})};
    for (const Tensor& v : views)
      for (const auto& dims : std::vector<std::vector<int64_t>>{{-1}, {0}, {-2, -1}, {0, 2}, {}})
        for (bool keep : {false, true}) {
          expect_close(ops::sum(v, dims, keep), ops::sum_reference(v, dims, keep), 1e-4, 1e-5);
          expect_close(ops::var(v, dims, 1, keep), ops::var_reference(v, dims, 1, keep), 1e-5, 1e-4);
        }
  });
}

TEST(Reduce, BiasGradientLayoutNCHW) {
  // Sum over N, H, W of [N, C, H, W]: the row step then the column step.
  Generator gen(6);
  for_each_target([&] {
    for (const Shape& s : std::vector<Shape>{{8, 16, 5, 7}, {3, 33, 1, 1}, {1, 5, 64, 65}, {9, 3, 2, 2}}) {
      Tensor x = randn(s, gen);
      expect_close(ops::sum(x, {0, 2, 3}), ops::sum_reference(x, {0, 2, 3}, false), 1e-4, 1e-5);
      expect_close(ops::sum(x, {0, 2, 3}, true), ops::sum_reference(x, {0, 2, 3}, true), 1e-4, 1e-5);
    }
  });
}

TEST(Reduce, EmptyDimsFollowTorch) {
  Tensor e = zeros({0, 3});
  Tensor s = ops::sum(e, {0});
  ASSERT_EQ(s.shape(), (Shape{3}));
  for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(s.get({i}), 0.0);
  EXPECT_EQ(ops::sum(e, {1}).shape(), (Shape{0}));
  EXPECT_EQ(ops::sum(e).item(), 0.0);
  EXPECT_TRUE(std::isnan(ops::mean(e, {0}).get({1})));
  EXPECT_THROW(ops::max(e, 0), Error);
  auto [v, i] = ops::max(e, 1);
  EXPECT_EQ(v.shape(), (Shape{0}));
  EXPECT_EQ(ops::sum(scalar_tensor(2.5)).item(), 2.5);
}

TEST(Reduce, BadDimsAreErrors) {
  Tensor x = zeros({2, 3});
  EXPECT_THROW(ops::sum(x, {0, -2}), Error);  // the same dim twice
  EXPECT_THROW(ops::sum(x, {2}), Error);
  EXPECT_THROW(ops::sum(zeros({2}, DType::i64)), Error);
  EXPECT_THROW(ops::max(x, 3), Error);
}

TEST(Reduce, F32SumIsBlockedNotNaive) {
  // A naive f32 loop over 17M ones stops at 2^24 = 16777216; the blocked sum is exact.
  const int64_t n = 17'000'000;
  Tensor x = ones({n});
  EXPECT_EQ(ops::sum(x).item(), double(n));
  EXPECT_EQ(ops::sum(x.view({1000, 17000}), {0}).get({5}), 1000.0);
  Tensor col = ones({n / 2, 2});
  EXPECT_EQ(ops::sum(col, {0}).get({1}), double(n / 2));
}

TEST(Reduce, DeterministicAcrossThreadCounts) {
  Generator gen(7);
  Tensor x = randn({37, 20000}, gen);
  const int prev = get_num_threads();
  set_num_threads(1);
  const auto a = ops::sum(x).to_vector<float>();
  const auto a2 = ops::sum(x, {0}).to_vector<float>();
  set_num_threads(2);
  const auto b = ops::sum(x).to_vector<float>();
  const auto b2 = ops::sum(x, {0}).to_vector<float>();
  set_num_threads(prev);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a2, b2);
}

TEST(Reduce, VarMatchesReference) {
  Generator gen(8);
  for (DType dt : {DType::f32, DType::f64})
    for (const Shape& s : std::vector<Shape>{{9}, {3, 4, 5}, {2, 257}, {4, 1, 3, 6}})
      for (const auto& dims : all_dim_subsets(int64_t(s.size())))
        for (int64_t corr : {0, 1, 2})
          for (bool keep : {false, true}) {
            // an offset of 100: the one-pass E[x²] − E[x]² formula would lose digits here
            std::vector<double> v = randn(s, gen, DType::f64).to_vector<double>();
            for (double& e : v) e += 100.0;
            const Tensor x = from_vector<double>(v, s).to(dt);
            SCOPED_TRACE(shape_str(s) + " dims " + shape_str(dims));
            expect_close(ops::var(x, dims, corr, keep), ops::var_reference(x, dims, corr, keep), 1e-6, 1e-4);
          }
  Tensor big = full({1000}, 1e4);
  for (int64_t i = 0; i < 1000; ++i) big.set({i}, 1e4 + (i % 2 ? 0.5 : -0.5));
  EXPECT_NEAR(ops::var(big, {}, 0).item(), 0.25, 1e-6);
  EXPECT_TRUE(std::isnan(ops::var(ones({1}), {}, 1).item()));  // 0 / 0, as torch
  EXPECT_EQ(ops::var(ones({3, 1}), {1}, 0).to_vector<double>(), (std::vector<double>{0, 0, 0}));
  EXPECT_TRUE(std::isnan(ops::var(ones({3, 1}), {1}, 1).get({2})));
  EXPECT_TRUE(std::isnan(ops::var(zeros({0, 2}), {0}).get({1})));
  EXPECT_TRUE(std::isinf(ops::var(from_vector<float>({1, 2}, {2}), {}, 2).item()));
}

TEST(Reduce, MaxFirstIndexWinsAndMatchesReference) {
  Generator gen(9);
  for_each_target([&] {
    for (DType dt : {DType::f32, DType::f64})
      for (const Shape& s : std::vector<Shape>{{7}, {3, 5}, {2, 3, 4}, {4, 33, 3}, {2, 257}})
        for (int64_t d = -int64_t(s.size()); d < int64_t(s.size()); ++d)
          for (bool keep : {false, true}) {
            // small integers force ties: the first maximum must win
            Tensor x = randint(0, 3, s, gen, DType::i64).to(dt);
            auto [v, i] = ops::max(x, d, keep);
            auto [rv, ri] = ops::max_reference(x, d, keep);
            expect_close(v, rv, 0, 0);
            EXPECT_EQ(i.to_vector<int64_t>(), ri.to_vector<int64_t>());
            EXPECT_EQ(ops::argmax(x, d, keep).to_vector<int64_t>(), ri.to_vector<int64_t>());
            Tensor xt = x.dim() > 1 ? x.transpose(0, 1) : x;
            auto [tv, ti] = ops::max(xt, d, keep);
            EXPECT_EQ(ti.to_vector<int64_t>(), ops::max_reference(xt, d, keep).second.to_vector<int64_t>());
          }
  });
  // NaN and -inf inside long rows (the vector path) and in the tails
  for_each_target([&] {
    const float nan = std::numeric_limits<float>::quiet_NaN(), ninf = -std::numeric_limits<float>::infinity();
    for (int64_t n : {5, 17, 37, 70}) {
      Tensor x = randn({4, n}, gen);
      x.set({0, n - 2}, nan);
      x.set({0, n - 1}, nan);
      x.set({1, n / 2}, nan);
      x.set({1, n / 2 + 1}, 100.0);
      for (int64_t i = 0; i < n; ++i) x.set({2, i}, ninf);
      x.set({3, n - 1}, 50.0);
      x.set({3, 0}, 50.0);
      auto [v, i] = ops::max(x, 1);
      EXPECT_TRUE(std::isnan(v.get({0})));
      EXPECT_EQ(i.get({0}), double(n - 2));
      EXPECT_TRUE(std::isnan(v.get({1})));
      EXPECT_EQ(i.get({1}), double(n / 2));
      EXPECT_EQ(v.get({2}), -std::numeric_limits<double>::infinity());
      EXPECT_EQ(i.get({2}), 0.0);
      EXPECT_EQ(v.get({3}), 50.0);
      EXPECT_EQ(i.get({3}), 0.0);
    }
  });
  Tensor x = from_vector<float>({1, std::numeric_limits<float>::quiet_NaN(), 5, std::numeric_limits<float>::quiet_NaN()}, {4});
  auto [v, i] = ops::max(x, 0);
  EXPECT_TRUE(std::isnan(v.item()));
  EXPECT_EQ(i.item(), 1.0);
}

}  // namespace
}  // namespace finch

namespace finch {
namespace {

TEST(ReduceBackward, F32MatchesF64) {
  // The backward kernels are dtype-generic; gradcheck covers f64, this pins f32 to it.
  Generator gen(11);
  const Tensor x64 = randn({4, 5, 6}, gen, DType::f64);
  const Tensor x32 = x64.to(DType::f32);
  for (const auto& dims : std::vector<std::vector<int64_t>>{{1}, {0, 2}, {}, {-1}})
    for (bool keep : {false, true}) {
      const Shape os = ops::sum(x64, dims, keep).shape();
      const Tensor dy64 = randn(os, gen, DType::f64), dy32 = dy64.to(DType::f32);
      expect_close(ops::reduce_backward(dy32, x32.shape(), dims, keep, 0.25),
                   ops::reduce_backward(dy64, x64.shape(), dims, keep, 0.25), 1e-6, 1e-6);
      expect_close(ops::var_backward(dy32, x32, dims, 1, keep), ops::var_backward(dy64, x64, dims, 1, keep),
                   1e-5, 1e-4);
    }
  for (int64_t d : {0, 1, 2}) {
    auto [v, i] = ops::max(x32, d, true);
    const Tensor dy = randn(v.shape(), gen, DType::f32);
    const Tensor dx = ops::max_backward(dy, i, x32.shape(), d, true);
    // dx is dy at the argmax and zero elsewhere: its sum along d equals dy
    expect_close(ops::sum(dx, {d}, true), dy, 1e-6, 0);
    const auto idx = i.to_vector<int64_t>();
    const auto g = ops::sum(ops::max_backward(ones(v.shape()), i, x32.shape(), d, true), {}).item();
    EXPECT_EQ(g, double(idx.size()));
  }
}

}  // namespace
}  // namespace finch
