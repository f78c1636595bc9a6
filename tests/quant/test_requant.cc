// Integer requantization (kernels/requant.h) against exact references: the fixed-point multiplier
// round trip, the single rounding shift (ties toward +infinity), saturation, the int8 + int8 add,
// bias quantization, fused-activation bounds, and the worked example of docs/quantization.md.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "framework/random.h"
#include "framework/tensor.h"
#include "kernels/qparams.h"
#include "kernels/quantize.h"
#include "kernels/requant.h"
#include "tests/error_text.h"

namespace finch::quant {
namespace {

constexpr int32_t kI32Max = std::numeric_limits<int32_t>::max();
constexpr int32_t kI32Min = std::numeric_limits<int32_t>::min();

double log_uniform(Generator& gen, double lo, double hi) {
  return std::exp(std::log(lo) + (std::log(hi) - std::log(lo)) * gen.uniform_double());
}

int64_t clamp64(long double v, int32_t qmin, int32_t qmax) {
  if (v < qmin) return qmin;
  if (v > qmax) return qmax;
  return int64_t(v);
}

// clamp(z + floor(acc · m_q + 1/2)) with m_q = multiplier · 2^-(31 + shift), all exact in long
// double (64-bit mantissa: acc · multiplier has at most 62 bits, the scaling is exact), the +1/2
// decided on the exact fractional part.
int64_t requantize_reference(int32_t acc, const FixedPointMultiplier& m, int32_t z, int32_t qmin, int32_t qmax) {
  const long double v = std::ldexp((long double)acc * (long double)m.multiplier, -m.total_shift());
  const long double fl = std::floor(v);
  const long double r = fl + ((v - fl) >= 0.5L ? 1 : 0);
  return clamp64((long double)z + r, qmin, qmax);
}

TEST(Requant, MultiplierRoundTrip) {
  Generator gen(21);
  for (int t = 0; t < 20000; ++t) {
    const double m = log_uniform(gen, 1e-6, 100.0);
    const FixedPointMultiplier f = quantize_multiplier(m);
    ASSERT_GE(f.multiplier, int32_t(1) << 30) << m;
    ASSERT_LE(int64_t(f.multiplier), (int64_t(1) << 31) - 1) << m;
    ASSERT_LT(std::abs(f.value() - m) / m, std::ldexp(1.0, -30)) << m;
    ASSERT_EQ(f.shift < 0, m >= 1.0) << m;
  }
}

TEST(Requant, MultiplierEdges) {
  for (int k = -30; k <= 20; ++k) {  // exact powers of two: mantissa 2^30
    const FixedPointMultiplier f = quantize_multiplier(std::ldexp(1.0, k));
    EXPECT_EQ(f.multiplier, int32_t(1) << 30);
    EXPECT_EQ(f.shift, -(k + 1));
    EXPECT_EQ(f.value(), std::ldexp(1.0, k));
  }
  // Just below 1: the mantissa rounds up to 2^31 and is halved to 2^30 with one less shift.
  for (double m : {std::nextafter(1.0, 0.0), 1.0 - std::ldexp(1.0, -33)}) {
    const FixedPointMultiplier f = quantize_multiplier(m);
    EXPECT_EQ(f.multiplier, int32_t(1) << 30);
    EXPECT_EQ(f.shift, -1);
    EXPECT_EQ(f.value(), 1.0);
  }
  const FixedPointMultiplier below = quantize_multiplier(1.0 - std::ldexp(1.0, -31));
  EXPECT_EQ(below.multiplier, kI32Max);
  EXPECT_EQ(below.shift, 0);
  const FixedPointMultiplier zero = quantize_multiplier(0.0);
  EXPECT_EQ(zero.multiplier, 0);
  EXPECT_EQ(requantize(123456, zero, 7, -128, 127), 7);
  EXPECT_ERROR_HAS(quantize_multiplier(-0.5), "finite multiplier >= 0");
  EXPECT_ERROR_HAS(quantize_multiplier(std::nan("")), "finite multiplier >= 0");
  EXPECT_ERROR_HAS(quantize_multiplier(INFINITY), "finite multiplier >= 0");
}

TEST(Requant, RoundingShift) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max(), kMin = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(rounding_shift(3, 1), 2);    // 1.5 -> 2
  EXPECT_EQ(rounding_shift(-3, 1), -1);  // -1.5 -> -1 (toward +infinity)
  EXPECT_EQ(rounding_shift(5, 1), 3);    // 2.5 -> 3 (not to even)
  EXPECT_EQ(rounding_shift(-5, 1), -2);
  EXPECT_EQ(rounding_shift(-6, 2), -1);  // -1.5 -> -1
  EXPECT_EQ(rounding_shift(-7, 2), -2);  // -1.75 -> -2
  EXPECT_EQ(rounding_shift(kMax, 1), int64_t(1) << 62);
  EXPECT_EQ(rounding_shift(kMin, 1), -(int64_t(1) << 62));
  EXPECT_EQ(rounding_shift(kMin, 63), -1);  // floor(-1 + 1/2)
  EXPECT_EQ(rounding_shift(kMin, 64), 0);
  EXPECT_EQ(rounding_shift(kMax, 100), 0);
  EXPECT_EQ(rounding_shift(12345, 0), 12345);
  EXPECT_EQ(rounding_shift(3, -4), 48);
  EXPECT_EQ(rounding_shift(int64_t(1) << 40, -30), kMax);
  EXPECT_EQ(rounding_shift(-(int64_t(1) << 40), -30), kMin);
  EXPECT_EQ(rounding_shift(1, -70), kMax);
  EXPECT_EQ(rounding_shift(0, -70), 0);
  // Against __int128 floor((v + 2^(n-1)) / 2^n) on random values.
  Generator gen(22);
  for (int t = 0; t < 20000; ++t) {
    const int64_t v = int64_t(gen.next_u64()) >> gen.below(60);
    const int n = 1 + int(gen.below(62));
    const __int128 want = (__int128(v) + (__int128(1) << (n - 1))) >> n;  // arithmetic: floor
    ASSERT_EQ(rounding_shift(v, n), int64_t(want)) << v << " " << n;
  }
}

TEST(Requant, RequantizeMatchesExactReference) {
  Generator gen(23);
  for (int t = 0; t < 50000; ++t) {
    const double m = t % 7 == 0 ? log_uniform(gen, 1e-9, 1e4) : log_uniform(gen, 1e-6, 100.0);
    const FixedPointMultiplier f = quantize_multiplier(m);
    const int bits = 1 + int(gen.below(31));  // |acc| < 2^bits
    const int32_t acc = int32_t(int64_t(gen.next_u64() >> (64 - bits)) * (gen.below(2) ? 1 : -1));
    const int32_t z = int32_t(gen.below(256)) - 128;
    const int32_t qmin = t % 3 == 0 ? 0 : -128, qmax = t % 3 == 0 ? 255 : 127;
    const int32_t zz = std::clamp(z, qmin, qmax);
    ASSERT_EQ(requantize(acc, f, zz, qmin, qmax), requantize_reference(acc, f, zz, qmin, qmax))
        << "acc " << acc << " m " << m;
    // And within half a step (plus the multiplier's 2^-31 relative error) of the real product.
    const double real = double(acc) * m + zz;
    if (real > qmin + 1 && real < qmax - 1) {
      ASSERT_LE(std::abs(requantize(acc, f, zz, qmin, qmax) - real), 0.5 + std::abs(double(acc) * m) * 1e-9 + 1e-12);
    }
  }
  // Extreme accumulators.
  for (int32_t acc : {kI32Max, kI32Min, kI32Min + 1, -1, 1, 0})
    for (double m : {1e-9, 3.7e-5, 0.5, 0.999, 1.0, 77.0, 1e6, std::ldexp(1.0, 40)}) {
      const FixedPointMultiplier f = quantize_multiplier(m);
      ASSERT_EQ(requantize(acc, f, 3, -128, 127), requantize_reference(acc, f, 3, -128, 127)) << acc << " " << m;
    }
}

TEST(Requant, TiesRoundTowardPlusInfinity) {
  // m = 0.5 exactly: acc / 2 has ties at every odd acc.
  const FixedPointMultiplier half = quantize_multiplier(0.5);
  EXPECT_EQ(half.multiplier, int32_t(1) << 30);
  EXPECT_EQ(half.shift, 0);
  EXPECT_EQ(requantize(3, half, 0, -128, 127), 2);    // 1.5 -> 2
  EXPECT_EQ(requantize(-3, half, 0, -128, 127), -1);  // -1.5 -> -1
  EXPECT_EQ(requantize(5, half, 0, -128, 127), 3);    // 2.5 -> 3
  EXPECT_EQ(requantize(-5, half, 0, -128, 127), -2);  // -2.5 -> -2
  EXPECT_EQ(requantize(-1, half, 10, -128, 127), 10);  // -0.5 -> 0
  // m = 3/8 = 0.375: acc = 4 gives 1.5, acc = -4 gives -1.5.
  const FixedPointMultiplier f = quantize_multiplier(0.375);
  EXPECT_EQ(f.value(), 0.375);
  EXPECT_EQ(requantize(4, f, 0, -128, 127), 2);
  EXPECT_EQ(requantize(-4, f, 0, -128, 127), -1);
  EXPECT_EQ(requantize(-12, f, 0, -128, 127), -4);  // -4.5 -> -4
}

TEST(Requant, Saturation) {
  const FixedPointMultiplier big = quantize_multiplier(100.0), huge = quantize_multiplier(std::ldexp(1.0, 40));
  EXPECT_EQ(requantize(kI32Max, big, 0, -128, 127), 127);
  EXPECT_EQ(requantize(kI32Min, big, 0, -128, 127), -128);
  EXPECT_EQ(requantize(kI32Max, huge, 0, 0, 255), 255);
  EXPECT_EQ(requantize(kI32Min, huge, 0, 0, 255), 0);
  EXPECT_EQ(requantize(1, huge, -5, -128, 127), 127);
  EXPECT_EQ(requantize(0, huge, -5, -128, 127), -5);
  EXPECT_EQ(requantize(2, big, 0, -128, 127), 127);   // 200
  EXPECT_EQ(requantize(-2, big, 0, -128, 127), -128);  // -200
  EXPECT_EQ(requantize(1, big, 27, -128, 127), 127);   // 127 exactly
  EXPECT_EQ(requantize(1, big, 28, -128, 127), 127);   // 128 saturates
  // Array versions equal the scalar one, for int8 and uint8 outputs.
  Generator gen(24);
  std::vector<int32_t> acc(333);
  for (auto& a : acc) a = int32_t(gen.next_u64() >> 48) - 32768;
  const FixedPointMultiplier f = quantize_multiplier(0.0123);
  std::vector<int8_t> o8(acc.size());
  std::vector<uint8_t> ou(acc.size());
  requantize(acc.data(), int64_t(acc.size()), f, -3, -128, 127, o8.data());
  requantize(acc.data(), int64_t(acc.size()), f, 128, 0, 255, ou.data());
  for (size_t i = 0; i < acc.size(); ++i) {
    ASSERT_EQ(o8[i], requantize(acc[i], f, -3, -128, 127));
    ASSERT_EQ(ou[i], requantize(acc[i], f, 128, 0, 255));
  }
  // Per channel: acc [rows, C], one multiplier per column.
  const std::vector<FixedPointMultiplier> fc = quantize_multipliers(requant_multipliers(0.02f, {0.01f, 0.003f, 0.2f}, 0.05f));
  std::vector<int8_t> oc(acc.size());
  requantize_per_channel(acc.data(), int64_t(acc.size()) / 3, fc, 1, -127, 127, oc.data());
  for (size_t i = 0; i < acc.size(); ++i) ASSERT_EQ(oc[i], requantize(acc[i], fc[i % 3], 1, -127, 127));
}

TEST(Requant, Multipliers) {
  const std::vector<float> sw = {0.01f, 0.0031f, 1.5f};
  const std::vector<double> m = requant_multipliers(0.05f, sw, 0.02f);
  ASSERT_EQ(m.size(), 3u);
  for (size_t c = 0; c < 3; ++c) EXPECT_EQ(m[c], double(0.05f) * double(sw[c]) / double(0.02f));
  EXPECT_ERROR_HAS(requant_multipliers(0.0f, sw, 1.0f), "positive finite input scale");
  EXPECT_ERROR_HAS(requant_multipliers(1.0f, {}, 1.0f), "at least one weight scale");
  EXPECT_ERROR_HAS(requant_multipliers(1.0f, {-1.0f}, 1.0f), "weight scale");
}

// Exact reference of the add with the multipliers the implementation keeps: the sum of two
// dyadic rationals, rounded half up, in __int128.
int64_t add_reference(int32_t qa, int32_t za, int32_t qb, int32_t zb, const AddRequant& r, int32_t z, int32_t qmin,
                      int32_t qmax) {
  const int na = r.total_shift - r.a_left, nb = r.total_shift - r.b_left;  // each operand's own shift
  const int N = std::max(na, nb);
  __int128 num = __int128(qa - za) * r.a_multiplier * (__int128(1) << (N - na)) +
                 __int128(qb - zb) * r.b_multiplier * (__int128(1) << (N - nb));
  long double v = std::ldexp((long double)num, -N);  // exact: num has < 64 significant bits
  const long double fl = std::floor(v);
  return clamp64((long double)z + fl + ((v - fl) >= 0.5L ? 1 : 0), qmin, qmax);
}

TEST(Requant, AddMatchesExactReference) {
  Generator gen(25);
  for (int t = 0; t < 3000; ++t) {
    const float s_out = float(log_uniform(gen, 1e-3, 1.0));
    // Mostly comparable scales; sometimes ratios far apart (the alignment cap).
    const double spread = t % 5 == 0 ? 1e6 : 8.0;
    const float s_a = float(s_out * log_uniform(gen, 1 / spread, spread)),
                s_b = float(s_out * log_uniform(gen, 1 / spread, spread));
    const AddRequant r = make_add_requant(s_a, s_b, s_out);
    ASSERT_LE(r.a_left, kMaxAddAlign);
    ASSERT_LE(r.b_left, kMaxAddAlign);
    const bool u8 = t % 2 == 0;
    const int32_t qmin = u8 ? 0 : -128, qmax = u8 ? 255 : 127;
    const int32_t za = qmin + int32_t(gen.below(256)), zb = qmin + int32_t(gen.below(256)),
                  z = qmin + int32_t(gen.below(256));
    const FixedPointMultiplier fa = quantize_multiplier(double(s_a) / s_out),
                               fb = quantize_multiplier(double(s_b) / s_out);
    const bool capped = std::abs(fa.total_shift() - fb.total_shift()) > kMaxAddAlign;
    for (int k = 0; k < 50; ++k) {
      const int32_t qa = qmin + int32_t(gen.below(256)), qb = qmin + int32_t(gen.below(256));
      const int32_t out = requantize_add(qa, za, qb, zb, r, z, qmin, qmax);
      ASSERT_EQ(out, add_reference(qa, za, qb, zb, r, z, qmin, qmax));
      // Uncapped, the kept multipliers are the operands' own: the rational sum of the two.
      if (!capped) {
        ASSERT_EQ(r.a_multiplier, fa.multiplier);
        ASSERT_EQ(r.b_multiplier, fb.multiplier);
      }
      // Against the real arithmetic: within half a step plus the multipliers' tiny error.
      const double real = z + double(s_a) / s_out * (qa - za) + double(s_b) / s_out * (qb - zb);
      if (real > qmin + 1 && real < qmax - 1) {
        ASSERT_LE(std::abs(out - real), 0.5 + 1e-5) << s_a << " " << s_b;
      }
    }
  }
  // Array versions.
  const AddRequant r = make_add_requant(0.02f, 0.03f, 0.04f);
  std::vector<int8_t> a(101), b(101), o(101);
  std::vector<uint8_t> au(101), bu(101), ou(101);
  for (int i = 0; i < 101; ++i) {
    a[size_t(i)] = int8_t(i * 7 % 256 - 128);
    b[size_t(i)] = int8_t(i * 13 % 256 - 128);
    au[size_t(i)] = uint8_t(i * 5 % 256);
    bu[size_t(i)] = uint8_t(i * 11 % 256);
  }
  requantize_add(a.data(), 5, b.data(), -3, 101, r, 0, -128, 127, o.data());
  requantize_add(au.data(), 130, bu.data(), 120, 101, r, 128, 0, 255, ou.data());
  for (size_t i = 0; i < 101; ++i) {
    ASSERT_EQ(o[i], requantize_add(a[i], 5, b[i], -3, r, 0, -128, 127));
    ASSERT_EQ(ou[i], requantize_add(au[i], 130, bu[i], 120, r, 128, 0, 255));
  }
  EXPECT_ERROR_HAS(make_add_requant(0.0f, 1.0f, 1.0f), "positive finite scale of the first input");
}

TEST(Requant, AddAlignmentCap) {
  // s_a / s_out = 2^-40 (total shift 70) against s_b / s_out = 1 (total shift 30): 40 apart.
  // b is shifted left by the cap, 15; a's multiplier 2^30 is rounded right by the other 25 bits.
  const AddRequant r = make_add_requant(std::ldexp(1.0f, -40), 1.0f, 1.0f);
  EXPECT_EQ(r.b_left, kMaxAddAlign);
  EXPECT_EQ(r.a_left, 0);
  EXPECT_EQ(r.total_shift, 30 + kMaxAddAlign);
  EXPECT_EQ(r.b_multiplier, int32_t(1) << 30);
  EXPECT_EQ(r.a_multiplier, 1 << 5);
  EXPECT_EQ(requantize_add(127, 0, 100, 0, r, 0, -128, 127), 100);
  EXPECT_EQ(requantize_add(-128, 0, -100, 0, r, 0, -128, 127), -100);
}

TEST(Requant, Bias) {
  EXPECT_EQ(quantize_bias(1.0f, 0.5f, 0.25f), 8);
  EXPECT_EQ(quantize_bias(0.3125f, 0.5f, 0.25f), 2);    // 2.5 -> 2 (half to even)
  EXPECT_EQ(quantize_bias(0.4375f, 0.5f, 0.25f), 4);    // 3.5 -> 4
  EXPECT_EQ(quantize_bias(-0.3125f, 0.5f, 0.25f), -2);  // -2.5 -> -2
  EXPECT_EQ(quantize_bias(1e10f, 1e-3f, 1e-3f), kI32Max);
  EXPECT_EQ(quantize_bias(-1e10f, 1e-3f, 1e-3f), kI32Min);
  EXPECT_EQ(quantize_bias(0.1f, 0.05f, 0.01f), 200);
  // Against the double formula on random values.
  Generator gen(26);
  for (int t = 0; t < 1000; ++t) {
    const float b = 4.0f * (gen.uniform() - 0.5f), si = 0.001f + gen.uniform() * 0.1f, sw = 0.0001f + gen.uniform() * 0.01f;
    EXPECT_EQ(quantize_bias(b, si, sw), int32_t(std::nearbyint(double(b) / (double(si) * double(sw)))));
  }
  EXPECT_EQ(quantize_bias({1.0f, -1.0f}, 0.5f, {0.25f}), (std::vector<int32_t>{8, -8}));
  EXPECT_EQ(quantize_bias({1.0f, -1.0f}, 0.5f, {0.25f, 0.125f}), (std::vector<int32_t>{8, -16}));
  EXPECT_ERROR_HAS(quantize_bias({1.0f, 2.0f, 3.0f}, 0.5f, {0.25f, 0.125f}), "one weight scale or one per bias entry");
  EXPECT_ERROR_HAS(quantize_bias(NAN, 0.5f, 0.25f), "finite bias");
  EXPECT_ERROR_HAS(quantize_bias(1.0f, 0.0f, 0.25f), "input scale");
}

TEST(Requant, FusedActivationRange) {
  const QRange r{-128, 127};
  EXPECT_EQ(fused_activation_range("none", 0.1f, -5, r).qmin, -128);
  EXPECT_EQ(fused_activation_range("relu", 0.1f, -5, r).qmin, -5);
  EXPECT_EQ(fused_activation_range("relu", 0.1f, -5, r).qmax, 127);
  const QRange r6 = fused_activation_range("relu6", 0.05f, -128, r);
  EXPECT_EQ(r6.qmin, -128);
  EXPECT_EQ(r6.qmax, -8);  // round(6 / 0.05) - 128
  // The bound is quantize()'s code of 6.0.
  QParams p;
  p.scale = {0.05f};
  p.zero_point = {-128};
  EXPECT_EQ(quantize(from_vector(std::vector<float>{6.0f}, {1}), p).to_vector<int64_t>()[0], r6.qmax);
  EXPECT_EQ(fused_activation_range("relu6", 0.02f, 5, r).qmax, 127);  // 6.0 is above the range
  EXPECT_ERROR_HAS(fused_activation_range("gelu", 0.1f, 0, r), "none, relu or relu6");
}

// The worked example of docs/quantization.md, number for number.
TEST(Requant, DocWorkedExample) {
  // Input: int8 affine, s_in = 0.05, z_in = -10.
  QParams pin;
  pin.scale = {0.05f};
  pin.zero_point = {-10};
  const Tensor x = from_vector(std::vector<float>{0.5f, -0.25f, 1.0f, 0.0f}, {4});
  const std::vector<int64_t> qx = quantize(x, pin).to_vector<int64_t>();
  EXPECT_EQ(qx, (std::vector<int64_t>{0, -15, 10, -10}));
  // Weights: int8 symmetric narrow, one output channel, max|w| = 1.27 -> s_w = 0.01.
  const std::vector<float> w = {1.27f, -0.64f, 0.33f, 0.9f};
  const QParams pw = qparams(QSpec{8, true, true, true, 0}, {-0.64f}, {1.27f});
  EXPECT_EQ(pw.scale[0], 0.01f);
  const std::vector<int64_t> qw = quantize(from_vector(w, {1, 4}), pw).to_vector<int64_t>();
  EXPECT_EQ(qw, (std::vector<int64_t>{127, -64, 33, 90}));
  // Bias 0.1 -> round(0.1 / (0.05 * 0.01)) = 200.
  const int32_t bq = quantize_bias(0.1f, pin.scale[0], pw.scale[0]);
  EXPECT_EQ(bq, 200);
  int32_t acc = bq;
  for (size_t i = 0; i < 4; ++i) acc += int32_t(qx[i] - pin.zero_point[0]) * int32_t(qw[i]);
  EXPECT_EQ(acc, 2450);  // 10·127 + (−5)·(−64) + 20·33 + 0·90 + 200
  // Output: int8 affine s_out = 0.02, z_out = 5. m = 0.05·0.01/0.02 from the f32 scales.
  const std::vector<double> m = requant_multipliers(pin.scale[0], pw.scale, 0.02f);
  EXPECT_EQ(m[0], 0.02500000037252903);
  const FixedPointMultiplier f = quantize_multiplier(m[0]);
  EXPECT_EQ(f.multiplier, 1717986944);
  EXPECT_EQ(f.shift, 5);
  // 2450 · 1717986944 = 4209067012800; rounding shift by 36: 61.25 -> 61; + 5.
  EXPECT_EQ(int64_t(acc) * f.multiplier, 4209068012800);
  EXPECT_EQ(rounding_shift(4209068012800, 36), 61);
  EXPECT_EQ(requantize(acc, f, 5, -128, 127), 66);
  const QRange relu = fused_activation_range("relu", 0.02f, 5, QRange{-128, 127});
  EXPECT_EQ(relu.qmin, 5);
  // Residual add: a = 66 (s 0.02, z 5) plus b = −20 (s 0.03, z −3) into s 0.04, z 0:
  // 0.5·61 + 0.75·(−17) = 17.75 -> 18. Ties: 0.5·1 + 0.75·0 = 0.5 -> 1, 0.5·(−1) = −0.5 -> 0.
  const AddRequant r = make_add_requant(0.02f, 0.03f, 0.04f);
  EXPECT_EQ(r.a_multiplier, 1 << 30);
  EXPECT_EQ(r.b_multiplier, 3 << 29);
  EXPECT_EQ(r.total_shift, 31);
  EXPECT_EQ(requantize_add(66, 5, -20, -3, r, 0, -128, 127), 18);
  EXPECT_EQ(requantize_add(6, 5, -3, -3, r, 0, -128, 127), 1);
  EXPECT_EQ(requantize_add(4, 5, -3, -3, r, 0, -128, 127), 0);
}

}  // namespace
}  // namespace finch::quant
