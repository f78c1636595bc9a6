// Tests for the Histogram observer and its pure pieces: re-binning and folding on exact small
// histograms, the MSE / percentile / entropy ranges on known distributions (Gaussian with outliers,
// uniform, N(0, 1)), the real fake-quant MSE of each choice, re-binning across batches, errors,
// disable/freeze and state round trips.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>

#include "framework/random.h"
#include "quant/histogram.h"
#include "quant/observer.h"
#include "tests/error_text.h"

namespace finch::quant {
namespace {

using detail::Histogram;

QSpec affine8() { return QSpec{}; }
QSpec symmetric8() {
  QSpec s;
  s.symmetric = true;
  return s;
}

Tensor map(const Tensor& x, float a, float b) {
  Tensor y = x.contiguous().clone();
  float* p = y.data<float>();
  for (int64_t i = 0; i < y.numel(); ++i) p[i] = a * p[i] + b;
  return y;
}

Tensor concat(const Tensor& a, const Tensor& b) {
  std::vector<float> v = a.to_vector<float>(), w = b.to_vector<float>();
  v.insert(v.end(), w.begin(), w.end());
  return from_vector(v, {int64_t(v.size())});
}

// Mean squared error of quantizing x with per-tensor p, by hand: q = clamp(round(x / s) + z),
// x^ = (q - z) s.
double fake_quant_mse(const Tensor& x, const QParams& p) {
  const float s = p.scale[0];
  const double z = p.zero_point[0];
  const float* v = x.data<float>();
  double sum = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double q = std::clamp(double(std::nearbyint(v[i] / s)) + z, double(p.qmin), double(p.qmax));
    const double d = (q - z) * double(s) - double(v[i]);
    sum += d * d;
  }
  return sum / double(x.numel());
}

TEST(Histogram, RebinFoldQuantileExact) {
  const Histogram h{0, 4, {1, 2, 3, 4}};
  const Histogram r = detail::rebin(h, 0, 8, 4);  // new bins of width 2: [1+2, 3+4, 0, 0]
  EXPECT_EQ(r.counts, (std::vector<double>{3, 7, 0, 0}));
  const Histogram s = detail::rebin(h, -2, 4, 3);  // width 2 from -2: [0, 3, 7]
  EXPECT_EQ(s.counts, (std::vector<double>{0, 3, 7}));
  const Histogram t = detail::rebin(h, 0, 5, 4);  // width 1.25: proportional split
  EXPECT_DOUBLE_EQ(t.total(), 10);
  EXPECT_DOUBLE_EQ(t.counts[0], 1 + 2 * 0.25);
  EXPECT_DOUBLE_EQ(t.counts[1], 2 * 0.75 + 3 * 0.5);
  EXPECT_DOUBLE_EQ(t.counts[2], 3 * 0.5 + 4 * 0.75);
  EXPECT_DOUBLE_EQ(t.counts[3], 4 * 0.25);
  const Histogram point{3, 3, {5, 0, 0, 0}};  // all values equal 3
  EXPECT_EQ(detail::rebin(point, 0, 4, 4).counts, (std::vector<double>{0, 0, 0, 5}));
  // |x| over [-2, 2] with 4 bins [a, b, c, d] -> over [0, 2]: [b + c, a + d] spread on 4 bins.
  const Histogram f = detail::fold_abs(Histogram{-2, 2, {1, 2, 3, 4}});
  EXPECT_EQ(f.lo, 0);
  EXPECT_EQ(f.hi, 2);
  EXPECT_DOUBLE_EQ(f.counts[0] + f.counts[1], 5);
  EXPECT_DOUBLE_EQ(f.counts[2] + f.counts[3], 5);
  EXPECT_DOUBLE_EQ(f.counts[0], 2.5);  // bins [-1,0) and [0,1) each split evenly in two halves
  // Quantiles interpolate inside bins.
  EXPECT_DOUBLE_EQ(detail::quantile(h, 0.0), 0.0);
  EXPECT_DOUBLE_EQ(detail::quantile(h, 0.1), 1.0);   // mass 1 in the first bin
  EXPECT_DOUBLE_EQ(detail::quantile(h, 0.15), 1.25);  // half of the 0.05 * 10 into bin 1's 2
  EXPECT_DOUBLE_EQ(detail::quantile(h, 1.0), 4.0);
}

TEST(Histogram, AddBinsEveryValueOnce) {
  Generator g(1);
  const Tensor x = map(rand({200001}, g), 10, -3);  // U(-3, 7), more than one parallel block
  Histogram h{-3, 7, std::vector<double>(100, 0.0)};
  detail::histogram_add(h, x.data<float>(), x.numel());
  EXPECT_EQ(h.total(), 200001);
  std::vector<double> brute(100, 0);
  for (float v : x.to_vector<float>()) brute[size_t(std::clamp(int(std::floor((double(v) + 3) * 10.0)), 0, 99))] += 1;
  EXPECT_EQ(h.counts, brute);
}

// 2^16 N(0, 1) values and two outliers inside [-6, 9].
Tensor gaussian_with_outliers_small(Generator& g) {
  Tensor x = randn({1 << 16}, g);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::clamp(x.data<float>()[i], -5.9f, 5.9f);
  x.data<float>()[3] = 8.5f;
  x.data<float>()[77] = -5.5f;
  return x;
}

// TensorRT's entropy calibration written the slow, obvious way (as NVIDIA's pytorch-quantization
// does it): for each i build P and Q explicitly and sum p log(p / q). Bin 0 (the zero spike) takes
// bin 1's count first.
double entropy_threshold_slow(Histogram h, int64_t levels) {
  const int64_t B = h.bins();
  if (B > 1) h.counts[0] = h.counts[1];
  double best = std::numeric_limits<double>::infinity();
  int64_t best_i = B;
  for (int64_t i = std::min(levels, B); i <= B; ++i) {
    std::vector<double> P(h.counts.begin(), h.counts.begin() + i);
    for (int64_t k = i; k < B; ++k) P[size_t(i - 1)] += h.counts[size_t(k)];
    const int64_t G = std::min(levels, i);
    std::vector<double> gsum(size_t(G), 0), gnz(size_t(G), 0);
    for (int64_t k = 0; k < i; ++k) {
      gsum[size_t(k * G / i)] += h.counts[size_t(k)];
      gnz[size_t(k * G / i)] += P[size_t(k)] != 0;
    }
    std::vector<double> Q(size_t(i), 0);
    for (int64_t k = 0; k < i; ++k)
      if (P[size_t(k)] != 0) Q[size_t(k)] = gsum[size_t(k * G / i)] / gnz[size_t(k * G / i)];
    double ps = 0, qs = 0, kl = 0;
    for (int64_t k = 0; k < i; ++k) ps += P[size_t(k)], qs += Q[size_t(k)];
    if (qs == 0) continue;
    for (int64_t k = 0; k < i; ++k) {
      const double p = P[size_t(k)] / ps, q = Q[size_t(k)] / qs;
      if (p == 0) continue;
      kl += q == 0 ? std::numeric_limits<double>::infinity() : p * std::log(p / q);
    }
    if (kl < best) best = kl, best_i = i;
  }
  return h.lo + double(best_i) * h.width();
}

TEST(Histogram, EntropyMatchesTheDirectAlgorithm) {
  Generator g(23);
  for (int trial = 0; trial < 6; ++trial) {
    const int64_t B = 64 + 97 * trial, levels = trial % 2 ? 16 : 8;
    Histogram h{0, 1, std::vector<double>(size_t(B), 0.0)};
    // A decaying |x|-like histogram with empty bins and a sparse tail.
    for (int64_t k = 0; k < B; ++k) {
      const double u = g.uniform();
      h.counts[size_t(k)] = u < 0.15 ? 0.0 : std::floor(1000 * std::exp(-6.0 * double(k) / double(B)) * u);
    }
    h.counts[size_t(B - 1)] = 3;
    SCOPED_TRACE(B);
    EXPECT_NEAR(detail::entropy_threshold(h, levels), entropy_threshold_slow(h, levels), 1e-12);
  }
}

TEST(Histogram, MseSearchFindsTheModelMinimum) {
  // The strided search (2048 bins) lands on the exhaustive minimum of the same error model, to
  // within a hair of its value.
  Generator g(29);
  const Tensor x = gaussian_with_outliers_small(g);
  Histogram h{-6, 9, std::vector<double>(2048, 0.0)};
  detail::histogram_add(h, x.data<float>(), x.numel());
  const QSpec spec = affine8();
  const double w = h.width();
  // The documented error, from cumulative sums over bins: n, n c, n c^2 below each edge.
  std::vector<double> n0(2049, 0), n1(2049, 0), n2(2049, 0);
  for (int64_t k = 0; k < 2048; ++k) {
    const double c = h.lo + (double(k) + 0.5) * w, n = h.counts[size_t(k)];
    n0[size_t(k + 1)] = n0[size_t(k)] + n;
    n1[size_t(k + 1)] = n1[size_t(k)] + n * c;
    n2[size_t(k + 1)] = n2[size_t(k)] + n * c * c;
  }
  auto model = [&](int64_t i, int64_t j) {  // clip below edge i and above edge j
    const double lo = std::min(h.lo + double(i) * w, 0.0), hi = std::max(h.lo + double(j) * w, 0.0);
    const double s = (hi - lo) / 255;
    const double below = lo * lo * n0[size_t(i)] - 2 * lo * n1[size_t(i)] + n2[size_t(i)];
    const double a0 = n0[2048] - n0[size_t(j)], a1 = n1[2048] - n1[size_t(j)], a2 = n2[2048] - n2[size_t(j)];
    return (n0[size_t(j)] - n0[size_t(i)]) * s * s / 12 + below + (hi * hi * a0 - 2 * hi * a1 + a2);
  };
  const auto [lo, hi] = detail::mse_range(h, spec);
  const int64_t li = std::llround((lo - h.lo) / w), hj = std::llround((hi - h.lo) / w);
  EXPECT_NEAR(h.lo + double(li) * w, lo, 1e-4);  // the result is on bin edges
  EXPECT_NEAR(h.lo + double(hj) * w, hi, 1e-4);
  double best = std::numeric_limits<double>::infinity();
  for (int64_t i = 0; h.lo + double(i) * w <= 0; ++i)
    for (int64_t j = 2048; h.lo + double(j) * w >= 0; --j) best = std::min(best, model(i, j));
  std::printf("  mse_range [%.4f, %.4f]: model error %.6g, exhaustive minimum %.6g\n", lo, hi, model(li, hj), best);
  EXPECT_LE(model(li, hj), best * 1.001);
}

// N(0, 1) values plus three huge outliers (two above, one below).
Tensor gaussian_with_outliers(int64_t n, uint64_t seed) {
  Generator g(seed);
  Tensor x = randn({n}, g);
  float* p = x.data<float>();
  p[10] = 60, p[n / 2] = 80, p[n - 7] = -70;
  return x;
}

TEST(HistogramObserver, OutliersAreClippedAndMseIsBest) {
  // MSE trades rounding noise (N delta^2 / 12, delta = range / levels) against the squared clip
  // distance of the outliers: at 8 bits three outliers in 2^21 values still pull its upper end to
  // about a third of theirs (measured 27.6 affine, 15.2 symmetric: the true optimum, as the
  // fake-quant MSE confirms); at 4 bits (15 levels) it clips down to the body of the Gaussian.
  const Tensor x = gaussian_with_outliers(int64_t(1) << 21, 7);
  for (int bits : {8, 4})
    for (QSpec spec : {affine8(), symmetric8()}) {
      spec.bits = bits;
      SCOPED_TRACE(spec.str());
      const float bound = bits == 8 ? 30.0f : 6.0f;  // the nearest outlier is at 60
      auto minmax = make_minmax_observer(spec);
      minmax->observe(x);
      EXPECT_EQ(minmax->range().second[0], 80.0f);
      EXPECT_EQ(minmax->range().first[0], -70.0f);
      std::map<std::string, double> mse;
      mse["minmax"] = fake_quant_mse(x, minmax->qparams());
      for (const std::string name : {"histogram-mse", "percentile", "entropy"}) {
        auto obs = make_observer(name, spec);
        obs->observe(x);
        const float lo = obs->range().first[0], hi = obs->range().second[0];
        mse[name] = fake_quant_mse(x, obs->qparams());
        std::printf("  %-28s %-14s range [%8.3f, %8.3f]  fake-quant MSE %.4g (minmax %.4g)\n", spec.str().c_str(),
                    name.c_str(), lo, hi, mse[name], mse["minmax"]);
        EXPECT_GT(hi, 1.0f) << name;  // keeps the body of the Gaussian
        EXPECT_LT(hi, bound) << name;  // clips the outliers
        EXPECT_LT(lo, -1.0f) << name;
        EXPECT_GT(lo, -bound) << name;
      }
      EXPECT_LE(mse["histogram-mse"], mse["minmax"]);
      EXPECT_LE(mse["histogram-mse"], mse["percentile"]);
      EXPECT_LE(mse["histogram-mse"], mse["entropy"]);
      EXPECT_LT(mse["histogram-mse"], 0.5 * mse["minmax"]);
    }
}

TEST(HistogramObserver, UniformDataKeepsTheWholeRange) {
  Generator g(11);
  const Tensor x = map(rand({1 << 18}, g), 4, -1);  // U(-1, 3)
  const Tensor relu = rand({1 << 18}, g);            // U(0, 1), like post-ReLU activations
  for (const QSpec& spec : {affine8(), symmetric8()})
    for (const std::string name : {"histogram-mse", "percentile", "entropy"}) {
      SCOPED_TRACE(spec.str() + " " + name);
      auto obs = make_observer(name, spec);
      obs->observe(x);
      EXPECT_NEAR(obs->range().first[0], -1.0f, 0.04 * 4);
      EXPECT_NEAR(obs->range().second[0], 3.0f, 0.03 * 4);
      auto r = make_observer(name, spec);
      r->observe(relu);
      EXPECT_GE(r->range().first[0], 0.0f);
      EXPECT_NEAR(r->range().second[0], 1.0f, 0.03);
    }
}

TEST(HistogramObserver, EntropyThresholdOnStandardNormal) {
  // TensorRT's KL calibration on N(0, 1) at 8 bits: measured 4.61 here (max |x| of 2^20 samples
  // is ~5), 3.67 at 4 bits; the band allows for seeds and bin counts.
  Generator g(13);
  const Tensor x = randn({1 << 20}, g);
  auto obs = make_observer("entropy", symmetric8());
  obs->observe(x);
  const float t = obs->range().second[0];
  auto mm = make_minmax_observer(symmetric8());
  mm->observe(x);
  std::printf("  entropy threshold on N(0,1), 2^20 values: %.3f (max |x| %.3f)\n", t,
              std::max(-mm->range().first[0], mm->range().second[0]));
  EXPECT_GT(t, 2.5f);
  EXPECT_LT(t, 5.0f);
  EXPECT_NEAR(obs->range().first[0], -t, 1e-6f);
  // Fewer bits, fewer levels: a lower threshold (less range, less rounding noise per level).
  QSpec four = symmetric8();
  four.bits = 4;
  auto obs4 = make_observer("entropy", four);
  obs4->observe(x);
  std::printf("  entropy threshold at 4 bits: %.3f\n", obs4->range().second[0]);
  EXPECT_LT(obs4->range().second[0], t);
}

TEST(HistogramObserver, EntropyIgnoresTheZeroSpikeOfReluOutputs) {
  // ReLU of N(0, 1): half the values are exactly 0. Left in bin 0, that spike dominated P and the
  // KL search clipped the positive half to a sliver (ResNet-20's post-add ReLUs lost 67 pp).
  // With bin 0 at bin 1's count and all 256 affine levels on [0, t], t lands in the tail.
  Generator g(21);
  Tensor x = randn({1 << 20}, g);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::max(x.data<float>()[i], 0.0f);
  auto obs = make_observer("entropy", affine8());
  obs->observe(x);
  const float t = obs->range().second[0];
  std::printf("  entropy threshold on relu(N(0,1)): %.3f\n", t);
  EXPECT_EQ(obs->range().first[0], 0.0f);
  EXPECT_GT(t, 2.5f);  // the 99.4th percentile of the positive half
  EXPECT_LE(t, 5.5f);
}

TEST(HistogramObserver, RebinningAcrossBatchesMatchesOneBatch) {
  Generator g(17);
  const Tensor a = randn({1 << 17}, g);                   // roughly [-4.5, 4.5]
  const Tensor b = map(randn({1 << 17}, g), 3.0f, 2.0f);  // wider on both sides
  const Tensor ab = concat(a, b);
  for (const std::string name : {"histogram-mse", "percentile", "entropy"}) {
    SCOPED_TRACE(name);
    auto two = make_observer(name, affine8()), one = make_observer(name, affine8());
    two->observe(a);
    two->observe(b);
    one->observe(ab);
    const auto st = two->state();
    double total = 0;
    for (float c : st[2].second.to_vector<float>()) total += c;
    EXPECT_NEAR(total, double(ab.numel()), 1e-3);
    EXPECT_EQ(st[0].second.item(), one->state()[0].second.item());  // min_val: the true extremes
    EXPECT_EQ(st[1].second.item(), one->state()[1].second.item());
    const double width = st[1].second.item() - st[0].second.item();
    EXPECT_NEAR(two->range().first[0], one->range().first[0], 0.01 * width);
    EXPECT_NEAR(two->range().second[0], one->range().second[0], 0.01 * width);
  }
  // Many small extensions (a range creeping outwards) keep the count and a sensible range.
  auto obs = make_observer("percentile", affine8());
  int64_t n = 0;
  for (int k = 1; k <= 40; ++k) {
    const Tensor x = map(randn({5000}, g), 1.0f + 0.05f * float(k), 0.0f);
    obs->observe(x);
    n += x.numel();
  }
  double total = 0;
  for (float c : obs->state()[2].second.to_vector<float>()) total += c;
  EXPECT_NEAR(total, double(n), 1e-2);
  EXPECT_GT(obs->range().second[0], 2.0f);
  EXPECT_LT(obs->range().second[0], 12.0f);
}

TEST(HistogramObserver, ConstantAndOneSidedData) {
  auto obs = make_observer("histogram-mse", affine8());
  obs->observe(full({100}, 2.0));
  EXPECT_EQ(obs->range().first[0], 2.0f);
  EXPECT_EQ(obs->range().second[0], 2.0f);
  EXPECT_NEAR(obs->qparams().scale[0], 2.0f / 255, 1e-7);
  obs->observe(full({10}, -1.0));  // extends a zero-width histogram
  // The MSE search works at bin resolution (values at bin centers): within a bin of the spikes.
  EXPECT_NEAR(obs->range().first[0], -1.0f, 3.0 / 2048);
  EXPECT_NEAR(obs->range().second[0], 2.0f, 3.0 / 2048);
  auto pct = make_observer("percentile", affine8());
  pct->observe(full({100}, 2.0));
  pct->observe(full({10}, -1.0));
  EXPECT_NEAR(pct->range().first[0], -1.0f, 3.0 / 2048);
  EXPECT_NEAR(pct->range().second[0], 2.0f, 3.0 / 2048);
  for (const std::string name : {"histogram-mse", "percentile", "entropy"}) {
    auto z = make_observer(name, symmetric8());
    z->observe(zeros({16}));
    EXPECT_EQ(z->qparams().scale[0], kMinScale) << name;
  }
}

TEST(HistogramObserver, ErrorsAndNames) {
  QSpec pc = affine8();
  pc.axis = 0;
  EXPECT_ERROR_HAS(make_histogram_observer(pc, "mse"), "only per-tensor statistics are supported");
  EXPECT_ERROR_HAS(make_observer("entropy", pc), "per-channel");
  EXPECT_ERROR_HAS(make_histogram_observer(affine8(), "kl"), "unknown method \"kl\"; expected one of mse, percentile, entropy");
  EXPECT_ERROR_HAS(make_histogram_observer(affine8(), "mse", 4), "expected 8 to 1048576 bins, got 4");
  EXPECT_ERROR_HAS(make_histogram_observer(affine8(), "percentile", 2048, 40), "percentile in (50, 100]");
  EXPECT_EQ(make_histogram_observer(affine8(), "mse")->name(), "histogram-mse");
  EXPECT_EQ(make_histogram_observer(affine8(), "percentile")->name(), "percentile");
  EXPECT_EQ(make_histogram_observer(affine8(), "entropy")->name(), "entropy");
  auto obs = make_observer("percentile", affine8());
  EXPECT_ERROR_HAS(obs->qparams(), "saw no data");
  EXPECT_TRUE(obs->range().first.empty());
  EXPECT_ERROR_HAS(obs->observe(zeros({3}, DType::i32)), "expected an F32 tensor, got I32");
  EXPECT_ERROR_HAS(obs->observe(zeros({0})), "non-empty");
  Tensor nan = zeros({70});
  nan.data<float>()[69] = std::nanf("");
  EXPECT_ERROR_HAS(obs->observe(nan), "NaN or Inf");
  EXPECT_FALSE(obs->has_observed());
}

TEST(HistogramObserver, DisableFreezeAndStateRoundTrip) {
  Generator g(19);
  for (const std::string name : {"histogram-mse", "percentile", "entropy"}) {
    SCOPED_TRACE(name);
    auto obs = make_histogram_observer(symmetric8(), name == "histogram-mse" ? "mse" : name, 512, 99.9);
    const auto empty = obs->state();
    ASSERT_EQ(empty.size(), 3u);
    EXPECT_EQ(empty[2].first, "histogram");
    EXPECT_EQ(empty[2].second.shape(), (Shape{512}));
    EXPECT_EQ(empty[0].second.numel(), 0);
    obs->set_enabled(false);
    obs->observe(randn({100}, g));
    EXPECT_FALSE(obs->has_observed());
    obs->set_enabled(true);
    obs->observe(randn({5000}, g));
    obs->observe(map(randn({5000}, g), 2, 0));
    auto st = obs->state();
    EXPECT_EQ(st[0].second.shape(), (Shape{1}));
    auto fresh = make_histogram_observer(symmetric8(), name == "histogram-mse" ? "mse" : name, 512, 99.9);
    fresh->load_state(st);
    EXPECT_EQ(fresh->range(), obs->range());
    EXPECT_EQ(fresh->qparams().scale, obs->qparams().scale);
    // Loaded state keeps accumulating like the original (the checkpoint holds f32 counts, the
    // observer double ones: the chosen ranges agree to within a bin).
    const Tensor more = map(randn({3000}, g), 4, 1);
    fresh->observe(more);
    obs->observe(more);
    const double bin = (obs->state()[1].second.item() - obs->state()[0].second.item()) / 512;
    EXPECT_NEAR(fresh->range().first[0], obs->range().first[0], bin);
    EXPECT_NEAR(fresh->range().second[0], obs->range().second[0], bin);
    fresh->load_state(empty);
    EXPECT_FALSE(fresh->has_observed());
    EXPECT_ERROR_HAS(fresh->load_state({st[0], st[1], {"histogram", zeros({100})}}),
                     "expected \"histogram\" of shape [512], got [100]");
    EXPECT_ERROR_HAS(fresh->load_state({st[0], st[1]}), "expected a tensor named \"histogram\"");
    EXPECT_ERROR_HAS(fresh->load_state({st[0], st[1], {"histogram", full({512}, -1.0)}}), "non-negative");
    obs->freeze();
    const auto before = obs->range();
    obs->observe(map(randn({100}, g), 50, 0));
    EXPECT_EQ(obs->range(), before);
  }
}

}  // namespace
}  // namespace finch::quant
