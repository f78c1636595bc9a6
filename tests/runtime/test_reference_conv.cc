// reference::qconv2d against hand-computed values and against an independent accumulator: the
// f64 convolution of ops::conv2d over centered codes (exact: every partial sum is an integer far
// below 2^53) with zero padding, then the spec's requantize() per output channel.
#include <gtest/gtest.h>

#include <random>

#include "ops/conv.h"
#include "kernels/qparams.h"
#include "kernels/reference.h"
#include "kernels/requant.h"
#include "tests/error_text.h"
#include "tests/runtime/reference_test_util.h"

namespace finch::test {
namespace {

namespace qr = quant::reference;
using quant::FixedPointMultiplier;

// The 3×3 input 1..9 with zx = 1 (centered 0..8) and the 2×2 kernel [[1, −1], [2, 0]].
struct Small {
  Tensor x = codes({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor w = codes({1, -1, 2, 0}, {1, 1, 2, 2});
  Tensor bias = from_vector(std::vector<int32_t>{10}, {1});
  Tensor rq = rq_of({0.5});  // exact: 2^30 · 2^-31
};

TEST(ReferenceConv, HandComputedStride1) {
  Small s;
  // acc = [5, 7, 11, 13] + 10 = [15, 17, 21, 23]; · 0.5 = [7.5, 8.5, 10.5, 11.5], ties toward
  // +infinity -> [8, 9, 11, 12]; + z_out (−3).
  const Tensor y = qr::qconv2d(s.x, 1, s.w, s.bias, s.rq, {}, -3, -128, 127, DType::i8);
  EXPECT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_EQ(y.dtype(), DType::i8);
  EXPECT_EQ(values(y), (std::vector<int32_t>{5, 6, 8, 9}));
}

TEST(ReferenceConv, HandComputedStride2Padding1) {
  Small s;
  ops::Conv2dParams p;
  p.sh = p.sw = 2;
  p.ph = p.pw = 1;
  // Windows start at −1 and 1; padded cells add nothing (x = zx there):
  //   (0,0): 0·0 = 0;  (0,1): 1·2 + 2·0 = 2;  (1,0): 3·(−1) + 6·0 = −3;
  //   (1,1): 4·1 + 5·(−1) + 7·2 + 8·0 = 13.  + 10, · 0.5 -> 5, 6, 3.5 -> 4, 11.5 -> 12.
  const Tensor y = qr::qconv2d(s.x, 1, s.w, s.bias, s.rq, p, -3, -128, 127, DType::i8);
  EXPECT_EQ(values(y), (std::vector<int32_t>{2, 3, 1, 9}));
}

TEST(ReferenceConv, HandComputedSaturationAndFusedRelu) {
  Small s;
  const Tensor big = from_vector(std::vector<int32_t>{100000}, {1});
  const Tensor neg = from_vector(std::vector<int32_t>{-100000}, {1});
  EXPECT_EQ(values(qr::qconv2d(s.x, 1, s.w, big, s.rq, {}, 0, -128, 127, DType::i8)),
            (std::vector<int32_t>(4, 127)));
  EXPECT_EQ(values(qr::qconv2d(s.x, 1, s.w, neg, s.rq, {}, 0, -128, 127, DType::i8)),
            (std::vector<int32_t>(4, -128)));
  EXPECT_EQ(values(qr::qconv2d(s.x, 1, s.w, neg, s.rq, {}, 3, 0, 255, DType::u8)), (std::vector<int32_t>(4, 0)));
  // Fused ReLU: qmin = z_out; a ReLU6-style upper bound of 7.
  const Tensor y = qr::qconv2d(s.x, 1, s.w, from_vector(std::vector<int32_t>{-24}, {1}), s.rq, {}, -3, -3, 7,
                               DType::i8);
  // acc = [5, 7, 11, 13] − 24 = [−19, −17, −13, −11] · 0.5 -> [−9, −8, −6, −5] − 3, clamped to [−3, 7].
  EXPECT_EQ(values(y), (std::vector<int32_t>{-3, -3, -3, -3}));
  const Tensor y2 = qr::qconv2d(s.x, 1, s.w, from_vector(std::vector<int32_t>{10}, {1}), s.rq, {}, -3, -3, 7,
                                DType::i8);
  EXPECT_EQ(values(y2), (std::vector<int32_t>{5, 6, 7, 7}));
}

TEST(ReferenceConv, DepthwiseHandComputed) {
  // Two channels, groups = 2, 1×1 kernels: y[c] = requantize((x[c] − zx) · w[c]), per-channel m.
  const Tensor x = codes({10, 20, 30, 40}, {1, 2, 1, 2}, DType::u8);
  const Tensor w = codes({3, -2}, {2, 1, 1, 1});
  ops::Conv2dParams p;
  p.groups = 2;
  // c0: (0, 10)·3 = (0, 30) · 0.25 -> (0, 7.5 -> 8); c1: (20, 30)·(−2) = (−40, −60) · 0.125 -> (−5, −7.5 -> −7).
  const Tensor y = qr::qconv2d(x, 10, w, Tensor(), rq_of({0.25, 0.125}), p, 100, 0, 255, DType::u8);
  EXPECT_EQ(y.dtype(), DType::u8);
  EXPECT_EQ(values(y), (std::vector<int32_t>{100, 108, 95, 93}));
}

struct ConvCase {
  int64_t N, C, H, W, OC, KH, KW, sh, sw, ph, pw, dh, dw, groups;
  DType in, out;
  bool relu;
};

// The exact accumulators of the grouped, strided, padded, dilated convolution, from ops::conv2d in
// f64 over centered codes.
std::vector<int64_t> conv_acc(const std::vector<int32_t>& x, const Shape& xs, int32_t zx, const std::vector<int32_t>& w,
                              const Shape& ws, const std::vector<int32_t>& b, const ops::Conv2dParams& p) {
  std::vector<double> xc(x.size()), wd(w.begin(), w.end()), bd(b.begin(), b.end());
  for (size_t i = 0; i < x.size(); ++i) xc[i] = double(x[i] - zx);
  const Tensor y = ops::conv2d(from_vector(xc, xs), from_vector(wd, ws), from_vector(bd, {ws[0]}), p);
  const auto v = y.to_vector<double>();
  std::vector<int64_t> acc(v.size());
  for (size_t i = 0; i < v.size(); ++i) acc[i] = int64_t(v[i]);
  return acc;
}

TEST(ReferenceConv, MatchesIndependentAccumulatorSweep) {
  const std::vector<ConvCase> cases = {
      {1, 1, 5, 5, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, DType::i8, DType::i8, false},   // 1×1
      {2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, DType::u8, DType::u8, false},   // batch, padding 1
      {1, 4, 9, 8, 6, 3, 3, 2, 2, 1, 1, 1, 1, 2, DType::i8, DType::u8, true},    // stride 2, groups 2
      {2, 5, 8, 9, 5, 3, 3, 1, 1, 1, 1, 1, 1, 5, DType::u8, DType::i8, false},   // depthwise
      {1, 3, 6, 6, 6, 3, 3, 2, 2, 1, 1, 1, 1, 3, DType::i8, DType::i8, true},    // depthwise ×2
      {1, 2, 11, 10, 3, 5, 5, 1, 2, 2, 2, 1, 1, 1, DType::u8, DType::u8, false}, // 5×5, padding 2
      {3, 2, 5, 12, 4, 3, 5, 2, 1, 0, 2, 1, 1, 2, DType::i8, DType::i8, false},  // non-square
      {1, 3, 9, 9, 2, 3, 3, 1, 1, 2, 2, 2, 2, 1, DType::u8, DType::i8, true},    // dilation 2
      {1, 16, 4, 4, 8, 3, 3, 1, 1, 0, 0, 1, 1, 1, DType::i8, DType::i8, false},  // longer K
      {1, 1, 2, 3, 2, 5, 5, 2, 2, 2, 2, 1, 1, 1, DType::i8, DType::u8, false},   // mostly padding
  };
  std::mt19937 rng(1234);
  int64_t at_qmin = 0, at_qmax = 0, inside = 0;
  for (const ConvCase& c : cases) {
    SCOPED_TRACE(testing::Message() << "case N=" << c.N << " C=" << c.C << " H=" << c.H << " W=" << c.W << " OC=" << c.OC
                                    << " k=" << c.KH << "x" << c.KW << " groups=" << c.groups);
    ops::Conv2dParams p;
    p.sh = c.sh, p.sw = c.sw, p.ph = c.ph, p.pw = c.pw, p.dh = c.dh, p.dw = c.dw, p.groups = c.groups;
    const Shape xs{c.N, c.C, c.H, c.W}, ws{c.OC, c.C / c.groups, c.KH, c.KW};
    const auto xv = random_codes(rng, shape_numel(xs), code_lo(c.in), code_hi(c.in));
    const auto wv = random_codes(rng, shape_numel(ws), -127, 127);
    const auto bv = random_codes(rng, c.OC, -3000, 3000);
    const int32_t zx = random_codes(rng, 1, code_lo(c.in), code_hi(c.in))[0];
    const int32_t z_out = c.out == DType::u8 ? 120 : -7;
    std::vector<double> m;
    std::uniform_real_distribution<double> md(2e-4, 4e-3);
    for (int64_t oc = 0; oc < c.OC; ++oc) m.push_back(md(rng));
    const auto M = quant::quantize_multipliers(m);
    const int32_t qmin = c.relu ? z_out : code_lo(c.out), qmax = code_hi(c.out);

    const Tensor x = codes(xv, xs, c.in), w = codes(wv, ws), bias = from_vector(bv, {c.OC});
    const Tensor y = qr::qconv2d(x, zx, w, bias, qr::rq_tensor(M), p, z_out, qmin, qmax, c.out);
    const auto acc = conv_acc(xv, xs, zx, wv, ws, bv, p);
    const Shape ys{c.N, c.OC, ops::conv_out_size(c.H, c.KH, c.sh, c.ph, c.dh),
                   ops::conv_out_size(c.W, c.KW, c.sw, c.pw, c.dw)};
    ASSERT_EQ(y.shape(), ys);
    ASSERT_EQ(y.dtype(), c.out);
    const auto yv = values(y);
    const int64_t plane = ys[2] * ys[3];
    for (size_t i = 0; i < yv.size(); ++i) {
      const int64_t oc = (int64_t(i) / plane) % c.OC;
      const int32_t want = quant::requantize(int32_t(acc[i]), M[size_t(oc)], z_out, qmin, qmax);
      ASSERT_EQ(yv[i], want) << "at flat index " << i << ", accumulator " << acc[i];
      at_qmin += want == qmin;
      at_qmax += want == qmax;
      inside += want > qmin && want < qmax;
    }
    // Any strides: the same codes through a view with stride 2 along W.
    EXPECT_EQ(values(qr::qconv2d(strided_copy(x), zx, w, bias, qr::rq_tensor(M), p, z_out, qmin, qmax, c.out)), yv);
  }
  // The sweep exercises both clamps and the interior.
  EXPECT_GT(at_qmin, 0);
  EXPECT_GT(at_qmax, 0);
  EXPECT_GT(inside, 100);
}

TEST(ReferenceConv, NoBiasEqualsZeroBias) {
  Small s;
  EXPECT_EQ(values(qr::qconv2d(s.x, 1, s.w, Tensor(), s.rq, {}, 0, -128, 127, DType::i8)),
            values(qr::qconv2d(s.x, 1, s.w, from_vector(std::vector<int32_t>{0}, {1}), s.rq, {}, 0, -128, 127,
                               DType::i8)));
  // acc [5, 7, 11, 13] · 0.5 -> [3, 4, 6, 7] (2.5 -> 3, 3.5 -> 4, 5.5 -> 6, 6.5 -> 7).
  EXPECT_EQ(values(qr::qconv2d(s.x, 1, s.w, Tensor(), s.rq, {}, 0, -128, 127, DType::i8)),
            (std::vector<int32_t>{3, 4, 6, 7}));
}

TEST(ReferenceConv, Errors) {
  Small s;
  const auto conv = [&](const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& rq, ops::Conv2dParams p = {},
                        DType out = DType::i8, int32_t qmin = -128, int32_t qmax = 127) {
    return qr::qconv2d(x, 1, w, b, rq, p, 0, qmin, qmax, out);
  };
  EXPECT_ERROR_HAS(conv(s.x.to(DType::f32), s.w, s.bias, s.rq), "qconv2d: expected input x to hold I8 or U8 codes");
  EXPECT_ERROR_HAS(conv(s.x.view({1, 3, 3}), s.w, s.bias, s.rq), "qconv2d: expected input x of shape [N, C, H, W]");
  EXPECT_ERROR_HAS(conv(s.x, s.w.to(DType::u8), s.bias, s.rq), "qconv2d: expected the weight as I8 [OC, 1, KH, KW]");
  EXPECT_ERROR_HAS(conv(s.x, codes({1, 2}, {2, 1, 1, 1}), s.bias, s.rq), "qconv2d: expected the bias as I32 [2]");
  EXPECT_ERROR_HAS(conv(s.x, s.w, s.bias.to(DType::i64), s.rq), "qconv2d: expected the bias as I32 [1]");
  EXPECT_ERROR_HAS(conv(s.x, s.w, s.bias, rq_of({0.5, 0.5})), "qconv2d: expected the requantization table rq as I32 [1, 2]");
  EXPECT_ERROR_HAS(conv(s.x, s.w, s.bias, from_vector(std::vector<int32_t>{-5, 0}, {1, 2})),
                   "qconv2d: expected non-negative multipliers in rq");
  EXPECT_ERROR_HAS(conv(s.x, s.w, s.bias, s.rq, {}, DType::f32), "qconv2d: expected an I8 or U8 output dtype");
  EXPECT_ERROR_HAS(conv(s.x, s.w, s.bias, s.rq, {}, DType::u8), "qconv2d: expected an output code range");
  EXPECT_ERROR_HAS(conv(s.x, s.w, s.bias, s.rq, {}, DType::i8, 5, 4), "qconv2d: expected an output code range");
  EXPECT_ERROR_HAS(qr::qconv2d(s.x, 200, s.w, s.bias, s.rq, {}, 0, -128, 127, DType::i8),
                   "qconv2d: expected the input zero point inside the I8 code range");
  ops::Conv2dParams g;
  g.groups = 2;
  EXPECT_ERROR_HAS(conv(s.x, s.w, s.bias, s.rq, g), "qconv2d: expected the 1 input channels to divide into 2 groups");
  ops::Conv2dParams bad;
  bad.sh = 0;
  EXPECT_ERROR_HAS(conv(s.x, s.w, s.bias, s.rq, bad), "qconv2d: expected stride >= 1");
  EXPECT_ERROR_HAS(conv(s.x, codes(std::vector<int32_t>(16, 1), {1, 1, 4, 4}), s.bias, s.rq),
                   "qconv2d: the input I8 [1, 1, 3, 3] is smaller than the dilated kernel");
}

}  // namespace
}  // namespace finch::test
