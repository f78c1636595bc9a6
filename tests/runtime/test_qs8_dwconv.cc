// QDepthwiseConv2d (kernels/qs8_dwconv.h) against reference::qconv2d, exactly, on every
// compiled Highway target and with 1 and 2 threads: randomized sweeps over plane sizes (1–10,
// powers of two ±1, widths that are not a multiple of any vector), strides 1–3, padding 0–2,
// dilation, kernels 1/3/5 (and non-square), i8/u8 in and out, extreme zero points, clamps,
// multipliers with large and small shifts (including the scalar n <= 0 and the n >= 64 cases),
// absent bias, extreme codes and strided inputs.
#include <gtest/gtest.h>

#include <cstdio>
#include <limits>
#include <random>
#include <sstream>

#include "tests/hwy_targets.h"
#include "framework/parallel.h"
#include "hwy/targets.h"
#include "kernels/qs8_dwconv.h"
#include "kernels/reference.h"
#include "kernels/requant.h"
#include "tests/runtime/reference_test_util.h"

namespace finch::test {
namespace {

namespace qr = quant::reference;
using quant::FixedPointMultiplier;
using quant::kernels::QDepthwiseConv2d;

struct DwCase {
  int64_t N, C, H, W, KH, KW;
  ops::Conv2dParams p;
  DType xt, yt;
  int32_t zx, z_out, qmin, qmax;
  bool has_bias, strided, extreme_codes;
  std::vector<double> m;

  std::string str() const {
    std::ostringstream s;
    s << "N" << N << " C" << C << " " << H << "x" << W << " k" << KH << "x" << KW << " s" << p.sh << "," << p.sw
      << " p" << p.ph << "," << p.pw << " d" << p.dh << "," << p.dw << " x" << dtype_name(xt) << " zx" << zx << " y"
      << dtype_name(yt) << " z" << z_out << " [" << qmin << "," << qmax << "] bias" << has_bias << " strided"
      << strided << " m0 " << m[0];
    return s.str();
  }
};

const std::vector<int64_t> kSizes = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 63, 65, 112, 129};

// Multipliers from the ordinary (1e-4 .. 1) to the edges: 0, a shift of 64 and more, one
// exactly 2^-1, and >= 2^30 (total shift <= 0, the saturating left shift).
double random_multiplier(std::mt19937& rng) {
  std::uniform_real_distribution<double> e(-14, 1);
  switch (rng() % 12) {
    case 0: return 0.0;
    case 1: return 1e-25;
    case 2: return 0.5;
    case 3: return std::ldexp(1.0, 30) * 1.5;
    case 4: return 3e-9;
    default: return std::exp2(e(rng));
  }
}

DwCase random_case(std::mt19937& rng) {
  auto pick = [&](auto v) { return v[rng() % v.size()]; };
  DwCase c;
  c.N = 1 + rng() % 2;
  // A quarter of the cases have enough channels for the channels-last path on small planes.
  c.C = rng() % 4 == 0 ? 16 + int64_t(rng() % 24) : 1 + int64_t(rng() % 5);
  c.H = pick(kSizes);
  c.W = pick(kSizes);
  c.KH = pick(std::vector<int64_t>{1, 3, 3, 3, 5});
  c.KW = rng() % 5 == 0 ? pick(std::vector<int64_t>{1, 2, 3, 5}) : c.KH;
  c.p.sh = pick(std::vector<int64_t>{1, 1, 2, 2, 3});
  c.p.sw = rng() % 4 == 0 ? pick(std::vector<int64_t>{1, 2, 3}) : c.p.sh;
  c.p.ph = rng() % 3;
  c.p.pw = rng() % 4 == 0 ? int64_t(rng() % 3) : c.p.ph;
  c.p.dh = rng() % 5 == 0 ? 2 : 1;
  c.p.dw = rng() % 5 == 0 ? pick(std::vector<int64_t>{1, 2, 3}) : c.p.dh;
  c.p.groups = c.C;
  c.xt = rng() % 2 ? DType::u8 : DType::i8;
  c.yt = rng() % 2 ? DType::u8 : DType::i8;
  const int32_t xlo = code_lo(c.xt), xhi = code_hi(c.xt), ylo = code_lo(c.yt), yhi = code_hi(c.yt);
  c.zx = rng() % 3 == 0 ? (rng() % 2 ? xlo : xhi) : xlo + int32_t(rng() % 256);
  c.z_out = rng() % 3 == 0 ? (rng() % 2 ? ylo : yhi) : ylo + int32_t(rng() % 256);
  c.qmin = ylo;
  c.qmax = yhi;
  if (rng() % 3 == 0) {  // a fused-activation clamp somewhere inside the range
    c.qmin = ylo + int32_t(rng() % 200);
    c.qmax = c.qmin + int32_t(rng() % (yhi - c.qmin + 1));
  }
  c.has_bias = rng() % 4 != 0;
  c.strided = rng() % 6 == 0;
  c.extreme_codes = rng() % 4 == 0;
  for (int64_t ch = 0; ch < c.C; ++ch) c.m.push_back(random_multiplier(rng));
  return c;
}

// Runs one case: fast vs reference, exactly. Returns false when the geometry gives no output.
bool check(const DwCase& c, std::mt19937& rng) {
  const int64_t OH = ops::conv_out_size(c.H, c.KH, c.p.sh, c.p.ph, c.p.dh);
  const int64_t OW = ops::conv_out_size(c.W, c.KW, c.p.sw, c.p.pw, c.p.dw);
  if (OH < 1 || OW < 1) return false;
  const int32_t xlo = code_lo(c.xt), xhi = code_hi(c.xt);
  std::vector<int32_t> xv = random_codes(rng, c.N * c.C * c.H * c.W, xlo, xhi);
  std::vector<int32_t> wv = random_codes(rng, c.C * c.KH * c.KW, -128, 127);
  if (c.extreme_codes) {  // the largest products: codes at the far end from zx, weights at ±128
    for (auto& v : xv) v = (c.zx - xlo > xhi - c.zx) ? xlo : xhi;
    for (auto& v : wv) v = rng() % 2 ? -128 : 127;
  }
  Tensor x = codes(xv, {c.N, c.C, c.H, c.W}, c.xt);
  if (c.strided) x = strided_copy(x);
  const Tensor w = codes(wv, {c.C, 1, c.KH, c.KW});
  Tensor bias;
  if (c.has_bias) bias = from_vector(random_codes(rng, c.C, -100000, 100000), {c.C});
  const auto m = quant::quantize_multipliers(c.m);
  const Tensor ref = qr::qconv2d(x, c.zx, w, bias, qr::rq_tensor(m), c.p, c.z_out, c.qmin, c.qmax, c.yt);
  const QDepthwiseConv2d op(w, bias, m, c.p, c.xt, c.zx, c.z_out, c.qmin, c.qmax, c.yt);
  const Tensor y = op.run(x);
  EXPECT_EQ(y.shape(), ref.shape()) << c.str();
  EXPECT_EQ(y.dtype(), ref.dtype()) << c.str();
  EXPECT_EQ(values(y), values(ref)) << c.str();
  return true;
}

TEST(Qs8DwConv, RandomSweepEveryTargetAndThreadCount) {
  const auto targets = ::finch::test::hwy_targets_to_test();
  ASSERT_FALSE(targets.empty());
  const int before = get_num_threads();
  int checked = 0;
  for (uint32_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    std::printf("qs8 depthwise on Highway target %s\n", hwy::TargetName(target));
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      std::mt19937 rng(1234);
      for (int i = 0; i < 300; ++i) {
        checked += check(random_case(rng), rng);
        if (HasFailure()) break;
      }
    }
    if (HasFailure()) break;
  }
  set_num_threads(before);
  hwy::SetSupportedTargetsForTest(0);
  EXPECT_GT(checked, 80 * int64_t(::finch::test::hwy_targets_to_test().size()));  // every target ran its cases
}

TEST(Qs8DwConv, MobileNetShapesEveryTarget) {
  // The 3×3 stride 1 and 2 layers of MobileNetV2 (padding 1), relu6-style clamps, u8 and i8.
  for (uint32_t target : ::finch::test::hwy_targets_to_test()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    std::mt19937 rng(7);
    for (int64_t s : {1, 2})
      for (int64_t hw : {7, 14, 28, 56, 112}) {
        DwCase c{1, 16, hw, hw, 3, 3, {s, s, 1, 1, 1, 1, 16}, DType::i8, DType::u8, -3, 0, 0, 200, true, false, false,
                 {}};
        if (hw == 28) c.xt = DType::u8, c.zx = 128, c.yt = DType::i8, c.z_out = -128, c.qmin = -128, c.qmax = 127;
        for (int64_t ch = 0; ch < c.C; ++ch) c.m.push_back(std::exp2(-8 - double(rng() % 6)) * 1.37);
        check(c, rng);
      }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(Qs8DwConv, FlatPathGeometriesEveryTarget) {
  // The layouts behind the fast paths, deterministically: stride 1 (even/odd column pairs),
  // column stride 2 with any row stride and row dilation (column pairs, rows split by r % sh),
  // and what falls back to the general path (column dilation, stride 3); on AVX3_DL the VNNI
  // quad path (column stride 1, 2 and 4: 4, 2 and 1 accumulators per step; kernel rows of 1–4,
  // 5–8 and 9 taps: 1, 2 and 3 weight quads); odd and even kernel widths (an odd one pairs its
  // last tap with weight 0), 1-wide planes, rows wider than a vector of codes (several 64-byte
  // fill chunks), rows that end inside the last vector of the input.
  struct Shape {
    int64_t H, W;
  };
  const std::vector<Shape> shapes = {{1, 1}, {3, 17}, {14, 14}, {7, 40}, {4, 112}, {2, 70}};
  const std::vector<std::pair<int64_t, int64_t>> kernels = {{1, 1}, {2, 2}, {3, 3}, {5, 5}, {3, 2}, {1, 3}, {2, 5}, {2, 9}};
  for (uint32_t target : ::finch::test::hwy_targets_to_test()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    std::mt19937 rng(11);
    int checked = 0;
    for (const Shape& sh : shapes)
      for (const auto& [KH, KW] : kernels)
        for (int64_t s = 1; s <= 3; ++s)
          for (int64_t sw : {int64_t(1), int64_t(2), int64_t(4), s})
            for (int64_t dh = 1; dh <= 2; ++dh)
              for (int64_t dw : {int64_t(1), dh})
                for (int64_t pad = 0; pad <= 2; pad += 2) {
                  DwCase c{1 + int64_t(rng() % 2), 2, sh.H, sh.W, KH, KW, {s, sw, pad, pad, dh, dw, 2},
                           rng() % 2 ? DType::u8 : DType::i8, rng() % 2 ? DType::u8 : DType::i8, 0, 0, 0, 0,
                           rng() % 2 == 0, false, rng() % 5 == 0, {}};
                  c.zx = c.xt == DType::u8 ? int32_t(rng() % 256) : int32_t(rng() % 256) - 128;
                  c.z_out = c.yt == DType::u8 ? int32_t(rng() % 256) : int32_t(rng() % 256) - 128;
                  c.qmin = code_lo(c.yt);
                  c.qmax = code_hi(c.yt);
                  for (int64_t ch = 0; ch < c.C; ++ch) c.m.push_back(random_multiplier(rng));
                  checked += check(c, rng);
                  if (HasFailure()) return hwy::SetSupportedTargetsForTest(0);
                }
    EXPECT_GT(checked, 500);
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(Qs8DwConv, SmallPlanesChannelsLastEveryTarget) {
  // The channels-last path (input and output planes of <= 64 pixels, >= 16 channels): MobileNetV2's late layers,
  // odd channel counts (a partial last vector and block), 1×1 planes, 5×5 and 2×3 kernels,
  // strides, dilation, extreme codes and zero points, clamps and every kind of multiplier (in
  // one layer: vector lanes next to scalar ones); 1 and 2 threads.
  struct Shape {
    int64_t C, H, W, K, s, pad, d;
  };
  // 576 ch 14×14 (stride 1 and 2) sit just past the threshold and take the per-plane path.
  const std::vector<Shape> shapes = {{960, 7, 7, 3, 1, 1, 1}, {576, 14, 14, 3, 1, 1, 1}, {576, 14, 14, 3, 2, 1, 1},
                                     {160, 7, 7, 3, 1, 1, 1}, {17, 7, 7, 3, 1, 1, 1},    {33, 8, 8, 3, 2, 1, 1},
                                     {129, 5, 9, 3, 1, 0, 1}, {16, 1, 1, 3, 1, 1, 1},    {33, 1, 1, 1, 1, 0, 1},
                                     {65, 8, 8, 5, 2, 2, 1},  {40, 6, 10, 3, 3, 2, 2},   {18, 8, 7, 2, 1, 0, 1},
                                     {31, 7, 7, 3, 2, 1, 1},  {20, 7, 9, 3, 1, 1, 3},    {24, 8, 8, 3, 1, 1, 1}};
  const int before = get_num_threads();
  for (uint32_t target : ::finch::test::hwy_targets_to_test()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    std::mt19937 rng(21);
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      int checked = 0;
      for (const Shape& sh : shapes)
        for (int variant = 0; variant < 4; ++variant) {
          DwCase c{1 + int64_t(variant == 3), sh.C, sh.H, sh.W, sh.K, sh.K == 2 ? 3 : sh.K,
                   {sh.s, sh.s, sh.pad, sh.pad, sh.d, sh.d, sh.C}, variant % 2 ? DType::u8 : DType::i8,
                   variant / 2 ? DType::u8 : DType::i8, 0, 0, 0, 0, variant != 1, variant == 2, variant == 1, {}};
          const int32_t xlo = code_lo(c.xt), xhi = code_hi(c.xt), ylo = code_lo(c.yt), yhi = code_hi(c.yt);
          c.zx = variant == 1 ? xhi : variant == 2 ? xlo : xlo + int32_t(rng() % 256);
          c.z_out = variant == 0 ? ylo + int32_t(rng() % 256) : variant == 1 ? yhi : ylo;
          c.qmin = variant == 3 ? ylo + 10 : ylo;
          c.qmax = variant == 3 ? yhi - 50 : yhi;
          for (int64_t ch = 0; ch < c.C; ++ch)  // mostly ordinary layers, every edge kind somewhere
            c.m.push_back(variant == 0 ? std::exp2(-8 - double(rng() % 6)) * 1.37 : random_multiplier(rng));
          checked += check(c, rng);
          if (HasFailure()) {
            set_num_threads(before);
            return hwy::SetSupportedTargetsForTest(0);
          }
        }
      EXPECT_EQ(checked, int(shapes.size()) * 4);
    }
  }
  set_num_threads(before);
  hwy::SetSupportedTargetsForTest(0);
}

TEST(Qs8DwConv, OverflowingBiasDefersToTheReference) {
  // |bias| + 255·Σ|w| beyond int32 (a program the loader refuses): the reference decides, and
  // follows the accumulator rule (docs/quantization.md §10), the exact sum modulo 2^32.
  const Tensor x = codes(std::vector<int32_t>(9, 127), {1, 1, 3, 3});
  const Tensor w = codes(std::vector<int32_t>(9, 127), {1, 1, 3, 3});
  const Tensor bias = from_vector(std::vector<int32_t>{std::numeric_limits<int32_t>::max() - 10}, {1});
  const auto m = quant::quantize_multipliers({1e-9});
  ops::Conv2dParams p;
  p.groups = 1;
  const QDepthwiseConv2d op(w, bias, m, p, DType::i8, -128, 0, -128, 127, DType::i8);
  // The true sum INT32_MAX − 10 + 9·255·127 wraps to about −2^31: about −2 after the 1e-9 multiplier.
  const auto got = values(op.run(x));
  EXPECT_EQ(got, values(qr::qconv2d(x, -128, w, bias, qr::rq_tensor(m), p, 0, -128, 127, DType::i8)));
  const int64_t exact = int64_t(std::numeric_limits<int32_t>::max()) - 10 + 9 * 255 * 127;
  EXPECT_EQ(got[0], quant::requantize(int32_t(uint32_t(uint64_t(exact))), m[0], 0, -128, 127));
  EXPECT_LT(got[0], 0);
  const Tensor small = codes(std::vector<int32_t>(9, -128), {1, 1, 3, 3});  // x = zx: the sum is the bias
  EXPECT_EQ(values(op.run(small)), values(qr::qconv2d(small, -128, w, bias, qr::rq_tensor(m), p, 0, -128, 127,
                                                      DType::i8)));
}

TEST(Qs8DwConv, RejectsWhatItDoesNotCompute) {
  const Tensor w2 = codes(std::vector<int32_t>(18, 1), {2, 1, 3, 3});
  const auto m = quant::quantize_multipliers({0.01, 0.01});
  ops::Conv2dParams p;
  p.groups = 1;  // a channel multiplier of 2 (one input channel, two outputs)
  EXPECT_THROW(QDepthwiseConv2d(w2, Tensor(), m, p, DType::i8, 0, 0, -128, 127, DType::i8), Error);
  p.groups = 2;
  const QDepthwiseConv2d op(w2, Tensor(), m, p, DType::i8, 0, 0, -128, 127, DType::i8);
  EXPECT_THROW(op.run(codes(std::vector<int32_t>(18, 1), {1, 2, 3, 3}, DType::u8)), Error);  // wrong dtype
  EXPECT_THROW(op.run(codes(std::vector<int32_t>(27, 1), {1, 3, 3, 3})), Error);            // wrong C
  EXPECT_THROW(op.run(codes(std::vector<int32_t>(8, 1), {1, 2, 2, 2})), Error);             // too small
  EXPECT_THROW(QDepthwiseConv2d(w2, Tensor(), quant::quantize_multipliers({0.01}), p, DType::i8, 0, 0, -128, 127,
                                DType::i8),
               Error);  // one multiplier for two channels
}

}  // namespace
}  // namespace finch::test
