// The sequence-task metrics against scikit-learn (tests/golden/make_metrics_goldens.py): macro
// precision/recall/F1, balanced accuracy, Cohen's kappa and MSE/MAE in normalized and original
// units; one-logit binary models scored as two-class logits; the binary and regression losses.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "framework/error.h"
#include "tests/golden/golden.h"
#include "train/losses.h"
#include "train/metrics.h"

using namespace finch;
using namespace finch::train;

namespace {

nlohmann::json golden() {
  std::ifstream f(test::golden_path("metrics_sklearn.json"));
  EXPECT_TRUE(f.good()) << test::golden_path("metrics_sklearn.json");
  return nlohmann::json::parse(f);
}

// null in the golden is sklearn's NaN.
void expect_same(double got, const nlohmann::json& want, const std::string& what) {
  if (want.is_null()) {
    EXPECT_TRUE(std::isnan(got)) << what << ": expected NaN, got " << got;
  } else {
    EXPECT_NEAR(got, want.get<double>(), 1e-12) << what;
  }
}

}  // namespace

TEST(SeriesMetrics, ClassificationScoresMatchScikitLearn) {
  const nlohmann::json g = golden();
  ASSERT_GE(g["classification"].size(), 8u);
  int idx = 0;
  for (const auto& c : g["classification"]) {
    const std::string where = "case " + std::to_string(idx++);
    const auto k = c["k"].get<int64_t>();
    // Build the confusion matrix the way evaluate() does, through ClassificationMetrics, from
    // logits whose argmax is the golden prediction; it must equal sklearn's confusion_matrix.
    const auto y = c["y_true"].get<std::vector<int64_t>>();
    const auto p = c["y_pred"].get<std::vector<int64_t>>();
    std::vector<float> logits(y.size() * size_t(k), 0.0f);
    for (size_t i = 0; i < y.size(); ++i) logits[i * size_t(k) + size_t(p[i])] = 1.0f;
    ClassificationMetrics m(k);
    m.add(from_vector<float>(logits, {int64_t(y.size()), k}), from_vector<int64_t>(y, {int64_t(y.size())}));
    const EvalResult r = m.result();
    ASSERT_EQ(r.confusion, c["confusion"].get<std::vector<std::vector<int64_t>>>()) << where;
    const ClassificationScores s = classification_scores(r.confusion);
    expect_same(s.accuracy, c["accuracy"], where + " accuracy");
    expect_same(r.accuracy, c["accuracy"], where + " EvalResult accuracy");
    expect_same(s.balanced_accuracy, c["balanced_accuracy"], where + " balanced accuracy");
    expect_same(s.macro_precision, c["macro_precision"], where + " macro precision");
    expect_same(s.macro_recall, c["macro_recall"], where + " macro recall");
    expect_same(s.macro_f1, c["macro_f1"], where + " macro F1");
    expect_same(s.cohen_kappa, c["cohen_kappa"], where + " kappa");
    for (int64_t j = 0; j < k; ++j) {
      expect_same(s.precision[size_t(j)], c["precision"][size_t(j)], where + " precision " + std::to_string(j));
      expect_same(s.recall[size_t(j)], c["recall"][size_t(j)], where + " recall " + std::to_string(j));
      expect_same(s.f1[size_t(j)], c["f1"][size_t(j)], where + " f1 " + std::to_string(j));
    }
  }
}

TEST(SeriesMetrics, HandWorkedScores) {
  // truth 0: 3 images (2 right, 1 called 1); truth 1: 1 image (right). Predicted 0: 2, 1: 2.
  const ClassificationScores s = classification_scores({{2, 1}, {0, 1}});
  EXPECT_DOUBLE_EQ(s.accuracy, 0.75);
  EXPECT_DOUBLE_EQ(s.precision[0], 1.0);
  EXPECT_DOUBLE_EQ(s.precision[1], 0.5);
  EXPECT_DOUBLE_EQ(s.recall[0], 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.balanced_accuracy, (2.0 / 3.0 + 1.0) / 2.0);
  // p_o = 3/4, p_e = (3·2 + 1·2)/16 = 1/2, kappa = (3/4 − 1/2)/(1/2) = 1/2.
  EXPECT_DOUBLE_EQ(s.cohen_kappa, 0.5);
  // An empty matrix has no scores at all.
  EXPECT_TRUE(std::isnan(classification_scores({{0, 0}, {0, 0}}).macro_f1));
}

TEST(SeriesMetrics, RegressionMatchesScikitLearnInBothUnits) {
  const nlohmann::json g = golden();
  for (const auto& c : g["regression"]) {
    const auto shape = c["shape"].get<std::vector<int64_t>>();
    const auto t = c["y_true"].get<std::vector<float>>();
    const auto y = c["y_pred"].get<std::vector<float>>();
    RegressionMetrics m(c["std"].get<std::vector<double>>());
    // Two batches, outputs flattened per sample (a forecaster's [B, H] against targets [B, H]
    // or [B, H, 1] is the same values).
    const int64_t per = int64_t(t.size()) / shape[0];
    const int64_t half = shape[0] / 2;
    auto part = [&](const std::vector<float>& v, int64_t a, int64_t b, bool flat) {
      std::vector<float> s(v.begin() + a * per, v.begin() + b * per);
      Shape sh = shape;
      sh[0] = b - a;
      return flat ? from_vector<float>(s, {b - a, per}) : from_vector<float>(s, sh);
    };
    m.add(part(y, 0, half, true), part(t, 0, half, false));
    m.add(part(y, half, shape[0], true), part(t, half, shape[0], false));
    const EvalResult r = m.result();
    EXPECT_TRUE(r.regression);
    EXPECT_TRUE(std::isnan(r.accuracy));
    EXPECT_EQ(r.count, shape[0]);
    // The values went through float32, so compare to float rounding.
    EXPECT_NEAR(r.mse, c["mse"].get<double>(), 1e-6 * c["mse"].get<double>());
    EXPECT_NEAR(r.loss, r.mse, 0);
    EXPECT_NEAR(r.mae, c["mae"].get<double>(), 1e-6 * c["mae"].get<double>());
    EXPECT_NEAR(r.rmse, std::sqrt(c["mse"].get<double>()), 1e-6);
    EXPECT_NEAR(r.mse_original, c["mse_original"].get<double>(), 1e-6 * c["mse_original"].get<double>());
    EXPECT_NEAR(r.mae_original, c["mae_original"].get<double>(), 1e-6 * c["mae_original"].get<double>());
  }
  // Without a normalization the original-unit errors are unknown, not made up.
  RegressionMetrics plain;
  plain.add(from_vector<float>({1, 2}, {2, 1}), from_vector<float>({0, 2}, {2, 1}));
  EXPECT_DOUBLE_EQ(plain.result().mse, 0.5);
  EXPECT_TRUE(std::isnan(plain.result().rmse_original));
}

TEST(SeriesMetrics, ForecastErrorsScalePerTargetVariable) {
  // targets [B=1, K=2, H=2] all 0, outputs all 1; std 2 for variable 0 and 10 for variable 1.
  RegressionMetrics m({2.0, 10.0});
  m.add(from_vector<float>({1, 1, 1, 1}, {1, 2, 2}), from_vector<float>({0, 0, 0, 0}, {1, 2, 2}));
  const EvalResult r = m.result();
  EXPECT_DOUBLE_EQ(r.mse, 1.0);
  EXPECT_DOUBLE_EQ(r.mse_original, (4.0 + 4.0 + 100.0 + 100.0) / 4.0);
  EXPECT_DOUBLE_EQ(r.mae_original, 6.0);
}

TEST(SeriesMetrics, RegressionRejectsBadShapesAndScales) {
  RegressionMetrics m;
  EXPECT_THROW(m.add(from_vector<float>({1, 2, 3}, {3}), from_vector<float>({1, 2}, {2})), Error);
  EXPECT_THROW(RegressionMetrics({0.0}), Error);
  EXPECT_THROW(RegressionMetrics({std::numeric_limits<double>::quiet_NaN()}), Error);
  RegressionMetrics three({1.0, 2.0, 3.0});
  EXPECT_THROW(three.add(from_vector<float>({1, 2}, {1, 2}), from_vector<float>({1, 2}, {1, 2})), Error);
}

TEST(SeriesMetrics, OneLogitIsScoredAsTwoClassLogits) {
  const Tensor z = from_vector<float>({2.0f, -1.0f, 0.5f, -3.0f}, {4, 1});
  const Tensor y = from_vector<int64_t>({1, 1, 0, 0}, {4});
  ClassificationMetrics m(2);
  m.add(z, y);
  const EvalResult r = m.result();
  EXPECT_EQ(r.predicted, (std::vector<int64_t>{1, 0, 1, 0}));
  EXPECT_DOUBLE_EQ(r.accuracy, 0.5);
  // The loss is BCE-with-logits: mean of log(1 + e^{-z}) for y = 1 and log(1 + e^{z}) for y = 0.
  const double want = (std::log1p(std::exp(-2.0)) + std::log1p(std::exp(1.0)) + std::log1p(std::exp(0.5)) +
                       std::log1p(std::exp(-3.0))) / 4.0;
  EXPECT_NEAR(r.loss, want, 1e-6);
  EXPECT_NEAR(r.confidence[0], 1.0 / (1.0 + std::exp(-2.0)), 1e-6);
  // And the training loss agrees with it.
  EXPECT_NEAR(classification_loss()(z, y).item(), want, 1e-6);
  EXPECT_NEAR(classification_loss()(reshape(z, {4}), y).item(), want, 1e-6);
  // A one-logit model with a label other than 0/1 is an error, not a silent clamp.
  EXPECT_THROW(classification_loss()(z, from_vector<int64_t>({1, 2, 0, 0}, {4})), Error);
}

TEST(SeriesMetrics, BinaryLossGradientAndSmoothing) {
  Tensor z = from_vector<float>({0.3f, -0.7f}, {2, 1});
  z.set_requires_grad(true);
  const Tensor y = from_vector<int64_t>({1, 0}, {2});
  Tensor loss = classification_loss(0.2)(z, y);
  // Smoothed targets 0.9 and 0.1; d/dz mean BCE = (sigmoid(z) − t)/2.
  backward(loss);
  const auto g = z.grad().to_vector<float>();
  const double s0 = 1 / (1 + std::exp(-0.3)), s1 = 1 / (1 + std::exp(0.7));
  EXPECT_NEAR(g[0], (s0 - 0.9) / 2, 1e-6);
  EXPECT_NEAR(g[1], (s1 - 0.1) / 2, 1e-6);
}

TEST(SeriesMetrics, RegressionLossIsMseOverEveryValue) {
  const Tensor out = from_vector<float>({1, 2, 3, 4}, {2, 2});
  const Tensor t = from_vector<float>({1, 0, 3, 1}, {2, 2, 1});
  EXPECT_NEAR(regression_loss()(out, t).item(), (4.0 + 9.0) / 4.0, 1e-6);
  EXPECT_THROW(regression_loss()(from_vector<float>({1, 2, 3}, {3}), t), Error);
}
