// The training loop over any model, loss and data source: one epoch of optimizer steps with a
// progress bar, and fit() — epochs with evaluation, best tracking and callbacks
// (train/callbacks.h) for progress lines, metrics CSV, checkpoints, reports and QAT phases.
//
// Data: a data::DataLoader (batches of inputs and I64 labels, or F32 regression targets).
// Loss: any callable from (outputs, targets) to a scalar tensor; it gets Batch::targets when the
// batch has them (regression), else Batch::labels. Accuracy is reported when the outputs are
// [B, K] class scores (or one binary logit, [B, 1] or [B]) and the labels [B] class indices, and
// is NaN otherwise (regression). A batch with lengths (padded sequences) goes through
// nn::LengthAware::forward_with_lengths when the model implements it.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autograd/nn/module.h"
#include "autograd/optim/optimizer.h"
#include "data/dataloader.h"
#include "train/distributed.h"
#include "train/divergence.h"
#include "train/metrics.h"
#include "train/optim_config.h"

namespace finch::train {

// (outputs of the model, targets of the batch) → a 0-d loss tensor with a gradient.
using LossFn = std::function<Tensor(const Tensor& outputs, const Tensor& targets)>;

// The model's outputs for a batch: forward_with_lengths(images, lengths) when the batch carries
// lengths and the model is an nn::LengthAware, else forward(images).
Tensor forward_batch(nn::Module& model, const data::Batch& batch);

struct LoopConfig {
  int64_t epochs = 1;             // the run's last epoch (1-based count)
  int64_t stop_after_epochs = 0;  // > 0: stop after this many epochs in this call (resume later)
  bool quiet = false;             // no progress bars (tests)
  // Names the run at the start of its error sentences ("QAT fine-tuning: the training loss …");
  // empty when the caller's own prefix (a program's name) already says it.
  std::string name;
  std::string lr_hint = "lower the learning rate";  // what a diverging loss message suggests
  DivergenceConfig divergence;    // when a finite but exploding loss stops the run (divergence.h)
  // Data-parallel training (train/distributed.h): gradients averaged over the ranks after each
  // backward, epoch statistics summed over them, parameters broadcast from rank 0 when fit()
  // starts. The loader must hold this rank's shard. Null: one process, as before.
  DataParallel* parallel = nullptr;
};

struct EpochStats {
  double lr = 0;  // at the epoch's first step
  double loss = 0, accuracy = 0;
  int64_t images = 0;
  double seconds = 0;
  double images_per_second() const { return seconds > 0 ? double(images) / seconds : 0.0; }
};

// One epoch `epoch` (0-based) of steps over `loader`, the LR from `schedule` at each step. A
// non-finite loss, or a finite one far above its early range (train/divergence.h), is a
// finch::Error sentence naming the epoch and step; fit() also checks the weights after each epoch.
// `on_step(step, loss)` (if set) runs after each optimizer step.
// `guard` carries the early loss range across epochs (fit() keeps one per run); null: a fresh
// one for this epoch.
EpochStats train_epoch(nn::Module& model, optim::Optimizer& opt, data::DataLoader& loader, const LossFn& loss,
                       const ScheduleConfig& schedule, const LoopConfig& config, int64_t epoch,
                       const std::function<void(int64_t, double)>& on_step = nullptr,
                       DivergenceGuard* guard = nullptr);

// What survives between runs (and is saved in a checkpoint besides the tensors).
struct TrainState {
  int64_t epochs_done = 0;
  double best_test_accuracy = 0;
  nlohmann::json history = nlohmann::json::array();  // one row per epoch (history_row)
};

// The per-epoch row of metrics.csv and of the history: epoch (1-based), lr, train_loss,
// train_acc, test_loss, test_acc, seconds, images_per_second (the measurements to 4 digits),
// and images (the exact count, so resumed runs add up throughput without rounding).
nlohmann::json history_row(int64_t epoch, const EpochStats& s, const EvalResult& test);

struct EpochEnd {
  int64_t epoch = 0;  // 0-based
  EpochStats train;
  EvalResult test;
  // The best test accuracy so far, or for regression (accuracy NaN) the lowest test loss; always
  // true for the first epoch.
  bool best = false;
};

// What callbacks see: the model and optimizer being trained and the state after each step.
struct Context {
  nn::Module& model;
  optim::Optimizer& opt;
  TrainState& state;
  const LoopConfig& config;
  // Set by a callback (early stopping, apps/lib/model_selection.h) to end fit() before its next
  // epoch, as Keras's model.stop_training; checked after on_train_begin and after each epoch.
  bool stop = false;
};

// Hooks called by fit() in this order: on_train_begin; per epoch on_epoch_begin, then
// on_batch_end after each step, then on_epoch_end (after the epoch's row is in state.history);
// on_train_end. Callbacks run in the order given; a later one sees what an earlier one changed
// (e.g. keys added to state.history.back()).
class Callback {
 public:
  virtual ~Callback() = default;
  virtual void on_train_begin(Context&) {}
  virtual void on_epoch_begin(Context&, int64_t /*epoch*/) {}
  virtual void on_batch_end(Context&, int64_t /*epoch*/, int64_t /*step*/, double /*loss*/) {}
  virtual void on_epoch_end(Context&, const EpochEnd&) {}
  virtual void on_train_end(Context&) {}
};

// Evaluates the model after each epoch (e.g. evaluate(model, test set, …) from train/evaluate.h).
using Evaluator = std::function<EvalResult(nn::Module&)>;

// Trains from state.epochs_done to config.epochs (or stop_after_epochs of them, or until a
// callback sets Context::stop), evaluating after each epoch, and returns the last evaluation (count 0 when no epoch ran).
EvalResult fit(nn::Module& model, optim::Optimizer& opt, data::DataLoader& loader, const LossFn& loss,
               const ScheduleConfig& schedule, const LoopConfig& config, TrainState& state,
               const Evaluator& evaluate, const std::vector<Callback*>& callbacks = {});

// Rounds a measurement to `digits` significant digits (timings, throughputs) for result files.
double round_significant(double v, int digits = 4);

}  // namespace finch::train
