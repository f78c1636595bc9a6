// Classification metrics over plain logits (see metrics.h): no autograd, shared by training
// evaluation and program evaluation.
#include "train/metrics.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>

#include "data/dataloader.h"
#include "framework/error.h"
#include "framework/random.h"
#include "framework/results.h"
#include "ops/loss.h"
#include "ops/reduce.h"

namespace finch::train {

std::vector<double> EvalResult::per_class_accuracy() const {
  std::vector<double> acc;
  for (size_t k = 0; k < confusion.size(); ++k) {
    int64_t total = 0;
    for (int64_t v : confusion[k]) total += v;
    acc.push_back(total ? double(confusion[k][k]) / double(total) : std::numeric_limits<double>::quiet_NaN());
  }
  return acc;
}

ClassificationMetrics::ClassificationMetrics(int64_t num_classes, bool keep_logits)
    : k_(num_classes), keep_logits_(keep_logits) {
  if (num_classes <= 0) fail("ClassificationMetrics: expected a positive number of classes, found ", num_classes);
  r_.confusion.assign(size_t(k_), std::vector<int64_t>(size_t(k_), 0));
}

void ClassificationMetrics::add(const Tensor& logits, const Tensor& labels) {
  if (logits.dim() != 2 || logits.size(1) != k_)
    fail("evaluate: expected logits [B, ", k_, "], got ", shape_str(logits.shape()));
  if (labels.dim() != 1 || labels.size(0) != logits.size(0))
    fail("evaluate: expected labels [", logits.size(0), "], got ", shape_str(labels.shape()));
  const auto y = labels.to_vector<int64_t>();
  for (int64_t v : y)
    if (v < 0 || v >= k_) fail("evaluate: label ", v, " is outside 0..", k_ - 1);
  // The same fused kernel the autograd loss runs, so training and program losses agree.
  loss_sum_ += ops::cross_entropy(logits, labels, Reduction::sum, -100, 0.0).loss.item();
  const auto p = ops::argmax(logits, 1).to_vector<int64_t>();
  const auto lv = logits.to(DType::f32).contiguous().to_vector<float>();
  for (size_t i = 0; i < y.size(); ++i) {
    const float* row = lv.data() + int64_t(i) * k_;
    // softmax(row)[p] = 1 / Σ_c exp(row[c] - row[p]); row[p] is the maximum, so no overflow.
    double denom = 0;
    for (int64_t c = 0; c < k_; ++c) denom += std::exp(double(row[c]) - double(row[p[i]]));
    correct_ += p[i] == y[i];
    ++r_.confusion[size_t(y[i])][size_t(p[i])];
    r_.labels.push_back(y[i]);
    r_.predicted.push_back(p[i]);
    r_.confidence.push_back(float(1.0 / denom));
    if (keep_logits_) r_.logits.emplace_back(row, row + k_);
  }
  r_.count += int64_t(y.size());
}

EvalResult ClassificationMetrics::result() const {
  EvalResult r = r_;
  if (r.count > 0) {
    r.loss = loss_sum_ / double(r.count);
    r.accuracy = double(correct_) / double(r.count);
  }
  return r;
}

EvalResult evaluate(const Forward& forward, std::shared_ptr<const data::Dataset> dataset, int64_t batch_size,
                    int64_t num_classes, bool keep_logits, int workers) {
  data::DataLoaderOptions lo;
  lo.batch_size = batch_size;
  lo.shuffle = false;
  lo.num_workers = workers;
  data::DataLoader loader(std::move(dataset), lo);
  loader.start_epoch(0);
  ClassificationMetrics m(num_classes, keep_logits);
  data::Batch b;
  while (loader.next(b)) m.add(forward(b.images), b.labels);
  return m.result();
}

double batch1_latency_ms(const Forward& forward, const data::Dataset& test, int64_t n) {
  n = std::min(n, test.size());
  if (n <= 0) return 0;
  Generator g(0);
  std::vector<Tensor> xs;
  for (int64_t i = 0; i < n; ++i) {
    Tensor x = test.get(i, g).image;
    if (x.dtype() != DType::f32) x = x.to(DType::f32);
    xs.push_back(x.unsqueeze(0).contiguous());
  }
  for (int64_t i = 0; i < std::min<int64_t>(5, n); ++i) forward(xs[size_t(i)]);
  const auto t0 = std::chrono::steady_clock::now();
  for (const Tensor& x : xs) forward(x);
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / double(n);
}

void write_predictions_csv(const std::string& path, const EvalResult& r) {
  FINCH_CHECK(r.logits.size() == r.labels.size(), "write_predictions_csv: evaluate() kept no logits");
  const size_t k = r.confusion.size();
  std::vector<std::string> header = {"index", "label", "predicted"};
  for (size_t j = 0; j < k; ++j) header.push_back("logit_" + std::to_string(j));
  CsvWriter csv(header);
  for (size_t i = 0; i < r.labels.size(); ++i) {
    std::vector<CsvCell> row = {int64_t(i), r.labels[i], r.predicted[i]};
    for (float v : r.logits[i]) row.emplace_back(v);
    csv.add_row(std::move(row));
  }
  csv.save(path);
}

std::vector<int64_t> most_confident_mistakes(const EvalResult& r, size_t n) {
  std::vector<int64_t> wrong;
  for (size_t i = 0; i < r.labels.size() && i < r.confidence.size(); ++i)
    if (r.labels[i] != r.predicted[i]) wrong.push_back(int64_t(i));
  std::stable_sort(wrong.begin(), wrong.end(),
                   [&](int64_t a, int64_t b) { return r.confidence[size_t(a)] > r.confidence[size_t(b)]; });
  if (wrong.size() > n) wrong.resize(n);
  return wrong;
}

}  // namespace finch::train
