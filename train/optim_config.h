// Optimizer and learning-rate schedule of a training run, configured by two small structs:
// which optimizer with which hyper-parameters, and the LR (and momentum) as a pure function of
// the global step, so resuming at any step needs no scheduler state.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "autograd/nn/module.h"
#include "autograd/optim/optimizer.h"

namespace finch::train {

struct OptimizerConfig {
  std::string name = "sgd";  // sgd, adam or adamw
  double lr = 0.1;
  double momentum = 0.9;     // SGD only
  bool nesterov = true;      // SGD only, and only with momentum > 0 (torch rejects it otherwise)
  double weight_decay = 0;
};

std::unique_ptr<optim::Optimizer> make_optimizer(const OptimizerConfig& c, const nn::Module& model);

struct ScheduleConfig {
  // cosine: linear warm-up then cosine decay to 0; step: warm-up then ×0.1 at 50 % and 75 %;
  // onecycle: Smith's 1cycle (LR and momentum); cyclic: two triangles between lr/10 and lr;
  // constant: lr throughout; plateau: Keras's ReduceLROnPlateau on the training loss (what Fawaz
  // et al. 2019 train FCN and ResNet with), see plateau_lr.
  std::string kind = "cosine";
  double lr = 0.1;            // the peak (base) learning rate
  int64_t epochs = 1;         // the length of the schedule (not of one run that stops early)
  double warmup_epochs = 0;
  // plateau: after `plateau_patience` epochs in a row whose training loss is not below the best
  // so far by more than `plateau_min_delta`, the LR is multiplied by `plateau_factor`, never
  // below `plateau_min_lr` (Keras's defaults as Fawaz et al. use them: 0.5, 50, 1e-4, 1e-4).
  double plateau_factor = 0.5;
  int64_t plateau_patience = 50;
  double plateau_min_lr = 1e-4;
  double plateau_min_delta = 1e-4;
};

struct ScheduleValue {
  double lr = 0;
  std::optional<double> momentum;  // onecycle and cyclic also cycle the momentum (β1 for Adam)
};

// The schedule at global step `step` (0-based) of a run of steps_per_epoch × c.epochs steps.
// Unknown kinds are a finch::Error sentence.
ScheduleValue schedule_at(const ScheduleConfig& c, int64_t step, int64_t steps_per_epoch);

// The plateau schedule's LR for the epoch after those whose mean training losses are
// `epoch_losses` (oldest first): a pure function of the history, so a resumed run continues with
// the same LR without scheduler state. Replays Keras's ReduceLROnPlateau(mode='min', cooldown=0):
// an epoch improves when its loss < best − min_delta (a NaN loss never does); otherwise the wait
// grows, and at `patience` the LR becomes max(lr·factor, min_lr) (when lr > min_lr) and the wait
// restarts. Within an epoch the LR is constant (schedule_at gives c.lr without a history).
double plateau_lr(const ScheduleConfig& c, const std::vector<double>& epoch_losses);

// Sets schedule_at(...) on `opt` (momentum only where the optimizer has it); returns the lr.
double apply_schedule(const ScheduleConfig& c, optim::Optimizer& opt, int64_t step, int64_t steps_per_epoch);

// The schedule's learning rate at up to `points` evenly spaced steps of the whole run (and its
// last step), as (x in epochs, lr) pairs for the report's learning-rate curve.
std::vector<std::pair<double, double>> schedule_curve(const ScheduleConfig& c, int64_t steps_per_epoch,
                                                      int64_t points = 200);

}  // namespace finch::train
