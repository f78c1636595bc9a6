// Classification metrics from plain logits: loss, accuracy, confusion matrix, per-class
// accuracy, each image's confidence, the most confidently wrong images, and the predictions CSV.
//
// No autograd here on purpose: the training loop's evaluation (train/evaluate.h) and the
// evaluation of a compiled program (finch run, which has only the runtime's executor) both call
// these functions with a `Forward` callable, so the two paths compute the same numbers the same
// way. This file includes only framework/, ops/ and data/.
//
// Shapes: B batch, K classes; logits [B, K] (any float dtype), labels I64 [B].
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

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
