// The native fp16 conv2d/linear (kernels/f16_conv.h) and their GEMM micro-kernel
// (f16_gemm.h) against plain loops in double over the same f16-rounded inputs, within the error
// bound of an f16-accumulated sum (f16_test_util.h): DESIGN.md's edge sizes (1–10, the 8×8 tile
// ±1), strides, padding, dilation, groups, depthwise, 1 and 2 threads (which must agree bit for
// bit). Each runs on the portable micro-kernel and, on an ARMv8.2 FP16 CPU, on the NEON one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "framework/error.h"
#include "framework/parallel.h"
#include "kernels/f16_conv.h"
#include "tests/runtime/f16_test_util.h"

namespace finch::test {
namespace {

namespace qk = quant::kernels;
using qk::f16k::Act;

const Act kActs[] = {Act::none, Act::relu, Act::relu6};

int64_t differing(const Tensor& a, const Tensor& b) {
  const auto x = a.contiguous().to_vector<float>(), y = b.contiguous().to_vector<float>();
  if (x.size() != y.size()) return -1;
  int64_t d = 0;
  for (size_t i = 0; i < x.size(); ++i) d += std::memcmp(&x[i], &y[i], 4) != 0;
  return d;
}

// One conv case on the kernel now selected: within the bound at 1 thread, identical at 2.
int64_t check_conv(std::mt19937& rng, int64_t N, int64_t C, int64_t OC, int64_t H, int64_t W, int64_t KH, int64_t KW,
                   const ops::Conv2dParams& p, bool bias, Act act, float scale = 1.0f) {
  const Tensor x = uniform({N, C, H, W}, rng, -scale, scale);
  const Tensor w = uniform({OC, C / p.groups, KH, KW}, rng, -1, 1, DType::f16);
  const Tensor b = bias ? uniform({OC}, rng) : Tensor();
  const qk::F16Conv2d k(w, b, p, act);
  set_num_threads(1);
  const Tensor y1 = k.run(x);
  set_num_threads(2);
  const Tensor y2 = k.run(x);
  set_num_threads(1);
  const Tensor ref = qk::f16_conv2d_reference(x, w, b, p, act);
  const Tensor abs_sum = qk::f16_conv2d_reference(ops::abs(x), ops::abs(w.to(DType::f32)).to(DType::f16), Tensor(), p, Act::none);
  const std::string what = "conv N" + std::to_string(N) + " C" + std::to_string(C) + " OC" + std::to_string(OC) +
                           " " + std::to_string(H) + "x" + std::to_string(W) + " k" + std::to_string(KH) + "x" +
                           std::to_string(KW) + " s" + std::to_string(p.sh) + "," + std::to_string(p.sw) + " p" +
                           std::to_string(p.ph) + "," + std::to_string(p.pw) + " d" + std::to_string(p.dh) + "," +
                           std::to_string(p.dw) + " g" + std::to_string(p.groups);
  EXPECT_EQ(y1.shape(), ref.shape()) << what;
  EXPECT_EQ(differing(y1, y2), 0) << what << ": 1 and 2 threads differ";
  return fp16_violations(y1, ref, abs_sum, C / p.groups * KH * KW, what);
}

TEST(F16Gemm, KernelMatchesTheCpu) {
  const std::string name = qk::f16k::f16_gemm_kernel_name();
  std::printf("fp16 GEMM micro-kernel: %s\n", name.c_str());
  EXPECT_EQ(name, cpu_has_arm_fp16() ? "neonfp16" : "portable");
#if !defined(__aarch64__)
  EXPECT_EQ(name, "portable") << "no native fp16 arithmetic off aarch64";
#endif
  // scripts/test-arm.sh says what the modelled CPU has (FINCH_DISABLE_FP16 takes it away).
  if (const char* expect = std::getenv("FINCH_EXPECT_ARM_FP16")) {
    EXPECT_EQ(name, *expect == '1' ? "neonfp16" : "portable");
  }
}

// The micro-kernel alone: every M of a tile (1–8), K around the 8-block (1–10, 15–17, 31–33),
// P around the 8-lane vector (1–10, 15–17, 63–65), both store layouts, each activation.
TEST(F16Gemm, TilesMatchTheReference) {
  for_each_f16_kernel([](const char* kernel) {
    std::mt19937 rng(7);
    int64_t bad = 0, cases = 0;
    const std::vector<int64_t> Ks = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33};
    const std::vector<int64_t> Ps = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17, 63, 64, 65};
    for (int64_t M = 1; M <= 8; ++M)
      for (int64_t K : Ks)
        for (int64_t P : Ps) {
          const int64_t ldw = K + (cases % 3), ldx = (P + 7) / 8 * 8 + 8 * (cases % 2);
          std::vector<f16> w(size_t(M * ldw)), x(size_t(K * ldx));
          std::uniform_real_distribution<float> d(-1, 1);
          for (auto& e : w) e = f32_to_f16(d(rng));
          for (auto& e : x) e = f32_to_f16(d(rng));
          std::vector<float> bias(static_cast<size_t>(M));
          for (auto& e : bias) e = d(rng);
          const Act act = kActs[cases % 3];
          const bool transposed = cases % 2 == 1;  // linear's store: y[p][m]
          const int64_t rs = transposed ? 1 : P, cs = transposed ? M : 1;
          std::vector<float> y(size_t(M * P), -99.0f);
          qk::f16k::f16_gemm_8x8(w.data(), ldw, x.data(), ldx, M, K, P, bias.data(), act, y.data(), rs, cs);
          for (int64_t m = 0; m < M; ++m)
            for (int64_t p = 0; p < P; ++p) {
              double s = 0, a = 0;
              for (int64_t k = 0; k < K; ++k) {
                const double t = double(f16_to_f32(w[size_t(m * ldw + k)])) * f16_to_f32(x[size_t(k * ldx + p)]);
                s += t, a += std::fabs(t);
              }
              s += bias[size_t(m)];
              if (act != Act::none) s = std::max(s, 0.0);
              if (act == Act::relu6) s = std::min(s, 6.0);
              const float got = y[size_t(m * rs + p * cs)];
              if (!within_fp16_bound(got, float(s), float(a), K) && bad++ < 3)
                ADD_FAILURE() << kernel << " M" << M << " K" << K << " P" << P << " (" << m << ", " << p << "): got "
                              << got << ", want " << s;
            }
          ++cases;
        }
    EXPECT_EQ(bad, 0) << kernel << ": " << cases << " tiles";
  });
}

// The bound is tight enough to catch a sum that misses one term: 3×3 taps of values in
// [0.5, 1], so every product is >= 0.25 and the bound (K·2^-11·Σ|x·w| <= 81/2048) far below it.
TEST(F16Conv2d, BoundCatchesAMissingTerm) {
  for_each_f16_kernel([](const char* kernel) {
    std::mt19937 rng(3);
    const Tensor x = uniform({1, 1, 5, 5}, rng, 0.5f, 1.0f), w = uniform({2, 1, 3, 3}, rng, 0.5f, 1.0f, DType::f16);
    const qk::F16Conv2d k(w, Tensor(), ops::Conv2dParams{}, Act::none);
    const Tensor y = k.run(x), ref = qk::f16_conv2d_reference(x, w, Tensor(), {}, Act::none);
    EXPECT_EQ(fp16_violations(y, ref, ref, 9, kernel), 0);
    // A kernel that dropped the tap (0, 0) of output (0, 0, 0, 0): x[0,0,0,0]·w[0,0,0,0].
    Tensor wrong = y.clone();
    const float term = f16_to_f32(f32_to_f16(x.data<float>()[0])) * f16_to_f32(w.data<f16>()[0]);
    wrong.data<float>()[0] -= term;
    EXPECT_GE(term, 0.25f);
    EXPECT_EQ(fp16_violations(wrong, ref, ref, 9, std::string(kernel) + " (one term dropped, expected to fail)"), 1);
  });
}

// DESIGN.md's sweep: random shapes with every dimension in 1–10 (output channels around the
// 8-row tile), strides 1–3, padding 0–2, dilation 1–2, groups dividing both channel counts.
TEST(F16Conv2d, RandomShapesMatchTheReference) {
  for_each_f16_kernel([](const char* kernel) {
    std::mt19937 rng(11);
    auto pick = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
    int64_t bad = 0;
    for (int i = 0; i < 150; ++i) {
      ops::Conv2dParams p;
      p.sh = pick(1, 3), p.sw = pick(1, 3), p.ph = pick(0, 2), p.pw = pick(0, 2), p.dh = pick(1, 2), p.dw = pick(1, 2);
      const int64_t KH = pick(1, 3), KW = pick(1, 3);
      const int64_t H = std::max(pick(1, 10), (KH - 1) * p.dh + 1 - 2 * p.ph);
      const int64_t W = std::max(pick(1, 10), (KW - 1) * p.dw + 1 - 2 * p.pw);
      p.groups = pick(1, 3);
      const int64_t C = p.groups * pick(1, 4), OC = p.groups * pick(1, 6);
      bad += check_conv(rng, pick(1, 2), C, OC, H, W, KH, KW, p, i % 2 == 0, kActs[i % 3]);
    }
    EXPECT_EQ(bad, 0) << kernel;
  });
}

// Output channels around the 8-row tile (7, 8, 9, 15, 16, 17) and pixels around the 8-lane
// vector and the 64-column task (P = 7, 8, 9, 63, 64, 65 as 1×P images), K around the 8-block.
TEST(F16Conv2d, TileEdgesMatchTheReference) {
  for_each_f16_kernel([](const char* kernel) {
    std::mt19937 rng(5);
    int64_t bad = 0;
    for (int64_t OC : {1, 7, 8, 9, 15, 16, 17})
      for (int64_t P : {1, 7, 8, 9, 63, 64, 65})
        for (int64_t C : {1, 7, 8, 9}) bad += check_conv(rng, 1, C, OC, 1, P, 1, 1, {}, true, Act::none);
    for (int64_t C : {1, 2, 3}) bad += check_conv(rng, 2, C, 9, 9, 9, 3, 3, {1, 1, 1, 1, 1, 1, 1}, true, Act::relu);
    EXPECT_EQ(bad, 0) << kernel;
  });
}

// Depthwise (groups == C, one input channel per group, multiplier 1–2), 3×3 and 5×5, strides 1–2.
TEST(F16Conv2d, DepthwiseMatchesTheReference) {
  for_each_f16_kernel([](const char* kernel) {
    std::mt19937 rng(9);
    int64_t bad = 0;
    for (int64_t C : {1, 3, 8, 9, 16})
      for (int64_t mult : {1, 2})
        for (int64_t k : {3, 5})
          for (int64_t s : {1, 2}) {
            ops::Conv2dParams p;
            p.sh = p.sw = s, p.ph = p.pw = k / 2, p.groups = C;
            bad += check_conv(rng, 2, C, C * mult, 7, 10, k, k, p, true, Act::relu6);
          }
    EXPECT_EQ(bad, 0) << kernel;
  });
}

// Larger reductions (K = 16·9 = 144) and inputs of magnitude 20: the bound still holds.
TEST(F16Conv2d, LongReductionsStayWithinTheBound) {
  for_each_f16_kernel([](const char* kernel) {
    std::mt19937 rng(13);
    EXPECT_EQ(check_conv(rng, 1, 16, 17, 8, 8, 3, 3, {1, 1, 1, 1, 1, 1, 1}, true, Act::none, 20.0f), 0) << kernel;
  });
}

TEST(F16Conv2d, RejectsBadShapesWithASentence) {
  std::mt19937 rng(1);
  const Tensor w = uniform({4, 2, 3, 3}, rng, -1, 1, DType::f16);
  EXPECT_THROW(qk::F16Conv2d(w.to(DType::f32), Tensor(), {}, Act::none), Error);
  ops::Conv2dParams p;
  p.groups = 3;
  EXPECT_THROW(qk::F16Conv2d(w, Tensor(), p, Act::none), Error);  // 4 channels, 3 groups
  const qk::F16Conv2d k(w, Tensor(), {}, Act::none);
  EXPECT_THROW(k.run(uniform({1, 3, 5, 5}, rng)), Error);  // 3 channels, weight wants 2
  EXPECT_THROW(k.run(uniform({1, 2, 2, 2}, rng)), Error);  // smaller than the kernel
  EXPECT_THROW(qk::fused_act_from_name("gelu"), Error);
}

// linear: rows of x around the 8-lane vector and the 64-column task, IN around the 8-block, OUT
// around the 8-row tile, a 3-D input, 1 and 2 threads.
TEST(F16Linear, MatchesTheReference) {
  for_each_f16_kernel([](const char* kernel) {
    std::mt19937 rng(17);
    int64_t bad = 0, i = 0;
    for (int64_t R : {1, 2, 7, 8, 9, 10, 63, 64, 65})
      for (int64_t IN : {1, 3, 7, 8, 9, 16, 17})
        for (int64_t OUT : {1, 5, 8, 9, 17}) {
          const Shape xs = R == 10 ? Shape{2, 5, IN} : Shape{R, IN};
          const Tensor x = uniform(xs, rng), w = uniform({OUT, IN}, rng, -1, 1, DType::f16);
          const Tensor b = i % 2 ? uniform({OUT}, rng) : Tensor();
          const Act act = kActs[i++ % 3];
          const qk::F16Linear k(w, b, act);
          set_num_threads(1);
          const Tensor y1 = k.run(x);
          set_num_threads(2);
          const Tensor y2 = k.run(x);
          set_num_threads(1);
          const Tensor ref = qk::f16_linear_reference(x, w, b, act);
          const Tensor abs_sum =
              qk::f16_linear_reference(ops::abs(x), ops::abs(w.to(DType::f32)).to(DType::f16), Tensor(), Act::none);
          const std::string what = std::string(kernel) + " linear R" + std::to_string(R) + " IN" + std::to_string(IN) +
                                   " OUT" + std::to_string(OUT);
          EXPECT_EQ(y1.shape(), ref.shape()) << what;
          EXPECT_EQ(differing(y1, y2), 0) << what << ": 1 and 2 threads differ";
          bad += fp16_violations(y1, ref, abs_sum, IN, what);
        }
    EXPECT_EQ(bad, 0) << kernel;
  });
}

}  // namespace
}  // namespace finch::test
