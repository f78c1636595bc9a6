// Depthwise convs split by bands of output rows (kernels/dwconv_band.h): the split itself (every
// output row and channel once, bands on the pool's lanes, the fallback for bands that read only
// padding), and the int8 and fp32 operators on layers large enough to be split, at 1, 2 and 3
// threads on every compiled Highway target: int8 exactly equal to reference::qconv2d, fp32 bit
// for bit equal to its one-thread result and within the fp32 bound of the double reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <mutex>
#include <random>
#include <sstream>
#include <vector>

#include "framework/parallel.h"
#include "framework/parallel_split.h"
#include "hwy/targets.h"
#include "kernels/dwconv_band.h"
#include "kernels/f32_dwconv.h"
#include "kernels/qs8_dwconv.h"
#include "kernels/reference.h"
#include "kernels/requant.h"
#include "ops/conv.h"
#include "tests/hwy_targets.h"
#include "tests/runtime/reference_test_util.h"

namespace finch::test {
namespace {

namespace qr = quant::reference;
using quant::kernels::dw_band;
using quant::kernels::run_dw_bands;

// Restores the thread count and the dispatched targets however a test ends.
struct ThreadsGuard {
  int before = get_num_threads();
  ~ThreadsGuard() {
    set_num_threads(before);
    hwy::SetSupportedTargetsForTest(0);
  }
};

TEST(DwBands, BandReachesItsInputRows) {
  // 3×3 stride 1 padding 1 on 10 rows: output rows [0, 5) read input rows -1..5.
  auto b = dw_band(10, 3, 1, 1, 1, 0, 5);
  EXPECT_EQ(b.ih0, 0);
  EXPECT_EQ(b.H, 6);
  EXPECT_EQ(b.ph, 1);
  b = dw_band(10, 3, 1, 1, 1, 5, 10);  // rows 4..10 (10 is padding)
  EXPECT_EQ(b.ih0, 4);
  EXPECT_EQ(b.H, 6);
  EXPECT_EQ(b.ph, 0);
  // Stride 2: output row r reads input rows 2r − 1 .. 2r + 1.
  b = dw_band(112, 3, 2, 1, 1, 28, 56);
  EXPECT_EQ(b.ih0, 55);
  EXPECT_EQ(b.H, 112 - 55);
  EXPECT_EQ(b.ph, 0);
  // Dilation 2, 5×5, padding 4: output row 0 reads padded rows 0..8, input rows -4..4.
  b = dw_band(20, 5, 1, 4, 2, 0, 1);
  EXPECT_EQ(b.ih0, 0);
  EXPECT_EQ(b.H, 5);
  EXPECT_EQ(b.ph, 4);
  // Rows that see only padding.
  EXPECT_LT(dw_band(1, 3, 1, 5, 1, 6, 9).H, 1);
}

// Runs run_dw_bands with recording bodies: which (row, column) cells each call covered.
struct Recorded {
  std::vector<int> hits;  // per (n·OH + oh)·cols + col
  int64_t band_calls = 0, whole_calls = 0;
};
Recorded record(int64_t N, int64_t OH, int64_t H, int64_t KH, int64_t sh, int64_t ph, int64_t cols, Work per_cell) {
  Recorded r;
  r.hits.assign(size_t(N * OH * cols), 0);
  std::mutex mu;
  run_dw_bands(
      N, OH, H, KH, sh, ph, 1, cols, per_cell,
      [&](int64_t n, int64_t oh0, int64_t oh1, int64_t c0, int64_t c1) {
        std::lock_guard<std::mutex> lock(mu);
        ++r.band_calls;
        EXPECT_GE(dw_band(H, KH, sh, ph, 1, oh0, oh1).H, 1);
        for (int64_t oh = oh0; oh < oh1; ++oh)
          for (int64_t c = c0; c < c1; ++c) ++r.hits[size_t((n * OH + oh) * cols + c)];
      },
      [&](int64_t c0, int64_t c1) {
        std::lock_guard<std::mutex> lock(mu);
        ++r.whole_calls;
        for (int64_t i = 0; i < N * OH; ++i)
          for (int64_t c = c0; c < c1; ++c) ++r.hits[size_t(i * cols + c)];
      });
  return r;
}

TEST(DwBands, EveryCellOnceAndBandsFollowTheLanes) {
  ThreadsGuard guard;
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    for (int64_t N : {1, 3})
      for (int64_t OH : {1, 4, 7, 28, 112}) {
        SCOPED_TRACE(::testing::Message() << threads << " threads, N " << N << " OH " << OH);
        const Work cell = Work::nanoseconds(2000);  // large: always split where there are threads
        const Recorded r = record(N, OH, OH, 3, 1, 1, 24, cell);
        for (int h : r.hits) ASSERT_EQ(h, 1);
        const Split2d s = plan_bands(N * OH, 24, cell, threads);
        if (threads == 1) {
          EXPECT_EQ(r.whole_calls, 1);
          continue;
        }
        if (N * OH == 1) {  // one row: split by channels
          EXPECT_GE(r.whole_calls, 2);
          continue;
        }
        // One band per thread, and chunk c = band c / n_parts: with the pool's lanes (the i-th
        // contiguous share of s.m_parts · s.n_parts chunks) lane i holds exactly band i.
        EXPECT_EQ(s.m_parts, std::min<int64_t>(threads, N * OH));
        EXPECT_GE(s.n_parts, 1);
        EXPECT_EQ(r.whole_calls, 0);
      }
  }
}

TEST(DwBands, BandsThatReadOnlyPaddingFallBackToChannels) {
  ThreadsGuard guard;
  set_num_threads(3);
  // H = 1 with padding 5: OH = 9, and the first of three bands (rows 0..2) reads no input row.
  const Recorded r = record(1, 9, 1, 3, 1, 5, 24, Work::nanoseconds(2000));
  for (int h : r.hits) ASSERT_EQ(h, 1);
  EXPECT_EQ(r.band_calls, 0);
  EXPECT_GE(r.whole_calls, 2);  // split by channels instead
}

struct QCase {
  int64_t N, C, H, W, K, s, pad, dil;
  DType xt, yt;
  std::string str() const {
    std::ostringstream o;
    o << "N" << N << " C" << C << " " << H << "x" << W << " k" << K << " s" << s << " p" << pad << " d" << dil << " x"
      << dtype_name(xt) << " y" << dtype_name(yt);
    return o.str();
  }
};

// Layers with enough work for the cost model to split at 2 and 3 threads (a region that the pool
// runs on the caller alone while it backs off under load keeps the same chunks, so the bands are
// computed either way): planar (VNNI quad, flat and pair paths
// by target), channels-last (small planes, many channels), batches whose bands cross images,
// stride 2 and 3, dilation, padding that leaves whole bands in the padding.
const std::vector<QCase> kQCases = {
    {1, 32, 56, 56, 3, 1, 1, 1, DType::u8, DType::u8},   {1, 48, 57, 43, 3, 2, 1, 1, DType::i8, DType::u8},
    {2, 24, 28, 28, 3, 1, 1, 1, DType::u8, DType::i8},   {3, 40, 15, 17, 5, 1, 2, 1, DType::i8, DType::i8},
    {1, 160, 40, 40, 3, 3, 0, 1, DType::u8, DType::u8},   {1, 32, 30, 30, 3, 1, 2, 2, DType::u8, DType::u8},
    {1, 640, 7, 7, 3, 1, 1, 1, DType::u8, DType::u8},    {8, 192, 4, 4, 3, 1, 1, 1, DType::i8, DType::u8},
    {6, 256, 7, 7, 3, 2, 1, 1, DType::u8, DType::i8},    {1, 64, 2, 40, 3, 1, 6, 1, DType::u8, DType::u8},
};

TEST(DwBands, Qs8EqualsTheReferenceAt1To3ThreadsEveryTarget) {
  ThreadsGuard guard;
  std::mt19937 rng(22);
  for (const QCase& q : kQCases) {
    SCOPED_TRACE(q.str());
    ops::Conv2dParams p{q.s, q.s, q.pad, q.pad, q.dil, q.dil, q.C};
    const Tensor x = codes(random_codes(rng, q.N * q.C * q.H * q.W, code_lo(q.xt), code_hi(q.xt)),
                           {q.N, q.C, q.H, q.W}, q.xt);
    const Tensor w = codes(random_codes(rng, q.C * q.K * q.K, -128, 127), {q.C, 1, q.K, q.K});
    const Tensor bias = from_vector(random_codes(rng, q.C, -5000, 5000), {q.C});
    std::vector<double> mv;
    for (int64_t c = 0; c < q.C; ++c) mv.push_back(std::exp2(-9 - double(rng() % 5)) * 1.3);
    const auto m = quant::quantize_multipliers(mv);
    const int32_t zx = code_lo(q.xt) + 100, z_out = code_lo(q.yt) + 7;
    const Tensor ref = qr::qconv2d(x, zx, w, bias, qr::rq_tensor(m), p, z_out, code_lo(q.yt), code_hi(q.yt), q.yt);
    const quant::kernels::QDepthwiseConv2d op(w, bias, m, p, q.xt, zx, z_out, code_lo(q.yt), code_hi(q.yt), q.yt);
    for (uint32_t target : hwy_targets_to_test()) {
      hwy::SetSupportedTargetsForTest(target);
      SCOPED_TRACE(hwy::TargetName(target));
      for (int threads : {1, 2, 3}) {
        set_num_threads(threads);
        const Tensor y = op.run(x);
        ASSERT_EQ(values(y), values(ref)) << threads << " threads";
      }
    }
  }
}

TEST(DwBands, F32BitIdenticalAt1To3ThreadsEveryTarget) {
  ThreadsGuard guard;
  std::mt19937 rng(23);
  std::uniform_real_distribution<float> u(-2, 2);
  auto random = [&](const Shape& s) {
    std::vector<float> v(size_t(shape_numel(s)));
    for (float& f : v) f = u(rng);
    return from_vector(v, s);
  };
  // The per-plane walk (large planes, multiplier 2), the channels-last kernel (small planes).
  struct FCase {
    QCase q;
    int64_t M;
    bool residual;
  };
  const std::vector<FCase> cases = {
      {{1, 16, 112, 112, 3, 1, 1, 1, DType::f32, DType::f32}, 1, false},
      {{1, 16, 113, 111, 3, 2, 1, 1, DType::f32, DType::f32}, 1, true},
      {{2, 8, 40, 40, 5, 1, 2, 2, DType::f32, DType::f32}, 2, false},
      {{1, 96, 28, 28, 3, 1, 1, 1, DType::f32, DType::f32}, 1, true},
      {{3, 144, 14, 14, 3, 2, 1, 1, DType::f32, DType::f32}, 1, false},
      {{1, 64, 2, 40, 3, 1, 6, 1, DType::f32, DType::f32}, 1, false},
  };
  for (const FCase& f : cases) {
    const QCase& q = f.q;
    SCOPED_TRACE(q.str());
    ops::Conv2dParams p{q.s, q.s, q.pad, q.pad, q.dil, q.dil, q.C};
    const int64_t OH = ops::conv_out_size(q.H, q.K, q.s, q.pad, q.dil), OW = ops::conv_out_size(q.W, q.K, q.s, q.pad, q.dil);
    const Tensor x = random({q.N, q.C, q.H, q.W}), w = random({q.C * f.M, 1, q.K, q.K}), b = random({q.C * f.M});
    const Tensor r = f.residual ? random({q.N, q.C * f.M, OH, OW}) : Tensor();
    const quant::kernels::F32DepthwiseConv2d op(w, b, p, quant::kernels::F32Act::relu6);
    // The bound of tests/runtime/test_f32_dwconv.cc against the double reference.
    const Tensor exact = ops::conv2d_reference(x.to(DType::f64), w.to(DType::f64), b.to(DType::f64), p);
    const std::vector<double> want = exact.to_vector<double>();
    const std::vector<double> rv = r.defined() ? r.to_vector<double>() : std::vector<double>(want.size(), 0.0);
    for (uint32_t target : hwy_targets_to_test()) {
      hwy::SetSupportedTargetsForTest(target);
      SCOPED_TRACE(hwy::TargetName(target));
      set_num_threads(1);
      const std::vector<float> one = op.run(x, r).to_vector<float>();
      for (size_t i = 0; i < one.size(); ++i) {
        const double e = std::min(std::max(want[i] + rv[i], 0.0), 6.0);
        ASSERT_NEAR(one[i], e, 1e-4 * (1 + std::fabs(e))) << "output " << i;
      }
      for (int threads : {2, 3}) {
        set_num_threads(threads);
        const std::vector<float> got = op.run(x, r).to_vector<float>();
        for (size_t i = 0; i < got.size(); ++i)
          ASSERT_EQ(std::memcmp(&got[i], &one[i], sizeof(float)), 0) << "output " << i << ", " << threads << " threads";
      }
    }
  }
}

}  // namespace
}  // namespace finch::test
