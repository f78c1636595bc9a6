// Evaluation of a classifier on a dataset: loss, accuracy, confusion matrix, per-class accuracy
// and (optionally) every image's logits for a predictions CSV.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/nn/module.h"
#include "data/dataset.h"

namespace finch::apps {

struct EvalResult {
  int64_t count = 0;
  double loss = 0;      // mean cross-entropy (no label smoothing)
  double accuracy = 0;  // fraction correct
  std::vector<std::vector<int64_t>> confusion;  // [true class][predicted class]
  std::vector<int64_t> labels, predicted;       // per image, in dataset order
  std::vector<std::vector<float>> logits;       // per image, when asked for
  std::vector<double> per_class_accuracy() const;  // recall per true class (NaN: no images)
};

// Runs `model` in eval mode without gradients over `dataset` in order (restoring the
// training flag afterwards). Labels outside [0, num_classes) are an error.
EvalResult evaluate(nn::Module& model, std::shared_ptr<const data::Dataset> dataset, int64_t batch_size,
                    int64_t num_classes, bool keep_logits = false, int workers = 0);

// Batch-1 latency in ms: the deployment case (one camera frame at a time), mean over the first
// `n` images of `dataset` after a few warm-up calls.
double batch1_latency_ms(nn::Module& model, const data::Dataset& dataset, int64_t n);

// Writes index,label,predicted,logit_0..logit_{K-1} (needs keep_logits) atomically.
void write_predictions_csv(const std::string& path, const EvalResult& r);

}  // namespace finch::apps
