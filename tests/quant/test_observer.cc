// Tests for the MinMax and MovingAverage observers: the min/max kernel against its reference on
// every Highway target (shapes, axes, tails, non-finite values), per-tensor and per-channel
// ranges, the moving average, errors, disable/freeze, state round trips and make_observer.
#include <gtest/gtest.h>

#include <hwy/targets.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "tests/hwy_targets.h"
#include "framework/random.h"
#include "quant/minmax.h"
#include "quant/observer.h"
#include "tests/error_text.h"

namespace finch::quant {
namespace {

QSpec per_tensor() { return QSpec{}; }
QSpec per_channel(int64_t axis) {
  QSpec s;
  s.axis = axis;
  return s;
}

// Plain min/max over the channel `axis` of x (any layout), straight from Tensor::get.
std::pair<std::vector<float>, std::vector<float>> brute_minmax(const Tensor& x, int64_t axis) {
  const int64_t C = axis < 0 ? 1 : x.size(axis);
  std::vector<float> mn(size_t(C), std::numeric_limits<float>::infinity()), mx(size_t(C), -mn[0]);
  const std::vector<float> v = x.to_vector<float>();
  for_each_index(x.shape(), [&](int64_t i, const Shape& idx) {
    const size_t c = axis < 0 ? 0 : size_t(idx[size_t(axis)]);
    mn[c] = std::min(mn[c], v[size_t(i)]);
    mx[c] = std::max(mx[c], v[size_t(i)]);
  });
  return {mn, mx};
}

TEST(ChannelMinMax, MatchesReferenceOnEveryTarget) {
  // Row path (inner >= 64 or per-tensor, with multi-segment rows) and column path (short inner),
  // sizes around vector widths, on every compiled target.
  const std::vector<std::array<int64_t, 3>> shapes = {
      {1, 1, 1},  {1, 1, 7},    {1, 1, 16},  {1, 1, 17},   {1, 1, 100003}, {3, 5, 1},  {2, 7, 3},
      {9, 1, 63}, {4, 3, 64},   {2, 3, 65},  {5, 31, 9},   {1, 2049, 1},   {64, 2, 33}, {2, 2, 70000},
      {1, 1, 32767}, {1, 1, 32769}, {300, 17, 1}};
  for (int64_t target : ::finch::test::hwy_targets_to_test()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    uint64_t seed = 1;
    for (const auto& s : shapes) {
      Generator g(seed++);
      const Tensor x = randn({s[0] * s[1] * s[2]}, g);
      const float* p = x.data<float>();
      std::vector<float> mn(static_cast<size_t>(s[1])), mx(mn.size()), rmn(mn.size()), rmx(mn.size());
      ASSERT_TRUE(detail::channel_minmax(p, s[0], s[1], s[2], mn.data(), mx.data()));
      ASSERT_TRUE(detail::reference::channel_minmax(p, s[0], s[1], s[2], rmn.data(), rmx.data()));
      EXPECT_EQ(mn, rmn) << s[0] << "x" << s[1] << "x" << s[2];
      EXPECT_EQ(mx, rmx) << s[0] << "x" << s[1] << "x" << s[2];
      // A non-finite value anywhere (first, middle, last: vector body and tails) is reported.
      const int64_t n = x.numel();
      for (int64_t pos : {int64_t(0), n / 2, n - 1})
        for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity()}) {
          Tensor y = x.clone();
          y.data<float>()[pos] = bad;
          EXPECT_FALSE(detail::channel_minmax(y.data<float>(), s[0], s[1], s[2], mn.data(), mx.data()))
              << s[0] << "x" << s[1] << "x" << s[2] << " at " << pos << " value " << bad;
        }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

// a * x + b elementwise (a fresh f32 tensor).
Tensor affine_map(const Tensor& x, float a, float b) {
  Tensor y = x.contiguous().clone();
  float* p = y.data<float>();
  for (int64_t i = 0; i < y.numel(); ++i) p[i] = a * p[i] + b;
  return y;
}

TEST(MinMaxObserver, PerTensorRunningRange) {
  auto obs = make_minmax_observer(per_tensor());
  EXPECT_FALSE(obs->has_observed());
  EXPECT_EQ(obs->name(), "minmax");
  Generator g(3);
  const Tensor a = randn({4, 5, 6}, g), b = affine_map(randn({100}, g), 3.0f, 1.0f);
  obs->observe(a);
  EXPECT_TRUE(obs->has_observed());
  auto [amn, amx] = brute_minmax(a, -1);
  EXPECT_EQ(obs->range().first, amn);
  EXPECT_EQ(obs->range().second, amx);
  obs->observe(b);
  auto [bmn, bmx] = brute_minmax(b, -1);
  EXPECT_EQ(obs->range().first[0], std::min(amn[0], bmn[0]));
  EXPECT_EQ(obs->range().second[0], std::max(amx[0], bmx[0]));
  // qparams is exactly quant::qparams over the range.
  const QParams p = obs->qparams(), q = qparams(per_tensor(), obs->range().first, obs->range().second);
  EXPECT_EQ(p.scale, q.scale);
  EXPECT_EQ(p.zero_point, q.zero_point);
  EXPECT_EQ(p.axis, -1);
}

TEST(MinMaxObserver, PerChannelEveryAxisAndLayout) {
  Generator g(5);
  const Tensor x = randn({6, 4, 5, 70}, g);  // inner 70 (row path) or short inner (column path)
  for (int64_t axis = 0; axis < 4; ++axis) {
    SCOPED_TRACE(axis);
    auto obs = make_minmax_observer(per_channel(axis));
    obs->observe(x);
    auto [mn, mx] = brute_minmax(x, axis);
    EXPECT_EQ(obs->range().first, mn);
    EXPECT_EQ(obs->range().second, mx);
    const QParams p = obs->qparams();
    EXPECT_EQ(p.axis, axis);
    EXPECT_EQ(p.channels(), x.size(axis));
    // A second, non-contiguous batch with the same channel count along `axis`.
    const Tensor yt = affine_map(randn({70, 5, 4, 6}, g), 2.0f, 0.5f).permute({3, 2, 1, 0});
    ASSERT_FALSE(yt.is_contiguous());
    obs->observe(yt);
    auto [ymn, ymx] = brute_minmax(yt, axis);
    for (size_t c = 0; c < mn.size(); ++c) {
      EXPECT_EQ(obs->range().first[c], std::min(mn[c], ymn[c]));
      EXPECT_EQ(obs->range().second[c], std::max(mx[c], ymx[c]));
    }
  }
}

TEST(MovingAverageObserver, FirstBatchSetsThenAverages) {
  auto obs = make_moving_average_observer(per_channel(0), 0.25f);
  EXPECT_EQ(obs->name(), "moving-average");
  const Tensor a = from_vector<float>({-1, 2, 0, 4}, {2, 2});  // channel 0: [-1, 2], channel 1: [0, 4]
  const Tensor b = from_vector<float>({-5, 6, 1, 8}, {2, 2});  // channel 0: [-5, 6], channel 1: [1, 8]
  obs->observe(a);
  EXPECT_EQ(obs->range().first, (std::vector<float>{-1, 0}));
  EXPECT_EQ(obs->range().second, (std::vector<float>{2, 4}));
  obs->observe(b);
  EXPECT_FLOAT_EQ(obs->range().first[0], -1 + 0.25f * (-5 + 1));
  EXPECT_FLOAT_EQ(obs->range().first[1], 0 + 0.25f * (1 - 0));
  EXPECT_FLOAT_EQ(obs->range().second[0], 2 + 0.25f * (6 - 2));
  EXPECT_FLOAT_EQ(obs->range().second[1], 4 + 0.25f * (8 - 4));
  // The default constant is PyTorch's 0.01.
  auto def = make_moving_average_observer(per_tensor());
  def->observe(from_vector<float>({0, 1}, {2}));
  def->observe(from_vector<float>({-100, 101}, {2}));
  EXPECT_FLOAT_EQ(def->range().first[0], -1.0f);
  EXPECT_FLOAT_EQ(def->range().second[0], 2.0f);
  EXPECT_ERROR_HAS(make_moving_average_observer(per_tensor(), 0.0f), "averaging constant in (0, 1]");
  EXPECT_ERROR_HAS(make_moving_average_observer(per_tensor(), 1.5f), "averaging constant in (0, 1]");
}

TEST(MinMaxObserver, Errors) {
  for (const std::string name : {"minmax", "moving-average"}) {
    SCOPED_TRACE(name);
    auto obs = make_observer(name, per_channel(1));
    EXPECT_ERROR_HAS(obs->qparams(), "saw no data");
    EXPECT_ERROR_HAS(obs->observe(zeros({2, 3}, DType::f64)), "expected an F32 tensor, got F64");
    EXPECT_ERROR_HAS(obs->observe(zeros({2, 0})), "expected a non-empty tensor");
    EXPECT_ERROR_HAS(obs->observe(zeros({4})), "per-channel axis 1 is out of range for a tensor of shape [4]");
    EXPECT_ERROR_HAS(obs->observe(Tensor()), "undefined");
    Tensor nan = zeros({2, 3, 100});
    nan.data<float>()[517] = std::numeric_limits<float>::quiet_NaN();
    EXPECT_ERROR_HAS(obs->observe(nan), "expected finite values, found NaN or Inf");
    Tensor inf = zeros({2, 3});
    inf.data<float>()[5] = -std::numeric_limits<float>::infinity();
    EXPECT_ERROR_HAS(obs->observe(inf), "expected finite values, found NaN or Inf");
    EXPECT_FALSE(obs->has_observed());  // failed calls record nothing
    obs->observe(zeros({2, 3, 4}));
    EXPECT_ERROR_HAS(obs->observe(zeros({2, 5, 4})), "expected 3 channels along axis 1 as in earlier calls, got 5");
    EXPECT_EQ(obs->range().first.size(), 3u);
  }
  QSpec bad;
  bad.bits = 1;
  EXPECT_ERROR_HAS(make_minmax_observer(bad), "expected a bit width between 2 and 16, got 1");
}

TEST(MinMaxObserver, DisableAndFreeze) {
  auto obs = make_minmax_observer(per_tensor());
  obs->set_enabled(false);
  EXPECT_FALSE(obs->enabled());
  obs->observe(from_vector<float>({-3, 3}, {2}));
  EXPECT_FALSE(obs->has_observed());
  obs->set_enabled(true);
  obs->observe(from_vector<float>({-1, 1}, {2}));
  EXPECT_EQ(obs->range().second[0], 1.0f);
  obs->freeze();
  EXPECT_TRUE(obs->frozen());
  obs->set_enabled(true);  // frozen wins over enabled: the qparams never change again
  EXPECT_FALSE(obs->enabled());
  const QParams before = obs->qparams();
  obs->observe(from_vector<float>({-10, 10}, {2}));
  EXPECT_EQ(obs->range().second[0], 1.0f);
  EXPECT_EQ(obs->qparams().scale, before.scale);
  // Even invalid input is ignored while frozen (observe does not look at it).
  obs->observe(zeros({2}, DType::f64));
}

TEST(MinMaxObserver, StateRoundTrip) {
  Generator g(9);
  for (const std::string name : {"minmax", "moving-average"}) {
    SCOPED_TRACE(name);
    auto obs = make_observer(name, per_channel(0));
    // Before any data: empty vectors, and loading them leaves a fresh observer.
    auto empty = obs->state();
    ASSERT_EQ(empty.size(), 2u);
    EXPECT_EQ(empty[0].first, "min_val");
    EXPECT_EQ(empty[1].first, "max_val");
    EXPECT_EQ(empty[0].second.numel(), 0);
    obs->observe(randn({5, 7}, g));
    obs->observe(randn({5, 3}, g));
    auto st = obs->state();
    EXPECT_EQ(st[0].second.shape(), (Shape{5}));
    EXPECT_EQ(st[1].second.dtype(), DType::f32);
    auto fresh = make_observer(name, per_channel(0));
    fresh->load_state(st);
    EXPECT_TRUE(fresh->has_observed());
    EXPECT_EQ(fresh->range(), obs->range());
    EXPECT_EQ(fresh->qparams().scale, obs->qparams().scale);
    EXPECT_EQ(fresh->qparams().zero_point, obs->qparams().zero_point);
    fresh->load_state(empty);
    EXPECT_FALSE(fresh->has_observed());
    // Bad states.
    EXPECT_ERROR_HAS(fresh->load_state({st[0]}), "expected a tensor named \"max_val\"");
    EXPECT_ERROR_HAS(fresh->load_state({st[0], {"max_val", zeros({4})}}), "of the same length, got 5 and 4");
    EXPECT_ERROR_HAS(fresh->load_state({st[0], {"max_val", zeros({5}, DType::f64)}}), "1-D F32 tensor, got F64");
    EXPECT_ERROR_HAS(fresh->load_state({{"min_val", full({5}, 1.0)}, {"max_val", zeros({5})}}),
                     "expected finite min_val <= max_val");
    auto pt = make_observer(name, per_tensor());
    EXPECT_ERROR_HAS(pt->load_state(st), "expected a per-tensor state of shape [1], got [5]");
  }
}

TEST(MakeObserver, NamesAndUnknown) {
  EXPECT_EQ(observer_names(), (std::vector<std::string>{"minmax", "moving-average", "histogram-mse", "percentile",
                                                        "entropy"}));
  for (const auto& n : observer_names()) EXPECT_EQ(make_observer(n, per_tensor())->name(), n);
  EXPECT_ERROR_HAS(make_observer("kl", per_tensor()),
                   "make_observer: unknown observer \"kl\"; expected one of minmax, moving-average, histogram-mse, "
                   "percentile, entropy");
}

}  // namespace
}  // namespace finch::quant
