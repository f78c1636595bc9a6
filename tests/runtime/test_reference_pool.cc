// reference::qmax_pool2d, qavg_pool2d and qadaptive_avg_pool2d: hand-computed windows (padding
// never wins a max, PyTorch's avg divisor with and without count_include_pad, ceil_mode windows
// hanging past the padding, adaptive windows) and a sweep against windows computed here from
// PyTorch's formulas (aten/src/ATen/native/cpu/AvgPoolKernel.cpp, Pool.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "ops/pool.h"
#include "kernels/reference.h"
#include "kernels/requant.h"
#include "tests/error_text.h"
#include "tests/runtime/reference_test_util.h"

namespace finch::test {
namespace {

namespace qr = quant::reference;

ops::Pool2dParams pool(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph = 0, int64_t pw = 0,
                       bool ceil_mode = false, bool count_include_pad = true) {
  ops::Pool2dParams p;
  p.kh = kh, p.kw = kw, p.sh = sh, p.sw = sw, p.ph = ph, p.pw = pw;
  p.ceil_mode = ceil_mode;
  p.count_include_pad = count_include_pad;
  return p;
}

TEST(ReferencePool, MaxPaddingNeverWins) {
  // All codes negative: a padded cell read as 0 (or as any zero point) would win every border window.
  const Tensor x = codes({-5, -9, -7, -8, -100, -6, -3, -4, -2}, {1, 1, 3, 3});
  // k 2, s 2, padding 1: row/col windows {0} and {1, 2}.
  const Tensor y = qr::qmax_pool2d(x, pool(2, 2, 2, 2, 1, 1));
  EXPECT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_EQ(y.dtype(), DType::i8);
  EXPECT_EQ(values(y), (std::vector<int32_t>{-5, -7, -3, -2}));
  // u8, 3-D input [C, H, W].
  const Tensor xu = codes({0, 1, 255, 3}, {1, 2, 2}, DType::u8);
  const Tensor yu = qr::qmax_pool2d(xu, pool(2, 2, 1, 1, 1, 1));
  EXPECT_EQ(yu.shape(), (Shape{1, 3, 3}));
  EXPECT_EQ(yu.dtype(), DType::u8);
  EXPECT_EQ(values(yu), (std::vector<int32_t>{0, 1, 1, 255, 255, 3, 255, 255, 3}));
}

TEST(ReferencePool, MaxCeilMode) {
  const Tensor x = codes({1, 5, 2, 8, 3}, {1, 1, 1, 5});
  EXPECT_EQ(values(qr::qmax_pool2d(x, pool(1, 2, 1, 2))), (std::vector<int32_t>{5, 8}));
  // ceil_mode adds the window starting at 4, which holds only the last cell.
  EXPECT_EQ(values(qr::qmax_pool2d(x, pool(1, 2, 1, 2, 0, 0, true))), (std::vector<int32_t>{5, 8, 3}));
  // With padding 1: floor((5 + 2 − 2)/2) + 1 = 3 windows, ceil gives 4 but the 4th would start at
  // 6 − 1 = 5 >= 5 (past the input), so PyTorch drops it.
  const Tensor y = qr::qmax_pool2d(x, pool(1, 2, 1, 2, 0, 1, true));
  EXPECT_EQ(y.shape(), (Shape{1, 1, 1, 3}));
  EXPECT_EQ(values(y), (std::vector<int32_t>{1, 5, 8}));
}

TEST(ReferencePool, AvgDivisorAsPyTorch) {
  // H = 4, kernel (3, 1), stride (2, 1), padding (1, 0), ceil_mode: windows start at −1, 1, 3;
  // PyTorch clips the end to H + pad = 5, so the spans (count_include_pad divisors) are 3, 3, 2
  // and the input cells 2, 3, 1. Centered codes 12 everywhere (zx = 2), s_in = s_out.
  const Tensor x = codes({14, 14, 14, 14}, {1, 1, 4, 1});
  const auto avg = [&](bool ceil_mode, bool include) {
    return values(qr::qavg_pool2d(x, pool(3, 1, 2, 1, 1, 0, ceil_mode, include), 0.1f, 2, 0.1f, 0, -128, 127,
                                  DType::i8));
  };
  EXPECT_EQ(avg(true, true), (std::vector<int32_t>{8, 12, 6}));  // 24/3, 36/3, 12/2
  EXPECT_EQ(avg(true, false), (std::vector<int32_t>{12, 12, 12}));
  EXPECT_EQ(avg(false, true), (std::vector<int32_t>{8, 12}));
  EXPECT_EQ(avg(false, false), (std::vector<int32_t>{12, 12}));
}

TEST(ReferencePool, AvgRoundsOnceTiesUp) {
  // Windows of 2 cells: sums 5 and −5 -> 2.5 -> 3 and −2.5 -> −2 (ties toward +infinity).
  const Tensor x = codes({2, 3, -2, -3}, {1, 1, 1, 4});
  EXPECT_EQ(values(qr::qavg_pool2d(x, pool(1, 2, 1, 2), 1.0f, 0, 1.0f, 0, -128, 127, DType::i8)),
            (std::vector<int32_t>{3, -2}));
  // Rescaled into u8: s_in / s_out = 4, z_out = 100: (5/2)·4 + 100 = 110, (−5/2)·4 + 100 = 90.
  EXPECT_EQ(values(qr::qavg_pool2d(x, pool(1, 2, 1, 2), 1.0f, 0, 0.25f, 100, 0, 255, DType::u8)),
            (std::vector<int32_t>{110, 90}));
  // Saturation and a narrowed (ReLU) range.
  EXPECT_EQ(values(qr::qavg_pool2d(x, pool(1, 2, 1, 2), 1.0f, 0, 0.01f, 0, -128, 127, DType::i8)),
            (std::vector<int32_t>{127, -128}));
  EXPECT_EQ(values(qr::qavg_pool2d(x, pool(1, 2, 1, 2), 1.0f, 0, 1.0f, 0, 0, 127, DType::i8)),
            (std::vector<int32_t>{3, 0}));
}

TEST(ReferencePool, AdaptiveWindows) {
  // H = 5 -> 3: windows [0, 2), [1, 4), [3, 5): means 1.5 -> 2, 6, 10.5 -> 11.
  const Tensor x = codes({0, 3, 6, 9, 12}, {1, 1, 5, 1});
  EXPECT_EQ(values(qr::qadaptive_avg_pool2d(x, 3, 1, 1.0f, 0, 1.0f, 0, -128, 127, DType::i8)),
            (std::vector<int32_t>{2, 6, 11}));
  // H = 2 -> 3 (upsampling windows overlap): [0, 1), [0, 2), [1, 2): 4, 5.5 -> 6, 7.
  const Tensor x2 = codes({14, 17}, {1, 2, 1}, DType::u8);
  const Tensor y2 = qr::qadaptive_avg_pool2d(x2, 3, 1, 1.0f, 10, 1.0f, 0, 0, 255, DType::u8);
  EXPECT_EQ(y2.shape(), (Shape{1, 3, 1}));
  EXPECT_EQ(values(y2), (std::vector<int32_t>{4, 6, 7}));
  // Global average 1×1 over a 2×3 plane with zx = 1: Σ(q − 1) = 21 − 6 = 15, and 15/6 = 2.5 is
  // a real tie — but 1/6 has no exact FixedPointMultiplier: (1431655765, 2) is 1/6 − 1.6e-10, so
  // 15 · m_q = 2.4999999995 -> 2. The sum is rounded once, with the multiplier the spec gives.
  const auto sixth = quant::quantize_multiplier(1.0 / 6.0);
  ASSERT_EQ(sixth.multiplier, 1431655765);
  ASSERT_EQ(sixth.shift, 2);
  const Tensor x3 = codes({1, 2, 3, 4, 5, 6}, {1, 1, 2, 3});
  EXPECT_EQ(values(qr::qadaptive_avg_pool2d(x3, 1, 1, 1.0f, 1, 1.0f, 0, -128, 127, DType::i8)),
            (std::vector<int32_t>{2}));
  // 16/6 = 2.67 -> 3 (the last cell one code higher).
  const Tensor x4 = codes({1, 2, 3, 4, 5, 7}, {1, 1, 2, 3});
  EXPECT_EQ(values(qr::qadaptive_avg_pool2d(x4, 1, 1, 1.0f, 1, 1.0f, 0, -128, 127, DType::i8)),
            (std::vector<int32_t>{3}));
}

// PyTorch's output size and windows, written out here independently of the reference.
int64_t torch_out(int64_t in, int64_t k, int64_t s, int64_t p, bool ceil_mode) {
  const int64_t num = in + 2 * p - k;
  int64_t o = (ceil_mode ? (num + s - 1) / s : num / s) + 1;
  if (ceil_mode && (o - 1) * s >= in + p) --o;
  return o;
}

TEST(ReferencePool, SweepAgainstTorchWindows) {
  std::mt19937 rng(5);
  int64_t checked = 0;
  for (int64_t H : {1, 2, 5, 7})
    for (int64_t k : {1, 2, 3})
      for (int64_t s : {1, 2, 3})
        for (int64_t pad = 0; 2 * pad <= k; ++pad)
          for (bool ceil_mode : {false, true})
            for (bool include : {false, true}) {
              if (H + 2 * pad < k) continue;
              const int64_t W = H + 1, kw = k == 1 ? 2 : k - 1, pw = std::min<int64_t>(pad, kw / 2);
              const DType dt = (H + k) % 2 ? DType::u8 : DType::i8;
              const auto xv = random_codes(rng, 2 * 3 * H * W, code_lo(dt), code_hi(dt));
              const Tensor x = codes(xv, {2, 3, H, W}, dt);
              const auto p = pool(k, kw, s, 1, pad, pw, ceil_mode, include);
              const int64_t OH = torch_out(H, k, s, pad, ceil_mode), OW = torch_out(W, kw, 1, pw, ceil_mode);
              const int32_t zx = code_lo(dt) + 60, z_out = code_lo(dt) + 100;
              const float s_in = 0.03f, s_out = 0.02f;
              const auto ymax = values(qr::qmax_pool2d(x, p));
              const auto yavg = values(qr::qavg_pool2d(x, p, s_in, zx, s_out, z_out, code_lo(dt), code_hi(dt), dt));
              ASSERT_EQ(int64_t(ymax.size()), 6 * OH * OW);
              ASSERT_EQ(int64_t(yavg.size()), 6 * OH * OW);
              for (int64_t c = 0; c < 6; ++c)
                for (int64_t oh = 0; oh < OH; ++oh)
                  for (int64_t ow = 0; ow < OW; ++ow) {
                    int64_t h0 = oh * s - pad, h1 = std::min(h0 + k, H + pad);
                    int64_t w0 = ow * 1 - pw, w1 = std::min(w0 + kw, W + pw);
                    const int64_t pool_size = (h1 - h0) * (w1 - w0);
                    h0 = std::max<int64_t>(h0, 0), w0 = std::max<int64_t>(w0, 0);
                    h1 = std::min(h1, H), w1 = std::min(w1, W);
                    int32_t mx = -1000;
                    int64_t sum = 0;
                    for (int64_t i = h0; i < h1; ++i)
                      for (int64_t j = w0; j < w1; ++j) {
                        mx = std::max(mx, xv[size_t((c * H + i) * W + j)]);
                        sum += xv[size_t((c * H + i) * W + j)] - zx;
                      }
                    const int64_t divisor = include ? pool_size : (h1 - h0) * (w1 - w0);
                    const size_t o = size_t((c * OH + oh) * OW + ow);
                    ASSERT_EQ(ymax[o], mx) << "H " << H << " k " << k << " s " << s << " pad " << pad;
                    const auto m = quant::quantize_multiplier(double(s_in) / (double(s_out) * double(divisor)));
                    ASSERT_EQ(yavg[o], quant::requantize(int32_t(sum), m, z_out, code_lo(dt), code_hi(dt)))
                        << "H " << H << " k " << k << " s " << s << " pad " << pad << " ceil " << ceil_mode
                        << " include " << include;
                    ++checked;
                  }
              // Any strides.
              EXPECT_EQ(values(qr::qmax_pool2d(strided_copy(x), p)), ymax);
              EXPECT_EQ(values(qr::qavg_pool2d(strided_copy(x), p, s_in, zx, s_out, z_out, code_lo(dt), code_hi(dt),
                                               dt)),
                        yavg);
            }
  EXPECT_GT(checked, 2000);
}

TEST(ReferencePool, AdaptiveSweep) {
  std::mt19937 rng(8);
  for (int64_t H : {1, 3, 7, 8})
    for (int64_t OH : {1, 2, 3, 5, 8}) {
      const int64_t W = 5, OW = 3;
      const auto xv = random_codes(rng, 2 * H * W, 0, 255);
      const auto y = values(qr::qadaptive_avg_pool2d(codes(xv, {2, H, W}, DType::u8), OH, OW, 0.05f, 128, 0.04f, 3,
                                                     -128, 127, DType::i8));
      ASSERT_EQ(int64_t(y.size()), 2 * OH * OW);
      for (int64_t c = 0; c < 2; ++c)
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t ow = 0; ow < OW; ++ow) {
            // torch: start = floor(o·in/out), end = ceil((o+1)·in/out).
            const int64_t h0 = oh * H / OH, h1 = ((oh + 1) * H + OH - 1) / OH;
            const int64_t w0 = ow * W / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
            int64_t sum = 0;
            for (int64_t i = h0; i < h1; ++i)
              for (int64_t j = w0; j < w1; ++j) sum += xv[size_t((c * H + i) * W + j)] - 128;
            const auto m = quant::quantize_multiplier(double(0.05f) / (double(0.04f) * double((h1 - h0) * (w1 - w0))));
            ASSERT_EQ(y[size_t((c * OH + oh) * OW + ow)], quant::requantize(int32_t(sum), m, 3, -128, 127));
          }
    }
}

TEST(ReferencePool, Errors) {
  const Tensor x = codes({1, 2, 3, 4}, {1, 1, 2, 2});
  EXPECT_ERROR_HAS(qr::qmax_pool2d(x.to(DType::f32), pool(2, 2, 2, 2)), "qmax_pool2d: expected input x to hold I8");
  EXPECT_ERROR_HAS(qr::qmax_pool2d(x.view({4}), pool(2, 2, 2, 2)),
                   "qmax_pool2d: expected input x of shape [N, C, H, W] or [C, H, W], got I8 [4]");
  EXPECT_ERROR_HAS(qr::qmax_pool2d(x, pool(2, 2, 2, 2, 2, 0)), "qmax_pool2d: expected padding at most half");
  EXPECT_ERROR_HAS(qr::qmax_pool2d(x, pool(3, 3, 1, 1)), "qmax_pool2d: the input plane [2, 2] is too small");
  EXPECT_ERROR_HAS(qr::qmax_pool2d(x, pool(2, 2, 0, 2)), "qmax_pool2d: expected kernel >= 1, stride >= 1");
  EXPECT_ERROR_HAS(qr::qavg_pool2d(x, pool(2, 2, 2, 2), 0.0f, 0, 1.0f, 0, -128, 127, DType::i8),
                   "qavg_pool2d: expected a positive finite input scale");
  EXPECT_ERROR_HAS(qr::qavg_pool2d(x, pool(2, 2, 2, 2), 1.0f, 0, 1.0f, 0, -128, 127, DType::i16),
                   "qavg_pool2d: expected an I8 or U8 output dtype");
  EXPECT_ERROR_HAS(qr::qavg_pool2d(x, pool(2, 2, 2, 2), 1.0f, 128, 1.0f, 0, -128, 127, DType::i8),
                   "qavg_pool2d: expected the input zero point inside the I8 code range");
  EXPECT_ERROR_HAS(qr::qadaptive_avg_pool2d(x, 0, 1, 1.0f, 0, 1.0f, 0, -128, 127, DType::i8),
                   "qadaptive_avg_pool2d: expected an output size >= 1");
  EXPECT_ERROR_HAS(qr::qadaptive_avg_pool2d(x, 1, 1, 1.0f, 0, INFINITY, 0, -128, 127, DType::i8),
                   "qadaptive_avg_pool2d: expected a positive finite output scale");
}

}  // namespace
}  // namespace finch::test
