// Module evaluation: eval mode, no-grad, then the autograd-free metrics of train/metrics.h.
#include "train/evaluate.h"

#include "framework/grad_mode.h"
#include "train/loop.h"

namespace finch::train {

EvalResult evaluate(nn::Module& model, std::shared_ptr<const data::Dataset> dataset, int64_t batch_size,
                    int64_t num_classes, bool keep_logits, int workers) {
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard ng;
  EvalResult r;
  try {
    r = evaluate([&](const Tensor& x) { return model.forward(x); }, std::move(dataset), batch_size, num_classes,
                 keep_logits, workers);
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  return r;
}

EvalResult evaluate(nn::Module& model, std::shared_ptr<const data::Dataset> dataset, const EvalConfig& c) {
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard ng;
  EvalResult r;
  try {
    r = evaluate([&](const data::Batch& b) { return forward_batch(model, b); }, std::move(dataset), c);
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  return r;
}

double batch1_latency_ms(nn::Module& model, const data::Dataset& dataset, int64_t n) {
  NoGradGuard ng;
  return batch1_latency_ms([&](const Tensor& x) { return model.forward(x); }, dataset, n);
}

}  // namespace finch::train
