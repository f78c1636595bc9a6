// Pooling kernels vs the per-output references: max (values and argmax indices), avg
// (count_include_pad, ceil_mode, padding) and adaptive avg, forward and backward.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "framework/random.h"
#include "ops/conv.h"
#include "ops/pool.h"
#include "tests/ops/test_util.h"

namespace finch::ops {
namespace {

// One tolerance used as both atol and rtol.
void expect_close(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  test::expect_close(got, want, tol, tol, what);
}

using test::randn_maybe_strided;

// Sweeps kernel 1–3, stride 1–3, padding up to kernel/2, ceil_mode, sizes 1–9, F32/F64.
template <typename F>
void sweep(F&& check) {
  uint64_t seed = 1;
  for (int64_t k : {1, 2, 3})
    for (int64_t s : {1, 2, 3})
      for (int64_t pad = 0; 2 * pad <= k; ++pad)
        for (bool ceil : {false, true})
          for (int64_t h : {1, 2, 3, 5, 8, 9})
            for (int64_t w : {1, 4, 7}) {
              Pool2dParams p{k, k, s, s, pad, pad, ceil, true};
              if (pool_out_size(h, k, s, pad, ceil) < 1 || pool_out_size(w, k, s, pad, ceil) < 1) continue;
              check(p, Shape{seed % 2 ? 2 : 1, 3, h, w}, seed % 3 == 0 ? DType::f64 : DType::f32, seed);
              ++seed;
            }
}

TEST(MaxPool2d, MatchesReference) {
  sweep([](const Pool2dParams& p, const Shape& xs, DType dt, uint64_t seed) {
    Generator gen(seed);
    const Tensor x = randn_maybe_strided(xs, gen, dt, seed % 4 == 0);
    const MaxPoolResult r = max_pool2d(x, p), ref = max_pool2d_reference(x, p);
    expect_close(r.y, ref.y, 0, "max values");
    expect_close(r.indices, ref.indices, 0, "argmax");
    const Tensor dy = randn(r.y.shape(), gen, dt);
    // Backward reference: scatter by the reference indices with plain loops.
    const auto idx = ref.indices.to_vector<int64_t>();
    const auto g = dy.to_vector<double>();
    std::vector<double> dx(size_t(x.numel()));
    const int64_t O = r.y.size(-1) * r.y.size(-2), HW = xs[2] * xs[3];
    for (size_t o = 0; o < g.size(); ++o) dx[size_t(int64_t(o) / O * HW + idx[o])] += g[o];
    expect_close(max_pool2d_backward(dy, r.indices, xs), from_vector(dx, xs), 1e-6, "max backward");
    if (::testing::Test::HasFatalFailure()) FAIL() << "k=" << p.kh << " s=" << p.sh << " p=" << p.ph;
  });
}

TEST(AvgPool2d, MatchesReference) {
  sweep([](Pool2dParams p, const Shape& xs, DType dt, uint64_t seed) {
    for (bool inclusive : {true, false}) {
      p.count_include_pad = inclusive;
      Generator gen(seed);
      const Tensor x = randn_maybe_strided(xs, gen, dt, seed % 4 == 1);
      const Tensor y = avg_pool2d(x, p);
      expect_close(y, avg_pool2d_reference(x, p), 1e-6, "avg forward");
      const Tensor dy = randn(y.shape(), gen, dt);
      expect_close(avg_pool2d_backward(dy, xs, p), avg_pool2d_backward_reference(dy, xs, p), 1e-6,
                   "avg backward");
      if (::testing::Test::HasFatalFailure())
        FAIL() << "k=" << p.kh << " s=" << p.sh << " p=" << p.ph << " ceil=" << p.ceil_mode;
    }
  });
}

TEST(AvgPool2d, CeilModeKnownValues) {
  // torch.nn.functional.avg_pool2d(arange(9.).view(1,1,3,3), 2, 2, ceil_mode=True) = [[2, 3.5], [6.5, 8]]
  const Tensor x = arange(9.0).view({1, 1, 3, 3});
  const Tensor y = avg_pool2d(x, Pool2dParams{2, 2, 2, 2, 0, 0, true, true});
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{2, 3.5, 6.5, 8}));
  // padding 1, count_include_pad: the corner window holds one real cell of four.
  const Tensor z = avg_pool2d(x, Pool2dParams{2, 2, 2, 2, 1, 1, false, true});
  EXPECT_DOUBLE_EQ(z.get({0, 0, 0, 0}), 0.0 / 4);
  EXPECT_DOUBLE_EQ(z.get({0, 0, 1, 1}), (4 + 5 + 7 + 8) / 4.0);
  const Tensor e = avg_pool2d(x, Pool2dParams{2, 2, 2, 2, 1, 1, false, false});
  EXPECT_DOUBLE_EQ(e.get({0, 0, 0, 1}), (1 + 2) / 2.0);
}

TEST(AdaptiveAvgPool2d, MatchesReference) {
  uint64_t seed = 1;
  for (int64_t h : {1, 2, 5, 7, 9})
    for (int64_t w : {1, 3, 8})
      for (int64_t oh : {1, 2, 3, 5, 7})
        for (int64_t ow : {1, 2, 4}) {
          Generator gen(seed);
          const DType dt = seed % 2 ? DType::f32 : DType::f64;
          const Tensor x = randn_maybe_strided({2, 3, h, w}, gen, dt, seed % 3 == 0);
          const Tensor y = adaptive_avg_pool2d(x, oh, ow);
          expect_close(y, adaptive_avg_pool2d_reference(x, oh, ow), 1e-6, "adaptive forward");
          // Backward by the adjoint identity <dy, A x> = <Aᵀ dy, x>.
          const Tensor dy = randn(y.shape(), gen, dt);
          const Tensor dx = adaptive_avg_pool2d_backward(dy, x.shape());
          const auto a = dy.to_vector<double>(), b = y.to_vector<double>();
          const auto c = dx.to_vector<double>(), d = x.to_vector<double>();
          double l = 0, r = 0;
          for (size_t i = 0; i < a.size(); ++i) l += a[i] * b[i];
          for (size_t i = 0; i < c.size(); ++i) r += c[i] * d[i];
          EXPECT_NEAR(l, r, 1e-4 * (1 + std::fabs(l)));
          ++seed;
        }
}

TEST(AdaptiveAvgPool2d, GlobalSumsEachPlaneInOrder) {
  // The global (1×1) fast path runs 8 planes at once: each plane must still be summed row by
  // row, as the general loop does, so the result is bit-identical to that order.
  Generator gen(3);
  for (const Shape& s : {Shape{3, 7, 4, 4}, Shape{1, 1280, 4, 4}, Shape{2, 9, 7, 5}}) {
    const Tensor x = randn(s, gen, DType::f32);
    const auto xv = x.to_vector<float>();
    const int64_t HW = s[2] * s[3];
    std::vector<float> want(size_t(s[0] * s[1]));
    for (size_t p = 0; p < want.size(); ++p) {
      float acc = 0;
      for (int64_t i = 0; i < HW; ++i) acc += xv[p * size_t(HW) + size_t(i)];
      want[p] = acc / float(HW);
    }
    EXPECT_EQ(adaptive_avg_pool2d(x, 1, 1).to_vector<float>(), want) << shape_str(s);
  }
}

TEST(Pool2d, RejectsBadArguments) {
  EXPECT_THROW(max_pool2d(zeros({1, 1, 4, 4}), Pool2dParams{2, 2, 2, 2, 2, 2}), Error);  // pad > k/2
  EXPECT_THROW(max_pool2d(zeros({4, 4}), Pool2dParams{}), Error);
  EXPECT_THROW(avg_pool2d(zeros({1, 1, 1, 1}), Pool2dParams{3, 3, 1, 1, 0, 0}), Error);
  EXPECT_THROW(adaptive_avg_pool2d(zeros({1, 1, 4, 4}), 0, 2), Error);
}

}  // namespace
}  // namespace finch::ops

// Output sizes with sizes a hostile file could carry: checked, never wrapped.
TEST(PoolOutSize, HugeStridesAndPaddingsAreCheckedNotWrapped) {
  using finch::ops::conv_out_size;
  using finch::ops::pool_out_size;
  const int64_t big = int64_t(1) << 62;
  EXPECT_EQ(pool_out_size(28, 2, big, 0, false), 1);
  EXPECT_EQ(pool_out_size(28, 2, big, 0, true), 1);
  EXPECT_EQ(pool_out_size(28, 3, std::numeric_limits<int64_t>::max(), 1, true), 1);
  EXPECT_EQ(conv_out_size(28, 3, big, 1, 1), 1);
  EXPECT_THROW(pool_out_size(28, 2, 2, big, false), finch::Error);
  EXPECT_THROW(conv_out_size(28, 3, 1, big, 1), finch::Error);
  EXPECT_THROW(conv_out_size(28, 3, 1, 1, big), finch::Error);
  EXPECT_THROW(conv_out_size(28, 3, 0, 1, 1), finch::Error);
  // The ordinary cases still follow PyTorch's formula (ceil mode drops a window starting in the
  // right padding).
  for (int64_t in = 1; in <= 9; ++in)
    for (int64_t k = 1; k <= 3; ++k)
      for (int64_t s = 1; s <= 3; ++s)
        for (int64_t p = 0; 2 * p <= k; ++p)
          for (bool ceil : {false, true}) {
            if (in + 2 * p < k) continue;
            int64_t want = (in + 2 * p - k + (ceil ? s - 1 : 0)) / s + 1;
            if (ceil && (want - 1) * s >= in + p) --want;
            EXPECT_EQ(pool_out_size(in, k, s, p, ceil), want) << in << " " << k << " " << s << " " << p << " " << ceil;
          }
}
