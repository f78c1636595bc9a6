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

namespace {

// One binary logit z per sample ([B, 1] or [B]) as the two-class logits [0, z] (see metrics.h).
Tensor two_class_logits(const Tensor& z) {
  const auto v = z.to(DType::f32).contiguous().to_vector<float>();
  std::vector<float> two(2 * v.size(), 0.0f);
  for (size_t i = 0; i < v.size(); ++i) two[2 * i + 1] = v[i];
  return from_vector<float>(two, {int64_t(v.size()), 2});
}

}  // namespace

void ClassificationMetrics::add(const Tensor& raw_logits, const Tensor& labels) {
  const bool one_logit = k_ == 2 && (raw_logits.dim() == 1 || (raw_logits.dim() == 2 && raw_logits.size(1) == 1));
  const Tensor logits = one_logit ? two_class_logits(raw_logits) : raw_logits;
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

ClassificationScores classification_scores(const std::vector<std::vector<int64_t>>& c) {
  const size_t k = c.size();
  for (const auto& row : c) FINCH_CHECK(row.size() == k, "classification_scores: the confusion matrix is not square");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> truth(k, 0), predicted(k, 0);
  double total = 0, diagonal = 0;
  for (size_t t = 0; t < k; ++t)
    for (size_t p = 0; p < k; ++p) {
      truth[t] += double(c[t][p]);
      predicted[p] += double(c[t][p]);
      total += double(c[t][p]);
      if (t == p) diagonal += double(c[t][p]);
    }
  ClassificationScores s;
  s.precision.assign(k, nan);
  s.recall.assign(k, nan);
  s.f1.assign(k, nan);
  if (total == 0) {
    s.accuracy = s.balanced_accuracy = s.macro_precision = s.macro_recall = s.macro_f1 = s.cohen_kappa = nan;
    return s;
  }
  // 0/0 is 0 here, as sklearn's zero_division default gives (with a warning).
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  double present = 0, in_truth = 0, recall_in_truth = 0, expected = 0;
  for (size_t j = 0; j < k; ++j) {
    expected += truth[j] * predicted[j];
    if (truth[j] == 0 && predicted[j] == 0) continue;  // neither: not one of sklearn's labels
    const double tp = double(c[j][j]);
    s.precision[j] = ratio(tp, predicted[j]);
    s.recall[j] = ratio(tp, truth[j]);
    s.f1[j] = ratio(2 * tp, truth[j] + predicted[j]);  // = 2PR/(P+R), and 0 where that is 0/0
    s.macro_precision += s.precision[j];
    s.macro_recall += s.recall[j];
    s.macro_f1 += s.f1[j];
    present += 1;
    if (truth[j] > 0) {
      recall_in_truth += s.recall[j];
      in_truth += 1;
    }
  }
  s.macro_precision /= present;
  s.macro_recall /= present;
  s.macro_f1 /= present;
  s.accuracy = diagonal / total;
  s.balanced_accuracy = recall_in_truth / in_truth;
  const double po = diagonal / total, pe = expected / (total * total);
  s.cohen_kappa = pe < 1 ? (po - pe) / (1 - pe) : nan;
  return s;
}

RegressionMetrics::RegressionMetrics(std::vector<double> target_std) : std_(std::move(target_std)) {
  for (double v : std_)
    if (!(std::isfinite(v) && v > 0)) fail("RegressionMetrics: a target std must be finite and positive, found ", v);
}

void RegressionMetrics::add(const Tensor& outputs, const Tensor& targets) {
  if (outputs.dim() < 1 || targets.dim() < 1 || outputs.size(0) != targets.size(0) ||
      outputs.numel() != targets.numel())
    fail("evaluate: expected outputs with the targets' ", targets.numel(), " values ", shape_str(targets.shape()),
         ", got ", shape_str(outputs.shape()));
  const auto y = outputs.to(DType::f32).contiguous().to_vector<float>();
  const auto t = targets.to(DType::f32).contiguous().to_vector<float>();
  // Values per sample, and per target variable (axis 1) within a sample.
  const size_t per_sample = size_t(targets.numel() / std::max<int64_t>(1, targets.size(0)));
  const int64_t vars = targets.dim() >= 2 ? targets.size(1) : 1;
  if (!std_.empty() && std_.size() != 1 && int64_t(std_.size()) != vars)
    fail("evaluate: ", std_.size(), " target std values for targets ", shape_str(targets.shape()), " with ", vars,
         " variables along axis 1");
  const size_t per_var = per_sample / size_t(std::max<int64_t>(1, vars));
  for (size_t i = 0; i < y.size(); ++i) {
    const double e = double(y[i]) - double(t[i]);
    sq_ += e * e;
    abs_ += std::fabs(e);
    if (!std_.empty()) {
      const double eo = e * std_[std_.size() == 1 ? 0 : (i % per_sample) / per_var];
      sq_orig_ += eo * eo;
      abs_orig_ += std::fabs(eo);
    }
  }
  values_ += int64_t(y.size());
  samples_ += targets.size(0);
}

EvalResult RegressionMetrics::result() const {
  EvalResult r;
  r.regression = true;
  r.count = samples_;
  r.accuracy = std::numeric_limits<double>::quiet_NaN();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (values_ > 0) {
    r.mse = sq_ / double(values_);
    r.mae = abs_ / double(values_);
    r.rmse = std::sqrt(r.mse);
    r.loss = r.mse;
  }
  r.mse_original = std_.empty() || !values_ ? nan : sq_orig_ / double(values_);
  r.mae_original = std_.empty() || !values_ ? nan : abs_orig_ / double(values_);
  r.rmse_original = std::sqrt(r.mse_original);
  return r;
}

EvalResult evaluate(const BatchForward& forward, std::shared_ptr<const data::Dataset> dataset, const EvalConfig& c) {
  data::DataLoaderOptions lo;
  lo.batch_size = c.batch_size;
  lo.shuffle = false;
  lo.num_workers = c.workers;
  data::DataLoader loader(std::move(dataset), lo);
  loader.start_epoch(0);
  data::Batch b;
  if (c.num_classes == 0) {
    RegressionMetrics m(c.target_std);
    while (loader.next(b)) {
      if (!b.targets.defined()) fail("evaluate: a regression evaluation needs samples with targets");
      m.add(forward(b), b.targets);
    }
    return m.result();
  }
  ClassificationMetrics m(c.num_classes, c.keep_logits);
  while (loader.next(b)) m.add(forward(b), b.labels);
  return m.result();
}

EvalResult evaluate(const Forward& forward, std::shared_ptr<const data::Dataset> dataset, int64_t batch_size,
                    int64_t num_classes, bool keep_logits, int workers) {
  EvalConfig c;
  c.batch_size = batch_size;
  c.num_classes = num_classes;
  c.keep_logits = keep_logits;
  c.workers = workers;
  // This path is classification only: 0 classes is an error here, not a regression request.
  if (num_classes <= 0) fail("ClassificationMetrics: expected a positive number of classes, found ", num_classes);
  return evaluate([&](const data::Batch& b) { return forward(b.images); }, std::move(dataset), c);
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
