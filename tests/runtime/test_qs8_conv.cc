// kernels::QConv2d against reference::qconv2d, bit for bit, on every Highway target: random
// shapes around the micro-tile edges (OC vs MR = 8, K vs 4 and the tile, pixels vs the vector),
// strides, padding, dilation, groups, i8/u8 in and out, extreme zero points and codes, clamp
// limits, multipliers with every kind of shift, with and without bias, 1 and 2 threads.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <sstream>

#include "framework/error.h"
#include "framework/parallel.h"
#include "framework/parallel_internal.h"
#include "kernels/qs8_igemm.h"
#include "kernels/qs8_conv.h"
#include "kernels/reference.h"
#include "tests/runtime/qs8_test_util.h"

namespace finch::test {
namespace {

namespace qr = quant::reference;
using quant::kernels::QConv2d;

struct ConvCase {
  int64_t N, C, OC, H, W, KH, KW;
  ops::Conv2dParams p;
  std::string str() const {
    std::ostringstream s;
    s << "N" << N << " C" << C << " OC" << OC << " " << H << "x" << W << " k" << KH << "x" << KW << " s" << p.sh
      << "," << p.sw << " p" << p.ph << "," << p.pw << " d" << p.dh << "," << p.dw << " g" << p.groups;
    return s.str();
  }
};

int64_t pick(std::mt19937& rng, std::initializer_list<int64_t> v) { return *(v.begin() + rng() % v.size()); }

// Checks one case with random parameters; returns false after a mismatch.
bool check(const ConvCase& c, std::mt19937& rng, bool strided = false) {
  const DType xt = rng() % 2 ? DType::u8 : DType::i8;
  const int mode = int(rng() % 6);  // 1, 2: extreme codes
  Tensor x = random_code_tensor(rng, {c.N, c.C, c.H, c.W}, xt, mode < 3 ? mode : 0);
  const Tensor w = random_code_tensor(rng, {c.OC, c.C / c.p.groups, c.KH, c.KW}, DType::i8, mode < 3 ? 3 - mode : 0);
  int32_t zx = std::uniform_int_distribution<int32_t>(code_lo(xt), code_hi(xt))(rng);
  if (rng() % 3 == 0) zx = rng() % 2 ? code_lo(xt) : code_hi(xt);
  Tensor bias;
  if (rng() % 4 != 0) bias = from_vector(random_codes(rng, c.OC, -(1 << 20), 1 << 20), {c.OC});
  const QOut o = random_qout(rng, c.OC);
  if (strided) x = strided_copy(x);
  const Tensor want = qr::qconv2d(x, zx, w, bias, qr::rq_tensor(o.m), c.p, o.z, o.qmin, o.qmax, o.dtype);
  const QConv2d conv(w, bias, o.m, c.p, xt, zx, o.z, o.qmin, o.qmax, o.dtype);
  const Tensor got = conv.run(x);
  EXPECT_EQ(got.shape(), want.shape()) << c.str();
  EXPECT_EQ(got.dtype(), want.dtype()) << c.str();
  const auto g = values(got), r = values(want);
  for (size_t i = 0; i < r.size(); ++i)
    if (g[i] != r[i]) {
      ADD_FAILURE() << c.str() << " x " << (xt == DType::u8 ? "u8" : "i8") << " zx " << zx << " z_out " << o.z << " ["
                    << o.qmin << ", " << o.qmax << "] mode " << mode << ": element " << i << " got " << g[i]
                    << ", reference " << r[i];
      return false;
    }
  return true;
}

ConvCase random_case(std::mt19937& rng) {
  ConvCase c{};
  c.p.groups = pick(rng, {1, 1, 1, 2, 3});
  const int64_t Cg = pick(rng, {1, 2, 3, 4, 5, 7, 8, 9, 10, 15, 16, 17});
  const int64_t OCg = pick(rng, {1, 2, 3, 4, 5, 7, 8, 9, 10, 15, 16, 17, 24});
  c.N = pick(rng, {1, 1, 2});
  c.C = Cg * c.p.groups, c.OC = OCg * c.p.groups;
  c.KH = pick(rng, {1, 1, 2, 3, 3, 5}), c.KW = rng() % 4 ? c.KH : pick(rng, {1, 2, 3});
  c.p.sh = pick(rng, {1, 1, 2}), c.p.sw = rng() % 4 ? c.p.sh : pick(rng, {1, 2, 3});
  c.p.ph = pick(rng, {0, 0, 1, 2}), c.p.pw = rng() % 4 ? c.p.ph : pick(rng, {0, 1});
  c.p.dh = pick(rng, {1, 1, 1, 2}), c.p.dw = rng() % 4 ? c.p.dh : 1;
  for (;;) {
    c.H = pick(rng, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33});
    c.W = pick(rng, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33});
    if (ops::conv_out_size(c.H, c.KH, c.p.sh, c.p.ph, c.p.dh) >= 1 &&
        ops::conv_out_size(c.W, c.KW, c.p.sw, c.p.pw, c.p.dw) >= 1)
      return c;
  }
}

TEST(QConv2d, MatchesReferenceEveryTarget) {
  int checked = 0;
  for_each_target([&](uint32_t target) {
    std::printf("QConv2d on Highway target %s\n", hwy::TargetName(target));
    std::mt19937 rng(1234);
    for (int i = 0; i < 150; ++i) {
      set_num_threads(i % 2 + 1);
      const ConvCase c = random_case(rng);
      if (!check(c, rng, i % 10 == 0)) break;
      ++checked;
    }
    set_num_threads(1);
    // Real layer shapes: ResNet's 3×3 (several tiles plus a tail), a 1×1 bottleneck with K a
    // multiple of 4 and not, a strided 3×3, a depthwise 3×3 (slow path, still exact); ResNet-20's
    // stem (K = 9), its 7×7 layer (the virtual grid is 7×9) and its strided 3×3 and 1×1
    // downsampling (stride phases).
    for (const ConvCase& c : {ConvCase{1, 16, 16, 28, 28, 3, 3, {1, 1, 1, 1, 1, 1, 1}},
                              ConvCase{1, 1, 16, 28, 28, 3, 3, {1, 1, 1, 1, 1, 1, 1}},
                              ConvCase{2, 64, 64, 7, 7, 3, 3, {1, 1, 1, 1, 1, 1, 1}},
                              ConvCase{1, 16, 32, 28, 28, 3, 3, {2, 2, 1, 1, 1, 1, 1}},
                              ConvCase{2, 32, 64, 14, 14, 1, 1, {2, 2, 0, 0, 1, 1, 1}},
                              ConvCase{1, 8, 8, 13, 13, 3, 3, {2, 2, 2, 2, 2, 2, 1}},
                              ConvCase{2, 96, 24, 14, 14, 1, 1, {1, 1, 0, 0, 1, 1, 1}},
                              ConvCase{1, 37, 19, 9, 11, 1, 1, {1, 1, 0, 0, 1, 1, 1}},
                              ConvCase{1, 32, 64, 16, 16, 3, 3, {2, 2, 1, 1, 1, 1, 1}},
                              ConvCase{1, 12, 12, 10, 10, 3, 3, {1, 1, 1, 1, 1, 1, 12}},
                              // The 4-channel interleaved planes of the indirect GEMM: channel
                              // counts a multiple of 4 and not (padded with zero weights),
                              // groups, dilation, padding, strides, tails of both tile widths.
                              ConvCase{1, 20, 12, 9, 13, 3, 3, {1, 1, 2, 2, 2, 2, 1}},
                              ConvCase{2, 12, 10, 11, 7, 3, 2, {2, 1, 1, 0, 1, 1, 2}},
                              ConvCase{1, 4, 17, 33, 31, 5, 5, {2, 2, 2, 2, 1, 1, 1}},
                              ConvCase{1, 7, 9, 6, 40, 1, 3, {1, 3, 0, 1, 1, 2, 1}},
                              ConvCase{1, 8, 24, 5, 5, 1, 1, {1, 1, 1, 1, 1, 1, 1}},
                              ConvCase{3, 64, 40, 4, 4, 3, 3, {1, 1, 1, 1, 1, 1, 1}}}) {
      if (!check(c, rng)) break;
      ++checked;
    }
  });
  set_num_threads(1);
  std::printf("%d cases checked\n", checked);
  EXPECT_GT(checked, 0);
}

TEST(QConv2d, ThreadCountsAgree) {
  std::mt19937 rng(5);
  const Tensor x = random_code_tensor(rng, {3, 8, 13, 12}, DType::u8, 0);
  const Tensor w = random_code_tensor(rng, {20, 8, 3, 3}, DType::i8, 0);
  const QOut o = random_qout(rng, 20);
  const QConv2d conv(w, Tensor(), o.m, {1, 1, 1, 1, 1, 1, 1}, DType::u8, 3, o.z, o.qmin, o.qmax, o.dtype);
  set_num_threads(1);
  const auto one = values(conv.run(x));
  set_num_threads(2);
  const auto two = values(conv.run(x));
  set_num_threads(1);
  EXPECT_EQ(one, two);
}

TEST(QConv2d, OneTileSplitsItsWeightBlocksAcrossThreads) {
  // Batch 1 of a 4×4 plane is one pixel tile: two threads split its 5 weight blocks (narrow
  // kernel pairs and a single block), and the codes must not change; the reference decides.
  std::mt19937 rng(6);
  const Tensor x = random_code_tensor(rng, {1, 24, 4, 4}, DType::i8, 0);
  const Tensor w = random_code_tensor(rng, {40, 24, 1, 1}, DType::i8, 0);
  const QOut o = random_qout(rng, 40);
  const QConv2d conv(w, Tensor(), o.m, {1, 1, 0, 0, 1, 1, 1}, DType::i8, -5, o.z, o.qmin, o.qmax, o.dtype);
  const auto ref = values(qr::qconv2d(x, -5, w, Tensor(), qr::rq_tensor(o.m), {1, 1, 0, 0, 1, 1, 1},
                                             o.z, o.qmin, o.qmax, o.dtype));
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    EXPECT_EQ(values(conv.run(x)), ref) << threads << " threads";
  }
  set_num_threads(1);
}

// The phase-plane GEMM (every target without the indirect conv, and convs it does not take) on
// layers large enough to split: each thread fills the phase rows its own tiles read inside the
// region (kernels/own_rows.h), halo rows included, in 4-channel words or raw planes. Odd sizes,
// strides 1/2/3, padding 0/1/2, dilation, groups, channel counts not a multiple of 4, batches
// whose splits cross images; at 1, 2 and 3 threads (twice each: the second call finds the rows
// of the first) the codes are the reference's, and the split threads planned a region.
TEST(QConv2d, SplitPhasePlaneLayersFillTheirOwnRows) {
  quant::kernels::qs8::set_igemm_enabled(false);  // the indirect conv has its own tests
  for_each_target([&](uint32_t) {
    std::mt19937 rng(31);
    for (const ConvCase& c : {ConvCase{1, 16, 32, 28, 28, 3, 3, {1, 1, 1, 1, 1, 1, 1}},
                              ConvCase{1, 16, 32, 29, 31, 3, 3, {2, 2, 1, 1, 1, 1, 1}},
                              ConvCase{2, 12, 24, 21, 19, 3, 3, {1, 1, 2, 2, 2, 2, 1}},
                              ConvCase{1, 24, 12, 30, 30, 3, 3, {1, 1, 1, 1, 1, 1, 1}},
                              ConvCase{1, 32, 32, 30, 30, 3, 3, {1, 1, 1, 1, 1, 1, 2}},
                              ConvCase{1, 64, 64, 33, 33, 1, 1, {2, 2, 0, 0, 1, 1, 1}},
                              ConvCase{1, 7, 20, 40, 40, 5, 5, {2, 2, 2, 2, 1, 1, 1}},
                              ConvCase{1, 24, 32, 40, 41, 3, 3, {3, 3, 1, 1, 1, 1, 1}},
                              ConvCase{3, 16, 16, 14, 14, 3, 3, {1, 1, 1, 1, 1, 1, 1}},
                              ConvCase{1, 64, 64, 28, 28, 1, 1, {1, 1, 0, 0, 1, 1, 1}}}) {
      const DType xt = rng() % 2 ? DType::u8 : DType::i8;
      const Tensor x = random_code_tensor(rng, {c.N, c.C, c.H, c.W}, xt, 0);
      const Tensor w = random_code_tensor(rng, {c.OC, c.C / c.p.groups, c.KH, c.KW}, DType::i8, 0);
      const int32_t zx = std::uniform_int_distribution<int32_t>(code_lo(xt), code_hi(xt))(rng);
      const QOut o = random_qout(rng, c.OC);
      const auto want = values(qr::qconv2d(x, zx, w, Tensor(), qr::rq_tensor(o.m), c.p, o.z, o.qmin, o.qmax, o.dtype));
      const QConv2d conv(w, Tensor(), o.m, c.p, xt, zx, o.z, o.qmin, o.qmax, o.dtype);
      for (int threads : {1, 2, 3}) {
        set_num_threads(threads);
        const int64_t regions = detail::pool_stats().regions;
        for (int rep = 0; rep < 2; ++rep) EXPECT_EQ(values(conv.run(x)), want) << c.str() << ", " << threads << " threads";
        if (threads > 1) {
          EXPECT_GT(detail::pool_stats().regions, regions) << c.str() << ": not split at " << threads << " threads";
        }
      }
      set_num_threads(1);
    }
  });
  quant::kernels::qs8::set_igemm_enabled(true);
}

TEST(QConv2d, RejectsBadArguments) {
  const Tensor w = zeros({4, 3, 3, 3}, DType::i8);
  const std::vector<quant::FixedPointMultiplier> m(4, quant::quantize_multiplier(0.01));
  EXPECT_THROW(QConv2d(w, Tensor(), m, {}, DType::i8, 200, 0, -128, 127, DType::i8), Error);  // zx outside i8
  EXPECT_THROW(QConv2d(w, Tensor(), {m[0]}, {}, DType::i8, 0, 0, -128, 127, DType::i8), Error);
  EXPECT_THROW(QConv2d(w, zeros({3}, DType::i32), m, {}, DType::i8, 0, 0, -128, 127, DType::i8), Error);
  const QConv2d conv(w, Tensor(), m, {}, DType::i8, 0, 0, -128, 127, DType::i8);
  EXPECT_THROW(conv.run(zeros({1, 3, 5, 5}, DType::u8)), Error);  // wrong input type
  EXPECT_THROW(conv.run(zeros({1, 2, 5, 5}, DType::i8)), Error);  // wrong channels
  EXPECT_THROW(conv.run(zeros({1, 3, 2, 5}, DType::i8)), Error);  // smaller than the kernel
}

}  // namespace
}  // namespace finch::test
