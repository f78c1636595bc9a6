// Classifier evaluation: batched no-grad forward passes, confusion matrix, predictions CSV.
#include "apps/lib/metrics.h"

#include <chrono>

#include <cmath>
#include <limits>

#include "autograd/functional.h"
#include "data/dataloader.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "framework/results.h"

namespace finch::apps {

std::vector<double> EvalResult::per_class_accuracy() const {
  std::vector<double> acc;
  for (size_t k = 0; k < confusion.size(); ++k) {
    int64_t total = 0;
    for (int64_t v : confusion[k]) total += v;
    acc.push_back(total ? double(confusion[k][k]) / double(total) : std::numeric_limits<double>::quiet_NaN());
  }
  return acc;
}

EvalResult evaluate(nn::Module& model, std::shared_ptr<const data::Dataset> dataset, int64_t batch_size,
                    int64_t num_classes, bool keep_logits, int workers) {
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard ng;
  data::DataLoaderOptions lo;
  lo.batch_size = batch_size;
  lo.shuffle = false;
  lo.num_workers = workers;
  data::DataLoader loader(dataset, lo);
  loader.start_epoch(0);
  EvalResult r;
  r.confusion.assign(size_t(num_classes), std::vector<int64_t>(size_t(num_classes), 0));
  double loss_sum = 0;
  int64_t correct = 0;
  data::Batch b;
  while (loader.next(b)) {
    Tensor logits = model.forward(b.images);
    if (logits.dim() != 2 || logits.size(1) != num_classes)
      fail("evaluate: expected logits [B, ", num_classes, "], got ", shape_str(logits.shape()));
    const auto y = b.labels.to_vector<int64_t>();
    for (int64_t v : y)
      if (v < 0 || v >= num_classes) fail("evaluate: label ", v, " is outside 0..", num_classes - 1);
    loss_sum += cross_entropy(logits, b.labels, Reduction::sum).item();
    const auto p = argmax(logits, 1).to_vector<int64_t>();
    std::vector<float> lv;
    if (keep_logits) lv = logits.to(DType::f32).contiguous().to_vector<float>();
    for (size_t i = 0; i < y.size(); ++i) {
      correct += p[i] == y[i];
      ++r.confusion[size_t(y[i])][size_t(p[i])];
      r.labels.push_back(y[i]);
      r.predicted.push_back(p[i]);
      if (keep_logits)
        r.logits.emplace_back(lv.begin() + int64_t(i) * num_classes, lv.begin() + int64_t(i + 1) * num_classes);
    }
    r.count += int64_t(y.size());
  }
  model.train(was_training);
  if (r.count > 0) {
    r.loss = loss_sum / double(r.count);
    r.accuracy = double(correct) / double(r.count);
  }
  return r;
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

// Batch-1 latency: the deployment case (one camera frame at a time), mean over `n` test images
// after a few warm-up calls.
double batch1_latency_ms(nn::Module& model, const data::Dataset& test, int64_t n) {
  n = std::min(n, test.size());
  if (n <= 0) return 0;
  NoGradGuard ng;
  Generator g(0);
  std::vector<Tensor> xs;
  for (int64_t i = 0; i < n; ++i) {
    Tensor x = test.get(i, g).image;
    if (x.dtype() != DType::f32) x = x.to(DType::f32);
    xs.push_back(x.unsqueeze(0).contiguous());
  }
  for (int64_t i = 0; i < std::min<int64_t>(5, n); ++i) model.forward(xs[size_t(i)]);
  const auto t0 = std::chrono::steady_clock::now();
  for (const Tensor& x : xs) model.forward(x);
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / double(n);
}

}  // namespace finch::apps
