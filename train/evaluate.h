// Evaluation of an nn::Module: eval mode and no gradients around train/metrics.h's evaluate and
// batch-1 latency (which take any forward callable, e.g. a compiled program's run).
#pragma once
#include <cstdint>
#include <memory>

#include "autograd/nn/module.h"
#include "data/dataset.h"
#include "train/metrics.h"

namespace finch::train {

// Runs `model` in eval mode without gradients over `dataset` in order (restoring the training
// flag afterwards). Labels outside [0, num_classes) are an error.
EvalResult evaluate(nn::Module& model, std::shared_ptr<const data::Dataset> dataset, int64_t batch_size,
                    int64_t num_classes, bool keep_logits = false, int workers = 0);

// The same for classification or regression (c.num_classes 0), each batch through forward_batch
// (train/loop.h), so padded sequences reach a length-aware model with their lengths.
EvalResult evaluate(nn::Module& model, std::shared_ptr<const data::Dataset> dataset, const EvalConfig& c);

// batch1_latency_ms over model.forward without gradients (the training flag is left as it is).
double batch1_latency_ms(nn::Module& model, const data::Dataset& dataset, int64_t n);

}  // namespace finch::train
