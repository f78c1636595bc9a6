// The residual add in the conv tiles' register epilogues (qs8_gemm.h TileAdd: the indirect conv,
// the 8×32 and 16×16 GEMM tiles) against reference::qadd(reference::qconv2d(x), r), bit for bit.
// test_qs8_conv_add.cc's random multipliers mostly leave the 32..52 shift rule (and then the
// tiles add their stored rows in place); here every channel's multiplier is one real layers have,
// so the register epilogue is what runs: 1×1 convs with small K (MobileNetV2's projections) on
// planes whose tiles are whole, tailed and narrow, 3×3 convs through the indirect conv, OC odd
// and not a multiple of 16, residuals with their own scale and zero point, no activation, ReLU
// and ReLU6, power-of-two scales (the add then meets exact .5 ties), 1-3 threads, every target.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
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

struct Shape2 {
  int64_t N, C, OC, H, W, K, stride;
};

std::string str(const Shape2& c, int act, int threads) {
  return "N" + std::to_string(c.N) + " C" + std::to_string(c.C) + " OC" + std::to_string(c.OC) + " " +
         std::to_string(c.H) + "x" + std::to_string(c.W) + " k" + std::to_string(c.K) + " s" +
         std::to_string(c.stride) + " act" + std::to_string(act) + " threads" + std::to_string(threads);
}

// A scale: a power of two half of the time (sums of such codes, divided by one, land on exact
// .5 ties), else any value in 2^-9 .. 2^1.
float scale(std::mt19937& rng) {
  if (rng() % 2) return std::exp2(-float(rng() % 10));
  return std::exp2(std::uniform_real_distribution<float>(-9, 1)(rng));
}

// The clamp of activation act (0 none, 1 ReLU, 2 ReLU6) for codes of dtype t at (s, z).
quant::QRange act_range(int act, float s, int32_t z, DType t) {
  const quant::QRange full{code_lo(t), code_hi(t)};
  if (act == 0) return full;
  return quant::fused_activation_range(act == 1 ? "relu" : "relu6", s, z, full);
}

// One conv + add, checked; false on the first mismatch.
bool check(const Shape2& c, int act, std::mt19937& rng) {
  const DType xt = rng() % 2 ? DType::u8 : DType::i8;
  const Tensor x = random_code_tensor(rng, {c.N, c.C, c.H, c.W}, xt, 0);
  const Tensor w = random_code_tensor(rng, {c.OC, c.C, c.K, c.K}, DType::i8, 0);
  const int32_t zx = std::uniform_int_distribution<int32_t>(code_lo(xt), code_hi(xt))(rng);
  Tensor bias;
  if (rng() % 4 != 0) bias = from_vector(random_codes(rng, c.OC, -(1 << 14), 1 << 14), {c.OC});
  // Multipliers of real layers (total shift 32..52): 2^-19 .. 2^-3, a few exact powers (ties).
  std::vector<quant::FixedPointMultiplier> m;
  for (int64_t i = 0; i < c.OC; ++i)
    m.push_back(quant::quantize_multiplier(rng() % 4 == 0 ? std::exp2(-int(3 + rng() % 14))
                                                          : std::exp2(std::uniform_real_distribution<double>(-19, -3)(rng))));
  QAddEpilogue e;
  const DType ct = rng() % 2 ? DType::u8 : DType::i8;  // the conv's codes
  e.s_conv = scale(rng);
  e.z_conv = std::uniform_int_distribution<int32_t>(code_lo(ct), code_hi(ct))(rng);
  const quant::QRange cr = act_range(rng() % 3 == 0 ? 1 : 0, e.s_conv, e.z_conv, ct);  // conv's own ReLU or none
  const ops::Conv2dParams p{c.stride, c.stride, c.K / 2, c.K / 2, 1, 1, 1};
  const QConv2d conv(w, bias, m, p, xt, zx, e.z_conv, cr.qmin, cr.qmax, ct);
  const Tensor codes = qr::qconv2d(x, zx, w, bias, qr::rq_tensor(m), p, e.z_conv, cr.qmin, cr.qmax, ct);
  e.r_dtype = rng() % 2 ? DType::u8 : DType::i8;
  e.s_r = scale(rng);
  e.z_r = std::uniform_int_distribution<int32_t>(code_lo(e.r_dtype), code_hi(e.r_dtype))(rng);
  e.out_dtype = rng() % 2 ? DType::u8 : DType::i8;
  e.s_out = scale(rng);
  e.z_out = std::uniform_int_distribution<int32_t>(code_lo(e.out_dtype), code_hi(e.out_dtype))(rng);
  const quant::QRange orange = act_range(act, e.s_out, e.z_out, e.out_dtype);
  e.qmin = orange.qmin, e.qmax = orange.qmax;
  e.conv_first = rng() % 2 == 0;
  Tensor r = random_code_tensor(rng, codes.shape(), e.r_dtype, rng() % 8 == 0 ? 1 + int(rng() % 2) : 0);
  if (rng() % 5 == 0) r = strided_copy(r);
  const Tensor want = e.conv_first
                          ? qr::qadd(codes, e.s_conv, e.z_conv, r, e.s_r, e.z_r, e.s_out, e.z_out, e.qmin, e.qmax, e.out_dtype)
                          : qr::qadd(r, e.s_r, e.z_r, codes, e.s_conv, e.z_conv, e.s_out, e.z_out, e.qmin, e.qmax, e.out_dtype);
  const Tensor got = conv.run_add(x, r, e);
  EXPECT_EQ(got.dtype(), want.dtype());
  EXPECT_EQ(got.shape(), want.shape());
  const auto g = values(got), ref = values(want);
  for (size_t i = 0; i < ref.size(); ++i)
    if (g[i] != ref[i]) {
      ADD_FAILURE() << str(c, act, get_num_threads()) << ": element " << i << " got " << g[i] << ", reference " << ref[i];
      return false;
    }
  return true;
}

TEST(QConv2dAddFused, RegisterEpilogueMatchesReferenceEveryTarget) {
  int checked = 0;
  for_each_target([&](uint32_t target) {
    std::printf("fused add on Highway target %s (adds in registers: %d)\n", hwy::TargetName(target),
                int(quant::kernels::qs8::tile_add_in_registers()));
    std::mt19937 rng(2207);
    const Shape2 shapes[] = {
        // 1×1 stride 1 (the GEMM's 8×32 and narrow tiles; the indirect conv at 7²): MobileNetV2's
        // projections (K 16..96 at 28², 14², 7²), odd and non-16 OC, 4×4 and tailed planes.
        {1, 16, 24, 28, 28, 1, 1}, {1, 24, 24, 28, 28, 1, 1}, {1, 96, 24, 14, 14, 1, 1}, {1, 32, 33, 14, 14, 1, 1},
        {2, 16, 17, 7, 7, 1, 1}, {1, 96, 32, 7, 7, 1, 1}, {1, 8, 40, 4, 4, 1, 1}, {1, 20, 9, 5, 9, 1, 1},
        {1, 4, 31, 3, 11, 1, 1},
        // 3×3 (the indirect conv: 16/32-channel blocks, tails of rows and tiles): ResNet-20's, odd OC.
        {1, 16, 16, 28, 28, 3, 1}, {1, 32, 32, 14, 14, 3, 1}, {1, 64, 64, 7, 7, 3, 1}, {1, 16, 17, 9, 10, 3, 1},
        {2, 8, 48, 6, 5, 3, 1}, {1, 12, 31, 11, 13, 3, 2}, {1, 16, 33, 8, 8, 3, 2}};
    for (const Shape2& c : shapes)
      for (int act = 0; act < 3; ++act)
        for (int threads = 1; threads <= 3; ++threads) {
          set_num_threads(threads);
          if (!check(c, act, rng)) return;
          ++checked;
        }
  });
  set_num_threads(1);
  std::printf("%d cases checked\n", checked);
  EXPECT_GT(checked, 0);
}

}  // namespace
}  // namespace finch::test
