// The indirect int8 conv (kernels/qs8_igemm.h, taken by QConv2d on AVX-512 VNNI) against
// reference::qconv2d and the fused add against qadd(qconv2d), bit for bit: layer shapes whose
// multipliers all fit its rule (every real multiplier in [2^-21, 0.5), as trained layers have),
// around its edges (pixel counts vs the 7-pixel tile, channels vs 16 and 32, channel counts not
// a multiple of 4, the 1-channel and RGB stems, groups, strides, padding wider than the kernel, dilation, batches), on every
// Highway target (the others run the phase-plane GEMM) at 1 and 2 threads.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <sstream>
#include <string>

#include "framework/parallel.h"
#include "kernels/qs8_conv.h"
#include "kernels/reference.h"
#include "tests/runtime/qs8_test_util.h"

namespace finch::test {
namespace {

namespace qr = quant::reference;
using quant::kernels::QAddEpilogue;
using quant::kernels::QConv2d;

struct Case {
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

// Output parameters of a trained layer: every multiplier a total shift of 32..52.
QOut ordinary_qout(std::mt19937& rng, int64_t OC) {
  QOut o = random_qout(rng, OC);
  std::uniform_real_distribution<double> e(-21, -1.01);
  for (auto& m : o.m) m = quant::quantize_multiplier(std::exp2(e(rng)));
  if (rng() % 5 == 0) o.m[rng() % o.m.size()] = quant::quantize_multiplier(0.25);  // exact: ties
  return o;
}

std::vector<float> floats(const Tensor& t) { return t.to(DType::f32).contiguous().to_vector<float>(); }

// One case, plain and with a fused add; `igemm` counts the convs that took the indirect kernel.
bool check(const Case& c, std::mt19937& rng, uint32_t target, int* igemm) {
  const DType xt = rng() % 2 ? DType::u8 : DType::i8;
  const int mode = int(rng() % 5);  // 1, 2: every code at one extreme (the largest sums)
  const Tensor x = random_code_tensor(rng, {c.N, c.C, c.H, c.W}, xt, mode < 3 ? mode : 0);
  const Tensor w = random_code_tensor(rng, {c.OC, c.C / c.p.groups, c.KH, c.KW}, DType::i8, mode < 3 ? 3 - mode : 0);
  int32_t zx = std::uniform_int_distribution<int32_t>(code_lo(xt), code_hi(xt))(rng);
  if (rng() % 3 == 0) zx = rng() % 2 ? code_lo(xt) : code_hi(xt);
  Tensor bias;
  if (rng() % 4 != 0) bias = from_vector(random_codes(rng, c.OC, -(1 << 20), 1 << 20), {c.OC});
  const QOut o = ordinary_qout(rng, c.OC);
  const QConv2d conv(w, bias, o.m, c.p, xt, zx, o.z, o.qmin, o.qmax, o.dtype);
  // The kernel exists where the phase-plane GEMM runs vpdpbusd (the dispatched target, which
  // for_each_target's "Unknown" maps to the best one), and every eligible conv takes it there.
  const bool vnni = std::string(quant::kernels::qs8::gemm_kernel_name()) == "vnni";
  EXPECT_EQ(quant::kernels::qs8::igemm_available(), vnni) << hwy::TargetName(target);
  const bool direct = c.KH == 1 && c.KW == 1 && c.p.sh == 1 && c.p.sw == 1 && c.p.ph == 0 && c.p.pw == 0;
  // A plain 1×1 conv: where its GEMM tiles (32 pixels, a tail of <= 16 in the narrow tile)
  // compute >= 15 % more pixels than 7-pixel tiles (a 7×7 plane, not 4×4 or 14×14).
  const int64_t P = c.H * c.W, gemm_px = P / 32 * 32 + (P % 32 == 0 ? 0 : P % 32 <= 16 ? 16 : 32);
  const bool pays = gemm_px * 100 >= (P + 6) / 7 * 7 * 115;
  EXPECT_EQ(conv.uses_igemm(c.H, c.W), vnni && (!direct || pays) && c.OC / c.p.groups >= 16) << c.str();
  *igemm += conv.uses_igemm(c.H, c.W);
  const Tensor want = qr::qconv2d(x, zx, w, bias, qr::rq_tensor(o.m), c.p, o.z, o.qmin, o.qmax, o.dtype);
  const Tensor got = conv.run(x);
  EXPECT_EQ(got.shape(), want.shape()) << c.str();
  const auto g = values(got), r = values(want);
  for (size_t i = 0; i < r.size(); ++i)
    if (g[i] != r[i]) {
      ADD_FAILURE() << c.str() << " zx " << zx << " z_out " << o.z << " [" << o.qmin << ", " << o.qmax << "] mode "
                    << mode << ": element " << i << " got " << g[i] << ", reference " << r[i];
      return false;
    }
  // The fused add, either operand order.
  QAddEpilogue e;
  e.s_conv = 0.05f, e.z_conv = o.z, e.r_dtype = rng() % 2 ? DType::u8 : DType::i8;
  e.s_r = 0.03f, e.z_r = std::uniform_int_distribution<int32_t>(code_lo(e.r_dtype), code_hi(e.r_dtype))(rng);
  e.out_dtype = rng() % 2 ? DType::u8 : DType::i8, e.s_out = 0.07f;
  e.z_out = std::uniform_int_distribution<int32_t>(code_lo(e.out_dtype), code_hi(e.out_dtype))(rng);
  e.qmin = code_lo(e.out_dtype), e.qmax = code_hi(e.out_dtype), e.conv_first = rng() % 2;
  const Tensor res = random_code_tensor(rng, want.shape(), e.r_dtype, 0);
  const Tensor sum = e.conv_first ? qr::qadd(want, e.s_conv, e.z_conv, res, e.s_r, e.z_r, e.s_out, e.z_out, e.qmin,
                                             e.qmax, e.out_dtype)
                                  : qr::qadd(res, e.s_r, e.z_r, want, e.s_conv, e.z_conv, e.s_out, e.z_out, e.qmin,
                                             e.qmax, e.out_dtype);
  const Tensor fused = conv.run_add(x, res, e);
  if (floats(fused) != floats(sum)) {
    ADD_FAILURE() << c.str() << ": the fused add differs from qadd(qconv2d)";
    return false;
  }
  return true;
}

TEST(QConv2dIgemm, MatchesReferenceEveryTarget) {
  int checked = 0, igemm = 0;
  for_each_target([&](uint32_t target) {
    std::mt19937 rng(22);
    // ResNet-20's 3×3 convs (28×28 / 14×14 / 7×7, 16 / 32 / 64 channels, stride 1 and 2), its
    // strided 1×1 shortcut, and shapes around the tile edges.
    const std::vector<Case> fixed = {
        {1, 16, 16, 28, 28, 3, 3, {1, 1, 1, 1, 1, 1, 1}}, {1, 16, 32, 28, 28, 3, 3, {2, 2, 1, 1, 1, 1, 1}},
        {1, 32, 32, 14, 14, 3, 3, {1, 1, 1, 1, 1, 1, 1}}, {1, 32, 64, 14, 14, 3, 3, {2, 2, 1, 1, 1, 1, 1}},
        {2, 64, 64, 7, 7, 3, 3, {1, 1, 1, 1, 1, 1, 1}},   {1, 32, 64, 14, 14, 1, 1, {2, 2, 0, 0, 1, 1, 1}},
        {1, 5, 17, 3, 4, 3, 3, {1, 1, 2, 2, 1, 1, 1}},    {1, 4, 16, 1, 1, 3, 3, {1, 1, 1, 1, 1, 1, 1}},
        {2, 10, 40, 9, 8, 3, 2, {2, 1, 1, 0, 2, 1, 2}},   {1, 7, 33, 12, 13, 5, 5, {1, 2, 2, 1, 1, 2, 1}},
        {1, 64, 48, 6, 5, 1, 1, {1, 1, 1, 1, 1, 1, 1}},   {3, 24, 31, 4, 4, 3, 3, {1, 1, 1, 1, 1, 1, 1}},
        {1, 1, 16, 28, 28, 3, 3, {1, 1, 1, 1, 1, 1, 1}},  {2, 2, 32, 9, 9, 3, 3, {2, 2, 1, 1, 1, 1, 2}},
        {1, 3, 16, 56, 56, 3, 3, {2, 2, 1, 1, 1, 1, 1}},  {2, 3, 24, 15, 17, 3, 3, {1, 1, 1, 1, 1, 1, 1}},
        {1, 96, 576, 7, 7, 1, 1, {1, 1, 0, 0, 1, 1, 1}},  {2, 64, 40, 7, 7, 1, 1, {1, 1, 0, 0, 1, 1, 2}},
        {1, 160, 48, 4, 4, 1, 1, {1, 1, 0, 0, 1, 1, 1}},  {1, 24, 32, 2, 2, 1, 1, {1, 1, 0, 0, 1, 1, 1}}};
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      for (const Case& c : fixed) {
        if (!check(c, rng, target, &igemm)) return;
        ++checked;
      }
      for (int i = 0; i < 40; ++i) {
        Case c{};
        c.p.groups = pick(rng, {1, 1, 1, 2});
        const int64_t Cg = pick(rng, {1, 2, 3, 4, 5, 7, 8, 12, 16, 19, 32});
        const int64_t OCg = pick(rng, {16, 17, 24, 31, 32, 33, 48, 64});
        c.N = pick(rng, {1, 1, 2}), c.C = Cg * c.p.groups, c.OC = OCg * c.p.groups;
        c.KH = pick(rng, {1, 2, 3, 3, 5}), c.KW = rng() % 4 ? c.KH : pick(rng, {1, 3});
        c.p.sh = pick(rng, {1, 1, 2}), c.p.sw = rng() % 4 ? c.p.sh : pick(rng, {1, 2, 3});
        c.p.ph = pick(rng, {0, 1, 1, 2}), c.p.pw = rng() % 4 ? c.p.ph : pick(rng, {0, 1});
        c.p.dh = pick(rng, {1, 1, 1, 2}), c.p.dw = rng() % 4 ? c.p.dh : 1;
        if (c.KH == 1 && c.KW == 1 && c.p.sh == 1 && c.p.sw == 1 && rng() % 2) c.p.ph = 1;  // some plain 1×1
        c.H = pick(rng, {1, 3, 6, 7, 8, 13, 14, 15, 28}), c.W = pick(rng, {1, 2, 7, 9, 14, 16, 29});
        if (ops::conv_out_size(c.H, c.KH, c.p.sh, c.p.ph, c.p.dh) < 1 ||
            ops::conv_out_size(c.W, c.KW, c.p.sw, c.p.pw, c.p.dw) < 1)
          continue;
        if (!check(c, rng, target, &igemm)) return;
        ++checked;
      }
    }
    set_num_threads(1);
  });
  set_num_threads(1);
  std::printf("%d cases checked, %d through the indirect conv\n", checked, igemm);
  EXPECT_GT(checked, 0);
}

TEST(QConv2dIgemm, ShapesChangeBetweenRuns) {
  // The indirection table is cached per input shape: a second shape, then the first again.
  std::mt19937 rng(7);
  const Tensor w = random_code_tensor(rng, {32, 16, 3, 3}, DType::i8, 0);
  const QOut o = ordinary_qout(rng, 32);
  const ops::Conv2dParams p{1, 1, 1, 1, 1, 1, 1};
  const QConv2d conv(w, Tensor(), o.m, p, DType::i8, 3, o.z, o.qmin, o.qmax, o.dtype);
  for (int64_t hw : {14, 9, 14, 28}) {
    const Tensor x = random_code_tensor(rng, {1, 16, hw, hw}, DType::i8, 0);
    EXPECT_EQ(values(conv.run(x)),
              values(qr::qconv2d(x, 3, w, Tensor(), qr::rq_tensor(o.m), p, o.z, o.qmin, o.qmax, o.dtype)))
        << hw << "x" << hw;
  }
}

TEST(QConv2dIgemm, ThreadSplitsAgree) {
  // Big enough for two threads to split the pixel tiles: a rectangle's last tile stores masked,
  // the others 8-byte runs whose eighth byte the next tile overwrites; the split must not show.
  std::mt19937 rng(8);
  for (const int64_t OC : {16, 64}) {
    const Tensor x = random_code_tensor(rng, {2, 32, 28, 28}, DType::u8, 0);
    const Tensor w = random_code_tensor(rng, {OC, 32, 3, 3}, DType::i8, 0);
    const QOut o = ordinary_qout(rng, OC);
    const ops::Conv2dParams p{1, 1, 1, 1, 1, 1, 1};
    const QConv2d conv(w, Tensor(), o.m, p, DType::u8, 100, o.z, o.qmin, o.qmax, o.dtype);
    const auto ref = values(qr::qconv2d(x, 100, w, Tensor(), qr::rq_tensor(o.m), p, o.z, o.qmin, o.qmax, o.dtype));
    for (int threads : {1, 2, 3}) {
      set_num_threads(threads);
      EXPECT_EQ(values(conv.run(x)), ref) << "OC " << OC << ", " << threads << " threads";
    }
  }
  set_num_threads(1);
}

TEST(QConv2dIgemm, RowsPreparedPerThreadAgree) {
  // Each thread interleaves the input rows its own tiles read, inside the conv's region
  // (qs8_conv_igemm.cc planes_for): rectangles that start mid-image, several (image, group)
  // planes per rectangle, halo rows of strides and dilations, the RGB stem, grids cut by blocks;
  // then new codes of the same shape (no rows of the last call may be reused), at 1, 2 and 3
  // threads.
  std::mt19937 rng(9);
  struct Layer {
    int64_t N, C, OC, HW, k;
    ops::Conv2dParams p;
  };
  const std::vector<Layer> layers = {{1, 3, 16, 224, 3, {2, 2, 1, 1, 1, 1, 1}},
                                     {3, 8, 32, 30, 5, {1, 1, 4, 4, 2, 2, 2}},
                                     {2, 16, 48, 28, 3, {2, 2, 1, 1, 1, 1, 1}},
                                     // weights outweigh the input: the threads cut the blocks
                                     {2, 64, 128, 7, 3, {1, 1, 1, 1, 1, 1, 1}},
                                     {1, 96, 576, 7, 1, {1, 1, 0, 0, 1, 1, 1}}};
  for (const Layer& l : layers) {
    const Tensor w = random_code_tensor(rng, {l.OC, l.C / l.p.groups, l.k, l.k}, DType::i8, 0);
    const QOut o = ordinary_qout(rng, l.OC);
    const QConv2d conv(w, Tensor(), o.m, l.p, DType::i8, -5, o.z, o.qmin, o.qmax, o.dtype);
    for (int round = 0; round < 2; ++round) {
      const Tensor x = random_code_tensor(rng, {l.N, l.C, l.HW, l.HW}, DType::i8, 0);
      const auto ref = values(qr::qconv2d(x, -5, w, Tensor(), qr::rq_tensor(o.m), l.p, o.z, o.qmin, o.qmax, o.dtype));
      for (int threads : {1, 2, 3, 2}) {
        set_num_threads(threads);
        EXPECT_EQ(values(conv.run(x)), ref) << "C " << l.C << " OC " << l.OC << " " << l.HW << "², " << threads
                                            << " threads, round " << round;
      }
    }
  }
  set_num_threads(1);
}

}  // namespace
}  // namespace finch::test
