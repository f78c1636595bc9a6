// Cross-checks of softmax / log_softmax and their backward kernels against the f64 references
// on every compiled Highway target: rows of every edge size, columns (dim not last), strided
// inputs, large magnitudes and -inf masks.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "framework/random.h"
#include "ops/softmax.h"
#include "tests/ops/test_util.h"

namespace finch {
namespace {

const std::vector<int64_t> kSizes = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33,
                                     63, 64, 65, 127, 128, 129, 255, 256, 257, 1000, 1025};

using test::for_each_target;

void expect_close(const Tensor& got, const Tensor& want, double atol, double rtol) {
  ASSERT_EQ(got.shape(), want.shape());
  const auto g = got.to_vector<double>(), w = want.to_vector<double>();
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isinf(w[i])) {
      ASSERT_EQ(g[i], w[i]) << "element " << i;
      continue;
    }
    ASSERT_NEAR(g[i], w[i], atol + rtol * std::abs(w[i]))
        << "element " << i << " of " << shape_str(got.shape());
  }
}

TEST(Softmax, RowsEverySizeBothDirections) {
  Generator gen(1);
  for_each_target([&] {
    for (int64_t n : kSizes) {
      SCOPED_TRACE("n=" + std::to_string(n));
      Tensor x = randn({3, n}, gen);
      Tensor dy = randn({3, n}, gen);
      for (bool log : {false, true}) {
        const Tensor y = log ? ops::log_softmax(x, -1) : ops::softmax(x, 1);
        expect_close(y, ops::softmax_reference(x, 1, log), 1e-6, 1e-5);
        const Tensor dx = log ? ops::log_softmax_backward(dy, y, 1) : ops::softmax_backward(dy, y, -1);
        expect_close(dx, ops::softmax_backward_reference(dy, y, 1, log), 1e-5, 1e-4);
      }
    }
  });
}

TEST(Softmax, RowKernelMisalignedPointers) {
  Generator gen(2);
  for_each_target([&] {
    for (int64_t n : {5, 17, 33, 129}) {
      Tensor buf = randn({2 * n + 1}, gen);
      Tensor out = zeros({2 * n + 1});
      ops::softmax_rows_f32(buf.data<float>() + 1, out.data<float>() + 1, 2, n, false);
      const Tensor x = buf.slice(0, 1, 2 * n + 1).view({2, n});
      expect_close(out.slice(0, 1, 2 * n + 1).view({2, n}), ops::softmax_reference(x, 1, false), 1e-6, 1e-5);
    }
  });
}

TEST(Softmax, EveryDimAndStridedInputs) {
  Generator gen(3);
  for_each_target([&] {
    for (DType dt : {DType::f32, DType::f64})
      for (const Shape& s : std::vector<Shape>{{2, 3, 4}, {3, 17, 5}, {2, 9, 65}, {4, 1, 33}, {7}, {1, 1, 1}})
        for (int64_t d = -int64_t(s.size()); d < int64_t(s.size()); ++d)
          for (bool log : {false, true}) {
            SCOPED_TRACE(shape_str(s) + " dim " + std::to_string(d));
            const double tol = dt == DType::f32 ? 1e-5 : 1e-12;
            Tensor x = randn(s, gen, dt), dy = randn(s, gen, dt);
            const Tensor y = log ? ops::log_softmax(x, d) : ops::softmax(x, d);
            expect_close(y, ops::softmax_reference(x, d, log), tol, tol);
            const Tensor dx = log ? ops::log_softmax_backward(dy, y, d) : ops::softmax_backward(dy, y, d);
            expect_close(dx, ops::softmax_backward_reference(dy, y, d, log), tol, 10 * tol);
            if (s.size() == 3) {  // non-contiguous: a transposed view
              const Tensor xt = x.transpose(0, 2);
              const Tensor yt = log ? ops::log_softmax(xt, d) : ops::softmax(xt, d);
              expect_close(yt, ops::softmax_reference(xt, d, log), tol, tol);
              const Tensor dxt = log ? ops::log_softmax_backward(dy.transpose(0, 2), yt, d)
                                     : ops::softmax_backward(dy.transpose(0, 2), yt, d);
              expect_close(dxt, ops::softmax_backward_reference(dy.transpose(0, 2), yt, d, log), tol, 10 * tol);
            }
          }
  });
}

TEST(Softmax, ColumnsEveryInnerSize) {
  // dim 1 of [2, 5, n]: the column kernel with every tail of the vector width.
  Generator gen(4);
  for_each_target([&] {
    for (int64_t n : kSizes) {
      SCOPED_TRACE("n=" + std::to_string(n));
      Tensor x = randn({2, 5, n}, gen), dy = randn({2, 5, n}, gen);
      for (bool log : {false, true}) {
        const Tensor y = log ? ops::log_softmax(x, 1) : ops::softmax(x, 1);
        expect_close(y, ops::softmax_reference(x, 1, log), 1e-6, 1e-5);
        const Tensor dx = log ? ops::log_softmax_backward(dy, y, 1) : ops::softmax_backward(dy, y, 1);
        expect_close(dx, ops::softmax_backward_reference(dy, y, 1, log), 1e-5, 1e-4);
      }
    }
  });
}

TEST(Softmax, StableForLargeValues) {
  for_each_target([&] {
    for (int64_t n : {3, 8, 17, 130}) {
      Tensor x = empty({2, n});
      for (int64_t i = 0; i < n; ++i) {
        x.set({0, i}, i % 2 ? 1e4 : -1e4);
        x.set({1, i}, 1e4 - double(i));
      }
      for (int64_t dim : {0, 1})
        for (bool log : {false, true}) {
          const Tensor y = log ? ops::log_softmax(x, dim) : ops::softmax(x, dim);
          for (double v : y.to_vector<double>()) EXPECT_TRUE(std::isfinite(v));
          expect_close(y, ops::softmax_reference(x, dim, log), 1e-6, 1e-5);
        }
      const auto p = ops::softmax(x, 1).to_vector<double>();
      double s = 0;
      for (int64_t i = 0; i < n; ++i) s += p[size_t(i)];
      EXPECT_NEAR(s, 1.0, 1e-5);
    }
  });
}

TEST(Softmax, MinusInfinityMasksOut) {
  const float ninf = -std::numeric_limits<float>::infinity();
  for_each_target([&] {
    Tensor x = from_vector<float>({1, ninf, 2, ninf, 3, 0, ninf, ninf, 0, 5, 1, 2}, {12});
    const Tensor xs = x.view({1, 12});
    const auto p = ops::softmax(xs, 1).to_vector<double>();
    EXPECT_EQ(p[1], 0.0);
    EXPECT_EQ(p[7], 0.0);
    expect_close(ops::softmax(xs, 1), ops::softmax_reference(xs, 1, false), 1e-7, 1e-5);
    expect_close(ops::log_softmax(xs, 1), ops::softmax_reference(xs, 1, true), 1e-6, 1e-5);
    expect_close(ops::softmax(x.view({12, 1}), 0), ops::softmax_reference(x.view({12, 1}), 0, false), 1e-7, 1e-5);
  });
}

TEST(Softmax, EmptyAndBadInput) {
  EXPECT_EQ(ops::softmax(zeros({0, 4}), 1).shape(), (Shape{0, 4}));
  EXPECT_EQ(ops::softmax(zeros({4, 0}), 1).shape(), (Shape{4, 0}));
  EXPECT_EQ(ops::softmax(scalar_tensor(3.0), 0).item(), 1.0);
  EXPECT_THROW(ops::softmax(zeros({2, 3}), 2), Error);
  EXPECT_THROW(ops::softmax(zeros({2, 3}, DType::i32), 1), Error);
  EXPECT_THROW(ops::softmax_backward(zeros({2, 3}), zeros({3, 2}), 1), Error);
}

}  // namespace
}  // namespace finch
