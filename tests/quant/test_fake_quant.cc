// Differentiable fake quantization: the straight-through and LSQ backward rules against their
// formulas (finite differences cannot check an estimator: the derivative of rounding is 0), the
// FakeQuantize module's observer/fake-quant switches, freezing and state dict.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/registry.h"
#include "framework/random.h"
#include "quant/fake_quant.h"
#include "quant/fake_quantize_module.h"
#include "quant/observer.h"
#include "tests/error_text.h"

using namespace finch;
using namespace finch::quant;

namespace {

std::set<std::string>& tested_rules() {
  static std::set<std::string> s;
  return s;
}

// The rules the tests below check (registered at load time, so a single-test ctest run sees them).
const bool kRulesTested = [] {
  tested_rules().insert("fake_quantize");      // StraightThroughPassesGradientInsideTheRangeOnly
  tested_rules().insert("fake_quantize_lsq");  // LsqGradientsFollowEsserEtAl
  tested_rules().insert("qat_lstm_sequence");  // test_qat_lstm.cc: …QuantizedGrid, …StopsWhereHClamps
  tested_rules().insert("qat_gru_sequence");   // test_qat_lstm.cc: GruGradientIsTheFloatCells…
  tested_rules().insert("qat_bert_straight_through");  // test_bert_sim.cc: StraightThroughFormula
  return true;
}();

QParams per_tensor(float scale, int32_t zp, int64_t qmin = -128, int64_t qmax = 127) {
  QParams p;
  p.scale = {scale};
  p.zero_point = {zp};
  p.qmin = qmin;
  p.qmax = qmax;
  return p;
}

}  // namespace

TEST(FakeQuant, StraightThroughPassesGradientInsideTheRangeOnly) {
  // scale 0.1, zp 0, int8: the range is [-12.8, 12.7].
  const std::vector<float> xs = {-20.f, -12.8f, -3.14f, 0.f, 0.05f, 7.3f, 12.7f, 12.76f, 30.f};
  Tensor x = from_vector<float>(xs, {int64_t(xs.size())}).set_requires_grad(true);
  Tensor y = fake_quant(x, per_tensor(0.1f, 0));
  const auto yv = y.to_vector<float>();
  for (size_t i = 0; i < xs.size(); ++i) {
    const float q = std::min(127.f, std::max(-128.f, std::nearbyint(xs[i] / 0.1f)));
    EXPECT_EQ(yv[i], q * 0.1f) << xs[i];
  }
  Generator g(3);
  const Tensor dy = randn({int64_t(xs.size())}, g);
  backward(sum(mul(y, dy)));
  const auto dx = x.grad().to_vector<float>(), d = dy.to_vector<float>();
  for (size_t i = 0; i < xs.size(); ++i) {
    const double code = std::nearbyint(double(xs[i]) / double(0.1f));
    const bool inside = code >= -128 && code <= 127;
    EXPECT_EQ(dx[i], inside ? d[i] : 0.f) << "x = " << xs[i];
  }
}

TEST(FakeQuant, PerChannelStraightThroughUsesEachChannelsRange) {
  QParams p;
  p.axis = 1;
  p.scale = {0.01f, 1.0f};
  p.zero_point = {0, 0};
  p.qmin = -127;
  p.qmax = 127;
  Tensor x = full({3, 2, 2}, 5.0f).set_requires_grad(true);  // 5 is outside channel 0's ±1.27
  backward(sum(fake_quant(x, p)));
  const auto dx = x.grad().to_vector<float>();
  for (int64_t o = 0; o < 3; ++o)
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t i = 0; i < 2; ++i) EXPECT_EQ(dx[size_t((o * 2 + c) * 2 + i)], c == 0 ? 0.f : 1.f);
}

TEST(FakeQuant, LsqGradientsFollowEsserEtAl) {
  Generator g(5);
  const int64_t n = 64;
  Tensor x = mul(randn({n}, g), 2.0).set_requires_grad(true);
  Tensor s = full({1}, 0.05f).set_requires_grad(true);
  const QParams p = per_tensor(0.05f, 3, -8, 7);  // 4-bit affine: plenty of clipping
  Tensor y = fake_quant_lsq(x, s, p);
  const Tensor dy = randn({n}, g);
  backward(sum(mul(y, dy)));
  const auto xv = x.detach().to_vector<float>(), d = dy.to_vector<float>(), dx = x.grad().to_vector<float>();
  double want_ds = 0;
  int clipped = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float u = xv[size_t(i)] / 0.05f;
    const double r = std::nearbyint(u), qz = r + 3;
    const bool inside = qz >= -8 && qz <= 7;
    clipped += !inside;
    EXPECT_EQ(dx[size_t(i)], inside ? d[size_t(i)] : 0.f);
    want_ds += d[size_t(i)] * (inside ? r - double(u) : (qz < -8 ? -8.0 : 7.0) - 3);
  }
  want_ds /= std::sqrt(double(n) * double(7 - 3));
  EXPECT_GT(clipped, 5);
  EXPECT_NEAR(s.grad().to_vector<float>()[0], want_ds, 1e-5 * (1 + std::fabs(want_ds)));
  EXPECT_ERROR_HAS(fake_quant_lsq(x.detach(), full({1}, -1.0f), p), "scales must be positive");
  EXPECT_ERROR_HAS(fake_quant_lsq(x.detach(), full({2}, 1.0f), p), "expected an f32 scale of shape [1]");
}

TEST(FakeQuantize, ObserverAndFakeQuantSwitchFreezeAndState) {
  const QSpec spec{8, true, false, false, -1};
  FakeQuantize fq(make_minmax_observer(spec), 1);
  EXPECT_FALSE(fq.ready());
  EXPECT_ERROR_HAS(fq.qparams(), "has seen no data");
  const Tensor a = from_vector<float>({-1.f, 0.5f, 2.f}, {3});
  const Tensor ya = fq.forward(a);
  ASSERT_TRUE(fq.ready());
  const float scale_a = fq.qparams().scale[0];
  EXPECT_NEAR(scale_a, 3.0f / 255.f, 1e-7);
  EXPECT_NE(ya.to_vector<float>()[1], 0.5f) << "fake-quant is on by default (0.5 is between two levels)";
  fq.enable_fake_quant(false);
  EXPECT_EQ(fq.forward(from_vector<float>({0.3333f}, {1})).to_vector<float>()[0], 0.3333f);
  fq.enable_fake_quant(true);
  fq.freeze();
  fq.forward(from_vector<float>({-10.f, 10.f}, {2}));  // ignored: frozen
  EXPECT_EQ(fq.qparams().scale[0], scale_a);
  // The state dict carries what a resumed run needs.
  const auto sd = fq.state_dict();
  for (const char* k : {"scale", "zero_point", "min_val", "max_val", "initialized"}) EXPECT_TRUE(sd.contains(k)) << k;
  FakeQuantize fresh(make_minmax_observer(spec), 1);
  fresh.load_state_dict(sd);
  EXPECT_TRUE(fresh.ready());
  EXPECT_EQ(fresh.qparams().scale[0], scale_a);
  EXPECT_EQ(fresh.forward(a).to_vector<float>(), ya.to_vector<float>());
}

TEST(FakeQuantize, DebuggerStatisticsOfPureRoundingAreNearOneOverSqrt12) {
  FakeQuantize fq(make_minmax_observer(QSpec{8, true, false, false, -1}), 1);
  Generator g(11);
  const Tensor x = add(mul(rand({20000}, g), 2.0), -1.0);  // uniform in [-1, 1): no clipping
  fq.forward(x);
  fq.collect_errors(true);
  fq.forward(x);
  const auto& e = fq.errors();
  EXPECT_EQ(e.count, 20000);
  const double ratio = std::sqrt(e.mse()) / fq.qparams().scale[0];
  EXPECT_NEAR(ratio, 1.0 / std::sqrt(12.0), 0.01);
  EXPECT_LE(e.max_abs, 0.5 * fq.qparams().scale[0] * (1 + 1e-5));
}

// Every straight-through rule listed in autograd/registry.cc has a test above.
TEST(FakeQuant, EveryStraightThroughRuleIsTested) {
  ASSERT_TRUE(kRulesTested);
  for (const auto& r : autograd::straight_through_rules())
    EXPECT_TRUE(tested_rules().count(r)) << "rule '" << r << "' has no formula test in tests/quant";
}
