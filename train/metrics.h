// Metrics from plain model outputs. Classification: loss, accuracy, confusion matrix, per-class
// accuracy, macro precision/recall/F1, balanced accuracy, Cohen's kappa, each image's confidence,
// the most confidently wrong images and the predictions CSV. Regression: MSE/MAE/RMSE, also in
// the data's original units when its normalization is known.
//
// No autograd here on purpose: the training loop's evaluation (train/evaluate.h) and the
// evaluation of a compiled program (finch run, which has only the runtime's executor) both call
// these functions with a `Forward` callable, so the two paths compute the same numbers the same
// way. This file includes only framework/, ops/ and data/.
//
// Shapes: B batch, K classes; logits [B, K] (any float dtype), labels I64 [B]. A binary model
// with one logit z ([B, 1] or [B]) is scored as the two-class logits [0, z]: softmax gives
// P(1) = sigmoid(z) and the cross-entropy equals BCE-with-logits, so every metric applies as is.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/dataloader.h"
#include "data/dataset.h"
#include "framework/tensor.h"

namespace finch::train {

struct EvalResult {
  int64_t count = 0;
  double loss = 0;      // mean cross-entropy (no label smoothing)
  double accuracy = 0;  // fraction correct
  std::vector<std::vector<int64_t>> confusion;  // [true class][predicted class]
  std::vector<int64_t> labels, predicted;       // per image, in dataset order
  std::vector<float> confidence;                // per image: softmax probability of `predicted`
  std::vector<std::vector<float>> logits;       // per image, when asked for
  std::vector<double> per_class_accuracy() const;  // recall per true class (NaN: no images)
  // Regression (accuracy is NaN and confusion empty): the loss is the MSE over every target
  // value; the *_original fields undo the targets' normalization (NaN when it is unknown).
  bool regression = false;
  double mse = 0, mae = 0, rmse = 0;
  double mse_original = 0, mae_original = 0, rmse_original = 0;
};

// The scores of a confusion matrix [true][predicted] as scikit-learn computes them (labels=None):
// macro averages run over the classes that occur in the truth or the predictions; a class never
// predicted has precision 0 (sklearn's zero_division), balanced accuracy is the mean recall over
// the classes that occur in the truth, and kappa = (p_o - p_e) / (1 - p_e) (NaN when p_e = 1).
// Per-class values are NaN for a class in neither.
struct ClassificationScores {
  double accuracy = 0, balanced_accuracy = 0, macro_precision = 0, macro_recall = 0, macro_f1 = 0,
         cohen_kappa = 0;
  std::vector<double> precision, recall, f1;
};
ClassificationScores classification_scores(const std::vector<std::vector<int64_t>>& confusion);

// Accumulates squared and absolute errors of regression outputs against targets (any shapes with
// the same number of values per sample). `target_std` (empty: unknown) is the normalization's
// scale, one value, or one per target variable along the targets' axis 1 (a forecast's [B, K, H]
// has K): an error e in normalized units is e·std in the original ones (the mean cancels).
class RegressionMetrics {
 public:
  explicit RegressionMetrics(std::vector<double> target_std = {});
  // outputs [B, ...], targets [B, ...] with equal element counts; finch::Error otherwise.
  void add(const Tensor& outputs, const Tensor& targets);
  EvalResult result() const;

 private:
  std::vector<double> std_;
  double sq_ = 0, abs_ = 0, sq_orig_ = 0, abs_orig_ = 0;
  int64_t values_ = 0, samples_ = 0;
};

// Accumulates EvalResult batch by batch (what evaluate() does; usable by any loop).
class ClassificationMetrics {
 public:
  explicit ClassificationMetrics(int64_t num_classes, bool keep_logits = false);
  // logits [B, K], labels I64 [B]. A label outside [0, K) or logits of another shape is a
  // finch::Error sentence.
  void add(const Tensor& logits, const Tensor& labels);
  EvalResult result() const;  // loss and accuracy are means over the images added so far

 private:
  int64_t k_;
  bool keep_logits_;
  double loss_sum_ = 0;
  int64_t correct_ = 0;
  EvalResult r_;
};

// Anything that maps a batch of inputs to logits: a module's forward, a program's run.
using Forward = std::function<Tensor(const Tensor& inputs)>;
// The same for whole batches (padded sequences need Batch::lengths besides the inputs).
using BatchForward = std::function<Tensor(const data::Batch& batch)>;

struct EvalConfig {
  int64_t batch_size = 256;
  int64_t num_classes = 0;  // 0: regression (the batches carry targets)
  bool keep_logits = false;
  int workers = 0;
  std::vector<double> target_std;  // regression: RegressionMetrics' original-unit scale
};

// Runs `forward` over `dataset` in order; classification or regression as `c.num_classes` says.
EvalResult evaluate(const BatchForward& forward, std::shared_ptr<const data::Dataset> dataset,
                    const EvalConfig& c);

// Runs `forward` over `dataset` in order in batches of `batch_size` (the caller sets eval mode
// and no-grad where that applies).
EvalResult evaluate(const Forward& forward, std::shared_ptr<const data::Dataset> dataset, int64_t batch_size,
                    int64_t num_classes, bool keep_logits = false, int workers = 0);

// Batch-1 latency in ms: the deployment case (one camera frame at a time), mean over the first
// `n` images of `dataset` after a few warm-up calls.
double batch1_latency_ms(const Forward& forward, const data::Dataset& dataset, int64_t n);

// Writes index,label,predicted,logit_0..logit_{K-1} (needs keep_logits) atomically.
void write_predictions_csv(const std::string& path, const EvalResult& r);

// The indices of the (at most) `n` wrong predictions with the highest confidence, most
// confident first (ties: lower index first).
std::vector<int64_t> most_confident_mistakes(const EvalResult& r, size_t n);

}  // namespace finch::train
