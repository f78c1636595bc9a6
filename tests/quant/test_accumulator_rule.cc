// The accumulator rule (docs/quantization.md §10) at its boundary: inputs crafted so that
// Σ (x − zx)·w + bias is exactly INT32_MAX, INT32_MAX + 1, INT32_MIN and INT32_MIN − 1 run through
// the simulation (quant/integer_sim.h), the reference kernels and the fast kernels on every compiled
// Highway target, which must all give the same codes (the wrapped accumulator, requantized); and
// the loader's bound check refuses exactly the programs whose worst case passes INT32_MAX.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "framework/error.h"
#include "hwy/highway.h"
#include "hwy/targets.h"
#include "kernels/qs8_conv.h"
#include "kernels/qs8_dq_linear.h"
#include "kernels/qs8_dwconv.h"
#include "kernels/reference.h"
#include "kernels/requant.h"
#include "quant/integer_sim.h"
#include "runtime/executor.h"
#include "tests/hwy_targets.h"

namespace finch::quant {
namespace {

constexpr int64_t kI32Max = 2147483647, kI32Min = -kI32Max - 1;
constexpr float kOutScale = 33554432.0f;  // 2^25: the multiplier 2^-25 maps ±2^31 to codes ±64

// Centered inputs d = x − zx in [0, 255] over K taps and weights w with Σ d·w = s (s >= 0): every
// tap but the last has w = ±127 (`sign`), the last w = ±1 and d = s mod 127.
struct Taps {
  std::vector<int32_t> d, w;
};
Taps taps_for(int64_t s, int64_t K, int sign) {
  Taps t{std::vector<int32_t>(size_t(K), 0), std::vector<int32_t>(size_t(K), 127 * sign)};
  t.w.back() = sign;
  t.d.back() = int32_t(s % 127);
  int64_t rem = s / 127;
  for (int64_t k = 0; k + 1 < K; ++k) {
    t.d[size_t(k)] = int32_t(std::min<int64_t>(rem, 255));
    rem -= t.d[size_t(k)];
  }
  EXPECT_EQ(rem, 0) << "K = " << K << " is too short for the sum " << s;
  return t;
}

int32_t wrap(int64_t v) { return int32_t(uint32_t(uint64_t(v))); }

// A GEMM-shaped case: rows r = 0, 1, 2 sum to s_r = 2^B − 1, 2^B, 2^B + 1; output channel 0 has
// weights +127.. and bias 2^31 − 2^B (accumulators INT32_MAX, INT32_MAX + 1, INT32_MAX + 2),
// channel 1 the negated weights and bias (INT32_MIN + 1, INT32_MIN, INT32_MIN − 1).
struct Case {
  DType x_dtype;
  int32_t zx;
  int64_t K, B;
  Tensor x;               // codes [3, K]
  Tensor w;               // i8 [2, K]
  Tensor bias;            // i32 [2]
  std::vector<int32_t> want;  // codes [3, 2]
};

Case make_case(DType x_dtype, int64_t K, int64_t B) {
  Case c{x_dtype, x_dtype == DType::i8 ? -128 : 0, K, B, {}, {}, {}, {}};
  const int64_t bias0 = (int64_t(1) << 31) - (int64_t(1) << B);
  std::vector<int32_t> x(size_t(3 * K)), w(size_t(2 * K));
  for (int64_t r = 0; r < 3; ++r) {
    const int64_t s = (int64_t(1) << B) - 1 + r;
    const Taps t = taps_for(s, K, 1);
    for (int64_t k = 0; k < K; ++k) {
      x[size_t(r * K + k)] = t.d[size_t(k)] + c.zx;
      w[size_t(k)] = t.w[size_t(k)], w[size_t(K + k)] = -t.w[size_t(k)];
    }
    for (int64_t oc = 0; oc < 2; ++oc) {
      const int64_t acc = oc == 0 ? bias0 + s : -bias0 - s;
      const int32_t a = wrap(acc);
      // requantize by 2^-25 with ties up; ±2^31 are exact multiples: ±64
      c.want.push_back(requantize(a, quantize_multipliers({1.0 / kOutScale})[0], 0, -128, 127));
    }
  }
  c.x = from_vector(x, {3, K}).to(x_dtype);
  c.w = from_vector(w, {2, K}).to(DType::i8);
  c.bias = from_vector(std::vector<int32_t>{int32_t(bias0), int32_t(-bias0)}, {2});
  return c;
}

std::vector<FixedPointMultiplier> multipliers() { return quantize_multipliers(requant_multipliers(1.0f, {1.0f, 1.0f}, kOutScale)); }

QParams per_tensor(float s, int32_t z, int64_t lo, int64_t hi) { return QParams{{s}, {z}, -1, lo, hi}; }

// The simulation sees dequantized values: x̂ = (x − zx)·1, w = codes·1, bias in float (2^31 − 2^B
// is exact in f32), output scale 2^25.
std::vector<int32_t> simulate_linear(const Case& c) {
  const int64_t lo = c.x_dtype == DType::u8 ? 0 : -128;
  const QParams in = per_tensor(1.0f, c.zx, lo, lo + 255), wq = per_tensor(1.0f, 0, -127, 127),
                out = per_tensor(kOutScale, 0, -128, 127);
  const Tensor x_hat = add(c.x.to(DType::f32), -double(c.zx));
  const Tensor y = integer_linear(x_hat, in, c.w.to(DType::f32), wq, c.bias.to(DType::f32), out);
  std::vector<int32_t> codes;
  for (float v : y.to_vector<float>()) codes.push_back(int32_t(v / kOutScale));
  return codes;
}

TEST(AccumulatorRule, LinearAtInt32LimitsAgreesEverywhere) {
  const auto targets = test::hwy_targets_to_test();
  ASSERT_FALSE(targets.empty());
  int checked = 0;
  for (DType dt : {DType::i8, DType::u8})
    for (int64_t K : {int64_t(520), int64_t(600), int64_t(1031)}) {
      const Case c = make_case(dt, K, 24);
      // The four limits are really crossed: 64 for INT32_MAX, −64 once it wraps.
      ASSERT_EQ(c.want, (std::vector<int32_t>{64, -64, -64, -64, -64, 64}));
      EXPECT_EQ(simulate_linear(c), c.want) << "simulation, K " << K;
      const Tensor rq = reference::rq_tensor(multipliers());
      const Tensor ref = reference::qlinear(c.x, c.zx, c.w, c.bias, rq, 0, -128, 127, DType::i8);
      EXPECT_EQ(ref.to_vector<int32_t>(), c.want) << "reference, K " << K;
      for (int64_t target : targets) {
        hwy::SetSupportedTargetsForTest(target);
        const kernels::QLinear fast(c.w, c.bias, multipliers(), dt, c.zx, 0, -128, 127, DType::i8);
        EXPECT_EQ(fast.run(c.x).to_vector<int32_t>(), c.want) << hwy::TargetName(target) << " K " << K;
        // The same sums as a 1×1 convolution over three pixels (the conv GEMM and its packing).
        const Tensor x4 = c.x.transpose(0, 1).contiguous().reshape({1, K, 1, 3});
        ops::Conv2dParams p;
        const kernels::QConv2d conv(c.w.reshape({2, K, 1, 1}), c.bias, multipliers(), p, dt, c.zx, 0, -128, 127,
                                    DType::i8);
        const auto got = conv.run(x4).to_vector<int32_t>();  // [1, 2, 1, 3]: channel-major
        for (int64_t r = 0; r < 3; ++r)
          for (int64_t oc = 0; oc < 2; ++oc)
            EXPECT_EQ(got[size_t(oc * 3 + r)], c.want[size_t(r * 2 + oc)]) << hwy::TargetName(target) << " conv";
        ++checked;
      }
      hwy::SetSupportedTargetsForTest(0);
      // The simulated and reference convolutions of the same 1×1 case.
      const Tensor x4 = c.x.transpose(0, 1).contiguous().reshape({1, K, 1, 3});
      const Tensor ref_conv = reference::qconv2d(x4, c.zx, c.w.reshape({2, K, 1, 1}), c.bias,
                                                 reference::rq_tensor(multipliers()), ops::Conv2dParams{}, 0, -128,
                                                 127, DType::i8);
      const int64_t lo = dt == DType::u8 ? 0 : -128;
      const Tensor sim_conv = integer_conv2d(add(x4.to(DType::f32), -double(c.zx)), per_tensor(1.0f, c.zx, lo, lo + 255),
                                             c.w.reshape({2, K, 1, 1}).to(DType::f32), per_tensor(1.0f, 0, -127, 127),
                                             c.bias.to(DType::f32), per_tensor(kOutScale, 0, -128, 127), Conv2dParams{});
      const auto rc = ref_conv.to_vector<int32_t>();
      const auto sc = sim_conv.to_vector<float>();
      for (int64_t r = 0; r < 3; ++r)
        for (int64_t oc = 0; oc < 2; ++oc) {
          EXPECT_EQ(rc[size_t(oc * 3 + r)], c.want[size_t(r * 2 + oc)]) << "reference conv";
          EXPECT_EQ(int32_t(sc[size_t(oc * 3 + r)] / kOutScale), c.want[size_t(r * 2 + oc)]) << "simulated conv";
        }
    }
  EXPECT_EQ(checked, 6 * int(targets.size()));
}

// Depthwise 3×3 (9 taps, the channel's window): sums near 2^17 fit 9 taps (8 · 255 · 127 + 126).
TEST(AccumulatorRule, DepthwiseAtInt32LimitsAgreesEverywhere) {
  const auto targets = test::hwy_targets_to_test();
  for (DType dt : {DType::i8, DType::u8}) {
    const Case c = make_case(dt, 9, 17);
    ASSERT_EQ(c.want, (std::vector<int32_t>{64, -64, -64, -64, -64, 64}));
    // Channel ch = 2r + oc: the input plane 3×3 is row r's taps, the weights oc's row.
    std::vector<float> x, w, b;
    for (int64_t r = 0; r < 3; ++r)
      for (int64_t oc = 0; oc < 2; ++oc) {
        for (int64_t k = 0; k < 9; ++k) x.push_back(float(c.x.to_vector<int32_t>()[size_t(r * 9 + k)]));
        for (int64_t k = 0; k < 9; ++k) w.push_back(float(c.w.to_vector<int32_t>()[size_t(oc * 9 + k)]));
        b.push_back(float(c.bias.to_vector<int32_t>()[size_t(oc)]));
      }
    const Tensor xt = from_vector(x, {1, 6, 3, 3}).to(dt), wt = from_vector(w, {6, 1, 3, 3}).to(DType::i8),
                 bt = from_vector(b, {6}).to(DType::i32);
    ops::Conv2dParams p;
    p.groups = 6;
    const auto m = quantize_multipliers(requant_multipliers(1.0f, std::vector<float>(6, 1.0f), kOutScale));
    const Tensor ref = reference::qconv2d(xt, c.zx, wt, bt, reference::rq_tensor(m), p, 0, -128, 127, DType::i8);
    EXPECT_EQ(ref.to_vector<int32_t>(), c.want);
    for (int64_t target : targets) {
      hwy::SetSupportedTargetsForTest(target);
      const kernels::QDepthwiseConv2d dw(wt, bt, m, p, dt, c.zx, 0, -128, 127, DType::i8);
      EXPECT_EQ(dw.run(xt).to_vector<int32_t>(), c.want) << hwy::TargetName(target);
    }
    hwy::SetSupportedTargetsForTest(0);
  }
}

// dq_linear has no bias in its accumulator: x all 1.0 quantizes to 127 with zero point −128
// (the range [0, 1]), so K = 66400 taps of 255·127 pass INT32_MAX and wrap to a negative sum; the
// fast kernel (which no longer hands long rows to the reference) must wrap as the reference does.
TEST(AccumulatorRule, DynamicLinearWrapsLikeItsReference) {
  const int64_t K = 66400;
  ASSERT_GT(255 * 127 * K, kI32Max);
  const Tensor xt = full({1, K}, 1.0), wt = full({1, K}, 127.0, DType::i8);
  const std::vector<float> sw = {1.0f};
  const Tensor ref = reference::dq_linear(xt, wt, sw, Tensor(), "none");
  EXPECT_LT(ref.to_vector<float>()[0], 0.0f) << "the accumulator wrapped";
  for (int64_t target : test::hwy_targets_to_test()) {
    hwy::SetSupportedTargetsForTest(target);
    const kernels::QDynamicLinear fast(wt, sw, Tensor(), "none");
    EXPECT_EQ(fast.run(xt).to_vector<float>(), ref.to_vector<float>()) << hwy::TargetName(target);
  }
  hwy::SetSupportedTargetsForTest(0);
}

// A hand-made qlinear program: K taps of 127 against i8 inputs with zero point −128 (|x − zx| up
// to 255) and a bias that puts the worst case exactly at INT32_MAX loads; one more is refused.
runtime::Graph bound_program(int64_t K, int64_t bias) {
  runtime::Graph g;
  const runtime::QuantInfo xq{{1.0f}, {-128}, -1, -128, 127}, wq{{1.0f}, {0}, -1, -127, 127},
      yq{{kOutScale}, {0}, -1, -128, 127};
  const int32_t x = g.add_value({"x", {1, K}, DType::i8, xq, {}});
  const int32_t w = g.add_value({"fc.weight", {1, K}, DType::i8, wq, full({1, K}, 127.0, DType::i8)});
  const int32_t b =
      g.add_value({"fc.bias", {1}, DType::i32, std::nullopt, from_vector(std::vector<int32_t>{int32_t(bias)}, {1})});
  const int32_t y = g.add_value({"fc.out", {1, 1}, DType::i8, yq, {}});
  g.inputs = {x};
  g.outputs = {y};
  g.nodes.push_back({"qlinear", "fc", {x, w, b, -1}, {y}, {{"qmin", -128}, {"qmax", 127}}});
  return g;
}

TEST(AccumulatorRule, LoaderRefusesAProgramWhoseWorstCasePassesInt32Max) {
  const int64_t K = 64, worst_sum = 255 * 127 * K;
  EXPECT_NO_THROW(runtime::Program(bound_program(K, kI32Max - worst_sum), "at the bound"));
  EXPECT_NO_THROW(runtime::Program(bound_program(K, -(kI32Max - worst_sum)), "at the bound"));
  try {
    runtime::Program(bound_program(K, kI32Max - worst_sum + 1), "one past");
    ADD_FAILURE() << "a program one past the bound loaded";
  } catch (const Error& e) {
    const std::string s = e.what();
    EXPECT_NE(s.find("node 'fc' (qlinear)"), std::string::npos) << s;
    EXPECT_NE(s.find("= 2147483648"), std::string::npos) << s;
  }
  EXPECT_THROW(runtime::Program(bound_program(K, kI32Min), "a huge negative bias"), Error);
  // A u8 input with zero point 0 reaches |x − zx| = 255 too; zero point 128 only 128.
  runtime::Graph g = bound_program(K, kI32Max - 128 * 127 * K);
  g.values[0].dtype = DType::u8, g.values[0].quant = runtime::QuantInfo{{1.0f}, {128}, -1, 0, 255};
  EXPECT_NO_THROW(runtime::Program(g, "u8 at the bound"));
  g.values[0].quant->zero_point = {129};
  EXPECT_THROW(runtime::Program(g, "u8 with zero point 129 (up to 129)"), Error);
}

}  // namespace
}  // namespace finch::quant
