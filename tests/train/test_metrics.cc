// Classification metrics from plain logits against values worked out by hand, and evaluation
// through a forward callable (the path finch run uses for programs).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "framework/error.h"
#include "tests/train/train_test_util.h"
#include "train/metrics.h"

using namespace finch;
using namespace finch::train;

namespace {

// logits [3, 3]; labels 0, 2, 0. Predictions: 0 (right), 2 (right), 1 (wrong).
Tensor logits3() { return from_vector<float>({2, 1, 0, 0, 0, 3, 1, 2, 0.5f}, {3, 3}); }
Tensor labels3() { return from_vector<int64_t>({0, 2, 0}, {3}); }

}  // namespace

TEST(Metrics, MatchHandComputedValues) {
  ClassificationMetrics m(3, /*keep_logits=*/true);
  m.add(logits3(), labels3());
  const EvalResult r = m.result();
  EXPECT_EQ(r.count, 3);
  EXPECT_DOUBLE_EQ(r.accuracy, 2.0 / 3.0);
  // Cross entropy = log Σ exp(x) − x[label] per row.
  const double l0 = std::log(std::exp(2.0) + std::exp(1.0) + 1.0) - 2.0;
  const double l1 = std::log(2.0 + std::exp(3.0)) - 3.0;
  const double l2 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(0.5)) - 1.0;
  EXPECT_NEAR(r.loss, (l0 + l1 + l2) / 3.0, 1e-6);
  const std::vector<std::vector<int64_t>> confusion = {{1, 1, 0}, {0, 0, 0}, {0, 0, 1}};
  EXPECT_EQ(r.confusion, confusion);
  const auto pc = r.per_class_accuracy();
  EXPECT_DOUBLE_EQ(pc[0], 0.5);
  EXPECT_TRUE(std::isnan(pc[1]));  // no images of class 1
  EXPECT_DOUBLE_EQ(pc[2], 1.0);
  EXPECT_EQ(r.predicted, (std::vector<int64_t>{0, 2, 1}));
  // Confidence = softmax probability of the predicted class.
  EXPECT_NEAR(r.confidence[0], std::exp(2.0) / (std::exp(2.0) + std::exp(1.0) + 1.0), 1e-6);
  EXPECT_NEAR(r.confidence[2], std::exp(2.0) / (std::exp(1.0) + std::exp(2.0) + std::exp(0.5)), 1e-6);
  EXPECT_EQ(r.logits[1], (std::vector<float>{0, 0, 3}));
}

TEST(Metrics, BatchesAccumulate) {
  ClassificationMetrics one(3), two(3);
  one.add(logits3(), labels3());
  two.add(logits3().slice(0, 0, 2), labels3().slice(0, 0, 2));
  two.add(logits3().slice(0, 2, 3), labels3().slice(0, 2, 3));
  EXPECT_NEAR(one.result().loss, two.result().loss, 1e-12);
  EXPECT_EQ(one.result().confusion, two.result().confusion);
}

TEST(Metrics, BadShapesAndLabelsAreErrors) {
  ClassificationMetrics m(3);
  EXPECT_THROW(m.add(from_vector<float>({1, 2}, {1, 2}), from_vector<int64_t>({0}, {1})), Error);
  EXPECT_THROW(m.add(logits3(), from_vector<int64_t>({0, 3, 0}, {3})), Error);
  EXPECT_THROW(ClassificationMetrics(0), Error);
}

TEST(Metrics, MostConfidentMistakesComeFirst) {
  EvalResult r;
  r.labels = {0, 1, 2, 0, 1};
  r.predicted = {1, 1, 0, 2, 0};
  r.confidence = {0.6f, 0.99f, 0.9f, 0.7f, 0.9f};
  EXPECT_EQ(most_confident_mistakes(r, 10), (std::vector<int64_t>{2, 4, 3, 0}));  // 1 is right; ties by index
  EXPECT_EQ(most_confident_mistakes(r, 2), (std::vector<int64_t>{2, 4}));
}

TEST(Metrics, EvaluateRunsAForwardCallableInDatasetOrder) {
  auto data = fixtures::separable_images(37, 4);
  // A "program" that reads the class off the lit row: logits = row sums.
  const Forward rows = [](const Tensor& x) {
    const int64_t b = x.size(0);
    const auto v = x.contiguous().to_vector<float>();
    std::vector<float> out(size_t(b * 3));
    for (int64_t i = 0; i < b; ++i)
      for (int64_t r = 0; r < 3; ++r)
        for (int64_t c = 0; c < 4; ++c) out[size_t(i * 3 + r)] += v[size_t(i * 16 + r * 4 + c)];
    return from_vector<float>(out, {b, 3});
  };
  const EvalResult r = evaluate(rows, data, 8, 3, /*keep_logits=*/true);
  EXPECT_EQ(r.count, 37);
  EXPECT_DOUBLE_EQ(r.accuracy, 1.0);
  for (int64_t i = 0; i < 37; ++i) EXPECT_EQ(r.labels[size_t(i)], data->label(i));
  EXPECT_GE(batch1_latency_ms(rows, *data, 4), 0.0);
  const std::string path = (std::filesystem::temp_directory_path() / "finch_train_pred.csv").string();
  write_predictions_csv(path, r);
  std::ifstream in(path);
  std::string header;
  std::getline(in, header);
  EXPECT_EQ(header, "index,label,predicted,logit_0,logit_1,logit_2");
  std::filesystem::remove(path);
}
